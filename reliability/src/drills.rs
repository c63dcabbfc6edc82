//! The drills. Each starts its own platform on a fresh data directory, creates a service whose
//! script copies its input to `out/<input>.<job>` and notes every completed run, uploads the
//! inputs like a client would (retrying until the upload is acknowledged), breaks something,
//! and counts: every input must end with exactly one succeeded job and its output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_s3::primitives::ByteStream;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::task::JoinSet;

use crate::platform::Platform;
use crate::proxy::Proxy;

/// How big each drill is.
#[derive(Debug, Clone)]
pub struct Scale {
    pub crash_uploads: usize,
    pub outage_uploads: usize,
    pub outage: Duration,
    pub killed_jobs: usize,
    pub kills: usize,
    pub after_full: usize,
    pub database_uploads: usize,
    pub database_down: Duration,
    pub federation_uploads: usize,
}

impl Scale {
    /// The figures the issue asks for, run by hand (`make reliability`).
    pub fn full() -> Self {
        Self {
            crash_uploads: 1000,
            outage_uploads: 300,
            outage: Duration::from_secs(30),
            killed_jobs: 40,
            kills: 20,
            after_full: 50,
            database_uploads: 500,
            database_down: Duration::from_secs(10),
            federation_uploads: 120,
        }
    }

    /// The same drills, smaller, within CI's time (`make test`).
    pub fn ci() -> Self {
        Self {
            crash_uploads: 200,
            outage_uploads: 60,
            outage: Duration::from_secs(10),
            killed_jobs: 10,
            kills: 5,
            after_full: 10,
            database_uploads: 100,
            database_down: Duration::from_secs(4),
            federation_uploads: 40,
        }
    }
}

/// One drill's figures.
#[derive(Debug, Default)]
pub struct Row {
    pub drill: &'static str,
    pub inputs: usize,
    pub jobs: usize,
    pub succeeded: usize,
    /// Jobs that failed as the drill meant them to (disk full), with the reason checked.
    pub failed_as_expected: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub seconds: f64,
    pub notes: String,
}

/// Where a drill's service reads and writes, and where its script notes completed runs.
struct Drill {
    service: String,
    runs: PathBuf,
}

impl Drill {
    /// Creates the service: `pause` seconds of work, then the copy.
    async fn new(platform: &Platform, service: &str, pause: &str) -> anyhow::Result<Self> {
        Self::with(platform, service, pause, json!({})).await
    }

