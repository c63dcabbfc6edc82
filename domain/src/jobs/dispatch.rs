//! The dispatcher: claims pending jobs within each service's concurrency limit, runs them
//! through the executor, records outcomes, renews its leases and takes over expired ones.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use model::function::Report;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::executor::{EventBody, Execution, Finished, Requested};
use super::queue::{self, Outcome};
use super::{Jobs, MAX_CONCURRENCY_ANNOTATION, logs};
use crate::db::Database;
use crate::federation::delegate;
use crate::quotas::{Fit, Limits};
use crate::services;
use model::service::Service;
use model::{AppError, AppResult, Timestamp};

/// How often pending jobs are looked for without a wake-up (retries whose time came, jobs
/// queued by another server).
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Jobs looked at per round.
const ROUND: i64 = 200;
const CLEANUP_EVERY: Duration = Duration::from_secs(3600);

/// Runs until `stop` turns true; then gives its running jobs back to the queue.
pub async fn run(db: Database, jobs: Jobs, mut stop: watch::Receiver<bool>) {
    let mut tasks = JoinSet::new();
    let mut maintenance = tokio::time::interval(jobs.settings().lease / 3);
    let mut cleanup = tokio::time::interval(CLEANUP_EVERY);
    loop {
        if let Err(err) = dispatch_ready(&db, &jobs, &mut tasks).await {
            tracing::warn!(%err, "cannot dispatch jobs");
        }
        tokio::select! {
            _ = jobs.woken() => {}
            Some(_) = tasks.join_next() => {}
            _ = maintenance.tick() => maintain(&db, &jobs).await,
            _ = cleanup.tick() => {
                let cutoff = Timestamp::now() - jobs.settings().retention;
                match super::delete_expired(&db, cutoff).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "deleted jobs past their retention"),
                    Err(err) => tracing::warn!(%err, "cannot delete old jobs"),
                }
                if let Err(err) = crate::usage::prune(&db, Timestamp::now()).await {
                    tracing::warn!(%err, "cannot forget old usage records");
                }
            }
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = stop.changed() => break,
        }
    }
    // Stopping: the processes die with their tasks; their jobs are queued again at once so a
    // restart (or another server) picks them up without waiting for the lease to expire.
    tasks.shutdown().await;
    if let Err(err) = queue::release(&db, jobs.instance(), None).await {
        tracing::warn!(%err, "cannot release running jobs");
    }
    if let Err(err) = delegate::let_go(&db, jobs.instance(), None).await {
        tracing::warn!(%err, "cannot give back the jobs offered to federation members");
    }
}

async fn maintain(db: &Database, jobs: &Jobs) {
    let until = Timestamp::now() + jobs.settings().lease;
    match queue::renew_leases(db, jobs.instance(), until).await {
        // Stops asked of another server for jobs running here.
        Ok(stops) => {
            for (job, reason) in stops {
                jobs.stop_here(&job, &reason);
            }
        }
        Err(err) => tracing::warn!(%err, "cannot renew job leases"),
    }
    let mut recovered = queue::recover_expired(db, jobs.settings().max_attempts)
        .await
        .unwrap_or_else(|err| {
            tracing::warn!(%err, "cannot recover expired jobs");
            Vec::new()
        });
    match delegate::recover_expired(db).await {
        Ok(offers) => recovered.extend(offers),
        Err(err) => tracing::warn!(%err, "cannot recover expired offers to federation members"),
    }
    for (job, service) in recovered {
        jobs.changed(&service, &job);
    }
}

