//! The embedded S3 server, reached only through aws-sdk-s3 as an external MinIO would be.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::TestApp;
use http::StatusCode;

#[tokio::test]
async fn objects_round_trip_through_the_embedded_store() {
    let app = TestApp::new().await;
    let s3 = &app.app.state.s3;
    s3.client
        .create_bucket()
        .bucket("inputs")
        .send()
        .await
        .unwrap();
    let body = "hello from a scientist\n".repeat(100);
    s3.client
        .put_object()
        .bucket("inputs")
        .key("folder/with space/ünïcode.txt")
        .body(ByteStream::from(body.clone().into_bytes()))
        .send()
        .await
        .unwrap();

    let listed = s3
        .client
        .list_objects_v2()
        .bucket("inputs")
        .prefix("folder/")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["folder/with space/ünïcode.txt"]);

    let got = s3
        .client
        .get_object()
        .bucket("inputs")
        .key("folder/with space/ünïcode.txt")
        .send()
        .await
        .unwrap();
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes, body.as_bytes());

    // The data lives under the data dir.
    assert!(
        app.config
            .data_dir
            .join("s3/inputs/folder/with space/ünïcode.txt")
            .is_file()
    );
}

#[tokio::test]
async fn the_store_refuses_wrong_credentials() {
    let app = TestApp::new().await;
    let endpoint = app.app.state.info.storage_endpoint.clone();
    let creds = server::config::S3Credentials {
        access_key: "nobody".into(),
        secret_key: server::config::Secret("wrong-secret".into()),
    };
    let intruder = server::startup::s3_client(&endpoint, "us-east-1", &creds);
    let err = intruder.list_buckets().send().await.unwrap_err();
    let text = format!("{}", aws_sdk_s3::error::DisplayErrorContext(&err));
    assert!(
        text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch")
            || text.contains("403"),
        "{text}"
    );
}

#[tokio::test]
async fn the_buckets_page_lists_what_the_store_holds() {
    let mut app = TestApp::new().await;
    app.app
        .state
        .s3
        .client
        .create_bucket()
        .bucket("results")
        .send()
        .await
        .unwrap();
    app.app
        .state
        .s3
        .client
        .create_bucket()
        .bucket("inputs")
        .send()
        .await
        .unwrap();
    app.login().await;
    let listed = app.call("buckets/list", &[]).await.json();
    let names: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["inputs", "results"]);
    let page = app.get("/buckets").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(r#"data-bucket="results""#),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn generated_store_credentials_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = server::config::Config::embedded_for_tests(dir.path().join("data"));
    let mut first = server::startup::build(&config).await.unwrap();
    first
        .state
        .s3
        .client
        .create_bucket()
        .bucket("kept")
        .send()
        .await
        .unwrap();
    first.shutdown().await;
    let mut second = server::startup::build(&config).await.unwrap();
    let buckets = second.state.s3.client.list_buckets().send().await.unwrap();
    assert_eq!(
        buckets
            .buckets()
            .iter()
            .filter_map(|b| b.name())
            .collect::<Vec<_>>(),
        ["kept"]
    );
    second.shutdown().await;
}

/// A folder marker (`in/`) lists as a folder, as S3 and MinIO list it, empty or not, page by
/// page; a prefix climbing out of the bucket lists nothing.
#[tokio::test]
async fn empty_folders_list_as_folders() {
    let app = TestApp::new().await;
    let s3 = &app.app.state.s3.client;
    s3.create_bucket().bucket("marked").send().await.unwrap();
    for key in ["in/", "out/", "data/file.txt", "in/nested/", "top.txt"] {
        s3.put_object()
            .bucket("marked")
            .key(key)
            .body(ByteStream::from_static(b""))
            .send()
            .await
            .unwrap();
    }
    let folders = |prefix: &'static str, max_keys: i32| async move {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket("marked")
                .delimiter("/")
                .prefix(prefix)
                .max_keys(max_keys)
                .set_continuation_token(token)
                .send()
                .await
                .unwrap();
            found.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                return found;
            }
        }
    };
    assert_eq!(folders("", 1000).await, ["data/", "in/", "out/"]);
    assert_eq!(folders("", 1).await, ["data/", "in/", "out/"]);
    assert_eq!(folders("in/", 1000).await, ["in/nested/"]);
    assert_eq!(folders("o", 1000).await, ["out/"]);
    assert!(folders("in/nested/", 1000).await.is_empty());
    assert!(folders("../", 1000).await.is_empty());
}

/// A store written before markers were recorded keeps its empty folders (a service's `in/`)
/// visible after the upgrade: its first start records each empty directory as a marker.
#[tokio::test]
async fn empty_folders_of_an_earlier_store_are_kept() {
    let app = TestApp::new().await;
    app.app
        .state
        .s3
        .client
        .create_bucket()
        .bucket("older")
        .send()
        .await
        .unwrap();
    let (config, dir) = app.stop().await;
    let store = config.data_dir.join("s3");
    std::fs::remove_dir_all(store.join(".folders")).unwrap();
    std::fs::create_dir_all(store.join("older/in")).unwrap();
    std::fs::create_dir_all(store.join("older/data/empty")).unwrap();
    std::fs::write(store.join("older/data/x.txt"), b"x").unwrap();

    let app = TestApp::start(config, dir).await;
    let listed = |prefix: &'static str| {
        let s3 = app.app.state.s3.client.clone();
        async move {
            let page = s3
                .list_objects_v2()
                .bucket("older")
                .delimiter("/")
                .prefix(prefix)
                .send()
                .await
                .unwrap();
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_string))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("").await, ["data/", "in/"]);
    assert_eq!(listed("data/").await, ["data/empty/"]);
}
