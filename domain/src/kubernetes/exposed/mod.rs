//! Exposed services on Kubernetes. Their objects ([`objects`]) are applied on every save of
//! the service and deleted with it. The lifecycle is upstream's: `stop` scales the Deployment
//! to 0, keeps the replicas it had in [`objects::PREVIOUS_REPLICAS`] and deletes the
//! autoscaler; `start` gives them back; `restart` changes the pod template's
//! [`objects::RESTARTED_AT`], a rollout. A stopped service stays stopped when saved again.
//! What the platform reads back: the Deployment's state and pods ([`summary`]), their logs,
//! and the Service's address, which the platform's proxy forwards to. A service with
//! `min_scale: 0` rests at 0 replicas: the proxy wakes it ([`Cluster::wake_exposed`]) and
//! records its requests in [`objects::LAST_REQUEST`]; idle long enough, it goes back to 0
//! ([`Cluster::scale_idle_exposed`]). The autoscaler (at least 1) does nothing at 0.

pub mod objects;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service as KubeService};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, LogParams, Patch,
    PatchParams,
};
use model::Timestamp;
use model::service::Service;
use model::services::{DeploymentLogEntry, DeploymentSummary, InstanceView};

use self::objects::{Route, Scale};
use super::ClusterSettings;
use super::cluster::{Cluster, FIELD_MANAGER, delete_if_present, refused, retried};
use super::objects::JOB_CONTAINER;
use model::{AppError, AppResult};

use crate::exposed::RESOURCE_KIND;

/// How often a waking service's readiness is read.
const WAKE_POLL: Duration = Duration::from_millis(250);

impl Cluster {
    /// Makes the service's exposed objects match it: applied when it is exposed, deleted when
    /// it no longer is. A stopped one stays at 0 replicas; a running one keeps the replicas
    /// its autoscaler gave it (at least `min_scale`); `secrets` are its environment secrets,
    /// whose change, like the script's, rolls its pods.
    pub async fn apply_exposed(
        &self,
        service: &Service,
        secrets: &[(String, String)],
    ) -> Result<(), String> {
        let existing = self.exposed_deployment(service).await?;
        if !service.is_exposed() {
            if existing.is_some() {
                self.remove_exposed(service).await?;
            }
            return Ok(());
        }
        let running = Scale::running(service);
        let scale = match &existing {
            Some(existing) => match previous_replicas(existing) {
                Some(previous) => Scale {
                    replicas: 0,
                    previous: Some(previous),
                },
                None => Scale {
                    replicas: replicas_of(existing).max(running.replicas),
                    previous: None,
                },
            },
            None => running,
        };
        let revision = objects::revision(service, secrets);
        self.apply_exposed_objects(service, scale, &revision).await
    }

