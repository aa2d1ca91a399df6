//! Running one Pod as a local process: command resolution, environment
//! (field refs, Secret/ConfigMap refs, `JOB_COMPLETION_INDEX`, the per-pod
//! termination-message file), log capture, kill handling, and the Pod
//! status it writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::Processes;
use super::config::RunnerConfig;
use crate::store::{Store, Subresource, now_rfc3339};

/// Largest termination message kept, like the kubelet (which keeps the last bytes).
pub const MAX_TERMINATION_MESSAGE: usize = 4096;

/// Why a process was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    /// Killed on request (fault injection or Pod deletion).
    Killed,
    /// The Job's `activeDeadlineSeconds` passed.
    DeadlineExceeded,
}

fn pod_info(store: &Store) -> Option<crate::resources::ResourceInfo> {
    store.resource("", "v1", "pods")
}

fn set_status(store: &Store, ns: &str, name: &str, status: Value) {
    let Some(info) = pod_info(store) else { return };
    let _ = store.update_with(&info, ns, name, Subresource::Status, |current| {
        let mut next = current.clone();
        next["status"] = status;
        if let Some(meta) = next["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        Ok(next)
    });
}

fn lookup_ref(store: &Store, ns: &str, resource: &str, key_ref: &Value) -> Option<String> {
    let info = store.resource("", "v1", resource)?;
    let object = store.get(&info, ns, key_ref["name"].as_str()?).ok()?;
    let key = key_ref["key"].as_str()?;
    if resource == "secrets" {
        if let Some(s) = object["stringData"][key].as_str() {
            return Some(s.to_string());
        }
        let encoded = object["data"][key].as_str()?;
        return decode_base64(encoded);
    }
    object["data"][key].as_str().map(String::from)
}

fn decode_base64(input: &str) -> Option<String> {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in input
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
    {
        let v = TABLE.iter().position(|t| *t == c)? as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).ok()
}

fn field_ref(pod: &Value, path: &str) -> String {
    let meta = &pod["metadata"];
    let value = if let Some(key) = path
        .strip_prefix("metadata.labels['")
        .and_then(|k| k.strip_suffix("']"))
    {
        meta["labels"][key].clone()
    } else if let Some(key) = path
        .strip_prefix("metadata.annotations['")
        .and_then(|k| k.strip_suffix("']"))
    {
        meta["annotations"][key].clone()
    } else {
        match path {
            "status.podIP" | "status.hostIP" => json!("127.0.0.1"),
            "spec.nodeName" => json!("devcluster"),
            _ => path.split('.').fold(pod.clone(), |v, seg| v[seg].clone()),
        }
    };
    value.as_str().map(String::from).unwrap_or_default()
}

/// The environment for a container.
fn environment(
    store: &Store,
    pod: &Value,
    container: &Value,
    extra: &BTreeMap<String, String>,
    termination_path: &Path,
) -> Result<BTreeMap<String, String>, String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut env = BTreeMap::new();
    for key in ["PATH", "HOME", "TMPDIR", "LANG"] {
        if let Ok(v) = std::env::var(key) {
            env.insert(key.to_string(), v);
        }
    }
    env.extend(extra.clone());
    env.extend(env_from(store, ns, container)?);
    env.insert(
        "HOSTNAME".into(),
        pod["metadata"]["name"].as_str().unwrap_or_default().into(),
    );
    let declared_path = container["terminationMessagePath"]
        .as_str()
        .unwrap_or("/dev/termination-log");
    for var in container["env"].as_array().into_iter().flatten() {
        let Some(name) = var["name"].as_str() else {
            continue;
        };
        let value = if let Some(v) = var["value"].as_str() {
            Some(v.to_string())
        } else if let Some(path) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            Some(field_ref(pod, path))
        } else if var["valueFrom"]["secretKeyRef"].is_object() {
            lookup_ref(store, ns, "secrets", &var["valueFrom"]["secretKeyRef"])
        } else if var["valueFrom"]["configMapKeyRef"].is_object() {
            lookup_ref(
                store,
                ns,
                "configmaps",
                &var["valueFrom"]["configMapKeyRef"],
            )
        } else {
            None
        };
        let Some(value) = value else { continue };
        let value = if value == declared_path {
            termination_path.display().to_string()
        } else {
            value
        };
        env.insert(name.to_string(), value);
    }
    // Projected Secret volumes: written under the Pod's directory, and every variable that
    // names a path under a mount point is pointed at the copy (the real mount point, e.g.
    // /var/run/secrets/..., must not be touched on a dev machine).
    if let Some(pod_dir) = termination_path.parent() {
        for (mount, local) in secret_volumes(store, pod, container, pod_dir)? {
            for value in env.values_mut() {
                if let Some(rest) = value.strip_prefix(mount.as_str())
                    && (rest.is_empty() || rest.starts_with('/'))
                {
                    *value = format!("{}{rest}", local.display());
                }
            }
        }
    }
    if let Some(index) =
        pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"].as_str()
    {
        env.insert("JOB_COMPLETION_INDEX".into(), index.to_string());
    }
    let per_pod = termination_path.display().to_string();
    env.insert(
        "DEVCLUSTER_TERMINATION_MESSAGE_PATH".into(),
        per_pod.clone(),
    );
    // tipoff processors write their result to $TIPOFF_RESULT_PATH, falling
    // back to /dev/termination-log, which must not be touched on a dev machine.
    env.entry("TIPOFF_RESULT_PATH".into()).or_insert(per_pod);
    Ok(env)
}

