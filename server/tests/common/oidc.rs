//! A small OpenID provider on loopback for HTTP-level tests of sign-in and bearer tokens:
//! discovery, JWKS, authorize (signs in the `login_hint` user at once), token (checks the
//! client secret and PKCE), userinfo and end-session. Access tokens are RS256 JWTs, like
//! EGI Check-In's, signed with a test-only key. Browser tests use the npm `oidc-provider`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
use openidconnect::{JsonWebKeyId, PkceCodeChallenge, PkceCodeVerifier, PrivateSigningKey};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "oscar-test";
pub const CLIENT_SECRET: &str = "oscar-test-secret";
pub const VO: &str = "vo.example.eu";
/// The public client refresh tokens are issued to (EGI's token portal stands for it).
pub const REFRESH_CLIENT_ID: &str = "token-portal";

/// Test users: (sub, name, entitlements). carol is outside the required VO; the provider
/// also issues the platform's reserved owner id as a subject, to someone inside it.
const USERS: &[(&str, &str, &[&str])] = &[
    (
        "alice@test",
        "Alice Example",
        &["urn:mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu"],
    ),
    (
        "bob@test",
        "Bob Example",
        &[
            "urn:mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu",
            "urn:mace:egi.eu:group:vo.other.eu:role=member#aai.egi.eu",
        ],
    ),
    (
        "carol@test",
        "Carol Outsider",
        &["urn:mace:egi.eu:group:vo.other.eu:role=member#aai.egi.eu"],
    ),
    (
        "cluster_admin",
        "Not The Admin",
        &["urn:mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu"],
    ),
];

