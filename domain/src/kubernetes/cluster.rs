//! The Kubernetes calls of the executor, with retries: conflicts, throttling and server
//! errors are retried with backoff; anything else ends the job with the API's reason.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, LogParams, Patch,
    PatchParams, PostParams,
};

use super::objects;
use super::{ClusterSettings, Namespacing};
use crate::jobs::executor::Execution;
use model::service::Service;
use model::{AppError, AppResult};

/// Who the platform's server-side applies are recorded as.
pub(super) const FIELD_MANAGER: &str = "oscar";
/// Attempts per call, and the first wait (doubled each time).
const ATTEMPTS: u32 = 5;
const FIRST_WAIT: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Cluster {
    pub(super) client: kube::Client,
    settings: ClusterSettings,
}

impl Cluster {
    pub fn new(client: kube::Client, settings: ClusterSettings) -> Self {
        Self { client, settings }
    }

    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    pub fn namespace_of(&self, service: &Service) -> String {
        objects::namespace_of(&self.settings, &service.owner)
    }

    /// Starts an execution: its Job, then the Job's Secret owned by it (the pod waits for
    /// the Secret to mount). Two API round trips. A Job left by an earlier attempt (a server
    /// restart) is reattached while it runs; one that already ended is replaced, so this
    /// attempt really runs.
    pub async fn submit(&self, service: &Service, execution: &Execution) -> Result<(), String> {
        let namespace = self.namespace_of(service);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &namespace);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        let create = PostParams::default();
        let job = objects::job(service, execution, &self.settings, &namespace);
        let mut replaced = false;
        let mut waits = 0;
        let created = loop {
            match retried(|| jobs.create(&create, &job)).await {
                Ok(created) => break created,
                Err(err) if already_exists(&err) => {
                    let existing = retried(|| jobs.get(&execution.job))
                        .await
                        .map_err(|e| refused("read the job", e))?;
                    if !ended(&existing) {
                        break existing;
                    }
                    if replaced {
                        // Still being deleted: give the cluster a moment.
                        waits += 1;
                        if waits > 50 {
                            return Err(
                                "the Job of an earlier attempt is still being deleted".into()
                            );
                        }
                        tokio::time::sleep(FIRST_WAIT).await;
                        continue;
                    }
                    // Its Secret too: the new Job's pod must not mount the old one.
                    self.remove_job(&namespace, &execution.job).await?;
                    let what = "delete the job's old Secret";
                    delete_if_present(&secrets, &execution.job, &DeleteParams::default(), what)
                        .await?;
                    replaced = true;
                }
                Err(err) => return Err(refused("create the job", err)),
            }
        };
        let uid = created
            .metadata
            .uid
            .ok_or("the cluster answered with a Job without a uid")?;
        let event = execution
            .event
            .read()
            .await
            .map_err(|e| format!("cannot read the job's event: {e}"))?;
        let secret = objects::job_secret(execution, &event, &namespace, &service.name, &uid);
        match retried(|| secrets.create(&create, &secret)).await {
            Ok(_) => Ok(()),
            Err(err) if already_exists(&err) => Ok(()),
            Err(err) => Err(refused("create the job's Secret", err)),
        }
    }
}

/// Whether a Job has run to its end, successfully or not.
fn ended(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|all| {
            all.iter()
                .any(|c| matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True")
        })
}

