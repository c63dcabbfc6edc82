//! Jobs run in the sandbox (issue 22), in their service's image or with the host's programs:
//! from inside a job, everything of the platform is out of reach. Each attempt below works for
//! a plain child process of the server; the job reports what it could do.

mod common;

use common::TestApp;
use common::jobs;
use serde_json::json;
use server::config::ExecutorConfig;
use test_registry::{Registry, TestImage};

/// Shell lines that each try one escape and print `ESCAPED <what>` if it worked.
const ATTEMPTS: &str = r#"
try() { if sh -c "$2" >/dev/null 2>&1; then echo "ESCAPED $1"; else echo "blocked $1"; fi; }
try secrets-absolute "cat \"$DATA_DIR\"/secrets/*"
try secrets-relative "cat ../../secrets/*"
try database "head -c 16 \"$DATA_DIR/oscar.db\""
try store-files "ls \"$DATA_DIR/s3\""
try spool "ls \"$DATA_DIR/spool\""
try image-cache "ls \"$DATA_DIR/images\""
# The data directory by relative paths from the job's own: what holds it is not there at all.
try data-dir-relative "ls -a .. ../.. ../../.. | grep -qE '^(secrets|oscar\.db|s3|spool|images)$'"
try system-write "touch /usr/planted"
try server-environ "cat /proc/$SERVER_PID/environ | grep -q ."
try server-signal "kill -0 $SERVER_PID"
try host-processes "ls /proc | grep -qx $SERVER_PID"
try shadow "cat /etc/shadow"
try server-binary-write "test -w \"$SUPERVISOR\""
# The platform's files are read-only: the service's next job is given new ones in their place.
try platform-files "echo planted > /oscar/config/script.sh"
try store-keys "echo planted > /oscar/providers/minio.default/accessKey"
# An earlier job of the service ran where this one runs: nothing it left is here.
try left-behind "ls -a . tmp | grep -q left-by-a-job"
touch left-by-a-job tmp/left-by-a-job
# Whatever the sandbox's own root allows, nothing lands in the real data directory.
touch "$DATA_DIR/planted" 2>/dev/null
tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/result.txt"
"#;

#[tokio::test]
async fn a_job_in_its_image_reaches_nothing_of_the_platform() {
    let app = TestApp::new().await;
    assert!(matches!(app.config.executor, ExecutorConfig::Image(_)));
    attempt_escapes(app).await;
}

#[tokio::test]
async fn a_job_with_the_host_programs_reaches_nothing_of_the_platform() {
    let app = TestApp::with_config(|config| config.executor = ExecutorConfig::Host).await;
    attempt_escapes(app).await;
}

async fn attempt_escapes(mut app: TestApp) {
    let info = app.app.state.info.executor.clone();
    assert!(
        info.contains("in a sandbox"),
        "jobs are not sandboxed here: {info}"
    );
    let data_dir = app.config.data_dir.clone();
    let mut definition = jobs::service("escape", ATTEMPTS);
    definition["environment"] = json!({"variables": {
        "DATA_DIR": data_dir,
        "SERVER_PID": std::process::id().to_string(),
        "SUPERVISOR": env!("CARGO_BIN_EXE_server"),
    }});
    jobs::create(&mut app, definition).await;
    // One job after the other: the second runs where the first did.
    jobs::put(&app, "escape", "in/first.txt", b"first").await;
    jobs::finished(&mut app, "escape", 1).await;
    jobs::put(&app, "escape", "in/a.txt", b"still works").await;
    let finished = jobs::finished(&mut app, "escape", 2).await;
    for (job, state) in &finished {
        let log = jobs::log(&mut app, "escape", job).await;
        assert_eq!(state["status"], "Succeeded", "{log}");
        assert!(!log.contains("ESCAPED"), "{log}");
        assert_eq!(log.matches("blocked ").count(), 16, "{log}");
    }
    assert_eq!(
        jobs::get(&app, "escape", "out/result.txt").await.as_deref(),
        Some(&b"STILL WORKS"[..]),
        "the job still does its work"
    );
    assert!(!data_dir.join("planted").exists());
}

