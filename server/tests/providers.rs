//! Storage providers beyond the platform's store, end to end through jobs: a real WebDAV
//! server (rclone), a second S3 store (another embedded store, a real S3 endpoint), and
//! Onedata, which cannot run here, through request/response pairs recorded from its
//! published documentation (`fixtures/onedata-cdmi.json`).

mod common;

use std::sync::{Arc, Mutex};

use common::TestApp;
use common::jobs::{create, finished, get, log, object, put, service};
use common::webdav::{self, WebDav};
use http::StatusCode;
use serde_json::{Value, json};

/// Writes what it read, upper-cased, into a sub-folder of the outputs.
const TO_SUBFOLDER: &str = "mkdir -p \"$TMP_OUTPUT_DIR/sub\"\ntr a-z A-Z < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/sub/$(basename \"$INPUT_FILE_PATH\")\"\n";

/// A second S3 store on loopback (another embedded store: a real S3 endpoint with its own
/// keys), with a client for it.
async fn external_store(dir: &std::path::Path) -> (embedded_s3::EmbeddedS3, aws_sdk_s3::Client) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let keys = embedded_s3::Keys {
        root_access_key: "external-key".into(),
        root_secret_key: "external-secret".into(),
        ring: None,
    };
    let external = embedded_s3::EmbeddedS3::start(listener, dir, keys, None).unwrap();
    let client = supervisor::storage::client(
        &external.endpoint_url(),
        "",
        "external-key",
        "external-secret",
    );
    (external, client)
}

fn partner(store: &embedded_s3::EmbeddedS3) -> Value {
    json!({"endpoint": store.endpoint_url(), "access_key": "external-key", "secret_key": "external-secret"})
}

/// A service whose input folder `drop/in` is in another S3 store (`minio.partner`), with the
/// platform's polling left to the test.
struct Partner {
    store: embedded_s3::EmbeddedS3,
    client: aws_sdk_s3::Client,
    app: TestApp,
    token: String,
}

impl Partner {
    async fn start(dir: &std::path::Path, name: &str) -> Self {
        let (store, client) = external_store(dir).await;
        client.create_bucket().bucket("drop").send().await.unwrap();
        let mut app = TestApp::with_config(|c| c.jobs.poll_every = None).await;
        let mut definition = service(name, common::jobs::UPPERCASE);
        definition["input"] = json!([{"storage_provider": "minio.partner", "path": "drop/in"}]);
        definition["storage_providers"] = json!({"minio": {"partner": partner(&store)}});
        let token = create(&mut app, definition).await;
        Self {
            store,
            client,
            app,
            token,
        }
    }
}

/// Polls until `service` has `count` finished jobs, as the server's loop would.
async fn poll_until_finished(app: &mut TestApp, service: &str, count: usize) {
    common::jobs::finished_after(app, service, count, |app| {
        let state = app.app.state.clone();
        async move {
            domain::jobs::polling::poll(&state.db, &state.services, &state.jobs)
                .await
                .unwrap();
        }
    })
    .await;
}

fn with_output(name: &str, script: &str, provider: &str, path: &str, providers: Value) -> Value {
    let mut definition = service(name, script);
    definition["output"] = json!([{"storage_provider": provider, "path": path}]);
    definition["storage_providers"] = providers;
    definition
}

#[tokio::test]
async fn outputs_reach_a_webdav_server_in_new_folders_and_the_password_stays_secret() {
    let dav = WebDav::start().await;
    let mut app = TestApp::new().await;
    let definition = with_output(
        "todav",
        TO_SUBFOLDER,
        "webdav.dcache",
        "results/run 1",
        json!({"webdav": {"dcache": dav.provider(webdav::PASSWORD)}}),
    );
    create(&mut app, definition).await;
    let read = app.rest("GET", "/system/services/todav", None).await;
    assert!(
        !read.body.contains(webdav::PASSWORD),
        "the password is never shown: {}",
        read.body
    );

    put(&app, "todav", "in/hello wörld.txt", b"hello").await;
    let jobs = finished(&mut app, "todav", 1).await;
    let (name, job) = jobs.iter().next().unwrap();
    assert_eq!(job["status"], "Succeeded", "{job}");
    assert_eq!(
        dav.read("results/run 1/sub/hello wörld.txt").as_deref(),
        Some(&b"HELLO"[..])
    );
    let text = log(&mut app, "todav", name).await;
    assert!(!text.contains(webdav::PASSWORD), "{text}");
}

