//! The Job runner: turns Jobs into Pods and Pods into local processes.
//! [`Processes`] tracks running processes (for kills and logs); `job.rs`
//! holds the Job controller logic, `pod.rs` runs one Pod, `config.rs` maps
//! images to local commands.

pub mod config;
mod job;
pub mod pod;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::faults::Faults;
use crate::store::{ListOptions, Store};
use config::RunnerConfig;
use pod::KillReason;

/// The running Pod processes and where their files live.
pub struct Processes {
    dir: PathBuf,
    running: Mutex<HashMap<(String, String), oneshot::Sender<KillReason>>>,
}

impl Processes {
    /// Tracks processes whose files live under `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn running(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), oneshot::Sender<KillReason>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Directory of one Pod's files.
    pub fn pod_dir(&self, ns: &str, name: &str) -> PathBuf {
        self.dir.join("pods").join(ns).join(name)
    }

    /// The captured stdout/stderr of a Pod.
    pub fn log_path(&self, ns: &str, name: &str) -> PathBuf {
        self.pod_dir(ns, name).join("log")
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Kills a running Pod's process; returns whether one was running.
    pub fn kill(&self, ns: &str, name: &str) -> bool {
        self.stop(ns, name, KillReason::Killed)
    }

    pub(crate) fn stop(&self, ns: &str, name: &str, reason: KillReason) -> bool {
        match self.running().remove(&(ns.to_string(), name.to_string())) {
            Some(tx) => tx.send(reason).is_ok(),
            None => false,
        }
    }

    fn register(&self, ns: &str, name: &str) -> oneshot::Receiver<KillReason> {
        let (tx, rx) = oneshot::channel();
        self.running()
            .insert((ns.to_string(), name.to_string()), tx);
        rx
    }

    fn finished(&self, ns: &str, name: &str) {
        self.running().remove(&(ns.to_string(), name.to_string()));
    }

    /// Whether a Pod's process is running (or about to start).
    pub fn is_running(&self, ns: &str, name: &str) -> bool {
        self.running()
            .contains_key(&(ns.to_string(), name.to_string()))
    }

    /// (namespace, name) of every Pod whose process is running.
    pub fn running_keys(&self) -> Vec<(String, String)> {
        self.running().keys().cloned().collect()
    }
}

/// How long the runner lets store changes accumulate before a pass.
pub const RUNNER_BATCH: Duration = Duration::from_millis(50);

/// The runner task.
pub struct Runner {
    store: Arc<Store>,
    faults: Arc<Faults>,
    processes: Arc<Processes>,
    config: Arc<RunnerConfig>,
    /// Pods (by uid) whose process was started.
    started: HashSet<String>,
}

impl Runner {
    /// A runner over the store.
    pub fn new(
        store: Arc<Store>,
        faults: Arc<Faults>,
        processes: Arc<Processes>,
        config: RunnerConfig,
    ) -> Self {
        Self {
            store,
            faults,
            processes,
            config: Arc::new(config),
            started: HashSet::new(),
        }
    }

    /// Reconciles until `shutdown` fires: on every store change and every 200 ms.
    pub async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let store = self.store.clone();
            let notified = store.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.faults.runner_paused() {
                self.reconcile();
            }
            tokio::select! {
                // A pass lists every Job and Pod; changes that arrive together (a burst of
                // writes) are handled by one pass, at most every RUNNER_BATCH.
                _ = &mut notified => tokio::time::sleep(RUNNER_BATCH).await,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = shutdown.changed() => {
                    for (ns, name) in self.processes.running_keys() {
                        self.processes.kill(&ns, &name);
                    }
                    return;
                }
            }
        }
    }

    fn reconcile(&mut self) {
        let (Some(job_info), Some(pod_info)) = (
            self.store.resource("batch", "v1", "jobs"),
            self.store.resource("", "v1", "pods"),
        ) else {
            return;
        };
        let pods = self
            .store
            .list(&pod_info, &ListOptions::default())
            .map(|l| l.items)
            .unwrap_or_default();
        // Processes whose Pod is gone or being deleted die.
        let live: HashSet<(String, String)> = pods
            .iter()
            .filter(|p| !p["metadata"]["deletionTimestamp"].is_string())
            .map(key_of)
            .collect();
        for key in self.processes.running_keys() {
            if !live.contains(&key) {
                self.processes.kill(&key.0, &key.1);
            }
        }
        if let Ok(jobs) = self.store.list(&job_info, &ListOptions::default()) {
            let by_owner = job::pods_by_owner(&pods);
            for job in jobs.items {
                job::reconcile(
                    &self.store,
                    &self.processes,
                    &job_info,
                    &pod_info,
                    &job,
                    &by_owner,
                );
            }
        }
        // Start processes for new Pending pods.
        let pods = self
            .store
            .list(&pod_info, &ListOptions::default())
            .map(|l| l.items)
            .unwrap_or_default();
        let uids: HashSet<String> = pods
            .iter()
            .filter_map(|p| p["metadata"]["uid"].as_str().map(String::from))
            .collect();
        self.started.retain(|u| uids.contains(u));
        for pod in pods {
            let uid = pod["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let pending = pod["status"]["phase"].as_str().unwrap_or("Pending") == "Pending";
            let waiting = pod["status"]["containerStatuses"].is_array();
            if !pending
                || waiting
                || self.started.contains(&uid)
                || pod["metadata"]["deletionTimestamp"].is_string()
            {
                continue;
            }
            self.started.insert(uid);
            let (ns, name) = key_of(&pod);
            let kill = self.processes.register(&ns, &name);
            tokio::spawn(pod::run(
                self.store.clone(),
                self.processes.clone(),
                self.config.clone(),
                pod,
                kill,
            ));
        }
    }
}

fn key_of(pod: &serde_json::Value) -> (String, String) {
    (
        pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}
