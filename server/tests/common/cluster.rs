//! The Kubernetes mode's test cluster: the fake API server (`fake-kube`) on loopback, reached
//! through a kubeconfig as a real one would be, with its kubelet running the real supervisor.

use std::collections::BTreeMap;
use std::time::Duration;

use domain::kubernetes::{ClusterSettings, ExposedRoutes, Namespacing, SUPERVISOR_IN_IMAGE};
use fake_kube::kubelet::Kubelet;
use fake_kube::{FakeCluster, Served};
use server::config::ExecutorConfig;

use super::TestApp;

pub const NAMESPACE: &str = "oscar-svc";
pub const UNPULLABLE: &str = "registry.example/missing:1";
pub const OVER_QUOTA: &str = "registry.example/too-big:1";

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
    let kubeconfig = cluster.served.kubeconfig.clone();
    TestApp::with_config(|config| {
        config.oidc = oidc;
        config.executor = ExecutorConfig::Kubernetes {
            cluster: ClusterSettings {
                namespace: NAMESPACE.into(),
                namespacing: Namespacing::Shared,
                platform_image: "ghcr.io/example/oscar:test".into(),
                job_ttl: Duration::from_secs(600),
                pending_timeout,
                exposed_routes,
            },
            kubeconfig: Some(kubeconfig),
        };
    })
    .await
}
