//! What a person (or a script) sees of a run: a pure model built from the run and its children,
//! and the renderings of it (the status tree, the one-line-per-run list, the drift table).
//!
//! Nothing here talks to the cluster; everything is a function of objects, so the renderings
//! are tested with hand-built objects.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use serde::Serialize;
use tipoff_crds::children;
use tipoff_crds::{
    DriftFinding, GateOutcome, GatePolicy, PhaseState, PipelineRun, ProcessorRecord,
    ProcessorResult, RerunStatus,
};

use crate::cluster::Children;

/// One run as the CLI shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// The PipelineRun's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The game date.
    pub date: String,
    /// The mode.
    pub mode: String,
    /// The run's state (`Pending` until the operator wrote a status).
    pub state: String,
    /// Processors succeeded / expected.
    pub progress: String,
    /// The phase running now, or the last one reached.
    pub current_phase: Option<u8>,
    /// The pinned image.
    pub image: String,
    /// The pinned commit.
    pub commit: String,
    /// When the run was created.
    pub created: Option<Timestamp>,
    /// When the run ended.
    pub completed: Option<Timestamp>,
    /// Conditions as `type`, status, reason, message.
    pub conditions: Vec<ConditionView>,
    /// Phases in order.
    pub phases: Vec<PhaseView>,
    /// Drift findings.
    pub drift: Vec<DriftFinding>,
    /// Checks that failed, with the entities they name.
    pub missing: Vec<MissingView>,
    /// Reruns and how they went.
    pub reruns: Vec<RerunStatus>,
    /// Rows written per table over the run.
    pub rows_written: BTreeMap<String, i64>,
    /// Retries used.
    pub retries: u32,
    /// The operator's one-line account.
    pub message: Option<String>,
}

/// One condition.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConditionView {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
}

/// One phase.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PhaseView {
    /// Number.
    pub phase: u8,
    /// Name.
    pub name: String,
    /// State.
    pub state: String,
    /// Processors succeeded.
    pub done: u32,
    /// Processors expected.
    pub expected: u32,
    /// Seconds from its first Job to its end (or to now while running), if started.
    pub seconds: Option<f64>,
    /// Its processors (known once the phase was reached).
    pub processors: Vec<ProcessorView>,
}

/// One processor of a phase.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProcessorView {
    /// Name.
    pub name: String,
    /// `Waiting`, `Running`, `Succeeded`, `Held` (a blocking gate failed or drift), `Failed`.
    pub state: String,
    /// Every attempt observed, oldest first.
    pub attempts: Vec<AttemptView>,
    /// Gates of the successful attempt.
    pub gates: Vec<GateOutcome>,
    /// Rows written by the successful attempt.
    pub rows: BTreeMap<String, i64>,
}

/// One attempt (one Job).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// Attempt number.
    pub attempt: u32,
    /// The Job.
    pub job: String,
    /// `Running`, `Succeeded` or `Failed`.
    pub state: String,
    /// For a failure: the category.
    pub reason: Option<String>,
    /// For a failure: what happened.
    pub message: Option<String>,
    /// The exit code, if known.
    pub exit_code: Option<i32>,
    /// Seconds it ran, if finished.
    pub seconds: Option<f64>,
    /// The rerun it was, if any.
    pub rerun: Option<String>,
}

/// A failed check and what it names.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MissingView {
    /// The processor that reported it.
    pub processor: String,
    /// The gate (check) name.
    pub gate: String,
    /// `Blocking` or `Warning`.
    pub policy: String,
    /// Observed value.
    pub observed: Option<i64>,
    /// Expected value.
    pub expected: Option<i64>,
    /// The entities named missing.
    pub missing: Vec<String>,
}

fn label<'a>(job: &'a Job, key: &str) -> Option<&'a str> {
    job.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

fn seconds(from: Option<Timestamp>, to: Option<Timestamp>) -> Option<f64> {
    let (from, to) = (from?, to?);
    Some(((to - from).total(jiff::Unit::Millisecond).ok()? / 100.0).round() / 10.0)
}

