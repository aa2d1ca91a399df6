//! Planner scenarios written as YAML: the objects as a cluster would return them (a
//! PipelineRun, Jobs, Pods, PhaseCompletions), the time, and what the plan must say. Each
//! `fixtures/planner/*.yaml` replays one legacy incident from the seeds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use tipoff_crds::conditions::find_condition;
use tipoff_crds::{PhaseCompletion, PipelineRun, RunState};
use tipoff_operator::planner::{self, Observed};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Case {
    now: jiff::Timestamp,
    run: PipelineRun,
    #[serde(default)]
    jobs: Vec<Job>,
    #[serde(default)]
    pods: Vec<Pod>,
    #[serde(default)]
    phase_completions: Vec<PhaseCompletion>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Expect {
    create_jobs: Vec<String>,
    state: RunState,
    #[serde(default)]
    requeue_after_seconds: Option<u64>,
    #[serde(default)]
    conditions: Vec<ExpectCondition>,
    #[serde(default)]
    failed: Vec<ExpectFailure>,
    #[serde(default)]
    running: Option<Vec<String>>,
    #[serde(default)]
    phase_completions: BTreeMap<String, ExpectPhase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExpectCondition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExpectFailure {
    processor: String,
    attempt: u32,
    reason: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExpectPhase {
    next_phase_triggered: bool,
    changed: bool,
    #[serde(default)]
    done: Option<u32>,
}

fn check(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let case: Case =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let observed = Observed {
        phase_completions: case.phase_completions,
        jobs: case.jobs,
        pods: case.pods,
        older_runs_for_date: vec![],
    };
    let plan = planner::plan(&case.run, &observed, &support::test_catalog(), case.now);
    let at = path.display();

    let mut created: Vec<String> = plan.jobs.iter().map(|j| j.name.clone()).collect();
    created.sort();
    assert_eq!(created, case.expect.create_jobs, "{at}: Jobs to create");
    assert_eq!(
        plan.run_status.state,
        Some(case.expect.state),
        "{at}: state"
    );
    if let Some(secs) = case.expect.requeue_after_seconds {
        assert_eq!(
            plan.requeue_after,
            Some(std::time::Duration::from_secs(secs)),
            "{at}: requeue"
        );
    }
    for want in &case.expect.conditions {
        let got = find_condition(&plan.run_status.conditions, &want.type_)
            .unwrap_or_else(|| panic!("{at}: no {} condition", want.type_));
        assert_eq!(
            format!("{:?}", got.status),
            want.status,
            "{at}: {} status",
            want.type_
        );
        if let Some(reason) = &want.reason {
            assert_eq!(&got.reason, reason, "{at}: {} reason", want.type_);
        }
        if let Some(message) = &want.message {
            assert!(
                got.message.contains(message.as_str()),
                "{at}: {} message {:?}",
                want.type_,
                got.message
            );
        }
    }
    let statuses: Vec<_> = plan
        .phase_completion_statuses
        .iter()
        .map(|w| &w.status)
        .collect();
    for want in &case.expect.failed {
        let found = statuses.iter().flat_map(|s| &s.failed).any(|r| {
            r.processor == want.processor
                && r.attempt == want.attempt
                && r.reason.as_deref() == Some(&want.reason)
        });
        assert!(
            found,
            "{at}: no failed record {} attempt {} {}: {statuses:#?}",
            want.processor, want.attempt, want.reason
        );
    }
    if let Some(running) = &case.expect.running {
        let all: Vec<&String> = statuses
            .iter()
            .flat_map(|s| s.running.iter().map(|r| &r.processor))
            .collect();
        assert_eq!(all, running.iter().collect::<Vec<_>>(), "{at}: running");
    }
    for (name, want) in &case.expect.phase_completions {
        let got = plan
            .phase_completion_statuses
            .iter()
            .find(|w| &w.name == name)
            .unwrap();
        assert_eq!(
            got.status.next_phase_triggered, want.next_phase_triggered,
            "{at}: {name}"
        );
        assert_eq!(got.changed, want.changed, "{at}: {name} changed");
        if let Some(done) = want.done {
            assert_eq!(got.status.done, done, "{at}: {name} done");
        }
    }
}

#[test]
fn every_planner_fixture_plans_as_expected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/planner");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 4);
    for file in files {
        check(&file);
    }
}