/// This platform's registration with the fake provider at `issuer`, `VO` required.
pub fn settings(issuer: &str) -> domain::oidc::OidcSettings {
    domain::oidc::OidcSettings {
        issuer: issuer.to_string(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        redirect_url: "http://127.0.0.1:3000/auth/callback".into(),
        scopes: vec![
            "openid".into(),
            "profile".into(),
            "email".into(),
            "eduperson_entitlement".into(),
        ],
        groups: vec![VO.into()],
        audience: None,
        display_name: "Test IdP".into(),
        refresh_client_id: REFRESH_CLIENT_ID.into(),
    }
}

struct Grant {
    sub: String,
    nonce: String,
    challenge: String,
}

struct Op {
    issuer: String,
    key: CoreRsaPrivateSigningKey,
    grants: Mutex<HashMap<String, Grant>>,
    /// Access tokens this provider issued (userinfo answers for these only).
    issued: Mutex<HashMap<String, String>>,
    userinfo_calls: Mutex<u32>,
    refreshes: Mutex<u32>,
    /// Set by [`FakeOp::rotating`]: each refresh answers a new refresh token and a short-lived
    /// access token, and only the newest refresh token of a user works.
    rotating: std::sync::atomic::AtomicBool,
    newest_refresh: Mutex<HashMap<String, String>>,
}

pub struct FakeOp {
    op: Arc<Op>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOp {
    pub async fn start() -> Self {
        Self::on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// Serves on `listener` (tests that start the provider late bind the port first).
    pub fn on(listener: tokio::net::TcpListener) -> Self {
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let pem = include_str!("../fixtures/oidc-test-signing-key.pem");
        let op = Arc::new(Op {
            issuer,
            key: CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new("test".into())))
                .unwrap(),
            grants: Mutex::default(),
            issued: Mutex::default(),
            userinfo_calls: Mutex::default(),
            refreshes: Mutex::default(),
            rotating: Default::default(),
            newest_refresh: Mutex::default(),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/me", get(userinfo))
            .with_state(op.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { op, task }
    }

    pub fn issuer(&self) -> &str {
        &self.op.issuer
    }

    pub fn userinfo_calls(&self) -> u32 {
        *self.op.userinfo_calls.lock().unwrap()
    }

    /// A refresh token of `sub` for [`REFRESH_CLIENT_ID`], as EGI's token portal hands out.
    pub fn refresh_token_for(&self, sub: &str) -> String {
        format!("refresh.{sub}")
    }

    /// From now on, rotates refresh tokens as Keycloak does with "Revoke Refresh Token" on.
    pub fn rotating(&self) {
        self.op
            .rotating
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many refresh tokens were exchanged.
    pub fn refreshes(&self) -> u32 {
        *self.op.refreshes.lock().unwrap()
    }

    /// A valid access token for `sub` that expires in `ttl` seconds (negative: already expired).
    pub fn token_for(&self, sub: &str, ttl: i64) -> String {
        self.op.access_token(sub, ttl)
    }

    /// A token whose claims were changed after signing (to another user).
    pub fn forged_token(&self, sub: &str, as_sub: &str) -> String {
        let token = self.token_for(sub, 300);
        let parts: Vec<&str> = token.split('.').collect();
        let claims = self.op.claims(as_sub, 300);
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{}.{payload}.{}", parts[0], parts[2])
    }

    /// What the provider does for the browser at the authorization URL: signs in the
    /// `login_hint` user and answers with the redirect to the platform's callback.
    pub fn authorize(&self, url: &str) -> String {
        let params: HashMap<String, String> = openidconnect::url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        self.op.grant(&params)
    }
}

impl Op {
    fn claims(&self, sub: &str, ttl: i64) -> Value {
        let now = chrono_now();
        json!({"iss": self.issuer, "sub": sub, "aud": CLIENT_ID, "iat": now, "exp": now + ttl, "scope": "openid profile email eduperson_entitlement"})
    }

    fn sign(&self, claims: &Value) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header =
            engine.encode(json!({"alg": "RS256", "typ": "JWT", "kid": "test"}).to_string());
        let payload = engine.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let signature = self
            .key
            .sign(
                &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                input.as_bytes(),
            )
            .unwrap();
        format!("{input}.{}", engine.encode(signature))
    }

    fn access_token(&self, sub: &str, ttl: i64) -> String {
        let token = self.sign(&self.claims(sub, ttl));
        self.issued
            .lock()
            .unwrap()
            .insert(token.clone(), sub.to_string());
        token
    }

    fn grant(&self, params: &HashMap<String, String>) -> String {
        let sub = params
            .get("login_hint")
            .cloned()
            .unwrap_or_else(|| "alice@test".into());
        let code = format!("code-{}", rand::random::<u64>());
        self.grants.lock().unwrap().insert(
            code.clone(),
            Grant {
                sub,
                nonce: params.get("nonce").cloned().unwrap_or_default(),
                challenge: params.get("code_challenge").cloned().unwrap_or_default(),
            },
        );
        format!(
            "{}?code={code}&state={}",
            params["redirect_uri"],
            model::url::percent_encode(&params["state"], b"")
        )
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn discovery(State(op): State<Arc<Op>>) -> Json<Value> {
    let i = &op.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/me"),
        "jwks_uri": format!("{i}/jwks"),
        "end_session_endpoint": format!("{i}/session/end"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "eduperson_entitlement"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(op): State<Arc<Op>>) -> Json<Value> {
    Json(json!({ "keys": [op.key.as_verification_key()] }))
}

async fn authorize(
    State(op): State<Arc<Op>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    Redirect::to(&op.grant(&params)).into_response()
}

async fn token(
    State(op): State<Arc<Op>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let error = |e: &str| (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response();
    // A public client's refresh: no secret; the token names a known user.
    if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        let given = form.get("refresh_token").cloned().unwrap_or_default();
        let known = given
            .strip_prefix("refresh.")
            .map(|rest| rest.split('#').next().unwrap_or_default().to_string())
            .filter(|sub| USERS.iter().any(|(s, _, _)| s == sub));
        let rotating = op.rotating.load(std::sync::atomic::Ordering::Relaxed);
        return match (form.get("client_id").map(String::as_str), known) {
            (Some(REFRESH_CLIENT_ID), Some(sub)) => {
                let mut newest = op.newest_refresh.lock().unwrap();
                let current = newest
                    .get(&sub)
                    .cloned()
                    .unwrap_or_else(|| format!("refresh.{sub}"));
                if rotating && given != current {
                    return error("invalid_grant");
                }
                let refreshes = {
                    let mut count = op.refreshes.lock().unwrap();
                    *count += 1;
                    *count
                };
                // Shorter than the platform's margin: every use exchanges again.
                let lasts = if rotating { 20 } else { 300 };
                let mut answer = json!({
                    "access_token": op.access_token(&sub, lasts),
                    "token_type": "Bearer",
                    "expires_in": lasts,
                });
                if rotating {
                    let next = format!("refresh.{sub}#{refreshes}");
                    newest.insert(sub, next.clone());
                    answer["refresh_token"] = json!(next);
                }
                Json(answer).into_response()
            }
            _ => error("invalid_grant"),
        };
    }
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let authorized = headers
        .get("authorization")
        .is_some_and(|v| v.to_str().unwrap_or_default() == format!("Basic {basic}"));
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Some(grant) = form
        .get("code")
        .and_then(|c| op.grants.lock().unwrap().remove(c))
    else {
        return error("invalid_grant");
    };
    let verifier = PkceCodeVerifier::new(form.get("code_verifier").cloned().unwrap_or_default());
    if PkceCodeChallenge::from_code_verifier_sha256(&verifier).as_str() != grant.challenge {
        return error("invalid_grant");
    }
    let mut id = op.claims(&grant.sub, 300);
    id["nonce"] = json!(grant.nonce);
    Json(json!({
        "access_token": op.access_token(&grant.sub, 300),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": op.sign(&id),
    }))
    .into_response()
}

async fn userinfo(State(op): State<Arc<Op>>, headers: HeaderMap) -> Response {
    *op.userinfo_calls.lock().unwrap() += 1;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(sub) = op.issued.lock().unwrap().get(token).cloned() else {
        return (StatusCode::UNAUTHORIZED, "invalid token").into_response();
    };
    let (_, name, entitlements) = USERS
        .iter()
        .find(|(s, _, _)| *s == sub)
        .copied()
        .unwrap_or(("", "Unknown", &[]));
    Json(json!({
        "sub": sub,
        "name": name,
        "email": format!("{}@example.org", sub.split('@').next().unwrap_or_default()),
        "eduperson_entitlement": entitlements,
    }))
    .into_response()
}
