//! Registry credentials for private images, as the Info page manages them (the REST API has
//! the same under `/system/registry-credentials`).

use crate::AppError;
use leptos::prelude::*;
pub use model::registries::*;

#[server(prefix = "/api", endpoint = "registries/list")]
pub async fn list_registry_credentials() -> Result<Vec<RegistryCredential>, AppError> {
    use crate::web::context;
    use domain::registry_credentials;
    let caller = context::require_caller().await?;
    registry_credentials::list(&context::state().db, &caller).await
}

#[server(prefix = "/api", endpoint = "registries/save")]
pub async fn save_registry_credential(
    name: String,
    server: String,
    username: String,
    password: String,
) -> Result<RegistryCredential, AppError> {
    use crate::web::context;
    use domain::registry_credentials;
    let caller = context::require_caller().await?;
    let new = NewRegistryCredential {
        server,
        username,
        password,
    };
    registry_credentials::save(&context::state().db, &caller, &name, new).await
}

#[server(prefix = "/api", endpoint = "registries/delete")]
pub async fn delete_registry_credential(name: String) -> Result<(), AppError> {
    use crate::web::context;
    use domain::registry_credentials;
    let caller = context::require_caller().await?;
    registry_credentials::delete(&context::state().db, &caller, &name).await
}
