//! Table tests for the planner's rules, one small scenario each, on the six-phase test
//! catalog (`config/test/pipeline.yaml`) and the in-memory cluster in `support`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

mod support;

use pretty_assertions::assert_eq;
use tipoff_crds::conditions::find_condition;
use tipoff_crds::{
    ConditionStatus, DriftField, Mode, OverrideType, PhaseState, RetryPolicy, RunState, Subset,
};
use tipoff_operator::catalog::Catalog;
use tipoff_operator::planner::{self, EventReason, Observed, PlayerSource};

use support::{COMMIT, Cluster, IMAGE, OTHER_IMAGE_ID, override_, run};

const PHASE_4_INPUTS: [&str; 4] = [
    "player-composite-factors",
    "player-daily-cache",
    "player-shot-zone-analysis",
    "team-defense-zone-analysis",
];

fn planned(plan: &planner::Plan) -> Vec<String> {
    let mut names: Vec<String> = plan.jobs.iter().map(|j| j.processor.clone()).collect();
    names.sort();
    names
}

fn condition(c: &Cluster, type_: &str) -> tipoff_crds::Condition {
    let status = c.run.status.as_ref().expect("run status written");
    find_condition(&status.conditions, type_)
        .cloned()
        .unwrap_or_else(|| panic!("no {type_} condition"))
}

fn state(c: &Cluster) -> RunState {
    c.run.status.as_ref().and_then(|s| s.state).unwrap()
}

fn phase_state(c: &Cluster, phase: u8) -> PhaseState {
    c.run
        .status
        .as_ref()
        .unwrap()
        .phases
        .iter()
        .find(|p| p.phase == phase)
        .unwrap()
        .state
}

/// Drives phases 1 and 2 to success, and phase 3 except the processors in `except`.
fn through_phase_3(c: &mut Cluster, except: &[&str]) {
    c.settle();
    for phase in [1u8, 2, 3] {
        for _ in 0..5 {
            let live: Vec<String> = c
                .live_processors()
                .into_iter()
                .filter(|p| c.catalog.processor(p).unwrap().phase == phase)
                .filter(|p| !except.contains(&p.as_str()))
                .collect();
            if live.is_empty() {
                break;
            }
            for p in live {
                c.succeed(&p);
            }
            c.advance(5);
            c.settle();
        }
    }
}

#[test]
fn a_new_run_starts_the_first_phase_roots_and_its_phase_completion() {
    let c = Cluster::new(run("nba-2026-01-29", Mode::Production));
    let plan = c.plan();
    assert_eq!(planned(&plan), ["schedule-scraper"]);
    let job = &plan.jobs[0];
    assert_eq!(job.name, "nba-2026-01-29-1-schedule-scraper-a1");
    assert_eq!(
        (job.attempt, job.image.as_str(), job.commit.as_str()),
        (1, IMAGE, COMMIT)
    );
    let labels: Vec<(&str, &str)> = job
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("app.kubernetes.io/component", "processor"),
            ("app.kubernetes.io/instance", "nba-2026-01-29"),
            ("app.kubernetes.io/managed-by", "tipoff"),
            ("app.kubernetes.io/name", "tipoff"),
            ("app.kubernetes.io/part-of", "tipoff"),
            ("tipoff.dev/attempt", "1"),
            ("tipoff.dev/commit", COMMIT),
            ("tipoff.dev/date", "2026-01-29"),
            ("tipoff.dev/phase", "1"),
            ("tipoff.dev/processor", "schedule-scraper"),
            ("tipoff.dev/run", "nba-2026-01-29"),
        ]
    );
    assert_eq!(plan.phase_completions.len(), 1);
    assert_eq!(
        plan.phase_completions[0].labels["tipoff.dev/date"],
        "2026-01-29"
    );
    assert_eq!(plan.phase_completions[0].name, "nba-2026-01-29-p1");
    assert_eq!(
        plan.phase_completions[0].spec.expected,
        ["schedule-scraper", "boxscore-scraper", "odds-scraper"]
    );
    // No Job observed yet: the run is Pending, not Running.
    assert_eq!(plan.run_status.state, Some(RunState::Pending));
    assert!(
        plan.events
            .iter()
            .any(|e| e.reason == EventReason::RunStateChanged)
    );
}

#[test]
fn applying_a_plan_and_planning_again_creates_nothing_and_reports_running() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.step();
    let again = c.step();
    assert!(again.jobs.is_empty() && again.phase_completions.is_empty());
    assert_eq!(state(&c), RunState::Running);
    let pc = c.observed.phase_completions[0].status.clone().unwrap();
    let running: Vec<(&str, u32)> = pc
        .running
        .iter()
        .map(|r| (r.processor.as_str(), r.attempt))
        .collect();
    assert_eq!(running, [("schedule-scraper", 1)]);
    let quiet = c.step();
    assert!(
        !quiet.run_status_changed && quiet.events.is_empty(),
        "{quiet:#?}"
    );
}

#[test]
fn processors_wait_for_their_dependencies_within_a_phase() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    c.succeed("schedule-scraper");
    let plan = c.step();
    assert_eq!(planned(&plan), ["boxscore-scraper", "odds-scraper"]);
}

