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

/// `/system/metrics…` from the platform's record of runs: requests by kind, runs by outcome,
/// CPU and memory asked for times run time; kept when the jobs are deleted; scoped to what
/// the caller may see; bad parameters are a 400 naming them.
#[tokio::test]
async fn usage_metrics_count_every_run_and_outlive_the_jobs() {
    let op = FakeOp::start().await;
    let alice = op.token_for("alice@test", 300);
    for mut app in apps(&op).await {
        let db = app.database().to_string();
        let script = "case \"$INPUT_FILE_PATH\" in *bad*) exit 3;; esac\n\
                      cat \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/out\"\n";
        let token = create(&mut app, service("meter", script)).await;
        put(&app, "meter", "in/good.txt", b"a").await;
        put(&app, "meter", "in/bad.txt", b"b").await;
        finished(&mut app, "meter", 2).await;
        let run = app
            .invoke("/run/meter", &format!("Bearer {token}"), "hello")
            .await;
        assert_eq!(run.status, StatusCode::OK, "{db}: {}", run.body);

        let summary = app.rest("GET", "/system/metrics", None).await;
        assert_eq!(summary.status, StatusCode::OK, "{db}: {}", summary.body);
        let summary = summary.json();
        let totals = &summary["totals"];
        assert_eq!(totals["requests_count_total"], 3, "{db}: {summary}");
        assert_eq!(totals["requests_count_sync"], 1);
        assert_eq!(totals["requests_count_async"], 2);
        assert_eq!(totals["executions_count"], 3);
        assert_eq!(totals["executions_succeeded"], 2);
        assert_eq!(totals["executions_failed"], 1);
        assert_eq!(totals["services_count_total"], 1);
        assert_eq!(
            totals["users"],
            serde_json::json!([model::auth::ADMIN_OWNER])
        );
        let cpu = totals["cpu_seconds"].as_f64().unwrap();
        let memory = totals["memory_gib_seconds"].as_f64().unwrap();
        assert!(cpu > 0.0, "{summary}");
        // 256 MiB is half a GiB per core of the 0.5 asked for.
        assert!((memory / cpu - 0.5).abs() < 1e-9, "{db}: {cpu} {memory}");
        assert!((totals["cpu_hours_total"].as_f64().unwrap() - cpu / 3600.0).abs() < 1e-12);

        // The Jobs page's chart: today and the 13 days before, from the same records.
        app.login().await;
        let days = app.call("jobs/activity", &[]).await.json();
        let days = days.as_array().unwrap();
        assert_eq!(days.len(), 14, "{db}: {days:?}");
        assert_eq!(days[13]["runs"]["executions_count"], 3, "{db}: {days:?}");
        assert_eq!(days[12]["runs"]["executions_count"], 0);
        assert!(days[13]["day"].as_str().unwrap() > days[0]["day"].as_str().unwrap());

        // The glance panels: the last 24 hours by hour and by duration, and the buckets.
        for form in [vec![("service", "meter")], vec![]] {
            let glance = app.call("jobs/glance", &form).await;
            assert_eq!(glance.status, StatusCode::OK, "{db}: {}", glance.body);
            let glance = glance.json();
            let hours = glance["hours"].as_array().unwrap();
            assert_eq!(hours.len(), 24, "{db}: {glance}");
            let sum = |list: &Vec<serde_json::Value>, field: &str| {
                list.iter().map(|h| h[field].as_i64().unwrap()).sum::<i64>()
            };
            assert_eq!(sum(hours, "succeeded"), 2, "{db}: {glance}");
            assert_eq!(sum(hours, "failed"), 1, "{db}: {glance}");
            let durations = glance["durations"].as_array().unwrap();
            assert_eq!(durations.len(), 13, "{db}: {glance}");
            assert_eq!(sum(durations, "runs"), 3, "{db}: {glance}");
            assert_eq!(durations[12]["at_most_ms"], serde_json::Value::Null);
            assert_eq!(glance["storage"][0]["bucket"], "meter", "{db}: {glance}");
        }
        let missing = app.call("jobs/glance", &[("service", "nothere")]).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{db}");
        app.forget_cookie();

        // Deleting the jobs leaves the usage.
        let gone = app
            .rest("DELETE", "/system/logs/meter?all=true", None)
            .await;
        assert_eq!(gone.status, StatusCode::NO_CONTENT, "{db}: {}", gone.body);
        let again = app.rest("GET", "/system/metrics", None).await.json();
        assert_eq!(again["totals"]["executions_count"], 3, "{db}: {again}");

        let by_service = app
            .rest(
                "GET",
                "/system/metrics/breakdown?group_by=service&include_users=true",
                None,
            )
            .await
            .json();
        assert_eq!(by_service["items"][0]["key"], "meter", "{by_service}");
        assert_eq!(by_service["items"][0]["users"][0], model::auth::ADMIN_OWNER);
        let csv = app
            .rest(
                "GET",
                "/system/metrics/breakdown?group_by=user&format=csv",
                None,
            )
            .await;
        assert!(
            csv.body.starts_with("key,requests_count_total,"),
            "{}",
            csv.body
        );
        assert!(
            csv.body
                .contains(&format!("\n{},3,1,2,0,1,3,2,1,", model::auth::ADMIN_OWNER)),
            "{}",
            csv.body
        );

        let one = app.rest("GET", "/system/metrics/meter", None).await.json();
        assert_eq!(one["service_name"], "meter");
        assert_eq!(one["metrics"].as_array().unwrap().len(), 6, "{one}");
        let sync = app
            .rest(
                "GET",
                "/system/metrics/meter?metric=requests-sync-per-service",
                None,
            )
            .await
            .json();
        assert_eq!(
            (sync["service_id"].as_str(), sync["value"].as_f64()),
            (Some("meter"), Some(1.0))
        );

        let later = app
            .rest(
                "GET",
                "/system/metrics?start=2100-01-01T00:00:00Z&end=2100-01-02T00:00:00Z",
                None,
            )
            .await
            .json();
        assert_eq!(later["totals"]["executions_count"], 0, "{later}");

        for (path, field) in [
            ("/system/metrics?start=yesterday", "start"),
            (
                "/system/metrics?start=2026-02-01T00:00:00Z&end=2026-01-01T00:00:00Z",
                "end",
            ),
            ("/system/metrics/breakdown?group_by=planet", "group_by"),
            ("/system/metrics/breakdown", "group_by"),
            (
                "/system/metrics/breakdown?group_by=user&format=xml",
                "format",
            ),
            ("/system/metrics/meter?metric=joules", "metric"),
        ] {
            let bad = app.rest("GET", path, None).await;
            assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{path}: {}", bad.body);
            assert!(bad.body.contains(field), "{path}: {}", bad.body);
        }

        // Another user counts nothing of it and may not ask about it.
        let theirs = app
            .rest_bearer("GET", "/system/metrics", None, &alice)
            .await
            .json();
        assert_eq!(theirs["totals"]["executions_count"], 0, "{db}: {theirs}");
        assert_eq!(theirs["totals"]["users"], serde_json::json!([]));
        let denied = app
            .rest_bearer("GET", "/system/metrics/meter", None, &alice)
            .await;
        assert_eq!(denied.status, StatusCode::NOT_FOUND, "{db}");
        app.forget_cookie();
        let anonymous = app.rest_as("GET", "/system/metrics", None, None).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    }
}

