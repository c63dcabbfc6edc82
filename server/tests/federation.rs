//! Federation between instances of this platform on loopback, each with its own store and
//! database (the cloud on PostgreSQL when `TEST_DATABASE_URL` is set): a busy edge hands the
//! jobs that wait too long to the cloud, whose copy of the service reads the inputs from the
//! edge's store and writes the outputs back there.

mod common;

use std::time::{Duration, Instant};

use common::jobs::{self, UPPERCASE};
use common::{ADMIN, PASSWORD, TestApp, basic_auth, serve};
use http::StatusCode;
use serde_json::{Value, json};

/// A server whose members may be on loopback, as these tests' are.
async fn edge() -> TestApp {
    TestApp::with_config(|config| config.jobs.private_peers = true).await
}

/// `POST /job/<service>` with `authorization` and the given hand-over headers.
fn job_request(
    service: &str,
    authorization: &str,
    handover: &[(&str, &str)],
    body: &str,
) -> http::Request<axum::body::Body> {
    let mut request =
        http::Request::post(format!("/job/{service}")).header("Authorization", authorization);
    for (name, value) in handover {
        request = request.header(*name, *value);
    }
    request
        .body(axum::body::Body::from(body.to_string()))
        .unwrap()
}

fn cluster(address: impl std::fmt::Display) -> Value {
    json!({"endpoint": format!("http://{address}"), "auth_user": ADMIN,
           "auth_password": PASSWORD, "ssl_verify": false})
}

/// One job at a time, each taking a while: the second and third wait.
fn busy_edge(name: &str, members: Value, clusters: Value) -> Value {
    let mut service = jobs::service(name, &format!("sleep 4\n{UPPERCASE}"));
    service["cluster_id"] = json!("pi");
    service["annotations"] = json!({"oscar/max-concurrent-jobs": "1"});
    service["federation"] = json!({"topology": "star", "delegation": "static",
                                   "rescheduler_threshold": 1, "members": members});
    service["clusters"] = clusters;
    service
}