#[test]
fn the_next_phase_starts_only_after_every_required_processor_succeeded() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    c.succeed("schedule-scraper");
    c.settle();
    c.succeed("boxscore-scraper");
    let plan = c.step();
    assert!(
        plan.jobs.is_empty(),
        "odds-scraper still running: phase 1 not finished"
    );
    // odds-scraper is optional: its permanent failure does not hold phase 1.
    c.fail("odds-scraper", tipoff_crds::EXIT_PERMANENT);
    let plan = c.step();
    assert_eq!(planned(&plan), ["raw-schedule"]);
    assert_eq!(plan.run_status.phases[0].state, PhaseState::Succeeded);
    c.settle();
    // raw-odds depends on the failed odds-scraper: it cannot start, but it is optional.
    c.succeed("raw-schedule");
    c.settle();
    c.succeed("raw-boxscores");
    let plan = c.settle();
    assert_eq!(phase_state(&c, 2), PhaseState::Succeeded);
    assert!(
        c.live_processors()
            .iter()
            .all(|p| c.catalog.processor(p).unwrap().phase == 3)
    );
    assert_eq!(c.live_processors().len(), 4, "{plan:#?}");
}

#[test]
fn next_phase_triggered_is_true_only_once_the_next_phase_jobs_are_observed() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    c.succeed("schedule-scraper");
    c.settle();
    c.succeed("boxscore-scraper");
    c.succeed("odds-scraper");
    // The plan that creates phase 2's first Job must not claim phase 2 was triggered (seed 004, `_triggered`).
    let plan = c.plan();
    assert_eq!(planned(&plan), ["raw-odds", "raw-schedule"]);
    let p1 = plan
        .phase_completion_statuses
        .iter()
        .find(|w| w.name == "r-p1")
        .unwrap();
    assert!(!p1.status.next_phase_triggered);
    // Creating the Jobs failed: nothing was applied. Still false.
    let retried = c.plan();
    assert!(
        !retried.phase_completion_statuses[0]
            .status
            .next_phase_triggered
    );
    c.apply(&plan);
    let after = c.step();
    let p1 = after
        .phase_completion_statuses
        .iter()
        .find(|w| w.name == "r-p1")
        .unwrap();
    assert!(p1.status.next_phase_triggered);
}

#[test]
fn a_production_run_where_everything_succeeds_ends_succeeded() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run_all_succeeding();
    let status = c.run.status.clone().unwrap();
    assert_eq!(status.state, Some(RunState::Succeeded));
    assert_eq!(status.progress.as_deref(), Some("19/19"));
    assert!(
        status
            .phases
            .iter()
            .all(|p| p.state == PhaseState::Succeeded)
    );
    assert!(status.completion_time.is_some());
    assert!(condition(&c, "Succeeded").is_true());
    assert_eq!(condition(&c, "CodeDrift").status, ConditionStatus::False);
    let summary = status.summary.unwrap();
    assert_eq!(
        summary.rows_written["nba_predictions.player_prop_predictions"], 400,
        "4 indexed pods"
    );
    assert_eq!(summary.retries, 0);
    // Every phase except the last saw its next phase triggered.
    for pc in &c.observed.phase_completions {
        let s = pc.status.as_ref().unwrap();
        assert_eq!(
            s.next_phase_triggered,
            pc.spec.phase < 6,
            "phase {}",
            pc.spec.phase
        );
        assert_eq!(s.state, Some(PhaseState::Succeeded));
    }
}

#[test]
fn the_feature_store_waits_for_its_four_inputs() {
    let mut c = Cluster::new(run("r", Mode::Production));
    through_phase_3(&mut c, &[]);
    assert_eq!(c.live_processors(), PHASE_4_INPUTS);
    for (i, p) in PHASE_4_INPUTS.iter().enumerate() {
        c.succeed(p);
        let plan = c.step();
        let expected: &[&str] = if i == 3 { &["ml-feature-store"] } else { &[] };
        assert_eq!(planned(&plan), expected, "after {p}");
    }
}

#[test]
fn backfill_takes_players_from_who_played() {
    // In Backfill the upcoming context is optional and the feature store reads
    // player-game-summary instead, so its failure does not stop the feature store.
    let mut c = Cluster::new(run("r", Mode::Backfill));
    c.run.spec.retry = Some(RetryPolicy {
        max_attempts: Some(1),
        ..Default::default()
    });
    through_phase_3(&mut c, &["upcoming-player-game-context"]);
    c.fail("upcoming-player-game-context", tipoff_crds::EXIT_PERMANENT);
    c.settle();
    assert_eq!(phase_state(&c, 3), PhaseState::Succeeded);
    for p in PHASE_4_INPUTS {
        c.succeed(p);
    }
    let plan = c.step();
    assert_eq!(planned(&plan), ["ml-feature-store"]);
    assert_eq!(plan.jobs[0].flags.player_source, PlayerSource::WhoPlayed);

    // The same failure in Production fails phase 3 and the run.
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run.spec.retry = Some(RetryPolicy {
        max_attempts: Some(1),
        ..Default::default()
    });
    through_phase_3(&mut c, &["upcoming-player-game-context"]);
    c.fail("upcoming-player-game-context", tipoff_crds::EXIT_PERMANENT);
    c.settle();
    assert_eq!(phase_state(&c, 3), PhaseState::Failed);
    assert_eq!(state(&c), RunState::Failed);
    assert!(
        condition(&c, "Succeeded")
            .message
            .contains("upcoming-player-game-context")
    );
}