/// Materializes the container's mounts of `projected` volumes with `secret` sources (items or
/// every key) under `<pod_dir>/volumes/<volume>/`, and returns each mount path with its local
/// directory; a missing Secret that is not `optional` is the kubelet's error.
fn secret_volumes(
    store: &Store,
    pod: &Value,
    container: &Value,
    pod_dir: &std::path::Path,
) -> Result<Vec<(String, PathBuf)>, String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let (Some(volume), Some(path)) = (mount["name"].as_str(), mount["mountPath"].as_str())
        else {
            continue;
        };
        let Some(spec) = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == volume)
        else {
            continue;
        };
        let sources = spec["projected"]["sources"].as_array();
        if sources.is_none() {
            continue;
        }
        let local = pod_dir.join("volumes").join(volume);
        std::fs::create_dir_all(&local).map_err(|e| format!("volume {volume}: {e}"))?;
        for source in sources.into_iter().flatten() {
            let secret = &source["secret"];
            let Some(name) = secret["name"].as_str() else {
                continue;
            };
            let found = store
                .resource("", "v1", "secrets")
                .and_then(|info| store.get(&info, ns, name).ok());
            let Some(object) = found else {
                if secret["optional"].as_bool() == Some(true) {
                    continue;
                }
                return Err(format!(
                    "MountVolume.SetUp failed for volume \"{volume}\": secret \"{name}\" not found"
                ));
            };
            let value_of = |key: &str| {
                object["stringData"][key]
                    .as_str()
                    .map(String::from)
                    .or_else(|| object["data"][key].as_str().and_then(decode_base64))
            };
            let items: Vec<(String, String)> = match secret["items"].as_array() {
                Some(items) => items
                    .iter()
                    .filter_map(|i| {
                        Some((
                            i["key"].as_str()?.to_owned(),
                            i["path"].as_str()?.to_owned(),
                        ))
                    })
                    .collect(),
                None => object["data"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| (k.clone(), k.clone()))
                    .collect(),
            };
            for (key, file) in items {
                let Some(value) = value_of(&key) else {
                    return Err(format!("secret \"{name}\" has no key \"{key}\""));
                };
                std::fs::write(local.join(&file), value)
                    .map_err(|e| format!("volume {volume}: {file}: {e}"))?;
            }
        }
        mounts.push((path.trim_end_matches('/').to_owned(), local));
    }
    Ok(mounts)
}

