//! The everyday commands: `run`, `status`, `drift`, `rerun`, `logs`. Each reads or writes
//! PipelineRuns through the API (server-side apply under the CLI's own field managers) and
//! renders with [`crate::view`].

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use serde_json::json;
use tipoff_crds::children;
use tipoff_crds::{Mode, Override, OverrideType, PipelineRun, Release, Rerun};

use crate::cluster::{Cluster, parse_date, run_name};
use crate::error::{CliError, Result};
use crate::follow;
use crate::view::{self, RunView};

/// The field manager of `tipoff run` (date, mode, release, overrides).
pub const FIELD_MANAGER: &str = "tipoff-cli";
/// The field manager of `tipoff rerun` (`spec.reruns`). A separate manager, so applying the
/// reruns never drops the fields `tipoff run` applied, and the other way round.
pub const RERUN_FIELD_MANAGER: &str = "tipoff-cli-rerun";

/// Output format of `status` and `drift`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A tree or a table for people.
    Text,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

pub(crate) fn emit<T: serde::Serialize>(
    output: Output,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<()> {
    let s = match output {
        Output::Text => text(),
        Output::Json => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| CliError::Other(e.to_string()))?,
        Output::Yaml => serde_yaml::to_string(value).map_err(|e| CliError::Other(e.to_string()))?,
    };
    print!("{s}");
    Ok(())
}

/// Parses `--mode`.
pub fn parse_mode(text: &str) -> Result<Mode> {
    [Mode::Production, Mode::SameDay, Mode::Backfill]
        .into_iter()
        .find(|m| m.as_arg() == text.to_ascii_lowercase())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "invalid mode {text:?}: use production, same-day or backfill"
            ))
        })
}

/// Parses `--override TYPE[:GATE][@PROCESSOR]`, e.g. `RelaxGate:boxscore-coverage@scrape-boxscores`.
pub fn parse_override(text: &str, reason: &str) -> Result<Override> {
    let (rest, processor) = match text.split_once('@') {
        Some((r, p)) => (r, Some(p.to_owned())),
        None => (text, None),
    };
    let (kind, gate) = match rest.split_once(':') {
        Some((k, g)) => (k, Some(g.to_owned())),
        None => (rest, None),
    };
    let type_ = match kind.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
        "skipdependencycheck" => OverrideType::SkipDependencyCheck,
        "relaxgate" => OverrideType::RelaxGate,
        "acceptdrift" => OverrideType::AcceptDrift,
        _ => {
            return Err(CliError::Usage(format!(
                "invalid override {text:?}: use SkipDependencyCheck, AcceptDrift or RelaxGate:GATE, optionally @PROCESSOR"
            )));
        }
    };
    if (type_ == OverrideType::RelaxGate) != gate.is_some() {
        return Err(CliError::Usage(format!(
            "invalid override {text:?}: RelaxGate needs :GATE, and only RelaxGate takes one"
        )));
    }
    Ok(Override {
        type_,
        processor,
        gate,
        reason: reason.to_owned(),
    })
}

/// Checks `--game` as the CRD does: an NBA game id (10 digits) or `AWY@HOM` tricodes.
pub fn check_game(game: &str) -> Result<()> {
    let tricode = |t: &str| (2..=4).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_uppercase());
    let ok = (game.len() == 10 && game.bytes().all(|b| b.is_ascii_digit()))
        || game
            .split_once('@')
            .is_some_and(|(a, h)| tricode(a) && tricode(h));
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "invalid game {game:?}: give an NBA game id (0022500123) or AWY@HOM (BOS@LAL)"
        )))
    }
}

/// Reads a release file: YAML with `image` (pinned by digest), `commit`, optional `version`
/// and per-processor `processors`.
pub fn read_release(path: &Path) -> Result<Release> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("reading --release {}: {e}", path.display())))?;
    serde_yaml::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "--release {} is not a release (image, commit, version): {e}",
            path.display()
        ))
    })
}