#[test]
fn same_day_turns_the_gap_checks_off_and_tells_the_processor() {
    let mut c = Cluster::new(run("r", Mode::SameDay));
    through_phase_3(&mut c, &[]);
    let mut failing = c.result_for("player-daily-cache");
    failing.checks.retain(|k| k.name != "history-gap"); // not run in SameDay
    c.succeed_with("player-daily-cache", &failing, IMAGE);
    c.settle();
    let s = c
        .observed
        .phase_completions
        .iter()
        .find(|p| p.spec.phase == 4)
        .unwrap();
    let record = &s.status.as_ref().unwrap().completed[0];
    assert_eq!(record.processor, "player-daily-cache");
    let gap = record
        .gates
        .iter()
        .find(|g| g.name == "history-gap")
        .unwrap();
    assert_eq!(gap.policy, tipoff_crds::GatePolicy::Off);
    assert_eq!(condition(&c, "GatesPassed").status, ConditionStatus::True);
    for p in [
        "player-composite-factors",
        "player-shot-zone-analysis",
        "team-defense-zone-analysis",
    ] {
        c.succeed(p);
    }
    let plan = c.step();
    let store = plan
        .jobs
        .iter()
        .find(|j| j.processor == "ml-feature-store")
        .unwrap();
    assert_eq!(store.flags.disabled_checks, ["history-gap"]);
    assert_eq!(store.flags.player_source, PlayerSource::Expected);
}

#[test]
fn a_failed_blocking_gate_holds_the_run_and_names_the_missing_entities() {
    let mut c = Cluster::new(run("r", Mode::Production));
    through_phase_3(&mut c, &[]);
    let mut low = c.result_for("player-daily-cache");
    let check = low
        .checks
        .iter_mut()
        .find(|k| k.name == "player-coverage")
        .unwrap();
    check.passed = false;
    check.observed = Some(44);
    check.expected = Some(172);
    check.missing = vec!["LAL@BOS".into()];
    c.succeed_with("player-daily-cache", &low, IMAGE);
    for p in [
        "player-composite-factors",
        "player-shot-zone-analysis",
        "team-defense-zone-analysis",
    ] {
        c.succeed(p);
    }
    let plan = c.settle();
    assert!(
        c.live_processors().is_empty(),
        "the feature store must not start"
    );
    assert_eq!(state(&c), RunState::Blocked);
    let gates = condition(&c, "GatesPassed");
    assert_eq!(gates.status, ConditionStatus::False);
    assert!(
        gates
            .message
            .contains("player-coverage failed (44 of 172), missing LAL@BOS"),
        "{}",
        gates.message
    );
    assert_eq!(condition(&c, "Blocked").reason, "GateFailed");
    let _ = plan;

    // An audited RelaxGate lets it through, recorded as a condition and an Event.
    c.run.spec.overrides = vec![override_(
        OverrideType::RelaxGate,
        Some("player-daily-cache"),
        Some("player-coverage"),
    )];
    let plan = c.step();
    assert_eq!(planned(&plan), ["ml-feature-store"]);
    assert!(
        plan.events
            .iter()
            .any(|e| e.reason == EventReason::OverrideApplied)
    );
    let applied = condition(&c, "OverridesApplied");
    assert!(applied.is_true());
    assert!(
        applied.message.contains("ticket 170"),
        "{}",
        applied.message
    );
}

#[test]
fn same_day_without_skip_dependency_check_is_blocked_and_with_it_proceeds() {
    // team-defense-zone-analysis cannot succeed before games are played (seed 002); it is
    // optional in SameDay, but the feature store depends on it.
    let mut c = Cluster::new(run("r", Mode::SameDay));
    c.run.spec.retry = Some(RetryPolicy {
        max_attempts: Some(1),
        ..Default::default()
    });
    through_phase_3(&mut c, &["player-game-summary"]);
    c.fail("player-game-summary", tipoff_crds::EXIT_PERMANENT); // optional in SameDay
    c.settle();
    for p in [
        "player-composite-factors",
        "player-shot-zone-analysis",
        "player-daily-cache",
    ] {
        c.succeed(p);
    }
    c.fail("team-defense-zone-analysis", tipoff_crds::EXIT_PERMANENT);
    let plan = c.settle();
    assert!(plan.jobs.is_empty());
    assert_eq!(state(&c), RunState::Blocked);
    let blocked = condition(&c, "Blocked");
    assert_eq!(blocked.reason, "DependencyFailed");
    assert!(
        blocked
            .message
            .contains("ml-feature-store cannot start (team-defense-zone-analysis failed"),
        "{}",
        blocked.message
    );

    c.run.spec.overrides = vec![override_(
        OverrideType::SkipDependencyCheck,
        Some("ml-feature-store"),
        None,
    )];
    let plan = c.step();
    assert_eq!(planned(&plan), ["ml-feature-store"]);
    assert!(plan.jobs[0].flags.skip_dependency_check);
    assert!(
        condition(&c, "OverridesApplied")
            .message
            .contains("ml-feature-store started although team-defense-zone-analysis failed")
    );
    c.settle();
    c.succeed("ml-feature-store");
    c.settle();
    assert_eq!(phase_state(&c, 4), PhaseState::Succeeded);
    assert_eq!(c.live_processors(), ["player-prop-predictions"]);
    // The audit trail outlives the decision: after the feature store ran, the condition still
    // says the override let it start.
    let applied = condition(&c, "OverridesApplied");
    assert_eq!(applied.status, tipoff_crds::ConditionStatus::True);
    assert!(
        applied
            .message
            .contains("ml-feature-store started although team-defense-zone-analysis failed"),
        "{}",
        applied.message
    );
}

