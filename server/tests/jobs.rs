//! Event-driven execution end to end: uploads, `/job`, `/run`, the job history over REST,
//! deduplication, failures, timeouts, concurrency and restarts, with the real supervisor run
//! as a child process against the embedded S3.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use common::TestApp;
use common::jobs::{UPPERCASE, create, finished, get, jobs, log, put, service};
use domain::jobs::logs::LogView;
use domain::jobs::sandbox::JobMount;
use http::StatusCode;
use model::Timestamp;
use model::function::log::Stream;
use model::jobs::LogLine;
use serde_json::{Value, json};

#[tokio::test]
async fn an_upload_to_the_input_folder_becomes_a_job_and_its_output() {
    for mut app in TestApp::on_each_database().await {
        let db = app.database().to_string();
        create(&mut app, service("upper", UPPERCASE)).await;
        put(&app, "upper", "in/hello wörld.txt", b"hello").await;

        let all = finished(&mut app, "upper", 1).await;
        assert_eq!(all.len(), 1, "{db}: one upload, one job: {all:?}");
        let (name, job) = all.iter().next().unwrap();
        assert_eq!(job["status"], "Succeeded", "{db}: {job}");
        assert!(name.starts_with("upper-"), "{name}");
        for time in ["creation_time", "start_time", "finish_time"] {
            assert!(
                job[time].as_str().is_some_and(|t| t.ends_with('Z')),
                "{db}: {job}"
            );
        }
        assert_eq!(
            get(&app, "upper", "out/hello wörld.txt").await.as_deref(),
            Some(&b"HELLO"[..]),
            "{db}: the output lands in the output folder"
        );
        let text = log(&mut app, "upper", name).await;
        assert!(
            text.contains("processed in/hello wörld.txt"),
            "{db}: {text}"
        );
        let stamped = app
            .rest(
                "GET",
                &format!("/system/logs/upper/{name}?timestamps=true"),
                None,
            )
            .await;
        assert!(stamped.body.starts_with("20"), "{db}: {}", stamped.body);

        // The services list shows how busy each service is.
        app.login().await;
        let listed = app.call("services/list", &[]).await.json();
        let activity = &listed["services"][0]["activity"];
        assert_eq!(
            (activity["total"].as_i64(), activity["failed"].as_i64()),
            (Some(1), Some(0)),
            "{db}: {listed}"
        );
        assert!(activity["last"].as_i64().is_some(), "{db}: {listed}");
    }
}

#[tokio::test]
async fn a_repeated_minio_notification_never_starts_a_second_job() {
    let mut app = TestApp::new().await;
    let token = create(&mut app, service("dedupe", UPPERCASE)).await;
    let key = "in/cat photo été.txt";
    let etag = put(&app, "dedupe", key, b"meow").await;
    finished(&mut app, "dedupe", 1).await;

    // What MinIO posts for that same object: key query-escaped, one record.
    let event = json!({
        "EventName": "s3:ObjectCreated:Put",
        "Key": format!("dedupe/{key}"),
        "Records": [{"eventVersion": "2.0", "eventSource": "minio:s3", "eventTime": "2026-01-01T10:00:00.000Z",
            "eventName": "s3:ObjectCreated:Put",
            "s3": {"bucket": {"name": "dedupe"},
                   "object": {"key": "in%2Fcat+photo+%C3%A9t%C3%A9.txt", "size": 4, "eTag": etag}}}]
    });
    for _ in 0..2 {
        let response = app
            .invoke("/job/dedupe", &format!("Bearer {token}"), event.to_string())
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        assert_eq!(response.json()["created"], false, "{}", response.body);
    }
    assert_eq!(jobs(&mut app, "dedupe").await.len(), 1);

    // A new version of the object is new work.
    put(&app, "dedupe", key, b"purr").await;
    let all = finished(&mut app, "dedupe", 2).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        get(&app, "dedupe", "out/cat photo été.txt")
            .await
            .as_deref(),
        Some(&b"PURR"[..])
    );
}

