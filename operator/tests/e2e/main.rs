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
    // One Event per transition, each with its own note (P + 1 for P phases: the run starts
    // Running with its first phase, since its first status is planned from the Jobs just
    // created; each phase ends; the run ends): not one Event per reason whose count goes up
    // while its note stays that of the first transition.
    let transitions: Vec<String> = env
        .events()
        .await
        .into_iter()
        .filter(|(reason, _)| reason == "RunStateChanged" || reason == "PhaseStateChanged")
        .map(|(_, message)| message)
        .collect();
    assert_eq!(transitions.len(), 6 + 1, "{transitions:#?}");
    for n in 1..6 {
        assert!(
            transitions
                .iter()
                .any(|m| m.contains(&format!("phase {n} ("))
                    && m.contains(&format!("phase {} (", n + 1))),
            "no Event for the end of phase {n}: {transitions:#?}"
        );
    }
    assert!(
        transitions
            .iter()
            .any(|m| m.starts_with("run is Succeeded")),
        "{transitions:#?}"
    );

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

/// A small deterministic generator for the random points of the racy tests: seeded from the
/// clock (or `TIPOFF_TEST_SEED`), and the seed is printed, so a failure can be replayed.
struct Random(u64);

impl Random {
    fn seeded(test: &str) -> Self {
        let seed = std::env::var("TIPOFF_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{test}: TIPOFF_TEST_SEED={seed}");
        Self(seed | 1)
    }

    /// A number in `lo..hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        lo + self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % (hi - lo)
    }
}

/// Waits for every run to end and checks each succeeded with exactly one attempt per
/// processor: no crash or takeover ever duplicated a Job.
async fn all_succeed_once(env: &Env, runs: &[String]) {
    for name in runs {
        let run = env
            .wait_for(name, Duration::from_secs(240), |r| {
                state(r).is_some_and(RunState::is_terminal)
            })
            .await;
        assert_eq!(
            state(&run),
            Some(RunState::Succeeded),
            "{name}: {:#?}",
            run.status
        );
        let attempts = attempts(env, name).await;
        assert_eq!(attempts.len(), TEST_PROCESSORS, "{name}: {attempts:?}");
        assert!(
            attempts.values().all(|a| a == &[1]),
            "{name}: a crash must never duplicate a Job: {attempts:?}"
        );
    }
}

/// 50 trials: the operator is SIGKILLed at a random moment (during start-up, cache sync,
/// between a Job's creation and the status write that records it, ...) while runs are in
/// flight, and restarted; a new run starts every five trials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_at_random_points_resumes_without_duplicate_jobs() {
    const TRIALS: usize = 50;
    let mut random = Random::seeded("crash");
    let env = Env::start(&with_sleep(&script("  {}\n"), 150), None).await;
    let mut runs = Vec::new();
    for trial in 0..TRIALS {
        if trial % 5 == 0 {
            let name = format!("crashy-{}", trial / 5);
            env.create_run(&name, Mode::Production).await;
            runs.push(name);
        }
        let mut op = env.operator(&format!("op-{trial}"), false);
        tokio::time::sleep(Duration::from_millis(random.between(100, 1500))).await;
        op.kill();
    }
    let _op = env.operator("op-final", false);
    all_succeed_once(&env, &runs).await;
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

fn is_leader(op: &harness::Operator) -> bool {
    op.get("/metrics")
        // The sample line exactly: the metric's HELP text also starts "tipoff_leader 1 ...".
        .is_some_and(|(_, m)| m.lines().any(|l| l.trim() == "tipoff_leader 1"))
}

/// 20 trials with two replicas: the leader is SIGKILLed (its Lease is not released) at a
/// random moment while runs are in flight, a standby must take over within 20 s, and a new
/// standby replaces the dead replica. Only one replica leads at a time, and no takeover
/// duplicates a Job. (The e2e operators use a 6 s Lease and 2 s renewals to keep the test
/// short; the production default of 15 s + 4 s is still inside 20 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_within_20_seconds_of_the_leaders_death() {
    const TRIALS: usize = 20;
    let mut random = Random::seeded("failover");
    let env = Env::start(&with_sleep(&script("  {}\n"), 300), None).await;
    let mut leader = env.operator("replica-0", true);
    // Let the first replica win the Lease before the standby starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_leader(&leader) {
        assert!(
            Instant::now() < deadline,
            "replica-0 never became leader:\n{}",
            leader.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut standby = env.operator("replica-1", true);
    // A standby can take over, so it is ready (a rolling update waits for readiness).
    let standby_ready = |standby: &harness::Operator, trial: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while standby.get("/readyz").map(|r| r.0) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "trial {trial}: the standby never became ready:\n{}",
                standby.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut runs = Vec::new();
    let mut takeovers = Vec::new();
    for trial in 0..TRIALS {
        if trial % 2 == 0 {
            let name = format!("failover-{}", trial / 2);
            env.create_run(&name, Mode::Production).await;
            runs.push(name);
        }
        standby_ready(&standby, trial);
        tokio::time::sleep(Duration::from_millis(random.between(500, 2500))).await;
        assert!(
            is_leader(&leader),
            "trial {trial}: the leader is not leading:\n{}",
            leader.log()
        );
        assert!(
            !is_leader(&standby),
            "trial {trial}: two leaders at once:\n{}",
            standby.log()
        );
        leader.kill();
        let killed = Instant::now();
        while !is_leader(&standby) {
            assert!(
                killed.elapsed() < Duration::from_secs(20),
                "trial {trial}: no takeover within 20 s:\n{}",
                standby.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        takeovers.push(killed.elapsed());
        leader = standby;
        standby = env.operator(&format!("replica-{}", trial + 2), true);
    }
    takeovers.sort();
    eprintln!(
        "takeover after the leader's death over {TRIALS} trials: min {:?}, median {:?}, max {:?}",
        takeovers[0],
        takeovers[TRIALS / 2],
        takeovers[TRIALS - 1]
    );
    all_succeed_once(&env, &runs).await;
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