#[test]
fn failed_attempts_are_retried_with_exponential_backoff_then_fail_the_run() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    c.fail("schedule-scraper", tipoff_crds::EXIT_TRANSIENT);
    let plan = c.step();
    assert!(plan.jobs.is_empty(), "not before the backoff");
    assert_eq!(plan.requeue_after, Some(std::time::Duration::from_secs(30)));
    assert!(
        plan.events
            .iter()
            .any(|e| e.reason == EventReason::AttemptFailed)
    );
    assert_eq!(
        state(&c),
        RunState::Running,
        "waiting for a retry is still running"
    );
    c.advance(29);
    assert!(c.step().jobs.is_empty());
    c.advance(1);
    let plan = c.step();
    assert_eq!(plan.jobs[0].name, "r-1-schedule-scraper-a2");
    c.settle();
    c.fail("schedule-scraper", 1);
    assert_eq!(
        c.step().requeue_after,
        Some(std::time::Duration::from_secs(60))
    );
    c.advance(60);
    assert_eq!(c.step().jobs[0].attempt, 3);
    c.settle();
    c.fail("schedule-scraper", 137);
    let plan = c.settle();
    assert!(plan.jobs.is_empty());
    assert_eq!(state(&c), RunState::Failed);
    let failed = condition(&c, "Succeeded");
    assert_eq!(failed.reason, "ProcessorFailed");
    assert!(
        failed
            .message
            .contains("schedule-scraper failed: ExitTransient on attempt 3 of 3"),
        "{}",
        failed.message
    );
    assert_eq!(
        c.run
            .status
            .as_ref()
            .unwrap()
            .summary
            .as_ref()
            .unwrap()
            .retries,
        2
    );
    let pc = c.observed.phase_completions[0].status.clone().unwrap();
    assert_eq!(pc.failed[0].attempt, 3);
    assert_eq!(pc.failed[0].exit_code, Some(137));
}

#[test]
fn a_permanent_exit_code_is_not_retried() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    c.fail("schedule-scraper", tipoff_crds::EXIT_PERMANENT);
    let plan = c.settle();
    assert!(plan.jobs.is_empty());
    assert_eq!(state(&c), RunState::Failed);
    let pc = c.observed.phase_completions[0].status.clone().unwrap();
    assert_eq!(pc.failed[0].reason.as_deref(), Some("ExitPermanent"));
}

#[test]
fn a_job_past_its_deadline_is_a_failed_attempt_and_is_deleted() {
    let mut c = Cluster::new(run("r", Mode::Production));
    let first = c.settle();
    let _ = first;
    // schedule-scraper: 600s deadline + 60s grace.
    c.advance(659);
    let plan = c.step();
    assert!(plan.jobs_to_delete.is_empty());
    assert_eq!(plan.requeue_after, Some(std::time::Duration::from_secs(1)));
    c.advance(1);
    let plan = c.step();
    assert_eq!(plan.jobs_to_delete, ["r-1-schedule-scraper-a1"]);
    assert!(condition(&c, "AttemptLost").is_true());
    assert!(
        !condition(&c, "Stalled").is_true(),
        "a lost attempt is retried: not stalled"
    );
    assert!(
        plan.events
            .iter()
            .any(|e| e.reason == EventReason::AttemptLost)
    );
    let pc = c.observed.phase_completions[0].status.clone().unwrap();
    assert!(pc.running.is_empty(), "never running without a live Job");
    assert_eq!(pc.failed[0].reason.as_deref(), Some("DeadlineExceeded"));
    c.advance(30);
    assert_eq!(c.step().jobs[0].attempt, 2);
}

#[test]
fn a_job_kubernetes_failed_for_its_deadline_says_so() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    c.fail_deadline("schedule-scraper");
    c.settle();
    let pc = c.observed.phase_completions[0].status.clone().unwrap();
    assert_eq!(pc.failed[0].reason.as_deref(), Some("DeadlineExceeded"));
}

#[test]
fn a_vanished_job_is_a_failed_attempt_not_running_forever() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    c.vanish("schedule-scraper");
    let plan = c.step();
    let pc = c.observed.phase_completions[0].status.clone().unwrap();
    assert!(pc.running.is_empty());
    assert_eq!(pc.failed[0].reason.as_deref(), Some("JobVanished"));
    assert_eq!(condition(&c, "AttemptLost").reason, "AttemptLost");
    assert_eq!(plan.requeue_after, Some(std::time::Duration::from_secs(30)));
    c.advance(30);
    assert_eq!(c.step().jobs[0].name, "r-1-schedule-scraper-a2");
    c.settle();
    c.succeed("schedule-scraper");
    c.settle();
    assert_eq!(condition(&c, "AttemptLost").status, ConditionStatus::False);
    assert_eq!(condition(&c, "Stalled").status, ConditionStatus::False);
}