/// `tipoff run`.
pub struct RunArgs<'a> {
    /// The date.
    pub date: &'a str,
    /// The mode.
    pub mode: Mode,
    /// The release, if given.
    pub release: Option<Release>,
    /// Overrides to add.
    pub overrides: Vec<Override>,
    /// Follow to the end.
    pub wait: bool,
    /// How long to follow.
    pub timeout: Duration,
}

/// Applies the run (idempotently) and optionally follows it.
pub async fn run(cluster: &Cluster, args: RunArgs<'_>) -> Result<()> {
    parse_date(args.date)?;
    let name = run_name(args.date, args.mode);
    let existing = cluster
        .runs()
        .get_opt(&name)
        .await
        .map_err(|e| CliError::from_kube("reading the run", e))?;
    let release = match (&args.release, &existing) {
        (Some(r), _) => r.clone(),
        (None, Some(run)) => run.spec.release.clone(),
        (None, None) => {
            return Err(CliError::Usage(format!(
                "no run {name} yet: pass --release FILE (image pinned by digest and commit)"
            )));
        }
    };
    let mut overrides = existing
        .as_ref()
        .map(|r| r.spec.overrides.clone())
        .unwrap_or_default();
    for o in args.overrides {
        if !overrides.contains(&o) {
            overrides.push(o);
        }
    }
    let mut spec = json!({ "date": args.date, "mode": args.mode, "release": release });
    if !overrides.is_empty() {
        spec["overrides"] = json!(overrides);
    }
    let applied = cluster
        .apply_run(&name, &spec, FIELD_MANAGER)
        .await
        .map_err(|e| CliError::from_kube(&format!("applying {name}"), e))?;
    let verb = if existing.is_some() {
        "unchanged"
    } else {
        "created"
    };
    let verb = if existing
        .as_ref()
        .is_some_and(|e| e.metadata.generation != applied.metadata.generation)
    {
        "configured"
    } else {
        verb
    };
    println!("pipelinerun.tipoff.dev/{name} {verb}");
    if args.wait {
        let v = follow::follow(
            cluster,
            &name,
            args.timeout,
            &mut |l| println!("{l}"),
            &mut |_| true,
        )
        .await?;
        return finish(&v);
    }
    Ok(())
}

fn finish(v: &RunView) -> Result<()> {
    match v.state.as_str() {
        "Succeeded" => Ok(()),
        other => Err(CliError::RunFailed(format!(
            "run {} is {other}: {}; see `tipoff status {}`",
            v.name,
            v.message.clone().unwrap_or_default(),
            v.date
        ))),
    }
}

/// `tipoff status [DATE]`.
pub async fn status(
    cluster: &Cluster,
    date: Option<&str>,
    mode: Option<Mode>,
    output: Output,
) -> Result<()> {
    let now = jiff::Timestamp::now();
    match date {
        None => {
            let runs = cluster.all_runs().await?;
            let views: Vec<serde_json::Value> = runs
                .iter()
                .map(|r| {
                    json!({
                        "name": r.name_any(),
                        "date": r.spec.date,
                        "mode": r.spec.mode,
                        "state": r.status.as_ref().and_then(|s| s.state),
                        "progress": r.status.as_ref().and_then(|s| s.progress.clone()),
                        "currentPhase": r.status.as_ref().and_then(|s| s.current_phase),
                        "createdBy": Some(view::created_by(r)).filter(|c| !c.is_empty()),
                    })
                })
                .collect();
            if runs.is_empty() && output == Output::Text {
                println!("no PipelineRuns in namespace {}", cluster.namespace);
                return Ok(());
            }
            emit(output, &views, || view::render_list(&runs, now))
        }
        Some(date) => {
            parse_date(date)?;
            let run = cluster.run_for_date(date, mode).await?;
            let children = cluster.children(&run).await?;
            let v = view::build(&run, &children, now);
            emit(output, &v, || view::render_tree(&v))
        }
    }
}

