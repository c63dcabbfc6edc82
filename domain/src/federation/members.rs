//! A federated service's members: reading and editing the list (`/system/federation/{svc}`)
//! and copying the service to the member clusters, each result reported.
//!
//! A member's copy reads its inputs from, and writes its outputs to, this platform's store
//! (`minio.<origin>`, with the owner's store keys), so a job handed over finds its file here
//! and its results come back here. In a star the copy has no `clusters` and does not delegate
//! further. In a mesh it keeps the other members and the passwords to reach them, as upstream
//! copies a mesh, so that it can hand jobs on; never the owner's OIDC refresh token.

use std::collections::BTreeMap;

use model::service::federation::{Cluster, Federation, Replica, Topology};
use model::service::{PLATFORM_STORE, Service};
use model::{AppError, AppResult, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

use super::delegate::{clusters, origin, origin_store};
use super::peers::Peers;
use crate::access::Caller;
use crate::db::Database;
use crate::jobs::executor::{Executor, StorageAccess};
use crate::services;
use crate::store::Store;

/// Annotation on a member's copy naming the service it copies (`<origin>/<service>`): its
/// inputs are the origin's, which the origin watches, so the member does not poll them.
pub const REPLICA_OF: &str = "oscar.grycap.io/replica-of";

/// What a member cluster answered when the service was copied there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberResult {
    /// `cluster/service`.
    pub member: String,
    pub ok: bool,
    /// What went wrong, or what was done.
    pub message: String,
}

impl std::fmt::Display for MemberResult {
    /// For people: `cluster/service: copied`, or why not.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.member, self.message)
    }
}

/// A change to the member list (upstream's federation request).
#[derive(Debug, Clone)]
pub enum Change {
    /// Adds members (and the clusters they need).
    Add {
        members: Vec<Replica>,
        clusters: BTreeMap<String, Cluster>,
    },
    /// Replaces the member naming the same cluster and service.
    Update {
        member: Replica,
        clusters: BTreeMap<String, Cluster>,
    },
    /// Removes members; with `delete`, their copies too.
    Remove { members: Vec<Replica>, delete: bool },
}

/// What the platform needs to change a service and reach its members.
pub struct Context<'a> {
    pub db: &'a Database,
    pub s3: &'a Store,
    pub executor: &'a dyn Executor,
    pub storage: &'a StorageAccess,
    pub peers: &'a Peers,
    pub vo_groups: &'a [String],
}

/// The service's federation (its owner or the admin only: it names other clusters).
pub async fn show(db: &Database, caller: &Caller, name: &str) -> AppResult<Federation> {
    let service = services::require_visible(db, caller, name).await?;
    services::authorize_owner(caller, &service)?;
    Ok(current(&service))
}

fn current(service: &Service) -> Federation {
    service.federation_block().unwrap_or_default()
}

/// Applies `change`, saves the service and copies it to its members (removed members' copies
/// are deleted when asked). Returns the federation as saved and each member's result.
pub async fn change(
    cx: &Context<'_>,
    caller: &Caller,
    name: &str,
    change: Change,
) -> AppResult<(Federation, Vec<MemberResult>)> {
    if let Change::Add { members, .. } | Change::Remove { members, .. } = &change
        && members.is_empty()
    {
        return Err(AppError::bad_request(
            "members",
            "must name at least one member",
        ));
    }
    let mut service = services::require_visible(cx.db, caller, name).await?;
    services::authorize_owner(caller, &service)?;
    let mut federation = current(&service);
    let mut removed = Vec::new();
    let new_clusters = match change {
        Change::Add { members, clusters } => {
            for member in members {
                if federation.members.iter().any(|m| m.same_member(&member)) {
                    return Err(AppError::Conflict(format!(
                        "members: {} is already a member",
                        member.label()
                    )));
                }
                federation.members.push(member);
            }
            if federation.topology == Topology::None {
                federation.topology = Topology::Star;
            }
            clusters
        }
        Change::Update { member, clusters } => {
            let Some(slot) = federation.members.iter_mut().find(|m| {
                m.kind.eq_ignore_ascii_case(&member.kind)
                    && m.cluster_id == member.cluster_id
                    && m.service_name == member.service_name
            }) else {
                return Err(AppError::NotFound(format!(
                    "update[0]: {} is not a member",
                    member.label()
                )));
            };
            *slot = member;
            clusters
        }
        Change::Remove { members, delete } => {
            for member in &members {
                let before = federation.members.len();
                federation.members.retain(|m| !m.same_member(member));
                if federation.members.len() == before {
                    return Err(AppError::NotFound(format!(
                        "members: {} is not a member",
                        member.label()
                    )));
                }
            }
            if delete {
                removed = members;
            }
            BTreeMap::new()
        }
    };
    // Removing the last member leaves nothing to delegate to.
    if federation.members.is_empty() {
        federation.topology = Topology::None;
    }
    if !new_clusters.is_empty() {
        let mut all = service
            .inactive
            .get("clusters")
            .cloned()
            .unwrap_or_else(|| json!({}));
        for (id, cluster) in new_clusters {
            all[id] = serde_json::to_value(cluster).unwrap_or(Value::Null);
        }
        service.inactive.insert("clusters".into(), all);
    }
    service.set_federation(&federation);
    let saved = services::update(
        cx.db,
        cx.s3,
        cx.executor,
        caller,
        cx.vo_groups,
        service,
        Timestamp::now(),
    )
    .await?;
    let mut results = propagate(cx, &saved).await?;
    if removed.is_empty() {
        return Ok((current(&saved), results));
    }
    let secrets = services::load_secrets(cx.db, &saved.name).await?;
    let reach = clusters(&saved, &secrets);
    for member in removed.iter().filter(|m| m.is_oscar()) {
        let result = match reach.get(&member.cluster_id) {
            Some(cluster) => cx.peers.delete_service(cluster, &member.service_name).await,
            None => Err(format!("cluster {:?} is not defined", member.cluster_id)),
        };
        results.push(MemberResult {
            member: member.label(),
            ok: result.is_ok(),
            message: result.map_or_else(|why| format!("not deleted: {why}"), |()| "deleted".into()),
        });
    }
    Ok((current(&saved), results))
}

