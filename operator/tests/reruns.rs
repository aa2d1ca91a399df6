//! Table tests for `spec.reruns`: a rerun is one new attempt of one processor (optionally for
//! one game), planned once, in order per processor, recorded in status and remembered after
//! its Job is gone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

mod support;

use pretty_assertions::assert_eq;
use tipoff_crds::children::LABEL_RERUN;
use tipoff_crds::{Mode, Rerun, RerunState, RunState};
use tipoff_operator::jobs::{JobSettings, build_job};
use tipoff_operator::planner::{self, EventReason};

use support::{Cluster, IMAGE, label, run};

fn rerun(name: &str, processor: &str, game: Option<&str>) -> Rerun {
    Rerun {
        name: name.into(),
        processor: processor.into(),
        game: game.map(Into::into),
        reason: "the upstream published the missing box score (ops)".into(),
    }
}

fn rerun_status(c: &Cluster, name: &str) -> tipoff_crds::RerunStatus {
    c.run
        .status
        .as_ref()
        .unwrap()
        .reruns
        .iter()
        .find(|r| r.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("no status for rerun {name}"))
}

fn state(c: &Cluster) -> RunState {
    c.run.status.as_ref().and_then(|s| s.state).unwrap()
}

fn env(job: &k8s_openapi::api::batch::v1::Job, name: &str) -> Option<String> {
    job.spec.as_ref()?.template.spec.as_ref()?.containers[0]
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

fn planned_names(plan: &planner::Plan) -> Vec<String> {
    plan.jobs.iter().map(|j| j.name.clone()).collect()
}

#[test]
fn a_rerun_is_one_new_attempt_with_its_game_planned_once() {
    let mut c = Cluster::new(run("nba-2026-01-29", Mode::Production));
    c.run_all_succeeding();
    assert_eq!(state(&c), RunState::Succeeded);

    c.run.spec.reruns = vec![rerun("r1", "boxscore-scraper", Some("BOS@LAL"))];
    let plan = c.step();
    assert_eq!(
        planned_names(&plan),
        ["nba-2026-01-29-1-boxscore-scraper-rr1"]
    );
    let intent = &plan.jobs[0];
    assert_eq!(intent.attempt, 2);
    assert_eq!(intent.rerun.as_deref(), Some("r1"));
    let job = build_job(&c.run, intent, &JobSettings::default());
    assert_eq!(label(&job, LABEL_RERUN), Some("r1"));
    assert_eq!(label(&job, "tipoff.dev/attempt"), Some("2"));
    assert_eq!(env(&job, "TIPOFF_GAME").as_deref(), Some("BOS@LAL"));
    assert_eq!(env(&job, "TIPOFF_RERUN").as_deref(), Some("r1"));

    // Planning again (the Job is observed now) creates nothing; the rerun is running and
    // the run is running again.
    let plan = c.settle();
    assert!(plan.jobs.is_empty(), "{:?}", planned_names(&plan));
    let r = rerun_status(&c, "r1");
    assert_eq!(r.state, RerunState::Running);
    assert_eq!(r.attempt, Some(2));
    assert_eq!(
        r.job.as_deref(),
        Some("nba-2026-01-29-1-boxscore-scraper-rr1")
    );
    assert_eq!(state(&c), RunState::Running);
    let pcs = &c.observed.phase_completions;
    let p1 = pcs.iter().find(|p| p.spec.phase == 1).unwrap();
    let running = &p1.status.as_ref().unwrap().running;
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].rerun.as_deref(), Some("r1"));

    c.succeed("boxscore-scraper");
    c.advance(5);
    let plan = c.settle();
    assert!(plan.jobs.is_empty());
    assert_eq!(rerun_status(&c, "r1").state, RerunState::Succeeded);
    assert_eq!(state(&c), RunState::Succeeded);
    let p1 = c
        .observed
        .phase_completions
        .iter()
        .find(|p| p.spec.phase == 1)
        .unwrap();
    let record = p1
        .status
        .as_ref()
        .unwrap()
        .completed
        .iter()
        .find(|r| r.processor == "boxscore-scraper")
        .unwrap();
    assert_eq!((record.attempt, record.rerun.as_deref()), (2, Some("r1")));
}

#[test]
fn a_rerun_emits_one_event_naming_its_reason() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run_all_succeeding();
    c.run.spec.reruns = vec![rerun("r1", "raw-boxscores", None)];
    let first = c.step();
    let second = c.step();
    let events: Vec<_> = first
        .events
        .iter()
        .chain(&second.events)
        .filter(|e| e.reason == EventReason::RerunStarted)
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(
        events[0]
            .message
            .contains("rerun r1 of raw-boxscores started as attempt 2: the upstream published"),
        "{}",
        events[0].message
    );
}