    /// [`Self::new`], with `more` fields in the service's definition.
    async fn with(
        platform: &Platform,
        service: &str,
        pause: &str,
        more: serde_json::Value,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&platform.shared)?;
        let runs = platform.shared.join(format!("{service}.runs"));
        std::fs::write(&runs, "")?;
        let script = format!(
            "sleep {pause}\nname=$(basename \"$INPUT_FILE_PATH\")\n\
             cp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/$name.$JOB_UUID\"\n\
             echo \"$name\" >> \"$DRILL_RUNS\"\n"
        );
        let mut definition = json!({
            "name": service,
            "image": "alpine",
            "script": script,
            "environment": {"variables": {"DRILL_RUNS": runs}},
            "input": [{"storage_provider": "minio.default", "path": format!("{service}/in")}],
            "output": [{"storage_provider": "minio.default", "path": format!("{service}/out")}],
        });
        if let (Some(fields), Some(more)) = (definition.as_object_mut(), more.as_object()) {
            fields.extend(more.clone());
        }
        platform.create_service(&definition).await?;
        Ok(Self {
            service: service.to_string(),
            runs,
        })
    }

    /// Uploads `count` inputs, `concurrency` at a time, each retried until acknowledged;
    /// `acked` counts the acknowledgements as they come.
    fn upload(
        &self,
        platform: &Platform,
        count: usize,
        concurrency: usize,
        acked: Arc<AtomicUsize>,
    ) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        upload(
            platform.store.clone(),
            self.service.clone(),
            (0..count).map(|i| format!("{i:05}.txt")).collect(),
            input_content,
            concurrency,
            acked,
        )
    }

    /// Counts inputs, jobs and outputs once every job has ended.
    async fn tally(&self, platform: &Platform, inputs: usize) -> anyhow::Result<Row> {
        self.tally_with(platform, inputs, None).await
    }

    /// [`Self::tally`], with the jobs `platform` handed to `member` (a federation member
    /// running the same service) counted where they ran.
    async fn tally_with(
        &self,
        platform: &Platform,
        inputs: usize,
        member: Option<&Platform>,
    ) -> anyhow::Result<Row> {
        let mut jobs = platform.settle(&self.service, inputs, SETTLE).await?;
        if let Some(member) = member {
            let handed: BTreeSet<String> = (jobs.iter())
                .filter(|j| j.status == "Delegated")
                .map(|j| j.name.clone())
                .collect();
            let ran = member.settle(&self.service, handed.len(), SETTLE).await?;
            // Each handed job is one job there, under its name; any other is one too many.
            let extra = ran.iter().filter(|j| !handed.contains(&j.name)).count();
            if extra > 0 {
                bail!("the member ran {extra} jobs it was not handed");
            }
            jobs.retain(|j| j.status != "Delegated");
            jobs.extend(ran);
        }
        let inputs_stored = list(&platform.store, &self.service, "in/").await?;
        let outputs = list(&platform.store, &self.service, "out/").await?;
        // out/<input>.<job> → the jobs that delivered each input's output, which must be a
        // copy of the input.
        let mut delivered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut corrupt = 0;
        for key in &outputs {
            let Some((input, job)) = key.rsplit_once('.') else {
                continue;
            };
            let body = platform
                .store
                .get_object()
                .bucket(&self.service)
                .key(format!("out/{key}"))
                .send()
                .await?
                .body
                .collect()
                .await?
                .to_vec();
            if body != input_content(input) {
                corrupt += 1;
            }
            delivered
                .entry(input.to_string())
                .or_default()
                .insert(job.to_string());
        }
        let lost = inputs_stored
            .iter()
            .filter(|name| !delivered.contains_key(name.as_str()))
            .count()
            + corrupt
            + inputs.saturating_sub(inputs_stored.len());
        let extra_outputs: usize = delivered.values().map(|jobs| jobs.len() - 1).sum();
        let duplicated = extra_outputs.max(jobs.len().saturating_sub(inputs_stored.len()));
        let runs = std::fs::read_to_string(&self.runs)?.lines().count();
        let succeeded = jobs.iter().filter(|j| j.status == "Succeeded").count();
        Ok(Row {
            inputs: inputs_stored.len(),
            jobs: jobs.len(),
            succeeded,
            lost: lost.max(inputs_stored.len().saturating_sub(succeeded)),
            duplicated,
            notes: format!(
                "scripts run again after an interruption: {}",
                runs.saturating_sub(succeeded)
            ),
            ..Row::default()
        })
    }

    /// Jobs whose log contains `text`.
    async fn logs_containing(&self, platform: &Platform, text: &str) -> anyhow::Result<usize> {
        let mut found = 0;
        for job in platform.jobs(&self.service).await? {
            if platform
                .job_log(&self.service, &job.name)
                .await?
                .contains(text)
            {
                found += 1;
            }
        }
        Ok(found)
    }
}

