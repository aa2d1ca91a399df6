//! Following a run live: the lines to print between two views of it (pure), and the loop that
//! wakes on watch events for the run and its Jobs and prints them until the run has ended or
//! waits for a person (Blocked with nothing running).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use kube::runtime::watcher;
use tipoff_crds::PipelineRun;
use tipoff_crds::children;

use crate::cluster::Cluster;
use crate::error::{CliError, Result};
use crate::view::{self, RunView};

/// What changed from `prev` to `next`, one line each.
pub fn diff(prev: Option<&RunView>, next: &RunView) -> Vec<String> {
    let mut lines = Vec::new();
    // The run's own line comes after what changed inside it.
    let mut run_line = None;
    if prev.is_none_or(|p| p.state != next.state) {
        let why = match (next.state.as_str(), next.message.as_deref()) {
            ("Blocked" | "Failed", Some(m)) => {
                let short: String = m.chars().take(240).collect();
                if short.len() < m.len() {
                    format!(": {short}…")
                } else {
                    format!(": {short}")
                }
            }
            _ => String::new(),
        };
        let progress = if next.progress == "0/0" {
            String::new()
        } else {
            format!(" ({})", next.progress)
        };
        run_line = Some(format!(
            "run {} is {}{progress}{why}",
            next.name, next.state
        ));
    }
    let old_phases: BTreeMap<u8, &view::PhaseView> = prev
        .map(|p| p.phases.iter().map(|ph| (ph.phase, ph)).collect())
        .unwrap_or_default();
    for phase in &next.phases {
        let old = old_phases.get(&phase.phase);
        if old.is_none_or(|o| o.state != phase.state)
            && !(old.is_none() && phase.state == "Pending")
        {
            lines.push(format!(
                "phase {} {}: {} ({}/{})",
                phase.phase, phase.name, phase.state, phase.done, phase.expected
            ));
        }
        for p in &phase.processors {
            let old_p = old.and_then(|o| o.processors.iter().find(|x| x.name == p.name));
            for a in &p.attempts {
                let old_a = old_p.and_then(|o| o.attempts.iter().find(|x| x.attempt == a.attempt));
                // A failed Job is reported once the operator has judged it (its reason),
                // so the line says why.
                let judged = |x: &view::AttemptView| x.state != "Failed" || x.reason.is_some();
                if !judged(a) || old_a.is_some_and(|o| o.state == a.state && judged(o)) {
                    continue;
                }
                let rerun = a
                    .rerun
                    .as_ref()
                    .map(|r| format!(" (rerun {r})"))
                    .unwrap_or_default();
                let line = match a.state.as_str() {
                    "Running" => format!("  {} attempt {} started{rerun}", p.name, a.attempt),
                    "Succeeded" => format!(
                        "  {} attempt {} succeeded{rerun} in {:.1}s",
                        p.name,
                        a.attempt,
                        a.seconds.unwrap_or_default()
                    ),
                    _ => format!(
                        "  {} attempt {} failed{rerun}: {}{}",
                        p.name,
                        a.attempt,
                        a.reason.as_deref().unwrap_or("Failed"),
                        a.message
                            .as_deref()
                            .map(|m| format!(" ({})", m.chars().take(120).collect::<String>()))
                            .unwrap_or_default()
                    ),
                };
                lines.push(line);
            }
            if p.state == "Held" && old_p.is_none_or(|o| o.state != "Held") {
                let failed: Vec<String> = p
                    .gates
                    .iter()
                    .filter(|g| !g.passed)
                    .map(|g| {
                        if g.missing.is_empty() {
                            g.name.clone()
                        } else {
                            format!("{} (missing {})", g.name, g.missing.join(", "))
                        }
                    })
                    .collect();
                lines.push(format!(
                    "  {} held: {}",
                    p.name,
                    if failed.is_empty() {
                        "code drift".to_owned()
                    } else {
                        failed.join("; ")
                    }
                ));
            }
        }
    }
    let old_drift = prev.map_or(0, |p| p.drift.len());
    for d in next.drift.iter().skip(old_drift) {
        lines.push(format!(
            "  drift: {} {:?} pinned {} but ran {}",
            d.processor, d.field, d.pinned, d.observed
        ));
    }
    lines.extend(run_line);
    lines
}

/// Whether following can stop: the run ended, or it is Blocked with nothing running.
pub fn settled(v: &RunView) -> bool {
    let running = v
        .phases
        .iter()
        .flat_map(|p| &p.processors)
        .any(|p| p.state == "Running");
    matches!(v.state.as_str(), "Succeeded" | "Failed") || (v.state == "Blocked" && !running)
}

