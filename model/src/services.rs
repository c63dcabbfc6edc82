//! Services as the dashboard lists them, and what applying or deleting one does.

use serde::{Deserialize, Serialize};

use crate::service::Service;

/// One row of the services list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSummary {
    pub name: String,
    pub image: String,
    pub owner: String,
    /// `bucket/folder` paths of the inputs and outputs.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub activity: crate::jobs::JobActivity,
}

impl From<&Service> for ServiceSummary {
    fn from(s: &Service) -> Self {
        let paths =
            |ios: &[crate::service::StorageIo]| ios.iter().map(|io| io.path.clone()).collect();
        Self {
            name: s.name.clone(),
            image: s.image.clone(),
            owner: s.owner.clone(),
            inputs: paths(&s.input),
            outputs: paths(&s.output),
            activity: Default::default(),
        }
    }
}

/// A script file sent with an FDL whose `script:` names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptFile {
    pub name: String,
    pub text: String,
}

impl ScriptFile {
    /// `files` and, when it is named, the single file of the form's name and contents fields.
    pub fn all(name: String, text: String, mut files: Vec<ScriptFile>) -> Vec<ScriptFile> {
        if !name.trim().is_empty() {
            files.insert(0, ScriptFile { name, text });
        }
        files
    }

    /// The contents of the file named `name` among `files`, for the FDL parser.
    pub fn find(files: &[ScriptFile], name: &str) -> Option<String> {
        files
            .iter()
            .find(|file| file.name.trim() == name)
            .map(|file| file.text.clone())
    }
}

/// A ready service (or workflow) the dashboard offers to start from (`examples/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// Its file in `examples/`.
    pub file: String,
    pub title: String,
    pub description: String,
    /// The services it defines.
    pub services: Vec<String>,
    /// The FDL, scripts inline.
    pub fdl: String,
}

/// One page of the services list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicesPage {
    pub services: Vec<ServiceSummary>,
    /// Services matching the filter, on every page.
    pub matching: usize,
    /// Services the caller may see, filter or not.
    pub visible: usize,
    /// The page shown, from 1 (a page past the end shows the last one).
    pub page: usize,
    pub per_page: usize,
}

impl ServicesPage {
    /// How many pages `matching` services fill (one, even when none match).
    pub fn count_pages(matching: usize, per_page: usize) -> usize {
        matching.div_ceil(per_page).max(1)
    }

    pub fn pages(&self) -> usize {
        Self::count_pages(self.matching, self.per_page)
    }
}

/// What deleting a service removes, shown before the user confirms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionPlan {
    pub service: String,
    /// Buckets the service created and no other service uses; deleted with all their objects.
    pub buckets: Vec<String>,
}

/// One service an FDL apply touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub name: String,
    /// False when an existing service was updated.
    pub created: bool,
    /// What each federation member cluster did with its copy (`cluster/service: copied`, or
    /// why not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federation: Vec<String>,
}

impl Applied {
    /// "Service … created" or "saved", and what the federation members did.
    pub fn summary(&self) -> String {
        let verb = if self.created { "created" } else { "saved" };
        let mut text = format!("Service {} {verb}", self.name);
        if !self.federation.is_empty() {
            text.push_str(&format!("; federation: {}", self.federation.join("; ")));
        }
        text
    }
}

/// `GET /system/services/{name}/deployment`: upstream's `ServiceDeploymentStatus`. A service
/// that runs jobs (`resource_kind` `job_service`) is ready unless its latest run failed or
/// waits for a retry for a platform reason (an image that does not pull, a lost node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentStatus {
    pub service_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(flatten)]
    pub summary: DeploymentSummary,
}

/// The part `?include=deployment` adds to a service (upstream's `ServiceDeploymentSummary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentSummary {
    /// pending, ready, degraded or failed.
    pub state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// Jobs running.
    pub active_instances: i64,
    /// Jobs waiting to run.
    pub affected_instances: i64,
    pub resource_kind: String,
}

/// An exposed service as its page shows it: its deployment, where it is reached, its
/// instances and their log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposedView {
    pub status: DeploymentSummary,
    /// `/system/services/<name>/exposed/`.
    pub url: String,
    /// Whether callers need the token or to be someone it is shared with.
    pub set_auth: bool,
    pub instances: Vec<InstanceView>,
    /// Times instances were started again after exiting.
    pub restarts: u32,
    /// The last lines of the instances' output and the platform's notes.
    pub log: Vec<DeploymentLogEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    pub id: u32,
    pub ready: bool,
    /// Requests it is answering now.
    pub in_flight: u32,
}

/// `GET /system/services/{name}/deployment/logs`: the latest run's log (upstream's
/// `DeploymentLogStream`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentLogs {
    pub service_name: String,
    pub available: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub entries: Vec<DeploymentLogEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentLogEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    pub message: String,
}

/// How polling last listed an input folder in another provider (WebDAV, another S3 store):
/// the service page's word on what otherwise only the server log says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputPoll {
    /// `provider:path`.
    pub input: String,
    /// None until a server has listed it.
    pub polled_at: Option<crate::Timestamp>,
    /// What the last listing that worked held.
    pub files: i64,
    /// While listing fails: since when, and the last reason.
    pub failing_since: Option<crate::Timestamp>,
    pub error: Option<String>,
}

/// A service's inputs in other providers, as polling last saw them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputPolls {
    /// How often they are listed; None when polling is off on this platform.
    pub every_secs: Option<u64>,
    pub inputs: Vec<InputPoll>,
}
