//! `tipoff-devcluster`: a single-process Kubernetes-compatible API server
//! on loopback plus a Job runner that runs Jobs as local processes, for
//! development and tests. Start one in-process with [`DevCluster::start`].
//!
//! Module map: [`store`] (objects, resourceVersions, write rules), [`watch`]
//! (event window), `gc` (owner references, finalizers), [`http`] (wire
//! protocol), [`auth`] (ServiceAccount tokens, impersonation, RBAC,
//! owner-reference permissions), [`names`], [`protobuf`] (access reviews
//! from kubectl), [`discovery`], [`table`], [`runner`] (Jobs and Pods),
//! [`faults`], [`metrics`].

pub mod auth;
pub mod builtin;
pub mod cargo;
pub mod discovery;
pub mod error;
pub mod faults;
mod gc;
pub mod http;
pub mod jsonpath;
pub mod metrics;
pub mod names;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod resources;
pub mod runner;
pub mod selector;
pub mod store;
pub mod table;
pub mod validation;
pub mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use faults::Faults;
pub use runner::config::{ImageMapping, RunnerConfig};
pub use store::Store;

/// How to start a dev cluster.
#[derive(Debug, Clone)]
pub struct Config {
    /// Loopback port; 0 picks a free one.
    pub port: u16,
    /// Where Pod logs and termination files go; a fresh temporary
    /// directory (removed on shutdown) when `None`.
    pub data_dir: Option<PathBuf>,
    /// Image-to-command mappings for the Job runner.
    pub runner: RunnerConfig,
    /// How many recent watch events are retained for resuming watches.
    pub watch_window: usize,
    /// Interval between watch bookmarks.
    pub bookmark_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 0,
            data_dir: None,
            runner: RunnerConfig::default(),
            watch_window: 10_000,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

/// Errors starting a dev cluster.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The port could not be bound.
    #[error("binding 127.0.0.1:{port}: {source}")]
    Bind {
        /// Requested port.
        port: u16,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("creating data dir {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// A running dev cluster.
pub struct DevCluster {
    addr: SocketAddr,
    store: Arc<Store>,
    faults: Arc<Faults>,
    auth: Arc<auth::Auth>,
    processes: Arc<runner::Processes>,
    data_dir: PathBuf,
    remove_data_dir: bool,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl DevCluster {
    /// Starts the API server, garbage collector and Job runner.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let (data_dir, remove_data_dir) = match &config.data_dir {
            Some(dir) => (dir.clone(), false),
            None => (
                std::env::temp_dir().join(format!("tipoff-devcluster-{}", uuid::Uuid::new_v4())),
                true,
            ),
        };
        std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|source| StartError::Bind {
                port: config.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            port: config.port,
            source,
        })?;
        let store = Store::new(config.watch_window);
        let validator = Arc::new(validation::CrdValidator::default());
        store.set_validator(Arc::new(move |info, object, old, strict| {
            validator.admit(info, object, old, strict)
        }));
        auth::bootstrap(&store);
        let auth = Arc::new(auth::Auth::default());
        let processes = Arc::new(runner::Processes::new(data_dir.clone()));
        let faults = Arc::new(Faults::new(store.clone(), processes.clone()));
        let state = Arc::new(http::AppState {
            store: store.clone(),
            faults: faults.clone(),
            metrics: Arc::new(metrics::Metrics::new()),
            processes: processes.clone(),
            bookmark_interval: config.bookmark_interval,
            auth: auth.clone(),
        });
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        let mut server_shutdown = shutdown_rx.clone();
        let app = http::router(state);
        tasks.push(tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = server_shutdown.changed().await;
                })
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "API server stopped");
            }
        }));
        tasks.push(tokio::spawn(store.clone().run_gc(shutdown_rx.clone())));
        let runner = runner::Runner::new(
            store.clone(),
            faults.clone(),
            processes.clone(),
            config.runner.clone(),
        );
        tasks.push(tokio::spawn(runner.run(shutdown_rx)));
        tracing::info!(%addr, data_dir = %data_dir.display(), "dev cluster listening");
        Ok(Self {
            addr,
            store,
            faults,
            auth,
            processes,
            data_dir,
            remove_data_dir,
            shutdown,
            tasks,
        })
    }

    /// The server's base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig (YAML) pointing at this server, namespace `default`.
    pub fn kubeconfig(&self) -> String {
        kubeconfig_yaml(&self.url())
    }

    /// Writes [`Self::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// Fault injection.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// A bearer token for the ServiceAccount `namespace/name` (which must
    /// exist), as `kubectl create token` would get. Requests with it are
    /// authorized by RBAC.
    pub fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, error::ApiError> {
        self.auth.issue_token(&self.store, namespace, name)
    }

    /// A kubeconfig (YAML) that authenticates as the ServiceAccount
    /// `namespace/name`, with `namespace` as its default namespace.
    pub fn service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, error::ApiError> {
        let token = self.service_account_token(namespace, name)?;
        Ok(kubeconfig_yaml(&self.url())
            .replace("user: {}", &format!("user:\n    token: {token}"))
            .replace("namespace: default", &format!("namespace: {namespace}")))
    }

    /// Every distinct decision RBAC made (the admin's requests skip RBAC and
    /// are not recorded), with how often it was made: what each identity used
    /// and what it was refused.
    pub fn authorization_decisions(&self) -> Vec<(auth::Decision, u64)> {
        self.auth.decisions()
    }

    /// The object store (for direct inspection in tests).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// (namespace, name) of the Pods whose process is running now.
    pub fn running_pods(&self) -> Vec<(String, String)> {
        let mut pods = self.processes.running_keys();
        pods.sort();
        pods
    }

    /// Where Pod files live.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server, kills running Pods and waits for the tasks.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        // Open watches would hold a graceful shutdown forever.
        self.faults.drop_watches();
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if self.remove_data_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// A kubeconfig for a server URL (no credentials).
pub fn kubeconfig_yaml(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: devcluster
  cluster:
    server: {server}
users:
- name: devcluster
  user: {{}}
contexts:
- name: devcluster
  context:
    cluster: devcluster
    user: devcluster
    namespace: default
current-context: devcluster
preferences: {{}}
"
    )
}
