//! Sign-in (the local admin's password, or an OIDC provider) and the session it leaves behind.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_sessions_core::Session;

use super::access::{ADMIN_OWNER, Caller};
use super::oidc::SignedIn;
use super::users::{self, Identity, LOCAL_ISSUER};
use crate::App;
use model::auth::SessionUser;
use model::{AppError, AppResult, Timestamp};

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

/// Failed sign-ins of one username from one client address before each further attempt waits.
const FREE_FAILURES: u32 = 5;
/// The wait doubles with every failure past the free ones, up to this.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(900);

/// Slows down guessing the admin's password (form and HTTP Basic): failures are counted per
/// (username, client address), so a client that never failed is never refused, whoever
/// else keeps failing; behind a proxy the client address comes from `X-Forwarded-For`, when
/// the proxy is trusted (`OSCAR_TRUSTED_PROXIES`). Kept in memory: a restart forgets, which
/// only helps users.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    trusted_proxies: Vec<ipnet::IpNet>,
    failures: Mutex<HashMap<(String, String), (u32, Instant)>>,
}

impl LoginThrottle {
    pub fn new(trusted_proxies: Vec<ipnet::IpNet>) -> Self {
        Self {
            trusted_proxies,
            failures: Mutex::default(),
        }
    }

    /// The client's address: the TCP peer or, when the peer is a trusted proxy, the nearest
    /// address in `X-Forwarded-For` that is not one (proxies append to it, so anything to its
    /// left may be forged). "unknown" when the request did not come over TCP (in-process
    /// tests).
    pub fn client_address(
        &self,
        peer: Option<std::net::IpAddr>,
        headers: &http::HeaderMap,
    ) -> String {
        let Some(peer) = peer else {
            return "unknown".into();
        };
        let trusted = |ip: &std::net::IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer.to_string();
        }
        let forwarded = headers.get_all("x-forwarded-for").iter();
        let hops: Vec<&str> = forwarded
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            match hop.parse::<std::net::IpAddr>() {
                Ok(ip) if trusted(&ip) => continue,
                Ok(ip) => return ip.to_string(),
                // Not written by a proxy of ours: the proxy is the last address we know.
                Err(_) => break,
            }
        }
        peer.to_string()
    }

    /// 429 while `username` from `client` must wait after its last failure.
    pub fn check(&self, username: &str, client: &str) -> AppResult<()> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let key = (username.to_string(), client.to_string());
        let Some(&(count, last)) = failures.get(&key) else {
            return Ok(());
        };
        if last.elapsed() >= FORGET_AFTER {
            failures.remove(&key);
            return Ok(());
        }
        let wait = match count.checked_sub(FREE_FAILURES + 1) {
            None => return Ok(()),
            Some(past) => Duration::from_secs(1u64 << past.min(16)).min(MAX_WAIT),
        };
        match wait.checked_sub(last.elapsed()) {
            Some(left) if !left.is_zero() => Err(AppError::TooManyRequests(format!(
                "too many failed sign-ins as {username:?} from this address; try again in {} s",
                left.as_secs() + 1
            ))),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, username: &str, client: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, (_, last)| last.elapsed() < FORGET_AFTER);
        }
        let entry = failures
            .entry((username.to_string(), client.to_string()))
            .or_insert((0, Instant::now()));
        *entry = (entry.0 + 1, Instant::now());
    }

    /// A correct password ends the backoff of that username and address.
    pub fn succeeded(&self, username: &str, client: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&(username.to_string(), client.to_string()));
    }
}

/// Checks the admin's credentials through the throttle: 429 while `username` from `client`
/// must wait, 401 on a wrong password (counted).
pub fn check_admin(app: &App, client: &str, username: &str, password: &str) -> AppResult<()> {
    app.login_throttle.check(username, client)?;
    if app.admin.verify(username, password) {
        app.login_throttle.succeeded(username, client);
        Ok(())
    } else {
        app.login_throttle.failed(username, client);
        tracing::info!(username, client, "failed admin sign-in");
        Err(AppError::Unauthorized(
            "invalid username or password".into(),
        ))
    }
}

