use crate::AppError;
use leptos::prelude::*;
use model::service::Service;
pub use model::services::*;

/// Creates every service of an FDL file; with `update_existing`, updates those that exist
/// (otherwise one that exists is a 409 and nothing is created). A `script:` naming a file
/// takes the contents sent as `script` when its name matches `script_name`, or those of the
/// file of that name among `files` (a workflow's services each name their own).
#[server(prefix = "/api", endpoint = "services/apply")]
pub async fn apply_fdl(
    fdl: String,
    script_name: Option<String>,
    script: Option<String>,
    #[server(default)] files: Vec<ScriptFile>,
    #[server(default)] update_existing: bool,
) -> Result<Vec<Applied>, AppError> {
    use crate::web::context;
    use domain::services;
    use model::Timestamp;
    let caller = context::require_caller().await?;
    let files = ScriptFile::all(
        script_name.unwrap_or_default(),
        script.unwrap_or_default(),
        files,
    );
    let attached = |name: &str| ScriptFile::find(&files, name);
    let definitions = model::service::fdl::parse(&fdl, attached)?;
    let state = context::state();
    services::apply(
        &state,
        &caller,
        definitions,
        update_existing,
        Timestamp::now(),
    )
    .await
}

/// Creates a service from the "New service" form (JSON body: it is nested); a name that is
/// taken is a 409, never an update.
#[server(prefix = "/api", endpoint = "services/create", input = leptos::server_fn::codec::Json)]
pub async fn create_service(service: Service) -> Result<Applied, AppError> {
    use crate::web::context;
    use domain::services;
    use model::Timestamp;
    let caller = context::require_caller().await?;
    let state = context::state();
    let created = services::create(
        &state.db,
        &state.s3,
        state.jobs.executor().as_ref(),
        &caller,
        state.vo_groups(),
        service,
        Timestamp::now(),
    )
    .await?;
    let federation = domain::federation::members::report(&state.federation(), &created).await?;
    Ok(Applied {
        name: created.name,
        created: true,
        federation,
    })
}

/// Saves the Edit form's whole definition, keeping owner, token, and secrets sent back
/// blank. A service that does not exist is a 404: creating is `services/create`.
#[server(prefix = "/api", endpoint = "services/save", input = leptos::server_fn::codec::Json)]
pub async fn save_service(service: Service) -> Result<Applied, AppError> {
    use crate::web::context;
    use domain::services;
    use model::Timestamp;
    let caller = context::require_caller().await?;
    let state = context::state();
    let saved = services::update(
        &state.db,
        &state.s3,
        state.jobs.executor().as_ref(),
        &caller,
        state.vo_groups(),
        service,
        Timestamp::now(),
    )
    .await?;
    let federation = domain::federation::members::report(&state.federation(), &saved).await?;
    Ok(Applied {
        name: saved.name,
        created: false,
        federation,
    })
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

/// The ready services the New service page offers to start from (`examples/`).
#[server(prefix = "/api", endpoint = "services/examples")]
pub async fn service_examples() -> Result<Vec<model::services::Example>, AppError> {
    crate::web::context::require_caller().await?;
    Ok(domain::examples::all())
}

/// Which of the caller's visible services feed which, for the workflow view.
#[server(prefix = "/api", endpoint = "services/workflow")]
pub async fn service_workflow() -> Result<model::workflow::Workflow, AppError> {
    use crate::web::context;
    use domain::services;
    let caller = context::require_caller().await?;
    let state = context::state();
    services::workflow(&state.db, &state.services, &caller).await
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

/// An exposed service's deployment, instances and log (its page polls it).
#[server(prefix = "/api", endpoint = "services/exposed")]
pub async fn exposed_service(name: String) -> Result<model::services::ExposedView, AppError> {
    use crate::web::context;
    let caller = context::require_caller().await?;
    let state = context::state();
    state.exposed.view(&state.db, &caller, &name).await
}

/// Stops, starts or restarts an exposed service (`action`), as its owner or the admin.
#[server(prefix = "/api", endpoint = "services/lifecycle")]
pub async fn exposed_lifecycle(
    name: String,
    action: String,
) -> Result<model::services::DeploymentStatus, AppError> {
    use crate::web::context;
    let caller = context::require_caller().await?;
    let state = context::state();
    let action = action.parse()?;
    state
        .exposed
        .act(&state.db, &state.services, &caller, &name, action)
        .await
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

/// Deletes a service and, unless `keep_buckets`, the buckets its plan lists. Answers what
/// was deleted.
#[server(prefix = "/api", endpoint = "services/delete")]
pub async fn delete_service(
    name: String,
    #[server(default)] keep_buckets: bool,
) -> Result<DeletionPlan, AppError> {
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
        keep_buckets,
    )
    .await
}

/// How polling last listed the service's inputs in other providers.
#[server(prefix = "/api", endpoint = "services/polls")]
pub async fn input_polls(name: String) -> Result<model::services::InputPolls, AppError> {
    use crate::web::context;
    use domain::{jobs::polling, services};
    let (state, caller) = (context::state(), context::require_caller().await?);
    let service = services::require_visible(&state.db, &caller, &name).await?;
    Ok(model::services::InputPolls {
        every_secs: state.jobs.settings().poll_every.map(|d| d.as_secs()),
        inputs: polling::polls(&state.db, &service).await?,
    })
}
