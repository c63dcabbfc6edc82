//! Handing a job that waits here too long to a federation member, exactly once.
//!
//! The durable queue carries the hand-off. The job is held with a lease, as a running job
//! is: no server claims or offers it meanwhile, this server renews the lease, and it expires
//! when the server dies. The member about to be asked is written to `delegated_to` before
//! the request, and only the member's 201 turns the job `delegated`. A job found with
//! `delegated_to` set (the answer was lost to a timeout or a crash) is neither run here nor
//! offered elsewhere until that member says whether it holds it (`GET
//! /system/logs/<service>/<job>` there): members keep the job's name, so an offer made twice
//! makes one job.

use std::collections::BTreeMap;
use std::time::Duration;

use model::function::event::{self, Event};
use model::service::federation::{Cluster, Delegation, Federation, Replica};
use model::service::{PLATFORM_STORE, Service};
use model::{AppError, AppResult, Timestamp};
use rand::seq::SliceRandom;
use serde_json::json;

use super::peers::{Answer, Peers};
use crate::db::Database;
use crate::jobs::{Jobs, KEPT_EVENT_BYTES, event_of, logs};

/// How long members are left alone after none took a job (at least; the service's
/// threshold when it is longer), and how long until a member whose answer was lost is asked
/// again.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// What the queue knows of a pending job's wait.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Waiting {
    pub created_at: Timestamp,
    /// Not offered again before then (every member refused it last time).
    pub delegate_after: Option<Timestamp>,
    /// The member it was offered to, whose answer was lost.
    pub delegated_to: Option<String>,
    /// Handed here by another cluster: never handed on (no loops).
    pub delegated_from: Option<String>,
}

/// Whether a job of `service` that cannot start here now may be offered to the members: the
/// service is federated, the job was not handed here, it has waited the service's threshold
/// and the members' last refusal is old enough.
pub fn due(service: &Service, waiting: &Waiting, now: Timestamp) -> bool {
    let Some(federation) = service.federation() else {
        return false;
    };
    waiting.delegated_from.is_none()
        && now.since(waiting.created_at) >= Duration::from_secs(federation.rescheduler_threshold)
        && waiting.delegate_after.is_none_or(|after| now >= after)
}

/// Whether the members have yet to be asked for this job: the service is federated, the job
/// was not handed here, and no round of offers ended with every member refusing.
pub fn untried(service: &Service, waiting: &Waiting) -> bool {
    service.federation().is_some()
        && waiting.delegated_from.is_none()
        && waiting.delegate_after.is_none()
}

/// Holds `job` for this server (`instance`) while it is offered, and reads its wait as it
/// is now (another server may have offered it since it was listed); None when another
/// server (or an earlier round) has it, it is not due, or no longer pending.
pub async fn hold(
    db: &Database,
    instance: &str,
    job: &str,
    until: Timestamp,
) -> AppResult<Option<Waiting>> {
    let now = Timestamp::now();
    Ok(sqlx::query_as(
        "UPDATE jobs SET lease_owner = $1, lease_until = $2
         WHERE name = $3 AND state = 'pending' AND lease_owner IS NULL AND run_after <= $4
         RETURNING created_at, delegate_after, delegated_to, delegated_from",
    )
    .bind(instance)
    .bind(until)
    .bind(job)
    .bind(now)
    .fetch_optional(db.pool())
    .await?)
}

/// Takes back a job this server runs but its executor has not started (a cluster with no
/// room for it), to offer it: pending again, still held by this server, its attempt not
/// counted. None when it is no longer this server's running job, was handed here (never
/// handed on), or the members refused it too recently to be asked again.
pub async fn take_back(
    db: &Database,
    instance: &str,
    job: &str,
    reason: &str,
) -> AppResult<Option<Waiting>> {
    let now = Timestamp::now();
    Ok(sqlx::query_as(
        "UPDATE jobs SET state = 'pending', attempts = attempts - 1, started_at = NULL,
                         run_after = $1, reason = $2
         WHERE name = $3 AND state = 'running' AND lease_owner = $4 AND stop_requested IS NULL
           AND delegated_from IS NULL AND (delegate_after IS NULL OR delegate_after <= $1)
         RETURNING created_at, delegate_after, delegated_to, delegated_from",
    )
    .bind(now)
    .bind(reason)
    .bind(job)
    .bind(instance)
    .fetch_optional(db.pool())
    .await?)
}

