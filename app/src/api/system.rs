use crate::AppError;
use leptos::prelude::*;
pub use model::system::*;

#[server(prefix = "/api", endpoint = "system/info")]
pub async fn system_info() -> Result<PlatformInfo, AppError> {
    use crate::web::context;
    context::require_user().await?;
    Ok(context::state().info.clone())
}

#[server(prefix = "/api", endpoint = "system/store_credentials")]
pub async fn get_store_credentials() -> Result<StoreCredentials, AppError> {
    use crate::web::context;
    use domain::store_keys;
    let caller = context::require_caller().await?;
    let state = context::state();
    store_keys::for_caller(&state.db, state.jobs.storage(), &caller).await
}

#[server(prefix = "/api", endpoint = "system/rotate_store_credentials")]
pub async fn rotate_store_credentials() -> Result<StoreCredentials, AppError> {
    use crate::web::context;
    use domain::store_keys;
    let caller = context::require_caller().await?;
    let state = context::state();
    store_keys::rotate(&state.db, state.jobs.storage(), &caller).await
}

/// The signed-in user's quota and use (the Info page's bars).
#[server(prefix = "/api", endpoint = "system/quota")]
pub async fn own_quota() -> Result<model::quotas::QuotaReport, AppError> {
    use crate::web::context;
    let caller = context::require_caller().await?;
    let state = context::state();
    domain::quotas::report(&state.db, &state.s3.client, &caller, &caller.id).await
}
