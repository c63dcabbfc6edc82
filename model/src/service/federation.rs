//! OSCAR's federation: a service's replicas on other clusters (or plain endpoints) that take
//! its jobs when they wait here too long (oscar-api.md §3.7, §4.2). v4 writes a `federation`
//! block; v3 wrote top-level `replicas`, `delegation` and `rescheduler_threshold`, read here
//! as the same block. `clusters` holds how to reach each member cluster.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Service;

/// Seconds a job waits here before it is handed to a member, when the service does not say
/// (upstream's `RESCHEDULER_THRESHOLD`).
pub const DEFAULT_THRESHOLD: u64 = 10;

/// The most members a service may have: each one is asked in turn while a job waits.
pub const MAX_MEMBERS: usize = 32;

/// How the replicas are connected. With `none` nothing is delegated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    #[default]
    None,
    /// This cluster delegates to its members.
    Star,
    /// Every member may delegate to the others too (each cluster holds the same list).
    Mesh,
}

/// The order members are asked in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Delegation {
    /// By `priority`, 0 first.
    #[default]
    Static,
    Random,
    /// The member with the most free CPU and memory (its `/system/status`) first.
    LoadBased,
}

/// Upstream's `Federation` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Federation {
    /// The federation's name; the service's name when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group_id: String,
    pub topology: Topology,
    pub delegation: Delegation,
    /// Seconds a job waits here before a member gets it.
    pub rescheduler_threshold: u64,
    pub members: Vec<Replica>,
}

impl Default for Federation {
    fn default() -> Self {
        Self {
            group_id: String::new(),
            topology: Topology::None,
            delegation: Delegation::Static,
            rescheduler_threshold: DEFAULT_THRESHOLD,
            members: Vec::new(),
        }
    }
}

/// Upstream's `Replica`: another OSCAR cluster's service, or an endpoint taking the event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Replica {
    /// `oscar` or `endpoint`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `oscar`: the entry of `clusters` to reach.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster_id: String,
    /// For `oscar`: the service's name there.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service_name: String,
    /// For `endpoint`: where the event is posted.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
    pub ssl_verify: bool,
    /// 0 is asked first.
    pub priority: u32,
    /// Sent with every request to the member.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl Replica {
    pub fn is_oscar(&self) -> bool {
        self.kind.eq_ignore_ascii_case("oscar")
    }

    /// How the member is named in logs and on the job: `cluster/service` or the URL.
    pub fn label(&self) -> String {
        if self.is_oscar() {
            format!("{}/{}", self.cluster_id, self.service_name)
        } else {
            self.url.clone()
        }
    }

    /// Whether two entries name the same member (upstream's match for PUT and DELETE).
    pub fn same_member(&self, other: &Replica) -> bool {
        self.kind.eq_ignore_ascii_case(&other.kind)
            && self.cluster_id == other.cluster_id
            && self.service_name == other.service_name
            && self.url == other.url
    }
}

/// An entry of `clusters`: another OSCAR cluster and the credentials to reach it (left out of
/// its `Debug`, so that no log line holds them).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Cluster {
    pub endpoint: String,
    pub auth_user: String,
    pub auth_password: String,
    pub ssl_verify: bool,
    /// An OIDC refresh token of the owner's (EGI Check-In's, from its token portal or
    /// oidc-agent), used instead of `auth_user`/`auth_password`: the platform exchanges it at
    /// its own identity provider for access tokens the member accepts. Write-only.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub refresh_token: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("endpoint", &self.endpoint)
            .field("auth_user", &self.auth_user)
            .field("ssl_verify", &self.ssl_verify)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// The service's federation as it acts: the `federation` block, else the v3 fields. None
    /// when it has no members or its topology is `none`. Unreadable blocks are refused when
    /// the service is saved ([`errors`]), so they read as none here.
    pub fn federation(&self) -> Option<Federation> {
        self.federation_block()
            .filter(|f| f.topology != Topology::None && !f.members.is_empty())
    }

    /// The `federation` block (or the v3 fields) as written, whatever its topology.
    pub fn federation_block(&self) -> Option<Federation> {
        read(self).ok().flatten()
    }

    /// The `clusters` entries (credentials are blank in a stored service: the platform puts
    /// them back where it needs them).
    pub fn clusters(&self) -> BTreeMap<String, Cluster> {
        self.inactive
            .get("clusters")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// Stores `federation` as the service's block (v3 fields are replaced by it).
    pub fn set_federation(&mut self, federation: &Federation) {
        for v3 in ["replicas", "delegation", "rescheduler_threshold"] {
            self.inactive.remove(v3);
        }
        let value = serde_json::to_value(federation).unwrap_or(Value::Null);
        self.inactive.insert("federation".into(), value);
    }
}

fn read(service: &Service) -> Result<Option<Federation>, (String, String)> {
    let parse = |field: &str, value: &Value| -> Result<Federation, (String, String)> {
        serde_json::from_value(value.clone()).map_err(|e| (field.to_string(), e.to_string()))
    };
    if let Some(block) = service.inactive.get("federation").filter(|v| !v.is_null()) {
        return parse("federation", block).map(Some);
    }
    // v3: `replicas` at the top, delegating as a star.
    let Some(replicas) = service.inactive.get("replicas").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let members = serde_json::from_value(replicas.clone())
        .map_err(|e| ("replicas".to_string(), e.to_string()))?;
    let delegation = match service.inactive.get("delegation") {
        None | Some(Value::Null) => Delegation::Static,
        Some(Value::String(s)) if s.is_empty() => Delegation::Static,
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| ("delegation".to_string(), e.to_string()))?,
    };
    let threshold = match service.inactive.get("rescheduler_threshold") {
        None | Some(Value::Null) => DEFAULT_THRESHOLD,
        Some(value) => value.as_u64().ok_or_else(|| {
            (
                "rescheduler_threshold".to_string(),
                "must be a whole number of seconds".to_string(),
            )
        })?,
    };
    Ok(Some(Federation {
        group_id: String::new(),
        topology: Topology::Star,
        delegation,
        rescheduler_threshold: threshold,
        members,
    }))
}

