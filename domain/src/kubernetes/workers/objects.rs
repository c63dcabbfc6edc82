//! The objects of a synchronous service's warm workers (`synchronous.min_scale`) on
//! Kubernetes, as pure functions of the service: a Deployment of pods in the service's image
//! running the supervisor's serve mode on [`ClusterSettings::worker_port`], a Service in front
//! of them, and a Secret with the token the platform's requests carry (only the platform may
//! make a worker run its script with the service's secrets).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, PodSpec, Probe, Secret, SecretEnvSource,
    Service as KubeService, ServicePort, ServiceSpec, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use model::service::Service;

use crate::kubernetes::ClusterSettings;
use crate::kubernetes::exposed::objects::{COMPONENT_LABEL, of_service, variables};
use crate::kubernetes::objects::{
    BIN_DIR, JOB_CONTAINER, OWNER_ANNOTATION, SERVICE_LABEL, SUPERVISOR, bin_volume, env_var,
    job_resources, managed, mount, pod_of, service_secret_name, supervisor_init, unprivileged,
};

/// Marks a service's workers apart from its jobs and exposed instances.
pub const COMPONENT: &str = "worker";
/// The worker Secret's key, which the pods get as this variable.
pub const TOKEN_KEY: &str = "OSCAR_SERVE_TOKEN";
/// How long a worker asked to stop (a scale-down, a rollout) may finish its request: the
/// default `/run` time limit (`OSCAR_RUN_TIMEOUT`) and the outputs' upload.
pub const DRAIN_SECONDS: i64 = 360;

/// The name of the worker Deployment, its Service and its Secret (three kinds, one name).
pub fn name(service: &str) -> String {
    format!("{service}-wrk")
}

/// The labels that select the service's workers.
pub fn selector(service: &Service) -> BTreeMap<String, String> {
    managed([
        (SERVICE_LABEL, service.name.as_str()),
        (COMPONENT_LABEL, COMPONENT),
    ])
}

fn metadata(service: &Service, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name(&service.name)),
        namespace: Some(namespace.to_string()),
        labels: Some(selector(service)),
        annotations: Some(BTreeMap::from([(
            OWNER_ANNOTATION.to_string(),
            service.owner.clone(),
        )])),
        ..Default::default()
    }
}