/// Signs the admin in: records the login and starts a fresh session (new id against fixation).
pub async fn login_admin(
    app: &App,
    session: &Session,
    client: &str,
    username: &str,
    password: &str,
    now: Timestamp,
) -> AppResult<SessionUser> {
    if username.trim().is_empty() {
        return Err(AppError::bad_request("username", "is required"));
    }
    check_admin(app, client, username, password)?;
    let who = Identity {
        issuer: LOCAL_ISSUER,
        subject: username,
        display_name: username,
        email: None,
        vos: &[],
    };
    let user = users::record_login(&app.db, &who, now).await?;
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
    app: &App,
    session: &Session,
    signed_in: &SignedIn,
    now: Timestamp,
) -> AppResult<SessionUser> {
    let profile = &signed_in.profile;
    let who = Identity {
        issuer: &profile.issuer,
        subject: &profile.subject,
        display_name: &profile.name,
        email: profile.email.as_deref(),
        vos: &profile.vos,
    };
    let user = users::record_login(&app.db, &who, now).await?;
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
        _ => model::routes::HOME.to_string(),
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
    fn the_throttle_backs_off_per_username_and_client() {
        let throttle = LoginThrottle::default();
        for _ in 0..FREE_FAILURES {
            throttle.check("oscar", "10.0.0.1").unwrap();
            throttle.failed("oscar", "10.0.0.1");
        }
        throttle.check("oscar", "10.0.0.1").unwrap();
        throttle.failed("oscar", "10.0.0.1");
        let refused = throttle.check("oscar", "10.0.0.1").unwrap_err();
        assert_eq!(refused.status(), 429, "{refused}");
        // Another address, or another username from that address, has not failed.
        throttle.check("oscar", "10.0.0.2").unwrap();
        throttle.check("alice", "10.0.0.1").unwrap();
        // After the wait (1 s after the first failure past the free ones), one more try.
        let mut failures = throttle.failures.lock().unwrap();
        let key = ("oscar".to_string(), "10.0.0.1".to_string());
        failures.get_mut(&key).unwrap().1 -= Duration::from_secs(2);
        drop(failures);
        throttle.check("oscar", "10.0.0.1").unwrap();
        throttle.succeeded("oscar", "10.0.0.1");
        assert!(throttle.failures.lock().unwrap().is_empty());
    }

    #[test]
    fn the_client_address_comes_from_trusted_proxies_only() {
        let throttle = LoginThrottle::new(vec!["10.1.0.0/16".parse().unwrap()]);
        let from = |peer: &str, forwarded: &[&str]| {
            let mut headers = http::HeaderMap::new();
            for value in forwarded {
                headers.append("x-forwarded-for", value.parse().unwrap());
            }
            throttle.client_address(Some(peer.parse().unwrap()), &headers)
        };
        // A client that is no proxy of ours cannot choose its address.
        assert_eq!(from("203.0.113.9", &["198.51.100.1"]), "203.0.113.9");
        // Through our proxy: the hop it added, not what the client wrote before it.
        assert_eq!(from("10.1.0.5", &["6.6.6.6, 198.51.100.1"]), "198.51.100.1");
        assert_eq!(
            from("10.1.0.5", &["198.51.100.1", "10.1.0.7"]),
            "198.51.100.1"
        );
        assert_eq!(from("10.1.0.5", &[]), "10.1.0.5");
        assert_eq!(from("10.1.0.5", &["junk"]), "10.1.0.5");
        assert_eq!(
            throttle.client_address(None, &http::HeaderMap::new()),
            "unknown"
        );
    }

    #[test]
    fn debug_output_hides_the_password() {
        let admin = AdminAccount::new("oscar", "s3cret");
        assert!(!format!("{admin:?}").contains("s3cret"));
    }

    #[test]
    fn next_must_be_a_local_path() {
        assert_eq!(safe_next(Some("/buckets?x=1")), "/buckets?x=1");
        assert_eq!(safe_next(Some("https://evil.example")), model::routes::HOME);
        assert_eq!(safe_next(Some("//evil.example")), model::routes::HOME);
        assert_eq!(safe_next(Some("/\\evil.example")), model::routes::HOME);
        assert_eq!(safe_next(Some("/a b")), model::routes::HOME);
        assert_eq!(safe_next(None), model::routes::HOME);
    }
}
