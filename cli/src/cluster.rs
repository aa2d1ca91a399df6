//! Talking to the cluster: a client from the kubeconfig (as kubectl picks it), the probe that
//! tells "no cluster" from "no CRDs", run names, and reading a run with its children.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};
use tipoff_crds::children;
use tipoff_crds::{Mode, PhaseCompletion, PipelineRun};

use crate::error::{CliError, Result};

/// Where to connect: the kubeconfig flags kubectl also has.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// `--kubeconfig` (else `$KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// `-n/--namespace` (else the context's namespace, else `default`).
    pub namespace: Option<String>,
}

/// A connected client and the namespace commands act in.
#[derive(Clone)]
pub struct Cluster {
    /// The client.
    pub client: Client,
    /// The namespace.
    pub namespace: String,
}

impl Cluster {
    /// Connects as kubectl would and checks that the cluster answers and serves the tipoff CRDs.
    pub async fn connect(target: &Target) -> Result<Self> {
        // An error means a provider is already installed, which is what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let options = KubeConfigOptions {
            context: target.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match &target.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).map_err(|e| {
                    CliError::Unreachable(format!("reading the kubeconfig {}: {e}", path.display()))
                })?;
                kube::Config::from_custom_kubeconfig(kc, &options).await
            }
            None => kube::Config::from_kubeconfig(&options).await,
        };
        let mut config = config.map_err(|e| {
            CliError::Unreachable(format!(
                "no usable kubeconfig ({e}); pass --kubeconfig, set KUBECONFIG, or start a local cluster with `cargo run --release -p tipoff-demo -- --keep-running`"
            ))
        })?;
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(30));
        let namespace = target
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config)
            .map_err(|e| CliError::Unreachable(format!("building a client for {server}: {e}")))?;
        let cluster = Self { client, namespace };
        cluster.probe(&server).await?;
        Ok(cluster)
    }

    /// A cluster from an existing client (tests and the demo).
    pub fn from_client(client: Client, namespace: &str) -> Self {
        Self {
            client,
            namespace: namespace.to_owned(),
        }
    }

    async fn probe(&self, server: &str) -> Result<()> {
        let runs: Api<PipelineRun> = self.runs();
        match runs.list_metadata(&ListParams::default().limit(1)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Err(CliError::CrdsMissing(format!(
                "{server} has no pipelineruns.tipoff.dev"
            ))),
            Err(e) => Err(CliError::from_kube(&format!("connecting to {server}"), e)),
        }
    }

    /// PipelineRuns in the namespace.
    pub fn runs(&self) -> Api<PipelineRun> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates or updates run `name` with `spec` (server-side apply, as `manager`).
    pub async fn apply_run(
        &self,
        name: &str,
        spec: &serde_json::Value,
        manager: &str,
    ) -> std::result::Result<PipelineRun, kube::Error> {
        let body = serde_json::json!({
            "apiVersion": "tipoff.dev/v1alpha1",
            "kind": "PipelineRun",
            "metadata": { "name": name },
            "spec": spec,
        });
        self.runs()
            .patch(
                name,
                &kube::api::PatchParams::apply(manager).force(),
                &kube::api::Patch::Apply(&body),
            )
            .await
    }

    /// Reads one run by name.
    pub async fn run(&self, name: &str) -> Result<PipelineRun> {
        self.runs()
            .get_opt(name)
            .await
            .map_err(|e| CliError::from_kube("reading the run", e))?
            .ok_or_else(|| {
                CliError::NotFound(format!(
                    "no PipelineRun {name} in namespace {}; start one with `tipoff run DATE --release FILE`",
                    self.namespace
                ))
            })
    }

    /// Every run in the namespace, oldest first.
    pub async fn all_runs(&self) -> Result<Vec<PipelineRun>> {
        let mut runs = self
            .runs()
            .list(&ListParams::default())
            .await
            .map_err(|e| CliError::from_kube("listing runs", e))?
            .items;
        runs.sort_by(|a, b| {
            (
                a.metadata.creation_timestamp.as_ref().map(|t| t.0),
                a.name_any(),
            )
                .cmp(&(
                    b.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    b.name_any(),
                ))
        });
        Ok(runs)
    }

    /// The run for `date`: with `mode`, the run of `mode`'s deterministic name, else the newest
    /// run of the date in that mode; without, the Production run, else the newest run for the
    /// date.
    pub async fn run_for_date(&self, date: &str, mode: Option<Mode>) -> Result<PipelineRun> {
        if let Some(mode) = mode {
            match self.run(&run_name(date, mode)).await {
                // Not `tipoff run`'s name: the newest run of the date in that mode (a
                // PipelineBackfill's run, `<backfill>-<date>`), if any.
                Err(CliError::NotFound(missing)) => {
                    let runs = self.all_runs().await?;
                    return runs
                        .into_iter()
                        .rev()
                        .find(|r| r.spec.date == date && r.spec.mode == mode)
                        .ok_or(CliError::NotFound(missing));
                }
                found => return found,
            }
        }
        let runs = self.all_runs().await?;
        let for_date: Vec<&PipelineRun> = runs.iter().filter(|r| r.spec.date == date).collect();
        for_date
            .iter()
            .find(|r| r.spec.mode == Mode::Production)
            .or(for_date.last())
            .map(|r| (*r).clone())
            .ok_or_else(|| {
                CliError::NotFound(format!(
                    "no PipelineRun for {date} in namespace {}; start one with `tipoff run {date} --release FILE`",
                    self.namespace
                ))
            })
    }

    /// The run's PhaseCompletions, Jobs and Pods.
    pub async fn children(&self, run: &PipelineRun) -> Result<Children> {
        let selector = format!(
            "{}={}",
            children::LABEL_RUN,
            children::run_label(&run.name_any())
        );
        let lp = ListParams::default().labels(&selector);
        let pcs: Api<PhaseCompletion> = Api::namespaced(self.client.clone(), &self.namespace);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = run.name_any();
        let mut phase_completions = pcs
            .list(&ListParams::default())
            .await
            .map_err(|e| CliError::from_kube("listing PhaseCompletions", e))?
            .items;
        phase_completions.retain(|pc| pc.spec.run == name);
        phase_completions.sort_by_key(|pc| pc.spec.phase);
        Ok(Children {
            phase_completions,
            jobs: jobs
                .list(&lp)
                .await
                .map_err(|e| CliError::from_kube("listing Jobs", e))?
                .items,
            pods: pods
                .list(&lp)
                .await
                .map_err(|e| CliError::from_kube("listing Pods", e))?
                .items,
        })
    }
}

