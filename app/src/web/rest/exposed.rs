//! Exposed services: the reverse proxy to their instances at
//! `/system/services/<name>/exposed/…` (HTTP/1.1 and upgrades such as WebSockets, bodies
//! streamed both ways), its access rule, upstream's forward-auth endpoint and the lifecycle
//! (`stop`, `start`, `restart`) of oscar-api.md §3.2.
//!
//! Exposed apps share the dashboard's origin. So the visitor's platform session never reaches
//! them (its cookie and the platform's credentials are taken off each request), and their
//! pages run in a CSP sandbox: an opaque origin, which cannot read the dashboard's pages or
//! call its API with the visitor's session.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tower_sessions::Session;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Principal;
use super::auth::{Credentials, basic_pair, credentials_in, same_secret};
use super::openapi::documented;
use super::services::ServiceName;
use crate::web::state::AppState;
use crate::{AppError, AppResult};
use domain::access::Caller;
use domain::services;
use model::service::Service;
use model::service::expose::AuthType;
use model::services::DeploymentStatus;

/// The session cookie of the dashboard, never passed to an exposed app.
pub const SESSION_COOKIE: &str = "oscar_session";

/// What an exposed app's pages may do: run scripts, forms, pop-ups and downloads, as an
/// opaque origin (no `allow-same-origin`).
const SANDBOX: &str = "sandbox allow-scripts allow-forms allow-popups allow-modals \
    allow-downloads allow-popups-to-escape-sandbox";

pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    [
        routes!(forward_auth),
        routes!(stop),
        routes!(start),
        routes!(restart),
    ]
    .into_iter()
    .fold(router, documented)
}

/// Whether `path` goes to an exposed service's app (`/system/services/<name>/exposed…`).
pub fn is_proxied(path: &str) -> bool {
    path.strip_prefix("/system/services/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, rest)| rest == "exposed" || rest.starts_with("exposed/"))
}

/// The proxy's routes: every method, so not in the OpenAPI document (an app's own API is
/// its own).
pub fn proxy_routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/system/services/{name}/exposed",
            axum::routing::any(proxy_base),
        )
        .route(
            "/system/services/{name}/exposed/",
            axum::routing::any(proxy_base),
        )
        .route(
            "/system/services/{name}/exposed/{*path}",
            axum::routing::any(proxy_base),
        )
}

