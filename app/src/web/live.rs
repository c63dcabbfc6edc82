//! Server push for the dashboard: job changes and growing logs as server-sent events, and
//! log downloads. Plain axum routes (server functions do not stream), signed-in users only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;

use super::state::AppState;
use crate::AppResult;
use domain::jobs;
use domain::jobs::logs::{self, LogView};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/live/jobs", get(all_job_changes))
        .route("/api/live/jobs/{service}", get(job_changes))
        .route("/api/live/log/{service}/{job}", get(log_follow))
        .route("/api/live/bucket/{bucket}", get(bucket_changes))
        .route("/api/download/log/{service}/{job}", get(log_download))
}

/// An event named `job` (data: `service/job`, `*` when many changed) whenever a job of the
/// service the caller sees changes; the page reloads its table then. (Browsers drop events
/// without data.)
async fn job_changes(
    State(state): State<AppState>,
    session: Session,
    Path(service): Path<String>,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let caller = domain::auth::signed_in(&session).await?;
    let scope = jobs::authorize(&state.db, &caller, &service).await?;
    let watched = Watched {
        services: Some(HashMap::from([(service, scope.owner().is_some())])),
        caller: caller.id,
    };
    Ok(change_events(&state, watched))
}

/// Job changes for the Jobs page: of every service for the admin, else of the services the
/// caller could see when the page opened.
async fn all_job_changes(
    State(state): State<AppState>,
    session: Session,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let caller = domain::auth::signed_in(&session).await?;
    let services = if caller.admin {
        None
    } else {
        let visible = domain::services::list_visible(&state.db, &state.services, &caller).await?;
        Some(
            visible
                .into_iter()
                .map(|s| {
                    let own_jobs_only = !caller.manages(&s.owner);
                    (s.name, own_jobs_only)
                })
                .collect(),
        )
    };
    let watched = Watched {
        services,
        caller: caller.id,
    };
    Ok(change_events(&state, watched))
}

/// Whose job changes a viewer is told of.
#[derive(Clone)]
struct Watched {
    /// Service → whether only the viewer's own jobs of it count (a service shared with them);
    /// None: every service (the admin).
    services: Option<HashMap<String, bool>>,
    caller: String,
}

impl Watched {
    /// What to send of a change, if anything: other users' job names on a shared service
    /// stay theirs.
    async fn event_data(&self, state: &AppState, change: &jobs::JobChange) -> Option<String> {
        let own_jobs_only = match &self.services {
            None => false,
            Some(services) => *services.get(&change.service)?,
        };
        if own_jobs_only && change.job != "*" {
            let job = jobs::get(&state.db, &change.job).await.ok()??;
            if job.owner != self.caller {
                return None;
            }
        }
        Some(format!("{}/{}", change.service, change.job))
    }
}

/// A source of server-sent events: the next one, or None when the stream ends.
trait Feed: Send + 'static {
    fn next(&mut self) -> impl std::future::Future<Output = Option<Event>> + Send;
}

/// A feed as the response, with comments that keep quiet connections open through proxies.
fn respond<F: Feed>(feed: F) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn change_events(
    state: &AppState,
    watched: Watched,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    respond(JobFeed {
        changes: state.jobs.subscribe_changes(),
        state: state.clone(),
        watched,
    })
}

struct JobFeed {
    state: AppState,
    watched: Watched,
    changes: tokio::sync::broadcast::Receiver<jobs::JobChange>,
}

