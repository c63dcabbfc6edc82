//! `make load`: dashboard users and uploads at once against the release server in embedded
//! mode, with 1,000 services and 100,000 jobs in its database. Every request is timed;
//! errors are counted, never retried.
//!
//! - 50 signed-in users, each looping over what the dashboard does: the services page (SSR),
//!   a service's page (SSR), and the server functions behind them (platform info, service
//!   list, a service's jobs), pausing `think` (1 s, as a person reading the page; 0 makes
//!   them a closed loop that only measures throughput) after each request;
//! - 200 uploads in flight at all times through the dashboard's upload endpoint (64 KiB each,
//!   to a plain bucket), each sent at `upload_rate` (64 KiB/s, a browser on a modest link; 0
//!   sends as fast as loopback allows, which only measures throughput). Each is a new object,
//!   as users upload new files (up to [`KEYS_PER_UPLOADER`], 5 GiB in all, then overwritten):
//!   about 4 GiB in 5 minutes at the default pace, in the temporary directory (`TMPDIR`),
//!   removed at the end unless the run fails;
//! - the server's resident memory sampled every second.
//!
//! Before the mixed load, the services page alone (one client, one request at a time) gives
//! the figure the issue sets a target for (p99 ≤ 30 ms).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use std::convert::Infallible;

use futures_util::Stream;
use http_body_util::{Full, StreamBody};
use hyper::body::Bytes;
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::platform::Platform;

pub struct LoadOptions {
    pub seconds: u64,
    pub users: usize,
    pub uploads: usize,
    pub services: usize,
    pub jobs_per_service: usize,
    pub think: Duration,
    /// Bytes per second of each upload; 0 for no pacing.
    pub upload_rate: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            seconds: 300,
            users: 50,
            uploads: 200,
            services: 1000,
            jobs_per_service: 100,
            think: Duration::from_secs(1),
            upload_rate: 64 * 1024,
        }
    }
}

const UPLOAD_BYTES: usize = 64 * 1024;
const UPLOAD_BUCKET: &str = "load-uploads";
/// New keys per uploader before it overwrites its first: more than a default run needs, and a
/// bound on the disk a long or unpaced run fills.
const KEYS_PER_UPLOADER: u64 = 400;

/// Latencies (µs) and errors per kind of request.
struct Timings {
    kinds: BTreeMap<&'static str, (Vec<u64>, usize)>,
    /// When the measured phase began, and how many requests ended slow in each of its
    /// seconds: stalls that hit every request at once show up as clusters.
    began: Instant,
    slow: BTreeMap<u64, usize>,
}

/// A request slower than this is counted in [`Timings::slow`].
const SLOW: Duration = Duration::from_millis(100);

impl Timings {
    fn since(began: Instant) -> Self {
        Self {
            kinds: BTreeMap::new(),
            began,
            slow: BTreeMap::new(),
        }
    }

    /// A dashboard request: counted in `slow` too.
    fn add(&mut self, kind: &'static str, took: Duration, ok: bool) {
        if took > SLOW {
            *self.slow.entry(self.began.elapsed().as_secs()).or_default() += 1;
        }
        self.record(kind, took, ok);
    }

    /// An upload (which takes about a second by design).
    fn record(&mut self, kind: &'static str, took: Duration, ok: bool) {
        let entry = self.kinds.entry(kind).or_default();
        entry.0.push(took.as_micros() as u64);
        if !ok {
            entry.1 += 1;
        }
    }

    fn errors(&self) -> usize {
        self.kinds.values().map(|(_, e)| e).sum()
    }

    /// The seconds of the run in which most requests ended slow.
    fn print_stalls(&self) {
        let mut worst: Vec<(u64, usize)> = self.slow.iter().map(|(s, n)| (*s, *n)).collect();
        worst.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let shown: Vec<String> = (worst.iter().take(12))
            .map(|(second, n)| format!("{second} s: {n}"))
            .collect();
        println!(
            "dashboard requests over {} ms: {} in {} of the seconds; most in (second of the run: count): {}",
            SLOW.as_millis(),
            self.slow.values().sum::<usize>(),
            self.slow.len(),
            if shown.is_empty() {
                "none".to_string()
            } else {
                shown.join(", ")
            }
        );
    }