/// A warm worker owns its directory, `requests` in it too: one that makes `requests` a symlink
/// to a host directory (whose path a job reads in its `/proc/self/mountinfo`) gets no request
/// written there, the server never reads through it, and the worker starts afresh.
#[tokio::test]
async fn a_warm_worker_cannot_point_its_requests_elsewhere() {
    let mut app = TestApp::new().await;
    let target = tempfile::tempdir().unwrap();
    let script = r#"
# A worker's (and a cold job's) outputs are made in its directory's tmp.
worker="$(dirname "$(dirname "$TMP_OUTPUT_DIR")")"
if grep -q sabotage "$INPUT_FILE_PATH"; then
  mv "$worker/requests" "$worker/requests.old" && ln -s "$TARGET" "$worker/requests"
fi
if [ -e "$worker/requests" ]; then echo warm; else echo cold; fi > "$TMP_OUTPUT_DIR/out.txt"
"#;
    let mut definition = jobs::service("warm", script);
    definition["synchronous"] = json!({"min_scale": 1, "max_scale": 1});
    definition["environment"] = json!({"variables": {"TARGET": target.path()}});
    let bearer = format!("Bearer {}", jobs::create(&mut app, definition).await);
    // "warm\n": answered by a warm worker (until one is up, runs are cold jobs).
    let warm = |answer: &common::TestResponse| {
        answer.status == http::StatusCode::OK && answer.body.trim() == "d2FybQo="
    };
    let until_warm = async |app: &mut TestApp| {
        let started = std::time::Instant::now();
        loop {
            let answer = app.invoke("/run/warm", &bearer, "{}").await;
            let written: Vec<_> = std::fs::read_dir(target.path()).unwrap().collect();
            assert!(
                written.is_empty(),
                "the server wrote through the worker's symlink"
            );
            if warm(&answer) {
                return;
            }
            // Before the fix the server kept writing (and reading) through the symlink and
            // no worker ever answered again.
            let waited = started.elapsed();
            assert!(waited.as_secs() < 60, "no warm answer: {}", answer.body);
        }
    };
    until_warm(&mut app).await;
    // However this run ends, its worker's `requests` is a symlink after it.
    app.invoke("/run/warm", &bearer, r#"{"sabotage": true}"#)
        .await;
    // The next run finds `requests` a symlink: refused, and a new worker answers after it.
    until_warm(&mut app).await;
    assert!(std::fs::read_dir(target.path()).unwrap().next().is_none());
}

/// `OSCAR_JOB_MOUNTS` shows jobs a host directory, but never one holding or inside the data
/// directory.
#[tokio::test]
async fn job_mounts_never_reach_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    for mount in [
        format!("{}:rw", dir.path().display()),
        format!("{}/data/secrets", dir.path().display()),
    ] {
        let mut config = server::config::Config::embedded_for_tests(dir.path().join("data"));
        config.supervisor = Some(vec![
            env!("CARGO_BIN_EXE_server").into(),
            "supervise".into(),
        ]);
        std::fs::create_dir_all(dir.path().join("data/secrets")).unwrap();
        config.job_mounts = vec![domain::jobs::sandbox::JobMount::parse(&mount).unwrap()];
        let Err(refused) = server::startup::build(&config).await else {
            panic!("{mount}: the server started");
        };
        let refused = format!("{refused:#}");
        assert!(refused.contains("OSCAR_JOB_MOUNTS"), "{refused}");
        assert!(refused.contains("data directory"), "{refused}");
    }
}

/// An image whose only extra is a tool in `/usr/local/bin`.
pub fn image_with_tool() -> TestImage {
    TestImage::busybox().with_program(
        "only-in-image",
        "#!/bin/sh\necho \"from the image: $(tr a-z A-Z)\"\n",
    )
}