#[tokio::test]
async fn a_webdav_server_refusing_the_credentials_fails_the_job_and_says_why() {
    let dav = WebDav::start().await;
    let mut app = TestApp::new().await;
    let definition = with_output(
        "baddav",
        TO_SUBFOLDER,
        "webdav.site",
        "results",
        json!({"webdav": {"site": dav.provider("not-the-password")}}),
    );
    create(&mut app, definition).await;
    put(&app, "baddav", "in/a.txt", b"a").await;
    let jobs = finished(&mut app, "baddav", 1).await;
    let (name, job) = jobs.iter().next().unwrap();
    assert_eq!(job["status"], "Failed", "{job}");
    let text = log(&mut app, "baddav", name).await;
    assert!(
        text.contains("refused the provider's credentials") && text.contains("webdav.site"),
        "{text}"
    );
    assert_eq!(dav.read("results/sub/a.txt"), None);
}

#[tokio::test]
async fn outputs_reach_another_s3_store_with_its_own_keys() {
    let dir = tempfile::tempdir().unwrap();
    // The output's bucket is made when the service is, as upstream does.
    let (external, client) = external_store(dir.path()).await;

    let mut app = TestApp::new().await;
    let definition = with_output(
        "tos3",
        TO_SUBFOLDER,
        "minio.partner",
        "archive/results",
        json!({"minio": {"partner": partner(&external)}}),
    );
    create(&mut app, definition).await;
    put(&app, "tos3", "in/x.txt", b"to the partner").await;
    let jobs = finished(&mut app, "tos3", 1).await;
    let job = jobs.values().next().unwrap();
    assert_eq!(job["status"], "Succeeded", "{job}");
    assert_eq!(
        object(&client, "archive", "results/sub/x.txt")
            .await
            .as_deref(),
        Some(&b"TO THE PARTNER"[..])
    );
    // Nothing went to the platform's own store.
    assert!(
        app.app
            .state
            .s3
            .client
            .head_bucket()
            .bucket("archive")
            .send()
            .await
            .is_err()
    );
    external.shutdown().await;
}

/// Answers each request with the recorded response of the exchange it matches; a request
/// matching none, or differing from it, is answered 501 and noted.
async fn replay(exchanges: Vec<Value>) -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::body::Body;
    let notes = Arc::new(Mutex::new(Vec::new()));
    let seen = notes.clone();
    let handler = move |request: http::Request<Body>| {
        let (exchanges, seen) = (exchanges.clone(), seen.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let path = parts.uri.path().to_string();
            let Some(exchange) = exchanges.iter().find(|e| {
                e["request"]["method"] == parts.method.as_str() && e["request"]["path"] == path
            }) else {
                seen.lock()
                    .unwrap()
                    .push(format!("unrecorded {} {path}", parts.method));
                return http::Response::builder()
                    .status(501)
                    .body(Body::empty())
                    .unwrap();
            };
            let mut differences = Vec::new();
            let (request, response) = (&exchange["request"], &exchange["response"]);
            for (name, value) in request["headers"].as_object().into_iter().flatten() {
                let sent = parts.headers.get(name).and_then(|v| v.to_str().ok());
                if sent != value.as_str() {
                    differences.push(format!("{name}: {sent:?} instead of {value:?}"));
                }
            }
            if let Some(expected) = request["body"].as_str()
                && body != expected.as_bytes()
            {
                differences.push(format!("body {:?}", String::from_utf8_lossy(&body)));
            }
            let line = format!("{} {path}", parts.method);
            if !differences.is_empty() {
                seen.lock()
                    .unwrap()
                    .push(format!("{line} differs: {}", differences.join("; ")));
                return http::Response::builder()
                    .status(501)
                    .body(Body::empty())
                    .unwrap();
            }
            seen.lock().unwrap().push(line);
            let status = response["status"].as_u64().unwrap() as u16;
            let mut answer = http::Response::builder().status(status);
            for (name, value) in response["headers"].as_object().into_iter().flatten() {
                answer = answer.header(name, value.as_str().unwrap());
            }
            let body = match &response["body"] {
                Value::Null => Body::empty(),
                body => Body::from(body.to_string()),
            };
            answer.body(body).unwrap()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(handler);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, notes)
}

