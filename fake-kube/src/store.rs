//! The fake's objects, their change history (what watches replay) and pod logs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::watch;

/// Resource (plural), namespace ("" for cluster-scoped), name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(resource: &str, namespace: &str, name: &str) -> Self {
        Self {
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// An equality-based label selector (`a=b,c!=d,e,!f`), as kube sends them.
#[derive(Debug, Clone, Default)]
pub struct Selector(Vec<(String, Requirement)>);

#[derive(Debug, Clone)]
enum Requirement {
    Equals(String),
    Differs(String),
    Exists,
    Absent,
}

impl Selector {
    pub fn parse(text: &str) -> Self {
        Self(
            text.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|term| {
                    if let Some((k, v)) = term.split_once("!=") {
                        (k.to_string(), Requirement::Differs(v.to_string()))
                    } else if let Some((k, v)) = term.split_once("==").or(term.split_once('=')) {
                        (k.to_string(), Requirement::Equals(v.to_string()))
                    } else if let Some(k) = term.strip_prefix('!') {
                        (k.to_string(), Requirement::Absent)
                    } else {
                        (term.to_string(), Requirement::Exists)
                    }
                })
                .collect(),
        )
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        self.0.iter().all(|(key, requirement)| {
            let value = labels[key].as_str();
            match requirement {
                Requirement::Equals(v) => value == Some(v.as_str()),
                Requirement::Differs(v) => value != Some(v.as_str()),
                Requirement::Exists => value.is_some(),
                Requirement::Absent => value.is_none(),
            }
        })
    }
}

#[derive(Default)]
struct Inner {
    version: u64,
    objects: BTreeMap<Key, Value>,
    /// (version, key, watch event), oldest first.
    history: Vec<(u64, Key, Value)>,
    /// Each pod's lines, with when they were printed (RFC 3339).
    logs: HashMap<(String, String), Vec<(String, String)>>,
    requests: Vec<String>,
}

