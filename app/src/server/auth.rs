//! Sign-in (the local admin's password, or an OIDC provider) and the session it leaves behind.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::access::{ADMIN_OWNER, Caller};
use super::oidc::SignedIn;
use super::state::AppState;
use super::users::{self, Identity, LOCAL_ISSUER};
use crate::api::auth::SessionUser;
use crate::{AppError, AppResult};

/// Session key under which the signed-in user is kept.
const USER_KEY: &str = "user";
/// Session key of the raw ID token of an OIDC sign-in (for RP-initiated logout).
const ID_TOKEN_KEY: &str = "id_token";

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

/// Failed sign-ins of the local admin allowed per client address and window.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// Counts failed admin sign-ins (form and HTTP Basic) per client address, so the password
/// cannot be guessed at speed. Kept in memory: a restart forgets, which only helps users.
#[derive(Debug, Default)]
pub struct LoginThrottle(Mutex<HashMap<String, (u32, Instant)>>);

impl LoginThrottle {
    /// 429 while `client` has used up its failures for the current window.
    pub fn check(&self, client: &str) -> AppResult<()> {
        let mut failures = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match failures.get(client) {
            Some((count, since)) if since.elapsed() < FAILURE_WINDOW && *count >= MAX_FAILURES => {
                let wait = FAILURE_WINDOW.saturating_sub(since.elapsed()).as_secs() + 1;
                Err(AppError::TooManyRequests(format!(
                    "too many failed sign-ins from this address; try again in {wait} s"
                )))
            }
            Some((_, since)) if since.elapsed() >= FAILURE_WINDOW => {
                failures.remove(client);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, client: &str) {
        let mut failures = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        failures
            .entry(client.to_string())
            .or_insert((0, Instant::now()))
            .0 += 1;
    }
}

/// Checks the admin's credentials through the throttle: 429 when `client` failed too often,
/// 401 on a wrong password (counted).
pub fn check_admin(
    state: &AppState,
    client: &str,
    username: &str,
    password: &str,
) -> AppResult<()> {
    state.login_throttle.check(client)?;
    if state.admin.verify(username, password) {
        Ok(())
    } else {
        state.login_throttle.failed(client);
        tracing::info!(username, client, "failed admin sign-in");
        Err(AppError::Unauthorized(
            "invalid username or password".into(),
        ))
    }
}

/// Signs the admin in: records the login and starts a fresh session (new id against fixation).
pub async fn login_admin(
    state: &AppState,
    session: &Session,
    client: &str,
    username: &str,
    password: &str,
    now: i64,
) -> AppResult<SessionUser> {
    if username.trim().is_empty() {
        return Err(AppError::bad_request("username", "is required"));
    }
    check_admin(state, client, username, password)?;
    let who = Identity {
        issuer: LOCAL_ISSUER,
        subject: username,
        display_name: username,
        email: None,
        vos: &[],
    };
    let user = users::record_login(&state.db, &who, now).await?;
    let current = SessionUser {
        id: user.id,
        subject: ADMIN_OWNER.into(),
        name: user.display_name,
        admin: true,
        vos: Vec::new(),
    };
    start_session(session, &current, None).await?;
    Ok(current)
}

/// Signs in someone the identity provider vouched for (VO gate already passed).
pub async fn login_oidc(
    state: &AppState,
    session: &Session,
    signed_in: &SignedIn,
    now: i64,
) -> AppResult<SessionUser> {
    let profile = &signed_in.profile;
    let who = Identity {
        issuer: &profile.issuer,
        subject: &profile.subject,
        display_name: &profile.name,
        email: profile.email.as_deref(),
        vos: &profile.vos,
    };
    let user = users::record_login(&state.db, &who, now).await?;
    let current = SessionUser {
        id: user.id,
        subject: profile.subject.clone(),
        name: user.display_name,
        admin: false,
        vos: profile.vos.clone(),
    };
    start_session(session, &current, Some(&signed_in.id_token)).await?;
    Ok(current)
}

/// A fresh session id (against fixation) holding the user and, for OIDC, the ID token that
/// logout hands back to the provider.
async fn start_session(
    session: &Session,
    user: &SessionUser,
    id_token: Option<&str>,
) -> AppResult<()> {
    let failed = |e| AppError::internal("session", e);
    session.cycle_id().await.map_err(failed)?;
    session.insert(USER_KEY, user).await.map_err(failed)?;
    if let Some(token) = id_token {
        session.insert(ID_TOKEN_KEY, token).await.map_err(failed)?;
    }
    tracing::info!(user = %user.name, subject = %user.subject, "signed in");
    Ok(())
}

/// Ends the session; returns the ID token of an OIDC sign-in, for the provider's logout.
pub async fn logout(session: &Session) -> AppResult<Option<String>> {
    let failed = |e| AppError::internal("session", e);
    let id_token: Option<String> = session.get(ID_TOKEN_KEY).await.map_err(failed)?;
    session.flush().await.map_err(failed)?;
    Ok(id_token)
}

pub async fn current_user(session: &Session) -> AppResult<Option<SessionUser>> {
    session
        .get(USER_KEY)
        .await
        // Sessions live in the platform database: failing to read one means it is down.
        .map_err(|e| AppError::unavailable("the database", e))
}

/// The signed-in user of this session as the actor of domain functions, or 401.
pub async fn signed_in(session: &Session) -> AppResult<Caller> {
    let user = current_user(session)
        .await?
        .ok_or_else(AppError::unauthorized)?;
    Ok((&user).into())
}

/// The client's address (the key of the sign-in throttle); "unknown" when the request did
/// not come over TCP (in-process tests).
pub fn client_address(extensions: &http::Extensions) -> String {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".into(), |info| info.0.ip().to_string())
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
    fn the_throttle_refuses_after_too_many_failures_per_client() {
        let throttle = LoginThrottle::default();
        for _ in 0..MAX_FAILURES {
            throttle.check("10.0.0.1").unwrap();
            throttle.failed("10.0.0.1");
        }
        let refused = throttle.check("10.0.0.1").unwrap_err();
        assert_eq!(refused.status(), 429, "{refused}");
        throttle.check("10.0.0.2").unwrap();
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
