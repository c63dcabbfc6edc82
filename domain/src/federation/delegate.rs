//! Handing a job that waits here too long to a federation member, exactly once.
//!
//! The durable queue carries the hand-off: the job is held (its `run_after` moved past the
//! hand-off, which no other server then claims), the member about to be asked is written to
//! `delegated_to`, and only the member's 201 turns the job `delegated`. A crash at any point
//! leaves a pending job: one without `delegated_to` is simply queued, one with it is offered
//! to that member again (it keeps the job's name, so a member that already stored it answers
//! 201 without a second job) and to no other.

use std::collections::BTreeMap;
use std::time::Duration;

use model::function::event::Event;
use model::service::federation::{Cluster, Delegation, Federation, Replica};
use model::service::{PLATFORM_STORE, Service};
use model::{AppResult, Timestamp};
use rand::seq::SliceRandom;
use serde_json::json;

use super::peers::{Answer, Peers};
use crate::db::Database;
use crate::jobs::{Jobs, event_of, logs};

/// How long a job is held while it is handed over: past the hand-off's calls (20 s each).
pub const HOLD: Duration = Duration::from_secs(30);

/// Whether a pending job of `service` is due for a member: the service is federated, the job
/// was not handed here by another cluster (no loops), and it has waited long enough (or a
/// member may already hold it).
pub fn due(service: &Service, waiting: &Waiting, now: Timestamp) -> bool {
    let Some(federation) = service.federation() else {
        return false;
    };
    if waiting.delegated_from.is_some() {
        return false;
    }
    waiting.delegated_to.is_some()
        || now.since(waiting.since) >= Duration::from_secs(federation.rescheduler_threshold)
}

/// What the queue knows of a pending job's wait.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Waiting {
    /// When it was queued, or when every member last refused it.
    pub since: Timestamp,
    pub delegated_to: Option<String>,
    pub delegated_from: Option<String>,
}

/// Holds `job` for a hand-off; false when another server (or round) already has it.
pub async fn hold(db: &Database, job: &str) -> AppResult<bool> {
    let now = Timestamp::now();
    let held = sqlx::query(
        "UPDATE jobs SET run_after = $1 WHERE name = $2 AND state = 'pending' AND run_after <= $3",
    )
    .bind(now + HOLD)
    .bind(job)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(held.rows_affected() == 1)
}

/// The name a cluster gives itself to its members: the service's `cluster_id`.
pub fn origin(service: &Service) -> &str {
    if service.cluster_id.is_empty() {
        "oscar"
    } else {
        &service.cluster_id
    }
}

/// The provider members read the platform store as: `minio.<origin>`.
pub fn origin_store(service: &Service) -> String {
    format!("minio.{}", origin(service))
}

/// The event as a member gets it: a storage event in this platform's store is wrapped with
/// the provider the member reads it from (upstream's delegation form); anything else (a
/// payload, an event already naming its provider) goes as it is.
pub fn member_event(service: &Service, event: &str) -> String {
    match Event::parse(event.as_bytes()) {
        Event::Storage(storage) if storage.provider == PLATFORM_STORE && !is_wrapped(event) => {
            json!({"storage_provider": origin_store(service), "event": event}).to_string()
        }
        _ => event.to_string(),
    }
}

fn is_wrapped(event: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(event)
        .is_ok_and(|v| v.get("storage_provider").is_some())
}

/// The service's `clusters`, their credentials put back from the stored secrets.
pub fn clusters(
    service: &Service,
    secrets: &BTreeMap<String, String>,
) -> BTreeMap<String, Cluster> {
    let mut clusters = service.clusters();
    for (id, cluster) in clusters.iter_mut() {
        if let Some(password) = secrets.get(&format!("clusters.{id}.auth_password")) {
            cluster.auth_password = password.clone();
        }
    }
    clusters
}