/// The attempt's state as the operator reads it ([`children::job_end`]), and when it ended.
fn job_state(job: &Job) -> (&'static str, Option<Timestamp>) {
    let Some((end, c)) = children::job_end(job) else {
        return ("Running", None);
    };
    let at = c.last_transition_time.as_ref().map(|t| t.0);
    if end.is_failure() {
        return ("Failed", at);
    }
    let completed = job.status.as_ref().and_then(|s| s.completion_time.as_ref());
    ("Succeeded", completed.map(|t| t.0).or(at))
}

/// Builds the view of `run` from its children, at `now` (for the age of running phases).
pub fn build(run: &PipelineRun, children: &Children, now: Timestamp) -> RunView {
    let status = run.status.clone().unwrap_or_default();
    let mut phases = Vec::new();
    let mut missing = Vec::new();
    for summary in &status.phases {
        let pc = children
            .phase_completions
            .iter()
            .find(|pc| pc.spec.phase == summary.phase);
        let mut processors = Vec::new();
        if let Some(pc) = pc {
            let pcs = pc.status.clone().unwrap_or_default();
            for name in &pc.spec.expected {
                let completed = pcs.completed.iter().find(|r| &r.processor == name);
                let failed = pcs.failed.iter().find(|r| &r.processor == name);
                let running = pcs.running.iter().find(|r| &r.processor == name);
                let attempts = attempts_of(name, children, completed, failed);
                let held = completed.is_some_and(|r| {
                    r.gates
                        .iter()
                        .any(|g| !g.passed && g.policy == GatePolicy::Blocking)
                        || status.drift.iter().any(|d| {
                            &d.processor == name
                                && status
                                    .conditions
                                    .iter()
                                    .any(|c| c.type_ == "Blocked" && c.reason == "CodeDrift")
                        })
                });
                let state =
                    if running.is_some() || attempts.last().is_some_and(|a| a.state == "Running") {
                        "Running"
                    } else if completed.is_some() {
                        if held { "Held" } else { "Succeeded" }
                    } else if failed.is_some() {
                        "Failed"
                    } else {
                        "Waiting"
                    };
                if let Some(c) = completed {
                    for g in c.gates.iter().filter(|g| !g.passed) {
                        missing.push(MissingView {
                            processor: name.clone(),
                            gate: g.name.clone(),
                            policy: format!("{:?}", g.policy),
                            observed: g.observed,
                            expected: g.expected,
                            missing: g.missing.clone(),
                        });
                    }
                }
                processors.push(ProcessorView {
                    name: name.clone(),
                    state: state.to_owned(),
                    attempts,
                    gates: completed.map(|c| c.gates.clone()).unwrap_or_default(),
                    rows: completed.map(|c| c.rows.clone()).unwrap_or_default(),
                });
            }
        }
        let start = summary.start_time.as_ref().map(|t| t.0);
        let end = summary
            .completion_time
            .as_ref()
            .map(|t| t.0)
            .or_else(|| (summary.state == PhaseState::Running).then_some(now));
        phases.push(PhaseView {
            phase: summary.phase,
            name: summary.name.clone(),
            state: format!("{:?}", summary.state),
            done: summary.done,
            expected: summary.expected,
            seconds: seconds(start, end),
            processors,
        });
    }
    let summary = status.summary.clone().unwrap_or_default();
    RunView {
        name: run.name_any(),
        namespace: run.namespace().unwrap_or_default(),
        date: run.spec.date.clone(),
        mode: format!("{:?}", run.spec.mode),
        state: status
            .state
            .map_or_else(|| "Pending".to_owned(), |s| format!("{s:?}")),
        progress: status.progress.clone().unwrap_or_else(|| "0/0".to_owned()),
        current_phase: status.current_phase,
        image: run.spec.release.image.clone(),
        commit: run.spec.release.commit.clone(),
        created: run.metadata.creation_timestamp.as_ref().map(|t| t.0),
        completed: status.completion_time.as_ref().map(|t| t.0),
        conditions: status
            .conditions
            .iter()
            .map(|c| ConditionView {
                type_: c.type_.clone(),
                status: format!("{:?}", c.status),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect(),
        phases,
        drift: status.drift.clone(),
        missing,
        reruns: status.reruns.clone(),
        rows_written: summary.rows_written,
        retries: summary.retries,
        message: summary.message,
    }
}

/// Every attempt of `processor`: its Jobs, completed by the ledger's records (a Job past its
/// TTL is known only there).
fn attempts_of(
    processor: &str,
    children: &Children,
    completed: Option<&ProcessorRecord>,
    failed: Option<&ProcessorRecord>,
) -> Vec<AttemptView> {
    let mut by_attempt: BTreeMap<u32, AttemptView> = BTreeMap::new();
    for job in &children.jobs {
        if label(job, children::LABEL_PROCESSOR) != Some(processor) {
            continue;
        }
        let Some(attempt) = label(job, children::LABEL_ATTEMPT).and_then(|a| a.parse().ok()) else {
            continue;
        };
        let (state, finished) = job_state(job);
        let started = job
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0);
        // The processor measures its own duration (Job times have one-second precision).
        let measured = result_of(&job.name_any(), &children.pods)
            .map(|r| (r.duration_ms as f64 / 100.0).round() / 10.0);
        by_attempt.insert(
            attempt,
            AttemptView {
                attempt,
                job: job.name_any(),
                state: state.to_owned(),
                reason: None,
                message: None,
                exit_code: None,
                seconds: measured.or_else(|| seconds(started, finished)),
                rerun: label(job, children::LABEL_RERUN).map(str::to_owned),
            },
        );
    }
    for (record, state) in [(completed, "Succeeded"), (failed, "Failed")] {
        let Some(r) = record else { continue };
        let entry = by_attempt.entry(r.attempt).or_insert_with(|| AttemptView {
            attempt: r.attempt,
            job: r.job.clone(),
            state: state.to_owned(),
            reason: None,
            message: None,
            exit_code: None,
            seconds: seconds(
                r.start_time.as_ref().map(|t| t.0),
                r.finish_time.as_ref().map(|t| t.0),
            ),
            rerun: r.rerun.clone(),
        });
        // The operator's judgement wins over the Job's own condition (a Job that completed
        // with a malformed result is a failed attempt).
        entry.state = state.to_owned();
        entry.reason.clone_from(&r.reason);
        entry.message.clone_from(&r.message);
        entry.exit_code = r.exit_code;
    }
    by_attempt.into_values().collect()
}

/// The result a Job's Pod reported, if its termination message parses.
pub fn result_of(job: &str, pods: &[k8s_openapi::api::core::v1::Pod]) -> Option<ProcessorResult> {
    pods.iter()
        .filter(|p| p.labels().get("job-name").map(String::as_str) == Some(job))
        .find_map(|p| {
            let t = children::processor_container(p)?
                .state
                .as_ref()?
                .terminated
                .as_ref()?;
            ProcessorResult::parse(t.message.as_deref()?).ok()
        })
}

fn mark(passed: bool) -> &'static str {
    if passed { "ok" } else { "FAILED" }
}