/// Variables from `envFrom` ConfigMaps and Secrets (with `prefix`), or the
/// kubelet's error for a missing source that is not `optional`.
fn env_from(
    store: &Store,
    ns: &str,
    container: &Value,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = source["prefix"].as_str().unwrap_or_default();
        let (resource, kind, reference) = if source["configMapRef"].is_object() {
            ("configmaps", "configmap", &source["configMapRef"])
        } else if source["secretRef"].is_object() {
            ("secrets", "secret", &source["secretRef"])
        } else {
            continue;
        };
        let name = reference["name"].as_str().unwrap_or_default();
        let found = store
            .resource("", "v1", resource)
            .and_then(|info| store.get(&info, ns, name).ok());
        let Some(object) = found else {
            if reference["optional"].as_bool() == Some(true) {
                continue;
            }
            return Err(format!("{kind} \"{name}\" not found"));
        };
        for (key, value) in object["data"].as_object().into_iter().flatten() {
            let value = match (resource, value.as_str()) {
                ("secrets", Some(encoded)) => decode_base64(encoded),
                (_, Some(plain)) => Some(plain.to_string()),
                _ => None,
            };
            if let Some(value) = value {
                env.insert(format!("{prefix}{key}"), value);
            }
        }
    }
    Ok(env)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

fn waiting_status(container: &Value, reason: &str, message: &str) -> Value {
    json!({
        "phase": "Pending",
        "qosClass": "BestEffort",
        "containerStatuses": [{
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "ready": false,
            "started": false,
            "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}},
        }],
    })
}

/// The last [`MAX_TERMINATION_MESSAGE`] bytes of the file, as the kubelet keeps them
/// (`tail.ReadAtMost` in `kuberuntime_container.go`): an oversized message loses its start.
async fn read_termination_message(path: &Path) -> String {
    let bytes = tokio::fs::read(path).await.unwrap_or_default();
    let start = bytes.len().saturating_sub(MAX_TERMINATION_MESSAGE);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

async fn log_tail(path: &Path) -> String {
    let text = tokio::fs::read_to_string(path).await.unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(80)..].join("\n");
    let start = tail.len().saturating_sub(2048);
    let start = (start..=tail.len())
        .find(|i| tail.is_char_boundary(*i))
        .unwrap_or(tail.len());
    tail[start..].to_string()
}

async fn kill_group(pid: Option<u32>, child: &mut tokio::process::Child) {
    // The process leads its own process group; kill the whole group so
    // `sh -c` children die too. Never signal group 0/1 (ourselves / everyone).
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.start_kill();
}

