//! Jobs of the host executor run in the sandbox (issue 22): from inside a job, everything of
//! the platform is out of reach. Each attempt below works for a plain child process of the
//! server; the job reports what it could do.

mod common;

use common::TestApp;
use common::jobs;
use serde_json::json;

/// Shell lines that each try one escape and print `ESCAPED <what>` if it worked.
const ATTEMPTS: &str = r#"
try() { if sh -c "$2" >/dev/null 2>&1; then echo "ESCAPED $1"; else echo "blocked $1"; fi; }
try secrets-absolute "cat \"$DATA_DIR\"/secrets/*"
try secrets-relative "cat ../../secrets/*"
try database "head -c 16 \"$DATA_DIR/oscar.db\""
try store-files "ls \"$DATA_DIR/s3\""
try spool "ls \"$DATA_DIR/spool\""
try system-write "touch /usr/planted"
try server-environ "cat /proc/$SERVER_PID/environ | grep -q ."
try server-signal "kill -0 $SERVER_PID"
try host-processes "ls /proc | grep -qx $SERVER_PID"
try shadow "cat /etc/shadow"
try server-binary-write "test -w \"$SUPERVISOR\""
# Whatever the sandbox's own root allows, nothing lands in the real data directory.
touch "$DATA_DIR/planted" 2>/dev/null
tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/result.txt"
"#;

#[tokio::test]
async fn a_job_reaches_nothing_of_the_platform() {
    let mut app = TestApp::new().await;
    let info = app.app.state.info.executor.clone();
    assert!(
        info.contains("each in a sandbox"),
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
    jobs::put(&app, "escape", "in/a.txt", b"still works").await;
    let finished = jobs::finished(&mut app, "escape", 1).await;
    let (job, state) = finished.iter().next().unwrap();
    let log = jobs::log(&mut app, "escape", job).await;
    assert_eq!(state["status"], "Succeeded", "{log}");
    assert!(!log.contains("ESCAPED"), "{log}");
    assert_eq!(log.matches("blocked ").count(), 11, "{log}");
    assert_eq!(
        jobs::get(&app, "escape", "out/result.txt").await.as_deref(),
        Some(&b"STILL WORKS"[..]),
        "the job still does its work: {log}"
    );
    assert!(!data_dir.join("planted").exists());
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