async fn dispatch_ready(db: &Database, jobs: &Jobs, tasks: &mut JoinSet<()>) -> AppResult<()> {
    if !jobs.store_ready().await {
        return Ok(());
    }
    let ready = queue::ready(db, ROUND).await?;
    let mut definitions: BTreeMap<String, Option<Service>> = BTreeMap::new();
    let mut quotas: BTreeMap<String, Limits> = BTreeMap::new();
    // A service whose claim failed is at its limit for the rest of this round.
    let mut full = BTreeSet::new();
    let now = Timestamp::now();
    for queue::Ready {
        name: job,
        service: service_name,
        owner,
        run_after,
        waiting,
    } in ready
    {
        if !definitions.contains_key(&service_name) {
            let found = services::get(db, &service_name).await?;
            definitions.insert(service_name.clone(), found);
        }
        let Some(service) = definitions[&service_name].clone() else {
            // Deleted after the job was queued.
            queue::abandon(db, &job, "the service was deleted").await?;
            continue;
        };
        // Offered to a member whose answer was lost: that member must say first.
        if waiting.delegated_to.is_some() {
            offer(db, jobs, tasks, &job, &service).await?;
            continue;
        }
        // A job that cannot start here and has waited long enough goes to a member.
        let due = delegate::due(&service, &waiting, now);
        if full.contains(&service_name) {
            if due {
                offer(db, jobs, tasks, &job, &service).await?;
            }
            continue;
        }
        let asked = Requested::of(&service);
        if !quotas.contains_key(&owner) {
            let limits = crate::quotas::limits_of(db, &owner).await?;
            quotas.insert(owner.clone(), limits);
        }
        let quota = &quotas[&owner];
        if quota.holds_jobs() {
            let running = crate::quotas::running_of(db, Some(&owner)).await?;
            let waits = match crate::quotas::fits(quota, running, asked) {
                Fit::Yes => None,
                Fit::Wait(reason) => Some(reason),
                // A member may have room for what this cluster's quota never allows.
                Fit::Never(reason) if delegate::untried(&service, &waiting) => {
                    Some(format!("{reason}; it waits for a federation member"))
                }
                Fit::Never(reason) => {
                    queue::abandon(db, &job, &reason).await?;
                    jobs.changed(&service_name, &job);
                    continue;
                }
            };
            if let Some(reason) = waits {
                if queue::note_waiting(db, &job, &reason).await? {
                    jobs.changed(&service_name, &job);
                }
                if due {
                    offer(db, jobs, tasks, &job, &service).await?;
                }
                continue;
            }
        }
        let lease_until = Timestamp::now() + jobs.settings().lease;
        let terms = queue::Claim {
            service: &service_name,
            limit: concurrency_limit(&service, jobs.settings().max_concurrent_per_service),
            owner: &owner,
            asked,
            quota,
        };
        if !queue::claim(db, jobs.instance(), lease_until, &job, &terms).await? {
            full.insert(service_name);
            if due {
                offer(db, jobs, tasks, &job, &service).await?;
            }
            continue;
        }
        jobs.metrics()
            .job_claimed(Timestamp::now().since(run_after));
        jobs.changed(&service_name, &job);
        let (db, jobs) = (db.clone(), jobs.clone());
        tasks.spawn(async move {
            if let Err(err) = execute(&db, &jobs, &job, service, false, None).await {
                // Still running under this server's lease, it would never run again.
                tracing::warn!(%job, %err, "job bookkeeping failed; the job is queued again");
                let released =
                    while_unavailable(|| queue::release(&db, jobs.instance(), Some(&job))).await;
                if let Err(err) = released {
                    tracing::warn!(%job, %err, "cannot queue the job again; its lease will expire");
                }
            }
        });
    }
    Ok(())
}