/// Every request under the service's path (the rest of it is read raw from the URI: axum's
/// decoded `{*path}` would turn `%3F` into a query).
async fn proxy_base(
    State(state): State<AppState>,
    session: Session,
    Path(ServiceName { name }): Path<ServiceName>,
    request: Request,
) -> Response {
    proxy(state, session, name, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn proxy(
    state: AppState,
    session: Session,
    name: String,
    request: Request,
) -> Result<Response, Response> {
    let (mut parts, body) = request.into_parts();
    let service = exposed_service(&state, &name)
        .await
        .map_err(|e| e.into_response())?;
    let expose = service.expose.clone().unwrap_or_default();
    let admitted = admit(&state, &session, &service, &parts)
        .await
        .map_err(|refusal| refusal.response(&service))?;
    let connection = state
        .exposed
        .connect(&state.db, &state.services, &service)
        .await
        .map_err(IntoResponse::into_response)?;

    let base = model::routes::exposed_base(&name);
    let forwarded_path = match parts.uri.path().strip_prefix(&base) {
        Some(rest) if expose.rewrite_target && rest.starts_with('/') => rest.to_string(),
        Some(_) if expose.rewrite_target => "/".to_string(),
        _ => parts.uri.path().to_string(),
    };
    let target = match parts.uri.query() {
        Some(query) => format!("{forwarded_path}?{query}"),
        None => forwarded_path,
    };
    let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let client = state.client_address(&parts);
    parts.uri = target.parse().map_err(|_| {
        AppError::bad_request("path", "the request's path cannot be forwarded").into_response()
    })?;
    parts.version = http::Version::HTTP_11;
    let credentials =
        admitted == Admitted::Header || platform_credentials(&state, &service, &parts.headers);
    let proto = if state.secure_cookies {
        "https"
    } else {
        "http"
    };
    prepare_headers(&mut parts.headers, credentials, &client, &base, proto);
    let upstream_request = http::Request::from_parts(parts, body);

    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(connection.stream))
        .await
        .map_err(|e| bad_gateway(&name, e))?;
    // Counted until the exchange, and an upgraded connection (a WebSocket), end.
    let in_flight = std::sync::Arc::new(connection.in_flight);
    let counted = in_flight.clone();
    tokio::spawn(async move {
        let _in_flight = counted;
        let _ = conn.with_upgrades().await;
    });
    let mut response = sender
        .send_request(upstream_request)
        .await
        .map_err(|e| bad_gateway(&name, e))?;

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        if let Some(client_upgrade) = client_upgrade {
            tokio::spawn(async move {
                let _in_flight = in_flight;
                if let (Ok(client), Ok(upstream)) = (client_upgrade.await, upstream_upgrade.await) {
                    let _ = tokio::io::copy_bidirectional(
                        &mut TokioIo::new(client),
                        &mut TokioIo::new(upstream),
                    )
                    .await;
                }
            });
        }
    }
    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(
        &mut parts.headers,
        parts.status == StatusCode::SWITCHING_PROTOCOLS,
    );
    parts.headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SANDBOX),
    );
    confine_cookies(&mut parts.headers, &base);
    if let Some(cookie) = admitted.set_cookie(&service, state.secure_cookies) {
        parts.headers.append(header::SET_COOKIE, cookie);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// The service, when it exists and is exposed; the same 404 otherwise (a stranger learns
/// nothing more from this path than from `/system/services`).
async fn exposed_service(state: &AppState, name: &str) -> AppResult<Service> {
    // From the parsed catalog: every proxied request asks.
    let catalog = state.services.list(&state.db).await?;
    match catalog.iter().find(|s| s.name == name) {
        Some(service) if service.is_exposed() => Ok(service.clone()),
        _ => Err(AppError::NotFound(format!(
            "no exposed service is named {name}"
        ))),
    }
}

fn bad_gateway(name: &str, err: hyper::Error) -> Response {
    tracing::info!(service = %name, %err, "exposed service: no answer from its instance");
    (
        StatusCode::BAD_GATEWAY,
        format!("the service {name} did not answer: {err}"),
    )
        .into_response()
}

/// How a request got in.
#[derive(Debug, PartialEq, Eq)]
enum Admitted {
    /// The service asks for nothing.
    Open,
    /// Signed in to the dashboard as someone who may use the service.
    Session,
    /// The platform's credentials in `Authorization` (the token, the admin, an OIDC user).
    Header,
    /// The token in the cookie.
    Cookie,
    /// The token in `?token=`: the cookie is set for what follows.
    Query,
}

impl Admitted {
    /// `Set-Cookie` that lets the pages' later requests in (upstream's forward-auth cookie).
    fn set_cookie(&self, service: &Service, secure: bool) -> Option<HeaderValue> {
        (*self == Self::Query)
            .then(|| token_cookie(service, secure))
            .flatten()
    }
}

/// Why a request is refused.
enum Refusal {
    /// No credentials: basic auth asks the browser for them.
    Missing,
    Invalid(AppError),
}

impl Refusal {
    fn response(self, service: &Service) -> Response {
        let basic = service
            .expose
            .as_ref()
            .is_some_and(|e| e.auth() == AuthType::Basic);
        let mut response = match self {
            Self::Missing => AppError::Unauthorized(format!(
                "the service {} needs its token or a signed-in user who may use it",
                service.name
            ))
            .into_response(),
            Self::Invalid(err) => err.into_response(),
        };
        if basic && response.status() == StatusCode::UNAUTHORIZED {
            let realm = format!("Basic realm=\"{}\"", service.name);
            if let Ok(value) = HeaderValue::from_str(&realm) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// The access rule of an exposed service. Without `set_auth` it is open, as upstream's
/// ingress is. With it: the service's token (Basic with the service's name, Bearer,
/// `?token=` or the cookie), or a caller the service is visible to (a dashboard session, the
/// admin's Basic, an OIDC bearer token).
async fn admit(
    state: &AppState,
    session: &Session,
    service: &Service,
    parts: &http::request::Parts,
) -> Result<Admitted, Refusal> {
    if !service.expose.as_ref().is_some_and(|e| e.set_auth) {
        return Ok(Admitted::Open);
    }
    let headers = &parts.headers;
    // `X-Forwarded-Uri`'s query carries the token when a proxy asks on a request's behalf.
    let forwarded = headers
        .get("x-forwarded-uri")
        .and_then(|v| v.to_str().ok())
        .and_then(|uri| uri.split_once('?').map(|(_, q)| q));
    let query = parts.uri.query().or(forwarded);
    let token = &service.token;
    if let Some(given) = query_token(query)
        && same_secret(&given, token)
    {
        return Ok(Admitted::Query);
    }
    if cookie(headers, &cookie_name(&service.name)).is_some_and(|given| same_secret(&given, token))
    {
        return Ok(Admitted::Cookie);
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        return header_caller(state, service, value, &state.client_address(parts))
            .await
            .map(|()| Admitted::Header)
            .map_err(Refusal::Invalid);
    }
    match domain::auth::signed_in(session).await {
        Ok(caller) if services::visible(&caller, service) => Ok(Admitted::Session),
        Ok(_) => Err(Refusal::Invalid(AppError::Forbidden(format!(
            "the service {} is not shared with you",
            service.name
        )))),
        Err(_) => Err(Refusal::Missing),
    }
}

/// The `Authorization` header's caller: the service's token (Bearer, or Basic as
/// `<name>:<token>`) or a platform caller the service is visible to.
async fn header_caller(
    state: &AppState,
    service: &Service,
    value: &HeaderValue,
    client: &str,
) -> AppResult<()> {
    match credentials_in(value) {
        Some(Credentials::Bearer(token)) if same_secret(token, &service.token) => return Ok(()),
        Some(Credentials::Basic(encoded)) => {
            if let Some((user, password)) = basic_pair(encoded)
                && user == service.name
            {
                return if same_secret(&password, &service.token) {
                    Ok(())
                } else {
                    Err(AppError::Unauthorized("invalid service token".into()))
                };
            }
        }
        _ => {}
    }
    let caller: Caller = super::auth::caller_of(state, value, client).await?;
    if services::visible(&caller, service) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "the service {} is not shared with you",
            service.name
        )))
    }
}

fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// Upstream's cookie name: `oscar_service_<name, - → _>_auth`.
fn cookie_name(service: &str) -> String {
    format!("oscar_service_{}_auth", service.replace('-', "_"))
}

fn token_cookie(service: &Service, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={}; Path={}; HttpOnly; SameSite=Lax{secure}",
        cookie_name(&service.name),
        service.token,
        model::routes::exposed_base(&service.name)
    ))
    .ok()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether `Authorization` holds the platform's credentials, whatever let the request in: the
/// admin's or the service's Basic, the service's token, a token of the platform's identity
/// provider. A browser resends the admin's Basic to every path under `/system/`.
fn platform_credentials(state: &AppState, service: &Service, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    match credentials_in(value) {
        Some(Credentials::Basic(encoded)) => basic_pair(encoded)
            .is_some_and(|(user, _)| user == service.name || user == state.admin.username),
        Some(Credentials::Bearer(token)) => {
            same_secret(token, &service.token)
                || state
                    .oidc
                    .as_ref()
                    .is_some_and(|oidc| issued_by(token, &oidc.settings().issuer))
        }
        None => false,
    }
}

/// Whether a JWT names `issuer` as its issuer (read, not verified: only to keep it from the
/// app).
fn issued_by(token: &str, issuer: &str) -> bool {
    let payload = token.split('.').nth(1).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|claims| {
            let claimed = claims["iss"].as_str().unwrap_or_default();
            claimed.trim_end_matches('/') == issuer.trim_end_matches('/')
        })
}

/// The app's cookies stay under its own path, and never take the platform's names: it shares
/// the dashboard's origin, where `Set-Cookie` and `Clear-Site-Data` would reach the visitor's
/// session.
fn confine_cookies(headers: &mut HeaderMap, base: &str) {
    headers.remove("clear-site-data");
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| {
            let text = value.to_str().ok()?;
            let mut attributes = text.split(';').map(str::trim);
            let pair = attributes.next()?;
            let name = pair.split_once('=').map_or(pair, |(k, _)| k).trim();
            if name == SESSION_COOKIE || name.starts_with("oscar_service_") {
                return None;
            }
            let path = format!("{base}/");
            let mut kept: Vec<String> = vec![pair.to_string()];
            let mut own_path = None;
            for attribute in attributes {
                match attribute.split_once('=') {
                    Some((key, value)) if key.trim().eq_ignore_ascii_case("path") => {
                        own_path = Some(value.trim().to_string());
                    }
                    // A cookie for the whole site (or another one) is not the app's to set.
                    Some((key, _)) if key.trim().eq_ignore_ascii_case("domain") => {}
                    _ => kept.push(attribute.to_string()),
                }
            }
            let path = own_path.filter(|p| p.starts_with(&path)).unwrap_or(path);
            kept.push(format!("Path={path}"));
            HeaderValue::from_str(&kept.join("; ")).ok()
        })
        .collect();
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
}