fn upload(
    store: aws_sdk_s3::Client,
    bucket: String,
    names: Vec<String>,
    content: fn(&str) -> Vec<u8>,
    concurrency: usize,
    acked: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut uploads = JoinSet::new();
        for name in names {
            let permit = permits.clone().acquire_owned().await?;
            let (store, bucket, acked) = (store.clone(), bucket.clone(), acked.clone());
            uploads.spawn(async move {
                let _permit = permit;
                let body = content(&name);
                let deadline = Instant::now() + Duration::from_secs(300);
                loop {
                    let sent = store
                        .put_object()
                        .bucket(&bucket)
                        .key(format!("in/{name}"))
                        .body(ByteStream::from(body.clone()))
                        .send()
                        .await;
                    match sent {
                        Ok(_) => break,
                        Err(err) if Instant::now() > deadline => {
                            bail!("upload of {name} never acknowledged: {err}")
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
                acked.fetch_add(1, Ordering::Relaxed);
                Ok(())
            });
        }
        while let Some(done) = uploads.join_next().await {
            done??;
        }
        Ok(())
    })
}

fn input_content(name: &str) -> Vec<u8> {
    format!("input {name}\n").into_bytes()
}

/// The names of the objects under `prefix` (relative to it). Folder markers (`in/`), which
/// S3 lists as empty objects, are folders, not inputs or outputs.
async fn list(
    store: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    let mut pages = store
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page?.contents() {
            if let Some(key) = object.key().filter(|k| !k.ends_with('/')) {
                found.insert(key[prefix.len()..].to_string());
            }
        }
    }
    Ok(found)
}

