//! Reruns: `spec.reruns` asks for one processor to run again (optionally for one game) as a
//! new attempt. This module decides which reruns have started, which one is next per
//! processor, and how each went.
//!
//! A rerun has started when a Job labelled with its name exists or the ledger recorded its
//! attempt. Reruns of one processor run one at a time in spec order, so a rerun whose later
//! sibling started has started too (its Job may be gone by TTL and its record replaced in the
//! ledger): nothing needs remembering beyond what the children and the ledger hold.

use std::collections::{BTreeMap, BTreeSet};

use tipoff_crds::{PipelineRun, Rerun, RerunState, RerunStatus};

use super::dependencies::Scope;
use super::observe::{Latest, ProcessorView};
use crate::catalog::Catalog;

/// Reruns that can never run, and why: an unknown processor, or one outside the run's subset.
/// They fail on their own (reruns are append-only, so a typo must not block the whole run).
pub fn invalid(run: &PipelineRun, catalog: &Catalog, scope: &Scope) -> BTreeMap<String, String> {
    run.spec
        .reruns
        .iter()
        .filter_map(|r| {
            let why = if catalog.processor(&r.processor).is_none() {
                format!(
                    "unknown processor {}: it is not in the catalog",
                    r.processor
                )
            } else if !scope.processors().any(|p| p == r.processor) {
                format!("{} is outside the run's subset", r.processor)
            } else {
                return None;
            };
            Some((r.name.clone(), why))
        })
        .collect()
}

/// What is known about a rerun that started: its attempt and Job, when still observed.
pub type Started = Option<(u32, String)>;

/// Every rerun of the spec that has started, by name.
pub fn started(
    run: &PipelineRun,
    views: &BTreeMap<String, ProcessorView>,
) -> BTreeMap<String, Started> {
    let mut out = BTreeMap::new();
    let mut by_processor: BTreeMap<&str, Vec<&Rerun>> = BTreeMap::new();
    for r in &run.spec.reruns {
        by_processor.entry(&r.processor).or_default().push(r);
    }
    for (processor, reruns) in by_processor {
        let seen = views.get(processor).map(|v| &v.reruns);
        let last = reruns
            .iter()
            .rposition(|r| seen.is_some_and(|s| s.contains_key(&r.name)));
        let Some(last) = last else { continue };
        for r in &reruns[..=last] {
            out.insert(r.name.clone(), seen.and_then(|s| s.get(&r.name)).cloned());
        }
    }
    out
}

/// The next rerun to start for each processor whose latest attempt has ended (a rerun never
/// runs beside another attempt of its processor, nor before its first attempt).
pub fn next<'a>(
    run: &'a PipelineRun,
    views: &BTreeMap<String, ProcessorView>,
    started: &BTreeMap<String, Started>,
    invalid: &BTreeMap<String, String>,
) -> BTreeMap<String, &'a Rerun> {
    let mut out: BTreeMap<String, &'a Rerun> = BTreeMap::new();
    let mut first_waiting: BTreeSet<&str> = BTreeSet::new();
    for r in &run.spec.reruns {
        if started.contains_key(&r.name)
            || invalid.contains_key(&r.name)
            || !first_waiting.insert(r.processor.as_str())
        {
            continue;
        }
        let ended = views
            .get(&r.processor)
            .is_some_and(|v| matches!(v.latest, Latest::Succeeded(_) | Latest::Failed(_)));
        if ended {
            out.insert(r.processor.clone(), r);
        }
    }
    out
}

/// How each rerun of the spec stands, in spec order.
pub fn statuses(
    run: &PipelineRun,
    views: &BTreeMap<String, ProcessorView>,
    started: &BTreeMap<String, Started>,
    invalid: &BTreeMap<String, String>,
) -> Vec<RerunStatus> {
    run.spec
        .reruns
        .iter()
        .map(|r| {
            let view = views.get(&r.processor);
            let (state, attempt, job, message) = match started.get(&r.name) {
                None if invalid.contains_key(&r.name) => (
                    RerunState::Failed,
                    None,
                    None,
                    invalid.get(&r.name).cloned(),
                ),
                None => {
                    let why = match view.map(|v| &v.latest) {
                        None | Some(Latest::NotStarted) => {
                            "waiting for the processor's first attempt".to_owned()
                        }
                        Some(
                            Latest::Live { attempt, .. } | Latest::AwaitingResult { attempt, .. },
                        ) => {
                            format!("waiting for attempt {attempt} to end")
                        }
                        Some(_) => "starting".to_owned(),
                    };
                    (RerunState::Pending, None, None, Some(why))
                }
                Some(None) => (
                    RerunState::Superseded,
                    None,
                    None,
                    Some("ran; a later rerun of the processor replaced its outcome".to_owned()),
                ),
                Some(Some((attempt, job))) => {
                    let latest = view.map_or(0, ProcessorView::attempt);
                    let (state, message) = if latest > *attempt {
                        (
                            RerunState::Superseded,
                            Some(format!("attempt {latest} replaced its outcome")),
                        )
                    } else {
                        match view.map(|v| &v.latest) {
                            Some(Latest::Succeeded(_)) => (RerunState::Succeeded, None),
                            Some(Latest::Failed(f)) => (
                                RerunState::Failed,
                                Some(format!(
                                    "{}: {}",
                                    f.reason.as_deref().unwrap_or("Failed"),
                                    f.message.as_deref().unwrap_or_default()
                                )),
                            ),
                            _ => (RerunState::Running, None),
                        }
                    };
                    (state, Some(*attempt), Some(job.clone()), message)
                }
            };
            RerunStatus {
                name: r.name.clone(),
                processor: r.processor.clone(),
                game: r.game.clone(),
                state,
                attempt,
                job,
                message: message.map(|m| super::observe::truncate(&m, 1024).to_owned()),
            }
        })
        .collect()
}
