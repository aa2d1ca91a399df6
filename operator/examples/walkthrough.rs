//! The planner walking one game date through the pipeline, printed step by step.
//!
//! This is an in-memory simulation: no cluster and no processors. The "cluster" is the same
//! one the planner's tests use (`operator/tests/support`): it applies each plan the way the
//! controller does (creating Jobs with the real Job builder and PhaseCompletions, writing
//! statuses) and finishes Jobs the way Kubernetes would, with the processor's result as the
//! Pod's termination message. The catalog is the six-phase test profile
//! (`config/test/pipeline.yaml`), whose results the simulation scripts freely; the real
//! processors of the production catalog run in `tipoff-demo`.
//!
//! ```text
//! cargo run -p tipoff-operator --example walkthrough                        # a retry, then success
//! cargo run -p tipoff-operator --example walkthrough -- --scenario wrong-code
//! cargo run -p tipoff-operator --example walkthrough -- --scenario same-day
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // a demo: a panic is a bug report

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::ExitCode;

use support::{Cluster, IMAGE};
use tipoff_crds::{Mode, OverrideType, PhaseCompletion, PipelineRun};
use tipoff_operator::planner::Plan;

/// What the simulated processors do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// A Production run; `raw-boxscores` fails transiently once and is retried.
    Retry,
    /// A Production run; the prediction processor that answers is another program
    /// (seed 000: the coordinator returned `analytics_processors`).
    WrongCode,
    /// A SameDay run whose feature store cannot have its inputs; blocked, then an audited
    /// override lets it proceed (seed 001).
    SameDay,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scenario = match args
        .iter()
        .position(|a| a == "--scenario")
        .and_then(|i| args.get(i + 1))
    {
        None => Scenario::Retry,
        Some(s) if s == "retry" => Scenario::Retry,
        Some(s) if s == "wrong-code" => Scenario::WrongCode,
        Some(s) if s == "same-day" => Scenario::SameDay,
        Some(other) => {
            eprintln!("unknown scenario {other:?}: use retry, wrong-code or same-day");
            return ExitCode::from(2);
        }
    };
    let mode = if scenario == Scenario::SameDay {
        Mode::SameDay
    } else {
        Mode::Production
    };
    let mut cluster = Cluster::new(support::run("nba-2026-01-29", mode));
    println!("tipoff walkthrough: the planner deciding one game date (in-memory simulation)");
    println!(
        "catalog: config/test/pipeline.yaml ({} phases, {} processors; test profile)",
        cluster.catalog.phases.len(),
        cluster.catalog.processors().count()
    );
    println!(
        "run:     {} date={} mode={:?} image=...{} commit={}\n",
        cluster.run.metadata.name.as_deref().unwrap_or_default(),
        cluster.run.spec.date,
        cluster.run.spec.mode,
        &IMAGE[IMAGE.len() - 12..],
        cluster.run.spec.release.commit
    );

    let mut failed_once = false;
    let mut overridden = false;
    for _round in 0..60 {
        let plan = cluster.step();
        report(&cluster, &plan);
        let live = cluster.live_processors();
        if live.is_empty() {
            let state = cluster.run.status.as_ref().and_then(|s| s.state);
            let blocked = state == Some(tipoff_crds::RunState::Blocked);
            if scenario == Scenario::SameDay && blocked && !overridden {
                overridden = true;
                println!("\n  >> the on-call adds an audited override to the run's spec:");
                println!(
                    "     overrides: [{{type: SkipDependencyCheck, processor: ml-feature-store, reason: ...}}]\n"
                );
                cluster.run.spec.overrides.push(support::override_(
                    OverrideType::SkipDependencyCheck,
                    Some("ml-feature-store"),
                    None,
                ));
                cluster.run.metadata.generation = Some(2);
                continue;
            }
            if plan.requeue_after.is_none() || state.is_some_and(|s| s.is_terminal()) || blocked {
                break;
            }
        }
        for p in live {
            let t = cluster.now;
            match (scenario, p.as_str()) {
                (Scenario::Retry, "raw-boxscores") if !failed_once => {
                    failed_once = true;
                    println!("  {t}  {p}: exits 75 (transient: upstream timed out)");
                    cluster.fail(&p, 75);
                }
                (Scenario::WrongCode, "player-prop-predictions") => {
                    let mut result = cluster.result_for(&p);
                    result.processor = "player-game-summary".into();
                    result.service = "analytics-processors".into();
                    println!(
                        "  {t}  {p}: finishes, but the result says processor={} service={}",
                        result.processor, result.service
                    );
                    cluster.succeed_with(&p, &result, IMAGE);
                }
                (Scenario::SameDay, "player-game-summary" | "team-defense-zone-analysis") => {
                    println!(
                        "  {t}  {p}: exits 65 (permanent: today's games have not been played)"
                    );
                    cluster.fail(&p, 65);
                }
                _ => cluster.succeed(&p),
            }
        }
        cluster.advance(match plan.requeue_after {
            Some(d) if d.as_secs() > 10 => i64::try_from(d.as_secs()).unwrap(),
            _ => 10,
        });
    }
    summary(&cluster.run, &cluster.observed.phase_completions);
    ExitCode::SUCCESS
}

