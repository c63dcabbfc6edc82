//! The objects of an exposed service (OSCAR's `expose`) on Kubernetes, as pure functions of
//! the service: a Deployment running its image (the image's own command with
//! `default_command`, else the script from a ConfigMap), a Service in front of its pods
//! (NodePort with `nodePort`), a HorizontalPodAutoscaler on `cpu_threshold`, and, when the
//! operator gives exposed services a host of their own, an HTTPRoute or an Ingress at
//! `/system/services/<name>/exposed/`.
//!
//! Without that host the platform's proxy serves the path, as in embedded mode: it checks
//! `set_auth`, keeps the dashboard's session from the app and forwards to the Service. A route
//! straight to the pods is made only for services without `set_auth`: the Gateway API has no
//! standard forward authentication, so a direct route would let anyone through.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvFromSource, HTTPGetAction,
    PodTemplateSpec, Probe, SecretEnvSource, SecurityContext, Service as KubeService, ServicePort,
    ServiceSpec, Volume,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use model::service::Service;
use serde_json::json;

use crate::kubernetes::objects::{
    JOB_CONTAINER, OWNER_ANNOTATION, SERVICE_LABEL, claim_volume, env_var, job_resources, managed,
    mount, pod_of, service_secret_name, services_own,
};
use crate::kubernetes::{ExposedRoutes, RouteKind};

/// Marks an exposed service's pods apart from its jobs' (both carry the service's label).
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const COMPONENT: &str = "exposed";
/// Where `stop` keeps the replicas it took away, for `start` (upstream's annotation).
pub const PREVIOUS_REPLICAS: &str = "oscar.grycap.io/previous-replicas";
/// The pod template's annotation `restart` changes: a rollout of new pods.
pub const RESTARTED_AT: &str = "oscar.grycap.io/restarted-at";
/// The pod template's digest of what reaches the pods outside their spec (the script's
/// ConfigMap, the secrets' Secret): when it changes, so does the template.
pub const REVISION: &str = "oscar.grycap.io/config-revision";
/// When a server last proxied a request to a service with `min_scale: 0` (RFC 3339): every
/// server reads it before scaling the service to zero.
pub const LAST_REQUEST: &str = "oscar.grycap.io/last-request";
/// Upstream's startup probe: 18 tries 10 s apart, the 180 s embedded mode waits too.
const STARTUP_PERIOD: i32 = 10;
const STARTUP_TRIES: i32 = 18;
const SCRIPT_DIR: &str = "/oscar/config";

/// The names of an exposed service's objects.
pub fn deployment_name(service: &str) -> String {
    format!("{service}-dlp")
}

pub fn service_name(service: &str) -> String {
    format!("{service}-svc")
}

pub fn autoscaler_name(service: &str) -> String {
    format!("{service}-hpa")
}

pub fn route_name(service: &str) -> String {
    format!("{service}-route")
}

pub fn script_name(service: &str) -> String {
    format!("{service}-script")
}

/// The labels that select the service's instances.
pub fn selector(service: &Service) -> BTreeMap<String, String> {
    managed([
        (SERVICE_LABEL, service.name.as_str()),
        (COMPONENT_LABEL, COMPONENT),
    ])
}

/// `app.kubernetes.io/…=…,…`: the selector as a label query.
pub fn selector_query(service: &Service) -> String {
    selector(service)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn metadata(service: &Service, name: String, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_string()),
        labels: Some(selector(service)),
        annotations: Some(BTreeMap::from([(
            OWNER_ANNOTATION.to_string(),
            service.owner.clone(),
        )])),
        ..Default::default()
    }
}

/// The ConfigMap holding the script the instances run; None with `default_command` (the
/// image's own command runs).
pub fn script(service: &Service, namespace: &str) -> Option<ConfigMap> {
    let expose = service.expose.as_ref()?;
    (!expose.default_command).then(|| ConfigMap {
        metadata: metadata(service, script_name(&service.name), namespace),
        data: Some(BTreeMap::from([(
            "script.sh".to_string(),
            service.script.clone(),
        )])),
        ..Default::default()
    })
}

