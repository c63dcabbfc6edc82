//! `GET /system/info` and `/system/status`, facts about the platform.
//!
//! `GET /system/config`: upstream's `ConfigForUser` (grycap/oscar `pkg/types/config.go`): the
//! cluster's settings under `config`, and the store as the caller reaches it with their own
//! clients under `minio_provider`, where oscar-python's storage client reads it.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Principal;
use super::openapi::documented;
use crate::AppResult;
use crate::web::state::AppState;
use axum::body::Bytes;
use domain::{settings, store_keys};
use model::AppError;
use serde::Deserialize;

pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    [
        routes!(config, update_config),
        routes!(info),
        routes!(status),
    ]
    .into_iter()
    .fold(router.routes(routes!(health)), documented)
}

/// OSCAR's liveness probe.
#[utoipa::path(get, path = "/health", tag = "platform", security(()),
    responses((status = 200, description = "`Ok`", body = String, content_type = "text/plain")))]
async fn health() -> &'static str {
    "Ok"
}

/// Upstream's `types.Info` (oscar-python's `get_cluster_info`, oscar-cli's `cluster info`,
/// which use it to check the credentials). `serverless_backend` is left out, as upstream does
/// without Knative or OpenFaaS; `kubernetes_version` is empty in embedded mode.
#[derive(Serialize, ToSchema)]
struct Info {
    version: String,
    git_commit: String,
    architecture: &'static str,
    kubernetes_version: String,
}

/// The platform's version and architecture (oscar-python's `get_cluster_info`).
#[utoipa::path(get, path = "/system/info", tag = "platform",
    responses((status = 200, description = "Version and architecture", body = Info)))]
async fn info(State(state): State<AppState>, Principal(_): Principal) -> Json<Info> {
    Json(Info {
        version: state.info.version.clone(),
        git_commit: state.info.git_commit.clone(),
        architecture: go_architecture(std::env::consts::ARCH),
        kubernetes_version: state
            .jobs
            .executor()
            .kubernetes_version()
            .await
            .unwrap_or_default(),
    })
}

/// The nodes jobs run on and this server; the jobs and the store for the admin
/// (oscar-python's `get_cluster_status`).
#[utoipa::path(get, path = "/system/status", tag = "platform",
    responses((status = 200, description = "Nodes, jobs and the store", body = model::system::Status)))]
async fn status(
    State(state): State<AppState>,
    Principal(caller): Principal,
) -> AppResult<Json<model::system::Status>> {
    Ok(Json(domain::status::status(&state, &caller).await?))
}

/// The architecture as Go names it (upstream reports `runtime.GOARCH`).
fn go_architecture(rust: &'static str) -> &'static str {
    match rust {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Fields in upstream's order; clients compare the text.
#[derive(Serialize, ToSchema)]
struct ConfigForUser {
    config: Config,
    minio_provider: MinioProvider,
    /// Where services may pull images from (`PUT /system/config`); empty: anywhere.
    allowed_image_repositories: Vec<String>,
}

/// Upstream's `Config` as it serialises: the fields without `json:"-"`, less
/// `serverless_backend`, which upstream leaves out without Knative (`/run` works here all the
/// same).
#[derive(Serialize, ToSchema)]
struct Config {
    name: &'static str,
    namespace: &'static str,
    services_namespace: &'static str,
    controller_service_account: &'static str,
    gpu_available: bool,
    #[serde(rename = "interLink_available")]
    interlink_available: bool,
    yunikorn_enable: bool,
    kueue_enable: bool,
    volume_enable: bool,
    oidc_groups: Vec<String>,
    minio_quota_enabled: bool,
}

#[derive(Serialize, ToSchema)]
struct MinioProvider {
    endpoint: String,
    verify: bool,
    access_key: String,
    secret_key: String,
    region: String,
}

/// The cluster's settings and the store as the caller reaches it: the root keys for the
/// admin, the user's own key otherwise.
#[utoipa::path(get, operation_id = "read_config", path = "/system/config", tag = "platform",
    responses((status = 200, description = "Settings and store keys", body = ConfigForUser)))]
async fn config(
    State(state): State<AppState>,
    Principal(caller): Principal,
) -> AppResult<Json<ConfigForUser>> {
    let keys = store_keys::for_caller(&state.db, state.jobs.storage(), &caller).await?;
    let answer = ConfigForUser {
        config: Config {
            name: "oscar",
            namespace: "oscar",
            services_namespace: "oscar-svc",
            controller_service_account: "",
            gpu_available: false,
            interlink_available: false,
            yunikorn_enable: false,
            kueue_enable: false,
            volume_enable: true,
            oidc_groups: state.vo_groups().to_vec(),
            minio_quota_enabled: false,
        },
        minio_provider: MinioProvider {
            verify: keys.endpoint.starts_with("https://"),
            endpoint: keys.endpoint,
            access_key: keys.access_key,
            secret_key: keys.secret_key,
            region: keys.region,
        },
        allowed_image_repositories: settings::allowed_images(&state.db).await?,
    };
    Ok(Json(answer))
}

/// Upstream's `ConfigForUser` as `PUT` reads it: only `allowed_image_repositories` changes
/// (absent or null: none, any image), the rest is ignored.
#[derive(Deserialize, ToSchema)]
struct ConfigUpdate {
    /// Registries or repositories services may pull images from; absent or empty: any.
    #[serde(default)]
    allowed_image_repositories: Option<Vec<String>>,
}

/// The admin sets where services may pull images from; answers the list as stored.
#[utoipa::path(put, path = "/system/config", tag = "platform", request_body = ConfigUpdate,
    responses((status = 200, description = "The allowed repositories", body = Vec<String>)))]
async fn update_config(
    State(state): State<AppState>,
    Principal(caller): Principal,
    body: Bytes,
) -> AppResult<Json<Vec<String>>> {
    let update: ConfigUpdate = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request("body", format!("not a configuration: {e}")))?;
    let entries = update.allowed_image_repositories.unwrap_or_default();
    Ok(Json(
        settings::set_allowed_images(&state.db, &caller, entries).await?,
    ))
}