/// What is wrong with the service's federation, each with its field.
pub fn errors(service: &Service) -> Vec<(String, String)> {
    let federation = match read(service) {
        Ok(Some(federation)) => federation,
        Ok(None) => return Vec::new(),
        Err((field, message)) => {
            let hint = if message.contains("topsis") {
                "topsis is not supported: use static, random or load-based".to_string()
            } else {
                message
            };
            return vec![(field, hint)];
        }
    };
    let at = if service.inactive.contains_key("federation") {
        "federation.members"
    } else {
        "replicas"
    };
    let clusters = service.clusters();
    let mut errors = Vec::new();
    if federation.members.len() > MAX_MEMBERS {
        errors.push((at.to_string(), format!("at most {MAX_MEMBERS} members")));
    }
    for (i, member) in federation.members.iter().enumerate() {
        let mut add = |field: &str, message: String| {
            errors.push((format!("{at}[{i}].{field}"), message));
        };
        match member.kind.to_ascii_lowercase().as_str() {
            "oscar" => {
                // One that `clusters` lacks is accepted, as upstream does (oscar-python sends
                // an FDL's entry without its top-level `clusters`); copies and hand-offs say
                // it is not defined until it is added.
                if member.cluster_id.is_empty() {
                    add("cluster_id", "must name an entry of clusters".into());
                }
                if let Err(why) = super::validate::dns_label(&member.service_name, 63) {
                    add("service_name", why);
                }
            }
            "endpoint" => {
                if let Err(why) = http_url(&member.url) {
                    add("url", why);
                }
            }
            _ => add("type", "must be oscar or endpoint".into()),
        }
        for name in member.headers.keys() {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                add("headers", format!("{name:?} is not a header name"));
            }
        }
    }
    for (id, cluster) in &clusters {
        // The platform adds paths (`/job/…`, `/system/…`) to it.
        let base = match http_url(&cluster.endpoint) {
            Ok(()) if cluster.endpoint.contains(['?', '#']) => Err(format!(
                "{:?} must be the cluster's address, without a query or fragment",
                cluster.endpoint
            )),
            other => other,
        };
        if let Err(why) = base {
            errors.push((format!("clusters.{id}.endpoint"), why));
        }
    }
    errors
}

fn http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} must be an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || url.chars().any(|c| c.is_whitespace()) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(extra: Value) -> Service {
        let mut value = json!({"name": "edge", "image": "i", "script": "s"});
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_v4_block_and_the_v3_fields_read_the_same() {
        let v4 = service(json!({
            "federation": {"topology": "star", "delegation": "load-based",
                           "rescheduler_threshold": 30,
                           "members": [{"type": "oscar", "cluster_id": "cloud",
                                        "service_name": "edge", "priority": 1}]},
            "clusters": {"cloud": {"endpoint": "https://cloud.example"}}
        }));
        let v3 = service(json!({
            "replicas": [{"type": "oscar", "cluster_id": "cloud", "service_name": "edge",
                          "priority": 1}],
            "delegation": "load-based", "rescheduler_threshold": 30,
            "clusters": {"cloud": {"endpoint": "https://cloud.example"}}
        }));
        assert_eq!(v4.federation(), v3.federation());
        let federation = v4.federation().unwrap();
        assert_eq!(federation.delegation, Delegation::LoadBased);
        assert_eq!(federation.members[0].label(), "cloud/edge");
        assert!(errors(&v4).is_empty() && errors(&v3).is_empty());
    }

    #[test]
    fn no_members_or_topology_none_delegates_nothing() {
        let none = service(json!({"federation": {"topology": "none",
            "members": [{"type": "endpoint", "url": "http://x"}]}}));
        let empty = service(json!({"federation": {"topology": "mesh"}}));
        assert!(none.federation().is_none() && empty.federation().is_none());
        let default = service(json!({"federation": {"topology": "star",
            "members": [{"type": "endpoint", "url": "http://x"}]}}));
        assert_eq!(
            default.federation().unwrap().rescheduler_threshold,
            DEFAULT_THRESHOLD
        );
    }

    #[test]
    fn errors_name_their_field() {
        let bad = service(json!({
            "federation": {"topology": "star", "members": [
                {"type": "oscar", "cluster_id": "", "service_name": "Bad_Name"},
                {"type": "endpoint", "url": "ftp://x"},
                {"type": "knative"},
                {"type": "endpoint", "url": "http://ok", "headers": {"Bad Header": "v"}}
            ]},
            "clusters": {"c": {"endpoint": "cloud.example"}}
        }));
        let fields: Vec<_> = errors(&bad).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "federation.members[0].cluster_id",
                "federation.members[0].service_name",
                "federation.members[1].url",
                "federation.members[2].type",
                "federation.members[3].headers",
                "clusters.c.endpoint",
            ]
        );
        let topsis = service(json!({"federation": {"delegation": "topsis"}}));
        let (field, message) = &errors(&topsis)[0];
        assert_eq!(field, "federation");
        assert!(message.contains("topsis is not supported"), "{message}");
        let topology = service(json!({"federation": {"topology": "ring"}}));
        assert_eq!(errors(&topology)[0].0, "federation");
        let threshold = service(json!({"replicas": [], "rescheduler_threshold": "soon"}));
        assert_eq!(errors(&threshold)[0].0, "rescheduler_threshold");
    }
}