/// Members in the order the service's policy asks them, and why any are left out.
pub async fn in_order(
    peers: &Peers,
    federation: &Federation,
    clusters: &BTreeMap<String, Cluster>,
    service: &Service,
) -> (Vec<Replica>, Vec<String>) {
    let mut members = federation.members.clone();
    let mut skipped = Vec::new();
    match federation.delegation {
        Delegation::Static => members.sort_by_key(|m| m.priority),
        Delegation::Random => members.shuffle(&mut rand::rng()),
        Delegation::LoadBased => {
            // Members with a status, most room first; endpoints (no status) after them.
            let mut rated = Vec::new();
            let mut endpoints = Vec::new();
            for member in members {
                let cluster = clusters.get(&member.cluster_id);
                match (member.is_oscar(), cluster) {
                    (true, Some(cluster)) => match peers.load(cluster, service).await {
                        Ok(load) if load.fits => rated.push((load.room, member)),
                        Ok(_) => skipped.push(format!(
                            "{}: no node there has the CPU and memory the service asks for",
                            member.label()
                        )),
                        Err(why) => skipped.push(format!("{}: {why}", member.label())),
                    },
                    _ => endpoints.push(member),
                }
            }
            rated.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.priority.cmp(&b.1.priority)));
            endpoints.sort_by_key(|m| m.priority);
            members = rated.into_iter().map(|(_, m)| m).chain(endpoints).collect();
        }
    }
    (members, skipped)
}

/// Where a member shows the job: its dashboard's job page for another cluster.
fn job_page(member: &Replica, cluster: Option<&Cluster>, job: &str) -> Option<String> {
    let cluster = cluster.filter(|_| member.is_oscar())?;
    Some(super::peers::url(
        &cluster.endpoint,
        &format!("services/{}/jobs/{job}", member.service_name),
    ))
}

/// Offers a held job to the members; returns whether one took it. The job's log says which
/// member was asked and what each answered.
pub async fn hand_off(
    db: &Database,
    jobs: &Jobs,
    peers: &Peers,
    job: &str,
    service: &Service,
    waiting: &Waiting,
) -> AppResult<bool> {
    let Some(federation) = service.federation() else {
        return Ok(false);
    };
    let secrets = crate::services::load_secrets(db, &service.name).await?;
    let clusters = clusters(service, &secrets);
    let event = member_event(service, &event_of(db, job).await?);
    let (log, writer) = logs::writer(db.clone(), jobs.clone(), job.to_string());
    let note = |text: String| {
        let log = log.clone();
        async move {
            let _ = log.send(logs::note(text)).await;
        }
    };
    let (members, skipped) = match &waiting.delegated_to {
        // A member that may hold it already is the only one asked.
        Some(label) => {
            let member = federation.members.iter().find(|m| &m.label() == label);
            (member.cloned().into_iter().collect::<Vec<_>>(), Vec::new())
        }
        None => in_order(peers, &federation, &clusters, service).await,
    };
    for why in skipped {
        note(format!("federation member {why}; not asked")).await;
    }
    let mut outcome = Ok(false);
    for member in &members {
        let label = member.label();
        let cluster = clusters.get(&member.cluster_id);
        record(db, job, Some(&label)).await?;
        note(format!(
            "waited {} s here: handing the job to {label}",
            Timestamp::now().since(waiting.since).as_secs()
        ))
        .await;
        match peers
            .hand_off(member, cluster, &event, job, origin(service))
            .await
        {
            Answer::Accepted => {
                let page = job_page(member, cluster, job);
                delegated(db, job, page.as_deref()).await?;
                note(format!("{label} took the job; it runs there")).await;
                jobs.metrics().job_ran("delegated", Duration::ZERO);
                outcome = Ok(true);
                break;
            }
            Answer::Refused(why) => {
                note(format!("{label} did not take the job: {why}")).await;
                record(db, job, None).await?;
            }
            Answer::Unknown(why) => {
                note(format!(
                    "no answer from {label} ({why}); it may hold the job, so it is asked again in {} s",
                    HOLD.as_secs()
                ))
                .await;
                drop(log);
                let _ = writer.await;
                return Ok(false);
            }
        }
    }
    if matches!(outcome, Ok(false)) {
        if waiting.delegated_to.is_some() && members.is_empty() {
            // The member it was handed to left the federation: nothing can tell.
            note(
                "the member the job was offered to is no longer in the federation; it runs here"
                    .into(),
            )
            .await;
        } else {
            note("no federation member took the job; it stays here".into()).await;
        }
        release(db, job).await?;
    }
    drop(log);
    let _ = writer.await;
    jobs.changed(&service.name, job);
    outcome
}