/// Prints what one plan decided.
fn report(cluster: &Cluster, plan: &Plan) {
    let t = cluster.now;
    for pc in &plan.phase_completions {
        println!(
            "  {t}  create PhaseCompletion {} (phase {} {})",
            pc.name, pc.spec.phase, pc.spec.phase_name
        );
    }
    if !plan.jobs.is_empty() {
        let names: Vec<String> = plan
            .jobs
            .iter()
            .map(|j| format!("{} (a{})", j.processor, j.attempt))
            .collect();
        println!(
            "  {t}  create {} Job(s): {}",
            plan.jobs.len(),
            names.join(", ")
        );
    }
    for name in &plan.jobs_to_delete {
        println!("  {t}  delete Job {name}");
    }
    for e in &plan.events {
        println!("  {t}  event {:?} {:?}: {}", e.type_, e.reason, e.message);
    }
}

/// Prints the run and its phases the way `kubectl get` shows them.
fn summary(run: &PipelineRun, phases: &[PhaseCompletion]) {
    let status = run.status.clone().unwrap_or_default();
    let drift = status
        .conditions
        .iter()
        .find(|c| c.type_ == "CodeDrift")
        .map_or("".into(), |c| format!("{:?}", c.status));
    println!("\n$ kubectl get pipelineruns");
    println!(
        "{:<16} {:<11} {:<11} {:<6} {:<6} {:<6} STATE",
        "NAME", "DATE", "MODE", "PHASE", "DONE", "DRIFT"
    );
    println!(
        "{:<16} {:<11} {:<11} {:<6} {:<6} {:<6} {}",
        run.metadata.name.as_deref().unwrap_or_default(),
        run.spec.date,
        format!("{:?}", run.spec.mode),
        status
            .current_phase
            .map(|p| p.to_string())
            .unwrap_or_default(),
        status.progress.unwrap_or_default(),
        drift,
        status.state.map_or("".into(), |s| format!("{s:?}")),
    );
    println!("\n$ kubectl get phasecompletions");
    println!(
        "{:<22} {:<6} {:<12} {:<6} STATE",
        "NAME", "PHASE", "NAME", "DONE"
    );
    for pc in phases {
        let s = pc.status.clone().unwrap_or_default();
        println!(
            "{:<22} {:<6} {:<12} {:<6} {}",
            pc.metadata.name.as_deref().unwrap_or_default(),
            pc.spec.phase,
            pc.spec.phase_name,
            s.progress.unwrap_or_default(),
            s.state.map_or("".into(), |st| format!("{st:?}")),
        );
    }
    println!("\nconditions:");
    for c in &status.conditions {
        println!(
            "  {:<16} {:<7} {:<24} {}",
            c.type_,
            format!("{:?}", c.status),
            c.reason,
            c.message
        );
    }
    for d in &status.drift {
        println!(
            "drift: {} attempt {} {:?}: pinned {} observed {}",
            d.processor, d.attempt, d.field, d.pinned, d.observed
        );
    }
}
