//! `/system/federation/{service}`: a federated service's members in upstream's shapes
//! (oscar-python's and oscar-cli's `federation get|add-member|update|delete`). Every change
//! is copied to the members; the answer says what each member cluster did.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Principal;
use super::openapi::documented;
use super::services::ServiceName;
use crate::AppResult;
use crate::web::state::AppState;
use domain::access::Caller;
use domain::federation::members::{self, Change, MemberResult};
use model::AppError;
use model::service::federation::{Cluster, Delegation, Federation, Replica, Topology};

pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    [routes!(read, add, update, remove)]
        .into_iter()
        .fold(router, documented)
}

/// Upstream's federation request: `members` to add or remove, `update[0]` to replace the
/// member with the same type, cluster and service, the `clusters` they need.
#[derive(Deserialize, ToSchema, Default)]
#[serde(default)]
struct Request {
    members: Vec<Replica>,
    update: Vec<Replica>,
    clusters: BTreeMap<String, Cluster>,
    /// With DELETE: delete the removed members' copies too.
    delete: bool,
}

/// The federation as saved, and what each member cluster did.
#[derive(Serialize, ToSchema)]
struct Answer {
    topology: Topology,
    delegation: Delegation,
    rescheduler_threshold: u64,
    members: Vec<Replica>,
    /// Per member cluster: copied, deleted, or why not. Empty for GET.
    #[schema(value_type = Vec<Object>)]
    results: Vec<MemberResult>,
}

impl Answer {
    fn of(federation: Federation, results: Vec<MemberResult>) -> Json<Self> {
        Json(Self {
            topology: federation.topology,
            delegation: federation.delegation,
            rescheduler_threshold: federation.rescheduler_threshold,
            members: federation.members,
            results,
        })
    }
}

fn parse(body: &Bytes) -> AppResult<Request> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Request::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        AppError::bad_request(
            "body",
            format!("must be {{members, update, clusters, delete}} as JSON: {e}"),
        )
    })
}

async fn apply(
    state: &AppState,
    caller: &Caller,
    name: &str,
    change: Change,
) -> AppResult<Json<Answer>> {
    let (federation, results) = members::change(&state.federation(), caller, name, change).await?;
    Ok(Answer::of(federation, results))
}

/// The service's federation (its owner or the admin).
#[utoipa::path(get, operation_id = "read_federation", path = "/system/federation/{name}",
    tag = "federation", params(ServiceName),
    responses((status = 200, description = "Topology, policy and members", body = Answer)))]
async fn read(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name }): Path<ServiceName>,
) -> AppResult<Json<Answer>> {
    let federation = members::show(&state.db, &caller, &name).await?;
    Ok(Answer::of(federation, Vec::new()))
}

/// Adds `members` (with the `clusters` they need) and copies the service to them.
#[utoipa::path(post, operation_id = "add_federation_members", path = "/system/federation/{name}",
    tag = "federation", params(ServiceName), request_body = Request,
    responses((status = 200, description = "Saved; each member's copy reported", body = Answer),
        (status = 409, description = "Already a member")))]
async fn add(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name }): Path<ServiceName>,
    body: Bytes,
) -> AppResult<Json<Answer>> {
    let request = parse(&body)?;
    let change = Change::Add {
        members: request.members,
        clusters: request.clusters,
    };
    apply(&state, &caller, &name, change).await
}

/// Replaces the member matching `update[0]` (type, cluster and service) with it.
#[utoipa::path(put, operation_id = "update_federation_member", path = "/system/federation/{name}",
    tag = "federation", params(ServiceName), request_body = Request,
    responses((status = 200, description = "Saved; each member's copy reported", body = Answer),
        (status = 404, description = "No such member")))]
async fn update(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name }): Path<ServiceName>,
    body: Bytes,
) -> AppResult<Json<Answer>> {
    let request = parse(&body)?;
    let mut update = request.update.into_iter();
    let (Some(member), None) = (update.next(), update.next()) else {
        return Err(AppError::bad_request(
            "update",
            "must hold exactly one member",
        ));
    };
    let change = Change::Update {
        member,
        clusters: request.clusters,
    };
    apply(&state, &caller, &name, change).await
}

/// Removes `members`; with `delete: true` their copies are deleted too.
#[utoipa::path(delete, operation_id = "remove_federation_members", path = "/system/federation/{name}",
    tag = "federation", params(ServiceName), request_body = Request,
    responses((status = 200, description = "Saved; each member's copy reported", body = Answer),
        (status = 404, description = "No such member")))]
async fn remove(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name }): Path<ServiceName>,
    body: Bytes,
) -> AppResult<Json<Answer>> {
    let request = parse(&body)?;
    let change = Change::Remove {
        members: request.members,
        delete: request.delete,
    };
    apply(&state, &caller, &name, change).await
}