fn secs(s: Option<f64>) -> String {
    s.map(|s| format!("{s:.1}s")).unwrap_or_default()
}

/// The status tree of one run.
pub fn render_tree(v: &RunView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  {}  {}  {}  {} processors succeeded",
        v.name, v.date, v.mode, v.state, v.progress
    );
    let _ = writeln!(out, "  release  {}  commit {}", v.image, v.commit);
    if !v.conditions.is_empty() {
        let conds: Vec<String> = v
            .conditions
            .iter()
            .map(|c| format!("{}={}", c.type_, c.status))
            .collect();
        let _ = writeln!(out, "  conditions  {}", conds.join("  "));
    }
    for c in v
        .conditions
        .iter()
        .filter(|c| c.status == "True" && (c.type_ == "Blocked" || c.type_ == "CodeDrift"))
    {
        let _ = writeln!(
            out,
            "  {} ({}): {}",
            c.type_,
            c.reason,
            one_line(&c.message, 300)
        );
    }
    for (i, p) in v.phases.iter().enumerate() {
        let last_phase = i + 1 == v.phases.len();
        let (branch, stem) = if last_phase {
            ("└─", "   ")
        } else {
            ("├─", "│  ")
        };
        let _ = writeln!(
            out,
            "{branch} phase {} {:<11} {:<10} {}/{}  {}",
            p.phase,
            p.name,
            p.state,
            p.done,
            p.expected,
            secs(p.seconds)
        );
        if p.processors.is_empty() && p.state == "Pending" {
            let _ = writeln!(out, "{stem}   (not reached)");
        }
        for (j, proc_) in p.processors.iter().enumerate() {
            let last = j + 1 == p.processors.len();
            let pb = if last { "└─" } else { "├─" };
            let ps = if last { "   " } else { "│  " };
            let attempts: Vec<String> = proc_
                .attempts
                .iter()
                .map(|a| {
                    let mut s = format!("a{} {}", a.attempt, a.state);
                    if let Some(r) = &a.rerun {
                        let _ = write!(s, " (rerun {r})");
                    }
                    if let Some(reason) = &a.reason {
                        let _ = write!(s, " {reason}");
                    }
                    if let Some(code) = a.exit_code.filter(|c| *c != 0) {
                        let _ = write!(s, " exit {code}");
                    }
                    if a.seconds.is_some() {
                        let _ = write!(s, " {}", secs(a.seconds));
                    }
                    s
                })
                .collect();
            let _ = writeln!(
                out,
                "{stem}{pb} {:<22} {:<10} {}",
                proc_.name,
                proc_.state,
                attempts.join(", ")
            );
            let gates: Vec<String> = proc_
                .gates
                .iter()
                .map(|g| {
                    let counts = match (g.observed, g.expected) {
                        (Some(o), Some(e)) => format!(" {o}/{e}"),
                        (Some(o), None) => format!(" {o}"),
                        _ => String::new(),
                    };
                    format!("{} {}{counts}", g.name, mark(g.passed))
                })
                .collect();
            if !gates.is_empty() {
                let _ = writeln!(out, "{stem}{ps}   gates: {}", gates.join(", "));
            }
            for a in proc_.attempts.iter().filter(|a| a.state == "Failed") {
                if let Some(m) = &a.message {
                    let _ = writeln!(out, "{stem}{ps}   a{}: {}", a.attempt, one_line(m, 160));
                }
            }
        }
    }
    if !v.missing.is_empty() {
        let _ = writeln!(out, "failed checks:");
        for m in &v.missing {
            let counts = match (m.observed, m.expected) {
                (Some(o), Some(e)) => format!(" ({o} of {e})"),
                _ => String::new(),
            };
            let named = if m.missing.is_empty() {
                String::new()
            } else {
                format!(", missing {}", m.missing.join(", "))
            };
            let _ = writeln!(
                out,
                "  {} {} [{}]{counts}{named}",
                m.processor, m.gate, m.policy
            );
        }
    }
    if !v.drift.is_empty() {
        let _ = writeln!(out, "drift:");
        for d in &v.drift {
            let _ = writeln!(
                out,
                "  {} attempt {}: {:?} pinned {} but ran {}",
                d.processor, d.attempt, d.field, d.pinned, d.observed
            );
        }
    }
    if !v.reruns.is_empty() {
        let _ = writeln!(out, "reruns:");
        for r in &v.reruns {
            let _ = writeln!(
                out,
                "  {} {}{}  {:?}{}{}",
                r.name,
                r.processor,
                r.game
                    .as_ref()
                    .map(|g| format!(" game {g}"))
                    .unwrap_or_default(),
                r.state,
                r.attempt
                    .map(|a| format!(" (attempt {a})"))
                    .unwrap_or_default(),
                r.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
        }
    }
    if !v.rows_written.is_empty() {
        let rows: Vec<String> = v
            .rows_written
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        let _ = writeln!(out, "rows written: {}", rows.join(", "));
    }
    out
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// A human age such as `41m` or `3h`.
pub fn age(from: Option<Timestamp>, now: Timestamp) -> String {
    let Some(from) = from else {
        return "-".to_owned();
    };
    let s = (now - from).get_seconds().max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// Renders rows as left-aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>| -> String {
        let n = cells.len();
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    c
                } else {
                    format!("{c:<w$}", w = widths[i] + 2)
                }
            })
            .collect::<String>()
    };
    let _ = writeln!(
        out,
        "{}",
        line(header.iter().map(|h| (*h).to_owned()).collect())
    );
    for row in rows {
        let _ = writeln!(out, "{}", line(row.clone()));
    }
    out
}