/// Writes (or clears) the member the job is being offered to, before it is asked.
async fn record(db: &Database, job: &str, member: Option<&str>) -> AppResult<()> {
    sqlx::query("UPDATE jobs SET delegated_to = $1 WHERE name = $2 AND state = 'pending'")
        .bind(member)
        .bind(job)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The member took it: the job is over here.
async fn delegated(db: &Database, job: &str, page: Option<&str>) -> AppResult<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'delegated', delegated_url = $1, finished_at = $2,
                         lease_owner = NULL, lease_until = NULL
         WHERE name = $3 AND state = 'pending'",
    )
    .bind(page)
    .bind(Timestamp::now())
    .bind(job)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Nobody took it: it may run here at once, and waits a whole threshold before members are
/// asked again.
async fn release(db: &Database, job: &str) -> AppResult<()> {
    let now = Timestamp::now();
    sqlx::query(
        "UPDATE jobs SET run_after = $1, delegate_after = $1, delegated_to = NULL
         WHERE name = $2 AND state = 'pending'",
    )
    .bind(now)
    .bind(job)
    .execute(db.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::function::event::minio_event;

    fn federated() -> Service {
        serde_json::from_value(json!({
            "name": "edge", "image": "i", "script": "s", "cluster_id": "pi",
            "input": [{"storage_provider": "minio.default", "path": "edge/in"}],
            "federation": {"topology": "star", "rescheduler_threshold": 5, "members": [
                {"type": "oscar", "cluster_id": "cloud", "service_name": "edge", "priority": 2},
                {"type": "endpoint", "url": "http://x/job", "priority": 0}]},
            "clusters": {"cloud": {"endpoint": "http://cloud"}}
        }))
        .unwrap()
    }

    #[test]
    fn only_federated_jobs_that_waited_long_enough_are_due() {
        let service = federated();
        let since = Timestamp::now();
        let waiting = |to: Option<&str>, from: Option<&str>| Waiting {
            since,
            delegated_to: to.map(Into::into),
            delegated_from: from.map(Into::into),
        };
        let later = since + Duration::from_secs(6);
        assert!(!due(&service, &waiting(None, None), since));
        assert!(due(&service, &waiting(None, None), later));
        // Handed here by another cluster: never handed on.
        assert!(!due(&service, &waiting(None, Some("pi")), later));
        // A member may hold it: asked again at once.
        assert!(due(&service, &waiting(Some("cloud/edge"), None), since));
        let plain = Service::default();
        assert!(!due(&plain, &waiting(None, None), later));
    }

    #[test]
    fn platform_store_events_are_wrapped_with_the_origin_store() {
        let service = federated();
        let event = minio_event("Put", "edge", "in/a.txt", Some("e"), Some(1), "t").to_string();
        let wrapped: serde_json::Value =
            serde_json::from_str(&member_event(&service, &event)).unwrap();
        assert_eq!(wrapped["storage_provider"], "minio.pi");
        assert_eq!(wrapped["event"], event);
        // Already naming its provider, or a payload: unchanged.
        let again = member_event(&service, &wrapped.to_string());
        assert_eq!(again, wrapped.to_string());
        assert_eq!(member_event(&service, "{\"x\": 1}"), "{\"x\": 1}");
    }

    #[tokio::test]
    async fn static_order_is_by_priority() {
        let service = federated();
        let federation = service.federation().unwrap();
        let (members, skipped) = in_order(
            &Peers::default(),
            &federation,
            &service.clusters(),
            &service,
        )
        .await;
        let labels: Vec<_> = members.iter().map(Replica::label).collect();
        assert_eq!(labels, ["http://x/job", "cloud/edge"]);
        assert!(skipped.is_empty());
    }
}