    async fn apply_exposed_objects(
        &self,
        service: &Service,
        scale: Scale,
        revision: &str,
    ) -> Result<(), String> {
        let ns = self.namespace_of(service);
        let name = &service.name;
        let scripts: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns);
        match objects::script(service, &ns) {
            Some(script) => {
                apply(
                    &scripts,
                    &objects::script_name(name),
                    &script,
                    "save the service's script",
                )
                .await?
            }
            None => {
                delete(
                    &scripts,
                    &objects::script_name(name),
                    "delete the service's script",
                )
                .await?
            }
        }
        let services: Api<KubeService> = Api::namespaced(self.client.clone(), &ns);
        if let Some(front) = objects::service(service, &ns) {
            apply(
                &services,
                &objects::service_name(name),
                &front,
                "apply the service's Service",
            )
            .await?;
        }
        let autoscalers: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), &ns);
        match objects::autoscaler(service, &ns).filter(|_| scale.previous.is_none()) {
            Some(hpa) => {
                apply(
                    &autoscalers,
                    &objects::autoscaler_name(name),
                    &hpa,
                    "apply the service's autoscaler",
                )
                .await?
            }
            None => {
                delete(
                    &autoscalers,
                    &objects::autoscaler_name(name),
                    "delete the service's autoscaler",
                )
                .await?
            }
        }
        self.apply_route(service, &ns).await?;
        // Last: a save refused half-way (a quota, a missing CRD) leaves nothing running.
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
        if let Some(mut deployment) = objects::deployment(service, &ns, scale, revision) {
            if let Some(volume) = model::volumes::ServiceVolume::of(service) {
                let claim = crate::kubernetes::objects::claim_name(
                    self.settings(),
                    &service.owner,
                    &volume.volume_name(&service.name),
                );
                objects::mount_volume(&mut deployment, &claim, &volume.mount_path);
            }
            super::mount::add_to_instances(&mut deployment, service, self.settings());
            apply(
                &deployments,
                &objects::deployment_name(name),
                &deployment,
                "apply the service's Deployment",
            )
            .await?;
        }
        Ok(())
    }

    /// The direct route when the operator configured them: applied, or deleted when the
    /// service may not have one (`set_auth`, a NodePort).
    async fn apply_route(&self, service: &Service, ns: &str) -> Result<(), String> {
        let wanted = self
            .settings()
            .exposed_routes
            .as_ref()
            .and_then(|routes| objects::route(service, ns, routes));
        let name = objects::route_name(&service.name);
        match wanted {
            Some(Route::Http(route)) => {
                apply(
                    &self.http_routes(ns),
                    &name,
                    &route,
                    "apply the service's HTTPRoute",
                )
                .await?;
                self.remove_routes(service, ns, false, true).await
            }
            Some(Route::Ingress(ingress)) => {
                apply(
                    &self.ingresses(ns),
                    &name,
                    &ingress,
                    "apply the service's Ingress",
                )
                .await?;
                self.remove_routes(service, ns, true, false).await
            }
            None => self.remove_routes(service, ns, true, true).await,
        }
    }

    /// Deletes the service's direct routes of either kind, whatever the settings say now (an
    /// earlier setting may have made them; the API's 404 for an absent route, or for routes
    /// of a kind the cluster does not serve, is fine).
    async fn remove_routes(
        &self,
        service: &Service,
        ns: &str,
        http: bool,
        ingress: bool,
    ) -> Result<(), String> {
        let name = objects::route_name(&service.name);
        if http {
            delete(
                &self.http_routes(ns),
                &name,
                "delete the service's HTTPRoute",
            )
            .await?;
        }
        if ingress {
            delete(&self.ingresses(ns), &name, "delete the service's Ingress").await?;
        }
        Ok(())
    }

    fn ingresses(&self, ns: &str) -> Api<Ingress> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn http_routes(&self, ns: &str) -> Api<DynamicObject> {
        let kind = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
        Api::namespaced_with(
            self.client.clone(),
            ns,
            &ApiResource::from_gvk_with_plural(&kind, "httproutes"),
        )
    }

    /// Deletes every exposed object of the service (the Deployment's pods go with it).
    pub async fn remove_exposed(&self, service: &Service) -> Result<(), String> {
        let ns = self.namespace_of(service);
        let name = &service.name;
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
        delete(
            &deployments,
            &objects::deployment_name(name),
            "delete the service's Deployment",
        )
        .await?;
        let services: Api<KubeService> = Api::namespaced(self.client.clone(), &ns);
        delete(
            &services,
            &objects::service_name(name),
            "delete the service's Service",
        )
        .await?;
        let autoscalers: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), &ns);
        delete(
            &autoscalers,
            &objects::autoscaler_name(name),
            "delete the service's autoscaler",
        )
        .await?;
        let scripts: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns);
        delete(
            &scripts,
            &objects::script_name(name),
            "delete the service's script",
        )
        .await?;
        self.remove_routes(service, &ns, true, true).await
    }

    /// Scales the service to 0, keeping the replicas it had for `start`; a stopped one is
    /// left as it is.
    pub async fn stop_exposed(&self, service: &Service) -> Result<(), String> {
        let Some(existing) = self.exposed_deployment(service).await? else {
            return Err(not_deployed(service));
        };
        if previous_replicas(&existing).is_some() {
            return Ok(());
        }
        let scale = Scale {
            replicas: 0,
            previous: Some(replicas_of(&existing).max(1)),
        };
        self.apply_exposed_objects(service, scale, &revision_of(&existing))
            .await
    }

    /// Gives a stopped service the replicas it had (else `min_scale`) and its autoscaler.
    pub async fn start_exposed(&self, service: &Service) -> Result<(), String> {
        let Some(existing) = self.exposed_deployment(service).await? else {
            return Err(not_deployed(service));
        };
        let scale = match previous_replicas(&existing) {
            Some(previous) => Scale {
                replicas: previous,
                previous: None,
            },
            None => return Ok(()),
        };
        self.apply_exposed_objects(service, scale, &revision_of(&existing))
            .await
    }

    /// Replaces the service's pods by new ones (a rollout), as `kubectl rollout restart`.
    pub async fn restart_exposed(&self, service: &Service) -> Result<(), String> {
        let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
            objects::RESTARTED_AT: Timestamp::now().rfc3339()}}}}});
        self.patch_exposed(service, patch, "restart the service's Deployment")
            .await
    }

    /// Starts a service resting at 0 replicas and waits, up to `within`, until an instance
    /// is ready. A stopped service stays stopped.
    pub async fn wake_exposed(&self, service: &Service, within: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let deployment = self
                .exposed_deployment(service)
                .await?
                .ok_or_else(|| not_deployed(service))?;
            if previous_replicas(&deployment).is_some() {
                return Err(format!("the service {} is stopped", service.name));
            }
            if serves(&deployment) {
                return Ok(());
            }
            if replicas_of(&deployment) == 0 {
                self.patch_exposed(service, serde_json::json!({
                    "metadata": {"annotations": {objects::LAST_REQUEST: Timestamp::now().rfc3339()}},
                    "spec": {"replicas": 1},
                }), "start the service").await?;
                tracing::info!(service = %service.name, "exposed service woken by a request");
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "no instance of {} became ready within {}s",
                    service.name,
                    within.as_secs()
                ));
            }
            tokio::time::sleep(WAKE_POLL).await;
        }
    }

    /// Records that the service has just been used (every server reads it before idling it).
    pub async fn mark_exposed_used(&self, service: &Service) -> Result<(), String> {
        let patch = serde_json::json!({"metadata": {"annotations": {
            objects::LAST_REQUEST: Timestamp::now().rfc3339()}}});
        self.patch_exposed(service, patch, "record the service's use")
            .await
    }

    /// Scales a running service to 0 when no server recorded a request for `idle_after`
    /// (since it was made, before any); true when it did.
    pub async fn scale_idle_exposed(
        &self,
        service: &Service,
        idle_after: Duration,
    ) -> Result<bool, String> {
        let Some(deployment) = self.exposed_deployment(service).await? else {
            return Ok(false);
        };
        let replicas = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        if replicas == 0 || previous_replicas(&deployment).is_some() {
            return Ok(false);
        }
        self.scale_down_idle(service, &deployment, 0, idle_after)
            .await
    }

    /// Scales `deployment` of `service` down to `to` replicas when no server recorded a
    /// request ([`objects::LAST_REQUEST`]) for `idle_after` (since it was made, before any);
    /// true when it did.
    pub(super) async fn scale_down_idle(
        &self,
        service: &Service,
        deployment: &Deployment,
        to: i32,
        idle_after: Duration,
    ) -> Result<bool, String> {
        let annotations = deployment.metadata.annotations.clone().unwrap_or_default();
        let last = annotations
            .get(objects::LAST_REQUEST)
            .and_then(|at| Timestamp::parse_rfc3339(at))
            .or_else(|| {
                let made = deployment.metadata.creation_timestamp.as_ref()?;
                Timestamp::parse_rfc3339(&made.0.to_string())
            });
        if last.is_some_and(|at| at > Timestamp::now() - idle_after) {
            return Ok(false);
        }
        // Only the Deployment as read: a wake by another server in between wins (409).
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": deployment.metadata.resource_version},
            "spec": {"replicas": to},
        });
        let deployments: Api<Deployment> =
            Api::namespaced(self.client.clone(), &self.namespace_of(service));
        let name = deployment.metadata.name.clone().unwrap_or_default();
        match deployments
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 || status.is_not_found() => {
                return Ok(false);
            }
            Err(err) => return Err(refused("scale the idle service down", err)),
        }
        Ok(true)
    }

    async fn patch_exposed(
        &self,
        service: &Service,
        patch: serde_json::Value,
        what: &str,
    ) -> Result<(), String> {
        let deployments: Api<Deployment> =
            Api::namespaced(self.client.clone(), &self.namespace_of(service));
        let name = objects::deployment_name(&service.name);
        let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
        match retried(|| deployments.patch(&name, &params, &patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.is_not_found() => Err(not_deployed(service)),
            Err(err) => Err(refused(what, err)),
        }
    }

    async fn exposed_deployment(&self, service: &Service) -> Result<Option<Deployment>, String> {
        let deployments: Api<Deployment> =
            Api::namespaced(self.client.clone(), &self.namespace_of(service));
        let name = objects::deployment_name(&service.name);
        retried(|| deployments.get_opt(&name))
            .await
            .map_err(|e| refused("read the service's Deployment", e))
    }

    /// The service's Deployment (None before it is made) and its pods.
    pub async fn exposed_state(
        &self,
        service: &Service,
    ) -> Result<(Option<Deployment>, Vec<Pod>), String> {
        let deployment = self.exposed_deployment(service).await?;
        let pods = self.exposed_pods(service).await?;
        Ok((deployment, pods))
    }

    async fn exposed_pods(&self, service: &Service) -> Result<Vec<Pod>, String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace_of(service));
        let params = ListParams::default().labels(&objects::selector_query(service));
        let mut listed = retried(|| pods.list(&params))
            .await
            .map_err(|e| refused("list the service's pods", e))?
            .items;
        listed.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        Ok(listed)
    }

    /// The last `tail` lines of the service's pods, oldest first, each with the time the
    /// cluster gave it (the lines of every pod, interleaved in time).
    pub async fn exposed_logs(
        &self,
        service: &Service,
        tail: usize,
    ) -> Result<Vec<(String, String)>, String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace_of(service));
        let params = LogParams {
            container: Some(JOB_CONTAINER.into()),
            tail_lines: Some(i64::try_from(tail).unwrap_or(i64::MAX)),
            timestamps: true,
            ..Default::default()
        };
        let mut lines = Vec::new();
        for pod in self.exposed_pods(service).await? {
            let Some(name) = pod.metadata.name else {
                continue;
            };
            match retried(|| pods.logs(&name, &params)).await {
                Ok(text) => lines.extend(text.lines().map(|line| {
                    let (at, message) = line.split_once(' ').unwrap_or(("", line));
                    (at.to_string(), message.to_string())
                })),
                // A pod still pulling its image has no log yet.
                Err(kube::Error::Api(status)) if status.code == 400 || status.is_not_found() => {}
                Err(err) => return Err(refused("read the service's log", err)),
            }
        }
        // By time, not text: the API trims the fractions of seconds' trailing zeros.
        lines.sort_by_key(|(at, _)| Timestamp::parse_rfc3339(at));
        Ok(lines.split_off(lines.len().saturating_sub(tail)))
    }

    /// Where the service's Service answers inside the cluster: its cluster IP and first port.
    pub async fn exposed_address(&self, service: &Service) -> Result<SocketAddr, String> {
        let services: Api<KubeService> =
            Api::namespaced(self.client.clone(), &self.namespace_of(service));
        let name = objects::service_name(&service.name);
        let found = retried(|| services.get_opt(&name))
            .await
            .map_err(|e| refused("read the service's Service", e))?
            .ok_or_else(|| not_deployed(service))?;
        let spec = found.spec.unwrap_or_default();
        let ip = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let port = spec.ports.unwrap_or_default().first().map(|p| p.port);
        match (ip, port.and_then(|p| u16::try_from(p).ok())) {
            (Some(ip), Some(port)) => Ok(SocketAddr::new(ip, port)),
            _ => Err(format!("the Service {name} has no cluster address yet")),
        }
    }
}

