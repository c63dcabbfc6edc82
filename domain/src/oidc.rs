//! Sign-in with an OpenID Connect provider (EGI Check-In by default) and the bearer tokens its
//! users send to the REST API. Discovery is lazy and retried, so a provider that was down at
//! start does not lock people out until a restart. Tokens never leave the server.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreIdToken, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, JsonWebKey, LogoutRequest, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, RefreshToken, Scope, SubjectIdentifier, TokenResponse,
    UserInfoClaims, UserInfoError, reqwest,
};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{Mutex, RwLock};
use tower_sessions_core::Session;

use super::entitlements;
use model::{AppError, AppResult, Timestamp};

/// How long a verified bearer token is trusted without asking the provider again.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(60);
/// Tokens remembered at most; the cache is pruned beyond this.
const TOKEN_CACHE_SIZE: usize = 10_000;
/// An unknown signing key triggers a fresh discovery at most this often (key rotation).
const REDISCOVER_AFTER: Duration = Duration::from_secs(60);
/// A sign-in must come back from the provider within this time.
const LOGIN_WINDOW: Duration = Duration::from_secs(600);
/// Clock skew tolerated on token expiry and not-before, in seconds (as JWT claims count).
const LEEWAY: i64 = 30;
/// Session key of a sign-in in progress (state, nonce, PKCE verifier, where to go after).
const PENDING_KEY: &str = "oidc_pending";

/// The provider and this platform's registration with it (`OIDC_*`).
#[derive(Clone, PartialEq, Eq)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_url: String,
    pub scopes: Vec<String>,
    /// VOs of which users must be members of at least one (none: everyone the provider knows).
    pub groups: Vec<String>,
    /// Required in the `aud` of JWT bearer tokens when set.
    pub audience: Option<String>,
    /// Shown on the sign-in button.
    pub display_name: String,
    /// The client the refresh tokens of federation members' `clusters` were issued to
    /// (`OIDC_REFRESH_CLIENT_ID`; EGI's token portal, a public client, by default). When it is
    /// the platform's own client its secret goes with it.
    pub refresh_client_id: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .field("groups", &self.groups)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Who a provider says someone is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub issuer: String,
    pub subject: String,
    pub name: String,
    pub email: Option<String>,
    /// VOs from the AARC-G002 entitlements (role=member).
    pub vos: Vec<String>,
}

/// A finished sign-in.
pub struct SignedIn {
    pub profile: Profile,
    /// Kept in the session for RP-initiated logout.
    pub id_token: String,
    pub next: String,
}

#[derive(Serialize, Deserialize)]
struct PendingLogin {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    started: Timestamp,
}

/// Claims EGI Check-In releases from userinfo beyond the standard ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EgiClaims {
    #[serde(default, deserialize_with = "one_or_many")]
    eduperson_entitlement: Vec<String>,
    /// Upstream OSCAR also reads this name.
    #[serde(default, deserialize_with = "one_or_many")]
    entitlements: Vec<String>,
}

impl AdditionalClaims for EgiClaims {}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct Discovered {
    metadata: ProviderMetadataWithLogout,
    at: Instant,
}

struct Inner {
    settings: OidcSettings,
    http: reqwest::Client,
    provider: RwLock<Option<Arc<Discovered>>>,
    tokens: Mutex<HashMap<[u8; 32], (Profile, Instant)>>,
}

/// The configured provider; cheap to clone.
#[derive(Clone)]
pub struct Oidc(Arc<Inner>);

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.0.settings.issuer)
            .finish_non_exhaustive()
    }
}

/// What a refresh token was exchanged for.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub access_token: String,
    /// How long the access token lasts.
    pub lasts: Duration,
    /// The refresh token to use from now on, when the provider rotates them (the one given may
    /// no longer work).
    pub refresh_token: Option<String>,
}

impl Oidc {
    pub fn new(settings: OidcSettings) -> AppResult<Self> {
        let http = reqwest::Client::builder()
            // The library's advice: following redirects would allow SSRF.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| AppError::internal("OIDC HTTP client", e))?;
        Ok(Self(Arc::new(Inner {
            settings,
            http,
            provider: RwLock::new(None),
            tokens: Mutex::new(HashMap::new()),
        })))
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.0.settings
    }