impl Feed for JobFeed {
    async fn next(&mut self) -> Option<Event> {
        loop {
            match self.changes.recv().await {
                Ok(change) => {
                    if let Some(data) = self.watched.event_data(&self.state, &change).await {
                        return Some(Event::default().event("job").data(data));
                    }
                }
                // Missed some: the page reloads everything anyway.
                Err(RecvError::Lagged(_)) => return Some(Event::default().event("job").data("*")),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// An event named `change` (data: the bucket) when objects of a bucket the caller may use
/// change as far as this server learns (`Store::changed`), or when a job of a service writing
/// its outputs there changes (external stores report only input folders); the page reloads its
/// listing then.
async fn bucket_changes(
    State(state): State<AppState>,
    session: Session,
    Path(bucket): Path<String>,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let caller = domain::auth::signed_in(&session).await?;
    domain::buckets::authorize(
        &state.db,
        &state.s3.client,
        &caller,
        &bucket,
        domain::buckets::Access::Use,
    )
    .await?;
    let feed = BucketFeed {
        changes: state.s3.subscribe_changes(),
        jobs: state.jobs.subscribe_changes(),
        state,
        caller,
        bucket,
    };
    Ok(respond(feed))
}

struct BucketFeed {
    state: AppState,
    caller: domain::access::Caller,
    bucket: String,
    changes: tokio::sync::broadcast::Receiver<String>,
    jobs: tokio::sync::broadcast::Receiver<jobs::JobChange>,
}

impl Feed for BucketFeed {
    async fn next(&mut self) -> Option<Event> {
        loop {
            // Missed some (lagging): one of them may have been this bucket's.
            let relevant = tokio::select! {
                changed = self.changes.recv() => match changed {
                    Ok(name) => name == self.bucket,
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return None,
                },
                change = self.jobs.recv() => match change {
                    Ok(change) => self.writes_here(&change.service).await,
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return None,
                },
            };
            if !relevant {
                continue;
            }
            // The bucket may have stopped being shared with the viewer since the page opened.
            match domain::buckets::record(&self.state.db, &self.bucket).await {
                Ok(record) if record.usable_by(&self.caller) => {
                    return Some(Event::default().event("change").data(&self.bucket));
                }
                Ok(_) => return None,
                Err(err) => {
                    tracing::warn!(bucket = %self.bucket, %err, "bucket feed: cannot read the bucket's record")
                }
            }
        }
    }
}

impl BucketFeed {
    /// Whether `service` writes outputs into the bucket.
    async fn writes_here(&self, service: &str) -> bool {
        let Ok(all) = self.state.services.list(&self.state.db).await else {
            return true;
        };
        all.iter().any(|s| {
            s.name == service && domain::storage::buckets_in(&s.output).contains(&self.bucket)
        })
    }
}

/// The log so far, then each new part as the job writes it (`log` events, stored lines with
/// their times and stderr marks: `model::jobs::LogLine`), then `end` once the job has
/// finished.
async fn log_follow(
    State(state): State<AppState>,
    session: Session,
    Path((service, job)): Path<(String, String)>,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let caller = domain::auth::signed_in(&session).await?;
    jobs::require(&state.db, &caller, &service, &job).await?;
    // Subscribe before reading, so nothing written in between is missed; parts already in
    // what was read are recognised by their offset and skipped.
    let appended = state.jobs.subscribe_logs();
    let changes = state.jobs.subscribe_changes();
    let so_far = logs::read(&state.db, &job, LogView::Stored).await?;
    let follow = Follow {
        state,
        job,
        sent: so_far.len() as u64,
        appended,
        changes,
        first: Some(so_far),
        ended: false,
    };
    Ok(respond(follow))
}

struct Follow {
    state: AppState,
    job: String,
    /// Bytes of the stored (timestamped) log already sent.
    sent: u64,
    appended: tokio::sync::broadcast::Receiver<jobs::LogAppended>,
    changes: tokio::sync::broadcast::Receiver<jobs::JobChange>,
    first: Option<String>,
    ended: bool,
}

/// How often a followed log is read from the database too: parts written by a job running on
/// another server arrive this way.
const CATCH_UP_EVERY: Duration = Duration::from_secs(2);

impl Feed for Follow {
    async fn next(&mut self) -> Option<Event> {
        if let Some(text) = self.first.take() {
            return Some(Event::default().event("log").data(text));
        }
        if self.ended {
            return None;
        }
        loop {
            // One read of the job per turn: what is stored beyond what was sent, and whether
            // it has ended.
            let job = jobs::get(&self.state.db, &self.job).await.ok()?;
            let stored = job.as_ref().map_or(0, |j| j.log_size as u64);
            if stored > self.sent {
                return self.catch_up().await;
            }
            if job.is_none_or(|j| j.state.is_final()) {
                self.ended = true;
                return Some(Event::default().event("end").data("finished"));
            }
            // Then wait for news of this job: its own log parts come straight through; a
            // change, falling behind, or the catch-up period sends us back to the database.
            let catch_up = tokio::time::sleep(CATCH_UP_EVERY);
            tokio::pin!(catch_up);
            loop {
                tokio::select! {
                    appended = self.appended.recv() => match appended {
                        Ok(part) if part.job == self.job && part.offset >= self.sent => {
                            self.sent = part.offset + part.text.len() as u64;
                            return Some(Event::default().event("log").data(&*part.text));
                        }
                        Ok(_) => continue,
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => return None,
                    },
                    change = self.changes.recv() => match change {
                        Ok(change) if change.job == self.job => break,
                        Ok(_) => continue,
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => return None,
                    },
                    _ = &mut catch_up => break,
                }
            }
        }
    }
}

impl Follow {
    /// What the database holds beyond what was sent (written elsewhere, or missed).
    async fn catch_up(&mut self) -> Option<Event> {
        let all = logs::read(&self.state.db, &self.job, LogView::Stored)
            .await
            .ok()?;
        let missing = all.get(self.sent as usize..)?.to_string();
        self.sent = all.len() as u64;
        Some(Event::default().event("log").data(missing))
    }
}

#[derive(Deserialize)]
struct DownloadQuery {
    timestamps: Option<bool>,
}

async fn log_download(
    State(state): State<AppState>,
    session: Session,
    Path((service, job)): Path<(String, String)>,
    Query(query): Query<DownloadQuery>,
) -> AppResult<impl IntoResponse> {
    let caller = domain::auth::signed_in(&session).await?;
    let text = jobs::log_for(
        &state.db,
        &caller,
        &service,
        &job,
        if query.timestamps.unwrap_or(true) {
            LogView::Timestamped
        } else {
            LogView::Text
        },
    )
    .await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{job}.log\""),
            ),
        ],
        text,
    ))
}