#[tokio::test]
async fn job_requests_need_the_service_token_or_the_admin() {
    let mut app = TestApp::new().await;
    create(&mut app, service("guarded", "cat \"$INPUT_FILE_PATH\"\n")).await;
    let wrong = app.invoke("/job/guarded", "Bearer nope", "{}").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // A wrong token says nothing of whether the service exists; the admin learns it.
    let missing = app.invoke("/job/absent", "Bearer nope", "{}").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    let basic = base64::engine::general_purpose::STANDARD.encode("oscar:test-password");
    let absent = app
        .invoke("/job/absent", &format!("Basic {basic}"), "{}")
        .await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    let admin = app
        .invoke("/job/guarded", &format!("Basic {basic}"), r#"{"n": 1}"#)
        .await;
    assert_eq!(admin.status, StatusCode::CREATED, "{}", admin.body);
    let name = admin.json()["job_name"].as_str().unwrap().to_string();
    finished(&mut app, "guarded", 1).await;
    assert!(
        log(&mut app, "guarded", &name)
            .await
            .contains(r#"{"n": 1}"#)
    );

    // The admin's access log lists each invocation, never a credential.
    let access = app.rest("GET", "/system/logs", None).await;
    assert_eq!(access.status, StatusCode::OK, "{}", access.body);
    let entries = access.json()["logs"].as_array().cloned().unwrap();
    let seen: Vec<(String, u64, String)> = entries
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
                e["user"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("/job/guarded".to_string(), 401, "service-token".to_string()),
            ("/job/absent".to_string(), 401, "service-token".to_string()),
            ("/job/absent".to_string(), 404, "basic-auth".to_string()),
            ("/job/guarded".to_string(), 201, "basic-auth".to_string()),
        ]
    );
    assert!(
        !access.body.contains("test-password") && !access.body.contains(&basic),
        "{}",
        access.body
    );
}

#[tokio::test]
async fn a_failing_script_is_a_failed_job_with_its_exit_code_and_log() {
    let mut app = TestApp::new().await;
    let token = create(
        &mut app,
        service("broken", "echo 'about to fail' >&2\nexit 7\n"),
    )
    .await;
    let response = app
        .invoke("/job/broken", &format!("Bearer {token}"), "aGk=")
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    let name = response.json()["job_name"].as_str().unwrap().to_string();
    let all = finished(&mut app, "broken", 1).await;
    assert_eq!(all[&name]["status"], "Failed");
    let text = log(&mut app, "broken", &name).await;
    assert!(text.contains("about to fail"), "{text}");
    assert!(text.contains("the script exited with code 7"), "{text}");

    // The dashboard's record has the exit code and the reason.
    app.login().await;
    let listed = app.call("jobs/list", &[("service", "broken")]).await.json();
    let job = &listed["jobs"][0];
    assert_eq!(job["exit_code"], 7, "{listed}");
    assert_eq!(job["state"], "failed");
    assert_eq!(job["trigger"], "api");
}

#[tokio::test]
async fn a_job_over_its_time_limit_is_stopped() {
    let mut app = TestApp::with_config(|c| c.jobs.timeout = Duration::from_secs(1)).await;
    let token = create(&mut app, service("slow", "echo started\nsleep 30\n")).await;
    let started = Instant::now();
    app.invoke("/job/slow", &format!("Bearer {token}"), "{}")
        .await;
    let all = finished(&mut app, "slow", 1).await;
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the job was not stopped"
    );
    let (name, job) = all.iter().next().unwrap();
    assert_eq!(job["status"], "Failed");
    assert!(log(&mut app, "slow", name).await.contains("longer than 1s"));
}

#[tokio::test]
async fn a_synchronous_run_answers_with_the_output() {
    let mut app = TestApp::new().await;
    let token = create(&mut app, service("sync", UPPERCASE)).await;
    let encoded = base64::engine::general_purpose::STANDARD.encode("make me loud");
    let response = app
        .invoke("/run/sync", &format!("Bearer {token}"), encoded)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(response.body.trim())
        .unwrap();
    assert_eq!(decoded, b"MAKE ME LOUD");

    // Without output files the answer is what the script printed.
    create(
        &mut app,
        service("echo", "echo \"hello $(cat \"$INPUT_FILE_PATH\")\"\n"),
    )
    .await;
    let basic = base64::engine::general_purpose::STANDARD.encode("oscar:test-password");
    let response = app
        .invoke("/run/echo", &format!("Basic {basic}"), r#"{"who": "you"}"#)
        .await;
    assert_eq!(response.body, "hello {\"who\": \"you\"}\n");

    // A failing run is a 500 naming the job; every run is in the history as a sync job.
    create(&mut app, service("sync-fail", "exit 4\n")).await;
    let response = app
        .invoke("/run/sync-fail", &format!("Basic {basic}"), "{}")
        .await;
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        response.body.contains("exited with code 4"),
        "{}",
        response.body
    );
    app.login().await;
    let listed = app.call("jobs/list", &[("service", "sync")]).await.json();
    assert_eq!(listed["jobs"][0]["trigger"], "sync", "{listed}");
    assert_eq!(listed["jobs"][0]["state"], "succeeded", "{listed}");
}