#[test]
fn a_rerun_waits_for_the_live_attempt_and_reruns_of_one_processor_go_in_order() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    // schedule-scraper is live: the rerun waits behind it.
    c.run.spec.reruns = vec![
        rerun("r1", "schedule-scraper", None),
        rerun("r2", "schedule-scraper", None),
    ];
    let plan = c.settle();
    assert!(plan.jobs.is_empty());
    let r1 = rerun_status(&c, "r1");
    assert_eq!(r1.state, RerunState::Pending);
    assert_eq!(r1.message.as_deref(), Some("waiting for attempt 1 to end"));

    c.succeed("schedule-scraper");
    let plan = c.step();
    // r1, not r2 (its dependants start too: attempt 1 was accepted).
    let names = planned_names(&plan);
    assert!(
        names.contains(&"r-1-schedule-scraper-rr1".to_owned()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with("-rr2")), "{names:?}");
    c.settle();
    c.succeed("schedule-scraper");
    let plan = c.step();
    assert!(
        planned_names(&plan).contains(&"r-1-schedule-scraper-rr2".to_owned()),
        "{:?}",
        planned_names(&plan)
    );
    c.settle();
    assert_eq!(rerun_status(&c, "r1").state, RerunState::Superseded);
    assert_eq!(rerun_status(&c, "r2").state, RerunState::Running);
    assert_eq!(rerun_status(&c, "r2").attempt, Some(3));
}

#[test]
fn a_failed_rerun_is_not_retried() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run_all_succeeding();
    c.run.spec.reruns = vec![rerun("r1", "boxscore-scraper", None)];
    c.settle();
    c.fail("boxscore-scraper", 75);
    c.advance(3600);
    let plan = c.settle();
    assert!(plan.jobs.is_empty(), "{:?}", planned_names(&plan));
    let r = rerun_status(&c, "r1");
    assert_eq!(r.state, RerunState::Failed);
    assert!(r.message.unwrap().starts_with("ExitTransient"));
    // Its phase failed. (The run keeps the planner's rule for a run whose last phase had
    // succeeded: it stays Succeeded; the phase and the rerun say what failed.)
    let p1 = c
        .run
        .status
        .as_ref()
        .unwrap()
        .phases
        .iter()
        .find(|p| p.phase == 1)
        .unwrap();
    assert_eq!(p1.state, tipoff_crds::PhaseState::Failed);

    // Another rerun tries again.
    c.run
        .spec
        .reruns
        .push(rerun("r2", "boxscore-scraper", None));
    let plan = c.step();
    assert_eq!(planned_names(&plan), ["r-1-boxscore-scraper-rr2"]);
}

#[test]
fn a_rerun_lifts_a_processor_held_by_a_failed_gate() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    let mut empty = c.result_for("schedule-scraper");
    for check in &mut empty.checks {
        check.passed = false;
        check.missing = vec!["BOS@LAL".into()];
    }
    c.succeed_with("schedule-scraper", &empty, IMAGE);
    c.settle();
    assert_eq!(state(&c), RunState::Blocked);
    assert!(c.live_processors().is_empty());

    c.run.spec.reruns = vec![rerun("r1", "schedule-scraper", Some("BOS@LAL"))];
    c.settle();
    c.succeed("schedule-scraper");
    c.settle();
    // The schedule is accepted now: its dependants started.
    assert_eq!(c.live_processors(), ["boxscore-scraper", "odds-scraper"]);
    assert_eq!(rerun_status(&c, "r1").state, RerunState::Succeeded);
}

#[test]
fn reruns_are_remembered_after_their_jobs_are_gone() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run_all_succeeding();
    c.run.spec.reruns = vec![rerun("r1", "raw-odds", None), rerun("r2", "raw-odds", None)];
    c.settle();
    c.succeed("raw-odds");
    c.settle();
    c.succeed("raw-odds");
    c.settle();
    // Every Job's TTL passes.
    for name in c.job_names() {
        c.delete_job(&name);
    }
    let plan = c.settle();
    assert!(plan.jobs.is_empty(), "{:?}", planned_names(&plan));
    assert_eq!(rerun_status(&c, "r1").state, RerunState::Superseded);
    assert_eq!(rerun_status(&c, "r2").state, RerunState::Succeeded);
    assert_eq!(state(&c), RunState::Succeeded);
}

#[test]
fn a_rerun_of_an_unknown_processor_fails_alone_and_does_not_block_the_run() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run.spec.reruns = vec![rerun("r1", "no-such-processor", None)];
    let first = c.step();
    let rejected: Vec<_> = first
        .events
        .iter()
        .filter(|e| e.reason == EventReason::RerunRejected)
        .collect();
    assert_eq!(rejected.len(), 1, "{:#?}", first.events);
    assert!(
        !first
            .events
            .iter()
            .any(|e| e.reason == EventReason::RerunStarted)
    );
    c.run_all_succeeding();
    assert_eq!(state(&c), RunState::Succeeded);
    let r = rerun_status(&c, "r1");
    assert_eq!(r.state, RerunState::Failed);
    assert_eq!(
        r.message.as_deref(),
        Some("unknown processor no-such-processor: it is not in the catalog")
    );
    assert!(!c.job_names().iter().any(|n| n.ends_with("-rr1")));
}