/// Offers whose server stopped renewing them (it died): the jobs are pending again, still
/// naming the member they were offered to. Returns them.
pub async fn recover_expired(db: &Database) -> AppResult<Vec<(String, String)>> {
    let now = Timestamp::now();
    Ok(sqlx::query_as(
        "UPDATE jobs SET lease_owner = NULL, lease_until = NULL
         WHERE state = 'pending' AND lease_owner IS NOT NULL AND lease_until < $1
         RETURNING name, service",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await?)
}

/// This server's offers (or just `job`), given back: when it stops, or an offer is not to be
/// made or cannot go on.
pub async fn let_go(db: &Database, instance: &str, job: Option<&str>) -> AppResult<()> {
    sqlx::query(
        "UPDATE jobs SET lease_owner = NULL, lease_until = NULL
         WHERE state = 'pending' AND lease_owner = $1 AND ($2 IS NULL OR name = $2)",
    )
    .bind(instance)
    .bind(job)
    .execute(db.pool())
    .await?;
    Ok(())
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
        Event::Storage(storage)
            if storage.provider == PLATFORM_STORE && !event::is_wrapped(event.as_bytes()) =>
        {
            json!({"storage_provider": origin_store(service), "event": event}).to_string()
        }
        _ => event.to_string(),
    }
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
        if let Some(token) = secrets.get(&format!("clusters.{id}.refresh_token")) {
            cluster.refresh_token = token.clone();
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

/// Offers a held job: asks the member that may hold it already, else the members in the
/// policy's order. The job's log says whom it asked and what each answered.
pub async fn hand_off(
    db: &Database,
    jobs: &Jobs,
    job: &str,
    service: &Service,
    waiting: &Waiting,
) -> AppResult<()> {
    let (log, writer) = logs::writer(db.clone(), jobs.clone(), job.to_string());
    let offer = Offer { db, jobs, job, log };
    let result = offer.run(service, waiting).await;
    if result.is_err() {
        // This server renews its holds: one it cannot finish must go now.
        if let Err(err) = let_go(db, jobs.instance(), Some(job)).await {
            tracing::warn!(%job, %err, "cannot give back the job; its hold expires when the server stops");
        }
    }
    drop(offer);
    let _ = writer.await;
    jobs.changed(&service.name, job);
    result
}

/// A held job being offered. Every change to its row is conditional on this server's hold:
/// a job stopped or deleted meanwhile ends the offer.
struct Offer<'a> {
    db: &'a Database,
    jobs: &'a Jobs,
    job: &'a str,
    log: logs::LogSink,
}

impl Offer<'_> {
    async fn run(&self, service: &Service, waiting: &Waiting) -> AppResult<()> {
        let peers = self.jobs.peers();
        let federation = service.federation_block().unwrap_or_default();
        let secrets = crate::services::load_secrets(self.db, &service.name).await?;
        let clusters = clusters(service, &secrets);
        let event = member_event(service, &event_of(self.db, self.job).await?);
        let from = origin(service);
        if let Some(label) = &waiting.delegated_to {
            let Some(member) = federation.members.iter().find(|m| &m.label() == label) else {
                let reason = format!(
                    "it was offered to {label}, whose answer was lost, and {label} is no longer a federation member: only it can say whether it runs the job. Retry asks it again while it is a member; Run again runs a copy here"
                );
                self.note(&reason).await;
                return self.dead_letter(&reason).await;
            };
            let cluster = clusters.get(&member.cluster_id);
            // Another cluster is asked whether it has the job; an endpoint gets it again.
            let answer = if member.is_oscar() {
                peers.holds(member, cluster, self.job).await
            } else {
                peers
                    .hand_off(member, cluster, &event, self.job, from)
                    .await
            };
            match answer {
                Answer::Accepted => return self.delegated(member, cluster).await,
                Answer::Refused(why) => {
                    self.note(format!("{label} does not have the job ({why})"))
                        .await;
                    self.record(None).await?;
                }
                Answer::Unknown(why) => return self.unanswered(label, &why).await,
            }
        }
        let Some(federation) = service.federation() else {
            // No longer federated: it runs here.
            return self.keep(Duration::ZERO).await;
        };
        let (members, skipped) = in_order(peers, &federation, &clusters, service).await;
        for why in skipped {
            self.note(format!("federation member {why}; not asked"))
                .await;
        }
        let waited = Timestamp::now().since(waiting.created_at).as_secs();
        for member in &members {
            let label = member.label();
            let cluster = clusters.get(&member.cluster_id);
            self.record(Some(&label)).await?;
            self.note(format!(
                "waited {waited} s here: handing the job to {label}"
            ))
            .await;
            match peers
                .hand_off(member, cluster, &event, self.job, from)
                .await
            {
                Answer::Accepted => return self.delegated(member, cluster).await,
                Answer::Refused(why) => {
                    self.note(format!("{label} did not take the job: {why}"))
                        .await;
                    self.record(None).await?;
                }
                Answer::Unknown(why) => return self.unanswered(&label, &why).await,
            }
        }
        self.note("no federation member took the job; it stays here")
            .await;
        let pause = RETRY_AFTER.max(Duration::from_secs(federation.rescheduler_threshold));
        self.keep(pause).await
    }

    async fn note(&self, text: impl std::fmt::Display) {
        let _ = self.log.send(logs::note(text)).await;
    }

    /// Writes down the member about to be asked (None: it refused).
    async fn record(&self, member: Option<&str>) -> AppResult<()> {
        let done = sqlx::query(
            "UPDATE jobs SET delegated_to = $1
             WHERE name = $2 AND lease_owner = $3 AND state = 'pending'",
        )
        .bind(member)
        .bind(self.job)
        .bind(self.jobs.instance())
        .execute(self.db.pool())
        .await?;
        self.still_held(done.rows_affected())
    }

    /// The member took it: the job is over here (a large event is not kept, as for any job
    /// that ended).
    async fn delegated(&self, member: &Replica, cluster: Option<&Cluster>) -> AppResult<()> {
        let done = sqlx::query(&format!(
            "UPDATE jobs SET state = 'delegated', delegated_url = $1, finished_at = $2,
                             lease_owner = NULL, lease_until = NULL, reason = NULL,
                             event = CASE WHEN LENGTH(event) > {KEPT_EVENT_BYTES}
                                          THEN '' ELSE event END
             WHERE name = $3 AND lease_owner = $4 AND state = 'pending'"
        ))
        .bind(job_page(member, cluster, self.job))
        .bind(Timestamp::now())
        .bind(self.job)
        .bind(self.jobs.instance())
        .execute(self.db.pool())
        .await?;
        self.still_held(done.rows_affected())?;
        self.note(format!("{} took the job; it runs there", member.label()))
            .await;
        self.jobs.metrics().job_ran("delegated", Duration::ZERO);
        Ok(())
    }

    /// Nobody took it: it may run here at once; members are asked again after `pause`.
    async fn keep(&self, pause: Duration) -> AppResult<()> {
        let now = Timestamp::now();
        let done = sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, delegated_to = NULL,
                             run_after = $1, delegate_after = $2
             WHERE name = $3 AND lease_owner = $4 AND state = 'pending'",
        )
        .bind(now)
        .bind(now + pause)
        .bind(self.job)
        .bind(self.jobs.instance())
        .execute(self.db.pool())
        .await?;
        self.still_held(done.rows_affected())
    }

    fn still_held(&self, rows: u64) -> AppResult<()> {
        if rows == 1 {
            Ok(())
        } else {
            Err(AppError::Conflict(format!(
                "job {:?} was stopped or deleted while it was offered",
                self.job
            )))
        }
    }

    /// The member's answer was lost: only it can be asked, later; after as many tries as a
    /// job has attempts, the job is dead-lettered saying so.
    async fn unanswered(&self, label: &str, why: &str) -> AppResult<()> {
        let tries: (i64,) = sqlx::query_as(
            "UPDATE jobs SET offer_tries = offer_tries + 1, lease_owner = NULL,
                             lease_until = NULL, run_after = $3
             WHERE name = $1 AND lease_owner = $2 AND state = 'pending' RETURNING offer_tries",
        )
        .bind(self.job)
        .bind(self.jobs.instance())
        .bind(Timestamp::now() + RETRY_AFTER)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| self.still_held(0).unwrap_err())?;
        if tries.0 >= i64::from(self.jobs.settings().max_attempts) {
            let reason = format!(
                "{label} did not answer whether it runs the job ({why}), {} times; Retry asks it again",
                tries.0
            );
            self.note(&reason).await;
            sqlx::query(
                "UPDATE jobs SET state = 'dead_lettered', reason = $1, finished_at = $2
                 WHERE name = $3 AND state = 'pending' AND lease_owner IS NULL",
            )
            .bind(&reason)
            .bind(Timestamp::now())
            .bind(self.job)
            .execute(self.db.pool())
            .await?;
        } else {
            self.note(format!(
                "no answer from {label} ({why}); it may have the job, so it is asked again in {} s and no other member is",
                RETRY_AFTER.as_secs()
            ))
            .await;
        }
        Ok(())
    }

    /// Ends the offer with the job dead-lettered (still naming its member, for Retry).
    async fn dead_letter(&self, reason: &str) -> AppResult<()> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'dead_lettered', reason = $1, finished_at = $2,
                             lease_owner = NULL, lease_until = NULL
             WHERE name = $3 AND lease_owner = $4 AND state = 'pending'",
        )
        .bind(reason)
        .bind(Timestamp::now())
        .bind(self.job)
        .bind(self.jobs.instance())
        .execute(self.db.pool())
        .await?;
        self.still_held(done.rows_affected())
    }
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
        let created_at = Timestamp::now();
        let waiting = |after: Option<Timestamp>, from: Option<&str>| Waiting {
            created_at,
            delegate_after: after,
            delegated_to: None,
            delegated_from: from.map(Into::into),
        };
        let later = created_at + Duration::from_secs(6);
        assert!(!due(&service, &waiting(None, None), created_at));
        assert!(due(&service, &waiting(None, None), later));
        // Handed here by another cluster: never handed on.
        assert!(!due(&service, &waiting(None, Some("pi")), later));
        // Every member refused it a moment ago: not yet.
        let refused = waiting(Some(later + RETRY_AFTER), None);
        assert!(!due(&service, &refused, later));
        assert!(due(&service, &refused, later + RETRY_AFTER));
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
            &Peers::new(false),
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
