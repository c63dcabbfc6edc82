//! The manager's access log of invocations (`GET /system/logs`, oscar-api.md §3.4): every
//! `POST /job/*` and `/run/*` with its status, latency, caller and client address. Kept in
//! memory (the newest entries) and written to the server log.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use super::Principal;
use crate::server::jobs::{now_ms, rfc3339};
use crate::server::state::AppState;

/// Entries kept for `GET /system/logs`.
const KEPT: usize = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    timestamp: String,
    status: u16,
    latency: String,
    client_ip: String,
    method: String,
    path: String,
    user: String,
    raw: String,
}

#[derive(Debug, Clone, Default)]
pub struct AccessLog {
    entries: Arc<Mutex<VecDeque<Entry>>>,
}

impl AccessLog {
    fn push(&self, entry: Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == KEPT {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    fn all(&self) -> Vec<Entry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().cloned().collect()
    }
}

/// Middleware on the invocation routes.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let headers = request.headers();
    let client_ip = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .unwrap_or_default()
        .trim()
        .to_string();
    // Who, without ever logging a credential.
    let user = match headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
    {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("basic") => "basic-auth".to_string(),
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("bearer") => "service-token".to_string(),
        _ => String::new(),
    };
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let latency = format!("{:?}", started.elapsed());
    let timestamp = rfc3339(now_ms());
    tracing::info!(%method, %path, status, %latency, %user, "invocation");
    state.access_log.push(Entry {
        raw: format!(
            "[OSCAR] {timestamp} | {status} | {latency} | {client_ip} | {method} {path} | {user}"
        ),
        timestamp,
        status,
        latency,
        client_ip,
        method,
        path,
        user,
    });
    response
}

#[derive(Serialize)]
pub struct Logs {
    logs: Vec<Entry>,
}

/// `GET /system/logs`: the admin's view of recent invocations.
pub async fn list(
    State(state): State<AppState>,
    Principal(caller): Principal,
) -> crate::AppResult<Json<Logs>> {
    if !caller.admin {
        return Err(crate::AppError::Forbidden(
            "only the admin reads the access log".into(),
        ));
    }
    Ok(Json(Logs {
        logs: state.access_log.all(),
    }))
}