impl Cluster {
    /// The job's output: the log of its pod's job container.
    pub async fn log(&self, namespace: &str, pod: &str) -> Result<String, String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some(objects::JOB_CONTAINER.into()),
            ..Default::default()
        };
        retried(|| pods.logs(pod, &params))
            .await
            .map_err(|e| refused("read the job's log", e))
    }

    /// The API server's `gitVersion` (e.g. `v1.33.1`).
    pub async fn version(&self) -> Option<String> {
        match self.client.apiserver_version().await {
            Ok(info) => Some(info.git_version),
            Err(err) => {
                tracing::warn!(%err, "the cluster does not tell its version");
                None
            }
        }
    }

    /// The nodes jobs may run on, with what pods request and (from `metrics.k8s.io`, when the
    /// cluster runs metrics-server) use.
    pub async fn nodes(&self) -> Result<Vec<model::system::NodeStatus>, String> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let pods: Api<Pod> = Api::all(self.client.clone());
        let all = ListParams::default();
        let nodes = retried(|| nodes.list(&all))
            .await
            .map_err(|e| refused("list the cluster's nodes", e))?;
        let pods = retried(|| pods.list(&all))
            .await
            .map_err(|e| refused("list the cluster's pods", e))?;
        let usage = self.node_usage().await.unwrap_or_else(|err| {
            // Without metrics-server the nodes still show capacity and requests.
            tracing::warn!(%err, "node metrics are unavailable; use shows as 0");
            Default::default()
        });
        Ok(super::nodes::statuses(&nodes.items, &pods.items, &usage))
    }

    async fn node_usage(&self) -> Result<super::nodes::Usage, kube::Error> {
        let kind = GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "NodeMetrics");
        let metrics: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &ApiResource::from_gvk_with_plural(&kind, "nodes"),
        );
        let listed = metrics.list(&ListParams::default()).await?;
        Ok(listed
            .items
            .into_iter()
            .filter_map(|item| {
                let usage = item.data.get("usage")?;
                let read = |name: &str, scale: f64| {
                    usage
                        .get(name)
                        .and_then(|q| q.as_str())
                        .map_or(0, |q| super::nodes::value(q, scale))
                };
                Some((
                    item.metadata.name?,
                    (read("cpu", 1000.0), read("memory", 1.0)),
                ))
            })
            .collect())
    }

    /// The job's output as it is printed, until its container ends.
    pub async fn follow_log(
        &self,
        namespace: &str,
        pod: &str,
    ) -> Result<impl futures_util::AsyncBufRead + use<>, String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some(objects::JOB_CONTAINER.into()),
            follow: true,
            ..Default::default()
        };
        let reader = retried(|| pods.log_stream(pod, &params))
            .await
            .map_err(|e| refused("follow the job's log", e))?;
        Ok(reader)
    }

    /// The cluster's latest warning about a Job (a quota refusing its pod, an admission
    /// webhook), as `reason: message`. Read only when a job does not start.
    pub async fn job_warning(&self, namespace: &str, job: &str) -> Option<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let params = ListParams::default().fields(&format!(
            "involvedObject.kind=Job,involvedObject.name={job},type=Warning"
        ));
        let listed = retried(|| events.list(&params)).await.ok()?;
        let latest = listed
            .items
            .into_iter()
            .max_by_key(|e| e.last_timestamp.clone().or(e.first_timestamp.clone()))?;
        Some(format!(
            "{}: {}",
            latest.reason.unwrap_or_default(),
            latest.message.unwrap_or_default()
        ))
    }

    /// Deletes a job that will not run, with its pod and Secret.
    pub async fn remove_job(&self, namespace: &str, job: &str) -> Result<(), String> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        delete_if_present(&jobs, job, &DeleteParams::background(), "delete the job").await
    }

    /// Makes the service's namespace (one per user) and keeps its Secret equal to its
    /// `environment.secrets`: applied when there are some, deleted when there are none.
    pub async fn prepare_service(
        &self,
        service: &Service,
        secrets: &[(String, String)],
    ) -> Result<(), String> {
        let namespace = self.namespace_of(service);
        self.make_namespace(&namespace, &service.owner).await?;
        let name = objects::service_secret_name(&service.name);
        self.keep_secret(service, &name, secrets).await
    }

    /// Keeps the Secret its instances' mount sidecars read the service's `mount` from equal to
    /// `entries` ([`super::mount::secret_entries`]): deleted when there are none.
    pub async fn prepare_instances_mount(
        &self,
        service: &Service,
        entries: &[(String, String)],
    ) -> Result<(), String> {
        let name = super::mount::instances_secret_name(&service.name);
        self.keep_secret(service, &name, entries).await
    }

    /// Applies the service's Secret `name` with `entries`, or deletes it when there are none.
    async fn keep_secret(
        &self,
        service: &Service,
        name: &str,
        entries: &[(String, String)],
    ) -> Result<(), String> {
        let namespace = self.namespace_of(service);
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        if entries.is_empty() {
            let what = "delete the service's Secret";
            return delete_if_present(&api, name, &DeleteParams::default(), what).await;
        }
        let apply = PatchParams::apply(FIELD_MANAGER).force();
        let object = Patch::Apply(objects::service_secret(service, name, &namespace, entries));
        retried(|| api.patch(name, &apply, &object))
            .await
            .map(|_| ())
            .map_err(|e| refused("save the service's Secret", e))
    }

    /// Makes `owner`'s namespace when each user has one, with its NetworkPolicies.
    async fn make_namespace(&self, namespace: &str, owner: &str) -> Result<(), String> {
        if self.settings.namespacing != Namespacing::PerUser || namespace == self.settings.namespace
        {
            return Ok(());
        }
        let apply = PatchParams::apply(FIELD_MANAGER).force();
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let object = Patch::Apply(objects::namespace(&self.settings, namespace, owner));
        retried(|| namespaces.patch(namespace, &apply, &object))
            .await
            .map_err(|e| refused("create the user's namespace", e))?;
        self.confine_pods_in(namespace).await
    }

    /// Where the claim of `owner`'s volume `name` is: the API of its namespace, the namespace,
    /// the claim's name.
    fn claims(&self, owner: &str, name: &str) -> (Api<PersistentVolumeClaim>, String, String) {
        let namespace = objects::namespace_of(&self.settings, owner);
        let api = Api::namespaced(self.client.clone(), &namespace);
        (
            api,
            namespace,
            objects::claim_name(&self.settings, owner, name),
        )
    }

    /// Claims the storage of `owner`'s volume `name` (in their namespace, made if needed).
    pub async fn create_volume(&self, owner: &str, name: &str, bytes: u64) -> Result<(), String> {
        let (api, namespace, claim_name) = self.claims(owner, name);
        self.make_namespace(&namespace, owner).await?;
        let claim = Patch::Apply(objects::volume_claim(&self.settings, owner, name, bytes));
        let apply = PatchParams::apply(FIELD_MANAGER).force();
        retried(|| api.patch(&claim_name, &apply, &claim))
            .await
            .map(|_| ())
            .map_err(|e| refused("claim the volume's storage", e))
    }

    /// Deletes a volume's claim, and with it (per its StorageClass) what it holds.
    pub async fn delete_volume(&self, owner: &str, name: &str) -> Result<(), String> {
        let (api, _, claim_name) = self.claims(owner, name);
        let what = "delete the volume's claim";
        delete_if_present(&api, &claim_name, &DeleteParams::default(), what).await
    }

    /// The claim's phase (`Pending`, `Bound`, `Lost`), `Missing` when there is none.
    pub async fn volume_phase(&self, owner: &str, name: &str) -> (String, String) {
        let (api, namespace, claim_name) = self.claims(owner, name);
        match retried(|| api.get_opt(&claim_name)).await {
            Ok(Some(claim)) => {
                let phase = claim.status.and_then(|s| s.phase).unwrap_or_default();
                let message = match phase.as_str() {
                    "Pending" => "waiting for the cluster to provide the storage".to_string(),
                    _ => String::new(),
                };
                (phase, message)
            }
            Ok(None) => (
                "Missing".into(),
                format!("the claim {claim_name} is not in namespace {namespace}"),
            ),
            Err(e) => ("Unknown".into(), refused("read the volume's claim", e)),
        }
    }

    /// Gives a user's namespace the jobs', exposed services' and workers' NetworkPolicies of the shared
    /// one (applied again at each save, so they follow the operator's changes); one not
    /// there is not copied.
    async fn confine_pods_in(&self, namespace: &str) -> Result<(), String> {
        let shared: Api<NetworkPolicy> =
            Api::namespaced(self.client.clone(), &self.settings.namespace);
        let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), namespace);
        let apply = PatchParams::apply(FIELD_MANAGER).force();
        for name in objects::POLICIES {
            let found = retried(|| shared.get_opt(name))
                .await
                .map_err(|e| refused(&format!("read the NetworkPolicy {name}"), e))?;
            let Some(policy) = found else {
                continue;
            };
            let object = Patch::Apply(objects::policy_in(&policy, namespace));
            retried(|| api.patch(name, &apply, &object))
                .await
                .map_err(|e| refused(&format!("apply the NetworkPolicy {name}"), e))?;
        }
        Ok(())
    }

    /// Refuses `image_pull_secrets` the service's owner may not use: each must be a Secret in
    /// the namespace of its jobs, and one of theirs ([`objects::may_pull_with`]). Only the
    /// Secrets' metadata is read.
    pub async fn check_pull_secrets(&self, service: &Service) -> AppResult<()> {
        let namespace = self.namespace_of(service);
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        for (i, name) in service.image_pull_secrets.iter().enumerate() {
            let field = format!("image_pull_secrets[{i}]");
            let found = retried(|| api.get_metadata_opt(name))
                .await
                .map_err(|e| AppError::Unavailable(refused("read an image pull Secret", e)))?;
            let Some(secret) = found else {
                return Err(AppError::bad_request(
                    field,
                    format!("there is no Secret {name:?} in namespace {namespace:?}"),
                ));
            };
            if !objects::may_pull_with(&secret.metadata, &service.owner) {
                return Err(AppError::bad_request(
                    field,
                    format!(
                        "the Secret {name:?} is not yours: an admin marks it as yours with \
                         `kubectl annotate secret {name} -n {namespace} {}=<your id>`",
                        objects::OWNER_ANNOTATION
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Deletes the service's Jobs (their pods and Secrets go with them) and its Secret.
    pub async fn remove_service(&self, service: &Service) -> Result<(), String> {
        let namespace = self.namespace_of(service);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &namespace);
        let selector = ListParams::default().labels(&format!(
            "{}={},{}={}",
            objects::SERVICE_LABEL,
            service.name,
            objects::MANAGED_LABEL,
            objects::MANAGED_BY
        ));
        let background = DeleteParams::background();
        retried(|| jobs.delete_collection(&background, &selector))
            .await
            .map_err(|e| refused("delete the service's jobs", e))?;
        for name in [
            objects::service_secret_name(&service.name),
            super::mount::instances_secret_name(&service.name),
        ] {
            self.keep_secret(service, &name, &[]).await?;
        }
        Ok(())
    }
}

/// Runs `call` until it succeeds, fails for good, or has been tried [`ATTEMPTS`] times.
pub(super) async fn retried<T, F, Fut>(mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut wait = FIRST_WAIT;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(err) if attempt < ATTEMPTS && transient(&err) => {
                tracing::debug!(%err, attempt, "Kubernetes call failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => {
            status.code == 429
                || status.code >= 500
                || (status.code == 409 && !status.is_already_exists())
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Deletes an object; one already gone is fine.
pub(super) async fn delete_if_present<K>(
    api: &Api<K>,
    name: &str,
    params: &DeleteParams,
    what: &str,
) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match retried(|| api.delete(name, params)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(err) => Err(refused(what, err)),
    }
}

fn already_exists(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.is_already_exists())
}

/// What the user reads when a call fails for good: the API's own message (quota exceeded,
/// invalid name, forbidden) says what to fix.
pub(super) fn refused(what: &str, err: kube::Error) -> String {
    match err {
        kube::Error::Api(status) if !status.message.is_empty() => {
            format!("the cluster refused to {what}: {}", status.message)
        }
        other => format!("cannot {what} on the cluster: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::{Value, json};

    use super::*;
    use crate::jobs::executor::StorageAccess;
    use crate::kubernetes::Namespacing;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn cluster() -> (Cluster, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let settings = ClusterSettings {
            namespace: "oscar-svc".into(),
            namespacing: Namespacing::Shared,
            platform_image: "oscar:test".into(),
            job_ttl: Duration::from_secs(600),
            pending_timeout: Duration::from_secs(300),
            exposed_routes: None,
            allow_node_ports: false,
            storage_class: None,
            volume_limits: Default::default(),
            worker_port: 8080,
            rclone_image: None,
        };
        (
            Cluster::new(kube::Client::new(service, "default"), settings),
            handle,
        )
    }

    fn work() -> (Service, Execution) {
        let service = Service::from_json(json!({"name": "s", "image": "alpine", "script": "true",
            "input": [{"storage_provider": "minio.default", "path": "s/in"}]}))
        .unwrap();
        let storage = StorageAccess {
            endpoint: "http://s3".into(),
            public_endpoint: "http://s3".into(),
            region: "us-east-1".into(),
            access_key: "root".into(),
            secret_key: "root-secret".into(),
            scoped_keys: true,
        };
        let execution = Execution::new(
            "s-1",
            &service,
            &BTreeMap::new(),
            "{}",
            &storage,
            Duration::from_secs(60),
            false,
        );
        (service, execution)
    }

    /// Takes the next request: its method, path and JSON body.
    async fn next(
        handle: &mut Handle,
    ) -> (
        String,
        String,
        Value,
        tower_test::mock::SendResponse<Response<Body>>,
    ) {
        let (request, respond) = handle.next_request().await.expect("a request");
        let method = request.method().to_string();
        let path = request.uri().path().to_string();
        let bytes = http_body_util::BodyExt::collect(request.into_body())
            .await
            .unwrap()
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (method, path, body, respond)
    }

    fn answer(respond: tower_test::mock::SendResponse<Response<Body>>, code: u16, body: Value) {
        let response = Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        respond.send_response(response);
    }

    fn status(code: u16, reason: &str, message: &str) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
               "reason": reason, "message": message})
    }

    #[tokio::test]
    async fn a_submission_is_two_calls_job_then_its_owned_secret() {
        let (cluster, mut handle) = cluster();
        let (service, execution) = work();
        let server = tokio::spawn(async move {
            let (method, path, mut job, respond) = next(&mut handle).await;
            assert_eq!(
                (method.as_str(), path.as_str()),
                ("POST", "/apis/batch/v1/namespaces/oscar-svc/jobs")
            );
            assert_eq!(job["kind"], "Job");
            assert_eq!(job["metadata"]["name"], "s-1");
            job["metadata"]["uid"] = json!("uid-42");
            answer(respond, 201, job);
            let (method, path, secret, respond) = next(&mut handle).await;
            assert_eq!(
                (method.as_str(), path.as_str()),
                ("POST", "/api/v1/namespaces/oscar-svc/secrets")
            );
            assert_eq!(secret["metadata"]["ownerReferences"][0]["uid"], "uid-42");
            assert_eq!(secret["stringData"]["accessKey"], "OSCJ-s-1");
            answer(respond, 201, secret);
            handle
        });
        cluster.submit(&service, &execution).await.unwrap();
        let mut handle = server.await.unwrap();
        // No third call.
        drop(cluster);
        assert!(handle.next_request().await.is_none());
    }

    #[tokio::test]
    async fn throttling_and_server_errors_are_retried_refusals_are_not() {
        let (cluster, mut handle) = cluster();
        let (service, execution) = work();
        let server = tokio::spawn(async move {
            let (_, _, _, respond) = next(&mut handle).await;
            answer(respond, 429, status(429, "TooManyRequests", "slow down"));
            let (_, _, _, respond) = next(&mut handle).await;
            answer(
                respond,
                503,
                status(503, "ServiceUnavailable", "etcd is busy"),
            );
            let (_, _, mut job, respond) = next(&mut handle).await;
            job["metadata"]["uid"] = json!("uid-1");
            answer(respond, 201, job);
            let (_, _, _, respond) = next(&mut handle).await;
            answer(
                respond,
                403,
                status(
                    403,
                    "Forbidden",
                    "exceeded quota: compute-resources, requested: limits.memory=256Mi",
                ),
            );
        });
        let err = cluster.submit(&service, &execution).await.unwrap_err();
        server.await.unwrap();
        assert!(err.contains("exceeded quota: compute-resources"), "{err}");
        assert!(
            err.starts_with("the cluster refused to create the job's Secret"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_users_service_gets_their_namespace_and_a_secret_kept_in_step() {
        let fake = fake_kube::FakeCluster::new();
        let settings = ClusterSettings {
            namespacing: Namespacing::PerUser,
            ..cluster().0.settings
        };
        let cluster = Cluster::new(fake.client(), settings);
        let (mut service, _) = work();
        service.owner = "alice@egi.eu".into();
        let namespace = cluster.namespace_of(&service);
        assert!(namespace.starts_with("oscar-svc-"), "{namespace}");
        let secrets = vec![("TOKEN".to_string(), "one".to_string())];
        // Without the shipped NetworkPolicy in the shared namespace, there is none to copy.
        cluster.prepare_service(&service, &secrets).await.unwrap();
        assert!(fake.list("networkpolicies", None).is_empty());
        let policies: Api<NetworkPolicy> = Api::namespaced(fake.client(), "oscar-svc");
        let shipped: Vec<NetworkPolicy> = [
            include_str!("../../../deploy/kubernetes/base/networkpolicy.yaml"),
            include_str!("../../../deploy/kubernetes/base/networkpolicy-exposed.yaml"),
            include_str!("../../../deploy/kubernetes/base/networkpolicy-workers.yaml"),
            include_str!("../../../deploy/kubernetes/base/networkpolicy-mounts.yaml"),
        ]
        .iter()
        .map(|text| serde_norway::from_str(text).unwrap())
        .collect();
        for policy in &shipped {
            policies
                .create(&PostParams::default(), policy)
                .await
                .unwrap();
        }
        cluster.prepare_service(&service, &secrets).await.unwrap();
        for (name, policy) in objects::POLICIES.iter().zip(&shipped) {
            let copied = fake
                .get("networkpolicies", &namespace, name)
                .expect("her pods are confined");
            assert_eq!(
                copied["spec"],
                serde_json::to_value(policy).unwrap()["spec"]
            );
        }
        let created = fake
            .get("namespaces", "", &namespace)
            .expect("her namespace");
        assert_eq!(
            created["metadata"]["annotations"][objects::OWNER_ANNOTATION],
            "alice@egi.eu"
        );
        let secret = fake
            .get("secrets", &namespace, "s-env")
            .expect("the service's Secret");
        assert_eq!(secret["data"]["TOKEN"], "b25l");
        // An update applies the new values; a service without secrets has no Secret.
        let secrets = vec![("TOKEN".to_string(), "two".to_string())];
        cluster.prepare_service(&service, &secrets).await.unwrap();
        let secret = fake.get("secrets", &namespace, "s-env").unwrap();
        assert_eq!(secret["data"]["TOKEN"], "dHdv");
        cluster.prepare_service(&service, &[]).await.unwrap();
        assert!(fake.get("secrets", &namespace, "s-env").is_none());
        // The admin's services stay in the shared namespace, which is not created.
        let (mut admin_service, _) = work();
        admin_service.owner = crate::access::ADMIN_OWNER.into();
        assert_eq!(cluster.namespace_of(&admin_service), "oscar-svc");
        cluster.prepare_service(&admin_service, &[]).await.unwrap();
        assert_eq!(fake.list("namespaces", None).len(), 1);
    }

    #[tokio::test]
    async fn a_user_may_pull_only_with_secrets_marked_as_theirs() {
        let fake = fake_kube::FakeCluster::new();
        let cluster = Cluster::new(fake.client(), cluster().0.settings);
        let secrets: Api<Secret> = Api::namespaced(fake.client(), "oscar-svc");
        for (name, owner) in [("alice-reg", Some("alice@egi.eu")), ("shared-reg", None)] {
            let mut secret = Secret::default();
            secret.metadata.name = Some(name.into());
            secret.metadata.annotations = owner.map(|owner| {
                BTreeMap::from([(objects::OWNER_ANNOTATION.to_string(), owner.to_string())])
            });
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .unwrap();
        }
        let (base, _) = work();
        let check = |owner: &str, names: &[&str]| {
            let mut service = base.clone();
            service.owner = owner.into();
            service.image_pull_secrets = names.iter().map(|n| n.to_string()).collect();
            let cluster = cluster.clone();
            async move { cluster.check_pull_secrets(&service).await }
        };
        check("alice@egi.eu", &["alice-reg"]).await.unwrap();
        // Bob names Alice's credentials, or ones nobody was given: refused, naming the entry.
        for names in [&["alice-reg"][..], &["shared-reg"], &["missing"]] {
            let err = check("bob@egi.eu", names).await.unwrap_err();
            let AppError::BadRequest { field, message } = err else {
                panic!("{err:?}")
            };
            assert_eq!(field, "image_pull_secrets[0]");
            assert!(!message.is_empty());
        }
        let err = check("bob@egi.eu", &["alice-reg"]).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("kubectl annotate secret alice-reg"),
            "{err}"
        );
        // The admin's services may use any that exists.
        check(crate::access::ADMIN_OWNER, &["shared-reg", "alice-reg"])
            .await
            .unwrap();
        let err = check(crate::access::ADMIN_OWNER, &["shared-reg", "missing"])
            .await
            .unwrap_err();
        assert!(
            matches!(err, AppError::BadRequest { ref field, .. } if field == "image_pull_secrets[1]")
        );
    }

    #[tokio::test]
    async fn a_job_left_by_an_earlier_attempt_is_reused() {
        let (cluster, mut handle) = cluster();
        let (service, execution) = work();
        let server = tokio::spawn(async move {
            let (_, _, mut job, respond) = next(&mut handle).await;
            answer(
                respond,
                409,
                status(409, "AlreadyExists", "jobs.batch \"s-1\" already exists"),
            );
            let (method, path, _, respond) = next(&mut handle).await;
            assert_eq!(
                (method.as_str(), path.as_str()),
                ("GET", "/apis/batch/v1/namespaces/oscar-svc/jobs/s-1")
            );
            job["metadata"]["uid"] = json!("uid-7");
            answer(respond, 200, job);
            let (_, _, secret, respond) = next(&mut handle).await;
            assert_eq!(secret["metadata"]["ownerReferences"][0]["uid"], "uid-7");
            answer(respond, 409, status(409, "AlreadyExists", "exists"));
        });
        cluster.submit(&service, &execution).await.unwrap();
        server.await.unwrap();
    }
}
