//! The demo's local stack, all in this process: the synthetic upstream (`dev/season`), the
//! Kubernetes API server and Job runner (`dev/cluster`) whose processor image runs this very
//! executable as `tipoff-demo processor ...` (or, in the CLI's tests, `tipoff-processor`), and
//! the operator's controllers as a task that can be stopped and started again (the
//! `orchestrator-crash` and `orchestrator-down` scenarios).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use futures::FutureExt as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::{Client, CustomResourceExt};
use tipoff_crds::{PhaseCompletion, PipelineBackfill, PipelineRun, PipelineSchedule};
use tipoff_devcluster::{DevCluster, ImageMapping, RunnerConfig};
use tipoff_operator::catalog::Catalog;
use tipoff_operator::controller::backfill::{self, BackfillContext};
use tipoff_operator::controller::schedule::{self, Clock, ScheduleContext};
use tipoff_operator::controller::{self, Context, Scope};
use tipoff_season::Season;
use tipoff_season::server::{AppState, FaultConfig, router};
use tokio::sync::oneshot;

use tipoff_cli::error::{CliError, Result};

/// The processor image's repository; the run pins it by a digest derived from the commit.
pub const REPO: &str = "ghcr.io/tipoff/processor";
/// The first upstream API key.
pub const FIRST_KEY: &str = "demo-key-1";

fn other(context: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Other(format!("{context}: {e}"))
}

/// A digest for `text` (the demo's stand-in for an image build's digest).
pub fn digest_of(text: &str) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(text.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The upstream server and what it did.
pub struct Upstream {
    /// Its base URL.
    pub url: String,
    /// The simulated-time server state.
    pub state: Arc<AppState>,
    /// Key rotations performed after an expiry.
    pub rotations: Arc<Rotator>,
}

/// Rotates the upstream API key when it expires, as a secret manager would: a new key is
/// accepted by the server and written to the key file the processors re-read.
pub struct Rotator {
    current: tokio::sync::Mutex<String>,
    key_file: PathBuf,
    base: std::sync::OnceLock<String>,
    count: AtomicU32,
    http: reqwest::Client,
}

impl Rotator {
    /// How many rotations happened.
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    async fn rotate_if_current(&self, used: &str) {
        let mut current = self.current.lock().await;
        if *current != used {
            return;
        }
        let Some(base) = self.base.get() else { return };
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 2;
        let next = format!("demo-key-{n}");
        let added = self
            .http
            .post(format!("{base}/admin/keys"))
            .json(&serde_json::json!({ "api_key": next }))
            .send()
            .await;
        if added.is_err() {
            return;
        }
        let tmp = self.key_file.with_extension("tmp");
        if std::fs::write(&tmp, &next).is_ok() && std::fs::rename(&tmp, &self.key_file).is_ok() {
            *current = next;
        }
    }
}

fn key_of(req: &Request) -> Option<String> {
    if let Some(q) = req.uri().query() {
        for pair in q.split('&') {
            if let Some(v) = pair.strip_prefix("apiKey=") {
                return Some(v.to_owned());
            }
        }
    }
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn rotate_on_401(State(rot): State<Arc<Rotator>>, req: Request, next: Next) -> Response {
    let used = key_of(&req);
    let resp = next.run(req).await;
    if resp.status() == axum::http::StatusCode::UNAUTHORIZED
        && let Some(used) = used
    {
        rot.rotate_if_current(&used).await;
    }
    resp
}

/// Starts the upstream for `season` at simulated time `now`, with `faults`, writing the API
/// key to `key_file`.
pub async fn start_upstream(
    season: Arc<Season>,
    now: jiff::Timestamp,
    faults: FaultConfig,
    key_file: &Path,
) -> Result<Upstream> {
    std::fs::write(key_file, FIRST_KEY).map_err(|e| other("writing the API key file", e))?;
    let state = AppState::new(season, now, FIRST_KEY, faults);
    let rot = Arc::new(Rotator {
        current: tokio::sync::Mutex::new(FIRST_KEY.to_owned()),
        key_file: key_file.to_owned(),
        base: std::sync::OnceLock::new(),
        count: AtomicU32::new(0),
        // The upstream is on loopback: never through a proxy from the environment.
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| other("building an HTTP client", e))?,
    });
    let app = router(Arc::clone(&state)).layer(from_fn_with_state(Arc::clone(&rot), rotate_on_401));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| other("binding the upstream server", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| other("binding the upstream server", e))?;
    let url = format!("http://{addr}");
    let _ = rot.base.set(url.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Upstream {
        url,
        state,
        rotations: rot,
    })
}

/// Where the processors read and write.
pub struct Paths {
    /// The demo's directory.
    pub dir: PathBuf,
    /// The local lake (Parquet).
    pub lake: PathBuf,
    /// Object storage (raw payloads, quarantine).
    pub objects: PathBuf,
    /// The upstream API key file.
    pub key_file: PathBuf,
    /// The kubeconfig.
    pub kubeconfig: PathBuf,
    /// Pod logs and termination files.
    pub cluster_data: PathBuf,
    /// The operator's log.
    pub operator_log: PathBuf,
}

impl Paths {
    /// The layout under `dir`.
    pub fn under(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            lake: dir.join("lake"),
            objects: dir.join("objects"),
            key_file: dir.join("upstream-api-key"),
            kubeconfig: dir.join("kubeconfig"),
            cluster_data: dir.join("cluster"),
            operator_log: dir.join("operator.log"),
        }
    }
}