/// `PUT /system/config` sets where services may pull images from (the admin only); creating
/// or updating a service with another image is a 400 naming it; an empty list allows any.
#[tokio::test]
async fn the_admin_limits_the_image_repositories_services_use() {
    let op = FakeOp::start().await;
    let alice = op.token_for("alice@test", 300);
    for mut app in apps(&op).await {
        let db = app.database().to_string();
        let config = app.rest("GET", "/system/config", None).await.json();
        assert_eq!(config["allowed_image_repositories"], serde_json::json!([]));
        create(&mut app, service("kept", "true\n")).await;

        let body = serde_json::json!({"allowed_image_repositories": ["ghcr.io/grycap/"]});
        let theirs = app
            .rest_bearer("PUT", "/system/config", Some(body.clone()), &alice)
            .await;
        assert_eq!(
            theirs.status,
            StatusCode::FORBIDDEN,
            "{db}: {}",
            theirs.body
        );
        let blank = serde_json::json!({"allowed_image_repositories": ["ghcr.io", " "]});
        let bad = app.rest("PUT", "/system/config/", Some(blank)).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{db}: {}", bad.body);
        assert!(
            bad.body.contains("allowed_image_repositories[1]"),
            "{}",
            bad.body
        );
        let set = app.rest("PUT", "/system/config", Some(body)).await;
        assert_eq!(set.status, StatusCode::OK, "{db}: {}", set.body);
        assert_eq!(set.json(), serde_json::json!(["ghcr.io/grycap"]));
        let config = app.rest("GET", "/system/config/", None).await.json();
        assert_eq!(
            config["allowed_image_repositories"],
            serde_json::json!(["ghcr.io/grycap"])
        );

        let mut elsewhere = service("elsewhere", "true\n");
        elsewhere["image"] = serde_json::json!("docker.io/library/alpine:3");
        let refused = app
            .rest("POST", "/system/services", Some(elsewhere.clone()))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{db}: {}",
            refused.body
        );
        assert!(refused.body.starts_with("image: "), "{}", refused.body);
        assert!(
            refused.body.contains("docker.io/library/alpine:3"),
            "{}",
            refused.body
        );
        let mut moved = service("kept", "true\n");
        moved["image"] = serde_json::json!("evil.example/ghcr.io/grycap/alpine");
        let refused = app.rest("PUT", "/system/services", Some(moved)).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{db}: {}",
            refused.body
        );
        let allowed = app
            .rest(
                "POST",
                "/system/services",
                Some(service("inside", "true\n")),
            )
            .await;
        assert_eq!(
            allowed.status,
            StatusCode::CREATED,
            "{db}: {}",
            allowed.body
        );

        let cleared = app
            .rest("PUT", "/system/config", Some(serde_json::json!({})))
            .await;
        assert_eq!(cleared.json(), serde_json::json!([]));
        let created = app.rest("POST", "/system/services", Some(elsewhere)).await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{db}: {}",
            created.body
        );

        app.forget_cookie();
        let anonymous = app
            .rest_as("PUT", "/system/config", Some(serde_json::json!({})), None)
            .await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    }
}

