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
