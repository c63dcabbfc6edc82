//! The authorization matrix: anonymous, user A (alice), user B (bob) and the admin against
//! every REST endpoint and server function, over private, restricted (shared with bob) and
//! public services and buckets of alice. Runs on SQLite and PostgreSQL. Every mismatch is
//! collected, so one run shows the whole matrix.

mod common;

use common::TestApp;
use common::oidc::FakeOp;
use http::{Request, StatusCode};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Anon,
    Alice,
    Bob,
    Admin,
}
use Who::*;

const EVERYONE: [Who; 4] = [Anon, Alice, Bob, Admin];

/// A server function's arguments.
type Form<'a> = Vec<(&'a str, &'a str)>;

struct World {
    app: TestApp,
    alice_token: String,
    bob_token: String,
    sessions: [(Who, Option<String>); 4],
    failures: Vec<String>,
}

fn service(name: &str, visibility: &str, allowed: &[&str]) -> Value {
    json!({"name": name, "image": "alpine", "script": "cat \"$INPUT_FILE_PATH\"",
           "visibility": visibility, "allowed_users": allowed,
           "input": [{"storage_provider": "minio.default", "path": format!("{name}-in/in")}],
           "output": [{"storage_provider": "minio.default", "path": format!("{name}-in/out")}]})
}