async fn job_reasons(app: &TestApp, service: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as("SELECT state, reason FROM jobs WHERE service = $1 ORDER BY created_at, name")
        .bind(service)
        .fetch_all(app.app.state.db.pool())
        .await
        .unwrap()
}

/// Quotas the admin sets per user, enforced by the platform in embedded mode: a job over the
/// owner's jobs quota waits (saying why) and runs once there is room, a synchronous run is
/// told at once (429), a job larger than the quota fails; buckets beyond the quota and an
/// upload beyond the storage quota are a 403 naming it. Users read their own quota only.
#[tokio::test]
async fn quotas_hold_jobs_back_and_refuse_buckets_and_uploads() {
    let op = FakeOp::start().await;
    let alice = op.token_for("alice@test", 300);
    let bob = op.token_for("bob@test", 300);
    for mut app in apps(&op).await {
        let db = app.database().to_string();
        let own = app
            .rest_bearer("GET", "/system/quotas/user", None, &alice)
            .await;
        assert_eq!(own.status, StatusCode::OK, "{db}: {}", own.body);
        let own = own.json();
        assert_eq!(own["user_id"], "alice@test");
        assert_eq!(own["resources"]["jobs"]["max"], -1, "{own}");
        let body = serde_json::json!({"jobs": 1});
        for (method, path) in [
            ("PUT", "/system/quotas/user/alice@test"),
            ("GET", "/system/quotas/user/bob@test"),
            ("PUT", "/system/quotas/defaults"),
        ] {
            let refused = app
                .rest_bearer(method, path, Some(body.clone()), &alice)
                .await;
            assert_eq!(
                refused.status,
                StatusCode::FORBIDDEN,
                "{db}: {method} {path}"
            );
        }
        let bad = app
            .rest(
                "PUT",
                "/system/quotas/user/alice@test",
                Some(serde_json::json!({"cpu": "lots"})),
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{db}: {}", bad.body);
        assert!(bad.body.starts_with("cpu: "), "{}", bad.body);

        // Everyone gets two buckets by default; alice one job and one CPU at a time, and 1 KiB.
        let defaults = app
            .rest(
                "PUT",
                "/system/quotas/defaults",
                Some(serde_json::json!({"minio": {"buckets": "2"}})),
            )
            .await;
        assert_eq!(defaults.json()["buckets"], 2, "{db}: {}", defaults.body);
        let set = serde_json::json!({"jobs": 1, "cpu": "1", "minio": {"storage_total": "1Ki"}});
        let report = app
            .rest("PUT", "/system/quotas/user/alice@test", Some(set))
            .await;
        assert_eq!(report.status, StatusCode::OK, "{db}: {}", report.body);
        let report = report.json();
        assert_eq!(report["resources"]["cpu"]["max"], 1000);
        assert_eq!(
            report["minio"]["buckets"]["max"], 2,
            "the default: {report}"
        );
        assert_eq!(report["minio"]["storage_total_bytes"]["max"], 1024);

        // Buckets: the service's and one more, then no more.
        let mut slow = service("alice-slow", "sleep 1\necho done\n");
        slow["input"] =
            serde_json::json!([{"storage_provider": "minio.default", "path": "alice-slow/in"}]);
        slow["output"] = serde_json::json!([]);
        let created = app
            .rest_bearer("POST", "/system/services", Some(slow), &alice)
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{db}: {}",
            created.body
        );
        let bucket = serde_json::json!({"bucket_name": "alice-files"});
        let made = app
            .rest_bearer("POST", "/system/buckets", Some(bucket), &alice)
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{db}: {}", made.body);
        let third = serde_json::json!({"bucket_name": "alice-more"});
        let refused = app
            .rest_bearer("POST", "/system/buckets", Some(third), &alice)
            .await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{db}: {}",
            refused.body
        );
        assert!(refused.body.contains("quota: buckets"), "{}", refused.body);
        let mut big = service("alice-big", "true\n");
        big["input"] =
            serde_json::json!([{"storage_provider": "minio.default", "path": "alice-big/in"}]);
        let refused = app
            .rest_bearer("POST", "/system/services", Some(big), &alice)
            .await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{db}: {}",
            refused.body
        );

        // Jobs: the second waits for the first, saying why; a sync run meanwhile is told.
        put(&app, "alice-slow", "in/1.txt", b"1").await;
        put(&app, "alice-slow", "in/2.txt", b"2").await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reasons = job_reasons(&app, "alice-slow").await;
            let waiting = reasons.iter().any(|(state, reason)| {
                state == "pending"
                    && reason
                        .as_deref()
                        .is_some_and(|r| r.contains("jobs quota: 1 of 1"))
            });
            if waiting && reasons.iter().any(|(state, _)| state == "running") {
                break;
            }
            assert!(Instant::now() < deadline, "{db}: {reasons:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let told = app
            .invoke("/run/alice-slow", &format!("Bearer {alice}"), "x")
            .await;
        assert_eq!(
            told.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{db}: {}",
            told.body
        );
        assert!(told.body.contains("quota"), "{}", told.body);
        let all = finished(&mut app, "alice-slow", 2).await;
        assert!(
            all.values().all(|j| j["status"] == "Succeeded"),
            "{db}: {all:?}"
        );

        // A job asking for more CPU than the quota never runs.
        let mut greedy = app
            .rest("GET", "/system/services/alice-slow", None)
            .await
            .json();
        greedy["cpu"] = serde_json::json!("2");
        let updated = app
            .rest_bearer("PUT", "/system/services", Some(greedy), &alice)
            .await;
        assert_eq!(
            updated.status,
            StatusCode::NO_CONTENT,
            "{db}: {}",
            updated.body
        );
        put(&app, "alice-slow", "in/3.txt", b"3").await;
        let all = finished(&mut app, "alice-slow", 3).await;
        let failed: Vec<_> = all.values().filter(|j| j["status"] == "Failed").collect();
        assert_eq!(failed.len(), 1, "{db}: {all:?}");
        let reasons = job_reasons(&app, "alice-slow").await;
        assert!(
            reasons.iter().any(|(_, r)| r
                .as_deref()
                .is_some_and(|r| r.contains("more than the owner's cpu quota"))),
            "{db}: {reasons:?}"
        );

        // Storage: the dashboard's upload stops at the room left.
        let signed_in = app.login_oidc(&op, "alice@test", "/").await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{db}");
        let small = app.upload("alice-files/a.txt", vec![b'a'; 600]).await;
        assert_eq!(small.status, StatusCode::OK, "{db}: {}", small.body);
        let large = app.upload("alice-files/b.txt", vec![b'b'; 600]).await;
        assert_eq!(large.status, StatusCode::FORBIDDEN, "{db}: {}", large.body);
        assert!(
            large.body.contains("quota: storage_total"),
            "{}",
            large.body
        );
        let used = app
            .rest_bearer("GET", "/system/quotas/user", None, &alice)
            .await
            .json();
        // The inputs (3 bytes) count too.
        assert_eq!(
            used["minio"]["storage_total_bytes"]["used"], 603,
            "{db}: {used}"
        );
        assert_eq!(used["minio"]["buckets"]["used"], 2);

        // Writes straight to the store with alice's keys are held to it too.
        let s3 = app.store_client_for(&alice).await;
        let fits = s3
            .put_object()
            .bucket("alice-files")
            .key("c.txt")
            .body(vec![b'c'; 100].into())
            .send()
            .await;
        assert!(fits.is_ok(), "{db}: {fits:?}");
        let over = s3
            .put_object()
            .bucket("alice-files")
            .key("d.txt")
            .body(vec![b'd'; 600].into())
            .send()
            .await
            .unwrap_err();
        let over = aws_sdk_s3::error::DisplayErrorContext(over).to_string();
        assert!(
            over.contains("QuotaExceeded") && over.contains("storage_total"),
            "{db}: {over}"
        );

        // Bob is not held by alice's quota, and the admin's account by none.
        let theirs = app
            .rest_bearer("GET", "/system/quotas/user", None, &bob)
            .await
            .json();
        assert_eq!(theirs["resources"]["jobs"]["max"], -1, "{theirs}");
        assert_eq!(theirs["minio"]["buckets"]["max"], 2);
        app.forget_cookie();
        let admin = app.rest("GET", "/system/quotas/user", None).await.json();
        assert_eq!(admin["minio"]["buckets"]["max"], -1, "{admin}");
    }
}

