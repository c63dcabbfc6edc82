//! A fake Kubernetes for tests, since no cluster runs on our machines: an in-memory API
//! server with the subset the platform uses (create, get, list with label selectors, watch,
//! server-side apply as an upsert that keeps the status, JSON merge patches, delete with owner
//! cascade, delete collection, pod logs with `tailLines` and `timestamps`) for Jobs, Pods,
//! Secrets, ConfigMaps, Services (every one at cluster IP 127.0.0.1), Deployments,
//! HorizontalPodAutoscalers, Ingresses, Gateway API HTTPRoutes, Namespaces, Nodes, Events and
//! metrics-server's NodeMetrics, plus a [`kubelet`] that runs each Job's and Deployment's pods
//! as local processes and reports pod, Job and Deployment status the way a cluster does.
//!
//! It serves in-process ([`FakeCluster::client`]) or on loopback with a kubeconfig for the
//! real binary ([`FakeCluster::serve`]). Every request is recorded ([`FakeCluster::requests`])
//! so tests and benchmarks can count API round trips.

pub mod kubelet;
mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::{Value, json};
use tokio::sync::watch;

pub use store::Selector;
use store::{Key, Store};

/// The resources served: what the store calls them, plural in the path, apiVersion, kind.
const RESOURCES: &[(&str, &str, &str, &str)] = &[
    ("jobs", "jobs", "batch/v1", "Job"),
    ("pods", "pods", "v1", "Pod"),
    ("secrets", "secrets", "v1", "Secret"),
    ("configmaps", "configmaps", "v1", "ConfigMap"),
    ("services", "services", "v1", "Service"),
    ("deployments", "deployments", "apps/v1", "Deployment"),
    (
        "horizontalpodautoscalers",
        "horizontalpodautoscalers",
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
    ),
    ("ingresses", "ingresses", "networking.k8s.io/v1", "Ingress"),
    (
        "httproutes",
        "httproutes",
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
    ),
    ("namespaces", "namespaces", "v1", "Namespace"),
    (
        "persistentvolumeclaims",
        "persistentvolumeclaims",
        "v1",
        "PersistentVolumeClaim",
    ),
    ("nodes", "nodes", "v1", "Node"),
    ("events", "events", "v1", "Event"),
    (
        "networkpolicies",
        "networkpolicies",
        "networking.k8s.io/v1",
        "NetworkPolicy",
    ),
    // metrics-server's API: tests create the readings they want reported.
    (
        "nodemetrics",
        "nodes",
        "metrics.k8s.io/v1beta1",
        "NodeMetrics",
    ),
];

#[derive(Clone, Default)]
pub struct FakeCluster {
    store: Arc<Store>,
}

/// A fake served on loopback; dropping it stops the server.
pub struct Served {
    pub url: String,
    /// A kubeconfig pointing at it (no credentials: the fake trusts everyone).
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

/// What this fake says it is (`kubectl version`'s server part).
pub const VERSION: &str = "v1.33.0-fake";

async fn version() -> axum::Json<Value> {
    axum::Json(serde_json::json!({
        "major": "1", "minor": "33", "gitVersion": VERSION, "gitCommit": "", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"
    }))
}

impl FakeCluster {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/version", axum::routing::get(version))
            .fallback(handle)
            .with_state(self.store.clone())
    }

    /// A client talking to the fake in-process.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }

    pub async fn serve(&self) -> std::io::Result<Served> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let router = self.router();
        let server = tokio::spawn(async move {
            // Small chunks (watch events, followed logs) go out at once, as from a real server.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, router).await;
        });
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
                 users:\n- name: tester\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n\
                 current-context: fake\n"
            ),
        )?;
        Ok(Served {
            url,
            kubeconfig,
            _dir: dir,
            _server: server,
        })
    }

    /// Every request so far as `METHOD path?query`, in order.
    pub fn requests(&self) -> Vec<String> {
        self.store.requests()
    }

    /// An object as stored (`resource` is the plural, e.g. `jobs`).
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.store.get(&Key::new(resource, namespace, name))
    }

    /// The objects of a resource in a namespace (every namespace with `None`).
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        self.store.list(resource, namespace, &Selector::default())
    }

    /// Creates an object as a controller would (`resource` as the store calls it, e.g.
    /// `nodemetrics` for what metrics-server reports).
    pub fn create(&self, resource: &str, namespace: &str, object: Value) -> Result<Value, String> {
        let &(resource, _, api_version, kind) = RESOURCES
            .iter()
            .find(|r| r.0 == resource)
            .ok_or_else(|| format!("the fake serves no {resource}"))?;
        self.store
            .create(resource, api_version, kind, namespace, object)
    }

    /// Deletes an object the way `kubectl delete` would (what a TTL controller does too).
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.store.delete(&Key::new(resource, namespace, name))
    }

    /// Changes of the store, by resource version.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.store.changes()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }
}