impl World {
    async fn rest(
        &mut self,
        who: Who,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> common::TestResponse {
        self.app.forget_cookie();
        match who {
            Anon => self.app.rest_as(method, path, body, None).await,
            Alice => {
                let token = self.alice_token.clone();
                self.app.rest_bearer(method, path, body, &token).await
            }
            Bob => {
                let token = self.bob_token.clone();
                self.app.rest_bearer(method, path, body, &token).await
            }
            Admin => self.app.rest(method, path, body).await,
        }
    }

    fn signed_in(&mut self, who: Who) {
        let cookie = self
            .sessions
            .iter()
            .find(|(w, _)| *w == who)
            .unwrap()
            .1
            .clone();
        self.app.use_session(cookie);
    }

    async fn call(
        &mut self,
        who: Who,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> common::TestResponse {
        self.signed_in(who);
        self.app.call(endpoint, form).await
    }

    async fn call_json(&mut self, who: Who, endpoint: &str, body: Value) -> common::TestResponse {
        self.signed_in(who);
        self.app.call_json(endpoint, body).await
    }

    async fn page(&mut self, who: Who, method: &str, path: &str) -> common::TestResponse {
        self.signed_in(who);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::from("x"))
            .unwrap();
        self.app.send(request).await
    }

    fn expect(&mut self, what: &str, who: Who, got: &common::TestResponse, want: u16) {
        if got.status.as_u16() != want {
            self.failures.push(format!(
                "{what} as {who:?}: expected {want}, got {} ({})",
                got.status,
                got.body.chars().take(160).collect::<String>()
            ));
        }
    }

    fn check(&mut self, what: &str, truth: bool) {
        if !truth {
            self.failures.push(what.to_string());
        }
    }
}

fn names(list: &Value, key: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|s| s[key].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn every_route_enforces_owner_and_visibility() {
    let mut databases = vec![None];
    if let Some(url) = common::fresh_postgres_database().await {
        databases.push(Some(url));
    }
    for database in databases {
        let op = FakeOp::start().await;
        let mut app = TestApp::with_oidc_on(op.issuer(), database).await;
        let mut sessions = [(Anon, None), (Alice, None), (Bob, None), (Admin, None)];
        app.login_oidc(&op, "alice@test", "/").await;
        sessions[1].1 = app.session();
        app.login_oidc(&op, "bob@test", "/").await;
        sessions[2].1 = app.session();
        app.forget_cookie();
        app.login().await;
        sessions[3].1 = app.session();
        let mut w = World {
            app,
            alice_token: op.token_for("alice@test", 600),
            bob_token: op.token_for("bob@test", 600),
            sessions,
            failures: Vec::new(),
        };
        let db = w.app.database().to_string();
        matrix(&mut w).await;
        assert!(w.failures.is_empty(), "{db}:\n{}", w.failures.join("\n"));
    }
}

async fn matrix(w: &mut World) {
    // alice's things: three services (their buckets share their visibility) and a bucket.
    for (name, visibility, allowed) in [
        ("ap", "private", vec![]),
        ("ar", "restricted", vec!["bob@test"]),
        ("au", "public", vec![]),
    ] {
        let made = w
            .rest(
                Alice,
                "POST",
                "/system/services",
                Some(service(name, visibility, &allowed)),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    }
    let made = w
        .rest(
            Alice,
            "POST",
            "/system/buckets",
            Some(json!({"bucket_name": "abk"})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let job_of = |r: &common::TestResponse| r.json()["job_name"].as_str().unwrap().to_string();
    let alice_ap_job = job_of(
        &w.rest(Alice, "POST", "/job/ap", Some(json!({"x": 1})))
            .await,
    );
    let alice_ar_job = job_of(
        &w.rest(Alice, "POST", "/job/ar", Some(json!({"x": 1})))
            .await,
    );

    let ar_job_path = format!("/system/logs/ar/{alice_ar_job}");
    let ap_job_path = format!("/system/logs/ap/{alice_ap_job}");
    // REST: [anonymous, alice, bob, admin].
    let rows: Vec<(&str, &str, Option<Value>, [u16; 4])> = vec![
        ("GET", "/system/services/ap", None, [401, 200, 404, 200]),
        (
            "GET",
            "/system/registry-credentials",
            None,
            [401, 200, 200, 200],
        ),
        (
            "DELETE",
            "/system/registry-credentials/nobodys",
            None,
            [401, 404, 404, 404],
        ),
        ("GET", "/system/services/ar", None, [401, 200, 200, 200]),
        ("GET", "/system/services/au", None, [401, 200, 200, 200]),
        (
            "PUT",
            "/system/services",
            Some(service("ar", "restricted", &["bob@test"])),
            [401, 204, 403, 204],
        ),
        (
            "PUT",
            "/system/services",
            Some(service("ap", "private", &[])),
            [401, 204, 404, 204],
        ),
        ("POST", "/job/ap", Some(json!({})), [401, 201, 404, 201]),
        ("POST", "/job/ar", Some(json!({})), [401, 201, 201, 201]),
        ("POST", "/job/au", Some(json!({})), [401, 201, 201, 201]),
        ("GET", "/system/logs/ap", None, [401, 200, 404, 200]),
        ("GET", "/system/logs/ar", None, [401, 200, 200, 200]),
        ("GET", &ar_job_path, None, [401, 200, 404, 200]),
        ("GET", &ap_job_path, None, [401, 200, 404, 200]),
        ("GET", "/system/buckets/ap-in", None, [401, 200, 403, 200]),
        ("GET", "/system/buckets/ar-in", None, [401, 200, 200, 200]),
        ("GET", "/system/buckets/au-in", None, [401, 200, 200, 200]),
        ("GET", "/system/buckets/abk", None, [401, 200, 403, 200]),
        (
            "POST",
            "/system/buckets/ap-in/presign",
            Some(json!({"object_key": "in/x", "operation": "download"})),
            [401, 200, 403, 200],
        ),
        (
            "POST",
            "/system/buckets/ar-in/presign",
            Some(json!({"object_key": "in/x", "operation": "upload"})),
            [401, 200, 200, 200],
        ),
        (
            "PUT",
            "/system/buckets",
            Some(json!({"bucket_name": "abk", "visibility": "private"})),
            [401, 204, 403, 204],
        ),
        ("GET", "/system/logs", None, [401, 403, 403, 200]),
        ("GET", "/system/config", None, [401, 200, 200, 200]),
        ("GET", "/system/services", None, [401, 200, 200, 200]),
        ("GET", "/system/buckets", None, [401, 200, 200, 200]),
    ];
    for (method, path, body, want) in rows {
        for (who, status) in EVERYONE.into_iter().zip(want) {
            let got = w.rest(who, method, path, body.clone()).await;
            w.expect(&format!("{method} {path}"), who, &got, status);
        }
    }
    // Destructive ones: bob only, before anyone else may delete.
    for (method, path, status) in [
        ("DELETE", format!("/system/logs/ar/{alice_ar_job}"), 404),
        ("DELETE", "/system/logs/ap".to_string(), 404),
        ("DELETE", "/system/buckets/abk".into(), 403),
        ("DELETE", "/system/buckets/ar-in".into(), 403),
        ("DELETE", "/system/services/ar".into(), 403),
        ("DELETE", "/system/services/ap".into(), 404),
    ] {
        let got = w.rest(Bob, method, &path, None).await;
        w.expect(&format!("{method} {path}"), Bob, &got, status);
    }
    // Lists show only what each may see.
    let bob_services = names(
        &w.rest(Bob, "GET", "/system/services", None).await.json(),
        "name",
    );
    w.check(
        &format!("bob lists services {bob_services:?}"),
        bob_services == ["ar", "au"],
    );
    let bob_buckets = names(
        &w.rest(Bob, "GET", "/system/buckets", None).await.json(),
        "bucket_name",
    );
    w.check(
        &format!("bob lists buckets {bob_buckets:?}"),
        bob_buckets == ["ar-in", "au-in"],
    );
    let bob_ar_jobs = w.rest(Bob, "GET", "/system/logs/ar", None).await.json();
    w.check(
        &format!("bob sees only his own jobs of ar: {bob_ar_jobs}"),
        !bob_ar_jobs["jobs"]
            .as_object()
            .unwrap()
            .contains_key(&alice_ar_job)
            && bob_ar_jobs["jobs"].as_object().unwrap().len() == 1,
    );
    let bob_config = w.rest(Bob, "GET", "/system/config", None).await.json();
    let root_key = w.app.app.state.jobs.storage().access_key.clone();
    let bob_key = bob_config["minio_provider"]["access_key"].as_str();
    w.check(
        &format!("bob gets his own store key, not the root key: {bob_key:?}"),
        bob_key.is_some_and(|k| k.starts_with("OSCU") && k != root_key),
    );
    let bob_ar = w.rest(Bob, "GET", "/system/services/ar", None).await.json();
    w.check("bob does not get ar's token", bob_ar["token"] == "");

    // Server functions: [anonymous, alice, bob, admin].
    let rows: Vec<(&str, Form, [u16; 4])> = vec![
        ("services/get", vec![("name", "ap")], [401, 200, 404, 200]),
        ("system/store_credentials", vec![], [401, 200, 200, 200]),
        // Registry credentials are each caller's own: nobody reaches another's.
        ("registries/list", vec![], [401, 200, 200, 200]),
        (
            "registries/delete",
            vec![("name", "nobodys")],
            [401, 404, 404, 404],
        ),
        (
            "system/rotate_store_credentials",
            vec![],
            [401, 200, 200, 400],
        ),
        ("services/get", vec![("name", "ar")], [401, 200, 200, 200]),
        ("services/token", vec![("name", "ar")], [401, 200, 403, 200]),
        ("services/token", vec![("name", "ap")], [401, 200, 404, 200]),
        (
            "services/deletion-plan",
            vec![("name", "ap")],
            [401, 200, 404, 200],
        ),
        (
            "services/deletion-plan",
            vec![("name", "ar")],
            [401, 200, 403, 200],
        ),
        ("services/list", vec![], [401, 200, 200, 200]),
        ("jobs/list", vec![("service", "ap")], [401, 200, 404, 200]),
        ("jobs/list", vec![("service", "ar")], [401, 200, 200, 200]),
        (
            "jobs/log",
            vec![("service", "ar"), ("job", &alice_ar_job)],
            [401, 200, 404, 200],
        ),
        (
            "jobs/retry",
            vec![("service", "ar"), ("job", &alice_ar_job)],
            [401, 409, 404, 409],
        ),
        (
            "jobs/get",
            vec![("service", "ar"), ("job", &alice_ar_job)],
            [401, 200, 404, 200],
        ),
        ("jobs/recent", vec![], [401, 200, 200, 200]),
        ("buckets/list", vec![], [401, 200, 200, 200]),
        (
            "buckets/objects",
            vec![("bucket", "ap-in"), ("prefix", "")],
            [401, 200, 403, 200],
        ),
        (
            "buckets/objects",
            vec![("bucket", "ar-in"), ("prefix", "")],
            [401, 200, 200, 200],
        ),
        (
            "buckets/share",
            vec![("bucket", "ap-in"), ("key", "in/"), ("expires_in", "60")],
            [401, 200, 403, 200],
        ),
        (
            "buckets/preview",
            vec![("bucket", "ap-in"), ("key", "in/")],
            [401, 200, 403, 200],
        ),
        ("system/info", vec![], [401, 200, 200, 200]),
    ];
    for (endpoint, form, want) in rows {
        for (who, status) in EVERYONE.into_iter().zip(want) {
            let got = w.call(who, endpoint, &form).await;
            w.expect(endpoint, who, &got, status);
        }
    }
    for (endpoint, form, status) in [
        (
            "buckets/folder",
            vec![("bucket", "ap-in"), ("folder", "new")],
            403,
        ),
        ("buckets/delete", vec![("name", "ar-in")], 403),
        ("buckets/delete", vec![("name", "abk")], 403),
        ("services/delete", vec![("name", "ar")], 403),
        ("services/delete", vec![("name", "ap")], 404),
        (
            "jobs/delete",
            vec![("service", "ar"), ("jobs[0]", &alice_ar_job)],
            404,
        ),
        ("jobs/run", vec![("service", "ap"), ("payload", "x")], 404),
        ("jobs/glance", vec![("service", "ap")], 404),
        ("services/polls", vec![("name", "ap")], 404),
        (
            "jobs/rerun",
            vec![("service", "ar"), ("job", &alice_ar_job)],
            404,
        ),
        (
            "jobs/stop",
            vec![("service", "ar"), ("job", &alice_ar_job)],
            404,
        ),
    ] {
        for who in [Anon, Bob] {
            let got = w.call(who, endpoint, &form).await;
            w.expect(endpoint, who, &got, if who == Anon { 401 } else { status });
        }
    }
    for (endpoint, body, status) in [
        (
            "buckets/delete-objects",
            json!({"bucket": "ap-in", "keys": ["in/x"], "folders": []}),
            403,
        ),
        (
            "buckets/sharing",
            json!({"name": "abk", "visibility": "public", "allowed_users": ["bob@test"]}),
            403,
        ),
        (
            "buckets/sharing",
            json!({"name": "ap-in", "visibility": "public", "allowed_users": []}),
            403,
        ),
        (
            "services/save",
            json!({"service": service("ar", "public", &[])}),
            403,
        ),
        (
            "services/save",
            json!({"service": service("ap", "public", &[])}),
            404,
        ),
    ] {
        for who in [Anon, Bob] {
            let got = w.call_json(who, endpoint, body.clone()).await;
            w.expect(endpoint, who, &got, if who == Anon { 401 } else { status });
        }
    }
    // Streams and transfers (plain routes behind the session).
    for (method, path, status) in [
        ("GET", "/api/live/jobs/ap".to_string(), 404),
        ("GET", format!("/api/live/log/ar/{alice_ar_job}"), 404),
        ("GET", format!("/api/download/log/ar/{alice_ar_job}"), 404),
        ("PUT", "/api/upload/ap-in/in/x.txt".into(), 403),
        ("GET", "/api/download/zip/ap-in?key=in/x".into(), 403),
        ("GET", "/api/download/object/ap-in/in/x".into(), 403),
        ("GET", "/api/live/bucket/ap-in".into(), 403),
    ] {
        for who in [Anon, Bob] {
            let got = w.page(who, method, &path).await;
            w.expect(
                &format!("{method} {path}"),
                who,
                &got,
                if who == Anon { 401 } else { status },
            );
        }
    }
    // The dashboard's lists for bob.
    let listed = w.call(Bob, "services/list", &[]).await.json();
    let listed = names(&listed["services"], "name");
    w.check(
        &format!("bob's services page lists {listed:?}"),
        listed == ["ar", "au"],
    );
    let listed = names(&w.call(Bob, "buckets/list", &[]).await.json(), "name");
    w.check(
        &format!("bob's buckets page lists {listed:?}"),
        listed == ["ar-in", "au-in"],
    );
    let glance = w.call(Bob, "jobs/glance", &[]).await.json();
    let measured = names(&glance["storage"], "bucket");
    w.check(
        &format!("bob's glance measures {measured:?}"),
        measured == ["ar-in", "au-in"],
    );
    let recent = w.call(Bob, "jobs/recent", &[]).await.json();
    let recent: Vec<&str> = recent["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["service"].as_str().unwrap())
        .collect();
    w.check(
        &format!("bob's jobs page shows only his jobs: {recent:?}"),
        recent.len() == 2 && !recent.contains(&"ap"),
    );
}

/// Two tenants on one server: alice and bob signed in (sessions) and with bearer tokens.
struct Tenants {
    _op: FakeOp,
    app: TestApp,
    alice: String,
    bob: String,
    alice_session: Option<String>,
    bob_session: Option<String>,
}

impl Tenants {
    /// On SQLite, then on PostgreSQL when `TEST_DATABASE_URL` is set.
    async fn on_each_database() -> Vec<Self> {
        let mut databases = vec![None];
        if let Some(url) = common::fresh_postgres_database().await {
            databases.push(Some(url));
        }
        let mut all = Vec::new();
        for database in databases {
            let op = FakeOp::start().await;
            let mut app = TestApp::with_oidc_on(op.issuer(), database).await;
            app.login_oidc(&op, "alice@test", "/").await;
            let alice_session = app.session();
            app.login_oidc(&op, "bob@test", "/").await;
            let bob_session = app.session();
            app.forget_cookie();
            all.push(Self {
                alice: op.token_for("alice@test", 600),
                bob: op.token_for("bob@test", 600),
                _op: op,
                app,
                alice_session,
                bob_session,
            });
        }
        all
    }

    /// A service of `token`'s holder with buckets of its own ([`service`]), shared with nobody
    /// in particular.
    async fn service(&mut self, token: &str, name: &str, visibility: &str) {
        let made = self
            .app
            .rest_bearer(
                "POST",
                "/system/services",
                Some(service(name, visibility, &[])),
                token,
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    }

    async fn bucket(&mut self, token: &str, name: &str, visibility: &str) {
        let body = json!({"bucket_name": name, "visibility": visibility});
        let made = self
            .app
            .rest_bearer("POST", "/system/buckets", Some(body), token)
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    }

    /// Stores `bucket/key` with the platform's keys, named as uploaded by `uploader`.
    async fn object(&self, bucket: &str, key: &str, uploader: Option<&str>) {
        self.app
            .app
            .state
            .s3
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .set_metadata(uploader.map(|u| [("oscar-uploader".to_string(), u.to_string())].into()))
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"data"))
            .send()
            .await
            .unwrap();
    }

    async fn exists(&self, bucket: &str, key: &str) -> bool {
        let s3 = &self.app.app.state.s3;
        s3.client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    }

    /// A server function as `who` (None: anonymous).
    async fn call_json(
        &mut self,
        who: Option<Who>,
        endpoint: &str,
        body: Value,
    ) -> common::TestResponse {
        self.sign_in(who);
        self.app.call_json(endpoint, body).await
    }

    async fn call(
        &mut self,
        who: Option<Who>,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> common::TestResponse {
        self.sign_in(who);
        self.app.call(endpoint, form).await
    }

    async fn get(&mut self, who: Option<Who>, path: &str) -> common::TestResponse {
        self.sign_in(who);
        self.app.get(path).await
    }

    fn sign_in(&mut self, who: Option<Who>) {
        let session = match who {
            Some(Alice) => self.alice_session.clone(),
            Some(Bob) => self.bob_session.clone(),
            _ => None,
        };
        self.app.use_session(session);
    }
}

/// The S3 error code of a refused request, or "" when it succeeded.
fn refusal<T, E>(result: Result<T, aws_sdk_s3::error::SdkError<E>>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    match result {
        Ok(_) => String::new(),
        Err(err) => err
            .as_service_error()
            .and_then(|e| e.code())
            .unwrap_or("not answered")
            .to_string(),
    }
}

fn delete_request(keys: &[&str]) -> aws_sdk_s3::types::Delete {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let objects = keys
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
        .collect();
    Delete::builder()
        .set_objects(Some(objects))
        .build()
        .unwrap()
}

/// Issue 20.1: keys with `..` segments, wherever they are written, stay in their bucket.
#[tokio::test]
async fn keys_with_dot_segments_cannot_reach_another_tenants_bucket() {
    for mut t in Tenants::on_each_database().await {
        let db = t.app.database().to_string();
        let (alice, bob) = (t.alice.clone(), t.bob.clone());
        t.bucket(&alice, "alice-bucket", "private").await;
        t.bucket(&alice, "alice-empty", "private").await;
        t.bucket(&bob, "bob-bucket", "private").await;
        t.object("alice-bucket", "file", Some("alice@test")).await;

        // Bob's own store key: DeleteObjects with the keys in its body, and keys in the path.
        let s3 = t.app.store_client_for(&bob).await;
        for key in [
            "../alice-bucket/file",
            "../alice-empty/",
            "x/../../alice-bucket/file",
        ] {
            let deleted = s3
                .delete_objects()
                .bucket("bob-bucket")
                .delete(delete_request(&[key]))
                .send()
                .await;
            assert_eq!(refusal(deleted), "InvalidArgument", "{db}: {key}");
        }
        let started = s3
            .create_multipart_upload()
            .bucket("bob-bucket")
            .key("../alice-bucket/planted")
            .send()
            .await;
        assert_ne!(refusal(started), "", "{db}");

        // The dashboard: delete, ZIP, preview and share links.
        for body in [
            json!({"bucket": "bob-bucket", "keys": ["../alice-bucket/file"], "folders": []}),
            json!({"bucket": "bob-bucket", "keys": [], "folders": ["../alice-empty"]}),
        ] {
            let got = t
                .call_json(Some(Bob), "buckets/delete-objects", body.clone())
                .await;
            assert_eq!(
                got.status,
                StatusCode::BAD_REQUEST,
                "{db}: {body} {}",
                got.body
            );
            let got = t.call_json(None, "buckets/delete-objects", body).await;
            assert_eq!(got.status, StatusCode::UNAUTHORIZED, "{db}");
        }
        for query in ["key=../alice-bucket/file", "folder=../alice-bucket"] {
            let path = format!("/api/download/zip/bob-bucket?{query}");
            let got = t.get(Some(Bob), &path).await;
            assert_eq!(
                got.status,
                StatusCode::BAD_REQUEST,
                "{db}: {path} {}",
                got.body
            );
        }
        let escape = [("bucket", "bob-bucket"), ("key", "../alice-bucket/file")];
        let got = t.call(Some(Bob), "buckets/preview", &escape).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{db}: {}", got.body);
        let share = [escape.as_slice(), &[("expires_in", "60")]].concat();
        let got = t.call(Some(Bob), "buckets/share", &share).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{db}: {}", got.body);
        for operation in ["upload", "download"] {
            let body = json!({"object_key": "../alice-bucket/file", "operation": operation});
            let got = t
                .app
                .rest_bearer(
                    "POST",
                    "/system/buckets/bob-bucket/presign",
                    Some(body),
                    &bob,
                )
                .await;
            assert_eq!(got.status, StatusCode::BAD_REQUEST, "{db}: {}", got.body);
        }

        // Alice's object and her empty bucket are still there, and still hers to use.
        assert!(t.exists("alice-bucket", "file").await, "{db}");
        let got = t
            .app
            .rest_bearer("GET", "/system/buckets/alice-empty", None, &alice)
            .await;
        assert_eq!(got.status, StatusCode::OK, "{db}: {}", got.body);
        let got = t
            .app
            .rest_bearer("DELETE", "/system/buckets/alice-empty", None, &alice)
            .await;
        assert_eq!(got.status, StatusCode::NO_CONTENT, "{db}: {}", got.body);
    }
}

/// Issue 20.2: a bucket made outside the platform has no owner; naming it in a service does
/// not make the service's owner its owner. Only the admin adopts it.
#[tokio::test]
async fn only_the_admin_adopts_a_bucket_made_outside_the_platform() {
    for mut t in Tenants::on_each_database().await {
        let db = t.app.database().to_string();
        let (alice, bob) = (t.alice.clone(), t.bob.clone());
        let s3 = t.app.app.state.s3.clone();
        s3.client
            .create_bucket()
            .bucket("archive")
            .send()
            .await
            .unwrap();
        t.object("archive", "ledger.txt", None).await;

        let taker = |visibility: &str| {
            json!({"name": "taker", "image": "alpine", "script": "true", "visibility": visibility,
                   "input": [{"storage_provider": "minio.default", "path": "archive/in"}]})
        };
        let got = t
            .app
            .rest_bearer("POST", "/system/services", Some(taker("private")), &alice)
            .await;
        assert_eq!(got.status, StatusCode::CONFLICT, "{db}: {}", got.body);
        assert!(
            got.body.contains("only the admin may adopt it"),
            "{db}: {}",
            got.body
        );
        // Nor by updating a service of hers, nor through the dashboard.
        let mut own = taker("public");
        own["name"] = json!("alice-svc");
        own["input"][0]["path"] = json!("alice-in/in");
        let got = t
            .app
            .rest_bearer("POST", "/system/services", Some(own.clone()), &alice)
            .await;
        assert_eq!(got.status, StatusCode::CREATED, "{db}: {}", got.body);
        own["output"] = json!([{"storage_provider": "minio.default", "path": "archive/out"}]);
        let got = t
            .app
            .rest_bearer("PUT", "/system/services", Some(own), &alice)
            .await;
        assert_eq!(got.status, StatusCode::CONFLICT, "{db}: {}", got.body);
        let body = json!({"service": taker("private")});
        let got = t
            .call_json(Some(Bob), "services/create", body.clone())
            .await;
        assert_eq!(got.status, StatusCode::CONFLICT, "{db}: {}", got.body);
        let got = t.call_json(None, "services/create", body).await;
        assert_eq!(got.status, StatusCode::UNAUTHORIZED, "{db}");

        // The bucket is still out of everyone's reach but the admin's.
        for token in [&alice, &bob] {
            let got = t
                .app
                .rest_bearer("GET", "/system/buckets/archive", None, token)
                .await;
            assert_eq!(got.status, StatusCode::FORBIDDEN, "{db}: {}", got.body);
            let presign = json!({"object_key": "ledger.txt", "operation": "download"});
            let got = t
                .app
                .rest_bearer(
                    "POST",
                    "/system/buckets/archive/presign",
                    Some(presign),
                    token,
                )
                .await;
            assert_eq!(got.status, StatusCode::FORBIDDEN, "{db}: {}", got.body);
            let got = t
                .app
                .rest_bearer("DELETE", "/system/buckets/archive", None, token)
                .await;
            assert_eq!(got.status, StatusCode::FORBIDDEN, "{db}: {}", got.body);
            let own_key = t.app.store_client_for(token).await;
            let listed = own_key.list_objects_v2().bucket("archive").send().await;
            assert_eq!(refusal(listed), "AccessDenied", "{db}");
        }
        let got = t
            .app
            .rest_as("GET", "/system/buckets/archive", None, None)
            .await;
        assert_eq!(got.status, StatusCode::UNAUTHORIZED, "{db}");

        // The admin adopts it by naming it in a service.
        let got = t
            .app
            .rest("POST", "/system/services", Some(taker("private")))
            .await;
        assert_eq!(got.status, StatusCode::CREATED, "{db}: {}", got.body);
        let bucket = t.app.rest("GET", "/system/buckets/archive", None).await;
        assert_eq!(bucket.json()["owner"], "cluster_admin", "{db}");
        assert!(t.exists("archive", "ledger.txt").await, "{db}");
    }
}

async fn upload_as(t: &mut Tenants, who: Who, path: &str) -> common::TestResponse {
    t.sign_in(Some(who));
    let request = Request::put(path)
        .body(axum::body::Body::from("x"))
        .unwrap();
    t.app.send(request).await
}

/// Issue 20.3: on a bucket shared with him, bob lists, reads and uploads, and replaces or
/// deletes only what he uploaded: the same through his own store key, the dashboard and the
/// REST API. Alice, the owner, deletes anything.
#[tokio::test]
async fn sharees_never_delete_or_replace_what_others_uploaded() {
    for mut t in Tenants::on_each_database().await {
        let db = t.app.database().to_string();
        let (alice, bob) = (t.alice.clone(), t.bob.clone());
        t.service(&alice, "au", "public").await;
        let body = json!({"bucket_name": "ar-data", "visibility": "restricted",
                          "allowed_users": ["bob@test"]});
        let made = t
            .app
            .rest_bearer("POST", "/system/buckets", Some(body), &alice)
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{db}: {}", made.body);
        let alice_s3 = t.app.store_client_for(&alice).await;
        let bob_s3 = t.app.store_client_for(&bob).await;
        let put = |s3: &aws_sdk_s3::Client, bucket: &str, key: &str| {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        };

        for bucket in ["au-in", "ar-data"] {
            // Alice's objects: with her own key, and through the dashboard.
            let stored = put(&alice_s3, bucket, "own-key.txt").send().await;
            assert_eq!(refusal(stored), "", "{db}");
            let got = upload_as(
                &mut t,
                Alice,
                &format!("/api/upload/{bucket}/dashboard.txt"),
            )
            .await;
            assert_eq!(got.status, StatusCode::OK, "{db}: {}", got.body);
            let theirs = ["own-key.txt", "dashboard.txt"];

            // Bob's key: reads and lists; never deletes, replaces or copies over hers.
            let listed = bob_s3.list_objects_v2().bucket(bucket).send().await;
            assert_eq!(refusal(listed), "", "{db}");
            let read = bob_s3
                .get_object()
                .bucket(bucket)
                .key("own-key.txt")
                .send()
                .await;
            assert_eq!(refusal(read), "", "{db}");
            for key in theirs {
                let what = format!("{db}: {bucket}/{key}");
                let deleted = bob_s3.delete_object().bucket(bucket).key(key).send().await;
                assert_eq!(refusal(deleted), "AccessDenied", "{what}");
                let deleted = bob_s3
                    .delete_objects()
                    .bucket(bucket)
                    .delete(delete_request(&[key]))
                    .send()
                    .await;
                assert_eq!(refusal(deleted), "AccessDenied", "{what}");
                assert_eq!(
                    refusal(put(&bob_s3, bucket, key).send().await),
                    "AccessDenied",
                    "{what}"
                );
                let copied = bob_s3
                    .copy_object()
                    .bucket(bucket)
                    .key(key)
                    .copy_source(format!("{bucket}/{}", theirs[0]))
                    .send()
                    .await;
                assert_eq!(refusal(copied), "AccessDenied", "{what}");
                let started = bob_s3
                    .create_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await;
                assert_eq!(refusal(started), "AccessDenied", "{what}");
            }
            // What he uploads is his, whatever metadata he sends: he may replace and delete it.
            let forged = put(&bob_s3, bucket, "bob.txt").metadata("oscar-uploader", "alice@test");
            assert_eq!(refusal(forged.send().await), "", "{db}");
            let head = t
                .app
                .app
                .state
                .s3
                .client
                .head_object()
                .bucket(bucket)
                .key("bob.txt")
                .send()
                .await
                .unwrap();
            assert_eq!(
                head.metadata().unwrap()["oscar-uploader"],
                "bob@test",
                "{db}"
            );
            let copied = bob_s3
                .copy_object()
                .bucket(bucket)
                .key("bob-copy.txt")
                .copy_source(format!("{bucket}/own-key.txt"))
                .send()
                .await;
            assert_eq!(refusal(copied), "", "{db}");
            assert_eq!(
                refusal(put(&bob_s3, bucket, "bob.txt").send().await),
                "",
                "{db}"
            );
            let deleted = bob_s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete_request(&["bob.txt", "bob-copy.txt"]))
                .send()
                .await;
            assert_eq!(refusal(deleted), "", "{db}");

            // The dashboard: the same rights.
            for body in [
                json!({"bucket": bucket, "keys": ["dashboard.txt"], "folders": []}),
                json!({"bucket": bucket, "keys": ["own-key.txt"], "folders": []}),
            ] {
                let got = t
                    .call_json(Some(Bob), "buckets/delete-objects", body.clone())
                    .await;
                assert_eq!(
                    got.status,
                    StatusCode::FORBIDDEN,
                    "{db}: {body} {}",
                    got.body
                );
                let got = t.call_json(None, "buckets/delete-objects", body).await;
                assert_eq!(got.status, StatusCode::UNAUTHORIZED, "{db}");
            }
            let got = upload_as(&mut t, Bob, &format!("/api/upload/{bucket}/dashboard.txt")).await;
            assert_eq!(got.status, StatusCode::FORBIDDEN, "{db}: {}", got.body);
            let got = upload_as(&mut t, Bob, &format!("/api/upload/{bucket}/mine/b.txt")).await;
            assert_eq!(got.status, StatusCode::OK, "{db}: {}", got.body);
            let own = json!({"bucket": bucket, "keys": [], "folders": ["mine"]});
            let got = t.call_json(Some(Bob), "buckets/delete-objects", own).await;
            assert_eq!(got.status, StatusCode::OK, "{db}: {}", got.body);

            // REST: no upload link over her objects, no sharing change, no bucket deletion.
            let presign = |key: &str| json!({"object_key": key, "operation": "upload"});
            let path = format!("/system/buckets/{bucket}/presign");
            let got = t
                .app
                .rest_bearer("POST", &path, Some(presign("dashboard.txt")), &bob)
                .await;
            assert_eq!(got.status, StatusCode::FORBIDDEN, "{db}: {}", got.body);
            let got = t
                .app
                .rest_bearer("POST", &path, Some(presign("new.txt")), &bob)
                .await;
            assert_eq!(got.status, StatusCode::OK, "{db}: {}", got.body);
            let share = json!({"bucket_name": bucket, "visibility": "public"});
            let got = t
                .app
                .rest_bearer("PUT", "/system/buckets", Some(share), &bob)
                .await;
            assert_eq!(got.status, StatusCode::FORBIDDEN, "{db}: {}", got.body);
            let got = t
                .app
                .rest_bearer("DELETE", &format!("/system/buckets/{bucket}"), None, &bob)
                .await;
            assert_eq!(got.status, StatusCode::FORBIDDEN, "{db}: {}", got.body);
            for key in theirs {
                assert!(t.exists(bucket, key).await, "{db}: {bucket}/{key}");
            }

            // The owner deletes anything, bob's uploads included.
            assert_eq!(
                refusal(put(&bob_s3, bucket, "bob.txt").send().await),
                "",
                "{db}"
            );
            let deleted = alice_s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete_request(&["bob.txt", "own-key.txt"]))
                .send()
                .await;
            assert_eq!(refusal(deleted), "", "{db}");
            let body = json!({"bucket": bucket, "keys": ["dashboard.txt"], "folders": []});
            let got = t
                .call_json(Some(Alice), "buckets/delete-objects", body)
                .await;
            assert_eq!(got.status, StatusCode::OK, "{db}: {}", got.body);
        }
    }
}

/// A MinIO notification for one object.
fn storage_event(bucket: &str, key: &str) -> String {
    json!({"EventName": "s3:ObjectCreated:Put", "Key": format!("{bucket}/{key}"),
           "Records": [{"eventVersion": "2.0", "eventSource": "minio:s3",
                        "eventName": "s3:ObjectCreated:Put",
                        "s3": {"bucket": {"name": bucket},
                               "object": {"key": key, "size": 1, "eTag": "e1"}}}]})
    .to_string()
}

/// Issue 20.8: anonymous callers of `/job` and `/run` get 401 for private and missing services
/// alike (names cannot be enumerated); a signed-in user who may not see a service gets the
/// same 404 as for a missing one.
#[tokio::test]
async fn invocations_do_not_reveal_which_services_exist() {
    for mut t in Tenants::on_each_database().await {
        let db = t.app.database().to_string();
        let alice = t.alice.clone();
        let bob = t.bob.clone();
        t.service(&alice, "ap", "private").await;
        t.app.forget_cookie();
        for verb in ["job", "run"] {
            let mut answers = Vec::new();
            for name in ["ap", "no-such-service"] {
                let path = format!("/{verb}/{name}");
                let anonymous = t.app.invoke(&path, "", "{}").await;
                let forged = t.app.invoke(&path, "Bearer forged", "{}").await;
                let bob_says = t.app.invoke(&path, &format!("Bearer {bob}"), "{}").await;
                assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{db} {path}");
                assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{db} {path}");
                assert_eq!(bob_says.status, StatusCode::NOT_FOUND, "{db} {path}");
                answers.push((anonymous.body, forged.body));
            }
            assert_eq!(
                answers[0], answers[1],
                "{db} /{verb}: the answers tell the names apart"
            );
        }
    }
}

/// Issue 20.8: a storage event sent to `/job` or `/run` counts only for an object in one of
/// the service's input folders: otherwise a caller of a public service could have its job
/// fetch any object of its buckets (others' outputs) and read it back.
#[tokio::test]
async fn invoked_storage_events_stay_in_the_input_folders() {
    for mut t in Tenants::on_each_database().await {
        let db = t.app.database().to_string();
        let alice = t.alice.clone();
        let bob = t.bob.clone();
        t.service(&alice, "au", "public").await;
        t.bucket(&alice, "alice-private", "private").await;
        t.app.forget_cookie();
        let bearer = format!("Bearer {bob}");
        for (bucket, key) in [
            ("au-in", "out/alice-result.txt"),
            ("au-in", "input/x.txt"),
            ("au-in", "in/"),
            ("alice-private", "in/x.txt"),
        ] {
            for verb in ["job", "run"] {
                let path = format!("/{verb}/au");
                let answer = t
                    .app
                    .invoke(&path, &bearer, storage_event(bucket, key))
                    .await;
                assert_eq!(
                    answer.status,
                    StatusCode::BAD_REQUEST,
                    "{db} {path} {bucket}/{key}: {}",
                    answer.body
                );
                assert!(
                    answer.body.contains("Records[0].s3.object.key"),
                    "{}",
                    answer.body
                );
            }
        }
        let inside = t
            .app
            .invoke("/job/au", &bearer, storage_event("au-in", "in/x.txt"))
            .await;
        assert_eq!(inside.status, StatusCode::CREATED, "{db}: {}", inside.body);
    }
}

/// Issue 20.8: on a service shared with him, bob's live job feeds (the service page's and the
/// Jobs page's) tell him of his own jobs only, never the names of others' jobs.
#[tokio::test]
async fn live_job_feeds_carry_only_the_viewers_own_jobs_of_a_shared_service() {
    use futures_util::StreamExt;
    use tower::ServiceExt;
    for mut t in Tenants::on_each_database().await {
        let db = t.app.database().to_string();
        let (alice, bob) = (t.alice.clone(), t.bob.clone());
        t.service(&alice, "au", "public").await;
        for path in ["/api/live/jobs/au", "/api/live/jobs"] {
            let request = Request::get(path)
                .header(http::header::COOKIE, t.bob_session.clone().unwrap())
                .body(axum::body::Body::empty())
                .unwrap();
            let feed = t.app.app.router.clone().oneshot(request).await.unwrap();
            assert_eq!(feed.status(), StatusCode::OK, "{db} {path}");
            let mut feed = feed.into_body().into_data_stream();
            t.app.forget_cookie();
            let alices = t
                .app
                .invoke("/job/au", &format!("Bearer {alice}"), "{}")
                .await;
            let bobs = t
                .app
                .invoke("/job/au", &format!("Bearer {bob}"), "{}")
                .await;
            let alices = alices.json()["job_name"].as_str().unwrap().to_string();
            let bobs = bobs.json()["job_name"].as_str().unwrap().to_string();
            let mut seen = String::new();
            while !seen.contains(&bobs) {
                let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), feed.next())
                    .await
                    .unwrap_or_else(|_| panic!("{db} {path}: no event for bob's job in {seen:?}"))
                    .unwrap()
                    .unwrap();
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
            assert!(
                !seen.contains(&alices),
                "{db} {path}: alice's job reached bob: {seen}"
            );
        }
    }
}

/// A share (or upload) link for `bucket/key` as `token`'s holder asks for it.
async fn presign(t: &mut Tenants, token: &str, bucket: &str, key: &str, operation: &str) -> String {
    let body = json!({"object_key": key, "operation": operation, "expires_in": 600});
    let made = t
        .app
        .rest_bearer(
            "POST",
            &format!("/system/buckets/{bucket}/presign"),
            Some(body),
            token,
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    made.json()["url"].as_str().unwrap().to_string()
}

/// Issue 20.6: a stored HTML, SVG or XML file opened from a share link is a download or inert
/// text, never a page on the store's origin; the store never lets a browser sniff a type, and
/// sandboxes whatever it answers except PDFs (typed as such).
#[tokio::test]
async fn shared_files_never_open_as_active_content() {
    for mut t in Tenants::on_each_database().await {
        let db = t.app.database().to_string();
        let alice = t.alice.clone();
        t.bucket(&alice, "pages", "private").await;
        let page = b"<html><script>alert(document.domain)</script></html>";
        for key in [
            "a.html", "b.svg", "c.htm", "d", "e.pdf", "f.txt", "g.xml", "h.png",
        ] {
            t.app
                .app
                .state
                .s3
                .client
                .put_object()
                .bucket("pages")
                .key(key)
                .content_type("text/html")
                .body(aws_sdk_s3::primitives::ByteStream::from_static(page))
                .send()
                .await
                .unwrap();
        }
        for (key, disposition, content_type) in [
            (
                "a.html",
                Some("attachment; filename*=UTF-8''a.html"),
                "text/html",
            ),
            (
                "b.svg",
                Some("attachment; filename*=UTF-8''b.svg"),
                "text/html",
            ),
            (
                "c.htm",
                Some("attachment; filename*=UTF-8''c.htm"),
                "text/html",
            ),
            ("d", Some("attachment; filename*=UTF-8''d"), "text/html"),
            ("e.pdf", None, "application/pdf"),
            ("f.txt", None, "text/plain; charset=utf-8"),
            ("g.xml", None, "text/plain; charset=utf-8"),
            ("h.png", None, "image/png"),
        ] {
            let link = presign(&mut t, &alice, "pages", key, "download").await;
            let (status, headers, body) = common::fetch_url("GET", &link, &[], b"").await;
            assert_eq!(
                status,
                200,
                "{db} {key}: {}",
                String::from_utf8_lossy(&body)
            );
            assert_eq!(body, page, "{db} {key}");
            let header = |name: &str| headers.get(name).map(String::as_str);
            assert_eq!(header("content-disposition"), disposition, "{db} {key}");
            assert_eq!(header("content-type"), Some(content_type), "{db} {key}");
            assert_eq!(
                header("x-content-type-options"),
                Some("nosniff"),
                "{db} {key}"
            );
            let sandboxed = header("content-security-policy") == Some("sandbox");
            assert_eq!(sandboxed, key != "e.pdf", "{db} {key}: {headers:?}");
        }
        // The dashboard's preview links are the same links.
        t.sign_in(Some(Alice));
        let preview = t
            .app
            .call("buckets/preview", &[("bucket", "pages"), ("key", "a.html")])
            .await;
        assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
        let link = preview.json()["download_url"].as_str().unwrap().to_string();
        let (_, headers, _) = common::fetch_url("GET", &link, &[], b"").await;
        assert!(
            headers["content-disposition"].starts_with("attachment"),
            "{db}"
        );
    }
}

/// Issue 20.7: links are signed with their maker's own key. A sharee's link dies when the
/// bucket stops being shared with him or when he rotates his keys; his upload links name him
/// as the uploader, and nobody can name another uploader through a link's headers.
#[tokio::test]
async fn links_are_signed_with_their_makers_key() {
    for mut t in Tenants::on_each_database().await {
        let db = t.app.database().to_string();
        let (alice, bob) = (t.alice.clone(), t.bob.clone());
        t.bucket(&alice, "shared", "public").await;
        t.object("shared", "data.txt", Some("alice@test")).await;

        let download = presign(&mut t, &bob, "shared", "data.txt", "download").await;
        let root = t.app.app.state.jobs.storage().access_key.clone();
        assert!(
            !download.contains(&format!("X-Amz-Credential={root}")),
            "{db}: signed with the root key: {download}"
        );
        assert_eq!(
            common::fetch_url("GET", &download, &[], b"").await.0,
            200,
            "{db}"
        );

        // An upload link of bob's names bob, whatever header its holder adds.
        let upload = presign(&mut t, &bob, "shared", "bobs.txt", "upload").await;
        let spoof = [("x-amz-meta-oscar-uploader", "alice@test")];
        let (status, _, body) = common::fetch_url("PUT", &upload, &spoof, b"bob's").await;
        assert_eq!(status, 200, "{db}: {}", String::from_utf8_lossy(&body));
        assert_eq!(
            t.uploader("shared", "bobs.txt").await.as_deref(),
            Some("bob@test"),
            "{db}"
        );
        // An admin's (root-signed) link names nobody when its holder claims to be alice.
        let admin = presign_as_admin(&mut t, "shared", "admins.txt").await;
        let (status, _, _) = common::fetch_url("PUT", &admin, &spoof, b"x").await;
        assert_eq!(status, 200, "{db}");
        assert_eq!(t.uploader("shared", "admins.txt").await, None, "{db}");

        // Alice stops sharing: bob's link stops working.
        let private = json!({"bucket_name": "shared", "visibility": "private"});
        let changed = t
            .app
            .rest_bearer("PUT", "/system/buckets", Some(private), &alice)
            .await;
        assert!(changed.status.is_success(), "{db}: {}", changed.body);
        assert_eq!(
            common::fetch_url("GET", &download, &[], b"").await.0,
            403,
            "{db}"
        );

        // Bob's links to his own bucket die with his key.
        t.bucket(&bob, "bobs", "private").await;
        t.object("bobs", "mine.txt", Some("bob@test")).await;
        let mine = presign(&mut t, &bob, "bobs", "mine.txt", "download").await;
        assert_eq!(
            common::fetch_url("GET", &mine, &[], b"").await.0,
            200,
            "{db}"
        );
        t.sign_in(Some(Bob));
        let rotated = t.app.call("system/rotate_store_credentials", &[]).await;
        assert_eq!(rotated.status, StatusCode::OK, "{db}: {}", rotated.body);
        assert_eq!(
            common::fetch_url("GET", &mine, &[], b"").await.0,
            403,
            "{db}"
        );
    }
}

async fn presign_as_admin(t: &mut Tenants, bucket: &str, key: &str) -> String {
    t.app.forget_cookie();
    let body = json!({"object_key": key, "operation": "upload", "expires_in": 600});
    let made = t
        .app
        .rest(
            "POST",
            &format!("/system/buckets/{bucket}/presign"),
            Some(body),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    made.json()["url"].as_str().unwrap().to_string()
}

impl Tenants {
    async fn uploader(&self, bucket: &str, key: &str) -> Option<String> {
        let head = self
            .app
            .app
            .state
            .s3
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        head.metadata()
            .and_then(|m| m.get("oscar-uploader"))
            .cloned()
    }
}

/// Issue 25: an exposed service with `set_auth` lets in its token and the callers it is
/// visible to, whatever they sign in with; only its owner (and the admin) stop it.
#[tokio::test]
async fn exposed_services_admit_only_those_they_are_shared_with() {
    for mut t in Tenants::on_each_database().await {
        let db = t.app.database().to_string();
        let (alice, bob) = (t.alice.clone(), t.bob.clone());
        for (name, visibility, allowed) in [
            ("ep", "private", json!([])),
            ("er", "restricted", json!(["bob@test"])),
        ] {
            let definition = json!({
                "name": name, "image": "alpine", "visibility": visibility, "allowed_users": allowed,
                "script": "mkdir -p /tmp/www && echo hello > /tmp/www/index.html\nexec httpd -f -p 80 -h /tmp/www\n",
                "expose": {"api_port": 80, "set_auth": true, "rewrite_target": true},
            });
            let made = t
                .app
                .rest_bearer("POST", "/system/services", Some(definition), &alice)
                .await;
            assert_eq!(made.status, StatusCode::CREATED, "{db}: {}", made.body);
        }
        let get = |path: &str, authorization: Option<String>, session: Option<String>| {
            let mut request = Request::get(path);
            if let Some(value) = authorization {
                request = request.header("Authorization", value);
            }
            (request.body(axum::body::Body::empty()).unwrap(), session)
        };
        // Alice's own service answers her once its instance is ready.
        let started = std::time::Instant::now();
        for name in ["ep", "er"] {
            loop {
                t.app.forget_cookie();
                let path = format!("/system/services/{name}/exposed/");
                let answer = t
                    .app
                    .send(get(&path, Some(format!("Bearer {alice}")), None).0)
                    .await;
                if answer.status == StatusCode::OK {
                    break;
                }
                assert!(
                    started.elapsed().as_secs() < 60,
                    "{db} {name}: {} {}",
                    answer.status,
                    answer.body
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
        let cases = [
            ("ep", None, None, StatusCode::UNAUTHORIZED),
            (
                "ep",
                Some(format!("Bearer {bob}")),
                None,
                StatusCode::FORBIDDEN,
            ),
            ("ep", None, t.bob_session.clone(), StatusCode::FORBIDDEN),
            (
                "ep",
                Some("Bearer forged".into()),
                None,
                StatusCode::UNAUTHORIZED,
            ),
            ("ep", None, t.alice_session.clone(), StatusCode::OK),
            ("er", Some(format!("Bearer {bob}")), None, StatusCode::OK),
            ("er", None, t.bob_session.clone(), StatusCode::OK),
        ];
        for (name, authorization, session, want) in cases {
            let what = format!(
                "{db} {name} {authorization:?} session {}",
                session.is_some()
            );
            let (request, session) = get(
                &format!("/system/services/{name}/exposed/"),
                authorization,
                session,
            );
            t.app.use_session(session);
            let answer = t.app.send(request).await;
            assert_eq!(answer.status, want, "{what}: {}", answer.body);
        }
        t.app.forget_cookie();
        // Bob may use `er`, not manage it; `ep` does not exist for him.
        for (name, want) in [("er", StatusCode::FORBIDDEN), ("ep", StatusCode::NOT_FOUND)] {
            let answer = t
                .app
                .rest_bearer("POST", &format!("/system/services/{name}/stop"), None, &bob)
                .await;
            assert_eq!(answer.status, want, "{db} {name}: {}", answer.body);
        }
        let stopped = t
            .app
            .rest_bearer("POST", "/system/services/er/stop", None, &alice)
            .await;
        assert_eq!(stopped.status, StatusCode::OK, "{db}: {}", stopped.body);
        assert_eq!(stopped.json()["reason"], "stopped by alice@test", "{db}");
    }
}