/// Runs a Pod's first container to completion and records its status.
pub async fn run(
    store: Arc<Store>,
    processes: Arc<Processes>,
    config: Arc<RunnerConfig>,
    pod: Value,
    kill: oneshot::Receiver<KillReason>,
) {
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let container = pod["spec"]["containers"][0].clone();
    let image = container["image"].as_str().unwrap_or_default().to_string();
    let Some(mapping) = config.resolve(&image) else {
        set_status(
            &store,
            &ns,
            &name,
            waiting_status(
                &container,
                "ErrImagePull",
                &format!("image {image:?} is not mapped in the runner config"),
            ),
        );
        processes.finished(&ns, &name);
        return;
    };
    let image_id = mapping.image_id.clone().unwrap_or_else(|| image.clone());
    let mut argv = strings(&container["command"]);
    let container_args = strings(&container["args"]);
    if argv.is_empty() {
        argv = mapping.command.clone();
        argv.extend(if container_args.is_empty() {
            mapping.args.clone()
        } else {
            container_args
        });
    } else {
        argv.extend(container_args);
    }
    let dir = processes.pod_dir(&ns, &name);
    let log_path = processes.log_path(&ns, &name);
    let termination_path: PathBuf = dir.join("termination-log");
    let declared = container["terminationMessagePath"]
        .as_str()
        .unwrap_or("/dev/termination-log")
        .to_string();
    let argv: Vec<String> = argv
        .into_iter()
        .map(|a| {
            if a == declared {
                termination_path.display().to_string()
            } else {
                a
            }
        })
        .collect();
    let Some((program, args)) = argv.split_first() else {
        set_status(
            &store,
            &ns,
            &name,
            waiting_status(
                &container,
                "CreateContainerError",
                "no command for container",
            ),
        );
        processes.finished(&ns, &name);
        return;
    };
    let prepared = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(&termination_path, b"").await?;
        let log = std::fs::File::create(&log_path)?;
        let err = log.try_clone()?;
        Ok::<_, std::io::Error>((log, err))
    }
    .await;
    let mut kill = kill;
    let mut reported = false;
    // Like the kubelet: a missing ConfigMap/Secret keeps the Pod waiting
    // (CreateContainerConfigError) until it appears or the Pod goes.
    let env = loop {
        match environment(&store, &pod, &container, &mapping.env, &termination_path) {
            Ok(env) => break env,
            Err(message) => {
                if !reported {
                    set_status(
                        &store,
                        &ns,
                        &name,
                        waiting_status(&container, "CreateContainerConfigError", &message),
                    );
                    reported = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
                    _ = &mut kill => {
                        processes.finished(&ns, &name);
                        return;
                    }
                }
            }
        }
    };
    let started_at = now_rfc3339();
    let working_dir = container["workingDir"]
        .as_str()
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| dir.clone());
    let spawned = prepared.and_then(|(out, err)| {
        tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(&env)
            .current_dir(&working_dir)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
    });
    let base = json!({
        "name": container["name"],
        "image": image,
        "imageID": image_id,
        "restartCount": 0,
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let mut cs = base.clone();
            cs["ready"] = json!(false);
            cs["started"] = json!(false);
            cs["state"] = json!({"terminated": {"exitCode": 128, "reason": "StartError",
                "message": format!("failed to start {program:?}: {e}"), "startedAt": started_at, "finishedAt": now_rfc3339()}});
            set_status(
                &store,
                &ns,
                &name,
                json!({"phase": "Failed", "qosClass": "BestEffort",
                "startTime": started_at, "containerStatuses": [cs]}),
            );
            processes.finished(&ns, &name);
            return;
        }
    };
    let pid = child.id();
    let container_id = format!("devcluster://{}", pid.unwrap_or_default());
    let mut running = base.clone();
    running["ready"] = json!(true);
    running["started"] = json!(true);
    running["containerID"] = json!(container_id);
    running["state"] = json!({"running": {"startedAt": started_at}});
    set_status(
        &store,
        &ns,
        &name,
        json!({
            "phase": "Running",
            "qosClass": "BestEffort",
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "startTime": started_at,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": started_at},
                {"type": "Ready", "status": "True", "lastTransitionTime": started_at},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": started_at},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started_at},
            ],
            "containerStatuses": [running],
        }),
    );
    let (exit, killed) = tokio::select! {
        status = child.wait() => (status.ok(), None),
        reason = &mut kill => {
            kill_group(pid, &mut child).await;
            (child.wait().await.ok(), Some(reason.unwrap_or(KillReason::Killed)))
        }
    };
    let exit_code = exit
        .map(|s| {
            use std::os::unix::process::ExitStatusExt;
            s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9))
        })
        .unwrap_or(137);
    let mut message = read_termination_message(&termination_path).await;
    if message.is_empty()
        && exit_code != 0
        && container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    {
        message = log_tail(&log_path).await;
    }
    let reason = match (exit_code, killed) {
        (_, Some(KillReason::DeadlineExceeded)) => "DeadlineExceeded",
        (0, _) => "Completed",
        _ => "Error",
    };
    let mut terminated = json!({
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": started_at,
        "finishedAt": now_rfc3339(),
        "containerID": container_id,
    });
    if !message.is_empty() {
        terminated["message"] = json!(message);
    }
    let mut done = base;
    done["ready"] = json!(false);
    done["started"] = json!(false);
    done["containerID"] = json!(container_id);
    done["state"] = json!({"terminated": terminated});
    let phase = if exit_code == 0 {
        "Succeeded"
    } else {
        "Failed"
    };
    let mut status = json!({
        "phase": phase,
        "qosClass": "BestEffort",
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "startTime": started_at,
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": started_at},
            {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now_rfc3339()},
            {"type": "ContainersReady", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now_rfc3339()},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": started_at},
        ],
        "containerStatuses": [done],
    });
    if killed == Some(KillReason::DeadlineExceeded) {
        status["reason"] = json!("DeadlineExceeded");
        status["message"] = json!("Pod was active on the node longer than the specified deadline");
    }
    set_status(&store, &ns, &name, status);
    processes.finished(&ns, &name);
}