/// Where a request goes: a collection or one object, maybe a subresource.
struct Target {
    resource: &'static str,
    api_version: &'static str,
    kind: &'static str,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn target(path: &str) -> Option<Target> {
    let rest = path
        .strip_prefix("/api/v1/")
        .or_else(|| path.strip_prefix("/apis/batch/v1/"))
        .or_else(|| path.strip_prefix("/apis/apps/v1/"))
        .or_else(|| path.strip_prefix("/apis/autoscaling/v2/"))
        .or_else(|| path.strip_prefix("/apis/gateway.networking.k8s.io/v1/"))
        .or_else(|| path.strip_prefix("/apis/networking.k8s.io/v1/"))
        .or_else(|| path.strip_prefix("/apis/metrics.k8s.io/v1beta1/"))?;
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let (namespace, resource, name, subresource) = match segments.as_slice() {
        [resource] => (None, *resource, None, None),
        ["namespaces", ns, resource, rest @ ..] => {
            (Some(ns.to_string()), *resource, rest.first(), rest.get(1))
        }
        [resource, name] => (None, *resource, Some(name), None),
        _ => return None,
    };
    let &(resource, _, api_version, kind) = RESOURCES.iter().find(|r| {
        r.1 == resource
            && path.starts_with(&format!(
                "/{}/{}/",
                if r.2 == "v1" { "api" } else { "apis" },
                r.2
            ))
    })?;
    Some(Target {
        resource,
        api_version,
        kind,
        namespace,
        name: name.map(|n| n.to_string()),
        subresource: subresource.map(|s| s.to_string()),
    })
}

fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (
        axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::BAD_REQUEST),
        axum::Json(body),
    )
        .into_response()
}

fn query(request: &Request, name: &str) -> Option<String> {
    request.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(State(store): State<Arc<Store>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    store.record(format!(
        "{method} {}",
        request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or(&path)
    ));
    let Some(target) = target(&path) else {
        return status(404, "NotFound", format!("the fake serves no {path}"));
    };
    let selector = Selector::parse(&query(&request, "labelSelector").unwrap_or_default());
    let fields = query(&request, "fieldSelector").unwrap_or_default();
    let watching = query(&request, "watch").is_some_and(|w| w == "true" || w == "1");
    let following = query(&request, "follow").is_some_and(|w| w == "true" || w == "1");
    let timestamps = query(&request, "timestamps").is_some_and(|w| w == "true");
    let query_tail = query(&request, "tailLines").and_then(|v| v.parse::<usize>().ok());
    let since = query(&request, "resourceVersion").and_then(|v| v.parse::<u64>().ok());
    let timeout = query(&request, "timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(290);
    let merge_patch = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/merge-patch+json"));
    let body = match axum::body::to_bytes(request.into_body(), 64 * 1024 * 1024).await {
        Ok(body) => body,
        Err(err) => return status(400, "BadRequest", format!("unreadable body: {err}")),
    };
    let namespace = target.namespace.clone().unwrap_or_default();
    match (method.as_str(), &target.name, target.subresource.as_deref()) {
        ("GET", None, None) if watching => watch_response(
            store,
            target.resource,
            target.namespace.clone(),
            selector,
            since,
            Duration::from_secs(timeout),
        ),
        ("GET", None, None) => {
            let (mut items, version) =
                store.list_with_version(target.resource, target.namespace.as_deref(), &selector);
            // Field selectors: `a.b=value` terms on the object's fields.
            for term in fields.split(',').filter(|t| !t.is_empty()) {
                let (path, value) = term.split_once('=').unwrap_or((term, ""));
                items.retain(|item| {
                    path.split('.').fold(item, |v, key| &v[key]).as_str() == Some(value)
                });
            }
            axum::Json(json!({"apiVersion": target.api_version,
                "kind": format!("{}List", target.kind),
                "metadata": {"resourceVersion": version.to_string()}, "items": items}))
            .into_response()
        }
        ("POST", None, None) => {
            let Ok(object) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "the body is not a JSON object".into());
            };
            match store.create(
                target.resource,
                target.api_version,
                target.kind,
                &namespace,
                object,
            ) {
                Ok(created) => {
                    (axum::http::StatusCode::CREATED, axum::Json(created)).into_response()
                }
                Err(name) => status(
                    409,
                    "AlreadyExists",
                    format!("{} {name:?} already exists", target.resource),
                ),
            }
        }
        ("DELETE", None, None) => {
            let deleted = store.delete_matching(target.resource, &namespace, &selector);
            axum::Json(json!({"apiVersion": target.api_version,
                "kind": format!("{}List", target.kind), "metadata": {}, "items": deleted}))
            .into_response()
        }
        ("GET", Some(name), None) => {
            match store.get(&Key::new(target.resource, &namespace, name)) {
                Some(object) => axum::Json(object).into_response(),
                None => not_found(&target, name),
            }
        }
        ("PATCH", Some(name), None) if merge_patch => {
            let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "the body is not a JSON object".into());
            };
            match store.merge(&Key::new(target.resource, &namespace, name), &patch) {
                Some(saved) => axum::Json(saved).into_response(),
                None => not_found(&target, name),
            }
        }
        ("PATCH" | "PUT", Some(name), None) => {
            let Ok(object) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "the body is not a JSON object".into());
            };
            if object["metadata"]["name"].as_str() != Some(name.as_str()) {
                return status(400, "BadRequest", "metadata.name must match the URL".into());
            }
            let (saved, created) = store.upsert(
                target.resource,
                target.api_version,
                target.kind,
                &namespace,
                object,
            );
            let code = if created {
                axum::http::StatusCode::CREATED
            } else {
                axum::http::StatusCode::OK
            };
            (code, axum::Json(saved)).into_response()
        }
        ("DELETE", Some(name), None) => {
            match store.delete(&Key::new(target.resource, &namespace, name)) {
                Some(object) => axum::Json(object).into_response(),
                None => not_found(&target, name),
            }
        }
        ("GET", Some(name), Some("log")) if target.resource == "pods" => {
            let tail = query_tail.unwrap_or(usize::MAX);
            match store.log_with(&namespace, name, timestamps, tail) {
                Some(_) if following => follow_log(store, namespace, name.clone()),
                Some(text) => text.into_response(),
                None => not_found(&target, name),
            }
        }
        _ => status(
            405,
            "MethodNotAllowed",
            format!("the fake does not serve {method} {path}"),
        ),
    }
}

