//! The platform as one value: every component a use case may need, built once at start by
//! the server's start-up and shared (behind an `Arc`) by every request.

use super::access_log::AccessLog;
use super::auth::{AdminAccount, LoginThrottle};
use super::db::Database;
use super::exposed::Exposed;
use super::jobs::Jobs;
use super::oidc::Oidc;
use super::services::Catalog;
use super::store::Store;
use model::system::PlatformInfo;

#[derive(Debug)]
pub struct App {
    pub db: Database,
    /// Every service, parsed once per change.
    pub services: Catalog,
    /// Reaches the object store (embedded s3s or external MinIO) the same way in every mode.
    pub s3: Store,
    pub admin: AdminAccount,
    /// Failed admin sign-ins per username and client address.
    pub login_throttle: LoginThrottle,
    /// The OIDC provider people sign in with (None: only the local admin).
    pub oidc: Option<Oidc>,
    /// The job queue, its executor and live job notifications.
    pub jobs: Jobs,
    /// The exposed services' instances and synchronous services' warm workers running here.
    pub exposed: std::sync::Arc<Exposed>,
    /// Recent invocations (`GET /system/logs`).
    pub access_log: AccessLog,
    /// Fixed facts about this deployment, shown on the Info page.
    pub info: PlatformInfo,
}

impl App {
    /// The VOs the platform gates on (`OIDC_GROUPS`); none without OIDC.
    pub fn vo_groups(&self) -> &[String] {
        self.oidc.as_ref().map_or(&[], |o| &o.settings().groups)
    }

    /// What changing a federated service and reaching its members takes.
    pub fn federation(&self) -> crate::federation::members::Context<'_> {
        crate::federation::members::Context {
            db: &self.db,
            s3: &self.s3,
            executor: self.jobs.executor().as_ref(),
            storage: self.jobs.storage(),
            peers: self.jobs.peers(),
            vo_groups: self.vo_groups(),
        }
    }
}