/// Waits until `count` of the service's jobs are in one of `states`.
async fn settled(app: &mut TestApp, service: &str, count: usize, states: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let all = jobs::jobs(app, service).await;
        let done = all
            .values()
            .filter(|j| states.contains(&j["status"].as_str().unwrap_or("")))
            .count();
        if done >= count {
            return Value::Object(all);
        }
        assert!(Instant::now() < deadline, "jobs did not settle: {all:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn names_in(jobs: &Value, status: &str) -> Vec<String> {
    let mut names: Vec<String> = jobs
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, j)| j["status"] == status)
        .map(|(name, _)| name.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_busy_edge_hands_waiting_jobs_to_the_cloud_in_priority_order() {
    let mut cloud = match common::fresh_postgres_database().await {
        Some(url) => TestApp::with_database(Some(url)).await,
        None => TestApp::new().await,
    };
    let cloud_address = serve(&cloud).await;
    let mut edge = edge().await;
    let dead = common::free_port();
    // The member asked first is down: it is skipped, with the reason in the job's log.
    let members = json!([
        {"type": "oscar", "cluster_id": "cloud", "service_name": "edge-copy", "priority": 1},
        {"type": "oscar", "cluster_id": "down", "service_name": "edge-copy", "priority": 0},
    ]);
    let clusters = json!({"cloud": cluster(cloud_address),
                          "down": cluster(format!("127.0.0.1:{dead}"))});
    let created = edge
        .rest(
            "POST",
            "/system/services",
            Some(busy_edge("edge", members, clusters)),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // Each member cluster's copy is reported: the cloud has one, the dead one could not.
    let copies = created.json()["federation"].clone();
    assert_eq!(copies[0]["member"], "cloud/edge-copy");
    assert_eq!(copies[0]["ok"], true, "{copies}");
    assert_eq!(copies[1]["ok"], false, "{copies}");
    let copy = cloud.rest("GET", "/system/services/edge-copy", None).await;
    assert_eq!(copy.status, StatusCode::OK, "{}", copy.body);
    let copy = copy.json();
    assert_eq!(copy["input"][0]["storage_provider"], "minio.pi");
    assert_eq!(copy["output"][0]["storage_provider"], "minio.pi");
    assert!(copy.get("clusters").is_none(), "{copy}");
    // The cluster credentials never leave the edge.
    assert!(!copy.to_string().contains(PASSWORD), "{copy}");

    for file in ["a.txt", "b.txt", "c.txt"] {
        jobs::put(&edge, "edge", &format!("in/{file}"), file.as_bytes()).await;
    }
    let here = settled(&mut edge, "edge", 3, &["Succeeded", "Delegated"]).await;
    let delegated = names_in(&here, "Delegated");
    assert!(!delegated.is_empty(), "nothing was delegated: {here}");
    assert_eq!(
        names_in(&here, "Succeeded").len() + delegated.len(),
        3,
        "{here}"
    );
    // The cloud ran each handed job once, under the name it had at the edge.
    let there = settled(&mut cloud, "edge-copy", delegated.len(), &["Succeeded"]).await;
    assert_eq!(names_in(&there, "Succeeded"), delegated, "{there}");
    assert_eq!(there.as_object().unwrap().len(), delegated.len(), "{there}");
    // Every output is back in the edge's store, whoever ran the job.
    for file in ["a.txt", "b.txt", "c.txt"] {
        let output = jobs::get(&edge, "edge", &format!("out/{file}")).await;
        assert_eq!(
            output.as_deref(),
            Some(file.to_uppercase().as_bytes()),
            "{file}"
        );
    }
    // The edge's log says where the job went and which member was skipped, with why.
    let log = jobs::log(&mut edge, "edge", &delegated[0]).await;
    assert!(log.contains("down/edge-copy did not take the job"), "{log}");
    assert!(log.contains("cloud/edge-copy took the job"), "{log}");
    // The job says where it ran, with a link to it there; the cloud's, where it came from.
    let here = domain::jobs::get(&edge.app.state.db, &delegated[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(here.delegated_to.as_deref(), Some("cloud/edge-copy"));
    assert_eq!(
        here.delegated_url,
        Some(format!(
            "http://{cloud_address}/services/edge-copy/jobs/{}",
            delegated[0]
        ))
    );
    let there = domain::jobs::get(&cloud.app.state.db, &delegated[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(there.delegated_from.as_deref(), Some("pi"));

    // Upstream's rescheduler sends the same request (fixtures/oscar/delegated-job.json).
    let fixture: Value =
        serde_json::from_str(include_str!("../../fixtures/oscar/delegated-job.json")).unwrap();
    let token = copy_token(&mut cloud, "edge-copy").await;
    let mut request = http::Request::post(fixture["path"].as_str().unwrap());
    for (name, value) in fixture["headers"].as_object().unwrap() {
        let value = value
            .as_str()
            .unwrap()
            .replace("<the member service's token>", &token);
        request = request.header(name.as_str(), value);
    }
    let body = fixture["body"].as_str().unwrap().to_string();
    let replayed = cloud
        .send(request.body(axum::body::Body::from(body)).unwrap())
        .await;
    assert_eq!(replayed.status, StatusCode::CREATED, "{}", replayed.body);
    let name = fixture["headers"]["X-Delegated-Job-ID"].as_str().unwrap();
    assert_eq!(replayed.json()["job_name"], name);
    let job = domain::jobs::get(&cloud.app.state.db, name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.input.as_deref(), Some("edge/in/a.txt"));
    assert_eq!(job.delegated_from.as_deref(), Some("pi"));

    // The copy's keys to the edge's store are the service's own, not its owner's: they reach
    // its buckets only, and only while it is federated.
    let provider = &copy["storage_providers"]["minio"]["pi"];
    let access_key = provider["access_key"].as_str().unwrap();
    assert!(
        access_key.starts_with("OSCF-") && access_key.ends_with("-edge"),
        "{access_key}"
    );
    let secrets = domain::services::load_secrets(&cloud.app.state.db, "edge-copy")
        .await
        .unwrap();
    let secret = &secrets["storage_providers.minio.pi.secret_key"];
    let member_keys = supervisor::storage::client(
        &edge.app.state.info.storage_endpoint,
        "us-east-1",
        access_key,
        secret,
    );
    let listed = |bucket: &'static str| {
        let client = member_keys.clone();
        async move { client.list_objects_v2().bucket(bucket).send().await.is_ok() }
    };
    assert!(listed("edge").await);
    jobs::create(&mut edge, jobs::service("private", "true")).await;
    assert!(
        !listed("private").await,
        "the member's keys reach another bucket"
    );
    let members = edge
        .rest("GET", "/system/federation/edge", None)
        .await
        .json()["members"]
        .clone();
    let removed = edge
        .rest(
            "DELETE",
            "/system/federation/edge",
            Some(json!({"members": members})),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert!(!listed("edge").await, "the keys outlived the federation");
}

async fn copy_token(app: &mut TestApp, service: &str) -> String {
    let read = app
        .rest("GET", &format!("/system/services/{service}"), None)
        .await;
    read.json()["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_hand_off_sent_twice_makes_one_job_and_names_are_checked() {
    let mut cloud = TestApp::new().await;
    jobs::create(
        &mut cloud,
        jobs::service("twice", "cat \"$INPUT_FILE_PATH\""),
    )
    .await;
    jobs::create(&mut cloud, jobs::service("other", "true")).await;
    let admin = basic_auth(ADMIN, PASSWORD);
    let post = |job: &str| {
        let handover = [("X-Delegated-Job-ID", job), ("X-Delegated-From", "pi")];
        job_request("twice", &admin, &handover, "{\"hello\": 1}")
    };
    let first = cloud.send(post("twice-handed-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.json()["created"], true);
    // The answer was lost and the origin asks again: the same job, not a second one.
    let again = cloud.send(post("twice-handed-1")).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.json()["created"], false);
    assert_eq!(again.json()["job_name"], "twice-handed-1");
    // The same name from another cluster, or a job made here, is not that job.
    let handover = [
        ("X-Delegated-Job-ID", "twice-handed-1"),
        ("X-Delegated-From", "somewhere-else"),
    ];
    let elsewhere = cloud
        .send(job_request("twice", &admin, &handover, "{}"))
        .await;
    assert_eq!(elsewhere.status, StatusCode::CONFLICT, "{}", elsewhere.body);
    let local = cloud
        .send(job_request("twice", &admin, &[], "{\"local\": 1}"))
        .await;
    let local = local.json()["job_name"].as_str().unwrap().to_string();
    let own = cloud.send(post(&local)).await;
    assert_eq!(own.status, StatusCode::CONFLICT, "{}", own.body);
    let all = jobs::finished(&mut cloud, "twice", 2).await;
    assert_eq!(all.len(), 2, "{all:?}");
    // Another service's job name is not taken over, and names must be DNS labels.
    let other = jobs::jobs(&mut cloud, "other").await;
    assert!(other.is_empty());
    let handover = [("X-Delegated-Job-ID", "twice-handed-1")];
    let taken = cloud
        .send(job_request("other", &admin, &handover, "{}"))
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    for bad in ["../etc", "UPPER", "a b"] {
        let refused = cloud.send(post(bad)).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            refused.body
        );
        assert!(
            refused.body.contains("X-Delegated-Job-ID"),
            "{}",
            refused.body
        );
    }
}

/// Hand-offs arriving together each check the name, then write: none may fail for another's
/// write in between (SQLite refused such a transaction's write at once, and the member
/// answered 500 to an edge that then had to offer the job again).
#[tokio::test]
async fn hand_offs_arriving_together_are_all_taken() {
    use tower::ServiceExt;
    let mut cloud = TestApp::new().await;
    jobs::create(&mut cloud, jobs::service("crowd", "true")).await;
    let admin = basic_auth(ADMIN, PASSWORD);
    let sent = (0..24).map(|n| {
        let job = format!("crowd-handed-{n}");
        let handover = [
            ("X-Delegated-Job-ID", job.as_str()),
            ("X-Delegated-From", "pi"),
        ];
        let request = job_request("crowd", &admin, &handover, "{}");
        cloud.app.router.clone().oneshot(request)
    });
    for answer in futures_util::future::join_all(sent).await {
        let answer = answer.unwrap();
        let status = answer.status();
        let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    assert_eq!(jobs::jobs(&mut cloud, "crowd").await.len(), 24);
}

#[tokio::test]
async fn federation_members_round_trip_and_are_copied_and_deleted() {
    let mut cloud = TestApp::new().await;
    let cloud_address = serve(&cloud).await;
    let mut edge = edge().await;
    jobs::create(&mut edge, jobs::service("fed", UPPERCASE)).await;
    let read = edge.rest("GET", "/system/federation/fed", None).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.json()["topology"], "none");
    assert_eq!(read.json()["members"], json!([]));

    let member = json!({"type": "oscar", "cluster_id": "cloud", "service_name": "fed-cloud",
                        "priority": 0});
    let added = edge
        .rest(
            "POST",
            "/system/federation/fed",
            Some(json!({"members": [member], "clusters": {"cloud": cluster(cloud_address)}})),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let added = added.json();
    assert_eq!(added["topology"], "star");
    assert_eq!(added["members"][0]["service_name"], "fed-cloud");
    assert_eq!(added["results"][0]["ok"], true, "{added}");
    assert!(!added.to_string().contains(PASSWORD));
    let copy = cloud.rest("GET", "/system/services/fed-cloud", None).await;
    assert_eq!(copy.status, StatusCode::OK, "{}", copy.body);
    // The same member twice is refused.
    let twice = edge
        .rest(
            "POST",
            "/system/federation/fed",
            Some(json!({"members": [member]})),
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);

    let mut changed = member.clone();
    changed["priority"] = json!(5);
    let updated = edge
        .rest(
            "PUT",
            "/system/federation/fed",
            Some(json!({"update": [changed]})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.json()["members"][0]["priority"], 5);
    let stored = edge.rest("GET", "/system/services/fed", None).await.json();
    assert_eq!(stored["federation"]["members"][0]["priority"], 5);
    // The stored definition keeps the cluster, not its password.
    assert_eq!(stored["clusters"]["cloud"]["auth_password"], "");

    let unknown = json!({"type": "oscar", "cluster_id": "cloud", "service_name": "nope"});
    let missing = edge
        .rest(
            "PUT",
            "/system/federation/fed",
            Some(json!({"update": [unknown]})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);

    let removed = edge
        .rest(
            "DELETE",
            "/system/federation/fed",
            Some(json!({"members": [changed], "delete": true})),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    let removed = removed.json();
    assert_eq!(removed["topology"], "none");
    assert_eq!(removed["results"][0]["message"], "deleted", "{removed}");
    let gone = cloud.rest("GET", "/system/services/fed-cloud", None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);

    // Bad members name their field; a cluster not in `clusters` is accepted, as upstream
    // does, and each copy says it is not defined.
    let bad = edge
        .rest(
            "POST",
            "/system/federation/fed",
            Some(json!({"members": [{"type": "oscar", "cluster_id": "", "service_name": "x"}]})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(
        bad.body.contains("federation.members[0].cluster_id"),
        "{}",
        bad.body
    );
    let undefined = edge
        .rest(
            "POST",
            "/system/federation/fed",
            Some(
                json!({"members": [{"type": "oscar", "cluster_id": "mars", "service_name": "x"}]}),
            ),
        )
        .await;
    assert_eq!(undefined.status, StatusCode::OK, "{}", undefined.body);
    let results = undefined.json()["results"].clone();
    let message = results[0]["message"].as_str().unwrap();
    assert!(
        message.contains("cluster \"mars\" is not defined"),
        "{results}"
    );
    let none = edge.rest("GET", "/system/federation/missing", None).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.body);

    // A server left as it comes calls no member on its own network (nor a cloud's metadata
    // address) for anyone: the member is saved, the copy refused, saying why.
    let mut plain = TestApp::new().await;
    jobs::create(&mut plain, jobs::service("fed", UPPERCASE)).await;
    let inside = plain
        .rest(
            "POST",
            "/system/federation/fed",
            Some(json!({"members": [member], "clusters": {"cloud": cluster(cloud_address)}})),
        )
        .await;
    assert_eq!(inside.status, StatusCode::OK, "{}", inside.body);
    let message = inside.json()["results"][0]["message"].to_string();
    assert!(
        message.contains("OSCAR_FEDERATION_PRIVATE_PEERS"),
        "{message}"
    );
    // A cluster endpoint whose query would swallow the path the platform adds is refused.
    let swallowing = plain
        .rest(
            "POST",
            "/system/federation/fed",
            Some(
                json!({"members": [{"type": "oscar", "cluster_id": "q", "service_name": "x"}],
                        "clusters": {"q": {"endpoint": "http://example.org/admin?x="}}}),
            ),
        )
        .await;
    assert_eq!(
        swallowing.status,
        StatusCode::BAD_REQUEST,
        "{}",
        swallowing.body
    );
    assert!(
        swallowing.body.contains("clusters.q.endpoint"),
        "{}",
        swallowing.body
    );
}

/// The origin stopped after writing down the member and after the member stored the job, but
/// before it heard the 201: on the next look it asks that member again, which answers for the
/// job it has; one job in all, nothing lost.
#[tokio::test]
async fn a_hand_off_cut_short_by_a_crash_is_finished_without_a_second_job() {
    let mut cloud = TestApp::new().await;
    let cloud_address = serve(&cloud).await;
    jobs::create(
        &mut cloud,
        jobs::service("held", "cat \"$INPUT_FILE_PATH\""),
    )
    .await;
    let mut edge = edge().await;
    let members = json!([{"type": "oscar", "cluster_id": "cloud", "service_name": "held"}]);
    let mut service = busy_edge("held", members, json!({"cloud": cluster(cloud_address)}));
    // Nothing is handed over by waiting in this test.
    service["federation"]["rescheduler_threshold"] = json!(3600);
    service["script"] = json!("sleep 8");
    let token = jobs::create(&mut edge, service).await;
    let bearer = format!("Bearer {token}");
    let invoke = |body: &str| job_request("held", &bearer, &[], body);
    // The first job takes the only slot; the second waits.
    let first = edge.send(invoke("{\"n\": 1}")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    settled(&mut edge, "held", 1, &["Running"]).await;
    let second = edge.send(invoke("{\"n\": 2}")).await;
    let name = second.json()["job_name"].as_str().unwrap().to_string();
    // The member holds it already…
    let handover = [
        ("X-Delegated-Job-ID", name.as_str()),
        ("X-Delegated-From", "pi"),
    ];
    let credentials = basic_auth(ADMIN, PASSWORD);
    let held = cloud
        .send(job_request("held", &credentials, &handover, "{\"n\": 2}"))
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    // …and the edge had written down whom it was asking.
    sqlx::query("UPDATE jobs SET delegated_to = 'cloud/held' WHERE name = $1")
        .bind(&name)
        .execute(edge.app.state.db.pool())
        .await
        .unwrap();
    let here = settled(&mut edge, "held", 1, &["Delegated"]).await;
    assert_eq!(names_in(&here, "Delegated"), std::slice::from_ref(&name));
    let there = settled(&mut cloud, "held", 1, &["Succeeded"]).await;
    assert_eq!(there.as_object().unwrap().len(), 1, "{there}");
    let log = jobs::log(&mut edge, "held", &name).await;
    assert!(log.contains("cloud/held took the job"), "{log}");

    // Had the member not stored it, it says so, and the job is offered again (here, to it).
    // Another long job first, so that the slot is taken.
    edge.send(invoke("{\"n\": 4}")).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while names_in(
        &Value::Object(jobs::jobs(&mut edge, "held").await),
        "Running",
    )
    .is_empty()
    {
        assert!(Instant::now() < deadline, "the blocking job did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let third = edge.send(invoke("{\"n\": 3}")).await;
    let name = third.json()["job_name"].as_str().unwrap().to_string();
    sqlx::query("UPDATE jobs SET delegated_to = 'cloud/held' WHERE name = $1")
        .bind(&name)
        .execute(edge.app.state.db.pool())
        .await
        .unwrap();
    // Meanwhile it cannot be stopped or deleted here: the member may run it.
    let state = &edge.app.state;
    let admin = domain::access::Caller::admin();
    let stopped = domain::jobs::stop(&state.db, &state.jobs, &admin, "held", &name).await;
    assert!(
        matches!(stopped, Err(model::AppError::Conflict(_))),
        "{stopped:?}"
    );
    let names = std::slice::from_ref(&name);
    let deleted = domain::jobs::delete_named(&state.db, &state.jobs, &admin, "held", names)
        .await
        .unwrap();
    assert_eq!(deleted, 0);
    settled(&mut edge, "held", 2, &["Delegated"]).await;
    let there = settled(&mut cloud, "held", 2, &["Succeeded"]).await;
    assert_eq!(there.as_object().unwrap().len(), 2, "{there}");
    let log = jobs::log(&mut edge, "held", &name).await;
    assert!(log.contains("cloud/held does not have the job"), "{log}");
}

/// With `load-based`, the member with the most room is asked first, whatever its priority.
#[tokio::test]
async fn load_based_delegation_prefers_the_idle_member() {
    let mut busy = TestApp::new().await;
    let busy_address = serve(&busy).await;
    let mut idle = TestApp::new().await;
    let idle_address = serve(&idle).await;
    // Most of the machine's CPU is asked for by a job running on the busy member.
    let mut hog = jobs::service("hog", "sleep 20");
    hog["cpu"] = json!("1.5");
    let hog_token = jobs::create(&mut busy, hog).await;
    let bearer = format!("Bearer {hog_token}");
    let started = busy.send(job_request("hog", &bearer, &[], "{}")).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    settled(&mut busy, "hog", 1, &["Running"]).await;

    let mut edge = edge().await;
    let members = json!([
        {"type": "oscar", "cluster_id": "busy", "service_name": "work", "priority": 0},
        {"type": "oscar", "cluster_id": "idle", "service_name": "work", "priority": 1},
    ]);
    let clusters = json!({"busy": cluster(busy_address), "idle": cluster(idle_address)});
    let mut service = busy_edge("work", members, clusters);
    service["federation"]["delegation"] = json!("load-based");
    let created = edge.rest("POST", "/system/services", Some(service)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    for file in ["a.txt", "b.txt"] {
        jobs::put(&edge, "work", &format!("in/{file}"), file.as_bytes()).await;
    }
    let here = settled(&mut edge, "work", 2, &["Succeeded", "Delegated"]).await;
    let delegated = names_in(&here, "Delegated");
    assert_eq!(delegated.len(), 1, "{here}");
    let job = domain::jobs::get(&edge.app.state.db, &delegated[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.delegated_to.as_deref(), Some("idle/work"));
    settled(&mut idle, "work", 1, &["Succeeded"]).await;
    assert!(jobs::jobs(&mut busy, "work").await.is_empty());
}

/// A job asking for more than its owner's quota ever allows here goes to a member instead of
/// failing; without members it fails here at once, as before.
#[tokio::test]
async fn a_job_too_big_for_the_quota_here_goes_to_a_member() {
    let mut cloud = TestApp::new().await;
    let cloud_address = serve(&cloud).await;
    let op = common::oidc::FakeOp::start().await;
    let alice = op.token_for("alice@test", 300);
    let mut edge = TestApp::with_config(|config| {
        config.oidc = Some(common::oidc::settings(op.issuer()));
        config.jobs.private_peers = true;
    })
    .await;
    let quota = edge
        .rest(
            "PUT",
            "/system/quotas/user/alice@test",
            Some(json!({"cpu": "100m"})),
        )
        .await;
    assert_eq!(quota.status, StatusCode::OK, "{}", quota.body);
    let members = json!([{"type": "oscar", "cluster_id": "cloud", "service_name": "big"}]);
    for service in [
        busy_edge("big", members, json!({"cloud": cluster(cloud_address)})),
        jobs::service("small", UPPERCASE),
    ] {
        let created = edge
            .rest_bearer("POST", "/system/services", Some(service), &alice)
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    jobs::put(&edge, "big", "in/a.txt", b"a").await;
    jobs::put(&edge, "small", "in/a.txt", b"a").await;
    let here = settled(&mut edge, "big", 1, &["Delegated"]).await;
    assert_eq!(names_in(&here, "Delegated").len(), 1, "{here}");
    settled(&mut cloud, "big", 1, &["Succeeded"]).await;
    assert_eq!(
        jobs::get(&edge, "big", "out/a.txt").await.as_deref(),
        Some(&b"A"[..])
    );
    let alone = settled(&mut edge, "small", 1, &["Failed"]).await;
    assert_eq!(names_in(&alone, "Failed").len(), 1, "{alone}");
}

/// Kubernetes mode: a job whose pod no node has room for (it stays unschedulable) is taken
/// back once it has waited the service's threshold, its Job deleted, and handed to the member,
/// which reads the input from the edge's store and writes the output back there. Its log
/// says why it left.
#[tokio::test]
async fn a_job_the_cluster_cannot_schedule_goes_to_a_member() {
    use common::cluster::{NAMESPACE, UNSCHEDULABLE, app_adjusted};
    // The member runs scripts with its own programs: the image is the edge cluster's.
    let mut cloud =
        TestApp::with_config(|config| config.executor = server::config::ExecutorConfig::Host).await;
    let cloud_address = serve(&cloud).await;
    let kube = common::cluster::cluster().await;
    let mut edge = app_adjusted(&kube, Duration::from_secs(120), None, |config| {
        config.jobs.private_peers = true
    })
    .await;
    let members = json!([{"type": "oscar", "cluster_id": "cloud", "service_name": "wide"}]);
    let mut service = busy_edge("wide", members, json!({"cloud": cluster(cloud_address)}));
    service["image"] = json!(UNSCHEDULABLE);
    service["script"] = json!(UPPERCASE);
    let created = edge.rest("POST", "/system/services", Some(service)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    jobs::put(&edge, "wide", "in/a.txt", b"a").await;
    let here = settled(&mut edge, "wide", 1, &["Delegated"]).await;
    let job = names_in(&here, "Delegated").remove(0);
    settled(&mut cloud, "wide", 1, &["Succeeded"]).await;
    assert_eq!(
        jobs::get(&edge, "wide", "out/a.txt").await.as_deref(),
        Some(&b"A"[..])
    );
    assert!(kube.fake.get("jobs", NAMESPACE, &job).is_none());
    let log = jobs::log(&mut edge, "wide", &job).await;
    assert!(
        log.contains("not started here") && log.contains("Insufficient cpu"),
        "{log}"
    );
}

/// A cloud and an edge signing in with `op`, and alice's busy service `name` on the edge
/// whose member on the cloud it reaches with her refresh token; with her access token.
async fn via_refresh_token(op: &common::oidc::FakeOp, name: &str) -> (TestApp, TestApp, String) {
    let cloud =
        TestApp::with_config(|config| config.oidc = Some(common::oidc::settings(op.issuer())))
            .await;
    let cloud_address = serve(&cloud).await;
    let alice = op.token_for("alice@test", 300);
    let mut edge = TestApp::with_config(|config| {
        config.oidc = Some(common::oidc::settings(op.issuer()));
        config.jobs.private_peers = true;
    })
    .await;
    let members = json!([{"type": "oscar", "cluster_id": "cloud", "service_name": name}]);
    let clusters = json!({"cloud": {"endpoint": format!("http://{cloud_address}"),
        "refresh_token": op.refresh_token_for("alice@test"), "ssl_verify": false}});
    let created = edge
        .rest_bearer(
            "POST",
            "/system/services",
            Some(busy_edge(name, members, clusters)),
            &alice,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    (cloud, edge, alice)
}

/// Three inputs on the busy edge: some are delegated, and run on the cloud.
async fn three_delegated(edge: &mut TestApp, cloud: &mut TestApp, name: &str) {
    for file in ["a.txt", "b.txt", "c.txt"] {
        jobs::put(edge, name, &format!("in/{file}"), file.as_bytes()).await;
    }
    let here = settled(edge, name, 3, &["Succeeded", "Delegated"]).await;
    assert!(!names_in(&here, "Delegated").is_empty(), "{here}");
    settled(cloud, name, 1, &["Succeeded"]).await;
}

/// A member reached with the owner's OIDC refresh token instead of a password: the platform
/// exchanges it at its identity provider (once, while the access token lasts), the copy on
/// the member is the owner's, and the job runs there. The refresh token is never shown.
#[tokio::test]
async fn a_member_is_reached_with_the_owners_refresh_token() {
    let op = common::oidc::FakeOp::start().await;
    let (mut cloud, mut edge, alice) = via_refresh_token(&op, "viatoken").await;
    // Copied to the cloud as alice's.
    let copy = cloud
        .rest_bearer("GET", "/system/services/viatoken", None, &alice)
        .await;
    assert_eq!(copy.status, StatusCode::OK, "{}", copy.body);
    assert_eq!(copy.json()["owner"], "alice@test", "{}", copy.body);

    three_delegated(&mut edge, &mut cloud, "viatoken").await;
    assert_eq!(
        op.refreshes(),
        1,
        "one exchange while the access token lasts"
    );
    let shown = edge
        .rest_bearer("GET", "/system/services/viatoken", None, &alice)
        .await;
    assert!(!shown.body.contains("refresh."), "{}", shown.body);
}

/// An identity provider that rotates refresh tokens (each exchange answers a new one and the
/// old one stops working): the new one is used from then on and replaces the stored one, so
/// the member is still reached after many exchanges and after the definition is read again.
#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_stored_one() {
    let op = common::oidc::FakeOp::start().await;
    op.rotating();
    let (mut cloud, mut edge, _) = via_refresh_token(&op, "rotates").await;
    three_delegated(&mut edge, &mut cloud, "rotates").await;
    assert!(op.refreshes() >= 2, "{}", op.refreshes());
    let stored = domain::services::load_secrets(&edge.app.state.db, "rotates")
        .await
        .unwrap();
    let stored = &stored["clusters.cloud.refresh_token"];
    assert!(stored.starts_with("refresh.alice@test#"), "{stored}");
}

/// Another tenant can neither read nor change a service's federation, and the job names it
/// may set are its own services' only.
#[tokio::test]
async fn federation_is_the_owners_business() {
    let op = common::oidc::FakeOp::start().await;
    let (alice, bob) = (
        op.token_for("alice@test", 300),
        op.token_for("bob@test", 300),
    );
    let mut edge = TestApp::with_config(|config| {
        config.oidc = Some(common::oidc::settings(op.issuer()));
    })
    .await;
    let members = json!([{"type": "oscar", "cluster_id": "cloud", "service_name": "mine"}]);
    let mut service = busy_edge(
        "mine",
        members.clone(),
        json!({"cloud": cluster("127.0.0.1:9")}),
    );
    service["visibility"] = json!("public");
    let created = edge
        .rest_bearer("POST", "/system/services", Some(service), &alice)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // Public means bob may invoke it, not see or change where its jobs go.
    let read = edge
        .rest_bearer("GET", "/system/federation/mine", None, &bob)
        .await;
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.body);
    let evil = json!({"type": "endpoint", "url": "https://evil.example.org/collect"});
    for method in ["POST", "PUT", "DELETE"] {
        let body = json!({"members": [evil], "update": [evil]});
        let changed = edge
            .rest_bearer(method, "/system/federation/mine", Some(body), &bob)
            .await;
        assert_eq!(
            changed.status,
            StatusCode::FORBIDDEN,
            "{method}: {}",
            changed.body
        );
    }
    let stored = edge
        .rest_bearer("GET", "/system/federation/mine", None, &alice)
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    let kept = stored.json()["members"].clone();
    assert_eq!(kept.as_array().map(Vec::len), Some(1), "{kept}");
    assert_eq!(kept[0]["service_name"], "mine");
    // Nobody learns the cluster password, not even its owner.
    let definition = edge
        .rest_bearer("GET", "/system/services/mine", None, &alice)
        .await;
    assert!(!definition.body.contains(PASSWORD), "{}", definition.body);
    // An anonymous client gets nothing.
    let anonymous = edge
        .send(
            http::Request::get("/system/federation/mine")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.body
    );
}
