//! The server binary killed (SIGKILL) with 50 jobs queued or running: after a restart on the
//! same data directory, every input ends with exactly one succeeded job.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use server::config::{S3Credentials, Secret};

const FILES: usize = 50;
const ACCESS_KEY: &str = "crash-access";
const SECRET_KEY: &str = "crash-secret-key";

struct Ports {
    http: u16,
    s3: u16,
}

fn start(data_dir: &std::path::Path, ports: &Ports) -> Child {
    Command::new(env!("CARGO_BIN_EXE_server"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OSCAR_DATA_DIR", data_dir)
        .env("OSCAR_PASSWORD", "test-password")
        .env("OSCAR_LISTEN", format!("127.0.0.1:{}", ports.http))
        .env("OSCAR_S3_LISTEN", format!("127.0.0.1:{}", ports.s3))
        .env("OSCAR_S3_ACCESS_KEY", ACCESS_KEY)
        .env("OSCAR_S3_SECRET_KEY", SECRET_KEY)
        // A short lease so the restarted server takes the killed one's jobs over quickly.
        .env("OSCAR_JOB_LEASE", "2")
        .env("OSCAR_MAX_CONCURRENT_JOBS", "4")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts")
}

fn request(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let auth = base64::engine::general_purpose::STANDARD.encode("oscar:test-password");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

fn wait_until_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while request(port, "GET", "/health", "").is_none() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `status` of every job of the service; chunked bodies are avoided by asking for JSON that
/// axum sends with a Content-Length.
fn statuses(port: u16) -> Vec<String> {
    let Some((200, body)) = request(port, "GET", "/system/logs/crash", "") else {
        return Vec::new();
    };
    let page: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    page["jobs"]
        .as_object()
        .map(|jobs| {
            jobs.values()
                .map(|j| j["status"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_killed_server_loses_no_job_and_runs_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports {
        http: common::free_port(),
        s3: common::free_port(),
    };
    let mut first = start(dir.path(), &ports);
    wait_until_up(ports.http);
    let service = serde_json::json!({
        "name": "crash",
        "image": "alpine",
        "script": "sleep 0.3\ncat \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/$(basename \"$INPUT_FILE_PATH\")\"\n",
        "input": [{"storage_provider": "minio.default", "path": "crash/in"}],
        "output": [{"storage_provider": "minio.default", "path": "crash/out"}],
    });
    let created = request(ports.http, "POST", "/system/services", &service.to_string());
    assert_eq!(created.map(|r| r.0), Some(201));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = server::startup::s3_client(
        &format!("http://127.0.0.1:{}", ports.s3),
        "us-east-1",
        &S3Credentials {
            access_key: ACCESS_KEY.into(),
            secret_key: Secret(SECRET_KEY.into()),
        },
    );
    runtime.block_on(async {
        for i in 0..FILES {
            s3.put_object()
                .bucket("crash")
                .key(format!("in/{i}.txt"))
                .body(ByteStream::from(format!("file {i}").into_bytes()))
                .send()
                .await
                .expect("the upload is acknowledged");
        }
    });
    // Uploads acknowledged means jobs stored; some are running now. Kill without warning.
    first.kill().unwrap();
    first.wait().unwrap();

    let mut second = start(dir.path(), &ports);
    wait_until_up(ports.http);
    let deadline = Instant::now() + Duration::from_secs(180);
    let finished = loop {
        let all = statuses(ports.http);
        if all.len() >= FILES && all.iter().all(|s| s == "Succeeded" || s == "Failed") {
            break all;
        }
        assert!(Instant::now() < deadline, "jobs did not finish: {all:?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(finished.len(), FILES, "exactly one job per input");
    assert!(finished.iter().all(|s| s == "Succeeded"), "{finished:?}");
    runtime.block_on(async {
        for i in 0..FILES {
            let output = s3
                .get_object()
                .bucket("crash")
                .key(format!("out/{i}.txt"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("output {i} is missing: {e}"));
            let body = output.body.collect().await.unwrap().to_vec();
            assert_eq!(body, format!("file {i}").into_bytes());
        }
    });
    second.kill().unwrap();
    second.wait().unwrap();
}