fn not_deployed(service: &Service) -> String {
    format!(
        "the service {} has no Deployment on the cluster yet",
        service.name
    )
}

fn replicas_of(deployment: &Deployment) -> i32 {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
}

/// Whether a ready pod answers for a Deployment meant to run. Its status lags its spec:
/// pods still terminating after a scale to 0 count as ready until the controller has seen
/// the change.
fn serves(deployment: &Deployment) -> bool {
    let status = deployment.status.clone().unwrap_or_default();
    replicas_of(deployment) > 0
        && status.observed_generation >= deployment.metadata.generation
        && status.ready_replicas.unwrap_or(0) > 0
}

/// The [`objects::REVISION`] the Deployment's pods were made with (kept by stop and start,
/// which change neither script nor secrets).
fn revision_of(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(objects::REVISION))
        .cloned()
        .unwrap_or_default()
}

/// What Kubernetes mode refuses of an exposed service, with the field to fix: a name a
/// Service cannot have, and a NodePort, which reaches the pods without the platform's proxy
/// (so never with `set_auth`, and only where the operator allows NodePorts).
pub fn check(service: &Service, settings: &ClusterSettings) -> AppResult<()> {
    let Some(expose) = service.expose.as_ref().filter(|_| service.is_exposed()) else {
        return Ok(());
    };
    if !service.name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(AppError::bad_request(
            "name",
            "an exposed service's name must start with a letter on Kubernetes (its Service is named after it)",
        ));
    }
    if expose.node_port != 0 && expose.set_auth {
        return Err(AppError::bad_request(
            "expose.nodePort",
            "a NodePort reaches the pods without set_auth's check: use one or the other",
        ));
    }
    if expose.node_port != 0 && !settings.allow_node_ports {
        return Err(AppError::bad_request(
            "expose.nodePort",
            "NodePorts are not allowed on this platform (OSCAR_KUBE_ALLOW_NODE_PORTS): the platform serves the service at /system/services/<name>/exposed/",
        ));
    }
    Ok(())
}

