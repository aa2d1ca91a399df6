//! End-to-end harness: a `dev/cluster` API server with the tipoff CRDs, a Job runner that maps
//! the pinned processor image to `tipoff-test-processor`, and the real `tipoff-operator` binary
//! as a child process pointed at it with a kubeconfig.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use tipoff_crds::{Mode, PhaseCompletion, PipelineRun, PipelineRunSpec, Release, RunState};
use tipoff_devcluster::{Config, DevCluster, ImageMapping, RunnerConfig};

/// The repository of the processor image every test run pins.
pub const REPO: &str = "ghcr.io/tipoff/processor";
/// The pinned digest.
pub const DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// The pinned commit; the test processor reports it unless a script says otherwise.
pub const COMMIT: &str = "c4f8f339";
/// The namespace runs live in.
pub const NS: &str = "default";

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The six-phase test catalog.
pub fn test_catalog() -> PathBuf {
    workspace().join("config/test/pipeline.yaml")
}

/// The `tipoff-test-processor` binary, built if the test run did not build it already.
pub fn test_processor() -> PathBuf {
    tipoff_devcluster::cargo::binary(
        &workspace(),
        "tipoff-test-processor",
        "tipoff-test-processor",
    )
    .unwrap()
}

/// The real `tipoff-processor` binary, built if the test run did not build it already
/// (`cargo nextest run --workspace` builds it fresh; a run of this package alone may find an
/// older one, and rebuilding it here with other features can take minutes).
pub fn real_processor() -> PathBuf {
    tipoff_devcluster::cargo::binary(&workspace(), "tipoff-processors", "tipoff-processor").unwrap()
}

/// A running dev cluster plus its kubeconfig and scratch directory.
pub struct Env {
    /// The API server.
    pub cluster: DevCluster,
    /// A client for it.
    pub client: Client,
    /// Scratch space: kubeconfig, scripts, operator logs.
    pub dir: tempfile::TempDir,
    /// The kubeconfig path.
    pub kubeconfig: PathBuf,
}

impl Env {
    /// Starts a cluster whose runner maps the pinned image to the test processor with
    /// `script` as its behaviour; `image_id` overrides the reported imageID (drift).
    pub async fn start(script: &str, image_id: Option<&str>) -> Self {
        let env = Self::start_without_crds(script, image_id).await;
        env.install_crds().await;
        env
    }

    /// As [`Env::start`], but the tipoff CRDs are not installed yet ([`Env::install_crds`]).
    pub async fn start_without_crds(script: &str, image_id: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script_path = dir.path().join("behaviour.yaml");
        std::fs::write(&script_path, script).unwrap();
        let mapping = ImageMapping {
            image: REPO.into(),
            command: vec![test_processor().display().to_string()],
            args: vec![],
            image_id: image_id.map(Into::into),
            env: BTreeMap::from([(
                "TIPOFF_TEST_BEHAVIOUR".to_owned(),
                script_path.display().to_string(),
            )]),
        };
        Self::start_cluster(dir, mapping).await
    }

    /// Starts a cluster whose runner maps the pinned image as `mapping` says.
    pub async fn start_mapping(dir: tempfile::TempDir, mapping: ImageMapping) -> Self {
        let env = Self::start_cluster(dir, mapping).await;
        env.install_crds().await;
        env
    }

