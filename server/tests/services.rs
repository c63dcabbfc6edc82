//! Services through the OSCAR REST API and the domain functions, on SQLite and PostgreSQL.

mod common;

use common::{TestApp, upstream_cowsay, upstream_fields_missing, upstream_json};
use domain::access::Caller;
use domain::services;
use http::StatusCode;
use model::Timestamp;
use model::service::{Service, fdl};
use serde_json::{Value, json};

const WORKFLOW: &str = include_str!("../../fixtures/fdl/mask-workflow.yaml");
const TEXT: &str = include_str!("../../fixtures/fdl/text-transformer.yaml");
const PLANTED: &str = "planted-secret-7f3a91";

fn workflow() -> Vec<Value> {
    fdl::parse(WORKFLOW, |_| None)
        .unwrap()
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect()
}

fn text_service() -> Value {
    serde_json::to_value(&fdl::parse(TEXT, |_| None).unwrap()[0]).unwrap()
}

async fn bucket_exists(app: &TestApp, bucket: &str) -> bool {
    app.app
        .state
        .s3
        .client
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .is_ok()
}

/// The top-level folders of a bucket. The embedded store (s3s-fs) keeps a folder marker as a
/// directory and lists only files, so this reads its data dir.
async fn keys(app: &TestApp, bucket: &str) -> Vec<String> {
    let dir = app.config.data_dir.join("s3").join(bucket);
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| format!("{}/", e.file_name().to_string_lossy()))
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn the_two_service_workflow_is_created_listed_and_deleted_through_rest() {
    for mut app in TestApp::on_each_database().await {
        let db = app.database().to_string();
        for service in workflow() {
            let response = app.rest("POST", "/system/services", Some(service)).await;
            assert_eq!(
                response.status,
                StatusCode::CREATED,
                "{db}: {}",
                response.body
            );
            assert_eq!(response.body, "");
        }
        assert!(bucket_exists(&app, "mask-workflow").await);
        assert_eq!(
            keys(&app, "mask-workflow").await,
            ["blurred/", "input/", "output/"],
            "{db}"
        );

        let listed = app.rest("GET", "/system/services", None).await.json();
        let names: Vec<_> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["blurry-faces", "mask-detector"]);
        assert!(
            listed.as_array().unwrap().iter().all(|s| s["token"] == ""),
            "lists carry no token"
        );

        let one = app
            .rest("GET", "/system/services/mask-detector", None)
            .await
            .json();
        assert_eq!(
            one["token"].as_str().unwrap().len(),
            64,
            "the admin gets the token"
        );
        assert_eq!(one["owner"], "cluster_admin");
        assert_eq!(one["memory"], "2Gi");
        assert_eq!(one["input"][0]["path"], "mask-workflow/blurred");

        // The shared bucket survives the first deletion and goes with the last.
        assert_eq!(
            app.rest("DELETE", "/system/services/blurry-faces", None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert!(
            bucket_exists(&app, "mask-workflow").await,
            "{db}: still used by mask-detector"
        );
        assert_eq!(
            app.rest("DELETE", "/system/services/mask-detector/", None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert!(
            !bucket_exists(&app, "mask-workflow").await,
            "{db}: removed with its last service"
        );
        assert_eq!(app.rest("GET", "/system/services", None).await.body, "[]");
    }
}

/// Upstream labels every service `oscar_service: <name>`, keeping the user's labels; the Robot
/// suite and scripts look for it in the list (and update keeps it).
#[tokio::test]
async fn services_carry_upstreams_oscar_service_label() {
    let mut app = TestApp::new().await;
    let mut cowsay = upstream_cowsay("robot-test-cowsay");
    cowsay["labels"] = json!({"team": "vision"});
    let created = app
        .rest("POST", "/system/services", Some(cowsay.clone()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let labels = json!({"oscar_service": "robot-test-cowsay", "team": "vision"});

    let listed = app.rest("GET", "/system/services", None).await;
    assert!(
        listed
            .body
            .contains(r#""oscar_service":"robot-test-cowsay""#),
        "{}",
        listed.body
    );
    assert_eq!(listed.json()[0]["labels"], labels);
    let updated = app.rest("PUT", "/system/services", Some(cowsay)).await;
    assert_eq!(updated.status, StatusCode::NO_CONTENT, "{}", updated.body);
    let read = app
        .rest("GET", "/system/services/robot-test-cowsay", None)
        .await;
    assert_eq!(read.json()["labels"], labels);
}

/// Services are answered in upstream's field order, nested objects too: the Robot suite
/// compares text (`mount_cycle.robot`), and upstream's JSON of a service comes back with the
/// same fields in the same order.
#[tokio::test]
async fn services_are_answered_in_upstreams_field_order() {
    let mut app = TestApp::new().await;
    let mut cowsay = upstream_cowsay("robot-test-mount");
    cowsay["mount"] = json!({"storage_provider": "minio.default", "path": "robot-test/mount"});
    let fixture = upstream_json("service");
    // Upstream's service names a pull secret: here, registry credentials of its owner.
    let regcred = json!({"server": "docker.io", "username": "oscar", "password": "x"});
    let saved = app
        .rest("PUT", "/system/registry-credentials/regcred", Some(regcred))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    for body in [cowsay, serde_json::from_str(&fixture).unwrap()] {
        let created = app.rest("POST", "/system/services", Some(body)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    let read = app
        .rest("GET", "/system/services/robot-test-mount", None)
        .await;
    assert!(
        read.body
            .contains(r#""mount":{"storage_provider":"minio.default","path":"robot-test/mount"}"#),
        "{}",
        read.body
    );
    let upstream = app
        .rest("GET", "/system/services/robot-test-cowsay", None)
        .await;
    assert_eq!(
        upstream_fields_missing(&upstream.body, &fixture),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn status_codes_follow_oscar() {
    let mut app = TestApp::new().await;
    let service = text_service();
    assert_eq!(
        app.rest("POST", "/system/services", Some(service.clone()))
            .await
            .status,
        StatusCode::CREATED
    );

    let duplicate = app
        .rest("POST", "/system/services", Some(service.clone()))
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert!(
        duplicate.body.contains("already exists"),
        "{}",
        duplicate.body
    );

    let mut invalid = service.clone();
    invalid["name"] = json!("other");
    invalid["memory"] = json!("12X");
    let response = app.rest("POST", "/system/services", Some(invalid)).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.body,
        "memory: \"12X\" is not a Kubernetes quantity (e.g. 0.5, 500m, 256Mi, 1Gi)"
    );

    let request = http::Request::post("/system/services")
        .header(
            http::header::AUTHORIZATION,
            "Basic b3NjYXI6dGVzdC1wYXNzd29yZA==",
        )
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert!(
        response.body.starts_with("body: not valid JSON"),
        "{}",
        response.body
    );

    let missing = app.rest("GET", "/system/services/nope", None).await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (StatusCode::NOT_FOUND, "no service named \"nope\"")
    );
    assert_eq!(
        app.rest("DELETE", "/system/services/nope", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let mut ghost = service.clone();
    ghost["name"] = json!("ghost");
    assert_eq!(
        app.rest("PUT", "/system/services", Some(ghost))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_rest_api_needs_the_admin_credentials() {
    let mut app = TestApp::new().await;
    let anonymous = app.rest_as("GET", "/system/services", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous
            .headers
            .get(http::header::WWW_AUTHENTICATE)
            .unwrap(),
        "Basic realm=\"OSCAR\", Bearer realm=\"OSCAR\""
    );
    let wrong = app
        .rest_as("GET", "/system/services", None, Some(("oscar", "wrong")))
        .await;
    assert_eq!(
        (wrong.status, wrong.body.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid credentials")
    );
    let bearer = http::Request::get("/system/services")
        .header(http::header::AUTHORIZATION, "Bearer abc")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.send(bearer).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn updates_keep_token_owner_and_unrevealed_secrets() {
    for mut app in TestApp::on_each_database().await {
        let mut service = text_service();
        service["environment"]["secrets"] = json!({"API_KEY": PLANTED});
        app.rest("POST", "/system/services", Some(service.clone()))
            .await;
        let before = app.rest("GET", "/system/services/upper", None).await.json();

        // The dashboard sends secrets back blank: the stored value stays.
        let mut edited = before.clone();
        edited["memory"] = json!("512Mi");
        edited["token"] = json!("attacker-chosen");
        let response = app.rest("PUT", "/system/services", Some(edited)).await;
        assert_eq!(response.status, StatusCode::NO_CONTENT, "{}", response.body);

        let after = app.rest("GET", "/system/services/upper", None).await.json();
        assert_eq!(after["memory"], "512Mi");
        assert_eq!(after["token"], before["token"], "the token is kept");
        assert_eq!(after["owner"], "cluster_admin");
        let secrets = services::load_secrets(&app.app.state.db, "upper")
            .await
            .unwrap();
        assert_eq!(
            secrets["environment.secrets.API_KEY"],
            PLANTED,
            "{}",
            app.database()
        );

        // A new secret without a value cannot be invented.
        let mut bad = after.clone();
        bad["environment"]["secrets"]["NEW"] = json!("");
        let response = app.rest("PUT", "/system/services", Some(bad)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert_eq!(response.body, "environment.secrets.NEW: needs a value");
    }
}

#[tokio::test]
async fn secret_values_never_appear_in_responses() {
    let mut app = TestApp::new().await;
    let mut service = text_service();
    service["environment"]["secrets"] = json!({"API_KEY": PLANTED});
    service["storage_providers"] = json!({"minio": {"extra": {"endpoint": "https://m", "access_key": "ak", "secret_key": PLANTED}}});
    // An input: an output's bucket would be made in that store when the service is saved.
    service["input"] = json!([{"storage_provider": "minio.extra", "path": "elsewhere/in"}]);
    let created = app.rest("POST", "/system/services", Some(service)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    app.login().await;
    for path in ["/system/services", "/system/services/upper"] {
        let response = app.rest("GET", path, None).await;
        assert!(
            !response.body.contains(PLANTED),
            "{path}: {}",
            response.body
        );
        assert!(
            response.body.contains("API_KEY"),
            "{path} still names the secret"
        );
    }
    for page in ["/services", "/services/upper", "/buckets", "/jobs", "/info"] {
        assert!(!app.get(page).await.body.contains(PLANTED), "{page}");
    }
    assert!(
        !bucket_exists(&app, "elsewhere").await,
        "only the platform's own store is prepared"
    );
}

#[tokio::test]
async fn buckets_of_other_users_are_refused_and_preexisting_ones_are_kept() {
    for app in TestApp::on_each_database().await {
        let (db, s3) = (&app.app.state.db, &app.app.state.s3);
        let executor = app.app.state.jobs.executor().as_ref();
        let admin = Caller::admin();
        let bob = Caller::user("bob", vec![]);
        let carol = Caller::user("carol", vec![]);

        let mut bobs = Service::from_json(text_service()).unwrap();
        bobs.name = "bobs".into();
        bobs.input[0].path = "shared-data/in".into();
        bobs.output[0].path = "shared-data/out".into();
        services::create(
            db,
            s3,
            executor,
            &bob,
            &[],
            bobs.clone(),
            Timestamp::from_millis(1),
        )
        .await
        .unwrap();

        let mut carols = bobs.clone();
        carols.name = "carols".into();
        let err = services::create(
            db,
            s3,
            executor,
            &carol,
            &[],
            carols,
            Timestamp::from_millis(2),
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), 409, "{}: {err}", app.database());
        assert!(
            err.to_string()
                .contains("\"shared-data\" belongs to another user"),
            "{err}"
        );
        // Bob's service is private: to carol it does not exist.
        let err = services::delete(
            db,
            &app.app.state.services,
            s3,
            executor,
            &carol,
            "bobs",
            false,
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), 404);

        // A bucket made outside the platform is adopted, used, and never deleted by it.
        s3.client
            .create_bucket()
            .bucket("field-data")
            .send()
            .await
            .unwrap();
        let mut adopted = bobs.clone();
        adopted.name = "adopted".into();
        adopted.input[0].path = "field-data/raw".into();
        adopted.output[0].path = "field-data/clean".into();
        services::create(
            db,
            s3,
            executor,
            &admin,
            &[],
            adopted,
            Timestamp::from_millis(3),
        )
        .await
        .unwrap();
        let plan = services::deletion_plan(db, &app.app.state.services, &admin, "adopted")
            .await
            .unwrap();
        assert!(plan.buckets.is_empty(), "{plan:?}");
        services::delete(
            db,
            &app.app.state.services,
            s3,
            executor,
            &admin,
            "adopted",
            false,
        )
        .await
        .unwrap();
        assert!(bucket_exists(&app, "field-data").await);
        assert_eq!(keys(&app, "field-data").await, ["clean/", "raw/"]);
    }
}

/// A folder a service needs where the store holds an object of that name is the user's to
/// fix: a 400 naming the field and the store's reason, and no service is left half made.
#[tokio::test]
async fn a_service_folder_where_an_object_is_is_refused_naming_the_field() {
    let app = TestApp::new().await;
    let (db, s3) = (&app.app.state.db, &app.app.state.s3);
    let executor = app.app.state.jobs.executor().as_ref();
    s3.client
        .create_bucket()
        .bucket("clash")
        .send()
        .await
        .unwrap();
    common::jobs::put(&app, "clash", "in", b"an object, not a folder").await;
    let mut service = Service::from_json(text_service()).unwrap();
    service.name = "clash".into();
    for (input, output, expected) in [
        (
            "clash/in",
            "clash/out",
            "input[0].path: \"in\" is an object",
        ),
        (
            "clash/fresh",
            "clash/in/results",
            "output[0].path: \"in\" is an object",
        ),
    ] {
        service.input[0].path = input.into();
        service.output[0].path = output.into();
        let err = services::create(
            db,
            s3,
            executor,
            &Caller::admin(),
            &[],
            service.clone(),
            Timestamp::from_millis(1),
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), 400, "{err}");
        assert!(err.to_string().starts_with(expected), "{err}");
    }
    let all = app.app.state.services.list(db).await.unwrap();
    assert!(all.iter().all(|s| s.name != "clash"), "{all:?}");
}

/// A bucket the service made but someone removed behind the platform's back does not stop the
/// service from being deleted.
#[tokio::test]
async fn a_service_whose_bucket_was_removed_outside_can_be_deleted() {
    let app = TestApp::new().await;
    let (db, s3) = (&app.app.state.db, &app.app.state.s3);
    let executor = app.app.state.jobs.executor().as_ref();
    let mut service = Service::from_json(text_service()).unwrap();
    service.name = "orphan".into();
    service.input[0].path = "vanished/in".into();
    service.output[0].path = "vanished/out".into();
    services::create(
        db,
        s3,
        executor,
        &Caller::admin(),
        &[],
        service,
        Timestamp::from_millis(1),
    )
    .await
    .unwrap();
    std::fs::remove_dir_all(app.config.data_dir.join("s3").join("vanished")).unwrap();

    services::delete(
        db,
        &app.app.state.services,
        s3,
        executor,
        &Caller::admin(),
        "orphan",
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        domain::buckets::records::owner_of(db, "vanished")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn the_services_list_is_filtered_and_paged_on_the_server() {
    let mut app = TestApp::new().await;
    for i in 0..52 {
        let image = if i % 2 == 0 {
            "alpine:3.20"
        } else {
            "ubuntu:24.04"
        };
        let service = json!({"name": format!("page-{i:02}"), "image": image, "script": "true"});
        let created = app.rest("POST", "/system/services", Some(service)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    app.login().await;
    let names = |listed: &Value| -> Vec<String> {
        listed["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    let first = app.call("services/list", &[]).await.json();
    assert_eq!(
        (&first["matching"], &first["visible"], &first["page"]),
        (&json!(52), &json!(52), &json!(1))
    );
    let shown = names(&first);
    assert_eq!((shown.len(), shown[0].as_str()), (50, "page-00"));
    assert_eq!(shown[49], "page-49");

    let second = app.call("services/list", &[("page", "2")]).await.json();
    assert_eq!(names(&second), ["page-50", "page-51"]);
    let past_the_end = app.call("services/list", &[("page", "9")]).await.json();
    assert_eq!(past_the_end["page"], 2, "the last page instead");

    // Name, image or owner, any case, before paging.
    let ubuntu = app
        .call("services/list", &[("filter", " UBUNTU ")])
        .await
        .json();
    assert_eq!(
        (ubuntu["matching"].as_u64(), names(&ubuntu).len()),
        (Some(26), 26)
    );
    let fifties = app
        .call("services/list", &[("filter", "page-5")])
        .await
        .json();
    assert_eq!(names(&fifties), ["page-50", "page-51"]);
    let by_owner = app
        .call("services/list", &[("filter", "cluster_ADMIN")])
        .await
        .json();
    assert_eq!(by_owner["matching"], 52);
    let bad = app.call("services/list", &[("page", "two")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);

    // The page renders only its rows, with links to the others that keep the filter.
    // Each page: what it must and must not contain.
    let expected: [(&str, &[&str], &[&str]); 3] = [
        (
            "/services",
            &[r#"href="/services/page-49""#, r#"href="/services?page=2""#],
            &[r#"href="/services/page-50""#],
        ),
        (
            "/services?q=page-5",
            &[r#"value="page-5""#, r#"href="/services/page-51""#],
            &[r#"href="/services/page-10""#],
        ),
        (
            "/services?q=page&page=2",
            &[r#"href="/services?q=page""#, "51–52 of 52 services"],
            &[],
        ),
    ];
    for (path, present, absent) in expected {
        let page = app.get(path).await;
        for text in present {
            assert!(
                page.body.contains(text),
                "{path} lacks {text}: {}",
                page.body
            );
        }
        for text in absent {
            assert!(
                !page.body.contains(text),
                "{path} has {text}: {}",
                page.body
            );
        }
    }
}

#[tokio::test]
async fn the_dashboard_lists_shows_reveals_and_deletes_services() {
    let mut app = TestApp::new().await;
    for endpoint in [
        "services/list",
        "services/get",
        "services/token",
        "services/delete",
    ] {
        let response = app.call(endpoint, &[("name", "upper")]).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{endpoint}");
    }
    let mut service = text_service();
    service["environment"]["secrets"] = json!({"API_KEY": PLANTED});
    app.rest("POST", "/system/services", Some(service)).await;
    app.login().await;

    let listed = app.call("services/list", &[]).await.json();
    assert_eq!(listed["services"][0]["name"], "upper");
    assert_eq!(listed["services"][0]["inputs"], json!(["upper/in"]));
    let page = app.get("/services").await;
    assert!(
        page.body.contains(r#"href="/services/upper""#),
        "{}",
        page.body
    );

    let detail = app.call("services/get", &[("name", "upper")]).await.json();
    assert_eq!(detail["token"], "", "the page never carries the token");
    let page = app.get("/services/upper").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("/job/upper") && page.body.contains("Reveal token"),
        "{}",
        page.body
    );
    assert!(page.body.contains("API_KEY") && !page.body.contains(PLANTED));

    let token = app
        .call("services/token", &[("name", "upper")])
        .await
        .json();
    assert_eq!(token.as_str().unwrap().len(), 64);

    let plan = app
        .call("services/deletion-plan", &[("name", "upper")])
        .await
        .json();
    assert_eq!(plan["buckets"], json!(["upper"]));
    let deleted = app.call("services/delete", &[("name", "upper")]).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert!(!bucket_exists(&app, "upper").await);
    let missing = app.call("services/get", &[("name", "upper")]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(app.get("/services").await.body.contains("No services yet"));
}

#[tokio::test]
async fn fdl_files_are_applied_from_the_dashboard() {
    let mut app = TestApp::new().await;
    app.login().await;
    let first = app.call("services/apply", &[("fdl", WORKFLOW)]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(
        first.json(),
        json!([{"name": "blurry-faces", "created": true}, {"name": "mask-detector", "created": true}])
    );
    // Issue 23.2: applying again creates nothing and says which name is taken; updating
    // existing services is asked for explicitly.
    let taken = app.call("services/apply", &[("fdl", WORKFLOW)]).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert!(taken.body.contains("blurry-faces"), "{}", taken.body);
    let again = app
        .call(
            "services/apply",
            &[("fdl", WORKFLOW), ("update_existing", "true")],
        )
        .await
        .json();
    assert_eq!(again[1], json!({"name": "mask-detector", "created": false}));

    let grayify = include_str!("../../fixtures/fdl/grayify.yaml");
    let missing = app.call("services/apply", &[("fdl", grayify)]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing
            .body
            .contains("functions.oscar[0].my-cluster.script"),
        "{}",
        missing.body
    );
    let script = include_str!("../../fixtures/fdl/script.sh");
    let with_script = app
        .call(
            "services/apply",
            &[
                ("fdl", grayify),
                ("script_name", "script.sh"),
                ("script", script),
            ],
        )
        .await;
    assert_eq!(with_script.status, StatusCode::OK, "{}", with_script.body);
    let stored = app
        .rest("GET", "/system/services/grayify", None)
        .await
        .json();
    assert_eq!(stored["script"], script);

    let bad = app
        .call(
            "services/apply",
            &[("fdl", &TEXT.replace("memory: 256Mi", "memory: 12X"))],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("functions.oscar[0].local.memory"),
        "{}",
        bad.body
    );
}

/// Issue 23.2: the "New service" form never replaces a service: a taken name is a 409 and the
/// stored service keeps its script and resources; the Edit form's save never creates one.
#[tokio::test]
async fn creating_a_taken_name_is_refused_and_saving_a_missing_service_too() {
    let mut app = TestApp::new().await;
    app.rest("POST", "/system/services", Some(text_service()))
        .await;
    let before = app.rest("GET", "/system/services/upper", None).await.json();
    app.login().await;
    let mut other = text_service();
    other["script"] = json!("echo replaced\n");
    other["memory"] = json!("1Gi");
    other["input"] = json!([{"storage_provider": "minio.default", "path": "elsewhere/in"}]);
    let created = app
        .call_json("services/create", json!({"service": other.clone()}))
        .await;
    assert_eq!(created.status, StatusCode::CONFLICT, "{}", created.body);
    assert!(created.body.contains("upper"), "{}", created.body);
    let after = app.rest("GET", "/system/services/upper", None).await.json();
    assert_eq!(after, before);
    assert!(!bucket_exists(&app, "elsewhere").await);

    other["name"] = json!("fresh");
    let saved = app
        .call_json("services/save", json!({"service": other.clone()}))
        .await;
    assert_eq!(saved.status, StatusCode::NOT_FOUND, "{}", saved.body);
    let created = app
        .call_json("services/create", json!({"service": other}))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.json(), json!({"name": "fresh", "created": true}));
}

#[tokio::test]
async fn the_edit_form_saves_whole_definitions_keeping_token_and_secrets() {
    let mut app = TestApp::new().await;
    let mut service = text_service();
    service["environment"]["secrets"] = json!({"API_KEY": PLANTED});
    app.rest("POST", "/system/services", Some(service)).await;
    let token = app.rest("GET", "/system/services/upper", None).await.json()["token"].clone();
    app.login().await;

    // What the form sends: the definition it loaded (no token, blank secrets) with edits.
    let mut edited = app.call("services/get", &[("name", "upper")]).await.json();
    edited["memory"] = json!("1Gi");
    let saved = app
        .call_json("services/save", json!({"service": edited}))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.json(), json!({"name": "upper", "created": false}));

    let stored = app.rest("GET", "/system/services/upper", None).await.json();
    assert_eq!(stored["memory"], "1Gi");
    assert_eq!(stored["token"], token);
    let secrets = services::load_secrets(&app.app.state.db, "upper")
        .await
        .unwrap();
    assert_eq!(secrets["environment.secrets.API_KEY"], PLANTED);

    edited["memory"] = json!("12X");
    let refused = app
        .call_json("services/save", json!({"service": edited}))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("memory"), "{}", refused.body);
}
