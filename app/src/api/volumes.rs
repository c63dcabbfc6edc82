//! Managed volumes, as the Info page manages them (the REST API has the same under
//! `/system/volumes`).

use crate::AppError;
use leptos::prelude::*;
pub use model::volumes::*;

#[server(prefix = "/api", endpoint = "volumes/list")]
pub async fn list_volumes() -> Result<Vec<Volume>, AppError> {
    use crate::web::context;
    let caller = context::require_caller().await?;
    let state = context::state();
    let executor = state.jobs.executor();
    domain::volumes::list(&state.db, &state.services, executor.as_ref(), &caller).await
}

#[server(prefix = "/api", endpoint = "volumes/create")]
pub async fn create_volume(name: String, size: String) -> Result<Volume, AppError> {
    use crate::web::context;
    let caller = context::require_caller().await?;
    let state = context::state();
    let executor = state.jobs.executor();
    let new = NewVolume { name, size };
    domain::volumes::create(&state.db, &state.services, executor.as_ref(), &caller, new).await
}

#[server(prefix = "/api", endpoint = "volumes/delete")]
pub async fn delete_volume(name: String) -> Result<(), AppError> {
    use crate::web::context;
    let caller = context::require_caller().await?;
    let state = context::state();
    let executor = state.jobs.executor();
    domain::volumes::delete(
        &state.db,
        &state.services,
        executor.as_ref(),
        &caller,
        &name,
    )
    .await
}
