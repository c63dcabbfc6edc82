//! The platform's Prometheus metrics (`GET /metrics`, text exposition): HTTP requests by
//! route and status, job durations and dispatch latency as they happen, uploads, store and
//! OIDC failures; jobs by state and the queue's depth and oldest wait read from the database
//! at each scrape, so every server reports the shared queue the same way.

use std::sync::LazyLock;
use std::time::Duration;

use model::{AppResult, Timestamp};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::db::Database;
use model::jobs::JobState;

type Labels<const N: usize> = [(&'static str, String); N];
type Histograms<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

/// Store failures, counted where any store error becomes the user's (`store::refused`).
static STORE_ERRORS: LazyLock<Family<Labels<1>, Counter>> = LazyLock::new(Family::default);
/// OIDC provider failures (discovery, JWKS, userinfo), counted where they happen.
static OIDC_FAILURES: LazyLock<Family<Labels<1>, Counter>> = LazyLock::new(Family::default);

/// A request to the object store failed: `refused` (the request's fault: a missing bucket,
/// an object in the way), `unavailable` (unreachable, 5xx) or `internal` (anything else).
pub fn store_error(kind: &str) {
    STORE_ERRORS
        .get_or_create(&[("kind", kind.to_string())])
        .inc();
}

/// The identity provider failed to answer (`kind`: discovery, jwks, userinfo).
pub fn oidc_failure(kind: &str) {
    OIDC_FAILURES
        .get_or_create(&[("kind", kind.to_string())])
        .inc();
}

fn seconds() -> Histogram {
    // 5 ms to about 11 minutes.
    Histogram::new(exponential_buckets(0.005, 2.0, 18))
}

fn job_seconds() -> Histogram {
    // 100 ms to about 1.8 days.
    Histogram::new(exponential_buckets(0.1, 2.0, 21))
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<Labels<3>, Counter>,
    http_duration: Histograms<2>,
    job_duration: Histograms<1>,
    dispatch_latency: Histogram,
    uploads: Counter,
    upload_bytes: Counter,
    jobs: Family<Labels<1>, Gauge>,
    queue_depth: Gauge,
    oldest_pending: Gauge<f64, AtomicU64>,
    /// What a scraper sends as `Authorization: Bearer …` (`OSCAR_METRICS_TOKEN`), besides the
    /// admin's own credentials.
    token: Option<String>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(token: Option<String>) -> Self {
        let mut registry = Registry::with_prefix("oscar");
        let http_requests = Family::<Labels<3>, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            http_requests.clone(),
        );
        let http_duration: Histograms<2> = Family::new_with_constructor(seconds);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by route and method",
            http_duration.clone(),
        );
        let job_duration: Histograms<1> = Family::new_with_constructor(job_seconds);
        registry.register(
            "job_duration_seconds",
            "How long job runs took, by outcome (succeeded, failed, error)",
            job_duration.clone(),
        );
        let dispatch_latency = seconds();
        registry.register(
            "job_dispatch_latency_seconds",
            "Time from when a job could run to when a server claimed it",
            dispatch_latency.clone(),
        );
        let uploads = Counter::default();
        registry.register("uploads", "Uploads through the dashboard", uploads.clone());
        let upload_bytes = Counter::default();
        registry.register(
            "upload_bytes",
            "Bytes uploaded through the dashboard",
            upload_bytes.clone(),
        );
        let jobs = Family::<Labels<1>, Gauge>::default();
        registry.register("jobs", "Job records by state", jobs.clone());
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Jobs waiting to run whose time has come",
            queue_depth.clone(),
        );
        let oldest_pending = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "queue_oldest_pending_age_seconds",
            "How long the oldest waiting job has waited",
            oldest_pending.clone(),
        );
        // Every kind is shown from the start (at 0), so rates and alerts work before a failure.
        for kind in ["refused", "unavailable", "internal"] {
            let _ = STORE_ERRORS.get_or_create(&[("kind", kind.to_string())]);
        }
        for kind in ["discovery", "userinfo", "token_exchange"] {
            let _ = OIDC_FAILURES.get_or_create(&[("kind", kind.to_string())]);
        }
        registry.register(
            "store_errors",
            "Failed requests to the object store, by kind",
            STORE_ERRORS.clone(),
        );
        registry.register(
            "oidc_failures",
            "Failures reaching the OIDC provider, by kind",
            OIDC_FAILURES.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            job_duration,
            dispatch_latency,
            uploads,
            upload_bytes,
            jobs,
            queue_depth,
            oldest_pending,
            token,
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// An answered HTTP request (`route` is the matched route pattern, never the raw path).
    pub fn http_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.http_requests
            .get_or_create(&[
                ("route", route.to_string()),
                ("method", method.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
        self.http_duration
            .get_or_create(&[("route", route.to_string()), ("method", method.to_string())])
            .observe(took.as_secs_f64());
    }

    /// A run ended (`outcome`: succeeded, failed, error) after `took`.
    pub fn job_ran(&self, outcome: &str, took: Duration) {
        self.job_duration
            .get_or_create(&[("outcome", outcome.to_string())])
            .observe(took.as_secs_f64());
    }

    /// A job was claimed `waited` after it could run.
    pub fn job_claimed(&self, waited: Duration) {
        self.dispatch_latency.observe(waited.as_secs_f64());
    }

    pub fn uploaded(&self, bytes: u64) {
        self.uploads.inc();
        self.upload_bytes.inc_by(bytes);
    }

    /// The text exposition, with the queue's figures read now.
    pub async fn render(&self, db: &Database) -> AppResult<String> {
        let counts = crate::jobs::counts(db, None, None).await?;
        for state in JobState::ALL {
            let count = counts.iter().find(|(s, _)| *s == state).map_or(0, |c| c.1);
            self.jobs
                .get_or_create(&[("state", state.as_str().to_string())])
                .set(count);
        }
        let now = Timestamp::now();
        let (depth, oldest): (i64, Option<Timestamp>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(run_after) FROM jobs WHERE state = 'pending' AND run_after <= $1",
        )
        .bind(now)
        .fetch_one(db.pool())
        .await?;
        self.queue_depth.set(depth);
        self.oldest_pending
            .set(oldest.map_or(0.0, |at| now.since(at).as_secs_f64()));
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        Ok(text)
    }
}
