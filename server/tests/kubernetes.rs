//! Kubernetes mode end to end. No cluster runs on our machines: the server reaches the fake
//! API server (`fake-kube`) on loopback through a kubeconfig, as it would a real one, and the
//! fake kubelet runs each Job's supervisor as a local process against the embedded S3.

mod common;

use std::time::Duration;

use base64::Engine;
use common::TestApp;
use common::cluster::{NAMESPACE, OVER_QUOTA, UNPULLABLE, app_on, app_with, cluster};
use common::jobs::{UPPERCASE, create, finished, get, log, put, service};
use fake_kube::FakeCluster;
use http::StatusCode;
use serde_json::json;

/// API calls other than the shared watches, from the `skip`th on.
fn calls(fake: &FakeCluster, skip: usize) -> Vec<String> {
    fake.requests()
        .into_iter()
        .skip(skip)
        .filter(|r| !r.contains("watch=true"))
        .collect()
}

#[tokio::test]
async fn an_upload_runs_as_a_job_on_the_cluster_and_its_log_outlives_the_pod() {
    let cluster = cluster().await;
    let mut app = app_on(&cluster, Duration::from_secs(60)).await;
    let mut definition = service(
        "kupper",
        &format!("{UPPERCASE}[ \"$TOKEN\" = s3cret ] && echo token arrived\n"),
    );
    definition["environment"] = json!({"secrets": {"TOKEN": "s3cret"}});
    let token = create(&mut app, definition).await;

    // The service's secrets live in its own Secret, never in a Job's spec.
    let secret = cluster
        .fake
        .get("secrets", NAMESPACE, "kupper-env")
        .expect("the service's Secret");
    assert_eq!(
        secret["data"]["TOKEN"],
        base64::engine::general_purpose::STANDARD.encode("s3cret")
    );

    let before = cluster.fake.requests().len();
    put(&app, "kupper", "in/hello.txt", b"hello cluster").await;
    let all = finished(&mut app, "kupper", 1).await;
    let (job, record) = all.iter().next().unwrap();
    assert_eq!(record["status"], "Succeeded", "{all:?}");
    assert_eq!(
        get(&app, "kupper", "out/hello.txt").await.as_deref(),
        Some(&b"HELLO CLUSTER"[..])
    );
    let text = log(&mut app, "kupper", job).await;
    assert!(text.contains("processed in/hello.txt"), "{text}");
    assert!(text.contains("token arrived"), "{text}");

    // The Job as created: the user's image, the platform's labels, no secret in its spec.
    let created = cluster.fake.get("jobs", NAMESPACE, job).expect("the Job");
    assert_eq!(
        created["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/grycap/alpine"
    );
    assert_eq!(created["metadata"]["labels"]["oscar_service"], "kupper");
    assert!(!created.to_string().contains("s3cret"));

    // Per job: the Job and its Secret, then the log once; waiting cost nothing.
    let calls = calls(&cluster.fake, before);
    let shapes: Vec<&str> = calls.iter().map(|c| c.split('?').next().unwrap()).collect();
    assert_eq!(shapes.len(), 3, "{calls:?}");
    assert_eq!(shapes[0], "POST /apis/batch/v1/namespaces/oscar-svc/jobs");
    assert_eq!(shapes[1], "POST /api/v1/namespaces/oscar-svc/secrets");
    assert!(
        shapes[2].starts_with(&format!("GET /api/v1/namespaces/oscar-svc/pods/{job}-"))
            && shapes[2].ends_with("/log"),
        "{calls:?}"
    );

    // The TTL controller deletes the Job, its pod and Secret: the log stays with the record.
    cluster.fake.delete("jobs", NAMESPACE, job).unwrap();
    assert!(cluster.fake.get("secrets", NAMESPACE, job).is_none());
    assert!(cluster.fake.list("pods", Some(NAMESPACE)).is_empty());
    assert_eq!(log(&mut app, "kupper", job).await, text);

    // A synchronous run is a Job too; its response comes back through the pod's log.
    let encoded = base64::engine::general_purpose::STANDARD.encode("make me loud");
    let response = app
        .invoke("/run/kupper", &format!("Bearer {token}"), encoded)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(response.body.trim())
        .unwrap();
    assert_eq!(decoded, b"MAKE ME LOUD");
    let all = finished(&mut app, "kupper", 2).await;
    let sync_job = all.keys().find(|name| *name != job).unwrap().clone();
    let sync_log = log(&mut app, "kupper", &sync_job).await;
    assert!(!sync_log.contains("response (base64)"), "{sync_log}");

    // Info says where jobs run.
    app.login().await;
    let info = app.call("system/info", &[]).await.json();
    assert_eq!(info["executor"], "Kubernetes Jobs in namespace oscar-svc");

    // Deleting the service removes its Jobs and Secrets from the cluster.
    let response = app.rest("DELETE", "/system/services/kupper", None).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT, "{}", response.body);
    assert!(cluster.fake.list("jobs", Some(NAMESPACE)).is_empty());
    assert!(cluster.fake.list("secrets", Some(NAMESPACE)).is_empty());
    // All of it within what deploy/kubernetes lets the server do.
    common::cluster::assert_the_role_allows(&cluster.fake);
}

