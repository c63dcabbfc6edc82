//! A service's `mount` on Kubernetes, as upstream makes it: an rclone sidecar mounts the
//! provider's folder (FUSE) in a volume the job's container sees at `/mnt`, with mount
//! propagation; the pods of its exposed service or warm workers get the same sidecar, reading
//! the remote from the service's Secret `<name>-mount` (keys of their own to the platform's
//! store) instead of the job's. Unlike upstream's, the sidecar starts before the job (a
//! native sidecar with a startup probe: the job never sees an empty `/mnt`) and, when stopped
//! with the job, unmounts and waits until rclone has uploaded every file written to it. As
//! upstream's, files are streamed (no copy on the node). FUSE needs a privileged container,
//! so the operator turns mounts on (`OSCAR_KUBE_RCLONE_IMAGE`).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction, PodSpec, Probe,
    SecretKeySelector, SecurityContext, Volume, VolumeMount,
};

use super::ClusterSettings;
use super::objects::{env_var, mount};
use crate::jobs::executor::Execution;
use crate::jobs::rclone::{self, Remote};
use model::service::MOUNT_LABEL;
use model::service::Service;
use model::service::mount::{MOUNT_ROOT, Mount};

const VOLUME: &str = "oscar-mount";
pub(super) const CONTAINER: &str = "oscar-mount";
/// The Secret key of a WebDAV password, which the sidecar obscures for rclone.
const PASSWORD_KEY: &str = "MOUNT_PASSWORD";
/// The Secret keys of the remote's folder and of the rclone flags the service adds.
const PATH_KEY: &str = "MOUNT_PATH";
const FLAGS_KEY: &str = "MOUNT_FLAGS";
/// How long the sidecar may take, once the job is over, to upload what was written.
pub const UPLOAD_SECONDS: i64 = 600;

/// Mounts, unmounts on SIGTERM and waits for rclone: it exits once every write is uploaded.
const SCRIPT: &str = r#"set -uf
# /mnt is the job's to write too: a symlink there must not lead this privileged container
# elsewhere (should it start again while the job runs).
at=""
IFS=/
for part in $MOUNT_AT; do
  [ -n "$part" ] || continue
  at="$at/$part"
  if [ -L "$at" ]; then
    echo "mount: $at is a symbolic link" >&2
    exit 1
  fi
done
unset IFS
# Started again after rclone died: its mount is dead, and in the way.
fusermount3 -uz "$MOUNT_AT" 2>/dev/null
if [ -n "${MOUNT_PASSWORD:-}" ]; then
  RCLONE_CONFIG_OSCAR_PASS="$(printf '%s' "$MOUNT_PASSWORD" | rclone obscure -)"
  export RCLONE_CONFIG_OSCAR_PASS
  unset MOUNT_PASSWORD
fi
mkdir -p "$MOUNT_AT"
# MOUNT_FLAGS holds only flags the platform checked: split on purpose.
# shellcheck disable=SC2086
rclone mount "OSCAR:$MOUNT_PATH" "$MOUNT_AT" --allow-other --dir-cache-time 5s \
  --log-level ERROR --cache-dir /tmp/rclone $MOUNT_FLAGS &
rclone=$!
trap 'fusermount3 -u "$MOUNT_AT" || fusermount3 -uz "$MOUNT_AT"; wait "$rclone"; exit $?' TERM INT
wait "$rclone"
"#;

/// The rclone remote of the job's mount, if it has one.
pub(super) fn remote_of(execution: &Execution) -> Option<Remote> {
    let mount = execution.mount.as_ref()?;
    rclone::remote(mount, &execution.config, &execution.store_keys).ok()
}

/// Why the job's mount cannot be made here (mounts turned off since its service was saved, a
/// provider gone): the job fails rather than run with an empty `/mnt`.
pub(super) fn unmountable(execution: &Execution, settings: &ClusterSettings) -> Option<String> {
    let mount = execution.mount.as_ref()?;
    if settings.rclone_image.is_none() {
        return Some(
            "mount: this cluster makes no mounts (OSCAR_KUBE_RCLONE_IMAGE is unset)".into(),
        );
    }
    rclone::remote(mount, &execution.config, &execution.store_keys).err()
}

/// What the Secret of a job or of a service's instances holds for the sidecar: the remote's
/// variables and password, its folder and flags.
pub fn secret_entries(remote: &Remote) -> Vec<(String, String)> {
    let mut entries = remote.variables().to_vec();
    if let Some(password) = remote.password() {
        entries.push((PASSWORD_KEY.into(), password.to_string()));
    }
    entries.extend([
        (PATH_KEY.into(), remote.path().to_string()),
        (FLAGS_KEY.into(), remote.flags().join(" ")),
    ]);
    entries
}

