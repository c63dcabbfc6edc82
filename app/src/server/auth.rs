//! Sign-in for the local admin account and the session it leaves behind.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::state::AppState;
use super::users::{self, Identity, LOCAL_ISSUER};
use crate::api::auth::SessionUser;
use crate::{AppError, AppResult};

/// Session key under which the signed-in user is kept.
const USER_KEY: &str = "user";

/// The built-in administrator (`OSCAR_USERNAME` / `OSCAR_PASSWORD`).
#[derive(Clone)]
pub struct AdminAccount {
    pub username: String,
    password: String,
}

impl std::fmt::Debug for AdminAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAccount")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl AdminAccount {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// Checks both fields in time independent of where they differ (digests have equal length).
    pub fn verify(&self, username: &str, password: &str) -> bool {
        let same = |a: &str, b: &str| Sha256::digest(a).ct_eq(&Sha256::digest(b));
        bool::from(same(username, &self.username) & same(password, &self.password))
    }
}

/// Signs the admin in: records the login and starts a fresh session (new id against fixation).
pub async fn login_admin(
    state: &AppState,
    session: &Session,
    username: &str,
    password: &str,
    now: i64,
) -> AppResult<SessionUser> {
    if username.trim().is_empty() {
        return Err(AppError::bad_request("username", "is required"));
    }
    if !state.admin.verify(username, password) {
        tracing::info!(username, "failed sign-in");
        return Err(AppError::Unauthorized(
            "invalid username or password".into(),
        ));
    }
    let who = Identity {
        issuer: LOCAL_ISSUER,
        subject: username,
        display_name: username,
        email: None,
    };
    let user = users::record_login(&state.db, &who, now).await?;
    let current = SessionUser {
        id: user.id,
        name: user.display_name,
        admin: true,
    };
    session
        .cycle_id()
        .await
        .map_err(|e| AppError::internal("session", e))?;
    session
        .insert(USER_KEY, &current)
        .await
        .map_err(|e| AppError::internal("session", e))?;
    tracing::info!(user = %current.name, "signed in");
    Ok(current)
}

pub async fn logout(session: &Session) -> AppResult<()> {
    session
        .flush()
        .await
        .map_err(|e| AppError::internal("session", e))
}

pub async fn current_user(session: &Session) -> AppResult<Option<SessionUser>> {
    session
        .get(USER_KEY)
        .await
        .map_err(|e| AppError::internal("session", e))
}

/// The signed-in user of this session as the actor of domain functions, or 401.
pub async fn signed_in(session: &Session) -> AppResult<super::services::Caller> {
    let user = current_user(session)
        .await?
        .ok_or_else(AppError::unauthorized)?;
    Ok((&user).into())
}

/// Where to go after sign-in: only a local path, so a crafted link cannot send people away.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            path.to_string()
        }
        _ => crate::pages::HOME.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_credentials_must_both_match() {
        let admin = AdminAccount::new("oscar", "s3cret");
        assert!(admin.verify("oscar", "s3cret"));
        assert!(!admin.verify("oscar", "s3cre"));
        assert!(!admin.verify("oscar2", "s3cret"));
        assert!(!admin.verify("", ""));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let admin = AdminAccount::new("oscar", "s3cret");
        assert!(!format!("{admin:?}").contains("s3cret"));
    }

    #[test]
    fn next_must_be_a_local_path() {
        assert_eq!(safe_next(Some("/buckets?x=1")), "/buckets?x=1");
        assert_eq!(safe_next(Some("https://evil.example")), crate::pages::HOME);
        assert_eq!(safe_next(Some("//evil.example")), crate::pages::HOME);
        assert_eq!(safe_next(Some("/\\evil.example")), crate::pages::HOME);
        assert_eq!(safe_next(Some("/a b")), crate::pages::HOME);
        assert_eq!(safe_next(None), crate::pages::HOME);
    }
}