fn not_found(target: &Target, name: &str) -> Response {
    status(
        404,
        "NotFound",
        format!("{} {name:?} not found", target.resource),
    )
}

/// A followed log: what the pod printed so far, then each new line, until the pod has ended
/// (or is gone).
fn follow_log(store: Arc<Store>, namespace: String, pod: String) -> Response {
    let state = (0usize, store.changes());
    let chunks = stream::unfold(state, move |(sent, mut changes)| {
        let (store, namespace, pod) = (store.clone(), namespace.clone(), pod.clone());
        async move {
            loop {
                changes.borrow_and_update();
                // The phase first: a pod's last lines are in its log before it ends.
                let phase =
                    store.get(&Key::new("pods", &namespace, &pod))?["status"]["phase"].clone();
                let text = store.log(&namespace, &pod)?;
                if text.len() > sent {
                    let chunk = Ok::<_, std::io::Error>(Bytes::from(text[sent..].to_string()));
                    return Some((chunk, (text.len(), changes)));
                }
                if phase == "Succeeded" || phase == "Failed" {
                    return None;
                }
                changes.changed().await.ok()?;
            }
        }
    });
    Response::builder()
        .header("content-type", "text/plain")
        .body(Body::from_stream(chunks))
        .unwrap_or_default()
}

/// A watch: the events after `since` (everything as ADDED without it), one JSON per line,
/// until `timeout`.
fn watch_response(
    store: Arc<Store>,
    resource: &'static str,
    namespace: Option<String>,
    selector: Selector,
    since: Option<u64>,
    timeout: Duration,
) -> Response {
    let (initial, seen) = match since {
        Some(version) if version > 0 => (Vec::new(), version),
        _ => {
            let (items, version) =
                store.list_with_version(resource, namespace.as_deref(), &selector);
            let added = items
                .into_iter()
                .map(|object| json!({"type": "ADDED", "object": object}))
                .collect();
            (added, version)
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let state = (
        std::collections::VecDeque::from(initial),
        seen,
        store.changes(),
    );
    let lines = stream::unfold(state, move |(mut pending, mut seen, mut changes)| {
        let store = store.clone();
        let namespace = namespace.clone();
        let selector = selector.clone();
        async move {
            loop {
                if let Some(event) = pending.pop_front() {
                    let mut line = serde_json::to_vec(&event).unwrap_or_default();
                    line.push(b'\n');
                    let chunk = Ok::<_, std::io::Error>(Bytes::from(line));
                    return Some((chunk, (pending, seen, changes)));
                }
                // Marked before looking, so a change made meanwhile wakes the wait below.
                changes.borrow_and_update();
                let events = store.events_after(seen, resource, namespace.as_deref(), &selector);
                if let Some((version, _)) = events.last() {
                    seen = *version;
                    pending.extend(events.into_iter().map(|(_, event)| event));
                    continue;
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return None },
                    _ = tokio::time::sleep_until(deadline) => return None,
                }
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(lines))
        .unwrap_or_default()
}