async fn until_acked(acked: &AtomicUsize, count: usize) {
    while acked.load(Ordering::Relaxed) < count {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const SETTLE: Duration = Duration::from_secs(600);

/// 1. `kill -9` of the server at a random point of an upload burst, then a restart.
pub async fn crash(server: &Path, dir: &Path, scale: &Scale, seed: u64) -> anyhow::Result<Row> {
    let started = Instant::now();
    let n = scale.crash_uploads;
    let mut platform = Platform::new(
        server,
        &dir.join("crash"),
        // A short lease: the restarted server takes the killed one's jobs over quickly.
        &[("OSCAR_JOB_LEASE", "3"), ("OSCAR_MAX_CONCURRENT_JOBS", "8")],
    );
    platform.start().await?;
    let drill = Drill::new(&platform, "drill-crash", "0.05").await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let kill_at = rng.random_range(n / 10..=n);
    let delay = Duration::from_millis(rng.random_range(0..2000));
    let acked = Arc::new(AtomicUsize::new(0));
    let uploads = drill.upload(&platform, n, 16, acked.clone());
    until_acked(&acked, kill_at).await;
    tokio::time::sleep(delay).await;
    let acked_at_kill = acked.load(Ordering::Relaxed);
    let ran_at_kill = std::fs::read_to_string(&drill.runs)?.lines().count();
    platform.kill().await;
    platform.start().await?;
    uploads.await??;
    let mut row = drill.tally(&platform, n).await?;
    platform.stop().await;
    row.drill = "crash: kill -9 during an upload burst";
    row.seconds = started.elapsed().as_secs_f64();
    row.notes = format!(
        "seed {seed}; killed with {acked_at_kill} of {n} uploads acknowledged and {ran_at_kill} scripts done; {}",
        row.notes
    );
    Ok(row)
}

/// 2. The store unreachable (for jobs) during a burst: jobs wait, then all complete.
pub async fn storage_outage(server: &Path, dir: &Path, scale: &Scale) -> anyhow::Result<Row> {
    let started = Instant::now();
    let n = scale.outage_uploads;
    let mut platform = Platform::new(server, &dir.join("outage"), &[]);
    let proxy = Proxy::start(platform.s3).await?;
    platform.set_env(
        "OSCAR_JOB_S3_ENDPOINT",
        &format!("http://127.0.0.1:{}", proxy.port),
    );
    platform.set_env("OSCAR_MAX_CONCURRENT_JOBS", "8");
    platform.start().await?;
    let drill = Drill::new(&platform, "drill-outage", "0.2").await?;
    let acked = Arc::new(AtomicUsize::new(0));
    let uploads = drill.upload(&platform, n, 8, acked.clone());
    until_acked(&acked, n / 4).await;
    proxy.cut();
    tokio::time::sleep(scale.outage).await;
    proxy.restore();
    let restored = Instant::now();
    uploads.await??;
    let mut row = drill.tally(&platform, n).await?;
    let drained = restored.elapsed();
    let waited = drill
        .logs_containing(&platform, "the object store is unreachable")
        .await?;
    platform.stop().await;
    row.drill = "storage outage: store unreachable for jobs";
    row.seconds = started.elapsed().as_secs_f64();
    row.notes = format!(
        "{}s outage after {} acknowledged uploads; {waited} jobs met it and waited; all ended {:.1}s after recovery; {}",
        scale.outage.as_secs(),
        n / 4,
        drained.as_secs_f64(),
        row.notes
    );
    Ok(row)
}

/// 3. Supervisors killed mid-job, then a job directory that runs out of space.
pub async fn executor_faults(server: &Path, dir: &Path, scale: &Scale) -> anyhow::Result<Row> {
    let started = Instant::now();
    let data = dir.join("faults");
    std::fs::create_dir_all(data.join("jobs"))?;
    // Jobs' directories on a small volume of their own (needs root to mount).
    let volume = TinyVolume::mount(&data.join("jobs"), "8m");
    let mut platform = Platform::new(
        server,
        &data,
        &[
            ("OSCAR_MAX_CONCURRENT_JOBS", "4"),
            ("OSCAR_JOB_MAX_ATTEMPTS", "3"),
        ],
    );
    platform.start().await?;

    // Supervisors killed: each killed job is retried and succeeds.
    let killed = Drill::new(&platform, "drill-killed", "1").await?;
    let acked = Arc::new(AtomicUsize::new(0));
    killed
        .upload(&platform, scale.killed_jobs, 8, acked.clone())
        .await??;
    let mut victims = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while victims.len() < scale.kills && Instant::now() < deadline {
        for pid in platform.supervisors() {
            if victims.len() < scale.kills && victims.insert(pid) {
                // SAFETY: plain syscall on a process of the server under test.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut row = killed.tally(&platform, scale.killed_jobs).await?;
    let retried = killed
        .logs_containing(&platform, "the supervisor ended without a report")
        .await?;
    let mut notes = vec![format!(
        "{} supervisors killed, {retried} jobs retried with the reason in their log",
        victims.len()
    )];

    match &volume {
        Ok(_) => {
            let full = disk_full(&platform, scale.after_full).await?;
            row.failed_as_expected = full.failed_as_expected;
            row.inputs += full.inputs;
            row.jobs += full.jobs;
            row.succeeded += full.succeeded;
            row.lost += full.lost;
            row.duplicated += full.duplicated;
            notes.push(full.notes);
        }
        Err(err) => notes.push(format!("disk-full part SKIPPED: {err:#}")),
    }
    platform.stop().await;
    drop(volume);
    row.drill = "executor faults: supervisor killed, disk full";
    row.seconds = started.elapsed().as_secs_f64();
    row.notes = notes.join("; ");
    Ok(row)
}

/// A script filling the job's volume and an input larger than it: both fail with the reason;
/// the jobs queued after them run as usual.
async fn disk_full(platform: &Platform, count: usize) -> anyhow::Result<Row> {
    const NO_SPACE: &str = "No space left on device";
    let fill = "drill-fill";
    platform
        .create_service(&json!({
            "name": fill,
            "image": "alpine",
            "script": "dd if=/dev/zero of=\"$TMP_OUTPUT_DIR/fill\" bs=1M count=16\n",
            "input": [{"storage_provider": "minio.default", "path": format!("{fill}/in")}],
            "output": [{"storage_provider": "minio.default", "path": format!("{fill}/out")}],
        }))
        .await?;
    let big = Drill::new(platform, "drill-big-input", "0").await?;
    let acked = Arc::new(AtomicUsize::new(0));
    upload(
        platform.store.clone(),
        fill.into(),
        vec!["1.txt".into()],
        |_| b"fill".to_vec(),
        1,
        acked.clone(),
    )
    .await??;
    upload(
        platform.store.clone(),
        big.service.clone(),
        vec!["big.bin".into()],
        |_| vec![7u8; 12 << 20],
        1,
        acked,
    )
    .await??;
    let fill_jobs = platform.settle(fill, 1, SETTLE).await?;
    let big_jobs = platform.settle(&big.service, 1, SETTLE).await?;
    let mut failed_as_expected = 0;
    for (service, jobs) in [(fill, &fill_jobs), (big.service.as_str(), &big_jobs)] {
        for job in jobs {
            let log = platform.job_log(service, &job.name).await?;
            if job.status == "Failed" && log.contains(NO_SPACE) {
                failed_as_expected += 1;
            } else {
                bail!(
                    "{service}: job {} ended {} without the reason in its log:\n{log}",
                    job.name,
                    job.status
                );
            }
        }
    }
    // The queue moves on once the space is back.
    let after = Drill::new(platform, "drill-after-full", "0").await?;
    after
        .upload(platform, count, 8, Arc::new(AtomicUsize::new(0)))
        .await??;
    let mut row = after.tally(platform, count).await?;
    row.failed_as_expected = failed_as_expected;
    row.inputs += 2;
    row.jobs += fill_jobs.len() + big_jobs.len();
    row.notes = format!(
        "disk full (8 MiB job volume): a script writing 16 MiB and a 12 MiB input failed with \"{NO_SPACE}\" in their logs; the {count} jobs queued after them succeeded"
    );
    Ok(row)
}

/// 4. PostgreSQL restarted during a burst.
pub async fn database_restart(
    server: &Path,
    dir: &Path,
    scale: &Scale,
    postgres: &str,
) -> anyhow::Result<Row> {
    let started = Instant::now();
    let n = scale.database_uploads;
    let database = format!("oscar_test_drill_{:08x}", rand::random::<u32>());
    psql(postgres, &format!("CREATE DATABASE {database}"))?;
    let (base, _) = postgres
        .rsplit_once('/')
        .context("the PostgreSQL URL has no database")?;
    let url = format!("{base}/{database}");
    let mut platform = Platform::new(
        server,
        &dir.join("database"),
        &[("DATABASE_URL", &url), ("OSCAR_MAX_CONCURRENT_JOBS", "8")],
    );
    platform.start().await?;
    let drill = Drill::new(&platform, "drill-database", "0.05").await?;
    let acked = Arc::new(AtomicUsize::new(0));
    let uploads = drill.upload(&platform, n, 8, acked.clone());
    until_acked(&acked, n / 3).await;
    let cluster = Cluster::find()?;
    cluster.run("stop")?;
    tokio::time::sleep(scale.database_down).await;
    cluster.run("start")?;
    uploads.await??;
    let mut row = drill.tally(&platform, n).await?;
    platform.stop().await;
    row.drill = "database: PostgreSQL stopped during a burst";
    row.seconds = started.elapsed().as_secs_f64();
    row.notes = format!(
        "PostgreSQL stopped for {}s after {} acknowledged uploads; {}",
        scale.database_down.as_secs(),
        n / 3,
        row.notes
    );
    Ok(row)
}

/// 5. A federation member killed (`kill -9`) while a busy edge hands it waiting jobs.
///
/// Every input ends with one job, at the edge or at the member, and its output in the edge's
/// store.
pub async fn federation(server: &Path, dir: &Path, scale: &Scale) -> anyhow::Result<Row> {
    let started = Instant::now();
    let n = scale.federation_uploads;
    let service = "drill-federation";
    let mut edge = Platform::new(
        server,
        &dir.join("federation-edge"),
        &[
            ("OSCAR_JOB_LEASE", "3"),
            ("OSCAR_MAX_CONCURRENT_JOBS", "1"),
            ("OSCAR_FEDERATION_PRIVATE_PEERS", "true"),
        ],
    );
    let mut cloud = Platform::new(
        server,
        &dir.join("federation-cloud"),
        &[("OSCAR_JOB_LEASE", "3")],
    );
    // The cloud's jobs note their runs beside the edge's.
    std::fs::create_dir_all(&edge.shared)?;
    cloud.set_env("OSCAR_JOB_MOUNTS", &format!("{}:rw", edge.shared.display()));
    cloud.start().await?;
    edge.start().await?;
    let member = json!({
        "cluster_id": "edge",
        "federation": {"topology": "star", "rescheduler_threshold": 1, "members": [
            {"type": "oscar", "cluster_id": "cloud", "service_name": service}]},
        "clusters": {"cloud": {"endpoint": format!("http://127.0.0.1:{}", cloud.http),
                               "auth_user": "oscar", "auth_password": crate::platform::PASSWORD}},
    });
    let drill = Drill::with(&edge, service, "0.3", member).await?;
    if cloud.jobs(service).await.is_err() {
        bail!("the service was not copied to the cloud member");
    }
    let acked = Arc::new(AtomicUsize::new(0));
    let uploads = drill.upload(&edge, n, 4, acked.clone());
    // Killed once it has taken a fifth of the inputs, while the edge keeps offering.
    let deadline = Instant::now() + Duration::from_secs(120);
    let taken = loop {
        let taken = cloud.jobs(service).await.map(|j| j.len()).unwrap_or(0);
        if taken >= n / 5 || Instant::now() > deadline {
            break taken;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    cloud.kill().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    cloud.start().await?;
    uploads.await??;
    let mut row = drill.tally_with(&edge, n, Some(&cloud)).await?;
    let handed = cloud.jobs(service).await?.len();
    edge.stop().await;
    cloud.stop().await;
    row.drill = "federation: the member killed (-9) while jobs are handed to it";
    row.seconds = started.elapsed().as_secs_f64();
    row.notes = format!(
        "the member was killed after taking {taken} jobs and restarted 3 s later; {handed} of {n} jobs ran there; {}",
        row.notes
    );
    Ok(row)
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("psql")
        .args([url, "-qtAX", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .status()
        .context("cannot run psql")?;
    if !status.success() {
        bail!("psql failed: {sql}");
    }
    Ok(())
}

/// Debian's PostgreSQL cluster (the one `scripts/postgres.sh` starts).
struct Cluster {
    version: String,
    name: String,
}

impl Cluster {
    fn find() -> anyhow::Result<Self> {
        let listed = std::process::Command::new("pg_lsclusters")
            .arg("-h")
            .output()
            .context("cannot run pg_lsclusters")?;
        let text = String::from_utf8_lossy(&listed.stdout);
        let mut fields = text.split_whitespace();
        match (fields.next(), fields.next()) {
            (Some(version), Some(name)) => Ok(Self {
                version: version.into(),
                name: name.into(),
            }),
            _ => bail!("no PostgreSQL cluster found"),
        }
    }

    fn run(&self, action: &str) -> anyhow::Result<()> {
        let mut command = if unsafe { libc::geteuid() } == 0 {
            std::process::Command::new("pg_ctlcluster")
        } else {
            let mut sudo = std::process::Command::new("sudo");
            sudo.arg("pg_ctlcluster");
            sudo
        };
        command.args([&self.version, &self.name, action]);
        if action == "stop" {
            command.args(["-m", "fast"]);
        }
        let status = command.status().context("cannot run pg_ctlcluster")?;
        if !status.success() {
            bail!("pg_ctlcluster {action} failed");
        }
        Ok(())
    }
}

/// A tmpfs of a fixed size mounted on a directory for the drill's lifetime.
struct TinyVolume {
    path: PathBuf,
}

impl TinyVolume {
    fn mount(path: &Path, size: &str) -> anyhow::Result<Self> {
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .context("cannot run mount")?;
        if !output.status.success() {
            bail!(
                "cannot mount a {size} tmpfs on {} (needs root): {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for TinyVolume {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}