/// The [`REVISION`] of a service's script and secrets.
pub fn revision(service: &Service, secrets: &[(String, String)]) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    digest.update(service.script.as_bytes());
    for (name, value) in secrets {
        digest.update([0]);
        digest.update(name.as_bytes());
        digest.update([0]);
        digest.update(value.as_bytes());
    }
    hex::encode(&digest.finalize()[..8])
}

/// How many instances a deployment runs, and what `stop` recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub replicas: i32,
    /// Set while stopped: the replicas `start` gives back.
    pub previous: Option<i32>,
}

impl Scale {
    /// What a running service starts with: `min_scale` (0: the platform's proxy starts one
    /// on the first request).
    pub fn running(service: &Service) -> Self {
        let min = service.expose.as_ref().map_or(1, |e| e.min_scale);
        Self {
            replicas: i32::try_from(min).unwrap_or(i32::MAX),
            previous: None,
        }
    }
}

fn min_replicas(service: &Service) -> i32 {
    let min = service.expose.as_ref().map_or(1, |e| e.min_scale);
    i32::try_from(min).unwrap_or(i32::MAX).max(1)
}

/// The Deployment running the service's instances.
pub fn deployment(
    service: &Service,
    namespace: &str,
    scale: Scale,
    revision: &str,
) -> Option<Deployment> {
    let expose = service.expose.as_ref()?;
    let port = i32::from(expose.port()?);
    let mut metadata = metadata(service, deployment_name(&service.name), namespace);
    if let Some(previous) = scale.previous {
        metadata
            .annotations
            .get_or_insert_default()
            .insert(PREVIOUS_REPLICAS.into(), previous.to_string());
    }
    let probe = |period: i32, tries: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(expose.health_path.clone()),
            port: IntOrString::Int(port),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(tries),
        ..Default::default()
    };
    let env = variables(service);
    let (command, volumes, mounts) = if expose.default_command {
        (None, None, None)
    } else {
        let volume = Volume {
            name: "oscar-script".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: script_name(&service.name),
                default_mode: Some(0o555),
                ..Default::default()
            }),
            ..Default::default()
        };
        (
            Some(vec!["/bin/sh".into(), format!("{SCRIPT_DIR}/script.sh")]),
            Some(vec![volume]),
            Some(vec![mount("oscar-script", SCRIPT_DIR, true)]),
        )
    };
    let container = Container {
        name: JOB_CONTAINER.into(),
        image: Some(service.image.clone()),
        command,
        env: (!env.is_empty()).then_some(env),
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: service_secret_name(&service.name),
                optional: Some(true),
            }),
            ..Default::default()
        }]),
        ports: Some(
            expose
                .api_port
                .iter()
                .map(|port| ContainerPort {
                    container_port: i32::from(*port),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                })
                .collect(),
        ),
        resources: Some(job_resources(service)),
        startup_probe: Some(probe(STARTUP_PERIOD, STARTUP_TRIES)),
        readiness_probe: Some(probe(5, 3)),
        liveness_probe: Some(probe(10, 3)),
        volume_mounts: mounts,
        // Servers such as nginx change user as they start: the runtime's default capabilities
        // stay, no privilege is gained beyond them.
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = k8s_openapi::api::core::v1::PodSpec {
        containers: vec![container],
        volumes,
        ..pod_of(service)
    };
    Some(of_service(
        service,
        metadata,
        selector(service),
        scale.replicas,
        revision,
        pod,
    ))
}

