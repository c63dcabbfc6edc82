//! External stores: the bucket notification rules a service puts on MinIO / RustFS (recorded
//! by a fake S3 endpoint), and the webhook endpoint those stores post to.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use common::TestApp;
use domain::store::{self, Store};
use http::StatusCode;
use serde_json::json;
use server::config::{S3Credentials, Secret};

const EXISTING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <QueueConfiguration><Id>user-rule</Id><Queue>arn:minio:sqs::other:webhook</Queue><Event>s3:ObjectRemoved:*</Event></QueueConfiguration>
  <QueueConfiguration><Id>oscar-ocr-0</Id><Queue>arn:minio:sqs::oscar:webhook</Queue><Event>s3:ObjectCreated:*</Event>
    <Filter><S3Key><FilterRule><Name>prefix</Name><Value>old/</Value></FilterRule></S3Key></Filter></QueueConfiguration>
</NotificationConfiguration>"#;

type Recorded = Arc<Mutex<Vec<(String, String)>>>;

/// Answers GetBucketNotificationConfiguration with `EXISTING` and records every
/// PutBucketNotificationConfiguration body, by bucket.
async fn fake_store() -> (String, Recorded) {
    let recorded: Recorded = Arc::default();
    let app = axum::Router::new()
        .route(
            // Path-style bucket operations: `/bucket/?notification`.
            "/{bucket}/",
            get(|RawQuery(q): RawQuery| async move {
                assert_eq!(q.as_deref(), Some("notification"));
                EXISTING
            })
            .put(
                |State(recorded): State<Recorded>,
                 Path(bucket): Path<String>,
                 RawQuery(q): RawQuery,
                 body: String| async move {
                    assert_eq!(q.as_deref(), Some("notification"));
                    recorded.lock().unwrap().push((bucket, body));
                    StatusCode::OK
                },
            ),
        )
        .with_state(recorded.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), recorded)
}

fn store(endpoint: &str) -> Store {
    let credentials = S3Credentials {
        access_key: "root".into(),
        secret_key: Secret("rootpassword".into()),
    };
    Store {
        client: server::startup::s3_client(endpoint, "us-east-1", &credentials),
        notify_arn: Some("arn:minio:sqs::oscar:webhook".into()),
        webhook_token: None,
        upload_limit: 1024,
        changes: Default::default(),
    }
}

#[tokio::test]
async fn input_folders_are_subscribed_keeping_other_rules() {
    let (endpoint, recorded) = fake_store().await;
    let service = model::service::Service::from_json(json!({
        "name": "ocr",
        "input": [
            {"storage_provider": "minio.default", "path": "scans/in"},
            {"storage_provider": "minio.default", "path": "scans/urgent"},
        ],
    }))
    .unwrap();
    store::subscribe(&store(&endpoint), &service).await.unwrap();

    let recorded = recorded.lock().unwrap().clone();
    assert_eq!(recorded.len(), 1, "one PUT per bucket: {recorded:?}");
    let (bucket, body) = &recorded[0];
    assert_eq!(bucket, "scans");
    // The user's own rule stays; the service's old rule is replaced by one per folder.
    assert!(body.contains("<Id>user-rule</Id>"), "{body}");
    assert!(!body.contains("old/"), "{body}");
    for (id, prefix) in [("oscar-ocr-0", "in/"), ("oscar-ocr-1", "urgent/")] {
        let rule = format!("<Id>{id}</Id>");
        let at = body
            .find(&rule)
            .unwrap_or_else(|| panic!("{rule} missing: {body}"));
        let rest = &body[at..];
        let end = rest.find("</QueueConfiguration>").unwrap();
        let rule = &rest[..end];
        assert!(
            rule.contains("<Queue>arn:minio:sqs::oscar:webhook</Queue>"),
            "{rule}"
        );
        assert!(rule.contains("<Event>s3:ObjectCreated:*</Event>"), "{rule}");
        assert!(rule.contains(&format!("<Value>{prefix}</Value>")), "{rule}");
    }
}

#[tokio::test]
async fn unsubscribing_removes_only_the_services_rules() {
    let (endpoint, recorded) = fake_store().await;
    store::unsubscribe(&store(&endpoint), "ocr", &["scans".into()])
        .await
        .unwrap();
    let (_, body) = recorded.lock().unwrap()[0].clone();
    assert!(
        body.contains("<Id>user-rule</Id>") && !body.contains("oscar-ocr"),
        "{body}"
    );
}

#[tokio::test]
async fn the_store_webhook_routes_events_to_services_with_its_own_token() {
    let mut app = TestApp::with_config(|c| {
        c.webhook_token = Some(Secret("webhook-secret-123456".into()));
    })
    .await;
    let service = json!({
        "name": "hooked", "image": "alpine", "script": "cat \"$INPUT_FILE_PATH\"\n",
        "input": [{"storage_provider": "minio.default", "path": "hooked/in"}],
    });
    assert_eq!(
        app.rest("POST", "/system/services", Some(service))
            .await
            .status,
        201
    );
    let token = app
        .rest("GET", "/system/services/hooked", None)
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let event = |key: &str, name: &str| {
        json!({"EventName": name, "Records": [{"eventSource": "minio:s3", "eventName": name,
            "eventTime": "2026-01-01T00:00:00Z",
            "s3": {"bucket": {"name": "hooked"}, "object": {"key": key, "eTag": "abc", "size": 1}}}]})
        .to_string()
    };
    let created = event("in%2Fa+b.txt", "s3:ObjectCreated:Put");

    // The service token is not the webhook's: it cannot forge storage events.
    let forged = app
        .invoke(
            "/system/store-events",
            &format!("Bearer {token}"),
            created.clone(),
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    let auth = "Bearer webhook-secret-123456";
    let first = app
        .invoke("/system/store-events", auth, created.clone())
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let jobs = first.json()["jobs"].clone();
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    let again = app.invoke("/system/store-events", auth, created).await;
    assert_eq!(
        again.json()["jobs"],
        jobs,
        "a repeated delivery is the same job"
    );

    let elsewhere = app
        .invoke(
            "/system/store-events",
            auth,
            event("other%2Fx.txt", "s3:ObjectCreated:Put"),
        )
        .await;
    assert_eq!(elsewhere.json()["jobs"], json!([]));
    let removed = app
        .invoke(
            "/system/store-events",
            auth,
            event("in%2Fc.txt", "s3:ObjectRemoved:Delete"),
        )
        .await;
    assert_eq!(removed.json()["jobs"], json!([]));
    let garbage = app.invoke("/system/store-events", auth, "{}").await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert!(garbage.body.starts_with("body:"), "{}", garbage.body);
}