    fn print(&mut self, seconds: f64) {
        println!("| request | count | per s | errors | p50 ms | p99 ms | max ms |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (kind, (times, errors)) in self.kinds.iter_mut() {
            times.sort_unstable();
            let at = |q: f64| {
                times
                    .get(((times.len() as f64 - 1.0) * q).round() as usize)
                    .map_or(0.0, |us| *us as f64 / 1000.0)
            };
            println!(
                "| {kind} | {} | {:.0} | {errors} | {:.1} | {:.1} | {:.1} |",
                times.len(),
                times.len() as f64 / seconds,
                at(0.5),
                at(0.99),
                at(1.0)
            );
        }
    }
}

pub async fn run(server: &Path, dir: &Path, options: &LoadOptions) -> anyhow::Result<()> {
    let mut platform = Platform::new(server, &dir.join("load"), &[]);
    platform.start().await?;
    println!(
        "seeding {} services and {} jobs …",
        options.services,
        options.services * options.jobs_per_service
    );
    seed_services(&platform, options.services).await?;
    platform.stop().await;
    seed_jobs(&platform.data.join("oscar.db"), options).await?;
    platform.start().await?;
    platform
        .store
        .create_bucket()
        .bucket(UPLOAD_BUCKET)
        .send()
        .await
        .context("creating the upload bucket")?;
    let platform = Arc::new(platform);
    let cookie = platform.sign_in().await?;

    // The services page alone.
    let mut quiet = Timings::since(Instant::now());
    for i in 0..520 {
        let started = Instant::now();
        let ok = page(&platform, &cookie, "/services").await;
        if i >= 20 {
            quiet.add("GET /services (SSR), alone", started.elapsed(), ok);
        }
    }

    println!(
        "{} users (thinking {} ms after each request) and {} uploads ({} KiB/s each, 0 = unpaced) for {} s …",
        options.users,
        options.think.as_millis(),
        options.uploads,
        options.upload_rate / 1024,
        options.seconds
    );
    let timings = Arc::new(Mutex::new(Timings::since(Instant::now())));
    let until = Instant::now() + Duration::from_secs(options.seconds);
    let rss_before = platform.rss_kib().unwrap_or_default();
    let mut tasks = JoinSet::new();
    for user in 0..options.users {
        let (platform, timings) = (platform.clone(), timings.clone());
        let (services, think) = (options.services, options.think);
        // Users start spread over one think time, not in step.
        let offset = think.mul_f64(user as f64 / options.users as f64);
        tasks.spawn(async move {
            let cookie = platform.sign_in().await?;
            tokio::time::sleep(offset).await;
            let mut round = user;
            while Instant::now() < until {
                round += 1;
                let service = format!("load-{:04}", round * 7919 % services);
                let steps: [(&'static str, Step); 5] = [
                    ("GET /services (SSR)", Step::Page("/services".into())),
                    (
                        "GET /services/{name} (SSR)",
                        Step::Page(format!("/services/{service}")),
                    ),
                    (
                        "POST /api/system/info",
                        Step::Call("system/info", String::new()),
                    ),
                    (
                        "POST /api/services/list (filtered)",
                        Step::Call(
                            "services/list",
                            format!("filter=load-0{}&page={}", round % 10, round % 3 + 1),
                        ),
                    ),
                    (
                        "POST /api/jobs/list",
                        Step::Call("jobs/list", format!("service={service}")),
                    ),
                ];
                for (kind, step) in steps {
                    let started = Instant::now();
                    let ok = match step {
                        Step::Page(path) => page(&platform, &cookie, &path).await,
                        Step::Call(endpoint, form) => {
                            call(&platform, &cookie, endpoint, form).await
                        }
                    };
                    timings.lock().await.add(kind, started.elapsed(), ok);
                    tokio::time::sleep(think).await;
                }
            }
            anyhow::Ok(())
        });
    }
    for uploader in 0..options.uploads {
        let (platform, timings, cookie) = (platform.clone(), timings.clone(), cookie.clone());
        let rate = options.upload_rate;
        // Uploads start spread over the time one takes, as browsers' would: started in step,
        // they stay in step for many seconds and reach the store all at once.
        let offset = match rate {
            0 => Duration::ZERO,
            rate => Duration::from_secs_f64(UPLOAD_BYTES as f64 / rate as f64)
                .mul_f64(uploader as f64 / options.uploads as f64),
        };
        tasks.spawn(async move {
            let body = Bytes::from(vec![b'x'; UPLOAD_BYTES]);
            tokio::time::sleep(offset).await;
            let mut n = 0;
            while Instant::now() < until {
                n += 1;
                let request = platform
                    .request(
                        "PUT",
                        &format!(
                            "/api/upload/{UPLOAD_BUCKET}/u{uploader}/{}",
                            n % KEYS_PER_UPLOADER
                        ),
                    )
                    .header(http::header::COOKIE, &cookie)
                    .header(http::header::CONTENT_LENGTH, body.len())
                    .body(paced(body.clone(), rate))?;
                let started = Instant::now();
                let ok = matches!(platform.send(request).await, Ok((200, _, _)));
                timings
                    .lock()
                    .await
                    .record("PUT /api/upload (64 KiB)", started.elapsed(), ok);
            }
            anyhow::Ok(())
        });
    }
    let mut rss_max = rss_before;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_max = rss_max.max(platform.rss_kib().unwrap_or_default());
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let rss_after = platform.rss_kib().unwrap_or_default();

    println!();
    quiet.print(500.0);
    println!();
    let mut timings = timings.lock().await;
    timings.print(options.seconds as f64);
    println!();
    timings.print_stalls();
    let uploads = timings
        .kinds
        .get("PUT /api/upload (64 KiB)")
        .map_or(0, |(t, _)| t.len());
    println!();
    println!(
        "uploads: {:.1} MiB/s; server RSS: {} MiB before, {} MiB at most, {} MiB after",
        (uploads * UPLOAD_BYTES) as f64 / 1048576.0 / options.seconds as f64,
        rss_before / 1024,
        rss_max / 1024,
        rss_after / 1024
    );
    let errors = timings.errors() + quiet.errors();
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}

/// `body` sent in 8 KiB chunks at `rate` bytes per second (at once when 0).
fn paced(
    body: Bytes,
    rate: u64,
) -> StreamBody<impl Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    const CHUNK: usize = 8 * 1024;
    let pause = match rate {
        0 => Duration::ZERO,
        rate => Duration::from_secs_f64(CHUNK as f64 / rate as f64),
    };
    StreamBody::new(futures_util::stream::unfold(0, move |at| {
        let body = body.clone();
        async move {
            if at >= body.len() {
                return None;
            }
            if at > 0 {
                tokio::time::sleep(pause).await;
            }
            let end = (at + CHUNK).min(body.len());
            Some((Ok(Frame::data(body.slice(at..end))), end))
        }
    }))
}