#[tokio::test]
async fn jobs_that_cannot_start_or_fail_say_why() {
    let cluster = cluster().await;
    let mut app = app_on(&cluster, Duration::from_secs(2)).await;

    let mut definition = service("kpull", UPPERCASE);
    definition["image"] = json!(UNPULLABLE);
    create(&mut app, definition).await;
    put(&app, "kpull", "in/a.txt", b"a").await;
    let all = finished(&mut app, "kpull", 1).await;
    let (job, record) = all.iter().next().unwrap();
    assert_eq!(record["status"], "Failed", "{all:?}");
    let text = log(&mut app, "kpull", job).await;
    assert!(
        text.contains("could not start") && text.contains("ImagePullBackOff"),
        "{text}"
    );
    // It does not stay behind on the cluster.
    assert!(cluster.fake.get("jobs", NAMESPACE, job).is_none());
    // The service's deployment says so.
    let deployment = app
        .rest("GET", "/system/services/kpull/deployment", None)
        .await
        .json();
    assert_eq!(deployment["state"], "failed", "{deployment}");
    assert!(
        deployment["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ImagePullBackOff")),
        "{deployment}"
    );

    // A quota refusing the pod: no pod at all, the Job's event says why.
    let mut definition = service("kquota", UPPERCASE);
    definition["image"] = json!(OVER_QUOTA);
    create(&mut app, definition).await;
    put(&app, "kquota", "in/a.txt", b"a").await;
    let all = finished(&mut app, "kquota", 1).await;
    let (job, record) = all.iter().next().unwrap();
    assert_eq!(record["status"], "Failed", "{all:?}");
    let text = log(&mut app, "kquota", job).await;
    assert!(
        text.contains("FailedCreate") && text.contains("exceeded quota: compute-resources"),
        "{text}"
    );

    create(&mut app, service("kfail", "echo about to fail\nexit 3\n")).await;
    put(&app, "kfail", "in/a.txt", b"a").await;
    let all = finished(&mut app, "kfail", 1).await;
    let (job, record) = all.iter().next().unwrap();
    assert_eq!(record["status"], "Failed", "{all:?}");
    let text = log(&mut app, "kfail", job).await;
    assert!(text.contains("about to fail"), "{text}");
    assert!(text.contains("exited with code 3"), "{text}");
    let deployment = app
        .rest("GET", "/system/services/kfail/deployment", None)
        .await
        .json();
    assert_eq!(
        deployment["state"], "ready",
        "the script's own failure: {deployment}"
    );
}