#[tokio::test]
async fn a_service_never_runs_more_jobs_at_once_than_its_limit() {
    let mut app = TestApp::new().await;
    let mut definition = service("limited", "sleep 0.3\n");
    definition["annotations"] = json!({"oscar/max-concurrent-jobs": "2"});
    let token = create(&mut app, definition).await;
    for i in 0..6 {
        app.invoke(
            "/job/limited",
            &format!("Bearer {token}"),
            format!("{{\"i\": {i}}}"),
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut most = 0;
    loop {
        let all = jobs(&mut app, "limited").await;
        let running = all.values().filter(|j| j["status"] == "Running").count();
        most = most.max(running);
        assert!(running <= 2, "{running} jobs ran at once: {all:?}");
        if all.values().all(|j| j["status"] == "Succeeded") {
            break;
        }
        assert!(Instant::now() < deadline, "{all:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(most, 2, "the limit is also used");
}

#[tokio::test]
async fn jobs_queued_or_running_at_shutdown_finish_exactly_once_after_restart() {
    let mut app = TestApp::new().await;
    let mut definition = service(
        "restart",
        "sleep 0.2\necho done > \"$TMP_OUTPUT_DIR/$(basename \"$INPUT_FILE_PATH\")\"\n",
    );
    definition["annotations"] = json!({"oscar/max-concurrent-jobs": "4"});
    create(&mut app, definition).await;
    for i in 0..20 {
        put(&app, "restart", &format!("in/file-{i}.txt"), b"x").await;
    }
    // Some are running, most are queued.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (config, dir) = app.stop().await;

    let mut app = TestApp::start(config, dir).await;
    let all = finished(&mut app, "restart", 20).await;
    assert_eq!(all.len(), 20, "{all:?}");
    assert!(all.values().all(|j| j["status"] == "Succeeded"), "{all:?}");
    for i in 0..20 {
        assert!(
            get(&app, "restart", &format!("out/file-{i}.txt"))
                .await
                .is_some()
        );
    }
}

#[tokio::test]
async fn the_reconciler_queues_objects_whose_event_was_lost() {
    // A store that notifies nobody: objects arrive while the platform "is down".
    let mut app = TestApp::with_config(|c| c.jobs.reconcile_every = None).await;
    // Listed first, its bucket removed outside the platform: the others are still reconciled.
    create(&mut app, service("gone", UPPERCASE)).await;
    create(&mut app, service("lost", UPPERCASE)).await;
    let s3 = app.app.state.s3.clone();
    for key in ["in/", "out/"] {
        s3.client
            .delete_object()
            .bucket("gone")
            .key(key)
            .send()
            .await
            .unwrap();
    }
    s3.client
        .delete_bucket()
        .bucket("gone")
        .send()
        .await
        .unwrap();
    // Straight to disk would bypass S3 entirely; a second client talks to the same store but
    // the notification of this upload is dropped by deleting its job's record afterwards.
    s3.client
        .put_object()
        .bucket("lost")
        .key("in/a.txt")
        .body(ByteStream::from_static(b"a"))
        .send()
        .await
        .unwrap();
    finished(&mut app, "lost", 1).await;
    let db = app.app.state.db.clone();
    sqlx::query("DELETE FROM job_inputs")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM jobs")
        .execute(db.pool())
        .await
        .unwrap();

    let made = domain::jobs::events::reconcile(
        &db,
        &app.app.state.services,
        &app.app.state.jobs,
        &s3.client,
    )
    .await
    .unwrap();
    assert_eq!(made, 1);
    let again = domain::jobs::events::reconcile(
        &db,
        &app.app.state.services,
        &app.app.state.jobs,
        &s3.client,
    )
    .await
    .unwrap();
    assert_eq!(again, 0, "an object gets one job");
    let all = finished(&mut app, "lost", 1).await;
    assert_eq!(all.len(), 1);

    // Reported, then deleted before it was read back: nothing to run, and nothing to retry.
    let stored = domain::jobs::events::Stored {
        event_name: "Put",
        bucket: "lost",
        key: "in/deleted.txt",
        trigger: domain::jobs::Trigger::Bucket,
        signer: None,
    };
    let made = domain::jobs::events::stored_object(
        &db,
        &app.app.state.services,
        &app.app.state.jobs,
        &s3.client,
        stored,
    )
    .await
    .unwrap();
    assert!(made.is_empty(), "{made:?}");
}

#[tokio::test]
async fn the_job_history_pages_and_deletes_like_oscar() {
    let mut app = TestApp::new().await;
    let token = create(
        &mut app,
        service("history", "exit $(cat \"$INPUT_FILE_PATH\")\n"),
    )
    .await;
    for code in ["0", "0", "3"] {
        app.invoke(
            "/job/history",
            &format!("Bearer {token}"),
            format!("{code}\n"),
        )
        .await;
    }
    // Not base64, not JSON: kept as sent.
    let all = finished(&mut app, "history", 3).await;
    let failed: Vec<_> = all
        .iter()
        .filter(|(_, j)| j["status"] == "Failed")
        .collect();
    assert_eq!(failed.len(), 1, "{all:?}");

    // Without `all`, only succeeded jobs go.
    let response = app.rest("DELETE", "/system/logs/history", None).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    let left = jobs(&mut app, "history").await;
    assert_eq!(left.len(), 1);
    let name = left.keys().next().unwrap().clone();
    let response = app
        .rest("DELETE", &format!("/system/logs/history/{name}"), None)
        .await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    let response = app
        .rest("GET", &format!("/system/logs/history/{name}"), None)
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(jobs(&mut app, "history").await.is_empty());
    let response = app.rest("GET", "/system/logs/absent", None).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

/// The dashboard's record of one job (server function `jobs/list`), once `done` says so.
async fn record_when(
    app: &mut TestApp,
    service: &str,
    job: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = app.call("jobs/list", &[("service", service)]).await.json();
        let found = listed["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["name"] == job))
            .cloned();
        if let Some(record) = found.filter(&done) {
            return record;
        }
        assert!(Instant::now() < deadline, "{listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn platform_failures_are_retried_then_dead_lettered_until_someone_retries() {
    let mut app = TestApp::with_config(|c| c.jobs.max_attempts = 2).await;
    let token = create(&mut app, service("flaky", UPPERCASE)).await;
    app.login().await;
    // A notification for an object that is not (yet) there: the download fails, which is the
    // platform's problem, not the script's.
    let event = json!({"Records": [{"eventSource": "minio:s3", "eventTime": "2026-01-01T00:00:00Z",
        "s3": {"bucket": {"name": "flaky"}, "object": {"key": "in%2Flate.txt", "eTag": "e1"}}}]});
    let response = app
        .invoke("/job/flaky", &format!("Bearer {token}"), event.to_string())
        .await;
    let job = response.json()["job_name"].as_str().unwrap().to_string();

    let dead = record_when(&mut app, "flaky", &job, |j| j["state"] == "dead_lettered").await;
    assert_eq!(dead["attempts"], 2, "{dead}");
    let reason = dead["reason"].as_str().unwrap();
    assert!(
        reason.contains("cannot download flaky/in/late.txt"),
        "{reason}"
    );
    assert!(reason.contains("gave up after 2 attempts"), "{reason}");
    assert_eq!(jobs(&mut app, "flaky").await[&job]["status"], "Failed");

    // Only dead-lettered jobs can be retried.
    let refused = app
        .call("jobs/retry", &[("service", "flaky"), ("job", "flaky-nope")])
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);

    // The object arrives (its own upload makes its own job); the retried job now succeeds.
    put(&app, "flaky", "in/late.txt", b"late").await;
    let retried = app
        .call("jobs/retry", &[("service", "flaky"), ("job", &job)])
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    let done = record_when(&mut app, "flaky", &job, |j| j["state"] == "succeeded").await;
    assert_eq!(done["exit_code"], 0, "{done}");
    assert_eq!(done["reason"], Value::Null);

    // The Jobs page lists every service's jobs, newest first.
    let recent = app.call("jobs/recent", &[]).await.json();
    let names: Vec<&str> = recent["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&job.as_str()) && names.len() == 2,
        "{recent}"
    );
}

#[tokio::test]
async fn two_servers_on_one_postgresql_never_run_a_job_twice() {
    let Some(url) = common::fresh_postgres_database().await else {
        // `make test` always provides PostgreSQL (OSCAR_REQUIRE_POSTGRES); plain `cargo test`
        // without it has nothing to share.
        assert!(
            std::env::var("OSCAR_REQUIRE_POSTGRES").is_err(),
            "TEST_DATABASE_URL is required"
        );
        return;
    };
    let ran = tempfile::tempdir().unwrap();
    // Jobs write where the test reads, through a writable mount of their sandbox.
    let on = |url: String| {
        let mount = JobMount::parse(&format!("{}:rw", ran.path().display())).unwrap();
        move |config: &mut server::config::Config| {
            config.database_url = Some(url);
            config.job_mounts = vec![mount];
        }
    };
    let mut first = TestApp::with_config(on(url.clone())).await;
    let second = TestApp::with_config(on(url)).await;
    let mut definition = service(
        "shared",
        "echo \"$JOB_UUID\" >> \"$RAN/jobs\"\nsleep 0.05\n",
    );
    definition["environment"] = json!({"variables": {"RAN": ran.path()}});
    let token = create(&mut first, definition).await;
    for i in 0..40 {
        first
            .invoke(
                "/job/shared",
                &format!("Bearer {token}"),
                format!("{{\"i\": {i}}}"),
            )
            .await;
    }
    let all = finished(&mut first, "shared", 40).await;

    // Changes travel between the servers (LISTEN/NOTIFY): pages on one see the other's jobs.
    let mut heard = second.app.state.jobs.subscribe_changes();
    first.app.state.jobs.changed("shared", "probe");
    let change = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let change = heard.recv().await.unwrap();
            if change.job == "probe" {
                return change;
            }
        }
    })
    .await
    .expect("the other server hears about the change");
    assert_eq!(change.service, "shared");
    assert!(all.values().all(|j| j["status"] == "Succeeded"), "{all:?}");
    let lines = std::fs::read_to_string(ran.path().join("jobs")).unwrap();
    let mut names: Vec<&str> = lines.lines().collect();
    names.sort();
    let total = names.len();
    names.dedup();
    assert_eq!((total, names.len()), (40, 40), "every job ran exactly once");
}

#[tokio::test]
async fn a_long_log_is_capped_with_a_visible_notice() {
    let mut app = TestApp::with_config(|c| c.jobs.log_limit = 2_000).await;
    let token = create(
        &mut app,
        service(
            "chatty",
            "for i in $(seq 1 500); do echo \"line $i\"; done\n",
        ),
    )
    .await;
    let job = app
        .invoke("/job/chatty", &format!("Bearer {token}"), "{}")
        .await
        .json()["job_name"]
        .as_str()
        .unwrap()
        .to_string();
    finished(&mut app, "chatty", 1).await;
    let text = log(&mut app, "chatty", &job).await;
    assert!(text.contains("line 1\n"), "{text}");
    assert!(!text.contains("line 500"), "{text}");
    assert!(text.trim_end().ends_with("bytes were dropped]"), "{text}");
    assert!(text.len() < 2_300, "{}", text.len());
}

#[tokio::test]
async fn a_script_over_its_memory_fails_instead_of_taking_the_machine() {
    let mut app = TestApp::new().await;
    let mut definition = service(
        "greedy",
        "head -c 300000000 /dev/zero | tail -n 1 > /dev/null || exit 9\necho survived\n",
    );
    definition["memory"] = json!("64Mi");
    let token = create(&mut app, definition).await;
    let job = app
        .invoke("/job/greedy", &format!("Bearer {token}"), "{}")
        .await
        .json()["job_name"]
        .as_str()
        .unwrap()
        .to_string();
    let all = finished(&mut app, "greedy", 1).await;
    let text = log(&mut app, "greedy", &job).await;
    assert_eq!(all[&job]["status"], "Failed", "{text}");
    assert!(!text.contains("survived"), "{text}");
}

#[tokio::test]
async fn finished_jobs_past_their_retention_are_deleted() {
    let mut app = TestApp::new().await;
    let token = create(&mut app, service("old", "true\n")).await;
    app.invoke("/job/old", &format!("Bearer {token}"), "{}")
        .await;
    finished(&mut app, "old", 1).await;
    let db = app.app.state.db.clone();
    let past = Timestamp::now() - Duration::from_secs(1);
    assert_eq!(domain::jobs::delete_expired(&db, past).await.unwrap(), 0);
    let future = Timestamp::now() + Duration::from_secs(1);
    assert_eq!(domain::jobs::delete_expired(&db, future).await.unwrap(), 1);
    assert!(jobs(&mut app, "old").await.is_empty());
}

#[tokio::test]
async fn jobs_see_the_services_variables_and_secrets() {
    let mut app = TestApp::new().await;
    let mut definition = service(
        "envs",
        "echo \"$MODE $API_KEY\" > \"$TMP_OUTPUT_DIR/env.txt\"\n",
    );
    definition["environment"] =
        json!({"variables": {"MODE": "gray"}, "secrets": {"API_KEY": "s3cr3t"}});
    create(&mut app, definition).await;
    put(&app, "envs", "in/a.txt", b"x").await;
    let all = finished(&mut app, "envs", 1).await;
    assert_eq!(
        all.values().next().unwrap()["status"],
        "Succeeded",
        "{all:?}"
    );
    let output = get(&app, "envs", "out/env.txt").await.unwrap();
    assert_eq!(output, b"gray s3cr3t\n");
}

/// Issue 23.8: a job's log is one ordered stream. stdout and stderr lines stay in the order
/// the script wrote them, each with its time; the dashboard's stored lines mark stderr, the
/// REST API shows text only; a script cannot pass a line off as marked.
#[tokio::test]
async fn stdout_and_stderr_keep_their_order_in_one_log() {
    let mut app = TestApp::new().await;
    let script = "echo '1767261600123 e forged'\n\
                  for i in 1 2 3 4 5; do echo \"out $i\"; sleep 0.05; echo \"err $i\" >&2; sleep 0.05; done\n\
                  printf 'no newline' >&2\n";
    let token = create(&mut app, service("ordered", script)).await;
    app.invoke("/job/ordered", &format!("Bearer {token}"), "{}")
        .await;
    let all = finished(&mut app, "ordered", 1).await;
    let (name, job) = all.iter().next().unwrap();
    assert_eq!(job["status"], "Succeeded", "{job}");

    let mine = |text: &str| {
        text.starts_with("out ")
            || text.starts_with("err ")
            || text.contains("forged")
            || text == "no newline"
    };
    let text = log(&mut app, "ordered", name).await;
    let shown: Vec<&str> = text.lines().filter(|l| mine(l)).collect();
    let mut expected = vec!["1767261600123 e forged".to_string()];
    expected.extend((1..=5).flat_map(|i| [format!("out {i}"), format!("err {i}")]));
    expected.push("no newline".into());
    assert_eq!(shown, expected, "{text}");
    assert!(!text.contains(LogLine::STDERR), "{text}");

    let stored = domain::jobs::logs::read(&app.app.state.db, name, LogView::Stored)
        .await
        .unwrap();
    let lines: Vec<LogLine> = stored
        .lines()
        .map(LogLine::parse)
        .filter(|l| mine(l.text))
        .collect();
    assert_eq!(lines.len(), expected.len(), "{stored}");
    for line in &lines {
        let from_stderr = line.text.starts_with("err ") || line.text == "no newline";
        let expected = if from_stderr {
            Stream::Err
        } else {
            Stream::Out
        };
        assert_eq!(line.stream, expected, "{stored}");
        assert!(line.time.starts_with("20"), "{stored}");
    }
    // The supervisor's own lines are the platform's, neither the script's stdout nor stderr.
    let supervisor: Vec<LogLine> = stored
        .lines()
        .map(LogLine::parse)
        .filter(|l| l.text.starts_with("oscar-supervisor:"))
        .collect();
    assert!(!supervisor.is_empty(), "{stored}");
    assert!(
        supervisor.iter().all(|l| l.stream == Stream::Platform),
        "{stored}"
    );
    // Each line has the time it was written, not one time for a batch.
    let first = lines.iter().find(|l| l.text == "out 1").unwrap().time;
    let last = lines.iter().find(|l| l.text == "err 5").unwrap().time;
    assert_ne!(first, last, "{stored}");
}

/// Issue 23.4: a finished job runs again as a new job for the same person, on the same input
/// (past the one-job-per-object rule); an unfinished or synchronous job does not.
#[tokio::test]
async fn a_finished_job_runs_again_as_a_new_job() {
    let mut app = TestApp::new().await;
    let token = create(&mut app, service("again", UPPERCASE)).await;
    put(&app, "again", "in/a.txt", b"first").await;
    let all = finished(&mut app, "again", 1).await;
    let first = all.keys().next().unwrap().clone();
    app.login().await;
    let again = app
        .call("jobs/rerun", &[("service", "again"), ("job", &first)])
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let second: String = serde_json::from_str(&again.body).unwrap();
    assert_ne!(second, first);
    let all = finished(&mut app, "again", 2).await;
    assert_eq!(all[&second]["status"], "Succeeded", "{all:?}");
    let record = app
        .call("jobs/get", &[("service", "again"), ("job", &second)])
        .await
        .json();
    let original = app
        .call("jobs/get", &[("service", "again"), ("job", &first)])
        .await
        .json();
    assert_eq!(record["input"], "again/in/a.txt", "{record}");
    assert_eq!(record["trigger"], original["trigger"], "{record}");
    assert!(log(&mut app, "again", &second).await.contains("processed"));

    // A synchronous run answered its caller: it is not run again.
    let ran = app
        .invoke("/run/again", &format!("Bearer {token}"), "words")
        .await;
    assert_eq!(ran.status, StatusCode::OK, "{}", ran.body);
    let listed = app
        .call("jobs/list", &[("service", "again"), ("state", "succeeded")])
        .await
        .json();
    let sync = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["trigger"] == "sync")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = app
        .call("jobs/rerun", &[("service", "again"), ("job", &sync)])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(refused.body.contains("synchronous"), "{}", refused.body);

    // Nor a job of another service, named through this one.
    let stray = app
        .call("jobs/rerun", &[("service", "other"), ("job", &first)])
        .await;
    assert_eq!(stray.status, StatusCode::NOT_FOUND, "{}", stray.body);
}

/// Whether a process whose command line holds `marker` runs on this machine (sandboxed jobs'
/// processes are visible from outside their namespace).
fn process_with(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|line| {
            String::from_utf8_lossy(&line)
                .replace('\0', " ")
                .contains(marker)
        })
    })
}

