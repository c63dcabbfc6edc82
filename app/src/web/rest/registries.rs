//! `/system/registry-credentials`: the caller's credentials for their services' images, named
//! by `image_pull_secrets` when jobs run in their image on this machine. Not in upstream OSCAR,
//! whose users create Kubernetes Secrets instead.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};

use super::Principal;
use crate::web::state::AppState;
use crate::{AppError, AppResult};
use domain::registry_credentials;
use model::registries::{NewRegistryCredential, RegistryCredential};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/system/registry-credentials", get(list))
        .route(
            "/system/registry-credentials/{name}",
            put(save).delete(remove),
        )
}

async fn list(
    State(state): State<AppState>,
    Principal(caller): Principal,
) -> AppResult<Json<Vec<RegistryCredential>>> {
    Ok(Json(registry_credentials::list(&state.db, &caller).await?))
}

async fn save(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(name): Path<String>,
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

async fn remove(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(name): Path<String>,
) -> AppResult<StatusCode> {
    registry_credentials::delete(&state.db, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
