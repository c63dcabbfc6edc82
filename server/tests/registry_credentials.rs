//! Registry credentials (issue 22): a service's `image_pull_secrets` name its owner's
//! credentials, with which the image executor pulls a private image. Another tenant can
//! neither name them nor run the image from the cache.

mod common;

use common::TestApp;
use common::jobs;
use common::oidc::FakeOp;
use http::StatusCode;
use serde_json::json;
use test_registry::{Registry, TestImage};

const PATH: &str = "/system/registry-credentials";

#[tokio::test]
async fn private_images_run_with_their_owners_credentials_only() {
    let registry = Registry::start(Some(("robot", "s3cret")));
    let tool = TestImage::busybox().with_program("private-tool", "#!/bin/sh\necho private\n");
    let image = registry.push("team/private:1", &tool).await;
    let op = FakeOp::start().await;
    let mut app = TestApp::with_oidc(op.issuer()).await;
    let alice = op.token_for("alice@test", 600);
    let bob = op.token_for("bob@test", 600);

    let robot = json!({"server": format!("http://{}/", registry.host), "username": "robot", "password": "s3cret"});
    for (name, body, field) in [
        ("Bad_Name", robot.clone(), "name"),
        (
            "robot",
            json!({"server": "", "username": "robot", "password": "x"}),
            "server",
        ),
        (
            "robot",
            json!({"server": registry.host, "username": "robot", "password": ""}),
            "password",
        ),
        ("robot", json!({"server": registry.host}), "body"),
    ] {
        let answer = app
            .rest_bearer("PUT", &format!("{PATH}/{name}"), Some(body), &alice)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            answer.body
        );
        assert!(answer.body.contains(field), "{field}: {}", answer.body);
    }
    let saved = app
        .rest_bearer("PUT", &format!("{PATH}/robot"), Some(robot), &alice)
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.json()["server"], registry.host);
    let listed = app.rest_bearer("GET", PATH, None, &alice).await;
    assert_eq!(listed.json()[0]["name"], "robot");
    assert!(!listed.body.contains("s3cret") && !saved.body.contains("s3cret"));
    assert_eq!(
        app.rest_bearer("GET", PATH, None, &bob).await.json(),
        json!([])
    );
    assert_eq!(
        app.rest_as("GET", PATH, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );

    let definition = |name: &str| {
        let mut definition = jobs::service(name, "private-tool > \"$TMP_OUTPUT_DIR/out.txt\"");
        definition["image"] = json!(image);
        definition["image_pull_secrets"] = json!(["robot"]);
        definition
    };
    // Bob cannot name Alice's credentials.
    let refused = app
        .rest_bearer("POST", "/system/services", Some(definition("bobs")), &bob)
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("image_pull_secrets[0]"),
        "{}",
        refused.body
    );

    let created = app
        .rest_bearer(
            "POST",
            "/system/services",
            Some(definition("alices")),
            &alice,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    jobs::put(&app, "alices", "in/a.txt", b"x").await;
    let finished = jobs::finished(&mut app, "alices", 1).await;
    let (job, state) = finished.iter().next().unwrap();
    let log = jobs::log(&mut app, "alices", job).await;
    assert_eq!(state["status"], "Succeeded", "{log}");
    assert_eq!(
        jobs::get(&app, "alices", "out/out.txt").await.as_deref(),
        Some(&b"private\n"[..])
    );

    // The image is in the cache now; Bob's service naming it without credentials still fails.
    let mut bobs = definition("bobs");
    bobs["image_pull_secrets"] = json!([]);
    let created = app
        .rest_bearer("POST", "/system/services", Some(bobs), &bob)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    jobs::put(&app, "bobs", "in/a.txt", b"x").await;
    let finished = jobs::finished(&mut app, "bobs", 1).await;
    let (job, state) = finished.iter().next().unwrap();
    let log = jobs::log(&mut app, "bobs", job).await;
    assert_eq!(state["status"], "Failed", "{log}");
    assert!(log.contains("needs credentials"), "{log}");

    let path = format!("{PATH}/robot");
    assert_eq!(
        app.rest_bearer("DELETE", &path, None, &bob).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.rest_bearer("DELETE", &path, None, &alice).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.rest_bearer("GET", PATH, None, &alice).await.json(),
        json!([])
    );
}