/// The replicas `stop` kept, when the Deployment is stopped.
fn previous_replicas(deployment: &Deployment) -> Option<i32> {
    deployment
        .metadata
        .annotations
        .as_ref()?
        .get(objects::PREVIOUS_REPLICAS)?
        .parse()
        .ok()
}

pub(super) async fn apply<K, P>(
    api: &Api<K>,
    name: &str,
    object: &P,
    what: &str,
) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    P: serde::Serialize + std::fmt::Debug,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(object);
    retried(|| api.patch(name, &params, &patch))
        .await
        .map(|_| ())
        .map_err(|e| refused(what, e))
}

pub(super) async fn delete<K>(api: &Api<K>, name: &str, what: &str) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    delete_if_present(api, name, &DeleteParams::background(), what).await
}

/// Whether a pod is ready to take requests.
fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|all| all.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Container states after which a pod will not become ready by itself.
const BROKEN: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// The deployment as `/system/services/<name>/deployment` reports it, from the Deployment
/// and its pods: stopped, pending (being made, pods starting), failed (no pod ready and one
/// that will not become so, or the rollout's deadline passed), degraded (fewer ready than
/// asked) or ready.
pub fn summary(deployment: Option<&Deployment>, pods: &[Pod]) -> DeploymentSummary {
    let summary =
        |state: &str, reason: String, since: Option<String>, active, affected| DeploymentSummary {
            state: state.into(),
            reason,
            last_transition_time: since,
            active_instances: active,
            affected_instances: affected,
            resource_kind: RESOURCE_KIND.into(),
        };
    let Some(deployment) = deployment else {
        return summary("pending", "being deployed".into(), None, 0, 0);
    };
    let status = deployment.status.clone().unwrap_or_default();
    let conditions = status.conditions.unwrap_or_default();
    let since = conditions
        .iter()
        .filter_map(|c| c.last_transition_time.as_ref())
        .max_by_key(|t| t.0)
        .map(|t| t.0.to_string());
    if previous_replicas(deployment).is_some() {
        return summary(
            "stopped",
            "stopped: start it to run it again".into(),
            since,
            0,
            0,
        );
    }
    let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let affected = pods.len() as i64 - ready;
    let wanted = i64::from(
        deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1),
    );
    if wanted == 0 && pods.is_empty() {
        let reason = "no instance runs: the first request starts one".to_string();
        return summary("ready", reason, since, 0, 0);
    }
    let broken = pods.iter().find_map(|pod| {
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        statuses.iter().find_map(|s| {
            let waiting = s.state.as_ref()?.waiting.as_ref()?;
            let reason = waiting.reason.as_deref().filter(|r| BROKEN.contains(r))?;
            Some(format!(
                "{}: {reason}: {}",
                pod.metadata.name.as_deref().unwrap_or("a pod"),
                waiting.message.as_deref().unwrap_or_default()
            ))
        })
    });
    let deadline = conditions
        .iter()
        .find(|c| c.type_ == "Progressing" && c.status == "False")
        .map(|c| {
            c.message
                .clone()
                .unwrap_or_else(|| "the rollout did not progress".into())
        });
    match (ready, broken.or(deadline)) {
        (0, Some(reason)) => summary("failed", reason, since, ready, affected),
        (0, None) => summary(
            "pending",
            "starting: no instance is ready yet".into(),
            since,
            ready,
            affected,
        ),
        (_, Some(reason)) => summary("degraded", reason, since, ready, affected),
        (_, None) if ready < wanted => summary(
            "degraded",
            format!("{ready} of {wanted} instances ready"),
            since,
            ready,
            affected,
        ),
        _ => summary("ready", String::new(), since, ready, affected),
    }
}