/// Reads the run and builds its view now.
pub async fn snapshot(cluster: &Cluster, name: &str) -> Result<(PipelineRun, RunView)> {
    let run = cluster.run(name).await?;
    let children = cluster.children(&run).await?;
    let v = view::build(&run, &children, jiff::Timestamp::now());
    Ok((run, v))
}

/// Follows run `name`, calling `print` with each new line, until it settles or `timeout`
/// passes; `on_view` sees every view (the demo uses it to act mid-run). Returns the last view.
pub async fn follow(
    cluster: &Cluster,
    name: &str,
    timeout: Duration,
    print: &mut dyn FnMut(&str),
    on_view: &mut dyn FnMut(&RunView) -> bool,
) -> Result<RunView> {
    let runs: Api<PipelineRun> = cluster.runs();
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let run_events = watcher(
        runs,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .map(|_| ());
    let job_events = watcher(
        jobs,
        watcher::Config::default().labels(&format!(
            "{}={}",
            children::LABEL_RUN,
            children::run_label(name)
        )),
    )
    .map(|_| ());
    let mut wake = futures::stream::select(run_events, job_events).boxed();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut prev: Option<RunView> = None;
    // Blocked must be seen twice in a row: a phase can be Blocked for an instant between a
    // processor's result and the next plan.
    let mut settled_seen = 0;
    loop {
        let (_, v) = snapshot(cluster, name).await?;
        for line in diff(prev.as_ref(), &v) {
            print(&line);
        }
        let keep_going = on_view(&v);
        if settled(&v) && keep_going {
            settled_seen += 1;
            if settled_seen >= 2 || v.state != "Blocked" {
                return Ok(v);
            }
        } else {
            settled_seen = 0;
        }
        prev = Some(v);
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::RunFailed(format!(
                "run {name} did not finish within {}s",
                timeout.as_secs()
            )));
        }
        // Wake on the next watch event, or look again after a second.
        let _ = tokio::time::timeout(Duration::from_secs(1), wake.next()).await;
        // Coalesce a burst of events into one look.
        while let Ok(Some(())) = tokio::time::timeout(Duration::from_millis(150), wake.next()).await
        {
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{AttemptView, PhaseView, ProcessorView};

    fn view(state: &str, attempt_state: Option<&str>) -> RunView {
        RunView {
            name: "nba-2026-01-14".into(),
            namespace: "default".into(),
            date: "2026-01-14".into(),
            mode: "Production".into(),
            state: state.into(),
            progress: "0/1".into(),
            current_phase: Some(1),
            image: String::new(),
            commit: String::new(),
            created: None,
            completed: None,
            conditions: vec![],
            phases: vec![PhaseView {
                phase: 1,
                name: "scrape".into(),
                state: "Running".into(),
                done: 0,
                expected: 1,
                seconds: None,
                processors: vec![ProcessorView {
                    name: "scrape-schedule".into(),
                    state: attempt_state.unwrap_or("Waiting").into(),
                    attempts: attempt_state
                        .map(|s| AttemptView {
                            attempt: 1,
                            job: "j".into(),
                            state: s.into(),
                            reason: (s == "Failed").then(|| "ExitTransient".into()),
                            message: None,
                            exit_code: None,
                            seconds: Some(1.5),
                            rerun: None,
                        })
                        .into_iter()
                        .collect(),
                    gates: vec![],
                    rows: Default::default(),
                }],
            }],
            drift: vec![],
            missing: vec![],
            reruns: vec![],
            rows_written: Default::default(),
            retries: 0,
            message: Some("why".into()),
        }
    }

    #[test]
    fn lines_say_what_changed_and_the_run_line_comes_last() {
        let a = view("Running", Some("Running"));
        assert_eq!(
            diff(None, &a),
            [
                "phase 1 scrape: Running (0/1)",
                "  scrape-schedule attempt 1 started",
                "run nba-2026-01-14 is Running (0/1)",
            ]
        );
        assert!(diff(Some(&a), &a).is_empty());
        let b = view("Failed", Some("Failed"));
        assert_eq!(
            diff(Some(&a), &b),
            [
                "  scrape-schedule attempt 1 failed: ExitTransient",
                "run nba-2026-01-14 is Failed (0/1): why",
            ]
        );
        assert!(settled(&b));
        assert!(!settled(&a));
    }
}