/// Offers `job` to the service's federation members in the background, unless another
/// server holds it or this one already makes as many offers as it may at once.
async fn offer(
    db: &Database,
    jobs: &Jobs,
    tasks: &mut JoinSet<()>,
    job: &str,
    service: &Service,
) -> AppResult<()> {
    let Ok(permit) = jobs.peers().offers().try_acquire_owned() else {
        return Ok(());
    };
    let lease_until = Timestamp::now() + jobs.settings().lease;
    let Some(waiting) = delegate::hold(db, jobs.instance(), job, lease_until).await? else {
        return Ok(());
    };
    // As it is now: another server may have offered it since it was listed.
    if waiting.delegated_to.is_none() && !delegate::due(service, &waiting, Timestamp::now()) {
        return delegate::let_go(db, jobs.instance(), Some(job)).await;
    }
    let (db, jobs, job) = (db.clone(), jobs.clone(), job.to_string());
    let service = service.clone();
    tasks.spawn(async move {
        let handed = delegate::hand_off(&db, &jobs, &job, &service, &waiting).await;
        drop(permit);
        if let Err(err) = handed {
            // Still held: the hold expires and the job is offered (or run) again.
            tracing::warn!(%job, %err, "cannot hand the job to a federation member");
        }
    });
    Ok(())
}

/// How often a run that has waited its service's threshold asks whether it has started.
const UNSTARTED_CHECK: Duration = Duration::from_secs(2);

/// Once a run has waited `after` (None: never), whether its executor has started it yet;
/// when not, takes the job back to offer it (`delegate::take_back`). Returns its wait and
/// why it did not start.
async fn unstarted(
    db: &Database,
    jobs: &Jobs,
    service: &Service,
    job: &str,
    after: Option<Duration>,
) -> (delegate::Waiting, String) {
    let Some(after) = after else {
        return std::future::pending().await;
    };
    tokio::time::sleep(after).await;
    loop {
        if let Some(why) = jobs.executor().unstarted(service, job).await {
            match delegate::take_back(db, jobs.instance(), job, &why).await {
                Ok(Some(waiting)) => return (waiting, why),
                Ok(None) => {}
                Err(err) => tracing::warn!(%job, %err, "cannot take back a job that did not start"),
            }
        }
        tokio::time::sleep(UNSTARTED_CHECK).await;
    }
}

/// How long a job's bookkeeping is retried while the database is unreachable; after that
/// the lease expires and the job runs again.
const RETRY_BOOKKEEPING_FOR: Duration = Duration::from_secs(300);

