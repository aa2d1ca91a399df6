//! End-to-end tests: the real `tipoff-operator` process against `dev/cluster` (real kube
//! client, real kube-runtime watches), with Jobs run as local `tipoff-test-processor`
//! processes, on the six-phase test catalog.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod failures;
mod harness;
mod real_processors;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness::{DIGEST, Env, REPO, state};
use tipoff_crds::{Mode, RunState};

/// Every processor reports the pinned commit and passes every gate of the test catalog.
fn script(extra: &str) -> String {
    format!(
        "default:\n  sleepMs: {{SLEEP}}\n  commit: {commit}\n  rows: {{nba_test.rows: 10}}\n  checks:\n{checks}processors:\n{extra}",
        commit = harness::COMMIT,
        checks = [
            "rows-written",
            "history-gap",
            "player-coverage",
            "boxscore-coverage",
            "odds-coverage"
        ]
        .iter()
        .map(|g| format!("    - {{name: {g}, passed: true, observed: 10, expected: 10}}\n"))
        .collect::<String>(),
    )
}

fn with_sleep(script: &str, ms: u64) -> String {
    script.replace("{SLEEP}", &ms.to_string())
}

/// Attempts per processor among a run's Jobs.
async fn attempts(env: &Env, run: &str) -> BTreeMap<String, Vec<u32>> {
    let mut out: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for job in env.jobs(run).await {
        let labels = job.metadata.labels.unwrap_or_default();
        let p = labels["tipoff.dev/processor"].clone();
        out.entry(p)
            .or_default()
            .push(labels["tipoff.dev/attempt"].parse().unwrap());
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    out
}

const TEST_PROCESSORS: usize = 19;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_run_goes_through_six_phases_and_kubectl_shows_it() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 50), None).await;
    let op = env.operator("op-a", false);
    env.create_run("nba-2026-01-29", Mode::Production).await;
    let run = env
        .wait_for("nba-2026-01-29", Duration::from_secs(120), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    let status = run.status.unwrap();
    assert_eq!(
        status.state,
        Some(RunState::Succeeded),
        "{status:#?}\n{}",
        op.log()
    );
    assert_eq!(status.progress.as_deref(), Some("19/19"));

    // One Job per processor, attempt 1 only: nothing duplicated, nothing retried.
    let attempts = attempts(&env, "nba-2026-01-29").await;
    assert_eq!(attempts.len(), TEST_PROCESSORS, "{attempts:?}");
    assert!(attempts.values().all(|a| a == &[1]), "{attempts:?}");

    let table = env.kubectl(&["get", "pipelineruns"]);
    assert!(
        table.contains("DATE") && table.contains("DRIFT") && table.contains("STATE"),
        "{table}"
    );
    assert!(
        table.contains("nba-2026-01-29") && table.contains("Succeeded") && table.contains("19/19"),
        "{table}"
    );
    let pcs = env.kubectl(&["get", "phasecompletions"]);
    assert_eq!(
        pcs.lines().filter(|l| l.contains("Succeeded")).count(),
        6,
        "{pcs}"
    );
    let events = env.kubectl(&["get", "events"]);
    assert!(events.contains("RunStateChanged"), "{events}");

    // The operator's own endpoints.
    assert_eq!(op.get("/healthz").map(|r| r.0), Some(200));
    let (code, metrics) = op.get("/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("tipoff_jobs_created_total 19"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tipoff_runs{state=\"Succeeded\"} 1"),
        "{metrics}"
    );
    // Phases 2-6 were each triggered once.
    assert!(
        metrics.contains("tipoff_trigger_latency_seconds_count 5"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_program_answering_sets_code_drift_and_stops_production_before_the_next_phase() {
    // Seed 000: prediction-coordinator answered as "analytics_processors".
    let extra = "  player-prop-predictions: {processor: analytics-processors, service: analytics_processors}\n";
    let env = Env::start(&with_sleep(&script(extra), 20), None).await;
    let _op = env.operator("op-a", false);
    env.create_run("drift", Mode::Production).await;
    let run = env
        .wait_for("drift", Duration::from_secs(120), |r| {
            state(r) == Some(RunState::Blocked)
        })
        .await;
    let status = run.status.unwrap();
    let drift = status
        .conditions
        .iter()
        .find(|c| c.type_ == "CodeDrift")
        .unwrap();
    assert!(drift.is_true(), "{drift:?}");
    assert!(
        drift.message.contains("player-prop-predictions")
            && drift.message.contains("analytics-processors"),
        "{}",
        drift.message
    );
    // Phase 6 never started.
    let attempts = attempts(&env, "drift").await;
    assert!(!attempts.contains_key("export-predictions"), "{attempts:?}");
    let table = env.kubectl(&["get", "pipelineruns", "drift"]);
    assert!(
        table.contains("True") && table.contains("Blocked"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_running_another_digest_is_drift_too_and_backfill_only_warns() {
    let other = format!("{REPO}@sha256:{}", "1".repeat(64));
    let env = Env::start(&with_sleep(&script("  {}\n"), 20), Some(&other)).await;
    let _op = env.operator("op-a", false);
    env.create_run("backfill", Mode::Backfill).await;
    let run = env
        .wait_for("backfill", Duration::from_secs(120), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    let status = run.status.unwrap();
    assert_eq!(
        status.state,
        Some(RunState::Succeeded),
        "backfill continues past drift: {status:#?}"
    );
    let drift = status
        .conditions
        .iter()
        .find(|c| c.type_ == "CodeDrift")
        .unwrap();
    assert!(
        drift.is_true() && drift.reason == "ImageMismatch",
        "{drift:?}"
    );
    assert!(
        drift.message.contains(DIGEST) || status.drift.iter().any(|d| d.pinned.contains(DIGEST)),
        "{status:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_at_random_points_resumes_without_duplicate_jobs() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 400), None).await;
    env.create_run("crashy", Mode::Production).await;
    // Kill the operator five times while the run is in flight, at staggered moments.
    for (i, after_ms) in [700_u64, 1300, 450, 1900, 900].into_iter().enumerate() {
        let mut op = env.operator(&format!("op-{i}"), false);
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        op.kill();
    }
    let _op = env.operator("op-final", false);
    let run = env
        .wait_for("crashy", Duration::from_secs(180), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    assert_eq!(state(&run), Some(RunState::Succeeded), "{:#?}", run.status);
    let attempts = attempts(&env, "crashy").await;
    assert_eq!(attempts.len(), TEST_PROCESSORS);
    assert!(
        attempts.values().all(|a| a == &[1]),
        "a crash must never duplicate a Job: {attempts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_status_writes_never_lose_or_duplicate_work() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 100), None).await;
    // The first status writes of both kinds fail with 500 (kube-client retries 503 itself).
    env.cluster
        .faults()
        .fail_next(6, Some("PATCH"), "/phasecompletions/", 500);
    env.cluster
        .faults()
        .fail_next(6, Some("PATCH"), "/pipelineruns/", 500);
    let _op = env.operator("op-a", false);
    env.create_run("flaky", Mode::Production).await;
    let run = env
        .wait_for("flaky", Duration::from_secs(180), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    assert_eq!(state(&run), Some(RunState::Succeeded), "{:#?}", run.status);
    let attempts = attempts(&env, "flaky").await;
    assert!(attempts.values().all(|a| a == &[1]), "{attempts:?}");
    // No PhaseCompletion claims a triggered next phase whose Jobs do not exist.
    let pcs: kube::Api<tipoff_crds::PhaseCompletion> =
        kube::Api::namespaced(env.client.clone(), harness::NS);
    for pc in pcs.list(&Default::default()).await.unwrap() {
        let st = pc.status.unwrap_or_default();
        if st.next_phase_triggered {
            let next = pc.spec.phase + 1;
            let jobs = env.jobs("flaky").await;
            assert!(
                jobs.iter()
                    .any(|j| j.metadata.labels.as_ref().unwrap()["tipoff.dev/phase"]
                        == next.to_string()),
                "phase {} says next triggered without phase {next} Jobs",
                pc.spec.phase
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_within_20_seconds_of_the_leaders_death() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 300), None).await;
    let mut leader = env.operator("replica-a", true);
    // Let replica-a win the Lease before the standby starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !leader
        .get("/metrics")
        .is_some_and(|(_, m)| m.contains("tipoff_leader 1"))
    {
        assert!(
            Instant::now() < deadline,
            "replica-a never became leader:\n{}",
            leader.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let standby = env.operator("replica-b", true);
    env.create_run("failover", Mode::Production).await;
    env.wait_for("failover", Duration::from_secs(60), |r| {
        state(r) == Some(RunState::Running)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        standby
            .get("/metrics")
            .is_some_and(|(_, m)| m.contains("tipoff_leader 0")),
        "only one leader at a time"
    );
    // A standby can take over, so it is ready (a rolling update waits for readiness).
    assert_eq!(
        standby.get("/readyz").map(|r| r.0),
        Some(200),
        "{}",
        standby.log()
    );
    assert_eq!(leader.get("/readyz").map(|r| r.0), Some(200));
    leader.kill();
    let killed = Instant::now();
    while !standby
        .get("/metrics")
        .is_some_and(|(_, m)| m.contains("tipoff_leader 1"))
    {
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "no takeover within 20 s:\n{}",
            standby.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = env
        .wait_for("failover", Duration::from_secs(180), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    assert_eq!(state(&run), Some(RunState::Succeeded), "{:#?}", run.status);
    let attempts = attempts(&env, "failover").await;
    assert!(attempts.values().all(|a| a == &[1]), "{attempts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_for_one_date_never_write_at_once() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 100), None).await;
    let _op = env.operator("op-a", false);
    env.create_run("first", Mode::Production).await;
    env.wait_for("first", Duration::from_secs(60), |r| {
        state(r) == Some(RunState::Running)
    })
    .await;
    env.create_run("second", Mode::Production).await;
    let waiting = env
        .wait_for("second", Duration::from_secs(60), |r| {
            state(r) == Some(RunState::Blocked)
        })
        .await;
    let blocked = waiting
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Blocked")
        .unwrap();
    assert_eq!(blocked.reason, "ConcurrentRunForDate", "{blocked:?}");
    assert!(env.jobs("second").await.is_empty());

    let first = env
        .wait_for("first", Duration::from_secs(120), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    let second = env
        .wait_for("second", Duration::from_secs(120), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    assert_eq!(
        state(&second),
        Some(RunState::Succeeded),
        "{:#?}",
        second.status
    );
    let first_done = first.status.unwrap().completion_time.unwrap().0;
    let second_started = env
        .jobs("second")
        .await
        .iter()
        .filter_map(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .min()
        .unwrap();
    // creationTimestamp has whole seconds; completionTime has more precision.
    let tolerance = jiff::SignedDuration::from_secs(1);
    assert!(
        second_started + tolerance >= first_done,
        "second started {second_started} before first ended {first_done}"
    );
}
