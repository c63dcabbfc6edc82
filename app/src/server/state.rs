//! Everything a request handler needs, built once at start by `server::startup::build`.

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use std::sync::Arc;

use super::auth::{AdminAccount, LoginThrottle};
use super::db::Database;
use super::jobs::Jobs;
use super::oidc::Oidc;
use super::store::Store;
use crate::api::system::PlatformInfo;

#[derive(Clone, Debug)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Database,
    /// Reaches the object store (embedded s3s or external MinIO) the same way in every mode.
    pub s3: Store,
    pub admin: AdminAccount,
    /// Failed admin sign-ins per username and client address.
    pub login_throttle: Arc<LoginThrottle>,
    /// The OIDC provider people sign in with (None: only the local admin).
    pub oidc: Option<Oidc>,
    /// The job queue, its executor and live job notifications.
    pub jobs: Jobs,
    /// Recent invocations (`GET /system/logs`).
    pub access_log: crate::rest::AccessLog,
    /// Fixed facts about this deployment, shown on the Info page.
    pub info: PlatformInfo,
}

impl AppState {
    /// The VOs the platform gates on (`OIDC_GROUPS`); none without OIDC.
    pub fn vo_groups(&self) -> &[String] {
        self.oidc.as_ref().map_or(&[], |o| &o.settings().groups)
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