/// One line per run: the `kubectl get pipelineruns` columns.
pub fn render_list(runs: &[PipelineRun], now: Timestamp) -> String {
    // The CREATED BY column only when a run was created by something (a backfill).
    let created = runs.iter().any(|r| !created_by(r).is_empty());
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let s = r.status.clone().unwrap_or_default();
            let drift = s
                .conditions
                .iter()
                .find(|c| c.type_ == "CodeDrift")
                .map_or_else(String::new, |c| format!("{:?}", c.status));
            let mut row = vec![
                r.name_any(),
                r.spec.date.clone(),
                format!("{:?}", r.spec.mode),
                s.current_phase.map(|p| p.to_string()).unwrap_or_default(),
                s.progress.unwrap_or_default(),
                drift,
                s.state.map(|s| format!("{s:?}")).unwrap_or_default(),
            ];
            if created {
                row.push(created_by(r));
            }
            row.push(age(
                r.metadata.creation_timestamp.as_ref().map(|t| t.0),
                now,
            ));
            row
        })
        .collect();
    let mut header = vec!["NAME", "DATE", "MODE", "PHASE", "DONE", "DRIFT", "STATE"];
    if created {
        header.push("CREATED BY");
    }
    header.push("AGE");
    table(&header, &rows)
}

/// Who created a run: `schedule/<name>` or `backfill/<name>` from its label
/// ([`tipoff_crds::children::created_by`]), else empty.
pub fn created_by(run: &PipelineRun) -> String {
    children::created_by(run.labels()).unwrap_or_default()
}