#[test]
fn malformed_oversized_and_missing_results_are_processor_failures() {
    let cases: [(&str, String); 4] = [
        (
            "MalformedResult",
            "{\"processor\": \"schedule-scraper\", truncated".to_owned(),
        ),
        (
            "ResultTooLarge",
            format!("{{\"x\":\"{}\"}}", "y".repeat(5000)),
        ),
        ("MissingResult", String::new()),
        (
            "MalformedResult",
            "{\"processor\":\"schedule-scraper\",\"unexpected\":1}".to_owned(),
        ),
    ];
    for (reason, message) in cases {
        let mut c = Cluster::new(run("r", Mode::Production));
        c.settle();
        c.complete_with_message("schedule-scraper", &message, IMAGE);
        c.settle();
        let pc = c.observed.phase_completions[0].status.clone().unwrap();
        assert_eq!(
            pc.failed[0].reason.as_deref(),
            Some(reason),
            "{message:.60}"
        );
        assert!(pc.completed.is_empty());
    }
}

#[test]
fn a_result_for_another_date_is_a_failure() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    let mut result = c.result_for("schedule-scraper");
    result.date = "2026-01-28".into();
    c.succeed_with("schedule-scraper", &result, IMAGE);
    c.settle();
    let pc = c.observed.phase_completions[0].status.clone().unwrap();
    assert_eq!(pc.failed[0].reason.as_deref(), Some("ResultMismatch"));
}

#[test]
fn a_completed_job_whose_result_is_not_seen_waits_then_fails() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    c.complete_without_pod("schedule-scraper");
    let plan = c.step();
    assert_eq!(plan.requeue_after, Some(std::time::Duration::from_secs(30)));
    assert_eq!(state(&c), RunState::Running);
    c.advance(30);
    c.step();
    let pc = c.observed.phase_completions[0].status.clone().unwrap();
    assert_eq!(pc.failed[0].reason.as_deref(), Some("MissingResult"));
}

#[test]
fn image_drift_blocks_the_next_phase_in_production() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    let result = c.result_for("schedule-scraper");
    c.succeed_with("schedule-scraper", &result, OTHER_IMAGE_ID);
    let plan = c.settle();
    assert!(c.live_processors().is_empty());
    assert_eq!(state(&c), RunState::Blocked);
    let drift = condition(&c, "CodeDrift");
    assert!(drift.is_true());
    assert_eq!(drift.reason, "ImageMismatch");
    assert!(drift.message.contains("schedule-scraper"));
    assert!(drift.message.contains("sha256:bbbb"));
    let finding = &c.run.status.as_ref().unwrap().drift[0];
    assert_eq!(
        (finding.field, finding.pinned.as_str()),
        (DriftField::Image, IMAGE)
    );
    assert_eq!(condition(&c, "Blocked").reason, "CodeDrift");
    let _ = plan;

    // An audited AcceptDrift lets it advance.
    c.run.spec.overrides = vec![override_(
        OverrideType::AcceptDrift,
        Some("schedule-scraper"),
        None,
    )];
    assert_eq!(planned(&c.step()), ["boxscore-scraper", "odds-scraper"]);
}

#[test]
fn drift_is_a_warning_in_backfill() {
    let mut c = Cluster::new(run("r", Mode::Backfill));
    c.settle();
    let mut result = c.result_for("schedule-scraper");
    result.commit = "68d1e707".into();
    c.succeed_with("schedule-scraper", &result, IMAGE);
    let plan = c.step();
    assert_eq!(planned(&plan), ["boxscore-scraper", "odds-scraper"]);
    let drift = condition(&c, "CodeDrift");
    assert_eq!(drift.reason, "CommitMismatch");
    assert!(drift.message.contains("warning"), "{}", drift.message);
    assert!(
        plan.events
            .iter()
            .any(|e| e.reason == EventReason::CodeDrift)
    );
}

#[test]
fn the_wrong_processor_answering_is_drift_even_after_its_job_is_gone() {
    // Seed 000: prediction-coordinator answered as "analytics_processors".
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    let mut result = c.result_for("schedule-scraper");
    result.processor = "analytics-processors".into();
    c.succeed_with("schedule-scraper", &result, IMAGE);
    c.settle();
    assert_eq!(condition(&c, "CodeDrift").reason, "ProcessorMismatch");
    // The Job is deleted by its TTL: the ledger keeps the finding.
    let name = c.job_names()[0].clone();
    c.delete_job(&name);
    c.settle();
    assert_eq!(condition(&c, "CodeDrift").reason, "ProcessorMismatch");
    assert_eq!(state(&c), RunState::Blocked);
    let record = c.observed.phase_completions[0]
        .status
        .as_ref()
        .unwrap()
        .completed[0]
        .clone();
    assert_eq!(record.processor, "schedule-scraper");
    assert_eq!(
        record.reported_processor.as_deref(),
        Some("analytics-processors")
    );
}

