//! The server binary: fails fast on bad configuration, naming the variable; stops cleanly.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn server(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OSCAR_DATA_DIR", data_dir)
        .env("OSCAR_PASSWORD", "test-password")
        .env("OSCAR_LISTEN", "127.0.0.1:0")
        .env("OSCAR_S3_LISTEN", "127.0.0.1:0");
    cmd
}

/// Runs the server with `env` set and checks it exits with `code`, saying `message`.
fn fails_with(env: &[(&str, &str)], code: i32, message: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out: Output = server(dir.path())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the server binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(message), "{stderr}");
    stderr
}

#[test]
fn a_malformed_s3_listen_address_stops_the_server_with_the_variable_name() {
    fails_with(
        &[("OSCAR_S3_LISTEN", "not-an-address")],
        2,
        "OSCAR_S3_LISTEN: \"not-an-address\" is not a socket address",
    );
}

#[test]
fn a_busy_s3_port_stops_the_server_with_the_variable_name() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    fails_with(
        &[("OSCAR_S3_LISTEN", &addr)],
        1,
        &format!("OSCAR_S3_LISTEN: cannot listen on {addr}"),
    );
}

#[test]
fn an_unreachable_database_stops_the_server_without_leaking_its_password() {
    // Nothing listens on port 1.
    let stderr = fails_with(
        &[("DATABASE_URL", "postgres://oscar:hunter2@127.0.0.1:1/oscar")],
        1,
        "DATABASE_URL: cannot connect to postgres://oscar:***@127.0.0.1:1/oscar",
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn an_unsupported_database_url_is_refused() {
    fails_with(
        &[("DATABASE_URL", "mysql://h/db")],
        2,
        "DATABASE_URL: must start with postgres://",
    );
}

#[test]
fn serves_health_logs_json_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let child = server(dir.path())
        .env("OSCAR_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("OSCAR_PASSWORD")
        .env("OSCAR_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        if let Some(body) = http_get(port, "/health") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not answer /health in 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        body.starts_with("HTTP/1.1 200") && body.ends_with("Ok"),
        "{body}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // With no OSCAR_PASSWORD, a password is generated once, shown, and kept in the data dir.
    let kept = std::fs::read_to_string(dir.path().join("secrets/admin-password")).unwrap();
    assert!(stdout.contains(&format!("'oscar': {kept}")), "{stdout}");

    // Every log line is one JSON object; the request to /health was traced.
    let logs: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(
        logs.iter().any(|l| l["message"] == "dashboard listening"),
        "{stdout}"
    );
    assert!(
        logs.iter()
            .any(|l| l["message"] == "finished processing request" && l["status"] == 200),
        "{stdout}"
    );
    assert!(
        logs.iter()
            .any(|l| l["message"] == "requests finished; stopping"),
        "{stdout}"
    );
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}