/// Adds the mount's sidecar (`image`: rclone's), which reads the remote from the Secret named
/// `secret` ([`secret_entries`]) and mounts it at `at`, and `/mnt` to the pod's first
/// container (the job's, the instance's). What the sidecar is told does not depend on the
/// provider: every variable a remote may set is read, those it does not are left unset.
pub(super) fn add_sidecar(pod: &mut PodSpec, secret: &str, at: &str, image: &str) {
    let from_secret = |name: String, optional: bool| EnvVar {
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: name.clone(),
                optional: Some(optional),
            }),
            ..Default::default()
        }),
        name,
    };
    let mut env: Vec<EnvVar> = rclone::VARIABLES
        .iter()
        .map(|name| from_secret(rclone::variable(name), true))
        .collect();
    env.extend([
        from_secret(PASSWORD_KEY.into(), true),
        from_secret(PATH_KEY.into(), false),
        from_secret(FLAGS_KEY.into(), false),
        env_var("MOUNT_AT", at),
    ]);
    let propagated = |how: &str| VolumeMount {
        mount_propagation: Some(how.into()),
        ..mount(VOLUME, MOUNT_ROOT, false)
    };
    let sidecar = Container {
        name: CONTAINER.into(),
        image: Some(image.to_string()),
        // Started before the job's container, stopped after it.
        restart_policy: Some("Always".into()),
        command: Some(vec!["/bin/sh".into(), "-c".into(), SCRIPT.into()]),
        env: Some(env),
        startup_probe: Some(mounted_at(at, 1, 60)),
        // A mount whose rclone died answers nothing: the sidecar starts again (failing a job,
        // whose files may be lost; remounting an instance's).
        liveness_probe: Some(mounted_at(at, 10, 3)),
        // FUSE and a mount the job's container sees need both.
        security_context: Some(SecurityContext {
            privileged: Some(true),
            ..Default::default()
        }),
        volume_mounts: Some(vec![propagated("Bidirectional")]),
        ..Default::default()
    };
    pod.init_containers.get_or_insert_default().push(sidecar);
    pod.volumes.get_or_insert_default().push(Volume {
        name: VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    });
    if let Some(first) = pod.containers.first_mut() {
        first
            .volume_mounts
            .get_or_insert_default()
            .push(propagated("HostToContainer"));
    }
    pod.termination_grace_period_seconds = Some(UPLOAD_SECONDS);
}

/// A probe that `at` is mounted, every `period` seconds, failing after `failures` misses.
fn mounted_at(at: &str, period: i32, failures: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec!["mountpoint".into(), "-q".into(), at.to_string()]),
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

/// The Secret the instances' sidecars of a service read its mount from.
pub fn instances_secret_name(service: &str) -> String {
    format!("{service}-mount")
}