/// `GET /metrics`: Prometheus's text format for a scraper with `OSCAR_METRICS_TOKEN` or the
/// admin, nobody else; requests by route pattern, jobs by state, runs, claims and uploads.
#[tokio::test]
async fn prometheus_metrics_count_requests_jobs_and_uploads() {
    const TOKEN: &str = "scrape-token-0123456789";
    let op = FakeOp::start().await;
    let alice = op.token_for("alice@test", 300);
    let mut app = TestApp::with_config(|config| {
        config.oidc = Some(common::oidc::settings(op.issuer()));
        config.metrics_token = Some(server::config::Secret(TOKEN.into()));
    })
    .await;
    create(&mut app, service("metered", "echo ran\n")).await;
    put(&app, "metered", "in/a.txt", b"a").await;
    finished(&mut app, "metered", 1).await;
    app.rest("GET", "/system/services/metered", None).await;
    app.login().await;
    let uploaded = app.upload("metered/extra/b.txt", b"hello".to_vec()).await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.body);
    app.forget_cookie();

    let anonymous = app.rest_as("GET", "/metrics", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let user = app.rest_bearer("GET", "/metrics", None, &alice).await;
    assert_eq!(user.status, StatusCode::FORBIDDEN, "{}", user.body);
    let wrong = app
        .rest_bearer("GET", "/metrics", None, "scrape-token-wrong")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    let admin = app.rest("GET", "/metrics", None).await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);
    let scraped = app.rest_bearer("GET", "/metrics", None, TOKEN).await;
    assert_eq!(scraped.status, StatusCode::OK, "{}", scraped.body);
    let text = scraped.body;
    for expected in [
        "oscar_jobs{state=\"succeeded\"} 1",
        "oscar_jobs{state=\"pending\"} 0",
        "oscar_queue_depth 0",
        "oscar_job_duration_seconds_count{outcome=\"succeeded\"} 1",
        "oscar_job_dispatch_latency_seconds_count 1",
        "oscar_http_requests_total{route=\"/system/services/{name}\",method=\"GET\",status=\"200\"} ",
        "oscar_http_request_duration_seconds_bucket{le=\"0.005\",route=\"/system/services/{name}\",method=\"GET\"}",
        "oscar_uploads_total 1",
        "oscar_upload_bytes_total 5",
        "oscar_store_errors_total{kind=\"unavailable\"} ",
        "oscar_oidc_failures_total{kind=\"userinfo\"} ",
        "oscar_queue_oldest_pending_age_seconds 0",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(!text.contains("metered/extra"), "raw paths are not labels");

    // The Grafana dashboard in deploy/ is built on these series only.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/grafana/oscar-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    for expr in exprs {
        for (at, _) in expr.match_indices("oscar_") {
            let name: String = expr[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                text.lines().any(|line| line.starts_with(&name)),
                "the dashboard's {name} is not exposed ({expr})"
            );
        }
    }
}
