//! The manager's access log of invocations (`GET /system/logs`, oscar-api.md §3.4): every
//! `POST /job/*` and `/run/*` with its status, latency, caller and client address. Kept in
//! memory (the newest entries) and written to the server log.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::{AppError, AppResult, Timestamp};
use serde::Serialize;

use crate::access::Caller;

/// Entries kept for `GET /system/logs`.
const KEPT: usize = 1000;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// Keeps `entry` and writes it to the server log.
    pub fn push(&self, entry: Entry) {
        tracing::info!(
            method = %entry.method,
            path = %entry.path,
            status = entry.status,
            latency = %entry.latency,
            user = %entry.user,
            "invocation"
        );
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == KEPT {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// Recent invocations, for the admin only.
    pub fn read(&self, caller: &Caller) -> AppResult<Vec<Entry>> {
        if !caller.admin {
            return Err(AppError::Forbidden(
                "only the admin reads the access log".into(),
            ));
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Ok(entries.iter().cloned().collect())
    }
}

impl Entry {
    /// One invocation that ended with `status` after `latency`; `user` names the kind of
    /// credential, never the credential.
    pub fn new(
        method: String,
        path: String,
        client_ip: String,
        user: String,
        status: u16,
        latency: Duration,
    ) -> Self {
        let latency = format!("{latency:?}");
        let timestamp = Timestamp::now().rfc3339();
        Self {
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
        }
    }
}
