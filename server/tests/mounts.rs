//! A service's `mount` in embedded mode: rclone mounts the folder of a store into every job at
//! `/mnt/<path>`, through the store's own permissions; other users' buckets and odd
//! definitions are refused at save time.

mod common;

use std::time::Duration;

use common::TestApp;
use common::cluster::{app_on, cluster};
use common::jobs::{create, finished, get, log, put, service};
use common::webdav::{self, WebDav};
use domain::access::Caller;
use domain::services;
use http::StatusCode;
use model::Timestamp;
use model::service::Service;
use serde_json::json;

#[tokio::test]
async fn a_job_reads_and_writes_its_mounted_folder_and_sees_nothing_beside_it() {
    let mut app = TestApp::new().await;
    let mut definition = service(
        "mounter",
        "cat /mnt/team-files/data/hello.txt > \"$TMP_OUTPUT_DIR/read.txt\"\n\
         ls -a /mnt /mnt/team-files > \"$TMP_OUTPUT_DIR/beside.txt\"\n\
         echo \"from $(basename \"$INPUT_FILE_PATH\")\" > /mnt/team-files/data/written.txt\n\
         mkdir -p /mnt/team-files/data/sub && head -c 3000000 /dev/zero > /mnt/team-files/data/sub/big.bin\n",
    );
    definition["mount"] = json!({"storage_provider": "minio", "path": "team-files/data"});
    create(&mut app, definition).await;
    put(
        &app,
        "team-files",
        "data/hello.txt",
        b"hello from the bucket",
    )
    .await;

    put(&app, "mounter", "in/a.txt", b"a").await;
    let jobs = finished(&mut app, "mounter", 1).await;
    let (name, job) = jobs.iter().next().unwrap();
    let text = log(&mut app, "mounter", name).await;
    assert_eq!(job["status"], "Succeeded", "{job}\n{text}");
    assert_eq!(
        get(&app, "mounter", "out/read.txt").await.as_deref(),
        Some(&b"hello from the bucket"[..])
    );
    // Only the folder: not the rest of its bucket, nor the rest of the store.
    let beside = String::from_utf8(get(&app, "mounter", "out/beside.txt").await.unwrap()).unwrap();
    assert_eq!(
        beside,
        "/mnt:\n.\n..\nteam-files\n\n/mnt/team-files:\n.\n..\ndata\n"
    );
    // Written back to the store by the time the job is over.
    assert_eq!(
        get(&app, "team-files", "data/written.txt").await.as_deref(),
        Some(&b"from a.txt\n"[..])
    );
    assert_eq!(
        get(&app, "team-files", "data/sub/big.bin")
            .await
            .map(|b| b.len()),
        Some(3_000_000)
    );

    // As upstream, the mounted bucket is the user's: it stays when the service goes.
    let deleted = app.rest("DELETE", "/system/services/mounter", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert!(get(&app, "team-files", "data/written.txt").await.is_some());
}

/// Written files stream to the store with no local copy (as upstream's): a job may write
/// more to its mount than its own disk limit.
#[tokio::test]
async fn a_mount_takes_no_disk_of_the_server() {
    let mut app = TestApp::with_config(|config| config.job_disk_limit = 1_000_000).await;
    let mut definition = service(
        "streamed",
        "{ head -c 3000000 /dev/zero; sleep 1; } > /mnt/big-files/data/big.bin\n",
    );
    definition["mount"] = json!({"storage_provider": "minio", "path": "big-files/data"});
    create(&mut app, definition).await;
    put(&app, "streamed", "in/go", b"go").await;
    let jobs = finished(&mut app, "streamed", 1).await;
    let (job, state) = jobs.iter().next().unwrap();
    let text = log(&mut app, "streamed", job).await;
    assert_eq!(state["status"], "Succeeded", "{state}\n{text}");
    assert_eq!(
        get(&app, "big-files", "data/big.bin")
            .await
            .map(|b| b.len()),
        Some(3_000_000)
    );
}

/// A WebDAV server's folder, with its basic-auth password (which rclone takes obscured).
#[tokio::test]
async fn a_webdav_folder_is_mounted_with_the_services_credentials() {
    let dav = WebDav::start().await;
    dav.write("shared/notes/input.txt", b"from the dav server");
    let mut app = TestApp::new().await;
    let mut definition = service(
        "davmount",
        "cat /mnt/shared/notes/input.txt > \"$TMP_OUTPUT_DIR/copy.txt\"\n\
         echo done > /mnt/shared/notes/result.txt\n",
    );
    definition["storage_providers"] = json!({"webdav": {"dcache": dav.provider(webdav::PASSWORD)}});
    definition["mount"] = json!({"storage_provider": "webdav.dcache", "path": "shared/notes"});
    create(&mut app, definition).await;
    put(&app, "davmount", "in/go", b"go").await;
    let jobs = finished(&mut app, "davmount", 1).await;
    let (name, job) = jobs.iter().next().unwrap();
    let text = log(&mut app, "davmount", name).await;
    assert_eq!(job["status"], "Succeeded", "{job}\n{text}");
    assert!(!text.contains(webdav::PASSWORD), "{text}");
    assert_eq!(
        get(&app, "davmount", "out/copy.txt").await.as_deref(),
        Some(&b"from the dav server"[..])
    );
    assert_eq!(
        dav.read("shared/notes/result.txt").as_deref(),
        Some(&b"done\n"[..])
    );
}

#[tokio::test]
async fn another_users_bucket_cannot_be_mounted() {
    for app in TestApp::on_each_database().await {
        let (db, s3) = (&app.app.state.db, &app.app.state.s3);
        let executor = app.app.state.jobs.executor().as_ref();
        let bob = Caller::user("bob", vec![]);
        let carol = Caller::user("carol", vec![]);
        let mounting = |name: &str, path: &str| {
            let mut definition = service(name, "true");
            definition["mount"] = json!({"storage_provider": "minio.default", "path": path});
            Service::from_json(definition).unwrap()
        };
        services::create(
            db,
            s3,
            executor,
            &bob,
            &[],
            mounting("bobs", "bobs-files/private"),
            Timestamp::from_millis(1),
        )
        .await
        .unwrap();
        let err = services::create(
            db,
            s3,
            executor,
            &carol,
            &[],
            mounting("carols", "bobs-files/private"),
            Timestamp::from_millis(2),
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), 409, "{}: {err}", app.database());
        assert!(
            err.to_string()
                .contains("\"bobs-files\" belongs to another user"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn mounts_that_cannot_be_made_are_refused_naming_the_field() {
    let mut app = TestApp::new().await;
    for (mount, extra, field) in [
        (
            json!({"storage_provider": "minio", "path": "files/../../etc"}),
            json!({}),
            "mount.path",
        ),
        (
            json!({"storage_provider": "onedata.space", "path": "files"}),
            json!({"storage_providers": {"onedata": {"space": {
                "oneprovider_host": "op.example", "token": "t", "space": "s"}}}}),
            "mount.storage_provider",
        ),
        (
            json!({"storage_provider": "minio", "path": "files", "options": "--config=/etc/passwd"}),
            json!({}),
            "mount.options",
        ),
        (
            json!({"storage_provider": "minio", "path": "files", "options": "--vfs-cache-mode=writes"}),
            json!({}),
            "mount.options",
        ),
        (
            json!({"storage_provider": "minio", "path": "files"}),
            json!({"volume": {"size": "1Mi", "mount_path": "/mnt/files"}}),
            "volume.mount_path",
        ),
    ] {
        let mut definition = service("refused", "true");
        definition["mount"] = mount.clone();
        for (key, value) in extra.as_object().unwrap() {
            definition[key] = value.clone();
        }
        let answer = app.rest("POST", "/system/services", Some(definition)).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{mount}: {}",
            answer.body
        );
        assert!(
            answer.body.starts_with(&format!("{field}:")),
            "{mount}: {}",
            answer.body
        );
    }
}

/// On Kubernetes the rclone sidecar is privileged: without the operator's image for it, a
/// mount is refused at save time rather than left undone.
#[tokio::test]
async fn a_cluster_without_mounts_refuses_them_at_save_time() {
    let cluster = cluster().await;
    let mut app = app_on(&cluster, Duration::from_secs(60)).await;
    let mut definition = service("mounted", "true");
    definition["mount"] = json!({"storage_provider": "minio", "path": "files"});
    let answer = app.rest("POST", "/system/services", Some(definition)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(
        answer
            .body
            .starts_with("mount: this cluster makes no mounts"),
        "{}",
        answer.body
    );
    assert!(cluster.fake.list("jobs", None).is_empty());
}

/// A killed server leaves its jobs' mounts behind, dead (their rclone went with it): the next
/// start detaches them and removes their directories, never emptying a provider's folder.
#[tokio::test]
async fn mounts_left_by_a_killed_server_are_detached_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let provider = dir.path().join("provider");
    std::fs::create_dir_all(&provider).unwrap();
    std::fs::write(provider.join("kept.txt"), "the user's").unwrap();
    let at = data.join("jobs/left-1.mount/at");
    std::fs::create_dir_all(&at).unwrap();
    let mut rclone = std::process::Command::new("rclone")
        .args(["mount", "--config", "/dev/null"])
        .arg(format!(":local:{}", provider.display()))
        .arg(&at)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .contains(&at.display().to_string())
    {
        assert!(std::time::Instant::now() < deadline, "rclone did not mount");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // As the server's death takes it.
    rclone.kill().unwrap();
    rclone.wait().unwrap();

    let mut config = server::config::Config::embedded_for_tests(data.clone());
    config.supervisor = Some(vec![
        env!("CARGO_BIN_EXE_server").into(),
        "supervise".into(),
    ]);
    let _app = TestApp::start(config, dir).await;
    assert!(!data.join("jobs/left-1.mount").exists());
    assert_eq!(
        std::fs::read_to_string(provider.join("kept.txt")).unwrap(),
        "the user's"
    );
}