/// What code ran for one processor of one run, against the pin.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DriftRow {
    /// The run.
    pub run: String,
    /// The run's date.
    pub date: String,
    /// The processor.
    pub processor: String,
    /// The attempt that ran.
    pub attempt: u32,
    /// The pinned commit.
    pub pinned_commit: String,
    /// The commit the processor reported.
    pub ran_commit: Option<String>,
    /// The pinned image.
    pub pinned_image: String,
    /// The image the Pod ran (`imageID`).
    pub ran_image: Option<String>,
    /// The processor that answered, when it was not the one asked for.
    pub answered_as: Option<String>,
    /// What differed (`Image`, `Commit`, `Processor`); empty when nothing did.
    pub drift: Vec<String>,
}

/// The drift rows of `run`: one per processor that finished an attempt.
pub fn drift_rows(run: &PipelineRun, children: &Children) -> Vec<DriftRow> {
    let status = run.status.clone().unwrap_or_default();
    let mut rows = Vec::new();
    for pc in &children.phase_completions {
        let Some(s) = &pc.status else { continue };
        for r in &s.completed {
            let (pinned_image, pinned_commit) = run.spec.release.for_processor(&r.processor);
            let mut drift: Vec<String> = status
                .drift
                .iter()
                .filter(|d| d.processor == r.processor)
                .map(|d| format!("{:?}", d.field))
                .collect();
            drift.sort();
            drift.dedup();
            rows.push(DriftRow {
                run: run.name_any(),
                date: run.spec.date.clone(),
                processor: r.processor.clone(),
                attempt: r.attempt,
                pinned_commit: pinned_commit.to_owned(),
                ran_commit: r.commit.clone(),
                pinned_image: pinned_image.to_owned(),
                ran_image: r.image.clone(),
                answered_as: r.reported_processor.clone(),
                drift,
            });
        }
    }
    rows
}

fn short_digest(image: &str) -> String {
    match image.split_once("@sha256:") {
        Some((_, d)) => format!("sha256:{}", d.chars().take(12).collect::<String>()),
        None => image.to_owned(),
    }
}