#[tokio::test]
async fn outputs_reach_onedata_as_its_documented_cdmi_exchanges() {
    let recorded: Value = serde_json::from_str(include_str!("fixtures/onedata-cdmi.json")).unwrap();
    let (url, seen) = replay(recorded["exchanges"].as_array().unwrap().clone()).await;

    let mut app = TestApp::new().await;
    let definition = with_output(
        "toonedata",
        "printf 'Test content' > \"$TMP_OUTPUT_DIR/file.txt\"\n",
        "onedata.hub",
        "dirtest",
        json!({"onedata": {"hub": {
            "oneprovider_host": url,
            "token": "MDAyMGxvY2F00aW9uIG96LAyL3Rt",
            "space": "MySpace",
        }}}),
    );
    create(&mut app, definition).await;
    put(&app, "toonedata", "in/any", b"x").await;
    let jobs = finished(&mut app, "toonedata", 1).await;
    let (name, job) = jobs.iter().next().unwrap();
    let text = log(&mut app, "toonedata", name).await;
    assert_eq!(job["status"], "Succeeded", "{job}\n{text}");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "PUT /cdmi/MySpace/dirtest/",
            "PUT /cdmi/MySpace/dirtest/file.txt"
        ]
    );
    assert!(!text.contains("MDAyMGxvY2F00aW9uIG96LAyL3Rt"), "{text}");
}

#[tokio::test]
async fn providers_the_platform_cannot_reach_are_refused_when_saved() {
    let mut app = TestApp::new().await;
    let mut definition = with_output(
        "torucio",
        "true",
        "rucio.cern",
        "scope/out",
        json!({"rucio": {"cern": {"host": "https://rucio.example.org", "account": "a"}}}),
    );
    let refused = app
        .rest("POST", "/system/services", Some(definition.clone()))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("output[0].storage_provider"),
        "{}",
        refused.body
    );

    definition["output"] = json!([{"storage_provider": "webdav.d", "path": "out"}]);
    definition["storage_providers"] = json!({"webdav": {"d": {"login": "u", "password": "p"}}});
    let refused = app.rest("POST", "/system/services", Some(definition)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("storage_providers.webdav.d.hostname"),
        "{}",
        refused.body
    );

    // An S3 output whose bucket cannot be made would fail every job: refused now, saying why.
    let mut definition = with_output(
        "nowhere",
        "true",
        "minio.gone",
        "results/out",
        json!({"minio": {"gone": {"endpoint": format!("http://127.0.0.1:{}", common::free_port()), "access_key": "a", "secret_key": "b"}}}),
    );
    definition["name"] = json!("nowhere");
    let refused = app.rest("POST", "/system/services", Some(definition)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused
            .body
            .starts_with("output[0].path: cannot make the bucket \"results\" in minio.gone"),
        "{}",
        refused.body
    );
}