/// Every file under `dir`, however deep.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => files.extend(files_under(&entry.path())),
            Ok(kind) if kind.is_file() => files.push(entry.path()),
            _ => {}
        }
    }
    files
}

/// Stop ends a running job's process at once and a pending job before it runs: both end
/// failed, saying who stopped them, with no outputs. Finished jobs cannot be stopped.
#[tokio::test]
async fn a_stopped_job_ends_at_once_and_a_pending_one_never_runs() {
    let mut app = TestApp::new().await;
    let script = "echo started\nsleep 61.25\necho never > \"$TMP_OUTPUT_DIR/out.txt\"\n";
    let mut definition = service("stoppable", script);
    definition["annotations"] = json!({"oscar/max-concurrent-jobs": "1"});
    let token = create(&mut app, definition).await;
    for i in 0..2 {
        let body = format!("{{\"i\": {i}}}");
        app.invoke("/job/stoppable", &format!("Bearer {token}"), body)
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let (running, pending) = loop {
        let all = jobs(&mut app, "stoppable").await;
        let named = |status: &str| {
            all.iter()
                .find(|(_, j)| j["status"] == status)
                .map(|(name, _)| name.clone())
        };
        if let (Some(running), Some(pending)) = (named("Running"), named("Pending"))
            && log(&mut app, "stoppable", &running)
                .await
                .contains("started")
        {
            break (running, pending);
        }
        assert!(Instant::now() < deadline, "no job started: {all:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(process_with("sleep 61.25"));

    app.login().await;
    let asked = Instant::now();
    for job in [&pending, &running] {
        let stopped = app
            .call("jobs/stop", &[("service", "stoppable"), ("job", job)])
            .await;
        assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.body);
    }
    let all = finished(&mut app, "stoppable", 2).await;
    assert!(asked.elapsed() < Duration::from_secs(30), "{all:?}");
    for job in [&pending, &running] {
        let record = app
            .call("jobs/get", &[("service", "stoppable"), ("job", job)])
            .await
            .json();
        assert_eq!(record["state"], "failed", "{record}");
        assert_eq!(record["reason"], "stopped by cluster_admin", "{record}");
        assert_eq!(record["outputs"], json!([]), "{record}");
    }
    let record = app
        .call("jobs/get", &[("service", "stoppable"), ("job", &pending)])
        .await
        .json();
    assert!(record["started_at"].is_null(), "it never ran: {record}");
    assert!(
        log(&mut app, "stoppable", &running)
            .await
            .contains("stopped by cluster_admin")
    );
    let gone = Instant::now() + Duration::from_secs(10);
    while process_with("sleep 61.25") {
        assert!(Instant::now() < gone, "the job's process outlived its stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(&app, "stoppable", "out/out.txt").await, None);
    // Its directory goes too, with its event: it is not kept for the service's next job.
    let jobs_dir = app.config.data_dir.join("jobs");
    while files_under(&jobs_dir)
        .iter()
        .any(|file| std::fs::read_to_string(file).is_ok_and(|text| text.contains("\"i\": ")))
    {
        assert!(Instant::now() < gone, "the stopped job's event stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let again = app
        .call("jobs/stop", &[("service", "stoppable"), ("job", &running)])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(
        again.body.contains("only pending and running"),
        "{}",
        again.body
    );
}

/// A stop asked of one server for a job another server runs reaches it with that server's
/// lease renewal (PostgreSQL: servers share the database).
#[tokio::test]
async fn a_job_running_on_another_server_stops_when_it_renews_its_lease() {
    let Some(url) = common::fresh_postgres_database().await else {
        assert!(
            std::env::var("OSCAR_REQUIRE_POSTGRES").is_err(),
            "TEST_DATABASE_URL is required"
        );
        return;
    };
    let on = |url: String| {
        move |config: &mut server::config::Config| {
            config.database_url = Some(url);
            config.jobs.lease = Duration::from_secs(3);
        }
    };
    let mut first = TestApp::with_config(on(url.clone())).await;
    let second = TestApp::with_config(on(url)).await;
    let token = create(&mut first, service("faraway", "echo started\nsleep 60\n")).await;
    first
        .invoke("/job/faraway", &format!("Bearer {token}"), "{}")
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let all = jobs(&mut first, "faraway").await;
        if let Some((job, _)) = all.iter().find(|(_, j)| j["status"] == "Running")
            && log(&mut first, "faraway", job).await.contains("started")
        {
            break job.clone();
        }
        assert!(Instant::now() < deadline, "the job never started: {all:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (owner,): (String,) = sqlx::query_as("SELECT lease_owner FROM jobs WHERE name = $1")
        .bind(&job)
        .fetch_one(first.app.state.db.pool())
        .await
        .unwrap();
    // Asked of the server that does not run it.
    let elsewhere = [&first, &second]
        .into_iter()
        .find(|app| app.app.state.jobs.instance() != owner)
        .unwrap();
    let (db, jobs_here) = (
        elsewhere.app.state.db.clone(),
        elsewhere.app.state.jobs.clone(),
    );
    let admin = domain::access::Caller::admin();
    domain::jobs::stop(&db, &jobs_here, &admin, "faraway", &job)
        .await
        .unwrap();
    let asked = Instant::now();
    let all = finished(&mut first, "faraway", 1).await;
    assert!(asked.elapsed() < Duration::from_secs(20), "{all:?}");
    let record = domain::jobs::require(&db, &admin, "faraway", &job)
        .await
        .unwrap();
    assert_eq!(record.state, domain::jobs::JobState::Failed);
    assert_eq!(record.reason.as_deref(), Some("stopped by cluster_admin"));
}