fn short_commit(c: &str) -> String {
    c.chars().take(10).collect()
}

/// The drift table.
pub fn render_drift(rows: &[DriftRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.run.clone(),
                r.processor.clone(),
                short_commit(&r.pinned_commit),
                r.ran_commit
                    .as_deref()
                    .map(short_commit)
                    .unwrap_or_else(|| "-".into()),
                short_digest(&r.pinned_image),
                r.ran_image
                    .as_deref()
                    .map(short_digest)
                    .unwrap_or_else(|| "-".into()),
                r.answered_as.clone().unwrap_or_else(|| "-".into()),
                if r.drift.is_empty() {
                    "-".to_owned()
                } else {
                    r.drift.join(",")
                },
            ]
        })
        .collect();
    table(
        &[
            "RUN",
            "PROCESSOR",
            "PINNED COMMIT",
            "RAN COMMIT",
            "PINNED IMAGE",
            "RAN IMAGE",
            "ANSWERED AS",
            "DRIFT",
        ],
        &cells,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use tipoff_crds::{
        DriftField, Mode, PhaseCompletion, PhaseCompletionSpec, PhaseCompletionStatus,
        PhaseSummary, PipelineRunSpec, PipelineRunStatus, Release, RunState,
    };

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_list_names_the_backfill_that_created_a_run_only_when_one_did() {
        let now = ts("2026-01-15T12:00:00Z");
        let plain = render_list(&[run()], now);
        assert!(!plain.contains("CREATED BY"), "{plain}");
        let mut by_backfill = run();
        by_backfill.metadata.name = Some("jan-2026-01-14".into());
        by_backfill.metadata.labels = Some(
            [(
                tipoff_crds::pipeline_backfill::LABEL_BACKFILL.to_owned(),
                "jan".to_owned(),
            )]
            .into(),
        );
        let list = render_list(&[run(), by_backfill], now);
        let lines: Vec<&str> = list.lines().collect();
        assert!(lines[0].contains("CREATED BY"), "{list}");
        assert!(!lines[1].contains("backfill/"), "{list}");
        assert!(lines[2].contains("backfill/jan"), "{list}");
    }

    fn run() -> PipelineRun {
        let mut run = PipelineRun::new(
            "nba-2026-01-14",
            PipelineRunSpec::new(
                "2026-01-14",
                Mode::Production,
                Release::pinned("ghcr.io/tipoff/processor@sha256:aaaa", "c4f8f339"),
            ),
        );
        run.status = Some(PipelineRunStatus {
            state: Some(RunState::Blocked),
            progress: Some("1/3".into()),
            phases: vec![
                PhaseSummary {
                    phase: 1,
                    name: "scrape".into(),
                    state: PhaseState::Blocked,
                    done: 1,
                    expected: 3,
                    start_time: Some(Time(ts("2026-01-15T12:00:00Z"))),
                    completion_time: None,
                },
                PhaseSummary {
                    phase: 2,
                    name: "raw".into(),
                    state: PhaseState::Pending,
                    done: 0,
                    expected: 1,
                    start_time: None,
                    completion_time: None,
                },
            ],
            drift: vec![DriftFinding {
                processor: "scrape-schedule".into(),
                attempt: 1,
                field: DriftField::Commit,
                pinned: "c4f8f339".into(),
                observed: "68d1e707".into(),
            }],
            ..PipelineRunStatus::default()
        });
        run
    }

    fn record(processor: &str, attempt: u32) -> ProcessorRecord {
        ProcessorRecord {
            processor: processor.into(),
            attempt,
            job: format!("nba-2026-01-14-1-{processor}-a{attempt}"),
            start_time: None,
            finish_time: None,
            reported_processor: None,
            commit: Some("c4f8f339".into()),
            image: None,
            rows: BTreeMap::new(),
            gates: vec![],
            reason: None,
            message: None,
            exit_code: None,
            rerun: None,
        }
    }

    fn children() -> Children {
        let mut boxscores = record("scrape-boxscores", 1);
        boxscores.gates = vec![GateOutcome {
            name: "boxscore-coverage".into(),
            passed: false,
            policy: GatePolicy::Blocking,
            observed: Some(6),
            expected: Some(7),
            missing: vec!["POR@UTA".into()],
        }];
        let mut failed = record("scrape-injury-report", 1);
        failed.reason = Some("ExitTransient".into());
        failed.exit_code = Some(75);
        failed.message = Some("upstream stayed down".into());
        let pc = PhaseCompletion {
            metadata: ObjectMeta::default(),
            spec: PhaseCompletionSpec {
                run: "nba-2026-01-14".into(),
                date: "2026-01-14".into(),
                phase: 1,
                phase_name: "scrape".into(),
                expected: vec![
                    "scrape-schedule".into(),
                    "scrape-boxscores".into(),
                    "scrape-injury-report".into(),
                ],
            },
            status: Some(PhaseCompletionStatus {
                completed: vec![record("scrape-schedule", 1), boxscores],
                failed: vec![failed],
                ..PhaseCompletionStatus::default()
            }),
        };
        // Attempt 2 of the injury report is live.
        let job = Job {
            metadata: ObjectMeta {
                name: Some("nba-2026-01-14-1-scrape-injury-report-a2".into()),
                labels: Some(BTreeMap::from([
                    (
                        children::LABEL_PROCESSOR.to_owned(),
                        "scrape-injury-report".to_owned(),
                    ),
                    (children::LABEL_ATTEMPT.to_owned(), "2".to_owned()),
                ])),
                ..ObjectMeta::default()
            },
            status: Some(JobStatus {
                conditions: Some(vec![JobCondition {
                    type_: "Suspended".into(),
                    status: "False".into(),
                    ..JobCondition::default()
                }]),
                ..JobStatus::default()
            }),
            ..Job::default()
        };
        Children {
            phase_completions: vec![pc],
            jobs: vec![job],
            pods: vec![],
        }
    }

    #[test]
    fn the_view_joins_the_ledger_and_the_jobs() {
        let v = build(&run(), &children(), ts("2026-01-15T12:00:10Z"));
        assert_eq!(v.state, "Blocked");
        // A blocked phase has no end to time it by.
        assert_eq!(v.phases[0].seconds, None);
        let states: Vec<(&str, &str)> = v.phases[0]
            .processors
            .iter()
            .map(|p| (p.name.as_str(), p.state.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                ("scrape-schedule", "Succeeded"),
                ("scrape-boxscores", "Held"),
                ("scrape-injury-report", "Running"),
            ]
        );
        let injury = &v.phases[0].processors[2];
        assert_eq!(injury.attempts.len(), 2);
        assert_eq!(injury.attempts[0].reason.as_deref(), Some("ExitTransient"));
        assert_eq!(injury.attempts[1].state, "Running");
        assert_eq!(v.missing.len(), 1);
        assert_eq!(v.missing[0].missing, ["POR@UTA"]);

        let tree = render_tree(&v);
        for want in [
            "nba-2026-01-14  2026-01-14  Production  Blocked  1/3 processors succeeded",
            "├─ phase 1 scrape",
            "│  ├─ scrape-boxscores       Held",
            "gates: boxscore-coverage FAILED 6/7",
            "a1 Failed ExitTransient exit 75, a2 Running",
            "a1: upstream stayed down",
            "└─ phase 2 raw",
            "(not reached)",
            "scrape-boxscores boxscore-coverage [Blocking] (6 of 7), missing POR@UTA",
            "scrape-schedule attempt 1: Commit pinned c4f8f339 but ran 68d1e707",
        ] {
            assert!(tree.contains(want), "missing {want:?} in\n{tree}");
        }
    }

    #[test]
    fn drift_rows_compare_what_ran_with_the_pin() {
        let rows = drift_rows(&run(), &children());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].processor, "scrape-schedule");
        assert_eq!(rows[0].drift, ["Commit"]);
        assert!(rows[1].drift.is_empty());
        let table = render_drift(&rows);
        assert!(table.starts_with("RUN"), "{table}");
        assert!(table.lines().nth(1).unwrap().trim_end().ends_with("Commit"));
    }
}