/// What exists for one run.
#[derive(Clone, Debug, Default)]
pub struct Children {
    /// Its PhaseCompletions, by phase.
    pub phase_completions: Vec<PhaseCompletion>,
    /// Its Jobs.
    pub jobs: Vec<Job>,
    /// Their Pods.
    pub pods: Vec<Pod>,
}

/// The deterministic name of the run for `date` in `mode`: `nba-<date>` for Production,
/// `nba-<date>-same-day` and `nba-<date>-backfill` otherwise. Applying it twice is one run.
pub fn run_name(date: &str, mode: Mode) -> String {
    match mode {
        Mode::Production => format!("nba-{date}"),
        other => format!("nba-{date}-{}", other.as_arg()),
    }
}

/// Parses a game date strictly (`YYYY-MM-DD`, a real calendar day).
pub fn parse_date(text: &str) -> Result<jiff::civil::Date> {
    let bad = || {
        CliError::Usage(format!(
            "invalid date {text:?}: write a calendar day as YYYY-MM-DD, e.g. 2026-01-14"
        ))
    };
    if text.len() != 10 {
        return Err(bad());
    }
    text.parse::<jiff::civil::Date>().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_are_deterministic_per_date_and_mode() {
        assert_eq!(run_name("2026-01-14", Mode::Production), "nba-2026-01-14");
        assert_eq!(
            run_name("2026-01-14", Mode::SameDay),
            "nba-2026-01-14-same-day"
        );
        assert_eq!(
            run_name("2026-01-14", Mode::Backfill),
            "nba-2026-01-14-backfill"
        );
    }

    #[test]
    fn dates_must_be_real_calendar_days() {
        assert!(parse_date("2026-01-14").is_ok());
        assert!(parse_date("2024-02-29").is_ok());
        for bad in [
            "2026-02-30",
            "2025-02-29",
            "2026-1-14",
            "yesterday",
            "2026-01-14T00:00",
        ] {
            let e = parse_date(bad).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE, "{bad}");
        }
    }
}