/// [`propagate`] as lines for people: `cluster/service: copied`, or why not.
pub async fn report(cx: &Context<'_>, service: &Service) -> AppResult<Vec<String>> {
    Ok(propagate(cx, service)
        .await?
        .iter()
        .map(ToString::to_string)
        .collect())
}

/// Copies the service (as stored, secrets put back) to every OSCAR member. Nothing is
/// copied for a service that is not federated.
pub async fn propagate(cx: &Context<'_>, service: &Service) -> AppResult<Vec<MemberResult>> {
    let Some(federation) = service.federation() else {
        return Ok(Vec::new());
    };
    let secrets = services::load_secrets(cx.db, &service.name).await?;
    let reach = clusters(service, &secrets);
    // Keys that reach this service's buckets only, while the member is one; with an
    // external store the service must declare `minio.<cluster_id>` itself, with keys it may
    // share.
    let declared = crate::jobs::executor::provider_config(service, &secrets)
        .storage_providers
        .get("minio")
        .and_then(|m| m.get(origin(service)))
        .cloned();
    let mut results = Vec::new();
    for member in federation.members.iter().filter(|m| m.is_oscar()) {
        let store = match (
            &declared,
            crate::store_keys::for_member(cx.storage, service, member),
        ) {
            (Some(declared), _) => Ok(serde_json::to_value(declared).unwrap_or_default()),
            (None, Some((access_key, secret_key))) => Ok(json!({
                "endpoint": cx.storage.public_endpoint,
                // Checked certificates (nothing to check over http://).
                "verify": true,
                "access_key": access_key,
                "secret_key": secret_key,
                "region": cx.storage.region,
            })),
            (None, None) => Err(format!(
                "the platform's store is external: declare storage_providers.minio.{} with keys the members may use",
                origin(service)
            )),
        };
        let result = match (reach.get(&member.cluster_id), store) {
            (_, Err(why)) => Err(why),
            (Some(cluster), Ok(store)) => {
                let copy = member_copy(service, &secrets, &federation, member, &store);
                cx.peers.put_service(cluster, &copy).await
            }
            (None, _) => Err(format!("cluster {:?} is not defined", member.cluster_id)),
        };
        if let Err(why) = &result {
            tracing::warn!(service = %service.name, member = %member.label(), %why, "cannot copy the service to a federation member");
        }
        results.push(MemberResult {
            member: member.label(),
            ok: result.is_ok(),
            message: result.map_or_else(|why| format!("not copied: {why}"), |()| "copied".into()),
        });
    }
    Ok(results)
}

