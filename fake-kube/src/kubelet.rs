//! The fake's kubelet and Job controller in one: for each new Job it makes a pod, mounts its
//! Secret and emptyDir volumes into a temporary directory, runs `cp` init containers and
//! then the container's command as a local process (paths under mount points rewritten to
//! that directory), keeps its output as the pod log, and reports phases, the termination
//! message and the Job's conditions as a cluster would. Images named in `unpullable` never
//! pull (`ImagePullBackOff`), like a wrong registry path.
//!
//! It is the Deployment controller too: each Deployment gets `replicas` pods of its template
//! (new ones when the template changes, as a rollout), run the same way and started again
//! when their process exits (`restartPolicy: Always`), and its status counts them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::store::{Key, random_suffix};
use crate::{FakeCluster, Selector};

/// The node this kubelet registers and runs every pod on, and what it offers.
pub const NODE: &str = "fake-node";
pub const NODE_CPU: &str = "4";
pub const NODE_MEMORY: &str = "8Gi";

/// What a termination message keeps, as on a cluster.
const MESSAGE_LIMIT: usize = 4096;

#[derive(Debug, Clone, Default)]
pub struct Kubelet {
    /// Files of images, as the local commands that stand for them: an init container's
    /// `cp <file> <dest>` makes `<dest>` run that command.
    pub programs: BTreeMap<String, Vec<String>>,
    /// Images that never pull.
    pub unpullable: Vec<String>,
    /// Images whose pods a ResourceQuota refuses: no pod is made, the Job gets a
    /// `FailedCreate` warning Event instead, as from the Job controller.
    pub over_quota: Vec<String>,
    /// Images whose pods no node has room for: they stay pending, unschedulable, as the
    /// scheduler leaves them.
    pub unschedulable: Vec<String>,
}