/// A Deployment of `replicas` pods of `service` selected by `selector`: the service's own
/// labels and annotations on its pods, and `revision` (the digest of what reaches the pods
/// outside their spec: a new script or new secrets change the template, a rollout, as a new
/// definition does). Exposed services' and warm workers' Deployments are this.
pub(crate) fn of_service(
    service: &Service,
    metadata: ObjectMeta,
    selector: BTreeMap<String, String>,
    replicas: i32,
    revision: &str,
    pod: k8s_openapi::api::core::v1::PodSpec,
) -> Deployment {
    let mut labels = services_own(&service.labels);
    labels.extend(selector.clone());
    let mut annotations = services_own(&service.annotations);
    annotations.insert(OWNER_ANNOTATION.into(), service.owner.clone());
    annotations.insert(REVISION.into(), revision.to_string());
    Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The service's variables, as its containers get them (its secrets come from its Secret).
pub(crate) fn variables(service: &Service) -> Vec<k8s_openapi::api::core::v1::EnvVar> {
    service
        .environment
        .variables
        .iter()
        .map(|(name, value)| env_var(name, value))
        .collect()
}

/// Mounts a managed volume's claim read-write in every instance, at `mount_path`.
pub fn mount_volume(deployment: &mut Deployment, claim: &str, mount_path: &str) {
    let Some(pod) = deployment
        .spec
        .as_mut()
        .and_then(|spec| spec.template.spec.as_mut())
    else {
        return;
    };
    let (volume, mounted) = claim_volume(claim, mount_path);
    pod.volumes.get_or_insert_default().push(volume);
    for container in &mut pod.containers {
        container
            .volume_mounts
            .get_or_insert_default()
            .push(mounted.clone());
    }
}

/// The Service in front of the instances: every `api_port`, the first named `http`; of type
/// NodePort on `nodePort` when asked.
pub fn service(service: &Service, namespace: &str) -> Option<KubeService> {
    let expose = service.expose.as_ref()?;
    expose.port()?;
    let node_port = (expose.node_port != 0)
        .then(|| i32::try_from(expose.node_port).ok())
        .flatten();
    let ports = expose
        .api_port
        .iter()
        .enumerate()
        .map(|(i, port)| ServicePort {
            name: Some(if i == 0 {
                "http".into()
            } else {
                format!("port-{port}")
            }),
            port: i32::from(*port),
            target_port: Some(IntOrString::Int(i32::from(*port))),
            node_port: node_port.filter(|_| i == 0),
            protocol: Some("TCP".into()),
            ..Default::default()
        })
        .collect();
    Some(KubeService {
        metadata: metadata(service, service_name(&service.name), namespace),
        spec: Some(ServiceSpec {
            type_: Some(
                if node_port.is_some() {
                    "NodePort"
                } else {
                    "ClusterIP"
                }
                .into(),
            ),
            selector: Some(selector(service)),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The autoscaler keeping the instances' CPU at `cpu_threshold` % of their request, between
/// `min_scale` (at least one) and `max_scale`.
pub fn autoscaler(service: &Service, namespace: &str) -> Option<HorizontalPodAutoscaler> {
    let expose = service.expose.as_ref()?;
    expose.port()?;
    let min = min_replicas(service);
    let max = i32::try_from(expose.max_scale).unwrap_or(i32::MAX).max(min);
    Some(HorizontalPodAutoscaler {
        metadata: metadata(service, autoscaler_name(&service.name), namespace),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: deployment_name(&service.name),
            },
            min_replicas: Some(min),
            max_replicas: max,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(
                            i32::try_from(expose.cpu_threshold).unwrap_or(80),
                        ),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            behavior: None,
        }),
        ..Default::default()
    })
}

/// The host a service's direct route answers on: its own under the apps' host, so that apps
/// are apart from each other as well as from the dashboard (an origin each: one app's pages
/// cannot script another's or register a service worker over it).
pub fn route_host(service: &Service, routes: &ExposedRoutes) -> String {
    format!("{}.{}", service.name, routes.host)
}

/// A route straight to the service: an HTTPRoute or an Ingress.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// The Gateway API's HTTPRoute, a custom resource (not in k8s-openapi).
    Http(serde_json::Value),
    Ingress(Box<Ingress>),
}

/// The route to the service on the exposed services' host; None without such a host, for a
/// service with `set_auth` (the platform's proxy checks its callers), or for a NodePort.
pub fn route(service: &Service, namespace: &str, routes: &ExposedRoutes) -> Option<Route> {
    let expose = service.expose.as_ref()?;
    let port = i32::from(expose.port()?);
    // Through the proxy only: it checks set_auth, and it wakes a service resting at zero.
    if expose.set_auth || expose.node_port != 0 || expose.min_scale == 0 {
        return None;
    }
    let base = model::routes::exposed_base(&service.name);
    let host = route_host(service, routes);
    let metadata = metadata(service, route_name(&service.name), namespace);
    Some(match &routes.via {
        RouteKind::Gateway {
            namespace: gateway_namespace,
            name,
        } => {
            let mut rule = json!({
                "matches": [{"path": {"type": "PathPrefix", "value": base}}],
                "backendRefs": [{"name": service_name(&service.name), "port": port}],
            });
            if expose.rewrite_target {
                rule["filters"] = json!([{"type": "URLRewrite", "urlRewrite": {"path": {
                    "type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}]);
            }
            Route::Http(json!({
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": metadata,
                "spec": {
                    "parentRefs": [{"name": name, "namespace": gateway_namespace}],
                    "hostnames": [host],
                    "rules": [rule],
                },
            }))
        }
        RouteKind::Ingress { class } => {
            let mut metadata = metadata;
            // ingress-nginx's rewrite: the path's second group is what the app sees.
            let (path, path_type) = if expose.rewrite_target {
                metadata.annotations.get_or_insert_default().extend([
                    (
                        "nginx.ingress.kubernetes.io/rewrite-target".to_string(),
                        "/$2".to_string(),
                    ),
                    (
                        "nginx.ingress.kubernetes.io/use-regex".to_string(),
                        "true".to_string(),
                    ),
                ]);
                (format!("{base}(/|$)(.*)"), "ImplementationSpecific")
            } else {
                (base, "Prefix")
            };
            Route::Ingress(Box::new(Ingress {
                metadata,
                spec: Some(IngressSpec {
                    ingress_class_name: Some(class.clone()),
                    rules: Some(vec![IngressRule {
                        host: Some(host),
                        http: Some(HTTPIngressRuleValue {
                            paths: vec![HTTPIngressPath {
                                path: Some(path),
                                path_type: path_type.into(),
                                backend: IngressBackend {
                                    service: Some(IngressServiceBackend {
                                        name: service_name(&service.name),
                                        port: Some(ServiceBackendPort {
                                            number: Some(port),
                                            name: None,
                                        }),
                                    }),
                                    resource: None,
                                },
                            }],
                        }),
                    }]),
                    ..Default::default()
                }),
                status: None,
            }))
        }
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::networking::v1::NetworkPolicy;

    use super::*;
    use crate::kubernetes::objects::EXPOSED_POLICY;
    use crate::kubernetes::objects::tests::{selects, server_pod_labels, write_examples};
    use model::service::validate::is_reserved_key;

    fn exposed(expose: serde_json::Value) -> Service {
        let mut service = Service::from_json(json!({
            "name": "nginx", "image": "nginx:1.27", "script": "nginx -g 'daemon off;'",
            "cpu": "0.5", "memory": "256Mi", "image_pull_secrets": ["regcred"],
            "labels": {"team": "web"},
            "environment": {"variables": {"GREETING": "hello"}},
            "expose": expose,
        }))
        .unwrap();
        service.expose.as_mut().unwrap().normalise();
        service.owner = "alice@example.org".into();
        service
    }

    fn gateway() -> ExposedRoutes {
        ExposedRoutes {
            host: "apps.example.org".into(),
            via: RouteKind::Gateway {
                namespace: "gateway-system".into(),
                name: "gateway".into(),
            },
        }
    }

    fn ingress() -> ExposedRoutes {
        ExposedRoutes {
            host: "apps.example.org".into(),
            via: RouteKind::Ingress {
                class: "nginx".into(),
            },
        }
    }

    fn to_json(object: &impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(object).unwrap()
    }

    /// Every object of an exposed service, in its variants, for the schema validation.
    fn examples() -> Vec<(String, serde_json::Value)> {
        let ns = "oscar-svc";
        let script = exposed(json!({"api_port": 80, "min_scale": 2, "max_scale": 5}));
        let image = exposed(json!({"api_port": [8888, 9000], "default_command": true,
            "rewrite_target": true, "nodePort": 30080, "health_path": "/api"}));
        let rewritten = exposed(json!({"api_port": 8080, "rewrite_target": true}));
        let stopped = Scale {
            replicas: 0,
            previous: Some(2),
        };
        let route = |service: &Service, routes: &ExposedRoutes| match route(service, ns, routes) {
            Some(Route::Http(value)) => value,
            Some(Route::Ingress(ingress)) => to_json(&ingress),
            None => panic!("no route"),
        };
        vec![
            (
                "exposed-deployment".into(),
                to_json(&deployment(&script, ns, Scale::running(&script), "r1").unwrap()),
            ),
            (
                "exposed-deployment-stopped".into(),
                to_json(&deployment(&image, ns, stopped, "r1").unwrap()),
            ),
            ("exposed-deployment-volume".into(), {
                let mut d = deployment(&image, ns, Scale::running(&image), "r1").unwrap();
                mount_volume(&mut d, "models", "/models");
                to_json(&d)
            }),
            (
                "exposed-script".into(),
                to_json(&super::script(&script, ns).unwrap()),
            ),
            (
                "exposed-service".into(),
                to_json(&service(&script, ns).unwrap()),
            ),
            (
                "exposed-service-nodeport".into(),
                to_json(&service(&image, ns).unwrap()),
            ),
            (
                "exposed-autoscaler".into(),
                to_json(&autoscaler(&script, ns).unwrap()),
            ),
            ("exposed-httproute".into(), route(&rewritten, &gateway())),
            ("exposed-ingress".into(), route(&script, &ingress())),
            (
                "exposed-ingress-rewrite".into(),
                route(&rewritten, &ingress()),
            ),
        ]
    }

    #[test]
    fn the_examples_are_written_for_validation() {
        let examples = examples();
        let kinds: Vec<&str> = examples
            .iter()
            .map(|(_, v)| v["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "Deployment",
                "Deployment",
                "Deployment",
                "ConfigMap",
                "Service",
                "Service",
                "HorizontalPodAutoscaler",
                "HTTPRoute",
                "Ingress",
                "Ingress"
            ]
        );
        write_examples(&examples);
    }

    #[test]
    fn a_volume_is_mounted_read_write_in_every_instance() {
        let image = exposed(json!({"api_port": 80, "default_command": true}));
        let mut d = deployment(&image, "ns", Scale::running(&image), "r1").unwrap();
        mount_volume(&mut d, "models", "/models");
        let d = to_json(&d);
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(
            pod["volumes"],
            json!([{"name": "oscar-volume", "persistentVolumeClaim": {"claimName": "models", "readOnly": false}}])
        );
        assert_eq!(
            pod["containers"][0]["volumeMounts"],
            json!([{"name": "oscar-volume", "mountPath": "/models", "readOnly": false}])
        );
    }

    #[test]
    fn the_script_runs_from_its_config_map_and_default_command_runs_the_image() {
        let script = exposed(json!({"api_port": 80, "min_scale": 2}));
        let d = to_json(&deployment(&script, "ns", Scale::running(&script), "r1").unwrap());
        let container = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["command"],
            json!(["/bin/sh", "/oscar/config/script.sh"])
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
            "nginx-script"
        );
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(
            container["env"],
            json!([{"name": "GREETING", "value": "hello"}])
        );
        assert_eq!(container["envFrom"][0]["secretRef"]["name"], "nginx-env");
        assert_eq!(container["resources"]["limits"]["cpu"], "0.5");
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            assert_eq!(
                container[probe]["httpGet"],
                json!({"path": "/", "port": 80}),
                "{probe}"
            );
        }
        assert_eq!(container["startupProbe"]["failureThreshold"], 18);
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["imagePullSecrets"], json!([{"name": "regcred"}]));
        // The pods carry the selector and the service's own labels; jobs' pods do not match.
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["team"], "web");
        assert_eq!(labels[COMPONENT_LABEL], COMPONENT);
        assert_eq!(
            d["spec"]["selector"]["matchLabels"],
            to_json(&selector(&script))
        );

        let image = exposed(json!({"api_port": 8888, "default_command": true}));
        let d = to_json(&deployment(&image, "ns", Scale::running(&image), "r1").unwrap());
        let container = &d["spec"]["template"]["spec"]["containers"][0];
        assert!(
            container.get("command").is_none(),
            "the image's entrypoint runs"
        );
        assert!(d["spec"]["template"]["spec"].get("volumes").is_none());
        assert!(super::script(&image, "ns").is_none());
        // min_scale 0: none until a request wakes it; its autoscaler's floor is 1.
        let idle = exposed(json!({"api_port": 8888, "min_scale": 0}));
        assert_eq!(Scale::running(&idle).replicas, 0);
    }

    #[test]
    fn a_stopped_deployment_keeps_what_start_gives_back() {
        let service = exposed(json!({"api_port": 80}));
        let scale = Scale {
            replicas: 0,
            previous: Some(3),
        };
        let d = deployment(&service, "ns", scale, "r1").unwrap();
        assert_eq!(d.spec.unwrap().replicas, Some(0));
        assert_eq!(d.metadata.annotations.unwrap()[PREVIOUS_REPLICAS], "3");
    }

    #[test]
    fn node_ports_and_autoscaling_follow_the_block() {
        let service = exposed(json!({"api_port": [8888, 9000], "nodePort": 30080,
            "min_scale": 0, "max_scale": 4, "cpu_threshold": 60}));
        let svc = to_json(&super::service(&service, "ns").unwrap());
        assert_eq!(svc["spec"]["type"], "NodePort");
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({"name": "http", "port": 8888,
            "targetPort": 8888, "nodePort": 30080, "protocol": "TCP"})
        );
        assert!(svc["spec"]["ports"][1].get("nodePort").is_none());
        let hpa = to_json(&autoscaler(&service, "ns").unwrap());
        assert_eq!(hpa["spec"]["minReplicas"], 1);
        assert_eq!(hpa["spec"]["maxReplicas"], 4);
        assert_eq!(
            hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            60
        );
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "nginx-dlp");
        let plain = exposed(json!({"api_port": 80}));
        assert_eq!(
            to_json(&super::service(&plain, "ns").unwrap())["spec"]["type"],
            "ClusterIP"
        );
        // Not exposed: nothing at all.
        let mut none = plain.clone();
        none.expose = None;
        assert!(deployment(&none, "ns", Scale::running(&none), "r1").is_none());
        assert!(super::service(&none, "ns").is_none() && autoscaler(&none, "ns").is_none());
    }

    #[test]
    fn routes_go_straight_to_open_services_only() {
        let open = exposed(json!({"api_port": 8080, "rewrite_target": true}));
        let Some(Route::Http(http)) = route(&open, "ns", &gateway()) else {
            panic!()
        };
        // Each app on a host of its own: one app's pages cannot reach another's.
        assert_eq!(http["spec"]["hostnames"], json!(["nginx.apps.example.org"]));
        assert_eq!(
            http["spec"]["parentRefs"],
            json!([{"name": "gateway", "namespace": "gateway-system"}])
        );
        let rule = &http["spec"]["rules"][0];
        assert_eq!(
            rule["matches"][0]["path"]["value"],
            "/system/services/nginx/exposed"
        );
        assert_eq!(
            rule["filters"][0]["urlRewrite"]["path"]["replacePrefixMatch"],
            "/"
        );
        assert_eq!(
            rule["backendRefs"],
            json!([{"name": "nginx-svc", "port": 8080}])
        );
        let Some(Route::Ingress(made)) = route(&open, "ns", &ingress()) else {
            panic!()
        };
        let made = to_json(&made);
        assert_eq!(
            made["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"],
            "/$2"
        );
        assert_eq!(
            made["spec"]["rules"][0]["http"]["paths"][0]["path"],
            "/system/services/nginx/exposed(/|$)(.*)"
        );
        let kept = exposed(json!({"api_port": 8080}));
        let Some(Route::Http(http)) = route(&kept, "ns", &gateway()) else {
            panic!()
        };
        assert!(http["spec"]["rules"][0].get("filters").is_none());
        // With set_auth the platform's proxy checks callers: no way around it.
        let guarded = exposed(json!({"api_port": 8080, "set_auth": true}));
        assert!(route(&guarded, "ns", &gateway()).is_none());
        assert!(route(&guarded, "ns", &ingress()).is_none());
        // Resting at zero, only the proxy wakes it; a NodePort is its own way in.
        let resting = exposed(json!({"api_port": 8080, "min_scale": 0}));
        assert!(route(&resting, "ns", &gateway()).is_none());
        let node = exposed(json!({"api_port": 8080, "nodePort": 30080}));
        assert!(route(&node, "ns", &ingress()).is_none());
    }

    /// The shipped policy lets only the platform's server reach exposed pods: it selects them
    /// (not job pods) on keys services cannot set, and admits the server's pods.
    #[test]
    fn the_shipped_policy_confines_exposed_pods_to_the_servers_connections() {
        let policy: NetworkPolicy = serde_norway::from_str(include_str!(
            "../../../../deploy/kubernetes/base/networkpolicy-exposed.yaml"
        ))
        .unwrap();
        assert_eq!(policy.metadata.name.as_deref(), Some(EXPOSED_POLICY));
        let spec = policy.spec.unwrap();
        let selector = spec.pod_selector.unwrap();
        let service = exposed(json!({"api_port": 80}));
        let d = deployment(&service, "x", Scale::running(&service), "r1").unwrap();
        let pod_labels = d.spec.unwrap().template.metadata.unwrap().labels.unwrap();
        assert!(selects(&selector, &pod_labels), "{pod_labels:?}");
        let mut job_labels = pod_labels.clone();
        job_labels.remove(COMPONENT_LABEL);
        assert!(!selects(&selector, &job_labels));
        for key in selector.match_labels.iter().flatten().map(|(key, _)| key) {
            assert!(is_reserved_key(key), "{key}");
        }
        let from = &spec.ingress.unwrap()[0].from.clone().unwrap()[0];
        assert!(selects(
            from.pod_selector.as_ref().unwrap(),
            &server_pod_labels()
        ));
        // Out: DNS only, as embedded mode's instances (jobs-internet opens the Internet).
        assert_eq!(spec.policy_types.unwrap(), ["Ingress", "Egress"]);
        let egress = spec.egress.unwrap();
        let ports: Vec<_> = egress
            .iter()
            .flat_map(|r| r.ports.clone().unwrap())
            .collect();
        assert!(
            ports.iter().all(|p| p.port == Some(IntOrString::Int(53))),
            "{ports:?}"
        );
    }

    #[test]
    fn a_new_script_or_new_secrets_change_the_pod_template() {
        let service = exposed(json!({"api_port": 80}));
        let secrets = vec![("API_KEY".to_string(), "s3cret-value-1".to_string())];
        let base = revision(&service, &secrets);
        assert_eq!(base, revision(&service, &secrets), "stable");
        let mut edited = service.clone();
        edited.script.push_str("\n# v2");
        assert_ne!(base, revision(&edited, &secrets));
        let rotated = vec![("API_KEY".to_string(), "two".to_string())];
        assert_ne!(base, revision(&service, &rotated));
        // Only a digest reaches the object, never a value.
        let d = to_json(&deployment(&service, "ns", Scale::running(&service), &base).unwrap());
        assert_eq!(
            d["spec"]["template"]["metadata"]["annotations"][REVISION],
            base.as_str()
        );
        assert!(!d.to_string().contains("s3cret-value-1"));
    }
}
