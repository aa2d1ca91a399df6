//! A local stack for the CLI's tests: the synthetic upstream, dev/cluster whose processor
//! image runs the real `tipoff-processor` binary, and the operator's controller in-process
//! (all from `tipoff-demo`'s stack); plus helpers to run the `tipoff` binary against it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tipoff_demo::stack::{self, ClusterOptions, Operator, Paths, REPO};
use tipoff_devcluster::DevCluster;
use tipoff_operator::catalog::Catalog;
use tipoff_season::Season;
pub use tipoff_season::server::FaultConfig;

/// The date every test runs (7 games in the synthetic season).
pub const DATE: &str = "2026-01-14";
/// The run `tipoff run DATE` creates.
pub const RUN: &str = "nba-2026-01-14";

/// The `tipoff` binary under test.
pub fn tipoff() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tipoff"))
}

/// The real `tipoff-processor` binary, built if this test run did not build it already.
pub fn processor() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    tipoff_devcluster::cargo::binary(&workspace, "tipoff-processors", "tipoff-processor").unwrap()
}

/// The season (generated once per test binary).
pub fn season() -> Arc<Season> {
    static S: std::sync::OnceLock<Arc<Season>> = std::sync::OnceLock::new();
    Arc::clone(S.get_or_init(|| Arc::new(Season::generate(2025))))
}

/// `AWY@HOM` of the date's first game.
pub fn first_game() -> String {
    let s = season();
    let g = s.by_date[&DATE.parse::<jiff::civil::Date>().unwrap()][0];
    let game = &s.games[g];
    format!(
        "{}@{}",
        s.league.teams[game.away].abbr, s.league.teams[game.home].abbr
    )
}

/// What a test stack is started with.
#[derive(Default)]
pub struct Options {
    /// Upstream faults.
    pub faults: FaultConfig,
    /// The imageID Pods report (drift).
    pub image_id: Option<String>,
    /// Extra processor environment.
    pub extra_env: BTreeMap<String, String>,
    /// Leave the CRDs out.
    pub no_crds: bool,
    /// Start no operator.
    pub no_operator: bool,
}

/// A running stack.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub paths: Paths,
    pub cluster: DevCluster,
    pub client: kube::Client,
    pub operator: Option<Operator>,
    pub release_file: PathBuf,
}

/// The output of one `tipoff` invocation.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Stack {
    pub async fn start(opts: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let now = "2026-01-15T12:00:00Z".parse().unwrap();
        let upstream = stack::start_upstream(season(), now, opts.faults, &paths.key_file)
            .await
            .unwrap();
        let (cluster, client) = stack::start_cluster(
            &paths,
            ClusterOptions {
                port: 0,
                upstream: upstream.url.clone(),
                image_id: opts.image_id,
                processor: vec![processor().display().to_string()],
                extra_env: opts.extra_env,
                install_crds: !opts.no_crds,
            },
        )
        .await
        .unwrap();
        // Phases 1 and 2 of the production catalog: these tests are about the commands, and
        // phases 3-4 would need the season before the date (dev/demo/tests/demo.rs runs them all).
        let mut catalog =
            Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/pipeline.yaml"))
                .unwrap();
        catalog.phases.retain(|p| p.number <= 2);
        let operator = (!opts.no_operator).then(|| Operator::start(client.clone(), catalog));
        let release_file = dir.path().join("release.yaml");
        std::fs::write(
            &release_file,
            format!(
                "image: {REPO}@{}\ncommit: {}\nversion: v0.1.0\n",
                stack::digest_of("cli tests"),
                tipoff_processors::contract::COMMIT
            ),
        )
        .unwrap();
        Self {
            dir,
            paths,
            cluster,
            client,
            operator,
            release_file,
        }
    }

    /// Runs `tipoff ARGS --kubeconfig <the stack's>` (off the async runtime's threads).
    pub async fn tipoff(&self, args: &[&str]) -> Out {
        let kubeconfig = self.paths.kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        tokio::task::spawn_blocking(move || run_tipoff(&args, Some(&kubeconfig)))
            .await
            .unwrap()
    }

    /// `tipoff run DATE --release FILE --wait`.
    pub async fn run_and_wait(&self) -> Out {
        let release = self.release_file.display().to_string();
        self.tipoff(&[
            "run",
            DATE,
            "--release",
            &release,
            "--wait",
            "--timeout",
            "120",
        ])
        .await
    }

    /// Polls `tipoff status DATE -o json` until `pred` holds (at most `secs`).
    pub async fn status_until(
        &self,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let out = self.tipoff(&["status", DATE, "-o", "json"]).await;
            if out.code == 0 {
                let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
                if pred(&v) {
                    return v;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(secs),
                    "condition not reached in {secs}s: {v:#}"
                );
            } else {
                assert!(
                    start.elapsed() < Duration::from_secs(secs),
                    "status kept failing: {out:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(op) = self.operator.take() {
            op.stop().await;
        }
        self.cluster.shutdown().await;
    }
}

/// Runs the `tipoff` binary with `args` (and `--kubeconfig` if given).
pub fn run_tipoff(args: &[String], kubeconfig: Option<&Path>) -> Out {
    let mut cmd = Command::new(tipoff());
    cmd.args(args).env_remove("KUBECONFIG");
    if let Some(k) = kubeconfig {
        cmd.arg("--kubeconfig").arg(k);
    } else {
        // No ~/.kube/config either.
        cmd.env("HOME", std::env::temp_dir().join("tipoff-cli-test-no-home"));
    }
    let out = cmd.output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