/// How the demo's cluster runs processors.
pub struct ClusterOptions {
    /// API server port (0: any).
    pub port: u16,
    /// The upstream base URL.
    pub upstream: String,
    /// The `imageID` Pods report (another digest simulates the wrong code deployed).
    pub image_id: Option<String>,
    /// The command the processor image maps to: the `tipoff-processor` command line, either
    /// that binary or this one with [`crate::PROCESSOR_SUBCOMMAND`] ([`ClusterOptions::this_binary`]).
    pub processor: Vec<String>,
    /// Environment for the processors beyond the demo's own (tests break things with it).
    pub extra_env: BTreeMap<String, String>,
    /// Install the tipoff CRDs.
    pub install_crds: bool,
}

impl ClusterOptions {
    /// The processor command of this very executable: `<this> processor`.
    pub fn this_binary() -> Result<Vec<String>> {
        let exe = std::env::current_exe()
            .map_err(|e| CliError::Other(format!("locating this executable: {e}")))?;
        Ok(vec![
            exe.display().to_string(),
            crate::PROCESSOR_SUBCOMMAND.to_owned(),
        ])
    }
}

/// Starts dev/cluster with the processor image mapped to [`ClusterOptions::processor`], and
/// installs the tipoff CRDs.
pub async fn start_cluster(paths: &Paths, opts: ClusterOptions) -> Result<(DevCluster, Client)> {
    let ClusterOptions {
        port,
        upstream,
        image_id,
        processor,
        extra_env,
        install_crds,
    } = opts;
    let file_url = |p: &Path| format!("file://{}", p.display());
    let mapping = ImageMapping {
        image: REPO.into(),
        command: processor,
        args: vec![],
        image_id,
        env: BTreeMap::from([
            ("TIPOFF_WAREHOUSE_URL".to_owned(), file_url(&paths.lake)),
            ("TIPOFF_STORAGE_URL".to_owned(), file_url(&paths.objects)),
            ("TIPOFF_UPSTREAM_URL".to_owned(), upstream),
            (
                "TIPOFF_UPSTREAM_API_KEY_FILE".to_owned(),
                paths.key_file.display().to_string(),
            ),
            // Quick retries: the demo's upstream is local.
            ("TIPOFF_UPSTREAM_BACKOFF_MS".to_owned(), "100".to_owned()),
            ("TIPOFF_UPSTREAM_TIMEOUT_SECS".to_owned(), "10".to_owned()),
        ])
        .into_iter()
        .chain(extra_env)
        .collect(),
    };
    for d in [&paths.lake, &paths.objects, &paths.cluster_data] {
        std::fs::create_dir_all(d).map_err(|e| other(&format!("creating {}", d.display()), e))?;
    }
    let cluster = DevCluster::start(tipoff_devcluster::Config {
        port,
        data_dir: Some(paths.cluster_data.clone()),
        runner: RunnerConfig {
            images: vec![mapping],
        },
        ..tipoff_devcluster::Config::default()
    })
    .await
    .map_err(|e| other("starting dev/cluster", e))?;
    cluster
        .write_kubeconfig(&paths.kubeconfig)
        .map_err(|e| other("writing the kubeconfig", e))?;
    tipoff_operator::install_crypto_provider();
    let url = cluster
        .url()
        .parse()
        .map_err(|e| other("the cluster URL", e))?;
    let client = Client::try_from(kube::Config::new(url)).map_err(|e| other("kube client", e))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        PipelineRun::crd(),
        PhaseCompletion::crd(),
        PipelineBackfill::crd(),
        PipelineSchedule::crd(),
    ]
    .into_iter()
    .filter(|_| install_crds)
    {
        crds.create(&PostParams::default(), &crd)
            .await
            .map_err(|e| other("installing the CRDs", e))?;
    }
    Ok((cluster, client))
}

/// The operator's three controllers (runs, backfills, schedules) running as a task of this
/// process.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Operator {
    /// Starts the controllers on `catalog` as the operator binary runs them (no leader
    /// election: one replica, in-process); the backfill and schedule controllers read the
    /// runs' cache.
    pub fn start(client: Client, catalog: Catalog) -> Self {
        Self::start_with_clock(client, catalog, Clock::System)
    }

    /// [`Operator::start`] with the schedules reading "now" from `clock` (the operator's
    /// test-only clock, `--test-clock-file`: the `orchestrator-down` scenario replays days in
    /// seconds with it). Runs and Jobs keep the system clock.
    pub fn start_with_clock(client: Client, catalog: Catalog, clock: Clock) -> Self {
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let scope = Scope { namespace: None };
            controller::wait_for_crds(&client, &scope).await;
            let (ctrl, view) =
                controller::controller(client.clone(), &scope, controller::Tuning::default());
            let (bf_ctrl, bf_view) = backfill::controller(client.clone(), &scope, &view);
            let (sched_ctrl, sched_view) =
                schedule::controller(client.clone(), &scope, view.runs());
            let metrics = Arc::new(tipoff_operator::metrics::Metrics::new());
            let bf_ctx = Arc::new(BackfillContext::new(
                client.clone(),
                bf_view,
                "tipoff-demo",
                metrics.clone(),
            ));
            let sched_ctx = Arc::new(ScheduleContext::new(
                client.clone(),
                sched_view,
                "tipoff-demo",
                metrics,
                clock,
            ));
            let ctx = Arc::new(Context::new(client, catalog, view, "tipoff-demo"));
            let stop = async move {
                let _ = rx.await;
            }
            .shared();
            tokio::join!(
                controller::run(ctrl, ctx, stop.clone()),
                backfill::run(bf_ctrl, bf_ctx, stop.clone()),
                schedule::run(sched_ctrl, sched_ctx, stop),
            );
        });
        Self {
            stop: Some(tx),
            handle,
        }
    }

    /// Stops the controller (as if its process died: nothing is handed over) and waits.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let abort = self.handle.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_secs(10), &mut self.handle)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}
