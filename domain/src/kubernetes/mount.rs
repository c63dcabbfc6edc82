//! A service's `mount` on Kubernetes, as upstream makes it: an rclone sidecar mounts the
//! provider's folder (FUSE) in a volume the job's container sees at `/mnt`, with mount
//! propagation. Unlike upstream's, the sidecar starts before the job (a native sidecar with a
//! startup probe: the job never sees an empty `/mnt`) and, when stopped with the job, unmounts
//! and waits until rclone has uploaded every file written to it. As upstream's, files are
//! streamed (no copy on the node). FUSE needs a privileged
//! container, so the operator turns mounts on (`OSCAR_KUBE_RCLONE_IMAGE`).

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction, PodSpec, Probe,
    SecretKeySelector, SecurityContext, Volume, VolumeMount,
};

use super::ClusterSettings;
use super::objects::{env_var, mount};
use crate::jobs::executor::Execution;
use crate::jobs::rclone::{self, Remote};
use model::service::mount::MOUNT_ROOT;

const VOLUME: &str = "oscar-mount";
pub(super) const CONTAINER: &str = "oscar-mount";
/// The Secret key of a WebDAV password, which the sidecar obscures for rclone.
const PASSWORD_KEY: &str = "MOUNT_PASSWORD";
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

/// What the job's Secret holds for its sidecar: the remote's variables and password.
pub(super) fn secret_entries(execution: &Execution) -> Vec<(String, String)> {
    let Some(remote) = remote_of(execution) else {
        return Vec::new();
    };
    let mut entries = remote.variables().to_vec();
    if let Some(password) = remote.password() {
        entries.push((PASSWORD_KEY.into(), password.to_string()));
    }
    entries
}

/// Adds the mount's sidecar (`image`: rclone's) to the job's pod, its credentials read from
/// the job's Secret, and `/mnt` to the job's container (the pod's first); whether the job has
/// a mount to add.
pub(super) fn add_sidecar(pod: &mut PodSpec, execution: &Execution, image: &str) -> bool {
    let (Some(mount_of), Some(remote)) = (&execution.mount, remote_of(execution)) else {
        return false;
    };
    let from_secret = |name: &str| EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: execution.job.clone(),
                key: name.to_string(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
    };
    let at = mount_of.seen_at();
    let mut env: Vec<EnvVar> = remote
        .variables()
        .iter()
        .map(|(name, _)| from_secret(name))
        .collect();
    if remote.password().is_some() {
        env.push(from_secret(PASSWORD_KEY));
    }
    env.extend([
        env_var("MOUNT_PATH", remote.path()),
        env_var("MOUNT_AT", &at),
        env_var("MOUNT_FLAGS", &remote.flags().join(" ")),
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
        startup_probe: Some(Probe {
            exec: Some(ExecAction {
                command: Some(vec!["mountpoint".into(), "-q".into(), at]),
            }),
            period_seconds: Some(1),
            failure_threshold: Some(60),
            ..Default::default()
        }),
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
    if let Some(job) = pod.containers.first_mut() {
        job.volume_mounts
            .get_or_insert_default()
            .push(propagated("HostToContainer"));
    }
    pod.termination_grace_period_seconds = Some(UPLOAD_SECONDS);
    true
}