/// The pods as the service's page lists instances.
pub fn instances(pods: &[Pod]) -> Vec<InstanceView> {
    pods.iter()
        .enumerate()
        .map(|(i, pod)| InstanceView {
            id: i as u32 + 1,
            ready: is_ready(pod),
            in_flight: 0,
        })
        .collect()
}

/// How many times the pods' containers were started again.
pub fn restarts(pods: &[Pod]) -> u32 {
    pods.iter()
        .filter_map(|pod| pod.status.as_ref()?.container_statuses.as_ref())
        .flatten()
        .map(|s| u32::try_from(s.restart_count).unwrap_or(0))
        .sum()
}

/// Log lines as `/deployment/logs` returns them.
pub fn log_entries(lines: Vec<(String, String)>, timestamps: bool) -> Vec<DeploymentLogEntry> {
    lines
        .into_iter()
        .map(|(at, message)| DeploymentLogEntry {
            timestamp: timestamps.then_some(at),
            message,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(replicas: i32, annotations: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web-dlp", "annotations": annotations},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": {"conditions": [{"type": "Available", "status": "True",
                "lastTransitionTime": "2026-12-06T10:00:00Z"}]},
        }))
        .unwrap()
    }

    fn pod(ready: bool, waiting: Option<&str>, restarts: i32) -> Pod {
        let state = match waiting {
            Some(reason) => json!({"waiting": {"reason": reason, "message": "back-off 10s"}}),
            None => json!({"running": {}}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": "web-dlp-abc"},
            "status": {
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                "containerStatuses": [{"name": "oscar-container", "image": "web", "imageID": "",
                    "ready": ready, "restartCount": restarts, "state": state}],
            },
        }))
        .unwrap()
    }

    #[test]
    fn only_a_deployment_meant_to_run_whose_status_is_current_serves() {
        let with = |replicas: i32, generation: i64, observed: i64, ready: i32| {
            let mut d = deployment(replicas, json!({}));
            d.metadata.generation = Some(generation);
            let status = d.status.get_or_insert_with(Default::default);
            (status.observed_generation, status.ready_replicas) = (Some(observed), Some(ready));
            serves(&d)
        };
        assert!(with(1, 2, 2, 1));
        assert!(!with(1, 2, 2, 0), "none ready");
        // Scaled to 0, its pod still terminating: a request must wake it, not use that pod.
        assert!(!with(0, 3, 3, 1));
        assert!(
            !with(1, 3, 2, 1),
            "woken, the controller has not seen it yet"
        );
    }

    #[test]
    fn the_state_follows_the_deployment_and_its_pods() {
        let running = deployment(2, json!({}));
        let state = |d: Option<&Deployment>, pods: &[Pod]| {
            let s = summary(d, pods);
            (s.state, s.reason, s.active_instances, s.affected_instances)
        };
        assert_eq!(state(None, &[]).0, "pending");
        let both = [pod(true, None, 0), pod(true, None, 0)];
        assert_eq!(
            state(Some(&running), &both),
            ("ready".into(), String::new(), 2, 0)
        );
        let one = [pod(true, None, 0), pod(false, None, 0)];
        assert_eq!(
            state(Some(&running), &one),
            ("degraded".into(), "1 of 2 instances ready".into(), 1, 1)
        );
        let crashing = [pod(false, Some("CrashLoopBackOff"), 4)];
        let (kind, reason, ..) = state(Some(&running), &crashing);
        assert_eq!(kind, "failed");
        assert!(
            reason.contains("CrashLoopBackOff: back-off 10s"),
            "{reason}"
        );
        assert_eq!(restarts(&crashing), 4);
        let starting = [pod(false, Some("ContainerCreating"), 0)];
        assert_eq!(state(Some(&running), &starting).0, "pending");
        let stopped = deployment(0, json!({objects::PREVIOUS_REPLICAS: "2"}));
        assert_eq!(state(Some(&stopped), &[]).0, "stopped");
        let resting = deployment(0, json!({}));
        let (kind, reason, ..) = state(Some(&resting), &[]);
        assert_eq!(
            (kind.as_str(), reason.as_str()),
            ("ready", "no instance runs: the first request starts one")
        );
        assert_eq!(
            summary(Some(&running), &both)
                .last_transition_time
                .as_deref(),
            Some("2026-12-06T10:00:00Z")
        );
        assert_eq!(
            instances(&one).iter().map(|i| i.ready).collect::<Vec<_>>(),
            [true, false]
        );
    }

    #[test]
    fn names_services_cannot_have_and_node_ports_are_refused_with_their_field() {
        let settings = |allow_node_ports| ClusterSettings {
            allow_node_ports,
            ..crate::kubernetes::objects::tests::settings(crate::kubernetes::Namespacing::Shared)
        };
        let service = |name: &str, expose: serde_json::Value| {
            Service::from_json(
                json!({"name": name, "image": "nginx", "script": "x", "expose": expose}),
            )
            .unwrap()
        };
        let field = |s: &Service, allow| match check(s, &settings(allow)) {
            Err(AppError::BadRequest { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert!(check(&service("web", json!({"api_port": 80})), &settings(false)).is_ok());
        assert_eq!(
            field(&service("1web", json!({"api_port": 80})), true),
            "name"
        );
        let node = service("web", json!({"api_port": 80, "nodePort": 30080}));
        assert_eq!(field(&node, false), "expose.nodePort");
        assert!(check(&node, &settings(true)).is_ok());
        let guarded = service(
            "web",
            json!({"api_port": 80, "nodePort": 30080, "set_auth": true}),
        );
        assert_eq!(field(&guarded, true), "expose.nodePort");
        // Not exposed: nothing to refuse.
        assert!(check(&service("1job", json!({})), &settings(false)).is_ok());
    }
}
