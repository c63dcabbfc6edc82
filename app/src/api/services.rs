use crate::AppError;
use leptos::prelude::*;
use model::service::Service;
pub use model::services::*;

/// Creates or updates every service of an FDL file. A `script:` naming a file takes the
/// contents sent as `script` when its name matches `script_name`.
#[server(prefix = "/api", endpoint = "services/apply")]
pub async fn apply_fdl(
    fdl: String,
    script_name: Option<String>,
    script: Option<String>,
) -> Result<Vec<Applied>, AppError> {
    use crate::web::context;
    use domain::{now, services};
    let caller = context::require_caller().await?;
    let attached = |name: &str| {
        let matches = script_name.as_deref().map(str::trim) == Some(name);
        matches.then(|| script.clone().unwrap_or_default())
    };
    let definitions = model::service::fdl::parse(&fdl, attached)?;
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
    use crate::web::context;
    use domain::{now, services};
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
    use crate::web::context;
    use domain::services;
    let caller = context::require_caller().await?;
    let state = context::state();
    services::page(&state.db, &state.services, &caller, &filter, page).await
}

/// The definition without its token (see `service_token`) and with secret values blank.
#[server(prefix = "/api", endpoint = "services/get")]
pub async fn get_service(name: String) -> Result<Service, AppError> {
    use crate::web::context;
    use domain::services;
    let caller = context::require_caller().await?;
    let mut service = services::require_visible(&context::state().db, &caller, &name).await?;
    service.token.clear();
    Ok(service)
}

/// The invocation token, for the owner and the admin only.
#[server(prefix = "/api", endpoint = "services/token")]
pub async fn service_token(name: String) -> Result<String, AppError> {
    use crate::web::context;
    use domain::services;
    let caller = context::require_caller().await?;
    let service = services::require_visible(&context::state().db, &caller, &name).await?;
    services::authorize_owner(&caller, &service)?;
    Ok(service.token)
}

#[server(prefix = "/api", endpoint = "services/deletion-plan")]
pub async fn plan_deletion(name: String) -> Result<DeletionPlan, AppError> {
    use crate::web::context;
    use domain::services;
    let caller = context::require_caller().await?;
    let state = context::state();
    services::deletion_plan(&state.db, &state.services, &caller, &name).await
}

#[server(prefix = "/api", endpoint = "services/delete")]
pub async fn delete_service(name: String) -> Result<DeletionPlan, AppError> {
    use crate::web::context;
    use domain::services;
    let caller = context::require_caller().await?;
    let state = context::state();
    services::delete(
        &state.db,
        &state.services,
        &state.s3,
        state.jobs.executor().as_ref(),
        &caller,
        &name,
    )
    .await
}