pub struct Store {
    inner: Mutex<Inner>,
    changes: watch::Sender<u64>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            changes: watch::Sender::new(0),
        }
    }
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn record(&self, request: String) {
        self.lock().requests.push(request);
    }

    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    pub fn get(&self, key: &Key) -> Option<Value> {
        self.lock().objects.get(key).cloned()
    }

    pub fn list(&self, resource: &str, namespace: Option<&str>, selector: &Selector) -> Vec<Value> {
        self.list_with_version(resource, namespace, selector).0
    }

    pub fn list_with_version(
        &self,
        resource: &str,
        namespace: Option<&str>,
        selector: &Selector,
    ) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|(key, object)| {
                key.resource == resource
                    && namespace.is_none_or(|ns| key.namespace == ns)
                    && selector.matches(object)
            })
            .map(|(_, object)| object.clone())
            .collect();
        (items, inner.version)
    }

    /// The watch events after `version` for these objects, with their versions.
    pub fn events_after(
        &self,
        version: u64,
        resource: &str,
        namespace: Option<&str>,
        selector: &Selector,
    ) -> Vec<(u64, Value)> {
        let inner = self.lock();
        let start = inner.history.partition_point(|(v, _, _)| *v <= version);
        inner.history[start..]
            .iter()
            .filter(|(_, key, event)| {
                key.resource == resource
                    && namespace.is_none_or(|ns| key.namespace == ns)
                    && selector.matches(&event["object"])
            })
            .map(|(v, _, event)| (*v, event.clone()))
            .collect()
    }

    /// Stores `object` as the new state of `key` and records the event.
    fn save(&self, inner: &mut Inner, key: Key, mut object: Value, kind: &str) -> Value {
        inner.version += 1;
        let version = inner.version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        inner.history.push((
            version,
            key.clone(),
            json!({"type": kind, "object": object.clone()}),
        ));
        if kind == "DELETED" {
            inner.objects.remove(&key);
        } else {
            inner.objects.insert(key, object.clone());
        }
        self.changes.send_replace(version);
        object
    }

    /// Creates an object; `Err(name)` when it exists.
    pub fn create(
        &self,
        resource: &str,
        api_version: &str,
        kind: &str,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, String> {
        let name = match object["metadata"]["name"].as_str() {
            Some(name) => name.to_string(),
            None => {
                let prefix = object["metadata"]["generateName"].as_str().unwrap_or("x-");
                let name = format!("{prefix}{}", random_suffix());
                object["metadata"]["name"] = json!(name);
                name
            }
        };
        let key = Key::new(resource, namespace, &name);
        let mut inner = self.lock();
        if inner.objects.contains_key(&key) {
            return Err(name);
        }
        prepare(&mut object, api_version, kind, namespace);
        object["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        Ok(self.save(&mut inner, key, object, "ADDED"))
    }

    /// Server-side apply, simplified: the object sent is the whole desired state.
    pub fn upsert(
        &self,
        resource: &str,
        api_version: &str,
        kind: &str,
        namespace: &str,
        mut object: Value,
    ) -> (Value, bool) {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = Key::new(resource, namespace, &name);
        let mut inner = self.lock();
        prepare(&mut object, api_version, kind, namespace);
        let existing = inner.objects.get(&key).cloned();
        let created = existing.is_none();
        let existing_status = existing.as_ref().and_then(|old| old.get("status").cloned());
        object["metadata"]["uid"] = match existing {
            Some(old) => old["metadata"]["uid"].clone(),
            None => json!(uuid::Uuid::new_v4().to_string()),
        };
        let event = if created { "ADDED" } else { "MODIFIED" };
        // Apply sets what the client manages; the status stays the cluster's.
        if let Some(status) = existing_status.filter(|_| object.get("status").is_none()) {
            object["status"] = status;
        }
        (self.save(&mut inner, key, object, event), created)
    }

    /// A JSON merge patch (RFC 7386) of a stored object; None when there is none.
    pub fn merge(&self, key: &Key, patch: &Value) -> Option<Value> {
        let mut inner = self.lock();
        let mut object = inner.objects.get(key)?.clone();
        merge(&mut object, patch);
        Some(self.save(&mut inner, key.clone(), object, "MODIFIED"))
    }

    /// Changes a stored object (status updates by the kubelet); false when it is gone.
    pub fn update(&self, key: &Key, change: impl FnOnce(&mut Value)) -> bool {
        let mut inner = self.lock();
        let Some(mut object) = inner.objects.get(key).cloned() else {
            return false;
        };
        change(&mut object);
        self.save(&mut inner, key.clone(), object, "MODIFIED");
        true
    }

    /// Deletes an object and, as the garbage collector would, what it owns.
    pub fn delete(&self, key: &Key) -> Option<Value> {
        let mut inner = self.lock();
        self.delete_locked(&mut inner, key)
    }

    fn delete_locked(&self, inner: &mut Inner, key: &Key) -> Option<Value> {
        let object = inner.objects.get(key)?.clone();
        let deleted = self.save(inner, key.clone(), object, "DELETED");
        let uid = deleted["metadata"]["uid"].clone();
        let owned: Vec<Key> = inner
            .objects
            .iter()
            .filter(|(k, o)| {
                k.namespace == key.namespace
                    && o["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in owned {
            self.delete_locked(inner, &key);
        }
        Some(deleted)
    }

    pub fn delete_matching(
        &self,
        resource: &str,
        namespace: &str,
        selector: &Selector,
    ) -> Vec<Value> {
        let mut inner = self.lock();
        let keys: Vec<Key> = inner
            .objects
            .iter()
            .filter(|(k, o)| {
                k.resource == resource && k.namespace == namespace && selector.matches(o)
            })
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter()
            .filter_map(|key| self.delete_locked(&mut inner, key))
            .collect()
    }

    pub fn append_log(&self, namespace: &str, pod: &str, line: &str) {
        let mut inner = self.lock();
        let log = inner
            .logs
            .entry((namespace.to_string(), pod.to_string()))
            .or_default();
        log.push((
            k8s_openapi::jiff::Timestamp::now().to_string(),
            line.to_string(),
        ));
        drop(inner);
        // Wakes followers of the log (the version is unchanged: no object changed).
        self.changes.send_modify(|_| {});
    }

    /// A pod's log; none once the pod is gone, as on a cluster.
    pub fn log(&self, namespace: &str, pod: &str) -> Option<String> {
        self.log_with(namespace, pod, false, usize::MAX)
    }

    /// The pod's log as the API serves it: its last `tail` lines, each after its time when
    /// `timestamps`.
    pub fn log_with(
        &self,
        namespace: &str,
        pod: &str,
        timestamps: bool,
        tail: usize,
    ) -> Option<String> {
        let inner = self.lock();
        inner.objects.get(&Key::new("pods", namespace, pod))?;
        let lines = inner
            .logs
            .get(&(namespace.to_string(), pod.to_string()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut text = String::new();
        for (at, line) in &lines[lines.len().saturating_sub(tail)..] {
            if timestamps {
                text.push_str(at);
                text.push(' ');
            }
            text.push_str(line);
            text.push('\n');
        }
        Some(text)
    }
}

/// What the API server fills in on write: type, namespace, and Secret `stringData` folded
/// into base64 `data`.
fn prepare(object: &mut Value, api_version: &str, kind: &str, namespace: &str) {
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    if !namespace.is_empty() {
        object["metadata"]["namespace"] = json!(namespace);
    }
    // Every Service answers on loopback, where the fake kubelet's processes listen.
    if kind == "Service" && object["spec"]["clusterIP"].is_null() {
        object["spec"]["clusterIP"] = json!("127.0.0.1");
    }
    if kind == "Secret"
        && let Some(Value::Object(strings)) =
            object.as_object_mut().and_then(|o| o.remove("stringData"))
    {
        for (key, value) in strings {
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(value.as_str().unwrap_or_default());
            object["data"][key] = json!(encoded);
        }
    }
}

fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (key, value) in changes {
        if value.is_null() {
            target.as_object_mut().map(|o| o.remove(key));
        } else {
            merge(&mut target[key], value);
        }
    }
}

pub fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}
