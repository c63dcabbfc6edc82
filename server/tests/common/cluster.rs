//! The Kubernetes mode's test cluster: the fake API server (`fake-kube`) on loopback, reached
//! through a kubeconfig as a real one would be, with its kubelet running the real supervisor.

use std::collections::BTreeMap;
use std::time::Duration;

use domain::kubernetes::{ClusterSettings, ExposedRoutes, Namespacing, SUPERVISOR_IN_IMAGE};
use fake_kube::kubelet::Kubelet;
use fake_kube::{FakeCluster, Served};
use server::config::ExecutorConfig;

use super::{TestApp, free_port};

pub const NAMESPACE: &str = "oscar-svc";
pub const UNPULLABLE: &str = "registry.example/missing:1";
pub const OVER_QUOTA: &str = "registry.example/too-big:1";
pub const UNSCHEDULABLE: &str = "registry.example/too-wide:1";

pub struct Cluster {
    pub fake: FakeCluster,
    pub served: Served,
    _kubelet: tokio::task::JoinHandle<()>,
}

pub async fn cluster() -> Cluster {
    let fake = FakeCluster::new();
    let kubelet = fake.start_kubelet(Kubelet {
        programs: BTreeMap::from([(
            SUPERVISOR_IN_IMAGE.to_string(),
            vec![env!("CARGO_BIN_EXE_server").into(), "supervise".into()],
        )]),
        unpullable: vec![UNPULLABLE.into()],
        over_quota: vec![OVER_QUOTA.into()],
        unschedulable: vec![UNSCHEDULABLE.into()],
    });
    let served = fake.serve().await.unwrap();
    Cluster {
        fake,
        served,
        _kubelet: kubelet,
    }
}

pub async fn app_on(cluster: &Cluster, pending_timeout: Duration) -> TestApp {
    app_with(cluster, pending_timeout, None, None).await
}

/// With sign-in through `oidc` when given, and routes straight to exposed services.
pub async fn app_with(
    cluster: &Cluster,
    pending_timeout: Duration,
    oidc: Option<domain::oidc::OidcSettings>,
    exposed_routes: Option<ExposedRoutes>,
) -> TestApp {
    app_adjusted(cluster, pending_timeout, exposed_routes, |config| {
        config.oidc = oidc
    })
    .await
}

/// As [`app_with`], the rest of the configuration as `adjust` leaves it.
pub async fn app_adjusted(
    cluster: &Cluster,
    pending_timeout: Duration,
    exposed_routes: Option<ExposedRoutes>,
    adjust: impl FnOnce(&mut server::config::Config),
) -> TestApp {
    let kubeconfig = cluster.served.kubeconfig.clone();
    TestApp::with_config(|config| {
        adjust(config);
        config.executor = ExecutorConfig::Kubernetes {
            cluster: ClusterSettings {
                namespace: NAMESPACE.into(),
                namespacing: Namespacing::Shared,
                platform_image: "ghcr.io/example/oscar:test".into(),
                job_ttl: Duration::from_secs(600),
                pending_timeout,
                exposed_routes,
                allow_node_ports: false,
                storage_class: None,
                volume_limits: Default::default(),
                worker_port: free_port(),
                rclone_image: None,
            },
            kubeconfig: Some(kubeconfig),
        };
    })
    .await
}

/// Fails unless the Role of `deploy/kubernetes/base` allows every namespaced call the fake
/// recorded (the fake itself checks no permission; a cluster would refuse). A server-side
/// apply needs `create` besides `patch`: it makes the object when it is missing.
pub fn assert_the_role_allows(fake: &FakeCluster) {
    let text = include_str!("../../../deploy/kubernetes/base/rbac.yaml");
    let role = text
        .split("\n---\n")
        .map(|doc| serde_norway::from_str::<serde_json::Value>(doc).unwrap())
        .find(|doc| doc["kind"] == "Role")
        .expect("the base has a Role");
    let allows = |group: &str, resource: &str, verb: &str| {
        role["rules"].as_array().unwrap().iter().any(|rule| {
            let has =
                |key: &str, value: &str| rule[key].as_array().unwrap().iter().any(|v| v == value);
            has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
        })
    };
    for request in fake.requests() {
        let (method, target) = request.split_once(' ').unwrap();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let (group, rest) = match path.strip_prefix("/api/v1/") {
            Some(rest) => ("", rest),
            None => match path.strip_prefix("/apis/") {
                Some(rest) => {
                    let mut parts = rest.splitn(3, '/');
                    let group = parts.next().unwrap();
                    let _version = parts.next();
                    (group, parts.next().unwrap_or(""))
                }
                None => continue,
            },
        };
        let Some(rest) = rest.strip_prefix(&format!("namespaces/{NAMESPACE}/")) else {
            continue; // cluster-scoped or another namespace: not the Role's
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let resource = match parts.as_slice() {
            [resource, _, sub] => format!("{resource}/{sub}"),
            [resource, ..] => resource.to_string(),
            [] => continue,
        };
        let named = parts.len() > 1;
        let watch = query
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1");
        let verbs: &[&str] = match (method, named) {
            ("GET", false) if watch => &["watch"],
            ("GET", false) => &["list"],
            ("GET", true) => &["get"],
            ("POST", _) => &["create"],
            ("PATCH" | "PUT", _) => &["patch", "create"],
            ("DELETE", true) => &["delete"],
            ("DELETE", false) => &["deletecollection"],
            _ => panic!("an unexpected call: {request}"),
        };
        for verb in verbs {
            assert!(
                allows(group, &resource, verb),
                "the Role does not allow {verb} on {group}/{resource}, which {request} needs"
            );
        }
    }
}