/// `tipoff drift`: what code ran per processor in the last `last` runs vs their pins.
pub async fn drift(cluster: &Cluster, last: usize, output: Output) -> Result<()> {
    let runs = cluster.all_runs().await?;
    let mut rows = Vec::new();
    for run in runs.iter().rev().take(last).rev() {
        let children = cluster.children(run).await?;
        rows.extend(view::drift_rows(run, &children));
    }
    emit(output, &rows, || {
        if rows.is_empty() {
            "no finished processor attempts in the recent runs\n".to_owned()
        } else {
            view::render_drift(&rows)
        }
    })?;
    let drifted: Vec<String> = rows
        .iter()
        .filter(|r| !r.drift.is_empty())
        .map(|r| format!("{} in {}", r.processor, r.run))
        .collect();
    if drifted.is_empty() {
        Ok(())
    } else {
        Err(CliError::Drift(format!(
            "code drift: {} ran other code than pinned",
            drifted.join(", ")
        )))
    }
}

/// `tipoff rerun`.
pub async fn rerun(
    cluster: &Cluster,
    date: &str,
    mode: Option<Mode>,
    processor: &str,
    game: Option<&str>,
    reason: &str,
    wait: Option<Duration>,
) -> Result<()> {
    parse_date(date)?;
    if let Some(g) = game {
        check_game(g)?;
    }
    let run = cluster.run_for_date(date, mode).await?;
    let name = run.name_any();
    // A rerun runs a processor again: it must have run (its phase reached) in this run.
    let known = run_processors(cluster, &run).await?;
    if !known.iter().any(|p| p == processor) {
        return Err(CliError::NotFound(format!(
            "processor {processor} has not run in {name}; processors so far: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    }
    // Append with the run's resourceVersion as a precondition: another writer in between (the
    // operator's status writes, another rerun) is a conflict, and the append is redone on the
    // fresh object.
    let mut run = run;
    let mut attempt = 0;
    let rerun_name = loop {
        attempt += 1;
        let mut reruns = run.spec.reruns.clone();
        let rerun_name = (1..)
            .map(|n| format!("r{n}"))
            .find(|n| !reruns.iter().any(|r| &r.name == n))
            .unwrap_or_else(|| "r0".to_owned());
        reruns.push(Rerun {
            name: rerun_name.clone(),
            processor: processor.to_owned(),
            game: game.map(str::to_owned),
            reason: reason.to_owned(),
        });
        let body = json!({
            "apiVersion": "tipoff.dev/v1alpha1",
            "kind": "PipelineRun",
            "metadata": { "name": name, "resourceVersion": run.metadata.resource_version },
            "spec": { "reruns": reruns },
        });
        match cluster
            .runs()
            .patch(
                &name,
                &PatchParams::apply(RERUN_FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(_) => break rerun_name,
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < 5 => {
                run = cluster.run(&name).await?;
            }
            Err(e) => {
                return Err(CliError::from_kube(
                    &format!("adding rerun {rerun_name} to {name}"),
                    e,
                ));
            }
        }
    };
    println!(
        "pipelinerun.tipoff.dev/{name}: rerun {rerun_name} of {processor}{} requested",
        game.map(|g| format!(" for game {g}")).unwrap_or_default()
    );
    if let Some(timeout) = wait {
        let v = follow::follow(
            cluster,
            &name,
            timeout,
            &mut |l| println!("{l}"),
            &mut |v| {
                v.reruns
                    .iter()
                    .find(|r| r.name == rerun_name)
                    .is_some_and(|r| r.state != tipoff_crds::RerunState::Pending)
            },
        )
        .await?;
        let r = v.reruns.iter().find(|r| r.name == rerun_name);
        match r.map(|r| r.state) {
            Some(tipoff_crds::RerunState::Succeeded | tipoff_crds::RerunState::Superseded) => {}
            other => {
                return Err(CliError::RunFailed(format!(
                    "rerun {rerun_name} is {}: {}",
                    other.map_or_else(|| "missing".to_owned(), |s| format!("{s:?}")),
                    r.and_then(|r| r.message.clone()).unwrap_or_default()
                )));
            }
        }
    }
    Ok(())
}

/// The processors of the run's PhaseCompletions.
async fn run_processors(cluster: &Cluster, run: &PipelineRun) -> Result<Vec<String>> {
    let children = cluster.children(run).await?;
    Ok(children
        .phase_completions
        .iter()
        .flat_map(|pc| pc.spec.expected.clone())
        .collect())
}

/// `tipoff logs`.
pub async fn logs(
    cluster: &Cluster,
    date: &str,
    mode: Option<Mode>,
    processor: &str,
    attempt: Option<u32>,
    tail: Option<i64>,
) -> Result<()> {
    parse_date(date)?;
    let run = cluster.run_for_date(date, mode).await?;
    let jobs_api: Api<Job> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let selector = format!(
        "{}={},{}={}",
        children::LABEL_RUN,
        children::run_label(&run.name_any()),
        children::LABEL_PROCESSOR,
        processor
    );
    let jobs = jobs_api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| CliError::from_kube("listing Jobs", e))?
        .items;
    let attempt_of = |j: &Job| -> u32 {
        j.labels()
            .get(children::LABEL_ATTEMPT)
            .and_then(|a| a.parse().ok())
            .unwrap_or(0)
    };
    let job = match attempt {
        Some(a) => jobs.iter().find(|j| attempt_of(j) == a),
        None => jobs.iter().max_by_key(|j| attempt_of(j)),
    }
    .ok_or_else(|| {
        CliError::NotFound(format!(
            "no Job of {processor}{} in run {} (it has not run, or its Job passed its TTL)",
            attempt.map(|a| format!(" attempt {a}")).unwrap_or_default(),
            run.name_any()
        ))
    })?;
    let pods_api: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut pods = pods_api
        .list(&ListParams::default().labels(&format!("job-name={}", job.name_any())))
        .await
        .map_err(|e| CliError::from_kube("listing Pods", e))?
        .items;
    if pods.is_empty() {
        return Err(CliError::NotFound(format!(
            "Job {} has no Pod (yet)",
            job.name_any()
        )));
    }
    pods.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    for pod in &pods {
        let params = LogParams {
            tail_lines: tail,
            ..LogParams::default()
        };
        let text = pods_api.logs(&pod.name_any(), &params).await.map_err(|e| {
            CliError::from_kube(&format!("reading the log of {}", pod.name_any()), e)
        })?;
        if pods.len() > 1 {
            println!("==> pod {} <==", pod.name_any());
        }
        print!("{text}");
        if !text.ends_with('\n') && !text.is_empty() {
            println!();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_with_gate_and_processor() {
        let o = parse_override("RelaxGate:boxscore-coverage@scrape-boxscores", "r").unwrap();
        assert_eq!(o.type_, OverrideType::RelaxGate);
        assert_eq!(o.gate.as_deref(), Some("boxscore-coverage"));
        assert_eq!(o.processor.as_deref(), Some("scrape-boxscores"));
        assert_eq!(
            parse_override("skip-dependency-check", "r").unwrap().type_,
            OverrideType::SkipDependencyCheck
        );
        for bad in ["RelaxGate", "AcceptDrift:x", "Ignore"] {
            assert_eq!(
                parse_override(bad, "r").unwrap_err().exit_code(),
                2,
                "{bad}"
            );
        }
    }

    #[test]
    fn games_are_ids_or_matchups() {
        for ok in ["0022500123", "BOS@LAL", "NO@UTA"] {
            assert!(check_game(ok).is_ok(), "{ok}");
        }
        for bad in ["bos@lal", "12345", "BOS-LAL", "BOSTON@LAKERS"] {
            assert!(check_game(bad).is_err(), "{bad}");
        }
    }
}
