//! Keys to the embedded store for people and jobs: each reaches only what its holder may use,
//! through aws-sdk-s3 exactly as a user's own client (boto3, aws-cli, rclone) would.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use common::oidc::FakeOp;
use common::{TestApp, upstream_fields_missing, upstream_json};
use http::StatusCode;
use serde_json::json;
use server::config::{S3Credentials, Secret};

fn client(app: &TestApp, access_key: &str, secret_key: &str) -> Client {
    let credentials = S3Credentials {
        access_key: access_key.into(),
        secret_key: Secret(secret_key.into()),
    };
    server::startup::s3_client(
        &app.app.state.info.storage_endpoint,
        "us-east-1",
        &credentials,
    )
}

/// The store keys `GET /system/config` gives the holder of `token`.
async fn config_keys(app: &mut TestApp, token: &str) -> (String, String) {
    let config = app
        .rest_bearer("GET", "/system/config", None, token)
        .await
        .json();
    let provider = &config["minio_provider"];
    (
        provider["access_key"].as_str().unwrap().to_string(),
        provider["secret_key"].as_str().unwrap().to_string(),
    )
}

/// The S3 error code of a failed call ("" when it succeeded).
async fn refusal<T, E: std::error::Error + 'static>(
    call: impl Future<Output = Result<T, aws_sdk_s3::error::SdkError<E>>>,
) -> String {
    match call.await {
        Ok(_) => String::new(),
        Err(err) => {
            let text = format!("{}", DisplayErrorContext(&err));
            ["AccessDenied", "InvalidAccessKeyId"]
                .into_iter()
                .find(|code| text.contains(code))
                .unwrap_or(&*text)
                .to_string()
        }
    }
}

async fn put(s3: &Client, bucket: &str, key: &str) -> String {
    refusal(
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b"data"))
            .send(),
    )
    .await
}

async fn listed(s3: &Client, bucket: &str) -> String {
    refusal(s3.list_objects_v2().bucket(bucket).send()).await
}