/// A 1 GiB output goes to WebDAV streamed: the supervisor (the real program, as jobs run it)
/// never holds more than a few buffers of it.
#[tokio::test]
async fn a_large_output_is_streamed_to_webdav_with_bounded_memory() {
    const SIZE: u64 = 1 << 30;
    let dav = WebDav::start().await;
    let job = tempfile::tempdir().unwrap();
    let config = job.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let providers = json!({"webdav": {"dav": dav.provider(webdav::PASSWORD)}});
    let function_config = json!({
        "name": "big",
        "output": [{"storage_provider": "webdav.dav", "path": "large"}],
        "storage_providers": providers,
        "log_level": "INFO",
    });
    std::fs::write(
        config.join("function_config.yaml"),
        serde_norway::to_string(&function_config).unwrap(),
    )
    .unwrap();
    std::fs::write(
        config.join("script.sh"),
        format!("head -c {SIZE} /dev/zero > \"$TMP_OUTPUT_DIR/big.bin\"\n"),
    )
    .unwrap();
    let result = job.path().join("result.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("supervise")
        .current_dir(job.path())
        .env("OSCAR_CONFIG_DIR", &config)
        .env("OSCAR_PROVIDERS_DIR", job.path().join("providers"))
        .env("OSCAR_RESULT_FILE", &result)
        .env("TMPDIR", job.path())
        .env("EVENT", "{}")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id().unwrap());
    // VmHWM only grows: the last reading before the program ends is its peak so far.
    let mut peak_kib = 0u64;
    let exited = loop {
        if let Some(kib) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        }) {
            peak_kib = peak_kib.max(kib);
        }
        match tokio::time::timeout(std::time::Duration::from_millis(100), child.wait()).await {
            Ok(status) => break status.unwrap(),
            Err(_) => continue,
        }
    };
    let report = std::fs::read_to_string(&result).unwrap_or_default();
    assert!(exited.success(), "{report}");
    assert!(report.contains(r#""status":"succeeded""#), "{report}");
    let stored = std::fs::metadata(dav.dir.path().join("large/big.bin")).unwrap();
    assert_eq!(stored.len(), SIZE);
    assert!(
        peak_kib < 128 * 1024,
        "the supervisor peaked at {} MiB for a {} MiB output",
        peak_kib / 1024,
        SIZE >> 20
    );
}

/// A service reading from a WebDAV folder: what lands there after the service was made is
/// processed once per version, whatever else is there and however often it is listed.
#[tokio::test]
async fn files_in_a_webdav_input_folder_become_one_job_per_version() {
    let dav = WebDav::start().await;
    dav.write("incoming/raw/before.txt", b"was there first");
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(dav.dir.path().join("incoming/raw/before.txt"))
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    let mut app = TestApp::with_config(|c| c.jobs.poll_every = None).await;
    let mut definition = service("fromdav", common::jobs::UPPERCASE);
    definition["input"] =
        json!([{"storage_provider": "webdav.dcache", "path": "incoming/raw", "suffix": [".txt"]}]);
    definition["storage_providers"] = json!({"webdav": {"dcache": dav.provider(webdav::PASSWORD)}});
    create(&mut app, definition).await;

    dav.write("incoming/raw/a.txt", b"first");
    dav.write("incoming/raw/deeper/b.txt", b"second");
    dav.write("incoming/raw/skipped.bin", b"filtered out");
    let state = &app.app.state;
    let poll = || domain::jobs::polling::poll(&state.db, &state.services, &state.jobs);
    assert_eq!(poll().await.unwrap(), 2);
    assert_eq!(poll().await.unwrap(), 0, "listed again, nothing is new");
    let jobs = finished(&mut app, "fromdav", 2).await;
    assert!(
        jobs.values().all(|j| j["status"] == "Succeeded"),
        "{jobs:?}"
    );
    assert_eq!(
        get(&app, "fromdav", "out/a.txt").await.as_deref(),
        Some(&b"FIRST"[..])
    );
    assert_eq!(
        get(&app, "fromdav", "out/b.txt").await.as_deref(),
        Some(&b"SECOND"[..])
    );
    let (name, _) = jobs.iter().next().unwrap();
    let text = log(&mut app, "fromdav", name).await;
    assert!(
        text.contains("processed raw/"),
        "the key below the first folder: {text}"
    );

    // A new version of a file is a new job.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    dav.write("incoming/raw/a.txt", b"first, again");
    let state = &app.app.state;
    let poll = || domain::jobs::polling::poll(&state.db, &state.services, &state.jobs);
    assert_eq!(poll().await.unwrap(), 1);
    finished(&mut app, "fromdav", 3).await;
    assert_eq!(
        get(&app, "fromdav", "out/a.txt").await.as_deref(),
        Some(&b"FIRST, AGAIN"[..])
    );
}

/// One file crosses every kind of store: the platform's, WebDAV and another S3 store.
#[tokio::test]
async fn a_workflow_crosses_the_platform_store_webdav_and_another_s3_store() {
    let dav = WebDav::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (external, client) = external_store(dir.path()).await;
    client.create_bucket().bucket("final").send().await.unwrap();
    let mut app = TestApp::with_config(|c| c.jobs.poll_every = None).await;
    let providers = json!({
        "webdav": {"dav": dav.provider(webdav::PASSWORD)},
        "minio": {"partner": partner(&external)},
    });

    let mut first = service("stage1", common::jobs::UPPERCASE);
    first["output"] = json!([{"storage_provider": "webdav.dav", "path": "handoff/mid"}]);
    first["storage_providers"] = providers.clone();
    create(&mut app, first).await;
    let mut second = service(
        "stage2",
        "rev < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/$(basename \"$INPUT_FILE_PATH\")\"\n",
    );
    second["input"] = json!([{"storage_provider": "webdav.dav", "path": "handoff/mid"}]);
    second["output"] = json!([{"storage_provider": "minio.partner", "path": "final/out"}]);
    second["storage_providers"] = providers;
    create(&mut app, second).await;

    put(&app, "stage1", "in/sample.txt", b"abc").await;
    finished(&mut app, "stage1", 1).await;
    assert_eq!(
        dav.read("handoff/mid/sample.txt").as_deref(),
        Some(&b"ABC"[..])
    );
    poll_until_finished(&mut app, "stage2", 1).await;
    assert_eq!(
        object(&client, "final", "out/sample.txt").await.as_deref(),
        Some(&b"CBA"[..])
    );
    external.shutdown().await;
}

/// An input folder in another S3 store, which sends this platform no events, is polled.
#[tokio::test]
async fn files_in_another_s3_stores_input_folder_become_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let partner = Partner::start(dir.path(), "froms3").await;
    let (external, mut app) = (partner.store, partner.app);
    partner
        .client
        .put_object()
        .bucket("drop")
        .key("in/x.txt")
        .body(b"polled".to_vec().into())
        .send()
        .await
        .unwrap();
    poll_until_finished(&mut app, "froms3", 1).await;
    let state = &app.app.state;
    assert_eq!(
        domain::jobs::polling::poll(&state.db, &state.services, &state.jobs)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        get(&app, "froms3", "out/x.txt").await.as_deref(),
        Some(&b"POLLED"[..])
    );
    external.shutdown().await;
}