/// Runs `write` again while the database is unavailable (a restart): a run that is over must
/// not lose its result, nor a job its place in the queue.
async fn while_unavailable<T, F>(mut write: impl FnMut() -> F) -> AppResult<T>
where
    F: std::future::Future<Output = AppResult<T>>,
{
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        match write().await {
            Err(AppError::Unavailable(err)) if started.elapsed() < RETRY_BOOKKEEPING_FOR => {
                tracing::warn!(%err, "job bookkeeping waits for the database");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

fn concurrency_limit(service: &Service, default: u32) -> u32 {
    service
        .annotations
        .get(MAX_CONCURRENCY_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// Runs a job this server has claimed and records how it ended. Returns the synchronous
/// response (empty for asynchronous jobs or failed runs).
pub(crate) async fn execute(
    db: &Database,
    jobs: &Jobs,
    job: &str,
    service: Service,
    sync: bool,
    spooled: Option<EventBody>,
) -> AppResult<Vec<u8>> {
    let secrets = services::load_secrets(db, &service.name).await?;
    let event = match spooled {
        Some(event) => event,
        None => EventBody::Text(queue::event_of(db, job).await?),
    };
    let timeout = if sync {
        jobs.settings().sync_timeout
    } else {
        jobs.settings().timeout
    };
    let mut execution = Execution::new(
        job,
        &service,
        &secrets,
        event,
        jobs.storage(),
        timeout,
        sync,
    );
    // A volume gone from under its service fails the job (not retried: it stays gone).
    let missing_volume = match crate::volumes::for_job(db, &service).await? {
        Ok(volume) => {
            execution.volume = volume;
            None
        }
        Err(reason) => Some(reason),
    };
    if jobs.executor().pulls_images() {
        execution.pull_credentials = crate::registry_credentials::for_image(
            db,
            &service.owner,
            &service.image_pull_secrets,
            &service.image,
        )
        .await?;
    }
    let (log, writer) = logs::writer(db.clone(), jobs.clone(), job.to_string());
    tracing::info!(%job, service = %service.name, "job started");
    // The platform's own word on a failed attempt goes to the job's log too.
    let notes = log.clone();
    let mut stop = jobs.stoppable(job);
    let started = std::time::Instant::now();
    // A federated service's job the cluster has no room for goes to a member; not a
    // synchronous run, whose caller waits here.
    let hand_over_after = service
        .federation()
        .filter(|_| !sync)
        .map(|federation| Duration::from_secs(federation.rescheduler_threshold));
    let result = if let Some(reason) = missing_volume {
        let _ = notes.send(logs::note(&reason)).await;
        drop(log);
        Ok(Finished {
            report: Report::Failed {
                exit_code: None,
                reason,
                outputs: Vec::new(),
            },
            response: None,
        })
    } else {
        tokio::select! {
            result = jobs.run(&service, execution, log) => result,
            // The run's future is dropped: the local executors' processes die with it.
            reason = stop.requested() => {
                if let Err(err) = jobs.executor().stop(&service, job).await {
                    tracing::warn!(%job, %err, "cannot stop the job where it runs");
                }
                let _ = notes.send(logs::note(&reason)).await;
                Ok(Finished {
                    report: Report::Failed { exit_code: None, reason, outputs: Vec::new() },
                    response: None,
                })
            }
            (waiting, why) = unstarted(db, jobs, &service, job, hand_over_after) => {
                if let Err(err) = jobs.executor().stop(&service, job).await {
                    tracing::warn!(%job, %err, "cannot remove the job where it did not start");
                }
                let waited = started.elapsed().as_secs();
                let note = format!("not started here after {waited} s ({why}): offered to the federation members");
                let _ = notes.send(logs::note(note)).await;
                drop(notes);
                let _ = writer.await;
                jobs.changed(&service.name, job);
                // As for any offer: a job not handed over is let go (and runs here again).
                if let Err(err) = delegate::hand_off(db, jobs, job, &service, &waiting).await {
                    tracing::warn!(%job, %err, "cannot hand the job to a federation member");
                }
                return Ok(Vec::new());
            }
        }
    };
    drop(stop);
    let took = started.elapsed();
    let (outcome, response) = match result {
        Ok(finished) => {
            let outcome = match finished.report {
                Report::Succeeded { outputs } => Outcome::Succeeded { outputs },
                Report::Failed {
                    exit_code,
                    reason,
                    outputs,
                } => Outcome::Failed {
                    exit_code,
                    reason,
                    outputs,
                },
                Report::Error { reason } => Outcome::Error { reason },
            };
            (outcome, finished.response.unwrap_or_default())
        }
        Err(reason) => (Outcome::Error { reason }, Vec::new()),
    };
    let outcome = match outcome {
        // Nobody waits to retry a synchronous run: its caller gets the failure now.
        Outcome::Error { reason } if sync => Outcome::Failed {
            exit_code: None,
            reason,
            outputs: Vec::new(),
        },
        Outcome::Error { reason } if jobs.store_lost().await => Outcome::Waiting {
            reason: format!("{reason}; the object store is unreachable, the job waits for it"),
        },
        other => other,
    };
    if let Outcome::Error { reason } | Outcome::Waiting { reason } = &outcome {
        tracing::warn!(%job, %reason, "job failed for a platform reason");
        let _ = notes
            .send(logs::note(format!("this attempt failed: {reason}")))
            .await;
    }
    drop(notes);
    let _ = writer.await;
    jobs.metrics().job_ran(outcome.label(), took);
    let asked = Requested::of(&service);
    let state = while_unavailable(|| queue::finish(db, jobs, job, &outcome, asked)).await?;
    tracing::info!(%job, state = ?state, "job ended");
    jobs.changed(&service.name, job);
    match state {
        Some(_) => Ok(response),
        None => Err(AppError::Conflict(format!(
            "job {job:?} was taken over by another server while it ran"
        ))),
    }
}