    /// Discovers the provider now, retrying with backoff until it answers or `stopped` fires;
    /// requests meanwhile try on their own.
    pub async fn warm_up(&self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        let mut wait = Duration::from_secs(1);
        while self.provider().await.is_err() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => return,
            }
            wait = (wait * 2).min(Duration::from_secs(60));
        }
    }

    async fn provider(&self) -> AppResult<Arc<Discovered>> {
        if let Some(found) = self.0.provider.read().await.clone() {
            return Ok(found);
        }
        self.discover(None).await
    }

    /// Fetches the metadata and keys, unless another request did since `stale` was current.
    async fn discover(&self, stale: Option<&Arc<Discovered>>) -> AppResult<Arc<Discovered>> {
        let mut slot = self.0.provider.write().await;
        if let Some(current) = slot.as_ref()
            && stale.is_none_or(|old| !Arc::ptr_eq(old, current))
        {
            return Ok(current.clone());
        }
        let issuer = &self.0.settings.issuer;
        let url =
            IssuerUrl::new(issuer.clone()).map_err(|e| AppError::internal("OIDC_ISSUER", e))?;
        let metadata = ProviderMetadataWithLogout::discover_async(url, &self.0.http)
            .await
            .map_err(|e| {
                tracing::warn!(issuer, error = %error_chain(&e), "identity provider discovery failed");
                // Discovery fetches the provider's keys (JWKS) too.
                crate::metrics::oidc_failure("discovery");
                AppError::Unavailable(format!(
                    "the identity provider {issuer} cannot be reached right now; try again in a moment"
                ))
            })?;
        let found = Arc::new(Discovered {
            metadata,
            at: Instant::now(),
        });
        *slot = Some(found.clone());
        tracing::info!(issuer, "identity provider discovered");
        Ok(found)
    }

    /// An access token for `refresh_token` (of [`OidcSettings::refresh_client_id`]): what the
    /// platform reaches a federation member with on its owner's behalf.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Refreshed, String> {
        let provider = self.provider().await.map_err(|e| e.to_string())?;
        let s = &self.0.settings;
        let secret = match s.refresh_client_id == s.client_id {
            true => s.client_secret.clone().map(ClientSecret::new),
            false => None,
        };
        let client = CoreClient::from_provider_metadata(
            provider.metadata.clone(),
            ClientId::new(s.refresh_client_id.clone()),
            secret,
        );
        let token = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
            .map_err(|e| format!("the identity provider has no token endpoint: {e}"))?
            .request_async(&self.0.http)
            .await
            .map_err(|e| {
                crate::metrics::oidc_failure("refresh");
                format!(
                    "the identity provider did not accept the refresh token: {}",
                    error_chain(&e)
                )
            })?;
        Ok(Refreshed {
            access_token: token.access_token().secret().clone(),
            lasts: token.expires_in().unwrap_or(Duration::from_secs(300)),
            refresh_token: token
                .refresh_token()
                .map(|t| t.secret().clone())
                .filter(|t| t != refresh_token),
        })
    }

    fn client(&self, provider: &Discovered) -> AppResult<Rp> {
        let s = &self.0.settings;
        let redirect = RedirectUrl::new(s.redirect_url.clone())
            .map_err(|e| AppError::internal("OIDC_REDIRECT_URL", e))?;
        Ok(CoreClient::from_provider_metadata(
            provider.metadata.clone(),
            ClientId::new(s.client_id.clone()),
            s.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in: remembers state, nonce and PKCE verifier in the session and returns
    /// the provider's authorization URL to send the browser to.
    pub async fn begin_login(
        &self,
        session: &Session,
        next: String,
        login_hint: Option<&str>,
        now: Timestamp,
    ) -> AppResult<String> {
        let provider = self.provider().await?;
        let client = self.client(&provider)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.0.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if let Some(hint) = login_hint.filter(|h| !h.is_empty()) {
            request = request.add_extra_param("login_hint", hint.to_string());
        }
        let (url, state, nonce) = request.url();
        let pending = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next,
            started: now,
        };
        session
            .insert(PENDING_KEY, pending)
            .await
            .map_err(|e| AppError::internal("session", e))?;
        Ok(url.to_string())
    }

    /// Completes a sign-in from the provider's redirect: checks state, exchanges the code with
    /// the PKCE verifier, verifies the ID token and its nonce, reads userinfo for that subject.
    pub async fn finish_login(
        &self,
        session: &Session,
        code: &str,
        state: &str,
        now: Timestamp,
    ) -> AppResult<SignedIn> {
        let pending: PendingLogin = session
            .remove(PENDING_KEY)
            .await
            .map_err(|e| AppError::internal("session", e))?
            .ok_or_else(|| {
                AppError::bad_request(
                    "state",
                    "no sign-in was started in this browser (or it was already used); sign in again",
                )
            })?;
        if now.since(pending.started) > LOGIN_WINDOW {
            return Err(AppError::bad_request(
                "state",
                "the sign-in took too long; sign in again",
            ));
        }
        if !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())) {
            return Err(AppError::bad_request(
                "state",
                "does not match the sign-in this browser started; sign in again",
            ));
        }
        let provider = self.provider().await?;
        let client = self.client(&provider)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| AppError::internal("OIDC token endpoint", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.0.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %error_chain(&e), "code exchange failed");
                crate::metrics::oidc_failure("token_exchange");
                AppError::Unauthorized(
                    "the identity provider did not accept the sign-in; sign in again".into(),
                )
            })?;
        let id_token = token.id_token().ok_or_else(|| {
            AppError::Unauthorized("the identity provider sent no ID token".into())
        })?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
            .map_err(|e| {
                tracing::warn!(error = %e, "ID token rejected");
                AppError::Unauthorized(format!("the ID token was rejected: {e}"))
            })?;
        let profile = self
            .user_info(
                &client,
                token.access_token().clone(),
                Some(claims.subject().clone()),
            )
            .await?;
        Ok(SignedIn {
            profile,
            id_token: id_token.to_string(),
            next: pending.next,
        })
    }

    /// Where to send the browser to end the provider's session too (RP-initiated logout), if
    /// the provider supports it.
    pub async fn logout_url(&self, id_token: Option<&str>) -> Option<String> {
        let provider = self.provider().await.ok()?;
        let endpoint = provider
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.0.settings.client_id.clone()));
        if let Some(token) = id_token.and_then(|t| CoreIdToken::from_str(t).ok()) {
            request = request.set_id_token_hint(&token);
        }
        if let Ok(mut back) = openidconnect::url::Url::parse(&self.0.settings.redirect_url) {
            // The login page of this platform, as registered with the provider.
            back.set_path(model::routes::LOGIN);
            back.set_query(None);
            request = request.set_post_logout_redirect_uri(PostLogoutRedirectUrl::from_url(back));
        }
        Some(request.http_get_url().to_string())
    }

    /// Who sent this bearer token: a JWT is checked against the provider's keys (signature,
    /// issuer, expiry, audience when configured) before userinfo is asked; an opaque token is
    /// checked by userinfo alone. Answers are cached briefly.
    pub async fn verify_bearer(&self, token: &str, now: Timestamp) -> AppResult<Profile> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((profile, until)) = self.0.tokens.lock().await.get(&key)
            && *until > Instant::now()
        {
            return Ok(profile.clone());
        }
        let provider = self.provider().await?;
        let (subject, expires) = if looks_like_jwt(token) {
            let (subject, exp) = self.check_jwt(provider.clone(), token, now).await?;
            (Some(SubjectIdentifier::new(subject)), Some(exp))
        } else {
            (None, None)
        };
        let client = self.client(&provider)?;
        let profile = self
            .user_info(&client, AccessToken::new(token.to_string()), subject)
            .await?;
        let ttl = expires.map_or(TOKEN_CACHE_TTL, |exp| {
            TOKEN_CACHE_TTL.min(Timestamp::from_secs(exp).since(now))
        });
        let mut tokens = self.0.tokens.lock().await;
        if tokens.len() >= TOKEN_CACHE_SIZE {
            let now = Instant::now();
            tokens.retain(|_, (_, until)| *until > now);
            if tokens.len() >= TOKEN_CACHE_SIZE {
                tokens.clear();
            }
        }
        tokens.insert(key, (profile.clone(), Instant::now() + ttl));
        Ok(profile)
    }

    /// Verifies a JWT access token; returns its subject and expiry.
    async fn check_jwt(
        &self,
        mut provider: Arc<Discovered>,
        token: &str,
        now: Timestamp,
    ) -> AppResult<(String, i64)> {
        let now = now.secs();
        let invalid = |why: &str| AppError::Unauthorized(format!("invalid token: {why}"));
        let (signed, signature) = token.rsplit_once('.').ok_or_else(|| invalid("not a JWT"))?;
        let (header, payload) = signed.split_once('.').ok_or_else(|| invalid("not a JWT"))?;
        let header: JwtHeader = decode_part(header).ok_or_else(|| invalid("unreadable header"))?;
        if header.alg == "none" || header.alg.starts_with("HS") {
            return Err(invalid("unsigned or symmetrically signed"));
        }
        let alg: CoreJwsSigningAlgorithm =
            serde_json::from_value(serde_json::Value::String(header.alg.clone()))
                .map_err(|_| invalid("unsupported signing algorithm"))?;
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| invalid("unreadable signature"))?;
        let verified = |provider: &Discovered| {
            provider.metadata.jwks().keys().iter().any(|key| {
                header
                    .kid
                    .as_deref()
                    .is_none_or(|kid| key.key_id().is_some_and(|k| k.as_str() == kid))
                    && key
                        .verify_signature(&alg, signed.as_bytes(), &signature)
                        .is_ok()
            })
        };
        if !verified(&provider) {
            // Perhaps the provider rotated its keys: look again, but not for every bad token.
            if provider.at.elapsed() < REDISCOVER_AFTER {
                return Err(invalid("not signed by the identity provider"));
            }
            provider = self.discover(Some(&provider)).await?;
            if !verified(&provider) {
                return Err(invalid("not signed by the identity provider"));
            }
        }
        let claims: JwtClaims = decode_part(payload).ok_or_else(|| invalid("unreadable claims"))?;
        if claims.iss != self.0.settings.issuer {
            return Err(invalid("issued by another provider"));
        }
        if claims.exp + LEEWAY < now {
            return Err(invalid("expired"));
        }
        if claims.nbf.is_some_and(|nbf| nbf - LEEWAY > now) {
            return Err(invalid("not valid yet"));
        }
        if let Some(audience) = &self.0.settings.audience
            && !claims.aud.contains(audience)
        {
            return Err(invalid("meant for another audience"));
        }
        Ok((claims.sub, claims.exp))
    }

    async fn user_info(
        &self,
        client: &Rp,
        access_token: AccessToken,
        subject: Option<SubjectIdentifier>,
    ) -> AppResult<Profile> {
        let info: UserInfoClaims<EgiClaims, CoreGenderClaim> = client
            .user_info(access_token, subject)
            .map_err(|e| AppError::internal("the provider has no userinfo endpoint", e))?
            .request_async(&self.0.http)
            .await
            .map_err(|e| match e {
                UserInfoError::Response(status, _, _) if status.is_client_error() => {
                    AppError::Unauthorized("invalid or expired token".into())
                }
                UserInfoError::ClaimsVerification(e) => {
                    AppError::Unauthorized(format!("invalid token: {e}"))
                }
                other => {
                    tracing::warn!(error = %error_chain(&other), "userinfo failed");
                    crate::metrics::oidc_failure("userinfo");
                    AppError::Unavailable(
                        "the identity provider cannot be reached right now; try again in a moment"
                            .into(),
                    )
                }
            })?;
        let subject = info.subject().to_string();
        if super::access::reserved_owner(&subject) {
            // Owner ids are subjects: this one would own what the local admin made.
            return Err(AppError::Forbidden(format!(
                "the identity provider's subject {subject:?} is reserved on this platform; sign in with another account"
            )));
        }
        let email = info.email().map(|e| e.to_string());
        let name = info
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .or_else(|| info.preferred_username().map(|u| u.to_string()))
            .or_else(|| email.clone())
            .unwrap_or_else(|| subject.clone());
        let extra = info.additional_claims();
        let all: Vec<&String> = extra
            .eduperson_entitlement
            .iter()
            .chain(&extra.entitlements)
            .collect();
        Ok(Profile {
            issuer: self.0.settings.issuer.clone(),
            subject,
            name,
            email,
            vos: entitlements::vos(&all),
        })
    }

    /// The VO gate: `Forbidden` naming the required VOs when the profile has none of them.
    pub fn admit(&self, profile: &Profile) -> AppResult<()> {
        let required = &self.0.settings.groups;
        if entitlements::admitted(&profile.vos, required) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "membership of the VO {} is required",
                required.join(" or ")
            )))
        }
    }
}

#[derive(Deserialize)]
struct JwtHeader {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct JwtClaims {
    iss: String,
    sub: String,
    exp: i64,
    nbf: Option<i64>,
    #[serde(default, deserialize_with = "one_or_many")]
    aud: Vec<String>,
}

fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("ey")
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