    async fn start_cluster(dir: tempfile::TempDir, mapping: ImageMapping) -> Self {
        tipoff_operator::install_crypto_provider();
        let cluster = DevCluster::start(Config {
            runner: RunnerConfig {
                images: vec![mapping],
            },
            ..Config::default()
        })
        .await
        .unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig).unwrap();
        let client = Client::try_from(kube::Config::new(cluster.url().parse().unwrap())).unwrap();
        Self {
            cluster,
            client,
            dir,
            kubeconfig,
        }
    }

    /// Installs the generated tipoff CRDs.
    pub async fn install_crds(&self) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for file in [
            "pipelineruns.tipoff.dev.yaml",
            "phasecompletions.tipoff.dev.yaml",
            "pipelinebackfills.tipoff.dev.yaml",
            "pipelineschedules.tipoff.dev.yaml",
        ] {
            let text =
                std::fs::read_to_string(workspace().join("crds/generated").join(file)).unwrap();
            let crd: CustomResourceDefinition = serde_yaml::from_str(&text).unwrap();
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
    }

    /// Starts a `tipoff-operator` process on the six-phase test catalog.
    pub fn operator(&self, name: &str, leader_elect: bool) -> Operator {
        self.operator_on(name, leader_elect, &test_catalog())
    }

    /// Starts a `tipoff-operator` process on the catalog at `catalog`.
    pub fn operator_on(&self, name: &str, leader_elect: bool, catalog: &Path) -> Operator {
        self.operator_with(name, leader_elect, catalog, &[])
    }

    /// Starts a `tipoff-operator` process on the catalog at `catalog` with `extra` arguments
    /// after the usual ones.
    pub fn operator_with(
        &self,
        name: &str,
        leader_elect: bool,
        catalog: &Path,
        extra: &[&str],
    ) -> Operator {
        let catalog = catalog.display().to_string();
        let mut args = vec![
            "--catalog",
            &catalog,
            "--namespace",
            NS,
            "--listen",
            // The system picks a free port and the operator logs it: a port chosen here
            // and bound later could be taken meanwhile by another test's process.
            "127.0.0.1:0",
            "--leader-elect",
            if leader_elect { "true" } else { "false" },
            "--lease-duration-seconds",
            "6",
            "--lease-renew-seconds",
            "2",
            "--identity",
            name,
            "--log-format",
            "json",
            // Failed reconciles retry after 0.5 s doubling to 5 s (production: 5 s to 300 s),
            // so tests with injected API errors stay short.
            "--reconcile-error-backoff-ms",
            "500",
            "--reconcile-error-backoff-max-seconds",
            "5",
        ];
        args.extend_from_slice(extra);
        self.spawn_operator(name, &args, [("RUST_LOG", "info,kube=warn")])
    }

    /// Starts a `tipoff-operator` process with exactly `args` and `env` (and the cluster's
    /// kubeconfig); `name` names its log files.
    pub fn spawn_operator<A, K, V>(
        &self,
        name: &str,
        args: &[A],
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Operator
    where
        A: AsRef<std::ffi::OsStr>,
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        self.spawn_operator_as(name, args, env, &self.kubeconfig)
    }

    /// As [`Env::spawn_operator`], with the credentials of `kubeconfig` (e.g. a ServiceAccount
    /// token, so that RBAC applies) instead of the admin's.
    pub fn spawn_operator_as<A, K, V>(
        &self,
        name: &str,
        args: &[A],
        env: impl IntoIterator<Item = (K, V)>,
        kubeconfig: &Path,
    ) -> Operator
    where
        A: AsRef<std::ffi::OsStr>,
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let log = self.dir.path().join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_tipoff-operator"))
            .args(args)
            .envs(env)
            .env("KUBECONFIG", kubeconfig)
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(std::fs::File::create(self.dir.path().join(format!("{name}.out"))).unwrap())
            .spawn()
            .unwrap();
        Operator {
            child,
            log,
            out: self.dir.path().join(format!("{name}.out")),
        }
    }

    /// Writes a variant of the six-phase test catalog with each `(from, to)` text replacement
    /// applied (each `from` must occur), and returns its path.
    pub fn catalog_variant(&self, file: &str, edits: &[(&str, &str)]) -> PathBuf {
        let mut text = std::fs::read_to_string(test_catalog()).unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "{from:?} is not in the test catalog");
            text = text.replace(from, to);
        }
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Replaces the test processor's behaviour script. Each processor process reads it when it
    /// starts, so attempts started afterwards follow the new script.
    pub fn set_script(&self, script: &str) {
        let path = self.dir.path().join("behaviour.yaml");
        let tmp = self.dir.path().join("behaviour.yaml.new");
        std::fs::write(&tmp, script).unwrap();
        std::fs::rename(tmp, path).unwrap();
    }

    /// Creates a run of the test catalog.
    pub async fn create_run(&self, name: &str, mode: Mode) -> PipelineRun {
        self.create_run_with(name, mode, |_| {}).await
    }

    /// Creates a run for `date` pinned to `commit`.
    pub async fn create_run_on(
        &self,
        name: &str,
        mode: Mode,
        date: &str,
        commit: &str,
    ) -> PipelineRun {
        self.create_run_with(name, mode, |spec| {
            spec.date = date.into();
            spec.release.commit = commit.into();
        })
        .await
    }

    /// Creates a run of the test catalog whose spec `edit` changes first (retry policy,
    /// overrides, deadline).
    pub async fn create_run_with(
        &self,
        name: &str,
        mode: Mode,
        edit: impl FnOnce(&mut PipelineRunSpec),
    ) -> PipelineRun {
        let mut run = PipelineRun::new(
            name,
            PipelineRunSpec::new(
                "2026-01-29",
                mode,
                Release::pinned(format!("{REPO}@{DIGEST}"), COMMIT),
            ),
        );
        edit(&mut run.spec);
        self.runs()
            .create(&PostParams::default(), &run)
            .await
            .unwrap()
    }

    /// The PipelineRun API.
    pub fn runs(&self) -> Api<PipelineRun> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// The Jobs of a run.
    pub async fn jobs(&self, run: &str) -> Vec<Job> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), NS);
        jobs.list(&ListParams::default().labels(&format!("tipoff.dev/run={run}")))
            .await
            .unwrap()
            .items
    }

    /// The PhaseCompletions of a run, by phase number.
    pub async fn phase_completions(&self, run: &str) -> BTreeMap<u8, PhaseCompletion> {
        let pcs: Api<PhaseCompletion> = Api::namespaced(self.client.clone(), NS);
        pcs.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|pc| pc.spec.run == run)
            .map(|pc| (pc.spec.phase, pc))
            .collect()
    }

    /// `(reason, message)` of every Event in the namespace.
    pub async fn events(&self) -> Vec<(String, String)> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), NS);
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
            .collect()
    }

    /// The Pods of a run.
    pub async fn pods(&self, run: &str) -> Vec<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        pods.list(&ListParams::default().labels(&format!("tipoff.dev/run={run}")))
            .await
            .unwrap()
            .items
    }

    /// Polls `probe` every 100 ms until it returns `Some` (or panics after `timeout`, naming
    /// `what`).
    pub async fn poll<T, F, Fut>(&self, what: &str, timeout: Duration, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?}: {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls the run until `done` holds (or panics after `timeout` with the last status).
    pub async fn wait_for(
        &self,
        run: &str,
        timeout: Duration,
        done: impl Fn(&PipelineRun) -> bool,
    ) -> PipelineRun {
        let deadline = Instant::now() + timeout;
        loop {
            let current = self.runs().get(run).await.unwrap();
            if done(&current) {
                return current;
            }
            assert!(
                Instant::now() < deadline,
                "run {run} did not reach the expected state in {timeout:?}; status: {:#?}",
                current.status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs kubectl against the cluster and returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The run's condition of type `type_` (panics, showing the status, when it has none).
pub fn condition<'a>(
    status: &'a tipoff_crds::PipelineRunStatus,
    type_: &str,
) -> &'a tipoff_crds::Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition: {status:#?}"))
}

/// The state of a run, if it has one.
pub fn state(run: &PipelineRun) -> Option<RunState> {
    run.status.as_ref().and_then(|s| s.state)
}

/// A running operator process; killed when dropped.
pub struct Operator {
    /// The process.
    pub child: Child,
    /// Its JSON log (stdout), where it reports the address it serves on.
    pub out: PathBuf,
    /// Its log file.
    pub log: PathBuf,
}

impl Operator {
    /// SIGKILLs the process (a crash, not a graceful stop).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its log so far (the JSON log on stdout, then anything on stderr).
    pub fn log(&self) -> String {
        let mut text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(&self.log).unwrap_or_default());
        text
    }

    /// The port it serves on, once it has logged it.
    pub fn port(&self) -> Option<u16> {
        let out = std::fs::read_to_string(&self.out).ok()?;
        out.lines()
            .filter(|l| l.contains("serving /healthz"))
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())?["addr"]
            .as_str()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()
    }

    /// GETs one of its HTTP endpoints; `None` when it does not answer (or has not started).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port()?)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        Some((code, body))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}