enum Step {
    Page(String),
    Call(&'static str, String),
}

async fn page(platform: &Platform, cookie: &str, path: &str) -> bool {
    let Ok(request) = platform
        .request("GET", path)
        .header(http::header::COOKIE, cookie)
        .body(Full::new(Bytes::new()))
    else {
        return false;
    };
    matches!(platform.send(request).await, Ok((200, _, _)))
}

async fn call(platform: &Platform, cookie: &str, endpoint: &str, form: String) -> bool {
    let Ok(request) = platform
        .request("POST", &format!("/api/{endpoint}"))
        .header(http::header::COOKIE, cookie)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(form)))
    else {
        return false;
    };
    matches!(platform.send(request).await, Ok((200, _, _)))
}

async fn seed_services(platform: &Platform, count: usize) -> anyhow::Result<()> {
    for i in 0..count {
        platform
            .create_service(&json!({
                "name": format!("load-{i:04}"),
                "image": "ghcr.io/grycap/cowsay",
                "script": "cowsay < \"$INPUT_FILE_PATH\"\n",
            }))
            .await?;
    }
    Ok(())
}

/// Finished jobs, as if each service had run `jobs_per_service` times over the last days.
async fn seed_jobs(database: &Path, options: &LoadOptions) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut db =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display())).await?;
    let mut tx = db.begin().await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    for s in 0..options.services {
        let service = format!("load-{s:04}");
        for j in 0..options.jobs_per_service {
            let created = now - ((s * options.jobs_per_service + j) as i64) * 1000;
            let (state, exit_code) = if j % 10 == 9 {
                ("failed", 1)
            } else {
                ("succeeded", 0)
            };
            sqlx::query(
                "INSERT INTO jobs (name, service, owner, trigger, event, input, state, attempts,
                                   run_after, created_at, started_at, finished_at, exit_code)
                 VALUES (?, ?, 'cluster_admin', 'bucket', '{}', ?, ?, 1, ?, ?, ?, ?, ?)",
            )
            .bind(format!("{service}-{j:08}"))
            .bind(&service)
            .bind(format!("{service}/in/{j}.txt"))
            .bind(state)
            .bind(created)
            .bind(created)
            .bind(created + 200)
            .bind(created + 1200)
            .bind(exit_code)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