/// The service as `member` gets it (see the module's comment).
pub fn member_copy(
    service: &Service,
    secrets: &BTreeMap<String, String>,
    federation: &Federation,
    member: &Replica,
    store: &Value,
) -> Service {
    let mut copy = service.clone();
    copy.name = member.service_name.clone();
    copy.owner.clear();
    copy.token.clear();
    for (key, value) in secrets {
        if let Some(name) = key.strip_prefix("environment.secrets.") {
            copy.environment
                .secrets
                .insert(name.to_string(), value.clone());
        }
    }
    let provider = origin_store(service);
    for io in copy.input.iter_mut().chain(copy.output.iter_mut()) {
        if io.storage_provider == PLATFORM_STORE {
            io.storage_provider = provider.clone();
        }
    }
    let config = crate::jobs::executor::provider_config(service, secrets);
    let mut providers =
        serde_json::to_value(config.storage_providers).unwrap_or_else(|_| json!({}));
    let id = provider.trim_start_matches("minio.").to_string();
    providers["minio"][id] = store.clone();
    copy.inactive.insert("storage_providers".into(), providers);
    // A volume is this cluster's; the member has none of that name.
    copy.inactive.remove("volume");
    match federation.topology {
        Topology::Mesh => {
            let others = Federation {
                members: federation
                    .members
                    .iter()
                    .filter(|m| !m.same_member(member))
                    .cloned()
                    .collect(),
                ..federation.clone()
            };
            copy.set_federation(&others);
            // The others' clusters with their passwords. A refresh token is the owner's
            // session with this cluster's provider (one that rotates it would end the one
            // left here): the member's admin sets one of their own. Credentials not known are
            // left out, not blank: blank keeps a stored value, and the member has none yet.
            let reached: serde_json::Map<String, Value> = clusters(service, secrets)
                .into_iter()
                .filter(|(id, _)| others.members.iter().any(|m| &m.cluster_id == id))
                .map(|(id, cluster)| {
                    let mut fields = json!({
                        "endpoint": cluster.endpoint,
                        "auth_user": cluster.auth_user,
                        "ssl_verify": cluster.ssl_verify,
                    });
                    if !cluster.auth_password.is_empty() {
                        fields["auth_password"] = cluster.auth_password.into();
                    }
                    (id, fields)
                })
                .collect();
            copy.inactive
                .insert("clusters".into(), Value::Object(reached));
        }
        _ => {
            copy.set_federation(&Federation::default());
            copy.inactive.remove("clusters");
        }
    }
    copy.annotations.insert(
        REPLICA_OF.into(),
        format!("{}/{}", origin(service), service.name),
    );
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mesh() -> (Service, BTreeMap<String, String>) {
        let service = serde_json::from_value(json!({
            "name": "edge", "image": "i", "script": "s", "cluster_id": "pi",
            "federation": {"topology": "mesh", "members": [
                {"type": "oscar", "cluster_id": "cloud", "service_name": "edge"},
                {"type": "oscar", "cluster_id": "hpc", "service_name": "edge"},
                {"type": "oscar", "cluster_id": "egi", "service_name": "edge"}]},
            "clusters": {
                "cloud": {"endpoint": "https://cloud", "auth_user": "oscar"},
                "hpc": {"endpoint": "https://hpc", "auth_user": "oscar"},
                "egi": {"endpoint": "https://egi"}}
        }))
        .unwrap();
        let secrets = BTreeMap::from([
            ("clusters.cloud.auth_password".into(), "cloud-pw".into()),
            ("clusters.hpc.auth_password".into(), "hpc-pw".into()),
            ("clusters.egi.refresh_token".into(), "owners-token".into()),
        ]);
        (service, secrets)
    }

    #[test]
    fn a_mesh_copy_reaches_the_other_members_with_their_passwords_only() {
        let (service, secrets) = mesh();
        let federation = service.federation().unwrap();
        let cloud = &federation.members[0];
        let copy = member_copy(&service, &secrets, &federation, cloud, &json!({}));
        let members: Vec<_> = copy
            .federation()
            .unwrap()
            .members
            .iter()
            .map(Replica::label)
            .collect();
        assert_eq!(members, ["hpc/edge", "egi/edge"]);
        let clusters = &copy.inactive["clusters"];
        // Not its own cluster: the copy never reaches itself.
        assert!(clusters.get("cloud").is_none(), "{clusters}");
        assert_eq!(clusters["hpc"]["auth_password"], "hpc-pw");
        assert_eq!(clusters["hpc"]["endpoint"], "https://hpc");
        // Reached with the owner's token here: neither the token nor a blank password goes.
        assert_eq!(clusters["egi"]["endpoint"], "https://egi");
        assert!(clusters["egi"].get("auth_password").is_none(), "{clusters}");
        assert!(
            !serde_json::to_string(&copy)
                .unwrap()
                .contains("owners-token")
        );
    }

    #[test]
    fn a_star_copy_has_no_clusters_and_no_members() {
        let (mut service, secrets) = mesh();
        let mut federation = service.federation().unwrap();
        federation.topology = Topology::Star;
        service.set_federation(&federation);
        let copy = member_copy(
            &service,
            &secrets,
            &federation,
            &federation.members[0],
            &json!({}),
        );
        assert!(copy.federation().is_none());
        assert!(!copy.inactive.contains_key("clusters"));
        let text = serde_json::to_string(&copy).unwrap();
        assert!(
            !text.contains("-pw") && !text.contains("owners-token"),
            "{text}"
        );
    }
}
