//! `/system/registry-credentials`: the caller's credentials for their services' images, named
//! by `image_pull_secrets` when jobs run in their image on this machine. Not in upstream OSCAR,
//! whose users create Kubernetes Secrets instead.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Principal;
use super::openapi::documented;
use crate::web::state::AppState;
use crate::{AppError, AppResult};
use domain::registry_credentials;
use model::registries::{NewRegistryCredential, RegistryCredential};

pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    [routes!(list), routes!(save, remove)]
        .into_iter()
        .fold(router, documented)
}

/// A credential named in the path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct CredentialName {
    /// What services' `image_pull_secrets` call it.
    name: String,
}

/// The caller's registry credentials (never their passwords).
#[utoipa::path(get, operation_id = "list_registry_credentials", path = "/system/registry-credentials", tag = "registries",
    responses((status = 200, description = "The credentials", body = Vec<RegistryCredential>)))]
async fn list(
    State(state): State<AppState>,
    Principal(caller): Principal,
) -> AppResult<Json<Vec<RegistryCredential>>> {
    Ok(Json(registry_credentials::list(&state.db, &caller).await?))
}

/// Creates or replaces a credential (`docker-server`, `docker-username`, `docker-password`
/// are accepted too, as `kubectl create secret docker-registry` names them).
#[utoipa::path(put, operation_id = "save_registry_credential", path = "/system/registry-credentials/{name}", tag = "registries",
    params(CredentialName), request_body = NewRegistryCredential,
    responses((status = 200, description = "Saved", body = RegistryCredential)))]
async fn save(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(CredentialName { name }): Path<CredentialName>,
    body: Bytes,
) -> AppResult<Json<RegistryCredential>> {
    let new: NewRegistryCredential = serde_json::from_slice(&body).map_err(|e| {
        AppError::bad_request(
            "body",
            format!("expected {{server, username, password}}: {e}"),
        )
    })?;
    Ok(Json(
        registry_credentials::save(&state.db, &caller, &name, new).await?,
    ))
}

/// Deletes a credential; services that name it pull anonymously.
#[utoipa::path(delete, operation_id = "delete_registry_credential", path = "/system/registry-credentials/{name}", tag = "registries",
    params(CredentialName), responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(CredentialName { name }): Path<CredentialName>,
) -> AppResult<StatusCode> {
    registry_credentials::delete(&state.db, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