#[tokio::test]
async fn a_job_whose_server_restarted_runs_again_in_a_fresh_job() {
    let cluster = cluster().await;
    let app = app_on(&cluster, Duration::from_secs(60)).await;
    let mut app = app;
    let script = format!("sleep 1\n{UPPERCASE}");
    create(&mut app, service("krestart", &script)).await;
    put(&app, "krestart", "in/a.txt", b"again").await;
    // Its pod runs; the server stops (the store with it), so this attempt's upload fails.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let running = |fake: &FakeCluster| {
        fake.list("pods", Some(NAMESPACE))
            .iter()
            .any(|p| p["status"]["phase"] == "Running")
    };
    while !running(&cluster.fake) {
        assert!(std::time::Instant::now() < deadline, "no pod ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (config, dir) = app.stop().await;
    let job_ended = |fake: &FakeCluster| {
        fake.list("jobs", Some(NAMESPACE))
            .iter()
            .all(|j| j["status"]["conditions"].is_array())
    };
    while !job_ended(&cluster.fake) {
        assert!(std::time::Instant::now() < deadline, "the Job never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = cluster.fake.requests().len();

    // After the restart the job is given back to the queue; the ended Job is replaced.
    let mut app = TestApp::start(config, dir).await;
    let all = finished(&mut app, "krestart", 1).await;
    let (job, record) = all.iter().next().unwrap();
    assert_eq!(record["status"], "Succeeded", "{all:?}");
    assert_eq!(
        get(&app, "krestart", "out/a.txt").await.as_deref(),
        Some(&b"AGAIN"[..])
    );
    let calls = calls(&cluster.fake, before);
    assert!(
        calls.iter().any(|c| c.starts_with(&format!(
            "DELETE /apis/batch/v1/namespaces/{NAMESPACE}/jobs/{job}"
        ))),
        "{calls:?}"
    );
    assert_eq!(cluster.fake.list("jobs", Some(NAMESPACE)).len(), 1);
}

#[tokio::test]
async fn a_running_jobs_output_reaches_its_log_live() {
    let cluster = cluster().await;
    let mut app = app_on(&cluster, Duration::from_secs(60)).await;
    let script = "echo first line\nsleep 2\necho last line\n";
    create(&mut app, service("klive", script)).await;
    put(&app, "klive", "in/a.txt", b"a").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let job = loop {
        let all = common::jobs::jobs(&mut app, "klive").await;
        if let Some((job, record)) = all.iter().next() {
            let text = log(&mut app, "klive", job).await;
            if text.contains("first line") {
                // Shown while the script still sleeps.
                assert_eq!(record["status"], "Running", "{all:?}");
                assert!(!text.contains("last line"), "{text}");
                break job.clone();
            }
        }
        assert!(std::time::Instant::now() < deadline, "no live output");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    finished(&mut app, "klive", 1).await;
    let text = log(&mut app, "klive", &job).await;
    assert_eq!(text.matches("first line").count(), 1, "{text}");
    assert!(text.contains("last line"), "{text}");
    // The followed stream was the log's only read.
    let reads: Vec<String> = calls(&cluster.fake, 0)
        .into_iter()
        .filter(|c| c.contains("/log"))
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert!(reads[0].contains("follow=true"), "{reads:?}");
}

/// What would weaken a job pod's isolation is refused when the service is saved, with the
/// field to fix, and nothing of the service is made.
#[tokio::test]
async fn services_cannot_loosen_their_pods_confinement() {
    let cluster = cluster().await;
    let mut app = app_on(&cluster, Duration::from_secs(60)).await;
    let refused = [
        (
            json!({"annotations": {"container.apparmor.security.beta.kubernetes.io/oscar-container": "unconfined"}}),
            "annotations.container.apparmor.security.beta.kubernetes.io/oscar-container",
        ),
        (
            json!({"labels": {"app.kubernetes.io/managed-by": "someone"}}),
            "labels.app.kubernetes.io/managed-by",
        ),
        (
            json!({"image_pull_secrets": ["nobodys-registry"]}),
            "image_pull_secrets[0]",
        ),
        // A port on every node, around the platform's proxy: off unless the operator allows.
        (
            json!({"expose": {"api_port": 8080, "nodePort": 30080}}),
            "expose.nodePort",
        ),
    ];
    for (extra, field) in refused {
        let mut definition = service("kconfined", UPPERCASE);
        definition
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let response = app.rest("POST", "/system/services", Some(definition)).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{}",
            response.body
        );
        assert!(response.body.contains(field), "{field}: {}", response.body);
    }
    let read = app.rest("GET", "/system/services/kconfined", None).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND, "{}", read.body);
    assert!(cluster.fake.list("secrets", Some(NAMESPACE)).is_empty());

    // An update is checked the same way.
    let mut definition = service("kconfined", UPPERCASE);
    create(&mut app, definition.clone()).await;
    definition["image_pull_secrets"] = json!(["nobodys-registry"]);
    let response = app.rest("PUT", "/system/services", Some(definition)).await;
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.body
    );
    assert!(
        response.body.contains("image_pull_secrets[0]"),
        "{}",
        response.body
    );
}

/// `/system/info` names the cluster's Kubernetes version, as upstream's does.
#[tokio::test]
async fn the_cluster_info_names_the_clusters_version() {
    let cluster = cluster().await;
    let mut app = app_on(&cluster, Duration::from_secs(60)).await;
    let info = app.rest("GET", "/system/info", None).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    assert_eq!(info.json()["kubernetes_version"], fake_kube::VERSION);
}

/// `GET /system/status` in Kubernetes mode: the cluster's nodes with their allocatable
/// capacity, what live pods request and what metrics-server reports in use; jobs by phase for
/// the admin.
#[tokio::test]
async fn the_status_reports_the_clusters_nodes_and_requests() {
    let cluster = cluster().await;
    let mut app = app_on(&cluster, Duration::from_secs(60)).await;
    cluster
        .fake
        .create(
            "nodemetrics",
            "",
            json!({"metadata": {"name": fake_kube::kubelet::NODE},
                   "usage": {"cpu": "1500m", "memory": "2Gi"}}),
        )
        .unwrap();
    create(&mut app, service("kstatus", "sleep 2\n")).await;
    put(&app, "kstatus", "in/a.txt", b"a").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        let answer = app.rest("GET", "/system/status", None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let status = answer.json();
        if status["cluster"]["nodes"][0]["cpu"]["request_cores"] == 500 {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "no request: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let node = &status["cluster"]["nodes"][0];
    assert_eq!(status["cluster"]["nodes_count"], 1);
    assert_eq!(node["name"], fake_kube::kubelet::NODE);
    assert_eq!(node["status"], "Ready");
    assert_eq!(node["cpu"]["capacity_cores"], 4000);
    assert_eq!(node["cpu"]["usage_cores"], 1500);
    assert_eq!(node["memory"]["capacity_bytes"], 8_i64 << 30);
    assert_eq!(node["memory"]["usage_bytes"], 2_i64 << 30);
    assert_eq!(node["memory"]["request_bytes"], 256 << 20);
    let cpu = &status["cluster"]["metrics"]["cpu"];
    assert_eq!(cpu["total_free_cores"], 2500);
    assert_eq!(cpu["total_schedulable_cores"], 3500);
    assert_eq!(status["oscar"]["pods"]["states"]["Running"], 1, "{status}");
    finished(&mut app, "kstatus", 1).await;
    let after = app.rest("GET", "/system/status", None).await.json();
    assert!(
        after["cluster"]["nodes"][0]["cpu"]["request_cores"].is_null(),
        "a finished pod requests nothing: {after}"
    );
    assert_eq!(after["oscar"]["jobs_count"], 1);
    assert_eq!(after["oscar"]["pods"]["states"]["Succeeded"], 1);
}

/// Quotas hold in Kubernetes mode too: the platform's dispatcher, not the cluster, keeps a
/// user's second job from being submitted while the first runs.
#[tokio::test]
async fn a_users_jobs_quota_holds_jobs_back_from_the_cluster() {
    let op = common::oidc::FakeOp::start().await;
    let alice = op.token_for("alice@test", 300);
    let cluster = cluster().await;
    let mut app = app_with(
        &cluster,
        Duration::from_secs(60),
        Some(common::oidc::settings(op.issuer())),
        None,
    )
    .await;
    let set = app
        .rest(
            "PUT",
            "/system/quotas/user/alice@test",
            Some(json!({"jobs": "1"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let created = app
        .rest_bearer(
            "POST",
            "/system/services",
            Some(service("kquota1", "sleep 1\n")),
            &alice,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    put(&app, "kquota1", "in/a.txt", b"a").await;
    put(&app, "kquota1", "in/b.txt", b"b").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        // Ended Jobs stay on the cluster until their TTL; only running ones count.
        let active = cluster
            .fake
            .list("jobs", Some(NAMESPACE))
            .into_iter()
            .filter(|job| {
                !job["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c["status"] == "True"
                            && matches!(c["type"].as_str(), Some("Complete" | "Failed"))
                    })
            })
            .count();
        assert!(active <= 1, "two Jobs ran at once");
        let all = common::jobs::jobs(&mut app, "kquota1").await;
        if all.values().filter(|j| j["status"] == "Succeeded").count() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{all:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = app
        .rest_bearer("GET", "/system/quotas/user", None, &alice)
        .await
        .json();
    assert_eq!(report["resources"]["jobs"], json!({"max": 1, "used": 0}));
}

/// Stopping a job that runs on the cluster deletes its Job (the pods go with it) and ends the
/// job failed, saying who stopped it.
#[tokio::test]
async fn a_stopped_job_deletes_its_job_on_the_cluster() {
    let cluster = cluster().await;
    let mut app = app_on(&cluster, Duration::from_secs(60)).await;
    create(&mut app, service("kstop", "echo started\nsleep 60\n")).await;
    put(&app, "kstop", "in/a.txt", b"a").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let job = loop {
        let all = common::jobs::jobs(&mut app, "kstop").await;
        if let Some((job, _)) = all.iter().next()
            && log(&mut app, "kstop", job).await.contains("started")
        {
            break job.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let before = cluster.fake.requests().len();
    app.login().await;
    let stopped = app
        .call("jobs/stop", &[("service", "kstop"), ("job", &job)])
        .await;
    assert_eq!(stopped.status, http::StatusCode::OK, "{}", stopped.body);
    let all = finished(&mut app, "kstop", 1).await;
    assert_eq!(all[&job]["status"], "Failed", "{all:?}");
    let record = app
        .call("jobs/get", &[("service", "kstop"), ("job", &job)])
        .await
        .json();
    assert_eq!(record["reason"], "stopped by cluster_admin", "{record}");
    let calls = calls(&cluster.fake, before);
    assert!(
        calls.iter().any(|c| c.starts_with(&format!(
            "DELETE /apis/batch/v1/namespaces/{NAMESPACE}/jobs/{job}"
        ))),
        "{calls:?}"
    );
    assert!(cluster.fake.list("jobs", Some(NAMESPACE)).is_empty());
}

/// Managed volumes on a cluster: each a ReadWriteMany claim in its owner's namespace, mounted by
/// the jobs of the services using it, gone with the service that made it.
#[tokio::test]
async fn volumes_are_claims_the_jobs_mount() {
    let cluster = cluster().await;
    let mut app = app_on(&cluster, Duration::from_secs(60)).await;
    let made = app
        .rest(
            "POST",
            "/system/volumes",
            Some(json!({"name": "models", "size": "2Gi"})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let volume = made.json();
    assert_eq!(
        (&volume["namespace"], &volume["pvc_name"]),
        (&json!(NAMESPACE), &json!("models"))
    );
    let claim = cluster
        .fake
        .get("persistentvolumeclaims", NAMESPACE, "models")
        .expect("the volume's claim");
    assert_eq!(claim["spec"]["accessModes"], json!(["ReadWriteMany"]));
    assert_eq!(
        claim["spec"]["resources"]["requests"]["storage"],
        "2147483648"
    );

    let mut definition = service("kvol", "true\n");
    definition["volume"] = json!({"size": "1Gi", "mount_path": "/scratch"});
    create(&mut app, definition).await;
    assert!(
        cluster
            .fake
            .get("persistentvolumeclaims", NAMESPACE, "kvol")
            .is_some()
    );
    put(&app, "kvol", "in/x", b"x").await;
    let all = finished(&mut app, "kvol", 1).await;
    let (job, _) = all.iter().next().unwrap();
    let created = cluster.fake.get("jobs", NAMESPACE, job).expect("the Job");
    let pod = &created["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "oscar-volume")
        .expect("the volume in the pod");
    assert_eq!(volume["persistentVolumeClaim"]["claimName"], "kvol");
    assert!(
        pod["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "oscar-volume" && m["mountPath"] == "/scratch")
    );

    let deleted = app.rest("DELETE", "/system/services/kvol", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert!(
        cluster
            .fake
            .get("persistentvolumeclaims", NAMESPACE, "kvol")
            .is_none(),
        "a volume its service made goes with it"
    );
    let deleted = app.rest("DELETE", "/system/volumes/models", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert!(
        cluster
            .fake
            .list("persistentvolumeclaims", Some(NAMESPACE))
            .is_empty()
    );
    common::cluster::assert_the_role_allows(&cluster.fake);
}