#[tokio::test]
async fn a_script_uses_the_tools_of_its_image_and_only_there() {
    let registry = Registry::start(None);
    let image = registry.push("team/tool:1", &image_with_tool()).await;
    let script = "only-in-image < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/out.txt\"\n";
    for executor in ["image", "host"] {
        let mut app = TestApp::with_config(|config| {
            if executor == "host" {
                config.executor = ExecutorConfig::Host;
            }
        })
        .await;
        let mut definition = jobs::service("tool", script);
        definition["image"] = json!(image);
        jobs::create(&mut app, definition).await;
        jobs::put(&app, "tool", "in/a.txt", b"hello").await;
        let finished = jobs::finished(&mut app, "tool", 1).await;
        let (job, state) = finished.iter().next().unwrap();
        let log = jobs::log(&mut app, "tool", job).await;
        let output = jobs::get(&app, "tool", "out/out.txt").await;
        if executor == "image" {
            assert_eq!(state["status"], "Succeeded", "{log}");
            assert_eq!(
                output.as_deref(),
                Some(&b"from the image: HELLO\n"[..]),
                "{log}"
            );
        } else {
            assert_eq!(
                state["status"], "Failed",
                "the host has no such tool: {log}"
            );
            assert!(log.contains("only-in-image"), "{log}");
        }
    }
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_the_job_with_the_reason() {
    let registry = Registry::start(Some(("alice", "s3cret")));
    registry.push("private/tool:1", &image_with_tool()).await;
    let mut app = TestApp::new().await;
    for (service, image, reason) in [
        (
            "missing",
            registry.reference("nothing/here:1"),
            "credentials",
        ),
        (
            "private",
            registry.reference("private/tool:1"),
            "credentials",
        ),
        (
            "garbled",
            "UPPER/Case:1".to_string(),
            "not an image reference",
        ),
    ] {
        let mut definition = jobs::service(service, "true");
        definition["image"] = json!(image);
        jobs::create(&mut app, definition).await;
        jobs::put(&app, service, "in/a.txt", b"x").await;
        let finished = jobs::finished(&mut app, service, 1).await;
        let (job, state) = finished.iter().next().unwrap();
        let log = jobs::log(&mut app, service, job).await;
        // Failed for good, not retried: the registry's answer will not change by itself.
        assert_eq!(state["status"], "Failed", "{service}: {log}");
        assert!(log.contains(reason), "{service}: {log}");
    }
    let public = Registry::start(None);
    let mut definition = jobs::service("absent", "true");
    definition["image"] = json!(public.reference("nothing/here:1"));
    jobs::create(&mut app, definition).await;
    jobs::put(&app, "absent", "in/a.txt", b"x").await;
    let finished = jobs::finished(&mut app, "absent", 1).await;
    let (job, state) = finished.iter().next().unwrap();
    let log = jobs::log(&mut app, "absent", job).await;
    assert_eq!(state["status"], "Failed", "{log}");
    assert!(
        log.contains("does not exist") || log.contains("unknown"),
        "{log}"
    );
}

#[tokio::test]
async fn services_on_one_image_pull_it_once() {
    let registry = Registry::start(None);
    let image = registry.push("team/shared:1", &image_with_tool()).await;
    let mut app = TestApp::new().await;
    for service in ["first", "second"] {
        let mut definition = jobs::service(service, "only-in-image < \"$INPUT_FILE_PATH\"");
        definition["image"] = json!(image);
        jobs::create(&mut app, definition).await;
    }
    for i in 0..3 {
        jobs::put(&app, "first", &format!("in/{i}.txt"), b"x").await;
        jobs::put(&app, "second", &format!("in/{i}.txt"), b"x").await;
    }
    for service in ["first", "second"] {
        let finished = jobs::finished(&mut app, service, 3).await;
        assert!(
            finished.values().all(|s| s["status"] == "Succeeded"),
            "{finished:?}"
        );
    }
    // Two layers of busybox and the tool, and the configuration: each downloaded once.
    assert_eq!(
        registry.requests(&["GET /v2/team/shared/blobs/", "\" 200 "]),
        3,
        "{}",
        registry.log()
    );
}

#[tokio::test]
async fn a_process_flood_a_memory_hog_and_a_disk_filler_fail_with_the_reason() {
    let mut app = TestApp::with_config(|config| {
        config.job_pids_limit = 64;
        config.job_disk_limit = 4 << 20;
    })
    .await;
    // A flood, not an exponential fork bomb: without cgroups the watchdog stops a bomb only
    // after it has run for a moment, which would starve the other tests on this machine.
    let bomb = "i=0\nwhile [ $i -lt 300 ]; do sleep 30 & i=$((i + 1)); done\nwait\n";
    let hog = "awk 'BEGIN { s = \"x\"; while (1) s = s s }'\n";
    let filler = "dd if=/dev/zero of=\"$TMP_OUTPUT_DIR/big\" bs=1M count=8\n";
    for (service, script) in [("bomb", bomb), ("hog", hog), ("filler", filler)] {
        let mut definition = jobs::service(service, script);
        definition["memory"] = json!("64Mi");
        jobs::create(&mut app, definition).await;
        jobs::put(&app, service, "in/a.txt", b"x").await;
    }
    for (service, reason) in [
        ("bomb", "more than 64 processes"),
        ("hog", "out of memory"),
        ("filler", "past 4 MiB (the job's disk limit)"),
    ] {
        let finished = jobs::finished(&mut app, service, 1).await;
        let (job, state) = finished.iter().next().unwrap();
        let log = jobs::log(&mut app, service, job).await;
        assert_eq!(state["status"], "Failed", "{service}: {log}");
        assert!(log.contains(reason), "{service}: {log}");
        assert!(log.contains("limited to memory 64 MiB"), "{log}");
        assert!(log.contains("disk 4 MiB (watchdog)"), "{log}");
    }
}

#[tokio::test]
async fn the_service_page_shows_a_first_pull_under_way() {
    let registry = Registry::start(None);
    let big = TestImage::busybox().with_random_layer("data", 64 << 20);
    let image = registry.push("team/big:1", &big).await;
    let mut app = TestApp::new().await;
    app.login().await;
    let mut definition = jobs::service("big", "true");
    definition["image"] = json!(image);
    jobs::create(&mut app, definition).await;
    let idle = app.call("jobs/list", &[("service", "big")]).await;
    assert_eq!(idle.json()["pulling"], json!(null), "{}", idle.body);
    jobs::put(&app, "big", "in/a.txt", b"x").await;
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let list = app.call("jobs/list", &[("service", "big")]).await.json();
        if let Some(percent) = list["pulling"].as_u64() {
            seen.push(percent);
        }
        let done = list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["state"] == "succeeded");
        if done || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(!seen.is_empty(), "the pull was never reported");
    assert!(seen.iter().all(|p| *p <= 100), "{seen:?}");
}