/// A partner MinIO's webhook posts its notifications, as they are, to `/job/<service>` with
/// the service's token: the object is read from the store whose input folder holds it (one
/// job per version, as every event), and `/run` does the same. A folder both stores hold
/// cannot be guessed: the caller is told to name the store.
#[tokio::test]
async fn a_partner_stores_own_notifications_run_jobs_on_its_objects() {
    let dir = tempfile::tempdir().unwrap();
    let Partner {
        store: external,
        client,
        mut app,
        token,
    } = Partner::start(dir.path(), "hooked").await;
    let put = client
        .put_object()
        .bucket("drop")
        .key("in/x.txt")
        .body(b"notified".to_vec().into())
        .send()
        .await
        .unwrap();
    let record = model::function::event::minio_event(
        "Put",
        "drop",
        "in/x.txt",
        put.e_tag(),
        Some(8),
        "2026-01-01T00:00:00Z",
    )
    .to_string();
    let bearer = format!("Bearer {token}");
    for _ in 0..2 {
        let answer = app.invoke("/job/hooked", &bearer, record.clone()).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
    finished(&mut app, "hooked", 1).await;
    assert_eq!(
        get(&app, "hooked", "out/x.txt").await.as_deref(),
        Some(&b"NOTIFIED"[..])
    );
    assert_eq!(
        common::jobs::jobs(&mut app, "hooked").await.len(),
        1,
        "one job per version"
    );
    let answer = app.invoke("/run/hooked", &bearer, record.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    // Two stores holding the folder: which one is not guessed.
    let mut both = app
        .rest("GET", "/system/services/hooked", None)
        .await
        .json();
    both["input"] = json!([{"storage_provider": "minio.partner", "path": "drop/in"},
                            {"storage_provider": "minio.twin", "path": "drop/in"}]);
    both["storage_providers"]["minio"]["twin"] = partner(&external);
    let saved = app.rest("PUT", "/system/services", Some(both)).await;
    assert_eq!(saved.status, StatusCode::NO_CONTENT, "{}", saved.body);
    let answer = app.invoke("/job/hooked", &bearer, record).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(
        answer.body.contains("minio.partner, minio.twin"),
        "{}",
        answer.body
    );
    external.shutdown().await;
}

/// A WebDAV server is the service owner's choice: one answering a listing without end is cut
/// off, not read into the platform's memory.
#[tokio::test]
async fn an_endless_webdav_listing_is_refused_not_read_whole() {
    use futures_util::{StreamExt, stream};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let endless = || async {
        let chunk = axum::body::Bytes::from(vec![b' '; 1 << 20]);
        let body = stream::repeat(chunk).map(Ok::<_, std::io::Error>);
        http::Response::builder()
            .status(207)
            .body(axum::body::Body::from_stream(body))
            .unwrap()
    };
    let router = axum::Router::new().fallback(endless);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let config: model::function::config::FunctionConfig = serde_json::from_value(json!({
        "storage_providers": {"webdav": {"evil": {"hostname": url}}}
    }))
    .unwrap();
    let remote = supervisor::remote::Remote::connect(None, &config, "webdav.evil").unwrap();
    let refused = remote.list("in", "").await.unwrap_err().to_string();
    assert!(refused.contains("larger than 16 MiB"), "{refused}");
}

/// A storage event may not climb out of the input folder with `..`: the WebDAV server would
/// resolve it and hand over a file the caller may not read, with the owner's credentials.
#[tokio::test]
async fn an_event_climbing_out_of_the_input_folder_is_refused() {
    let dav = WebDav::start().await;
    dav.write("private/secret.txt", b"the owner's only");
    let mut app = TestApp::with_config(|c| c.jobs.poll_every = None).await;
    let mut definition = service("climb", common::jobs::UPPERCASE);
    definition["input"] = json!([{"storage_provider": "webdav.dav", "path": "shared/in"}]);
    definition["storage_providers"] = json!({"webdav": {"dav": dav.provider(webdav::PASSWORD)}});
    let token = create(&mut app, definition).await;
    for key in ["in/../../private/secret.txt", "in/./../x"] {
        let record = model::function::event::minio_event(
            "Put",
            "shared",
            key,
            None,
            None,
            "2026-01-01T00:00:00Z",
        );
        let event = json!({"storage_provider": "webdav.dav", "event": record}).to_string();
        for path in ["/job/climb", "/run/climb"] {
            let answer = app
                .invoke(path, &format!("Bearer {token}"), event.clone())
                .await;
            assert_eq!(
                answer.status,
                StatusCode::BAD_REQUEST,
                "{path} {key}: {}",
                answer.body
            );
            assert!(answer.body.contains("'..' segment"), "{}", answer.body);
        }
    }
}

/// Jobs and the versions they ran for are forgotten after the retention period: a file older
/// than that may have had its job already, so polling leaves it alone rather than run it again.
#[tokio::test]
async fn files_older_than_the_platform_remembers_are_not_run_again() {
    let dav = WebDav::start().await;
    let mut app = TestApp::with_config(|c| {
        c.jobs.poll_every = None;
        c.jobs.retention = std::time::Duration::from_secs(3600);
    })
    .await;
    let mut definition = service("longago", common::jobs::UPPERCASE);
    definition["input"] = json!([{"storage_provider": "webdav.dav", "path": "box/in"}]);
    definition["storage_providers"] = json!({"webdav": {"dav": dav.provider(webdav::PASSWORD)}});
    create(&mut app, definition).await;
    let state = &app.app.state;
    // The service has been there for a day.
    let day_ago = model::Timestamp::from_secs(model::Timestamp::now().secs() - 86_400);
    sqlx::query("UPDATE services SET created_at = $1")
        .bind(day_ago)
        .execute(state.db.pool())
        .await
        .unwrap();
    for (name, minutes_ago) in [("forgotten.txt", 58), ("recent.txt", 10)] {
        dav.write(&format!("box/in/{name}"), name.as_bytes());
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(minutes_ago * 60);
        std::fs::File::options()
            .write(true)
            .open(dav.dir.path().join(format!("box/in/{name}")))
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    let made = domain::jobs::polling::poll(&state.db, &state.services, &state.jobs)
        .await
        .unwrap();
    assert_eq!(made, 1, "only the file the platform would still remember");
    finished(&mut app, "longago", 1).await;
    assert!(get(&app, "longago", "out/recent.txt").await.is_some());
    assert!(get(&app, "longago", "out/forgotten.txt").await.is_none());
}

/// A redirect would carry the provider's credentials wherever the server points: none is
/// followed.
#[tokio::test]
async fn a_webdav_redirect_is_not_followed_with_the_credentials() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let away = || async {
        http::Response::builder()
            .status(307)
            .header("location", "http://collector.invalid/steal")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let router = axum::Router::new().fallback(away);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let config: model::function::config::FunctionConfig = serde_json::from_value(json!({
        "storage_providers": {"webdav": {"moved": {"hostname": url, "login": "u", "password": "p"}}}
    }))
    .unwrap();
    let remote = supervisor::remote::Remote::connect(None, &config, "webdav.moved").unwrap();
    let refused = remote.list("in", "").await.unwrap_err().to_string();
    assert!(refused.contains("307"), "{refused}");
}

/// What the service page reads of how listing the service's inputs went.
async fn polls_of(app: &mut TestApp, service: &str) -> Value {
    let answer = app.call("services/polls", &[("name", service)]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.json()
}

/// Issue 26: the service page says how polling last listed each input in another store: the
/// files it held, or since when and why listing fails (here its bucket is gone).
#[tokio::test]
async fn the_service_page_says_how_listing_its_inputs_went() {
    let dir = tempfile::tempdir().unwrap();
    let (external, client) = external_store(dir.path()).await;
    client
        .create_bucket()
        .bucket("watched")
        .send()
        .await
        .unwrap();
    let mut app = TestApp::with_config(|c| c.jobs.poll_every = None).await;
    let mut definition = service("watcher", common::jobs::UPPERCASE);
    definition["input"] = json!([{"storage_provider": "minio.partner", "path": "watched/in"}]);
    definition["storage_providers"] = json!({"minio": {"partner": partner(&external)}});
    create(&mut app, definition).await;
    app.login().await;
    let first = polls_of(&mut app, "watcher").await;
    assert_eq!(
        first["every_secs"],
        Value::Null,
        "polling is off here: {first}"
    );
    assert_eq!(first["inputs"][0]["input"], "minio.partner:watched/in");
    assert_eq!(first["inputs"][0]["polled_at"], Value::Null);

    for key in ["in/a.txt", "in/b.txt"] {
        client
            .put_object()
            .bucket("watched")
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let state = app.app.state.clone();
    let poll = || domain::jobs::polling::poll(&state.db, &state.services, &state.jobs);
    poll().await.unwrap();
    let listed = polls_of(&mut app, "watcher").await;
    let input = &listed["inputs"][0];
    assert_eq!(input["files"], 2, "{listed}");
    assert!(input["polled_at"].is_number(), "{listed}");
    assert_eq!(input["error"], Value::Null);

    // The bucket goes: listing fails, and says so from the first failure on.
    for key in ["in/a.txt", "in/b.txt"] {
        client
            .delete_object()
            .bucket("watched")
            .key(key)
            .send()
            .await
            .unwrap();
    }
    client
        .delete_bucket()
        .bucket("watched")
        .send()
        .await
        .unwrap();
    poll().await.unwrap();
    let failing = polls_of(&mut app, "watcher").await;
    let since = failing["inputs"][0]["failing_since"].clone();
    assert!(since.is_number(), "{failing}");
    assert!(
        failing["inputs"][0]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{failing}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    poll().await.unwrap();
    let again = polls_of(&mut app, "watcher").await;
    assert_eq!(again["inputs"][0]["failing_since"], since, "{again}");
    assert!(again["inputs"][0]["polled_at"].as_i64() > since.as_i64());

    // Back: the failure is forgotten.
    client
        .create_bucket()
        .bucket("watched")
        .send()
        .await
        .unwrap();
    poll().await.unwrap();
    let back = polls_of(&mut app, "watcher").await;
    assert_eq!(back["inputs"][0]["error"], Value::Null, "{back}");
    assert_eq!(back["inputs"][0]["failing_since"], Value::Null);
    assert_eq!(back["inputs"][0]["files"], 0);
    external.shutdown().await;
}