#[test]
fn suspend_creates_no_jobs_and_running_jobs_finish() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run.spec.suspend = true;
    let plan = c.step();
    assert!(plan.jobs.is_empty());
    assert_eq!(state(&c), RunState::Suspended);

    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    c.run.spec.suspend = true;
    c.step();
    assert_eq!(
        state(&c),
        RunState::Running,
        "a live Job keeps the run Running"
    );
    c.succeed("schedule-scraper");
    let plan = c.step();
    assert!(plan.jobs.is_empty());
    assert_eq!(state(&c), RunState::Suspended);
    c.run.spec.suspend = false;
    assert_eq!(planned(&c.step()), ["boxscore-scraper", "odds-scraper"]);
}

#[test]
fn the_run_deadline_fails_the_run_and_deletes_live_jobs() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run.spec.deadline_seconds = Some(300);
    let first = c.settle();
    let _ = first;
    assert_eq!(
        c.plan().requeue_after,
        Some(std::time::Duration::from_secs(300))
    );
    c.advance(300);
    let plan = c.step();
    assert_eq!(plan.jobs_to_delete, ["r-1-schedule-scraper-a1"]);
    assert!(plan.jobs.is_empty());
    assert_eq!(state(&c), RunState::Failed);
    assert_eq!(condition(&c, "Succeeded").reason, "DeadlineExceeded");
}

#[test]
fn a_spec_naming_unknown_processors_is_blocked_without_jobs() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run.spec.overrides = vec![override_(
        OverrideType::SkipDependencyCheck,
        Some("ml-feature-stor"),
        None,
    )];
    let plan = c.step();
    assert!(plan.jobs.is_empty());
    assert_eq!(state(&c), RunState::Blocked);
    assert_eq!(condition(&c, "Blocked").reason, "InvalidSpec");
    assert!(condition(&c, "Blocked").message.contains("ml-feature-stor"));
}

#[test]
fn a_subset_runs_only_its_phases_and_trusts_earlier_data() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run.spec.subset = Some(Subset {
        phases: vec![4],
        processors: vec![],
    });
    let plan = c.step();
    assert_eq!(planned(&plan), PHASE_4_INPUTS);
    assert_eq!(plan.phase_completions.len(), 1);
    let status = c.run.status.clone().unwrap();
    assert_eq!(
        status
            .phases
            .iter()
            .filter(|p| p.state == PhaseState::Skipped)
            .count(),
        5
    );
    assert_eq!(status.current_phase, Some(4));
}

#[test]
fn an_empty_catalog_runs_nothing_and_says_why() {
    let catalog = Catalog::from_yaml("phases: []\n").unwrap();
    let plan = planner::plan(
        &run("r", Mode::Production),
        &Observed::default(),
        &catalog,
        support::t0(),
    );
    assert!(plan.jobs.is_empty());
    assert_eq!(plan.run_status.state, Some(RunState::Blocked));
    let blocked = find_condition(&plan.run_status.conditions, "Blocked").unwrap();
    assert_eq!(blocked.reason, "NothingToRun");
}

#[test]
fn events_are_emitted_on_transitions_only() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    c.advance(100);
    let plan = c.step();
    assert!(plan.events.is_empty(), "{:#?}", plan.events);
    c.succeed("schedule-scraper");
    c.step();
    let plan = c.step();
    assert!(plan.events.is_empty(), "{:#?}", plan.events);
}

#[test]
fn status_rebuilt_from_scratch_equals_the_maintained_one() {
    let mut c = Cluster::new(run("r", Mode::Production));
    through_phase_3(&mut c, &[]);
    c.fail("player-daily-cache", 1);
    c.advance(40);
    c.settle();
    let maintained = c.plan().run_status;
    let mut fresh = c.clone();
    fresh.run.status = None;
    for pc in &mut fresh.observed.phase_completions {
        pc.status = None;
    }
    let rebuilt = fresh.plan().run_status;
    assert_eq!(support_normalize(rebuilt), support_normalize(maintained));
}

fn support_normalize(mut s: tipoff_crds::PipelineRunStatus) -> tipoff_crds::PipelineRunStatus {
    for c in &mut s.conditions {
        c.last_transition_time =
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(support::t0());
    }
    s
}

#[test]
fn a_per_processor_release_is_run_and_checked_against() {
    let hotfix = "ghcr.io/tipoff/processor@sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run.spec.release.processors = vec![tipoff_crds::ProcessorRelease {
        processor: "schedule-scraper".into(),
        image: hotfix.into(),
        commit: "68d1e707".into(),
        reason: "hotfix for the schedule endpoint".into(),
    }];
    let plan = c.step();
    assert_eq!(
        (plan.jobs[0].image.as_str(), plan.jobs[0].commit.as_str()),
        (hotfix, "68d1e707")
    );
    c.step();
    let mut result = c.result_for("schedule-scraper");
    result.commit = "68d1e707".into();
    c.succeed_with("schedule-scraper", &result, hotfix);
    let plan = c.step();
    assert_eq!(planned(&plan), ["boxscore-scraper", "odds-scraper"]);
    assert_eq!(condition(&c, "CodeDrift").status, ConditionStatus::False);
}