#[tokio::test]
async fn users_get_keys_that_reach_only_the_buckets_they_may_use() {
    let op = FakeOp::start().await;
    let mut app = TestApp::with_oidc(op.issuer()).await;
    let alice = op.token_for("alice@test", 600);
    let bob = op.token_for("bob@test", 600);
    for (token, bucket, visibility, allowed) in [
        (&alice, "alice-data", "private", vec![]),
        (&bob, "bob-data", "private", vec![]),
        (&bob, "bob-public", "public", vec![]),
        (&bob, "bob-shared", "restricted", vec!["alice@test"]),
    ] {
        let body =
            json!({"bucket_name": bucket, "visibility": visibility, "allowed_users": allowed});
        let created = app
            .rest_bearer("POST", "/system/buckets", Some(body), token)
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    app.app
        .state
        .s3
        .client
        .put_object()
        .bucket("bob-data")
        .key("secret.txt")
        .body(ByteStream::from_static(b"bob's"))
        .send()
        .await
        .unwrap();

    let (access_key, secret_key) = config_keys(&mut app, &alice).await;
    assert!(access_key.starts_with("OSCU"), "{access_key}");
    assert_ne!(access_key, app.app.state.jobs.storage().access_key);
    let again = config_keys(&mut app, &alice).await;
    assert_eq!(again, (access_key.clone(), secret_key.clone()));
    let s3 = client(&app, &access_key, &secret_key);

    // Her own bucket, and bob's public and shared ones.
    for bucket in ["alice-data", "bob-public", "bob-shared"] {
        assert_eq!(put(&s3, bucket, "from-alice.txt").await, "", "{bucket}");
        assert_eq!(listed(&s3, bucket).await, "", "{bucket}");
        let read = s3
            .get_object()
            .bucket(bucket)
            .key("from-alice.txt")
            .send()
            .await;
        assert!(read.is_ok(), "{bucket}");
    }
    let buckets = s3.list_buckets().send().await.unwrap();
    let mut names: Vec<_> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    names.sort();
    assert_eq!(names, ["alice-data", "bob-public", "bob-shared"]);

    // Not bob's private bucket, by any operation; not buckets themselves; not missing ones.
    assert_eq!(listed(&s3, "bob-data").await, "AccessDenied");
    assert_eq!(put(&s3, "bob-data", "planted.txt").await, "AccessDenied");
    let read = s3.get_object().bucket("bob-data").key("secret.txt").send();
    assert_eq!(refusal(read).await, "AccessDenied");
    let deleted = s3
        .delete_object()
        .bucket("bob-data")
        .key("secret.txt")
        .send();
    assert_eq!(refusal(deleted).await, "AccessDenied");
    let copied = s3
        .copy_object()
        .bucket("alice-data")
        .key("stolen.txt")
        .copy_source("bob-data/secret.txt")
        .send();
    assert_eq!(refusal(copied).await, "AccessDenied");
    let copied = s3
        .copy_object()
        .bucket("alice-data")
        .key("copied.txt")
        .copy_source("bob-public/from-alice.txt")
        .send();
    assert_eq!(refusal(copied).await, "");
    assert_eq!(listed(&s3, "nowhere").await, "AccessDenied");
    let made = s3.create_bucket().bucket("alice-made").send();
    assert_eq!(refusal(made).await, "AccessDenied");
    let removed = s3.delete_bucket().bucket("alice-data").send();
    assert_eq!(refusal(removed).await, "AccessDenied");

    // Sharing is read at each request: unshared, the bucket is out of reach at once.
    let unshare = json!({"bucket_name": "bob-shared", "visibility": "private"});
    let changed = app
        .rest_bearer("PUT", "/system/buckets", Some(unshare), &bob)
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    assert_eq!(listed(&s3, "bob-shared").await, "AccessDenied");

    // Rotation: the old key stops working, the new one works.
    app.login_oidc(&op, "alice@test", "/").await;
    let rotated = app.call("system/rotate_store_credentials", &[]).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let rotated = rotated.json();
    let new_key = rotated["access_key"].as_str().unwrap();
    assert_ne!(new_key, access_key);
    assert_eq!(listed(&s3, "alice-data").await, "InvalidAccessKeyId");
    let s3 = client(&app, new_key, rotated["secret_key"].as_str().unwrap());
    assert_eq!(listed(&s3, "alice-data").await, "");
    assert_eq!(config_keys(&mut app, &alice).await.0, new_key);

    // Keys nobody was issued, and secrets that do not match, are refused.
    let guessed = client(&app, "OSCUAAAAAAAAAAAAAAAA", &secret_key);
    assert_eq!(listed(&guessed, "alice-data").await, "InvalidAccessKeyId");
    let wrong = client(&app, new_key, &secret_key);
    assert_ne!(listed(&wrong, "alice-data").await, "");

    // The admin keeps the root keys and cannot rotate them here.
    let admin = app.rest("GET", "/system/config", None).await.json();
    assert_eq!(
        admin["minio_provider"]["access_key"],
        app.app.state.jobs.storage().access_key
    );
    app.forget_cookie();
    app.login().await;
    let refused = app.call("system/rotate_store_credentials", &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
}

/// `GET /system/config` is upstream's `ConfigForUser`: the cluster's settings under `config`
/// (the Robot suite reads `["config"]["kueue_enable"]`), the caller's store keys under
/// `minio_provider` at the top, where oscar-python's storage client reads them.
#[tokio::test]
async fn the_config_has_upstreams_shape() {
    let op = FakeOp::start().await;
    let mut app = TestApp::with_oidc(op.issuer()).await;
    let alice = op.token_for("alice@test", 300);
    // oscar-python's storage client asks with a trailing slash.
    let answer = app
        .rest_bearer("GET", "/system/config/", None, &alice)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let missing = upstream_fields_missing(&answer.body, &upstream_json("config"));
    // No Knative here (upstream leaves the field out then too); `/run` works all the same.
    assert_eq!(missing, ["config.serverless_backend"]);
    assert!(answer.body.contains(r#""name":"oscar""#), "{}", answer.body);
    let config = answer.json();
    assert_eq!(config["config"]["kueue_enable"], false);
    assert_eq!(config["config"]["oidc_groups"], json!([common::oidc::VO]));
    assert_eq!(config["allowed_image_repositories"], json!([]));
    let (access_key, secret_key) = config_keys(&mut app, &alice).await;
    let s3 = client(&app, &access_key, &secret_key);
    assert_eq!(refusal(s3.list_buckets().send()).await, "");
}

#[tokio::test]
async fn answers_carrying_keys_are_never_cached() {
    let mut app = TestApp::new().await;
    app.login().await;
    let keys = app.call("system/store_credentials", &[]).await;
    assert_eq!(keys.status, StatusCode::OK, "{}", keys.body);
    let config = app.rest("GET", "/system/config", None).await;
    assert_eq!(config.status, StatusCode::OK, "{}", config.body);
    for answer in [keys, config] {
        assert_eq!(answer.headers[http::header::CACHE_CONTROL], "no-store");
    }
}

#[tokio::test]
async fn an_upload_with_a_users_own_key_starts_the_job() {
    let op = FakeOp::start().await;
    let mut app = TestApp::with_oidc(op.issuer()).await;
    let alice = op.token_for("alice@test", 600);
    let service = json!({"name": "echo", "image": "alpine", "script": "cat \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/out.txt\"",
        "input": [{"storage_provider": "minio.default", "path": "echo/in"}],
        "output": [{"storage_provider": "minio.default", "path": "echo/out"}]});
    let created = app
        .rest_bearer("POST", "/system/services", Some(service), &alice)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let (access_key, secret_key) = config_keys(&mut app, &alice).await;
    let s3 = client(&app, &access_key, &secret_key);
    assert_eq!(put(&s3, "echo", "in/a.txt").await, "");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = s3
            .get_object()
            .bucket("echo")
            .key("out/out.txt")
            .send()
            .await;
        if let Ok(output) = output {
            let bytes = output.body.collect().await.unwrap().into_bytes();
            assert_eq!(&bytes[..], b"data");
            break;
        }
        assert!(Instant::now() < deadline, "no output");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_jobs_key_reaches_its_services_buckets_only_while_it_runs() {
    let mut app = TestApp::new().await;
    let service = json!({"name": "slow", "image": "alpine",
        "script": "sleep 2; cp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/\"",
        "input": [{"storage_provider": "minio.default", "path": "slow/in"}],
        "output": [{"storage_provider": "minio.default", "path": "slow-out/out"}]});
    let created = app.rest("POST", "/system/services", Some(service)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let created = app
        .rest(
            "POST",
            "/system/buckets",
            Some(json!({"bucket_name": "other"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let root = app.app.state.s3.client.clone();
    root.put_object()
        .bucket("slow")
        .key("in/a.txt")
        .body(ByteStream::from_static(b"input"))
        .send()
        .await
        .unwrap();

    let job = running_job(&mut app, "slow").await;
    let (access_key, secret_key) = domain::store_keys::for_job(app.app.state.jobs.storage(), &job);
    assert_ne!(access_key, app.app.state.jobs.storage().access_key);
    let s3 = client(&app, &access_key, &secret_key);
    assert_eq!(listed(&s3, "slow").await, "");
    assert_eq!(listed(&s3, "slow-out").await, "");
    assert_eq!(listed(&s3, "other").await, "AccessDenied");
    assert_eq!(put(&s3, "other", "x.txt").await, "AccessDenied");
    let buckets = s3.list_buckets().send().await.unwrap();
    let mut names: Vec<_> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    names.sort();
    assert_eq!(names, ["slow", "slow-out"]);

    // The supervisor did its work with this key, which then stopped working.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jobs = app.rest("GET", "/system/logs/slow", None).await.json();
        let status = jobs["jobs"][&job]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if status == "Succeeded" {
            break;
        }
        assert_ne!(status, "Failed", "{jobs}");
        assert!(Instant::now() < deadline, "{jobs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = root.get_object().bucket("slow-out").key("out/a.txt").send();
    assert!(output.await.is_ok());
    assert_eq!(listed(&s3, "slow").await, "InvalidAccessKeyId");
}

/// The instances of a service (here warm workers) mount its folder with keys of their own:
/// they reach the mounted bucket alone, and only while the service has instances.
#[tokio::test]
async fn an_instance_key_reaches_its_mounted_bucket_only_while_there_are_instances() {
    let mut app = TestApp::new().await;
    let mut definition = json!({"name": "warm", "image": "alpine", "script": "true",
        "output": [{"storage_provider": "minio.default", "path": "warm-out/out"}],
        "mount": {"storage_provider": "minio", "path": "site/www"},
        "synchronous": {"min_scale": 1}});
    let created = app
        .rest("POST", "/system/services", Some(definition.clone()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let service = domain::services::get(&app.app.state.db, "warm")
        .await
        .unwrap()
        .unwrap();
    let (access_key, secret_key) =
        domain::store_keys::for_instances(app.app.state.jobs.storage(), &service);
    assert_eq!(access_key, "OSCI-warm");
    let s3 = client(&app, &access_key, &secret_key);
    assert_eq!(put(&s3, "site", "www/page.html").await, "");
    assert_eq!(listed(&s3, "site").await, "");
    assert_eq!(listed(&s3, "warm-out").await, "AccessDenied");
    // Another secret for the same key is not it.
    let forged = client(&app, &access_key, "0".repeat(64).as_str());
    assert!(
        listed(&forged, "site")
            .await
            .contains("SignatureDoesNotMatch")
    );

    // No instances any more: the key is gone.
    definition["synchronous"] = json!({"min_scale": 0});
    let updated = app.rest("PUT", "/system/services", Some(definition)).await;
    assert_eq!(updated.status, StatusCode::NO_CONTENT, "{}", updated.body);
    assert_eq!(listed(&s3, "site").await, "InvalidAccessKeyId");
}

/// The name of the service's job once it runs.
async fn running_job(app: &mut TestApp, service: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jobs = app
            .rest("GET", &format!("/system/logs/{service}"), None)
            .await
            .json();
        let running = jobs["jobs"]
            .as_object()
            .into_iter()
            .flatten()
            .find(|(_, job)| job["status"] == "Running");
        if let Some((name, _)) = running {
            return name.clone();
        }
        assert!(Instant::now() < deadline, "no running job: {jobs}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The owners of a service's jobs, as the admin sees them (job name → owner).
async fn job_owners(app: &mut TestApp, service: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jobs = app
            .rest("GET", &format!("/system/logs/{service}"), None)
            .await
            .json();
        let all = jobs["jobs"].as_object().cloned().unwrap_or_default();
        if all.len() >= count {
            let mut names: Vec<_> = all.keys().cloned().collect();
            names.sort();
            let mut owners = Vec::new();
            for name in names {
                let state = domain::jobs::require(
                    &app.app.state.db,
                    &domain::access::Caller::admin(),
                    service,
                    &name,
                )
                .await
                .unwrap();
                owners.push(state.owner);
            }
            owners.sort();
            return owners;
        }
        assert!(Instant::now() < deadline, "{jobs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn jobs_started_by_an_upload_belong_to_the_uploader_who_may_see_the_service() {
    let op = FakeOp::start().await;
    let mut app = TestApp::with_oidc(op.issuer()).await;
    let (alice, bob) = (
        op.token_for("alice@test", 600),
        op.token_for("bob@test", 600),
    );
    // bob shares a bucket with alice, and makes it the input of a service he keeps private.
    let share = json!({"bucket_name": "bobs-drop", "visibility": "restricted", "allowed_users": ["alice@test"]});
    let shared = app
        .rest_bearer("POST", "/system/buckets", Some(share), &bob)
        .await;
    assert_eq!(shared.status, StatusCode::CREATED, "{}", shared.body);
    for (name, visibility, input) in [
        ("shared", "public", "shared/in"),
        ("hidden", "private", "bobs-drop/in"),
    ] {
        let service = json!({"name": name, "image": "alpine", "script": "true",
            "visibility": visibility,
            "input": [{"storage_provider": "minio.default", "path": input}]});
        let created = app
            .rest_bearer("POST", "/system/services", Some(service), &bob)
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }

    let (access_key, secret_key) = config_keys(&mut app, &alice).await;
    let s3 = client(&app, &access_key, &secret_key);
    // Her own client, then the dashboard (the platform's key, her name in the metadata).
    assert_eq!(put(&s3, "shared", "in/own-client.txt").await, "");
    app.login_oidc(&op, "alice@test", "/").await;
    let request = http::Request::put("/api/upload/shared/in/dashboard.txt")
        .body(axum::body::Body::from("x"))
        .unwrap();
    let uploaded = app.send(request).await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.body);
    // Someone forging the metadata with their own key is still themselves.
    let forged = s3
        .put_object()
        .bucket("shared")
        .key("in/forged.txt")
        .metadata("oscar-uploader", "bob@test")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert!(forged.is_ok());
    assert_eq!(
        job_owners(&mut app, "shared", 3).await,
        ["alice@test", "alice@test", "alice@test"]
    );
    let mine = app
        .rest_bearer("GET", "/system/logs/shared", None, &alice)
        .await
        .json();
    assert_eq!(mine["jobs"].as_object().unwrap().len(), 3, "{mine}");

    // A service alice may not see keeps the job its owner's.
    assert_eq!(put(&s3, "bobs-drop", "in/a.txt").await, "");
    assert_eq!(job_owners(&mut app, "hidden", 1).await, ["bob@test"]);
    // Uploads by the platform itself (no user named) stay the owner's too.
    app.app
        .state
        .s3
        .client
        .put_object()
        .bucket("shared")
        .key("in/by-admin.txt")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        job_owners(&mut app, "shared", 4).await,
        ["alice@test", "alice@test", "alice@test", "bob@test"]
    );
}

/// `GET /system/info` (oscar-python's `get_cluster_info`, oscar-cli's `cluster info`):
/// upstream's fields in upstream's order, for the admin and signed-in users, 401 otherwise.
#[tokio::test]
async fn the_cluster_info_has_upstreams_fields() {
    let op = FakeOp::start().await;
    let mut app = TestApp::with_oidc(op.issuer()).await;
    let alice = op.token_for("alice@test", 300);
    let admin = app.rest("GET", "/system/info", None).await;
    let user = app.rest_bearer("GET", "/system/info/", None, &alice).await;
    for answer in [admin, user] {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert!(
            answer.body.starts_with(r#"{"version":""#),
            "{}",
            answer.body
        );
        let info = answer.json();
        assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
        assert!(matches!(
            info["architecture"].as_str(),
            Some("amd64" | "arm64")
        ));
        assert_eq!(info["kubernetes_version"], "", "embedded mode");
        let fields: Vec<&String> = info.as_object().unwrap().keys().collect();
        assert_eq!(fields.len(), 4, "{fields:?}");
    }
    app.forget_cookie();
    let anonymous = app.rest_as("GET", "/system/info", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
