//! Helpers of the job tests, whatever executor runs the jobs: services, uploads, waiting for
//! jobs through the REST history.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use http::StatusCode;
use serde_json::{Value, json};

use super::TestApp;

pub const UPPERCASE: &str = "tr a-z A-Z < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/$(basename \"$INPUT_FILE_PATH\")\"\necho \"processed $STORAGE_OBJECT_KEY\"\n";

pub fn service(name: &str, script: &str) -> Value {
    json!({
        "name": name,
        "image": "ghcr.io/grycap/alpine",
        "script": script,
        "memory": "256Mi",
        "cpu": "0.5",
        "input": [{"storage_provider": "minio.default", "path": format!("{name}/in")}],
        "output": [{"storage_provider": "minio.default", "path": format!("{name}/out")}],
    })
}

pub async fn create(app: &mut TestApp, definition: Value) -> String {
    let name = definition["name"].as_str().unwrap().to_string();
    let response = app.rest("POST", "/system/services", Some(definition)).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    let read = app
        .rest("GET", &format!("/system/services/{name}"), None)
        .await;
    read.json()["token"].as_str().unwrap().to_string()
}

pub async fn put(app: &TestApp, bucket: &str, key: &str, body: &[u8]) -> String {
    let put = app
        .app
        .state
        .s3
        .client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap();
    put.e_tag().unwrap().trim_matches('"').to_string()
}

pub async fn get(app: &TestApp, bucket: &str, key: &str) -> Option<Vec<u8>> {
    object(&app.app.state.s3.client, bucket, key).await
}

/// An object of any store, when there is one.
pub async fn object(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(object.body.collect().await.unwrap().to_vec())
}

/// The service's jobs as `GET /system/logs/{service}` lists them.
pub async fn jobs(app: &mut TestApp, service: &str) -> serde_json::Map<String, Value> {
    let response = app
        .rest("GET", &format!("/system/logs/{service}"), None)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.json()["jobs"].as_object().cloned().unwrap()
}

/// Waits (up to a minute, for slow machines) until `count` jobs of the service are finished.
pub async fn finished(
    app: &mut TestApp,
    service: &str,
    count: usize,
) -> serde_json::Map<String, Value> {
    finished_after(app, service, count, |_| async {}).await
}

/// [`finished`], running `each` (polling a provider, say) before every look.
pub async fn finished_after<F: Future<Output = ()>>(
    app: &mut TestApp,
    service: &str,
    count: usize,
    each: impl Fn(&TestApp) -> F,
) -> serde_json::Map<String, Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        each(app).await;
        let all = jobs(app, service).await;
        let done = all
            .values()
            .filter(|j| matches!(j["status"].as_str(), Some("Succeeded" | "Failed")))
            .count();
        if done >= count {
            return all;
        }
        assert!(Instant::now() < deadline, "jobs did not finish: {all:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn log(app: &mut TestApp, service: &str, job: &str) -> String {
    let response = app
        .rest("GET", &format!("/system/logs/{service}/{job}"), None)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.body
}

/// How many of `service`'s jobs have ended, from the database (finer than the REST history's
/// polling, and not limited to its first page).
pub async fn ended(app: &TestApp, service: &str) -> usize {
    let counts = domain::jobs::counts(&app.app.state.db, Some(service), None)
        .await
        .unwrap();
    let ended: i64 = counts
        .iter()
        .filter(|(state, _)| state.is_final())
        .map(|(_, n)| n)
        .sum();
    ended as usize
}