#[test]
fn an_override_without_effect_is_recorded_as_such() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run.spec.overrides = vec![override_(OverrideType::AcceptDrift, None, None)];
    c.settle();
    let applied = condition(&c, "OverridesApplied");
    assert_eq!(
        (applied.status, applied.reason.as_str()),
        (ConditionStatus::False, "NoEffect")
    );
}

#[test]
fn an_indexed_job_needs_every_index_result() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run.spec.subset = Some(Subset {
        phases: vec![5],
        processors: vec![],
    });
    let plan = c.step();
    assert_eq!(plan.jobs[0].parallelism, 4);
    c.step();
    c.succeed("player-prop-predictions");
    // Lose two of the four Pods before their results were read.
    let keep: Vec<_> = c.observed.pods.iter().take(2).cloned().collect();
    c.observed.pods = keep;
    let plan = c.step();
    assert_eq!(plan.requeue_after, Some(std::time::Duration::from_secs(30)));
    c.advance(30);
    c.step();
    let pc = c.observed.phase_completions[0].status.clone().unwrap();
    assert_eq!(pc.failed[0].reason.as_deref(), Some("MissingResult"));
    assert!(pc.failed[0].message.as_deref().unwrap().contains("2 of 4"));
}

#[test]
fn objects_without_the_expected_fields_are_ignored_not_fatal() {
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::Pod;
    let mut c = Cluster::new(run("r", Mode::Production));
    c.settle();
    let mut odd = c.observed.jobs[0].clone();
    odd.metadata.name = Some("r-odd".into());
    odd.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("tipoff.dev/attempt".into(), "one".into());
    c.observed.jobs.push(odd);
    c.observed.jobs.push(Job::default());
    c.observed.pods.push(Pod::default());
    let mut bare = c.observed.jobs[0].clone();
    bare.metadata.name = Some("r-bare".into());
    bare.status = None;
    bare.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("tipoff.dev/processor".into(), "not-in-catalog".into());
    c.observed.jobs.push(bare);
    let plan = c.step();
    assert!(plan.jobs.is_empty());
    assert_eq!(state(&c), RunState::Running);
}

#[test]
fn drift_in_one_index_of_an_indexed_job_outlives_the_job() {
    let mut c = Cluster::new(run("r", Mode::Production));
    c.run.spec.subset = Some(Subset {
        phases: vec![5],
        processors: vec![],
    });
    c.settle();
    c.succeed("player-prop-predictions");
    // Index 3 ran another digest.
    let pod = c.observed.pods.last_mut().unwrap();
    let status = pod
        .status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap();
    status[0].image_id = OTHER_IMAGE_ID.into();
    c.settle();
    assert_eq!(condition(&c, "CodeDrift").reason, "ImageMismatch");
    let name = c.job_names()[0].clone();
    c.delete_job(&name);
    c.settle();
    let drift = condition(&c, "CodeDrift");
    assert!(
        drift.is_true() && drift.message.contains("sha256:bbbb"),
        "{}",
        drift.message
    );
}

#[test]
fn oversized_reported_values_are_bounded_to_what_the_crd_accepts() {
    let mut c = Cluster::new(run("r", Mode::Backfill));
    c.settle();
    let mut result = c.result_for("schedule-scraper");
    result.commit = "f".repeat(100);
    result.rows = (0..40).map(|i| (format!("nba_raw.t{i:02}"), 1)).collect();
    c.succeed_with("schedule-scraper", &result, IMAGE);
    c.settle();
    let pc = c.observed.phase_completions[0].status.clone().unwrap();
    let record = &pc.completed[0];
    assert_eq!(record.commit.as_ref().unwrap().len(), 40);
    assert_eq!(record.rows.len(), 32);
    let drift = &c.run.status.as_ref().unwrap().drift[0];
    assert!(drift.observed.len() <= 512);
}

#[test]
fn a_run_that_never_drifted_emits_no_code_drift_event() {
    let mut c = Cluster::new(run("r", Mode::Production));
    let first = c.step();
    assert!(
        !first
            .events
            .iter()
            .any(|e| e.reason == EventReason::CodeDrift),
        "{:?}",
        first.events
    );
    assert_eq!(
        condition(&c, "CodeDrift").status,
        tipoff_crds::ConditionStatus::False
    );
}

#[test]
fn a_newer_run_for_the_same_date_waits_for_the_older_one() {
    let mut c = Cluster::new(run("rerun", Mode::Production));
    c.observed.older_runs_for_date = vec!["first".into()];
    let plan = c.step();
    assert!(
        plan.jobs.is_empty(),
        "two runs for one date never write at once"
    );
    assert_eq!(state(&c), RunState::Blocked);
    let blocked = condition(&c, "Blocked");
    assert_eq!(blocked.reason, "ConcurrentRunForDate");
    assert!(blocked.message.contains("first"), "{}", blocked.message);
    assert_eq!(plan.requeue_after, Some(std::time::Duration::from_secs(5)));

    // The older run ended: this one starts.
    c.observed.older_runs_for_date.clear();
    let plan = c.step();
    assert_eq!(planned(&plan), ["schedule-scraper"]);

    // A run that already started is never stopped by a newer claim on its date.
    c.observed.older_runs_for_date = vec!["late".into()];
    c.settle();
    assert_ne!(state(&c), RunState::Blocked);
}