/// Adds the mount's sidecar to the pods of a Deployment of the service's instances, when the
/// service has a mount and the cluster makes them.
pub(super) fn add_to_instances(
    deployment: &mut Deployment,
    service: &Service,
    settings: &ClusterSettings,
) {
    let (Some(mount), Some(image)) = (Mount::of(service), &settings.rclone_image) else {
        return;
    };
    let Some(template) = deployment.spec.as_mut().map(|spec| &mut spec.template) else {
        return;
    };
    template
        .metadata
        .get_or_insert_default()
        .labels
        .get_or_insert_default()
        .insert(MOUNT_LABEL.into(), "true".into());
    if let Some(pod) = template.spec.as_mut() {
        add_sidecar(
            pod,
            &instances_secret_name(&service.name),
            &mount.seen_at(),
            image,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::kubernetes::Namespacing;
    use crate::kubernetes::exposed::objects::{self as exposed, Scale};
    use crate::kubernetes::objects::tests::{selects, settings, storage, write_examples};
    use crate::kubernetes::objects::{JOB_CONTAINER, MOUNTS_POLICY, service_secret};
    use crate::kubernetes::workers::objects as workers;
    use k8s_openapi::api::networking::v1::NetworkPolicy;

    fn mounting(definition: serde_json::Value) -> Service {
        let mut definition = definition;
        definition["mount"] = json!({"storage_provider": "minio", "path": "site/www"});
        let mut service = Service::from_json(definition).unwrap();
        service.owner = "alice@example.org".into();
        service.token = "token-1".into();
        service
    }

    fn with_mounts() -> ClusterSettings {
        ClusterSettings {
            rclone_image: Some("rclone/rclone:1.68".into()),
            ..settings(Namespacing::PerUser)
        }
    }

    fn to_json(object: &impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(object).unwrap()
    }

    /// The pods of an exposed service and of warm workers get the jobs' sidecar, reading the
    /// service's `<name>-mount` Secret; the instances' keys are theirs, not the root keys.
    #[test]
    fn instances_mount_from_the_services_mount_secret() {
        let web = mounting(json!({"name": "web", "image": "nginx", "script": "",
            "expose": {"api_port": 80, "default_command": true}}));
        let remote = rclone::for_instances(&web, &BTreeMap::new(), &storage())
            .unwrap()
            .unwrap();
        let entries: BTreeMap<_, _> = secret_entries(&remote).into_iter().collect();
        assert_eq!(entries[&rclone::variable("ACCESS_KEY_ID")], "OSCI-web");
        assert_ne!(
            entries[&rclone::variable("SECRET_ACCESS_KEY")],
            "root-secret"
        );
        assert_eq!(entries[PATH_KEY], "site/www");

        let mut deployment = exposed::deployment(&web, "ns", Scale::running(&web), "r1").unwrap();
        add_to_instances(&mut deployment, &web, &with_mounts());
        let d = to_json(&deployment);
        let pod = &d["spec"]["template"]["spec"];
        let sidecar = pod["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == CONTAINER)
            .unwrap();
        let env = sidecar["env"].as_array().unwrap();
        // Every entry of the Secret is read from it, whatever the provider.
        for key in entries.keys() {
            let read = env.iter().find(|e| e["name"] == key.as_str()).unwrap();
            assert_eq!(read["valueFrom"]["secretKeyRef"]["name"], "web-mount");
        }
        assert!(env.contains(&json!({"name": "MOUNT_AT", "value": "/mnt/site/www"})));
        assert!(
            pod["containers"][0]["volumeMounts"]
                .as_array()
                .unwrap()
                .contains(&json!({"name": VOLUME, "mountPath": "/mnt",
                    "mountPropagation": "HostToContainer", "readOnly": false}))
        );
        assert!(
            !d.to_string()
                .contains(&entries[&rclone::variable("SECRET_ACCESS_KEY")])
        );

        // The shipped policy lets these pods, and no others, reach the store.
        let policy: NetworkPolicy = serde_norway::from_str(include_str!(
            "../../../deploy/kubernetes/base/networkpolicy-mounts.yaml"
        ))
        .unwrap();
        assert_eq!(policy.metadata.name.as_deref(), Some(MOUNTS_POLICY));
        let selector = policy.spec.unwrap().pod_selector.unwrap();
        let labels = |d: &Deployment| {
            d.spec
                .clone()
                .unwrap()
                .template
                .metadata
                .unwrap()
                .labels
                .unwrap()
        };
        assert!(selects(&selector, &labels(&deployment)));
        let unmounted = exposed::deployment(&web, "ns", Scale::running(&web), "r1").unwrap();
        assert!(!selects(&selector, &labels(&unmounted)));
        for key in selector.match_labels.iter().flatten().map(|(key, _)| key) {
            assert!(model::service::validate::is_reserved_key(key), "{key}");
        }

        let warm = mounting(json!({"name": "warm", "image": "python", "script": "x",
            "synchronous": {"min_scale": 1}}));
        let mut workers_deployment = workers::deployment(&warm, &with_mounts(), "ns", 1, "r1");
        add_to_instances(&mut workers_deployment, &warm, &with_mounts());
        let w = to_json(&workers_deployment);
        assert_eq!(
            w["spec"]["template"]["spec"]["containers"][0]["name"],
            JOB_CONTAINER
        );
        assert!(w.to_string().contains("warm-mount"));

        // Without mounts turned on, or without instances, nothing is added.
        let mut plain = exposed::deployment(&web, "ns", Scale::running(&web), "r1").unwrap();
        add_to_instances(&mut plain, &web, &settings(Namespacing::PerUser));
        assert!(!to_json(&plain).to_string().contains(CONTAINER));
        let jobs_only = mounting(json!({"name": "batch", "image": "i", "script": "x"}));
        assert!(rclone::for_instances(&jobs_only, &BTreeMap::new(), &storage()).is_none());

        let secret = service_secret(
            &web,
            &instances_secret_name(&web.name),
            "ns",
            &secret_entries(&remote),
        );
        write_examples(&[
            ("exposed-deployment-mount".into(), d),
            ("worker-deployment-mount".into(), w),
            ("instances-mount-secret".into(), to_json(&secret)),
        ]);
    }
}
