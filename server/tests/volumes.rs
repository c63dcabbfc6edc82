//! Managed volumes: upstream's `/system/volumes` shapes, jobs sharing a volume through the
//! sandbox, its size kept, its lifecycle with the services using it, and other users kept out.

mod common;

use common::TestApp;
use common::jobs::{create, finished, get, log, put, service};
use domain::access::Caller;
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn volumes_are_made_listed_and_deleted_in_upstreams_shapes() {
    let mut app = TestApp::new().await;
    let made = app
        .rest(
            "POST",
            "/system/volumes",
            Some(json!({"name": "data", "size": "1Gi"})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let volume = made.json();
    for field in [
        "name",
        "namespace",
        "pvc_name",
        "size",
        "owner_user",
        "created_by_service",
        "creation_mode",
        "lifecycle_policy",
        "attachments",
        "status",
    ] {
        assert!(volume.get(field).is_some(), "{field} in {volume}");
    }
    assert_eq!(
        (
            &volume["size"],
            &volume["creation_mode"],
            &volume["lifecycle_policy"]
        ),
        (&json!("1Gi"), &json!("api"), &json!("retain"))
    );
    assert_eq!(volume["status"]["phase"], "Bound", "{volume}");

    let again = app
        .rest(
            "POST",
            "/system/volumes",
            Some(json!({"name": "data", "size": "1Gi"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    for (body, field) in [
        (json!({"name": "big", "size": "6Gi"}), "size"),
        (json!({"name": "odd", "size": "lots"}), "size"),
        (json!({"name": "Bad_Name", "size": "1Mi"}), "name"),
    ] {
        let refused = app.rest("POST", "/system/volumes", Some(body)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(refused.body.starts_with(field), "{}", refused.body);
    }

    let listed = app.rest("GET", "/system/volumes", None).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let one = app.rest("GET", "/system/volumes/data", None).await;
    assert_eq!(one.json()["name"], "data");
    assert_eq!(
        app.rest("GET", "/system/volumes/absent", None).await.status,
        StatusCode::NOT_FOUND
    );
    let deleted = app.rest("DELETE", "/system/volumes/data", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert_eq!(
        app.rest("DELETE", "/system/volumes/data", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Jobs' anonymous callers reach none of it.
    let anonymous = app
        .rest_as("GET", "/system/volumes", None, None)
        .await
        .status;
    assert_eq!(anonymous, StatusCode::UNAUTHORIZED);
}

/// What one job writes to the volume the next one reads: the volume outlives the jobs, and is
/// refused deletion while a service uses it.
#[tokio::test]
async fn jobs_share_a_volume_that_outlives_them() {
    let mut app = TestApp::new().await;
    let made = app
        .rest(
            "POST",
            "/system/volumes",
            Some(json!({"name": "shared", "size": "10Mi"})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let mut definition = service(
        "keeper",
        "cat \"$INPUT_FILE_PATH\" >> /data/seen.txt\ncp /data/seen.txt \"$TMP_OUTPUT_DIR/seen-$(basename \"$INPUT_FILE_PATH\")\"\n",
    );
    definition["volume"] = json!({"name": "shared", "mount_path": "/data"});
    create(&mut app, definition).await;

    put(&app, "keeper", "in/1.txt", b"one\n").await;
    finished(&mut app, "keeper", 1).await;
    put(&app, "keeper", "in/2.txt", b"two\n").await;
    let jobs = finished(&mut app, "keeper", 2).await;
    for (name, job) in &jobs {
        let text = log(&mut app, "keeper", name).await;
        assert_eq!(job["status"], "Succeeded", "{job}\n{text}");
    }
    assert_eq!(
        get(&app, "keeper", "out/seen-2.txt").await.as_deref(),
        Some(&b"one\ntwo\n"[..])
    );

    let volume = app.rest("GET", "/system/volumes/shared", None).await.json();
    assert_eq!(
        volume["attachments"],
        json!([{"service_name": "keeper", "mount_path": "/data"}])
    );
    let refused = app.rest("DELETE", "/system/volumes/shared", None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("keeper"), "{}", refused.body);

    // A service's volume cannot change under it.
    let mut changed = app
        .rest("GET", "/system/services/keeper", None)
        .await
        .json();
    changed["volume"]["mount_path"] = json!("/elsewhere");
    let refused = app.rest("PUT", "/system/services", Some(changed)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.starts_with("volume"), "{}", refused.body);

    // Made through the API, it stays when its service goes.
    let deleted = app.rest("DELETE", "/system/services/keeper", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let volume = app.rest("GET", "/system/volumes/shared", None).await.json();
    assert_eq!(volume["attachments"], json!([]), "{volume}");
}

#[tokio::test]
async fn a_volume_a_service_made_goes_with_it_unless_retained() {
    let mut app = TestApp::new().await;
    for (name, lifecycle) in [("temporary", "delete"), ("kept", "retain")] {
        let mut definition = service(name, "true");
        definition["volume"] =
            json!({"size": "5Mi", "mount_path": "/work", "lifecycle_policy": lifecycle});
        create(&mut app, definition).await;
        let volume = app
            .rest("GET", &format!("/system/volumes/{name}"), None)
            .await
            .json();
        assert_eq!(
            (&volume["creation_mode"], &volume["created_by_service"]),
            (&json!("service"), &json!(name)),
            "{volume}"
        );
        let deleted = app
            .rest("DELETE", &format!("/system/services/{name}"), None)
            .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    }
    let left: Vec<String> = app
        .rest("GET", "/system/volumes", None)
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["kept"]);
}

#[tokio::test]
async fn a_job_filling_its_volume_past_its_size_is_stopped() {
    let mut app = TestApp::new().await;
    let mut definition = service(
        "filler",
        "head -c 3145728 /dev/zero > /data/big.bin\nsleep 5\n",
    );
    definition["volume"] = json!({"size": "1Mi", "mount_path": "/data"});
    create(&mut app, definition).await;
    put(&app, "filler", "in/go", b"go").await;
    let jobs = finished(&mut app, "filler", 1).await;
    let (name, job) = jobs.iter().next().unwrap();
    assert_eq!(job["status"], "Failed", "{job}");
    let text = log(&mut app, "filler", name).await;
    assert!(
        text.contains("the service's volume at /data grew past 1 MiB"),
        "{text}"
    );
}

/// A warm worker's request and an exposed service's instance are kept to their volume's size
/// as jobs are: the request fails, the instance is stopped, each saying why.
#[tokio::test]
async fn warm_workers_and_exposed_instances_keep_their_volume_to_its_size() {
    let mut app = TestApp::new().await;
    let fill = "head -c 3145728 /dev/zero > /data/big.bin\nsleep 10\n";
    let mut warm = service("wfiller", fill);
    warm["volume"] = json!({"size": "1Mi", "mount_path": "/data"});
    warm["synchronous"] = json!({"min_scale": 1, "max_scale": 1});
    let token = create(&mut app, warm).await;
    let answer = app
        .invoke("/run/wfiller", &format!("Bearer {token}"), "{}")
        .await;
    assert_eq!(
        answer.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        answer.body
    );
    let jobs = finished(&mut app, "wfiller", 1).await;
    let name = jobs.keys().next().unwrap();
    let text = log(&mut app, "wfiller", name).await;
    assert!(
        text.contains("the service's volume at /data grew past 1 MiB"),
        "{text}"
    );

    let mut exposed = service("efiller", fill);
    exposed["volume"] = json!({"size": "1Mi", "mount_path": "/data"});
    exposed["expose"] = json!({"api_port": 8080});
    create(&mut app, exposed).await;
    let started = std::time::Instant::now();
    loop {
        let logs = app
            .rest("GET", "/system/services/efiller/deployment/logs", None)
            .await;
        if logs
            .body
            .contains("the volume at /data holds more than its 1 MiB")
        {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{}",
            logs.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Volumes are each user's own: another user neither sees nor uses nor deletes them.
#[tokio::test]
async fn another_user_cannot_see_use_or_delete_a_volume() {
    let app = TestApp::new().await;
    let state = &app.app.state;
    let executor = state.jobs.executor().as_ref();
    let (alice, bob) = (Caller::user("alice", vec![]), Caller::user("bob", vec![]));
    let new = model::volumes::NewVolume {
        name: "private".into(),
        size: "1Mi".into(),
    };
    domain::volumes::create(&state.db, &state.services, executor, &alice, new)
        .await
        .unwrap();
    let listed = domain::volumes::list(&state.db, &state.services, executor, &bob)
        .await
        .unwrap();
    assert!(listed.is_empty());
    for outcome in [
        domain::volumes::get(&state.db, &state.services, executor, &bob, "private")
            .await
            .map(|_| ()),
        domain::volumes::delete(&state.db, &state.services, executor, &bob, "private").await,
    ] {
        assert!(
            matches!(outcome, Err(model::AppError::NotFound(_))),
            "{outcome:?}"
        );
    }
    let mut definition: model::service::Service =
        serde_json::from_value(service("bobs", "true")).unwrap();
    definition.inactive.insert(
        "volume".into(),
        json!({"name": "private", "mount_path": "/data"}),
    );
    let refused = domain::services::create(
        &state.db,
        &state.s3,
        executor,
        &bob,
        &[],
        definition,
        model::Timestamp::now(),
    )
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("no volume named \"private\""),
        "{refused}"
    );
}

/// An image's symlink cannot put a volume over what the platform mounts for the job
/// (`/data -> /oscar` would hide the supervisor behind the volume's files).
#[tokio::test]
async fn a_symlink_in_the_image_cannot_mount_a_volume_over_the_platforms_files() {
    use test_registry::{Layer, Registry, TestImage};
    let registry = Registry::start(None);
    let image = TestImage::busybox().with_layer(Layer::default().symlink("data", "/oscar"));
    let reference = registry.push("team/sly:1", &image).await;
    let mut app = TestApp::new().await;
    let mut definition = service("sly", "true\n");
    definition["image"] = json!(reference);
    definition["volume"] = json!({"size": "1Mi", "mount_path": "/data"});
    create(&mut app, definition).await;
    put(&app, "sly", "in/go", b"go").await;
    let jobs = finished(&mut app, "sly", 1).await;
    let (name, job) = jobs.iter().next().unwrap();
    let text = log(&mut app, "sly", name).await;
    assert_eq!(job["status"], "Failed", "{text}");
    assert!(
        text.contains("/data leads to /oscar in the image"),
        "{text}"
    );
}

/// A service stored with a volume that was never made fails its jobs once, saying so.
#[tokio::test]
async fn a_job_whose_volume_is_gone_fails_once_with_the_reason() {
    let mut app = TestApp::new().await;
    let mut definition = service("orphan", "true\n");
    definition["volume"] = json!({"size": "1Mi", "mount_path": "/data"});
    create(&mut app, definition).await;
    // Gone behind the platform's back (an operator, a restore from an older backup).
    sqlx::query("DELETE FROM volumes")
        .execute(app.app.state.db.pool())
        .await
        .unwrap();
    put(&app, "orphan", "in/go", b"go").await;
    let jobs = finished(&mut app, "orphan", 1).await;
    let (name, job) = jobs.iter().next().unwrap();
    assert_eq!(job["status"], "Failed", "{job}");
    let text = log(&mut app, "orphan", name).await;
    assert!(
        text.contains("the service's volume \"orphan\" does not exist"),
        "{text}"
    );
}