#[test]
fn a_run_waiting_on_a_blocked_or_suspended_older_run_names_it_and_the_command_that_releases_it() {
    use tipoff_operator::planner::observe::OlderRun;
    let mut c = Cluster::new(run("rerun", Mode::Production));
    // The older run waits on a person (a failed gate): it would hold the date forever.
    c.observed.older_runs_for_date = vec![OlderRun {
        name: "first".into(),
        state: Some(RunState::Blocked),
    }];
    let plan = c.step();
    assert!(plan.jobs.is_empty());
    let blocked = condition(&c, "Blocked");
    assert_eq!(blocked.reason, "ConcurrentRunForDate");
    assert!(
        blocked.message.contains("first (Blocked)")
            && blocked
                .message
                .contains("`kubectl delete pipelinerun first -n nba`"),
        "{}",
        blocked.message
    );
    // Suspended holds the date the same way.
    c.observed.older_runs_for_date[0].state = Some(RunState::Suspended);
    c.step();
    let message = condition(&c, "Blocked").message;
    assert!(message.contains("first (Suspended)"), "{message}");
    assert!(
        message.contains("kubectl delete pipelinerun first"),
        "{message}"
    );
    // An older run that is running ends by itself: no command, it just waits.
    c.observed.older_runs_for_date[0].state = Some(RunState::Running);
    c.step();
    let message = condition(&c, "Blocked").message;
    assert!(
        message.contains("first (Running); this run starts when it ends"),
        "{message}"
    );
    assert!(!message.contains("kubectl"), "{message}");
    // Released (the older run deleted): this run starts.
    c.observed.older_runs_for_date.clear();
    assert_eq!(planned(&c.step()), ["schedule-scraper"]);
}

#[test]
fn a_run_pinning_an_image_outside_the_allowlist_is_blocked_and_never_runs() {
    use tipoff_operator::catalog::image_repository;
    let mut c = Cluster::new(run("r", Mode::Production));
    c.catalog.allowed_image_repositories = vec!["registry.example/trusted/processor".into()];
    let plan = c.step();
    assert!(plan.jobs.is_empty(), "an image outside the allowlist ran");
    assert_eq!(state(&c), RunState::Blocked);
    let blocked = condition(&c, "Blocked");
    assert_eq!(blocked.reason, "ImageNotAllowed");
    assert!(
        blocked.message.contains(IMAGE) && blocked.message.contains("registry.example/trusted"),
        "{}",
        blocked.message
    );
    // Its repository (digest and tag aside) allowed, exactly or under a `/` prefix: it runs.
    let repository = image_repository(IMAGE).to_owned();
    let parent = format!("{}/", repository.rsplit_once('/').unwrap().0);
    for allowed in [repository, parent] {
        let mut c = Cluster::new(run("r", Mode::Production));
        c.catalog.allowed_image_repositories = vec![allowed.clone()];
        assert_eq!(planned(&c.step()), ["schedule-scraper"], "{allowed}");
    }
    assert_eq!(
        image_repository("registry:5000/team/proc:v1@sha256:ab"),
        "registry:5000/team/proc"
    );
    assert_eq!(
        image_repository("registry:5000/team/proc"),
        "registry:5000/team/proc"
    );
}

#[test]
fn a_happy_run_reports_its_transitions_in_one_event_per_step() {
    let mut c = Cluster::new(run("r", Mode::Production));
    let phases = c.catalog.phases.len();
    let mut transitions: Vec<(EventReason, String)> = Vec::new();
    for _ in 0..200 {
        let plan = c.step();
        let of_step: Vec<_> = plan
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e.reason,
                    EventReason::RunStateChanged | EventReason::PhaseStateChanged
                )
            })
            .collect();
        assert!(
            of_step.len() <= 1,
            "one transition Event per step: {of_step:#?}"
        );
        transitions.extend(of_step.iter().map(|e| (e.reason, e.message.clone())));
        if state(&c).is_terminal() {
            break;
        }
        let quiet = plan.jobs.is_empty()
            && !plan.run_status_changed
            && plan.phase_completion_statuses.iter().all(|w| !w.changed);
        if quiet {
            for p in c.live_processors() {
                c.succeed(&p);
            }
            c.advance(10);
        }
    }
    assert_eq!(state(&c), RunState::Succeeded);
    // Every phase's success is reported exactly once, and the run's start and end once each.
    for phase in &c.catalog.phases {
        let needle = format!("phase {} ({}) is Succeeded", phase.number, phase.name);
        let hits = transitions
            .iter()
            .filter(|(_, m)| m.contains(&needle))
            .count();
        assert_eq!(hits, 1, "{needle}: {transitions:#?}");
    }
    let run_events: Vec<_> = transitions
        .iter()
        .filter(|(r, _)| *r == EventReason::RunStateChanged)
        .map(|(_, m)| m.split(':').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        run_events,
        ["run is Pending", "run is Running", "run is Succeeded"]
    );
    // Far fewer than one Event per phase start and one per phase end.
    assert!(
        transitions.len() <= phases + 3,
        "{} transition Events for {phases} phases: {transitions:#?}",
        transitions.len()
    );
}
