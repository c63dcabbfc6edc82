//! The cluster-wide REST endpoints (`/system/status`, …) in embedded mode, on SQLite and
//! PostgreSQL, for the admin, a signed-in user and anonymous callers.

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::jobs::{create, finished, put, service};
use common::oidc::FakeOp;
use http::StatusCode;

async fn apps(op: &FakeOp) -> Vec<TestApp> {
    let mut apps = vec![TestApp::with_oidc(op.issuer()).await];
    if let Some(url) = common::fresh_postgres_database().await {
        apps.push(TestApp::with_oidc_on(op.issuer(), Some(url)).await);
    }
    apps
}

/// The host is the one node, with what running jobs asked for as its requests; the jobs and
/// the store are counted for the admin only, as upstream.
#[tokio::test]
async fn the_status_shows_this_host_and_for_the_admin_jobs_and_the_store() {
    let op = FakeOp::start().await;
    let alice = op.token_for("alice@test", 300);
    for mut app in apps(&op).await {
        let db = app.database().to_string();
        create(&mut app, service("stat", "sleep 2\n")).await;
        put(&app, "stat", "in/a.txt", b"a").await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            let answer = app.rest("GET", "/system/status", None).await;
            assert_eq!(answer.status, StatusCode::OK, "{db}: {}", answer.body);
            let status = answer.json();
            if status["cluster"]["nodes"][0]["cpu"]["request_cores"] == 500 {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{db}: the service's 0.5 CPU never requested: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(status["cluster"]["nodes_count"], 1);
        let host = &status["cluster"]["nodes"][0];
        assert_eq!(host["status"], "Ready", "{db}: {host}");
        assert_eq!(
            status["oscar"]["pods"]["states"]["Running"], 1,
            "{db}: {status}"
        );
        assert_eq!(host["memory"]["request_bytes"], 256 << 20, "{db}");
        let capacity = host["cpu"]["capacity_cores"].as_i64().unwrap();
        assert!(capacity >= 1000, "{db}: {host}");
        assert_eq!(
            status["cluster"]["metrics"]["cpu"]["total_schedulable_cores"],
            capacity - 500
        );
        assert_eq!(status["oscar"]["jobs_count"], 1);
        assert_eq!(status["minio"]["buckets_count"], 1, "{db}: {status}");
        assert_eq!(
            status["minio"]["total_objects"], 1,
            "{db}: folder markers are not objects"
        );
        assert_eq!(status["oscar"]["oidc"]["enabled"], true);
        assert_eq!(status["oscar"]["oidc"]["issuers"][0], op.issuer());

        // A user sees the nodes, not the platform's jobs or store.
        let user = app
            .rest_bearer("GET", "/system/status/", None, &alice)
            .await;
        assert_eq!(user.status, StatusCode::OK, "{db}: {}", user.body);
        let user = user.json();
        assert_eq!(user["cluster"]["nodes_count"], 1);
        assert_eq!(user["oscar"]["jobs_count"], 0);
        assert_eq!(user["minio"]["buckets_count"], 0);

        finished(&mut app, "stat", 1).await;
        let after = app.rest("GET", "/system/status", None).await.json();
        assert!(
            after["cluster"]["nodes"][0]["cpu"]["request_cores"].is_null(),
            "{after}"
        );
        assert_eq!(after["oscar"]["pods"]["states"]["Succeeded"], 1);

        app.forget_cookie();
        let anonymous = app.rest_as("GET", "/system/status", None, None).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    }
}

/// `/system/services/{name}/deployment`: a service that runs jobs is ready unless its latest
/// run failed for a platform reason (here an image that does not exist), whatever its
/// script's exit code; `?include=deployment` adds the same summary; `deployment/logs` is the
/// latest run's log. Only who may see the service may ask.
#[tokio::test]
async fn a_services_deployment_follows_its_latest_run() {
    let op = FakeOp::start().await;
    let bob = op.token_for("bob@test", 300);
    for mut app in apps(&op).await {
        let db = app.database().to_string();
        let fresh = app
            .rest("GET", "/system/services/no-such/deployment", None)
            .await;
        assert_eq!(fresh.status, StatusCode::NOT_FOUND, "{db}");

        create(&mut app, service("dep", "echo one\necho two\nexit 3\n")).await;
        let before = app
            .rest("GET", "/system/services/dep/deployment", None)
            .await;
        assert_eq!(before.status, StatusCode::OK, "{db}: {}", before.body);
        let before = before.json();
        assert_eq!(before["service_name"], "dep");
        assert_eq!(before["state"], "ready", "{db}: {before}");
        assert_eq!(before["resource_kind"], "job_service");
        assert!(before["last_transition_time"].is_string(), "{before}");
        let logs = app
            .rest("GET", "/system/services/dep/deployment/logs", None)
            .await
            .json();
        assert_eq!(logs["available"], false, "{db}: {logs}");
        assert_eq!(logs["entries"], serde_json::json!([]));

        put(&app, "dep", "in/a.txt", b"a").await;
        finished(&mut app, "dep", 1).await;
        let after = app
            .rest("GET", "/system/services/dep/deployment", None)
            .await
            .json();
        assert_eq!(
            after["state"], "ready",
            "{db}: a script's failure is its own: {after}"
        );
        assert_eq!(
            (
                after["active_instances"].as_i64(),
                after["affected_instances"].as_i64()
            ),
            (Some(0), Some(0))
        );
        let logs = app
            .rest(
                "GET",
                "/system/services/dep/deployment/logs?tailLines=2&timestamps=true",
                None,
            )
            .await
            .json();
        assert_eq!(logs["available"], true, "{db}: {logs}");
        let entries = logs["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{logs}");
        assert!(
            entries[1]["timestamp"]
                .as_str()
                .is_some_and(|t| t.starts_with("20")),
            "{logs}"
        );
        let untimed = app
            .rest(
                "GET",
                "/system/services/dep/deployment/logs?tailLines=x",
                None,
            )
            .await
            .json();
        assert!(
            untimed["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["message"] == "two"),
            "{untimed}"
        );
        assert!(untimed["entries"][0]["timestamp"].is_null(), "{untimed}");

        let mut broken = service("broken", "echo never\n");
        broken["image"] = serde_json::json!("ghcr.io/grycap/no-such-image:1");
        create(&mut app, broken).await;
        put(&app, "broken", "in/a.txt", b"a").await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            let status = app
                .rest("GET", "/system/services/broken/deployment", None)
                .await
                .json();
            if status["state"] != "ready" && status["state"] != "pending" {
                break status;
            }
            assert!(Instant::now() < deadline, "{db}: {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            matches!(status["state"].as_str(), Some("degraded" | "failed")),
            "{db}: {status}"
        );
        assert!(
            status["reason"]
                .as_str()
                .is_some_and(|r| r.contains("no-such-image")),
            "{db}: {status}"
        );

        let listed = app
            .rest("GET", "/system/services?include=deployment", None)
            .await
            .json();
        let states: Vec<(&str, &str)> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap(),
                    s["deployment"]["state"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            states[0],
            ("broken", status["state"].as_str().unwrap()),
            "{db}: {listed}"
        );
        assert_eq!(states[1], ("dep", "ready"));
        let plain = app.rest("GET", "/system/services/dep", None).await.json();
        assert!(
            plain.get("deployment").is_none(),
            "only when asked: {plain}"
        );
        let one = app
            .rest("GET", "/system/services/dep?include=deployment", None)
            .await
            .json();
        assert_eq!(one["deployment"]["state"], "ready");
        assert!(one["deployment"].get("service_name").is_none(), "{one}");

        for path in [
            "/system/services/dep/deployment",
            "/system/services/dep/deployment/logs",
        ] {
            let other = app.rest_bearer("GET", path, None, &bob).await;
            assert_eq!(
                other.status,
                StatusCode::NOT_FOUND,
                "{db}: {path}: {}",
                other.body
            );
            app.forget_cookie();
            let anonymous = app.rest_as("GET", path, None, None).await;
            assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{db}: {path}");
        }
    }
}