/// The Secret holding the workers' token.
pub fn token_secret(service: &Service, namespace: &str, token: &str) -> Secret {
    Secret {
        metadata: metadata(service, namespace),
        string_data: Some(BTreeMap::from([(TOKEN_KEY.into(), token.to_string())])),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// The Deployment of `replicas` workers. `revision` is the digest of the secrets the pods
/// read from the service's Secret: a change rolls them, as a new definition does.
pub fn deployment(
    service: &Service,
    settings: &ClusterSettings,
    namespace: &str,
    replicas: i32,
    revision: &str,
) -> Deployment {
    let port = i32::from(settings.worker_port);
    let mut env = variables(service);
    env.push(env_var("OSCAR_SERVE_ADDRESS", &format!("0.0.0.0:{port}")));
    let secret = |name: String, optional: bool| EnvFromSource {
        secret_ref: Some(SecretEnvSource {
            name,
            optional: Some(optional),
        }),
        ..Default::default()
    };
    let container = Container {
        name: JOB_CONTAINER.into(),
        image: Some(service.image.clone()),
        command: Some(vec![SUPERVISOR.into(), "serve".into()]),
        env: Some(env),
        env_from: Some(vec![
            secret(service_secret_name(&service.name), true),
            secret(name(&service.name), false),
        ]),
        ports: Some(vec![ContainerPort {
            container_port: port,
            name: Some("work".into()),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(port),
                host: None,
            }),
            period_seconds: Some(5),
            ..Default::default()
        }),
        resources: Some(job_resources(service)),
        volume_mounts: Some(vec![mount("oscar-bin", BIN_DIR, true)]),
        security_context: Some(unprivileged()),
        ..Default::default()
    };
    let pod = PodSpec {
        init_containers: Some(vec![supervisor_init(settings)]),
        containers: vec![container],
        volumes: Some(vec![bin_volume()]),
        termination_grace_period_seconds: Some(DRAIN_SECONDS),
        ..pod_of(service)
    };
    of_service(
        service,
        metadata(service, namespace),
        selector(service),
        replicas,
        revision,
        pod,
    )
}

/// The Service the platform reaches the workers through.
pub fn service(service: &Service, settings: &ClusterSettings, namespace: &str) -> KubeService {
    let port = i32::from(settings.worker_port);
    KubeService {
        metadata: metadata(service, namespace),
        spec: Some(ServiceSpec {
            selector: Some(selector(service)),
            ports: Some(vec![ServicePort {
                name: Some("work".into()),
                port,
                target_port: Some(IntOrString::Int(port)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use serde_json::json;

    use super::*;
    use crate::kubernetes::exposed::objects::REVISION;
    use crate::kubernetes::objects::WORKERS_POLICY;
    use crate::kubernetes::objects::tests::{selects, server_pod_labels, settings, write_examples};
    use crate::kubernetes::{Namespacing, exposed::objects::mount_volume};
    use model::service::validate::is_reserved_key;

    fn warm() -> Service {
        let mut service = Service::from_json(json!({
            "name": "infer", "image": "ghcr.io/example/model:1", "script": "python infer.py",
            "cpu": "1", "memory": "1Gi", "image_pull_secrets": ["regcred"],
            "labels": {"team": "ml"},
            "environment": {"variables": {"MODEL": "small"}},
            "synchronous": {"min_scale": 2, "max_scale": 4},
        }))
        .unwrap();
        service.owner = "alice@example.org".into();
        service
    }

    fn to_json(object: &impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(object).unwrap()
    }

    #[test]
    fn workers_run_the_supervisors_serve_mode_in_the_services_image() {
        let settings = settings(Namespacing::Shared);
        let service = warm();
        let d = to_json(&deployment(&service, &settings, "ns", 2, "r1"));
        assert_eq!(d["metadata"]["name"], "infer-wrk");
        assert_eq!(d["spec"]["replicas"], 2);
        let pod = &d["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(container["image"], "ghcr.io/example/model:1");
        assert_eq!(
            container["command"],
            json!(["/oscar/bin/supervisor", "serve"])
        );
        assert_eq!(
            pod["initContainers"][0]["command"][2],
            "/oscar/bin/supervisor"
        );
        let port = i64::from(settings.worker_port);
        assert_eq!(container["ports"][0]["containerPort"], port);
        assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], port);
        // Secrets come from Secrets, never from the spec.
        assert_eq!(
            container["envFrom"],
            json!([{"secretRef": {"name": "infer-env", "optional": true}},
                   {"secretRef": {"name": "infer-wrk", "optional": false}}])
        );
        assert!(
            container["env"].as_array().unwrap().contains(
                &json!({"name": "OSCAR_SERVE_ADDRESS", "value": format!("0.0.0.0:{port}")})
            )
        );
        assert_eq!(container["resources"]["limits"]["memory"], "1Gi");
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["terminationGracePeriodSeconds"], DRAIN_SECONDS);
        assert_eq!(pod["imagePullSecrets"], json!([{"name": "regcred"}]));
        assert_eq!(d["spec"]["template"]["metadata"]["labels"]["team"], "ml");
        assert_eq!(
            d["spec"]["template"]["metadata"]["annotations"][REVISION],
            "r1"
        );
        let s = to_json(&super::service(&service, &settings, "ns"));
        assert_eq!(s["spec"]["selector"], d["spec"]["selector"]["matchLabels"]);
        assert_eq!(s["spec"]["ports"][0]["port"], port);
        let secret = to_json(&token_secret(&service, "ns", "t0k3n"));
        assert_eq!(secret["stringData"][TOKEN_KEY], "t0k3n");
    }

    /// The shipped NetworkPolicy lets only the platform's server reach the workers, selected
    /// on keys services cannot set.
    #[test]
    fn the_shipped_workers_policy_admits_only_the_server() {
        let policy: NetworkPolicy = serde_norway::from_str(include_str!(
            "../../../../deploy/kubernetes/base/networkpolicy-workers.yaml"
        ))
        .unwrap();
        assert_eq!(policy.metadata.name.as_deref(), Some(WORKERS_POLICY));
        let spec = policy.spec.unwrap();
        let selector = spec.pod_selector.unwrap();
        let d = deployment(&warm(), &settings(Namespacing::Shared), "x", 1, "r1");
        let pod_labels = d.spec.unwrap().template.metadata.unwrap().labels.unwrap();
        assert!(selects(&selector, &pod_labels), "{pod_labels:?}");
        for key in selector.match_labels.iter().flatten().map(|(key, _)| key) {
            assert!(is_reserved_key(key), "{key}");
        }
        let from = &spec.ingress.unwrap()[0].from.clone().unwrap()[0];
        assert!(selects(
            from.pod_selector.as_ref().unwrap(),
            &server_pod_labels()
        ));
    }

    /// Also writes them for the schema validation.
    #[test]
    fn the_examples_are_written_for_validation() {
        let settings = settings(Namespacing::PerUser);
        let service = warm();
        let mut with_volume = deployment(&service, &settings, "ns", 1, "r1");
        mount_volume(&mut with_volume, "models", "/models");
        write_examples(&[
            (
                "worker-deployment".into(),
                to_json(&deployment(&service, &settings, "ns", 2, "r1")),
            ),
            ("worker-deployment-volume".into(), to_json(&with_volume)),
            (
                "worker-service".into(),
                to_json(&super::service(&service, &settings, "ns")),
            ),
            (
                "worker-secret".into(),
                to_json(&token_secret(&service, "ns", "t0k3n")),
            ),
        ]);
    }
}
