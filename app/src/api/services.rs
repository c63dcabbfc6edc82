use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::AppError;
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
    pub activity: crate::api::jobs::JobActivity,
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
}

/// Creates or updates every service of an FDL file. A `script:` naming a file takes the
/// contents sent as `script` when its name matches `script_name`.
#[server(prefix = "/api", endpoint = "services/apply")]
pub async fn apply_fdl(
    fdl: String,
    script_name: Option<String>,
    script: Option<String>,
) -> Result<Vec<Applied>, AppError> {
    use crate::server::{context, now, services};
    let caller = context::require_caller().await?;
    let attached = |name: &str| {
        let matches = script_name.as_deref().map(str::trim) == Some(name);
        matches.then(|| script.clone().unwrap_or_default())
    };
    let definitions = crate::service::fdl::parse(&fdl, attached)?;
    let state = context::state();
    services::apply(
        &state.db,
        &state.s3,
        state.jobs.executor().as_ref(),
        &caller,
        state.vo_groups(),
        definitions,
        now(),
    )
    .await
}

/// Saves a whole definition from the dashboard form (JSON body: it is nested): creates the
/// service, or updates it keeping owner, token, and secrets sent back blank.
#[server(prefix = "/api", endpoint = "services/save", input = leptos::server_fn::codec::Json)]
pub async fn save_service(service: Service) -> Result<Applied, AppError> {
    use crate::server::{context, now, services};
    let caller = context::require_caller().await?;
    let state = context::state();
    let mut applied = services::apply(
        &state.db,
        &state.s3,
        state.jobs.executor().as_ref(),
        &caller,
        state.vo_groups(),
        vec![service],
        now(),
    )
    .await?;
    applied
        .pop()
        .ok_or_else(|| AppError::internal("saving a service", "nothing applied"))
}

/// A page of the services the caller may see whose name, image or owner contains `filter`.
#[server(prefix = "/api", endpoint = "services/list")]
pub async fn list_services(
    #[server(default)] filter: String,
    #[server(default)] page: usize,
) -> Result<ServicesPage, AppError> {
    use crate::server::{context, services};
    let caller = context::require_caller().await?;
    services::page(&context::state().db, &caller, &filter, page).await
}

/// The definition without its token (see `service_token`) and with secret values blank.
#[server(prefix = "/api", endpoint = "services/get")]
pub async fn get_service(name: String) -> Result<Service, AppError> {
    use crate::server::{context, services};
    let caller = context::require_caller().await?;
    let mut service = services::require_visible(&context::state().db, &caller, &name).await?;
    service.token.clear();
    Ok(service)
}

/// The invocation token, for the owner and the admin only.
#[server(prefix = "/api", endpoint = "services/token")]
pub async fn service_token(name: String) -> Result<String, AppError> {
    use crate::server::{context, services};
    let caller = context::require_caller().await?;
    let service = services::require_visible(&context::state().db, &caller, &name).await?;
    services::authorize_owner(&caller, &service)?;
    Ok(service.token)
}

#[server(prefix = "/api", endpoint = "services/deletion-plan")]
pub async fn plan_deletion(name: String) -> Result<DeletionPlan, AppError> {
    use crate::server::{context, services};
    let caller = context::require_caller().await?;
    services::deletion_plan(&context::state().db, &caller, &name).await
}

#[server(prefix = "/api", endpoint = "services/delete")]
pub async fn delete_service(name: String) -> Result<DeletionPlan, AppError> {
    use crate::server::{context, services};
    let caller = context::require_caller().await?;
    let state = context::state();
    services::delete(
        &state.db,
        &state.s3,
        state.jobs.executor().as_ref(),
        &caller,
        &name,
    )
    .await
}