/// The request as the app gets it: without the platform's session cookie or credentials,
/// without hop-by-hop headers (but an upgrade's), with where it came from.
fn prepare_headers(
    headers: &mut HeaderMap,
    credentials: bool,
    client: &str,
    base: &str,
    proto: &str,
) {
    let upgrade = headers
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"));
    remove_hop_by_hop(headers, upgrade);
    let cookies: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(k, _)| k);
            name != SESSION_COOKIE && !name.starts_with("oscar_service_")
        })
        .map(String::from)
        .collect();
    headers.remove(header::COOKIE);
    if !cookies.is_empty()
        && let Ok(value) = HeaderValue::from_str(&cookies.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
    if credentials {
        headers.remove(header::AUTHORIZATION);
    }
    // Where it came from is ours to say, not the client's.
    for forged in ["x-forwarded-host", "x-forwarded-proto", "forwarded"] {
        headers.remove(forged);
    }
    let host = headers.get(header::HOST).cloned();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-forwarded-for", client);
    set("x-forwarded-prefix", base);
    set("x-forwarded-proto", proto);
    if let Some(host) = host.as_ref().and_then(|h| h.to_str().ok()) {
        set("x-forwarded-host", host);
    }
}

/// Headers that concern one connection only; `Connection: upgrade` and `Upgrade` stay on an
/// upgrade.
fn remove_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !(upgrade && name == "upgrade"))
        .collect();
    for name in listed {
        headers.remove(name.as_str());
    }
    for name in [
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
    ] {
        headers.remove(name);
    }
    if !upgrade {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

/// Upstream's forward-auth target (Traefik, nginx `auth_request`): 200 for the service's
/// token or a caller it is visible to, and the cookie that lets the app's pages in.
#[utoipa::path(get, path = "/system/services/{name}/auth", tag = "services", params(ServiceName, TokenQuery),
    responses((status = 200, description = "Let in")))]
async fn forward_auth(
    State(state): State<AppState>,
    session: Session,
    Path(ServiceName { name }): Path<ServiceName>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let service = match exposed_service(&state, &name).await {
        Ok(service) => service,
        Err(err) => return err.into_response(),
    };
    let mut checked = service.clone();
    if let Some(expose) = &mut checked.expose {
        // This endpoint always checks, whatever the proxy does with the answer.
        expose.set_auth = true;
        expose.auth_type = AuthType::Forward.as_str().into();
    }
    match admit(&state, &session, &checked, &parts).await {
        Ok(_) => {
            let mut response = StatusCode::OK.into_response();
            if let Some(cookie) = token_cookie(&service, state.secure_cookies) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(refusal) => refusal.response(&checked),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Read from the raw query; here for the document.
struct TokenQuery {
    /// The service's token.
    token: Option<String>,
}

/// Stops an exposed service: its instances end, and none runs until it is started again.
#[utoipa::path(post, path = "/system/services/{name}/stop", tag = "services", params(ServiceName),
    responses((status = 200, description = "Stopped", body = DeploymentStatus)))]
async fn stop(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name }): Path<ServiceName>,
) -> AppResult<Json<DeploymentStatus>> {
    lifecycle(&state, &caller, &name, domain::exposed::Action::Stop).await
}

/// Starts a stopped exposed service (`min_scale` instances).
#[utoipa::path(post, path = "/system/services/{name}/start", tag = "services", params(ServiceName),
    responses((status = 200, description = "Started", body = DeploymentStatus)))]
async fn start(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name }): Path<ServiceName>,
) -> AppResult<Json<DeploymentStatus>> {
    lifecycle(&state, &caller, &name, domain::exposed::Action::Start).await
}

/// Replaces every instance of an exposed service with a new one.
#[utoipa::path(post, path = "/system/services/{name}/restart", tag = "services", params(ServiceName),
    responses((status = 200, description = "Restarted", body = DeploymentStatus)))]
async fn restart(
    State(state): State<AppState>,
    Principal(caller): Principal,
    Path(ServiceName { name }): Path<ServiceName>,
) -> AppResult<Json<DeploymentStatus>> {
    lifecycle(&state, &caller, &name, domain::exposed::Action::Restart).await
}

async fn lifecycle(
    state: &AppState,
    caller: &Caller,
    name: &str,
    action: domain::exposed::Action,
) -> AppResult<Json<DeploymentStatus>> {
    Ok(Json(
        state
            .exposed
            .act(&state.db, &state.services, caller, name, action)
            .await?,
    ))
}