impl FakeCluster {
    /// Starts running Jobs; stops when the returned handle is aborted or dropped with the
    /// runtime.
    pub fn start_kubelet(&self, kubelet: Kubelet) -> tokio::task::JoinHandle<()> {
        let cluster = self.clone();
        let node = json!({
            "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
            "status": {"allocatable": {"cpu": NODE_CPU, "memory": NODE_MEMORY, "pods": "110"},
                "capacity": {"cpu": NODE_CPU, "memory": NODE_MEMORY, "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"},
                               {"type": "MemoryPressure", "status": "False"}]},
        });
        // A second kubelet on the same fake finds its node registered.
        let _ = cluster.store().create("nodes", "v1", "Node", "", node);
        tokio::spawn(control_deployments(cluster.clone(), kubelet.clone()));
        tokio::spawn(async move {
            let mut changes = cluster.changes();
            let mut seen = 0;
            let every = Selector::default();
            loop {
                changes.borrow_and_update();
                for (version, event) in cluster.store().events_after(seen, "jobs", None, &every) {
                    seen = version;
                    if event["type"] == "ADDED" {
                        let job = event["object"].clone();
                        tokio::spawn(run_job(cluster.clone(), kubelet.clone(), job));
                    }
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

async fn run_job(cluster: FakeCluster, kubelet: Kubelet, job: Value) {
    let namespace = text(&job["metadata"]["namespace"]);
    let job_name = text(&job["metadata"]["name"]);
    let template = &job["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    labels["job-name"] = json!(job_name);
    labels["batch.kubernetes.io/job-name"] = json!(job_name);
    let pod_name = format!("{job_name}-{}", random_suffix());
    let image = text(&template["spec"]["containers"][0]["image"]);
    if kubelet.over_quota.contains(&image) {
        let event = json!({
            "metadata": {"generateName": format!("{job_name}.")},
            "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "name": job_name,
                "namespace": namespace, "uid": job["metadata"]["uid"]},
            "type": "Warning", "reason": "FailedCreate",
            "message": format!("Error creating: pods \"{pod_name}\" is forbidden: exceeded quota: compute-resources, requested: limits.memory=256Mi, used: limits.memory=1Gi, limited: limits.memory=1Gi"),
        });
        let _ = cluster
            .store()
            .create("events", "v1", "Event", &namespace, event);
        return;
    }
    let mut spec = template["spec"].clone();
    let owner = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": job_name,
        "uid": job["metadata"]["uid"], "controller": true}]);
    if kubelet.unschedulable.contains(&image) {
        let pod = json!({
            "metadata": {"name": pod_name, "labels": labels, "ownerReferences": owner},
            "spec": spec,
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled",
                "status": "False", "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu."}]},
        });
        let _ = cluster.store().create("pods", "v1", "Pod", &namespace, pod);
        return;
    }
    spec["nodeName"] = json!(NODE);
    let pod = json!({
        "metadata": {"name": pod_name, "labels": labels,
            "annotations": template["metadata"]["annotations"],
            "ownerReferences": owner},
        "spec": spec,
        "status": {"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}]},
    });
    if cluster
        .store()
        .create("pods", "v1", "Pod", &namespace, pod)
        .is_err()
    {
        return;
    }
    let pod_key = Key::new("pods", &namespace, &pod_name);
    let job_key = Key::new("jobs", &namespace, &job_name);
    let deadline = job["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .map(Duration::from_secs)
        .unwrap_or(Duration::MAX / 4);
    let ended = run_pod(
        &cluster,
        &kubelet,
        &pod_key,
        &template["spec"],
        Some(&job_key),
        deadline,
        0,
    )
    .await;
    let failed = |reason: &str, message: &str| {
        cluster.store().update(&job_key, |job| {
            job["status"]["active"] = json!(0);
            job["status"]["failed"] = json!(1);
            job["status"]["conditions"] = json!([{"type": "Failed", "status": "True",
                "reason": reason, "message": message}]);
        });
    };
    match ended {
        Ended::Gone | Ended::Waiting => {}
        Ended::Unstartable(message) => failed("BackoffLimitExceeded", &message),
        Ended::DeadlineExceeded => failed(
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ),
        Ended::Exited(0) => {
            cluster.store().update(&job_key, |job| {
                job["status"]["active"] = json!(0);
                job["status"]["succeeded"] = json!(1);
                job["status"]["conditions"] = json!([{"type": "Complete", "status": "True"}]);
            });
        }
        Ended::Exited(_) => failed(
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ),
    }
}

/// The Deployment controller: after every change, each Deployment's pods and status are
/// made to match it. Ends with the runtime.
async fn control_deployments(cluster: FakeCluster, kubelet: Kubelet) {
    let mut changes = cluster.changes();
    loop {
        changes.borrow_and_update();
        for deployment in cluster.list("deployments", None) {
            reconcile_deployment(&cluster, &kubelet, &deployment);
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

fn reconcile_deployment(cluster: &FakeCluster, kubelet: &Kubelet, deployment: &Value) {
    use std::hash::{Hash, Hasher};
    let namespace = text(&deployment["metadata"]["namespace"]);
    let name = text(&deployment["metadata"]["name"]);
    let uid = deployment["metadata"]["uid"].clone();
    let template = &deployment["spec"]["template"];
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    template.to_string().hash(&mut hasher);
    let hash = format!("{:x}", hasher.finish() & 0xff_ffff_ffff);
    let wanted = deployment["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
    let mut current = Vec::new();
    for pod in cluster.list("pods", Some(&namespace)) {
        let owned = pod["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid));
        if !owned {
            continue;
        }
        let pod_name = text(&pod["metadata"]["name"]);
        // An older template's pods go (a rollout), and those beyond the replicas.
        if pod["metadata"]["labels"]["pod-template-hash"] != json!(hash) || current.len() >= wanted
        {
            cluster
                .store()
                .delete(&Key::new("pods", &namespace, &pod_name));
        } else {
            current.push(pod);
        }
    }
    for _ in current.len()..wanted {
        let pod_name = format!("{name}-{hash}-{}", random_suffix());
        let mut labels = template["metadata"]["labels"].clone();
        labels["pod-template-hash"] = json!(hash);
        let mut spec = template["spec"].clone();
        spec["nodeName"] = json!(NODE);
        let pod = json!({
            "metadata": {"name": pod_name, "labels": labels,
                "annotations": template["metadata"]["annotations"],
                "creationTimestamp": k8s_openapi::jiff::Timestamp::now().to_string(),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                    "uid": uid, "controller": true}]},
            "spec": spec,
            "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "True"}]},
        });
        if let Ok(pod) = cluster.store().create("pods", "v1", "Pod", &namespace, pod) {
            current.push(pod);
            let key = Key::new("pods", &namespace, &pod_name);
            tokio::spawn(keep_running(cluster.clone(), kubelet.clone(), key));
        }
    }
    let ready = current
        .iter()
        .filter(|pod| {
            pod["status"]["conditions"].as_array().is_some_and(|all| {
                all.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .count();
    let status = json!({"observedGeneration": 1, "replicas": current.len(),
        "updatedReplicas": current.len(), "readyReplicas": ready, "availableReplicas": ready,
        "conditions": [{"type": "Available",
            "status": if ready >= wanted { "True" } else { "False" },
            "reason": if ready >= wanted { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }}]});
    if deployment["status"] != status {
        cluster
            .store()
            .update(&Key::new("deployments", &namespace, &name), |d| {
                d["status"] = status;
            });
    }
}

/// Runs a Deployment's pod until it is deleted, starting its process again each time it
/// exits, a second later (`CrashLoopBackOff` meanwhile).
async fn keep_running(cluster: FakeCluster, kubelet: Kubelet, pod: Key) {
    let Some(spec) = cluster.store().get(&pod).map(|p| p["spec"].clone()) else {
        return;
    };
    for restarts in 0.. {
        match run_pod(
            &cluster,
            &kubelet,
            &pod,
            &spec,
            None,
            Duration::MAX / 4,
            restarts,
        )
        .await
        {
            Ended::Exited(_) => {
                cluster.store().update(&pod, |pod| {
                    pod["status"]["phase"] = json!("Running");
                    pod["status"]["containerStatuses"][0]["state"] = json!({"waiting": {
                        "reason": "CrashLoopBackOff", "message": "back-off 1s restarting failed container"}});
                    pod["status"]["containerStatuses"][0]["restartCount"] = json!(restarts + 1);
                });
                tokio::time::sleep(Duration::from_secs(1)).await;
                if cluster.store().get(&pod).is_none() {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// How a pod's container ended.
enum Ended {
    /// The pod was deleted.
    Gone,
    /// It waits for ever (an image that does not pull, a missing Secret).
    Waiting,
    /// It could not start; why.
    Unstartable(String),
    DeadlineExceeded,
    Exited(i32),
}

/// Runs a pod's container as a local process until it ends, keeping the pod's status as a
/// kubelet does (its `job`'s `active` count too). A pod with container ports becomes Ready
/// once the first accepts connections (its readiness probe, simplified); others when running.
async fn run_pod(
    cluster: &FakeCluster,
    kubelet: &Kubelet,
    pod_key: &Key,
    spec: &Value,
    job: Option<&Key>,
    deadline: Duration,
    restarts: u32,
) -> Ended {
    let namespace = pod_key.namespace.clone();
    let pod_name = pod_key.name.clone();
    let container = spec["containers"][0].clone();
    let container_name = text(&container["name"]);
    let image = text(&container["image"]);
    let waiting = |reason: &str, message: &str| {
        json!([{"name": container_name, "image": image, "imageID": "", "ready": false,
            "restartCount": restarts, "state": {"waiting": {"reason": reason, "message": message}}}])
    };
    let fail = |message: &str| {
        cluster.store().update(pod_key, |pod| {
            pod["status"]["phase"] = json!("Failed");
            pod["status"]["message"] = json!(message);
        });
        Ended::Unstartable(message.to_string())
    };
    if kubelet.unpullable.contains(&image) {
        let message = format!("Back-off pulling image \"{image}\"");
        cluster.store().update(pod_key, |pod| {
            pod["status"]["containerStatuses"] = waiting("ImagePullBackOff", &message);
        });
        return Ended::Waiting;
    }

    let Ok(dir) = tempfile::tempdir() else {
        return fail("cannot make the pod's directory");
    };
    let mounts = match mount_volumes(cluster, &namespace, spec, dir.path(), pod_key).await {
        Some(mounts) => mounts,
        None => return Ended::Gone,
    };
    let mut commands: BTreeMap<String, Vec<String>> = kubelet.programs.clone();
    for init in spec["initContainers"].as_array().into_iter().flatten() {
        let command: Vec<String> = init["command"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        match command.as_slice() {
            [cp, from, to] if cp == "cp" && kubelet.programs.contains_key(from) => {
                commands.insert(to.clone(), kubelet.programs[from].clone());
            }
            _ => return fail("the fake kubelet runs `cp` init containers only"),
        }
    }

    let message_path = container["terminationMessagePath"]
        .as_str()
        .unwrap_or("/dev/termination-log")
        .to_string();
    let message_file = dir.path().join("termination-log");
    let local = |value: &str| -> String {
        if value == message_path {
            return message_file.to_string_lossy().into_owned();
        }
        for (mount_path, local_dir) in &mounts {
            if let Some(rest) = value.strip_prefix(mount_path.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return format!("{}{rest}", local_dir.display());
            }
        }
        value.to_string()
    };
    let mut env: Vec<(String, String)> = Vec::new();
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let name = text(&from["secretRef"]["name"]);
        match cluster.get("secrets", &namespace, &name) {
            Some(secret) => env.extend(decoded(&secret)),
            None if from["secretRef"]["optional"] == json!(true) => {}
            None => {
                let message = format!("secret \"{name}\" not found");
                cluster.store().update(pod_key, |pod| {
                    pod["status"]["containerStatuses"] =
                        waiting("CreateContainerConfigError", &message);
                });
                return Ended::Waiting;
            }
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        env.push((
            text(&var["name"]),
            local(var["value"].as_str().unwrap_or_default()),
        ));
    }
    let command: Vec<String> = container["command"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    let Some((program, args)) = command.split_first() else {
        return fail("the container has no command (the fake runs no image's own)");
    };
    let mut full: Vec<String> = commands
        .get(program)
        .cloned()
        .unwrap_or_else(|| vec![local(program)]);
    full.extend(args.iter().map(|arg| local(arg)));

    let mut process = tokio::process::Command::new(&full[0]);
    process
        .args(&full[1..])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("TMPDIR", dir.path())
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match process.spawn() {
        Ok(child) => child,
        Err(err) => return fail(&format!("cannot start {}: {err}", full[0])),
    };
    let port = container["ports"][0]["containerPort"].as_u64();
    let running = json!([{"name": container_name, "image": image, "imageID": "",
        "ready": port.is_none(), "restartCount": restarts, "state": {"running": {}}}]);
    cluster.store().update(pod_key, |pod| {
        pod["status"]["phase"] = json!("Running");
        pod["status"]["containerStatuses"] = running;
        pod["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": if port.is_none() { "True" } else { "False" }}]);
    });
    if let Some(job) = job {
        cluster
            .store()
            .update(job, |job| job["status"]["active"] = json!(1));
    }
    let probe = port.map(|port| tokio::spawn(become_ready(cluster.clone(), pod_key.clone(), port)));
    let out = tokio::spawn(keep_log(
        cluster.clone(),
        namespace.clone(),
        pod_name.clone(),
        child.stdout.take(),
    ));
    let err = tokio::spawn(keep_log(
        cluster.clone(),
        namespace.clone(),
        pod_name.clone(),
        child.stderr.take(),
    ));
    let deleted = {
        let cluster = cluster.clone();
        let pod_key = pod_key.clone();
        async move {
            while cluster.store().get(&pod_key).is_some() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let exit = tokio::select! {
        status = child.wait() => status.ok().and_then(|s| s.code()),
        _ = tokio::time::sleep(deadline) => {
            let _ = child.kill().await;
            let _ = tokio::join!(out, err);
            cluster.store().update(pod_key, |pod| {
                pod["status"]["phase"] = json!("Failed");
                pod["status"]["reason"] = json!("DeadlineExceeded");
            });
            return Ended::DeadlineExceeded;
        }
        // Deleted while running: the process goes with it, freeing its port.
        () = deleted => {
            if let Some(probe) = probe {
                probe.abort();
            }
            let _ = child.kill().await;
            return Ended::Gone;
        }
    };
    if let Some(probe) = probe {
        probe.abort();
    }
    let _ = tokio::join!(out, err);
    let code = exit.unwrap_or(137);
    let mut message = std::fs::read(&message_file).unwrap_or_default();
    message.truncate(MESSAGE_LIMIT);
    let message = String::from_utf8_lossy(&message).into_owned();
    let succeeded = code == 0;
    let terminated = json!([{"name": container_name, "image": image, "imageID": "",
        "ready": false, "restartCount": restarts, "state": {"terminated": {"exitCode": code,
            "reason": if succeeded { "Completed" } else { "Error" }, "message": message}}}]);
    cluster.store().update(pod_key, |pod| {
        pod["status"]["phase"] = json!(if succeeded { "Succeeded" } else { "Failed" });
        pod["status"]["containerStatuses"] = terminated;
        pod["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False"}]);
    });
    Ended::Exited(code)
}

/// Marks the pod Ready once its port on loopback accepts connections.
async fn become_ready(cluster: FakeCluster, pod: Key, port: u64) {
    let Ok(port) = u16::try_from(port) else {
        return;
    };
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.store().update(&pod, |pod| {
        pod["status"]["containerStatuses"][0]["ready"] = json!(true);
        pod["status"]["conditions"][1]["status"] = json!("True");
    });
}

/// The Secret's data, decoded.
fn decoded(secret: &Value) -> Vec<(String, String)> {
    secret["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap_or_default())
                .unwrap_or_default();
            (key.clone(), String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect()
}

/// Lays out the container's volumes under `root`, waiting (as a kubelet does) for the
/// Secrets they need. Returns mount path → local directory, longest path first; `None` when
/// the pod was deleted meanwhile.
async fn mount_volumes(
    cluster: &FakeCluster,
    namespace: &str,
    spec: &Value,
    root: &Path,
    pod: &Key,
) -> Option<Vec<(String, PathBuf)>> {
    let mut volumes: BTreeMap<String, PathBuf> = BTreeMap::new();
    for volume in spec["volumes"].as_array().into_iter().flatten() {
        let name = text(&volume["name"]);
        let local = root.join("volumes").join(&name);
        std::fs::create_dir_all(&local).ok()?;
        // A Secret's (base64) or a ConfigMap's (plain) data as files.
        let source = if volume["secret"].is_object() {
            Some((
                "secrets",
                text(&volume["secret"]["secretName"]),
                &volume["secret"],
            ))
        } else if volume["configMap"].is_object() {
            Some((
                "configmaps",
                text(&volume["configMap"]["name"]),
                &volume["configMap"],
            ))
        } else {
            None
        };
        if let Some((resource, object_name, source)) = source {
            let mut changes = cluster.changes();
            let object = loop {
                changes.borrow_and_update();
                if let Some(object) = cluster.get(resource, namespace, &object_name) {
                    break object;
                }
                cluster.store().get(pod)?;
                // Woken by the next change (the object's creation), at the latest in 1 s.
                let _ = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await;
            };
            let data: BTreeMap<String, String> = if resource == "secrets" {
                decoded(&object).into_iter().collect()
            } else {
                serde_json::from_value(object["data"].clone()).unwrap_or_default()
            };
            let items: Vec<(String, String)> = match source["items"].as_array() {
                Some(items) => items
                    .iter()
                    .map(|item| (text(&item["key"]), text(&item["path"])))
                    .collect(),
                None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
            };
            for (key, path) in items {
                let file = local.join(path);
                std::fs::create_dir_all(file.parent()?).ok()?;
                std::fs::write(
                    &file,
                    data.get(&key).map(String::as_str).unwrap_or_default(),
                )
                .ok()?;
            }
        }
        volumes.insert(name, local);
    }
    let container = &spec["containers"][0];
    let mut mounts: Vec<(String, PathBuf)> = container["volumeMounts"]
        .as_array()
        .into_iter()
        .chain(spec["initContainers"][0]["volumeMounts"].as_array())
        .flatten()
        .filter_map(|m| {
            Some((
                text(&m["mountPath"]),
                volumes.get(m["name"].as_str()?)?.clone(),
            ))
        })
        .collect();
    mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    mounts.dedup_by(|a, b| a.0 == b.0);
    Some(mounts)
}

async fn keep_log(
    cluster: FakeCluster,
    namespace: String,
    pod: String,
    stream: Option<impl tokio::io::AsyncRead + Unpin>,
) {
    let Some(stream) = stream else { return };
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        cluster.store().append_log(&namespace, &pod, &line);
    }
}
