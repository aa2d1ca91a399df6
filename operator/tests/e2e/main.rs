//! End-to-end tests: the real `tipoff-operator` process against `dev/cluster` (real kube
//! client, real kube-runtime watches), with Jobs run as local `tipoff-test-processor`
//! processes, on the six-phase test catalog.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod alerts;
mod backfill;
mod failures;
mod gitops;
mod harness;
mod rbac;
mod real_processors;
mod resilience;
mod schedule;

use std::collections::{BTreeMap, BTreeSet};
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

/// A `processors:` entry for [`script`]: a scripted processor replaces the default behaviour,
/// so the entry copies it (the pinned commit, rows, passing checks) with `overrides` (`key:
/// value` pairs of the behaviour) in place of or beside its fields.
fn scripted(processor: &str, overrides: &[(&str, &str)]) -> String {
    let base = script("");
    let default = base.split("default:\n").nth(1).unwrap();
    let default = default.split("processors:").next().unwrap();
    let mut entry = format!("  {processor}:\n");
    let mut pending: Vec<_> = overrides.to_vec();
    for line in default.lines() {
        let key = line.trim_start().split(':').next().unwrap_or_default();
        let top = line.starts_with("  ") && !line.starts_with("   ");
        match pending.iter().position(|(k, _)| top && *k == key) {
            Some(i) => {
                let (k, v) = pending.remove(i);
                entry.push_str(&format!("    {k}: {v}\n"));
            }
            None => entry.push_str(&format!("  {line}\n")),
        }
    }
    for (k, v) in pending {
        entry.push_str(&format!("    {k}: {v}\n"));
    }
    entry
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
    let drift = harness::condition(&status, "CodeDrift");
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

/// The deployed code is another commit (seed 000's root cause: a stale build behind the right
/// service name): the processor answers with its own identity but not the pinned commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_reporting_another_commit_is_drift_and_production_stops_before_the_next_phase()
{
    const STALE: &str = "0badc0de";
    let extra = scripted("ml-feature-store", &[("commit", STALE)]);
    let env = Env::start(&with_sleep(&script(&extra), 20), None).await;
    let op = env.operator("op-a", false);
    env.create_run("stale", Mode::Production).await;
    let run = env
        .wait_for("stale", Duration::from_secs(120), |r| {
            state(r) == Some(RunState::Blocked)
        })
        .await;
    let status = run.status.unwrap();
    let drift = harness::condition(&status, "CodeDrift");
    assert!(
        drift.is_true() && drift.reason == "CommitMismatch",
        "{drift:?}"
    );
    for part in ["ml-feature-store", harness::COMMIT, STALE] {
        assert!(drift.message.contains(part), "{part}: {}", drift.message);
    }
    // Phase 4 ran to its end, phase 5 never started.
    let attempts = attempts(&env, "stale").await;
    assert!(attempts.contains_key("ml-feature-store"), "{attempts:?}");
    assert!(
        !attempts.contains_key("player-prop-predictions"),
        "{attempts:?}"
    );
    let events = env.events().await;
    assert!(
        events
            .iter()
            .any(|(reason, message)| reason == "CodeDrift" && message.contains(STALE)),
        "{events:#?}"
    );
    let (_, metrics) = op.get("/metrics").unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"tipoff_drift_findings_total{field="Commit"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l == "tipoff_runs_with_drift 1"),
        "{metrics}"
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
    let drift = harness::condition(&status, "CodeDrift");
    assert!(
        drift.is_true() && drift.reason == "ImageMismatch",
        "{drift:?}"
    );
    assert!(
        drift.message.contains(DIGEST) || status.drift.iter().any(|d| d.pinned.contains(DIGEST)),
        "{status:#?}"
    );
    // The warning a Backfill run continues with is an Event a person (or an exporter) sees.
    let events = env.kubectl(&["get", "events"]);
    assert!(
        events
            .lines()
            .any(|l| l.contains("Warning") && l.contains("CodeDrift")),
        "{events}"
    );
}

/// An operator started before its CRDs are installed (a fresh cluster, or Argo CD syncing the
/// Deployment first) waits for them instead of crash-looping: alive, not ready, and it picks up
/// work as soon as the CRDs are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_started_before_its_crds_waits_for_them() {
    let env = Env::start_without_crds(&with_sleep(&script("  {}\n"), 20), None).await;
    let op = env.operator("op-a", false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while op.get("/healthz").map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "never healthy:\n{}", op.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Long enough for a crashing operator to have exited after its first probes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(op.get("/healthz").map(|r| r.0), Some(200), "{}", op.log());
    assert_eq!(op.get("/readyz").map(|r| r.0), Some(503), "{}", op.log());
    assert!(op.log().contains("CRDs not served yet"), "{}", op.log());

    env.install_crds().await;
    env.create_run("late-crds", Mode::Production).await;
    let run = env
        .wait_for("late-crds", Duration::from_secs(120), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    assert_eq!(state(&run), Some(RunState::Succeeded), "{:#?}", run.status);
    assert_eq!(op.get("/readyz").map(|r| r.0), Some(200), "{}", op.log());
}

/// The Deployment shipped in `deploy/operator.yaml`, run the way its Pod would run: its
/// arguments, and its environment with the downward-API fields resolved; the catalog
/// ConfigMap's mount is a directory holding the test catalog. It must become the leader and
/// ready, and run a pipeline whose processor Jobs use the manifest's ServiceAccount and
/// environment ConfigMap. It runs as its ServiceAccount under the manifest's Role (applied to
/// the API server, which enforces RBAC): any refused call fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_deployment_runs_a_pipeline() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 20), None).await;
    let shipped = rbac::start_shipped_operator(&env, "deployed", &[]).await;
    env.create_run("deployed", Mode::Production).await;
    let run = rbac::wait_run(&env, &shipped, "deployed", Duration::from_secs(120)).await;
    assert_eq!(
        state(&run),
        Some(RunState::Succeeded),
        "{:#?}\n{}",
        run.status,
        shipped.op.log()
    );
    for job in env.jobs("deployed").await {
        let spec = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(
            spec.service_account_name.as_deref(),
            Some(shipped.processor_account.as_str())
        );
        let sources = spec.containers[0].env_from.clone().unwrap_or_default();
        assert!(
            sources.iter().any(|s| s
                .config_map_ref
                .as_ref()
                .is_some_and(|c| c.name == shipped.processor_configmap)),
            "{sources:?}"
        );
    }
    // Every call the operator made was allowed by the shipped Role.
    let refused = rbac::refused(&env, &shipped.user);
    assert!(
        refused.is_empty(),
        "the API server refused the operator:\n{}\n{}",
        refused.join("\n"),
        shipped.op.log()
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
        if !attempts.values().all(|a| a == &[1]) {
            // Why the extra attempt was started: the ledger's failed records say.
            let pcs: kube::Api<tipoff_crds::PhaseCompletion> =
                kube::Api::namespaced(env.client.clone(), harness::NS);
            let failed: Vec<_> = pcs
                .list(&Default::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
                .into_iter()
                .filter(|pc| &pc.spec.run == name)
                .flat_map(|pc| pc.status.map(|s| s.failed).unwrap_or_default())
                .collect();
            panic!(
                "{name}: a crash must never duplicate a Job: {attempts:?}\nfailed records: {failed:#?}"
            );
        }
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

/// The phases of `run` whose PhaseCompletion says the next phase was triggered while no Job
/// of that next phase exists. The PhaseCompletions are read before the Jobs, and Jobs are only
/// ever added during a run, so a claim seen here was false when it was read.
async fn triggered_without_jobs(client: &kube::Client, run: &str) -> Vec<String> {
    let pcs: kube::Api<tipoff_crds::PhaseCompletion> =
        kube::Api::namespaced(client.clone(), harness::NS);
    let jobs: kube::Api<k8s_openapi::api::batch::v1::Job> =
        kube::Api::namespaced(client.clone(), harness::NS);
    let Ok(pcs) = pcs.list(&Default::default()).await else {
        return Vec::new(); // an injected failure may answer a read too; the next round reads again
    };
    let Ok(jobs) = jobs
        .list(&kube::api::ListParams::default().labels(&format!("tipoff.dev/run={run}")))
        .await
    else {
        return Vec::new();
    };
    let job_phases: Vec<String> = jobs
        .iter()
        .filter_map(|j| j.metadata.labels.as_ref()?.get("tipoff.dev/phase").cloned())
        .collect();
    pcs.items
        .iter()
        .filter(|pc| pc.spec.run == run)
        .filter(|pc| pc.status.as_ref().is_some_and(|s| s.next_phase_triggered))
        .filter(|pc| !job_phases.contains(&(pc.spec.phase + 1).to_string()))
        .map(|pc| {
            format!(
                "phase {} says next triggered with no phase {} Job",
                pc.spec.phase,
                pc.spec.phase + 1
            )
        })
        .collect()
}

/// Status writes of both kinds fail for a while, first with 500 and then with 409 (a
/// conflict): the operator must adopt the Jobs it already created (no second attempt), finish
/// the run, and at no moment may a PhaseCompletion claim a triggered next phase whose Jobs do
/// not exist. A checker reads the claims against the Jobs throughout the run, not only at the
/// end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_status_writes_never_lose_or_duplicate_work() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 100), None).await;
    // The status subresources only: `*` keeps the PhaseCompletions' own apply out of it. Rules
    // are served in order, so each kind fails three times with 500, then three times with 409.
    // (kube-client retries 503 itself, so 500 is the server error the operator must handle.)
    let faults = env.cluster.faults();
    for status in [500, 409] {
        faults.fail_next(3, Some("PATCH"), "/phasecompletions/*/status", status);
        faults.fail_next(3, Some("PATCH"), "/pipelineruns/*/status", status);
    }
    let _op = env.operator("op-a", false);
    env.create_run("flaky", Mode::Production).await;

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = tokio::spawn({
        let (client, done) = (env.client.clone(), done.clone());
        async move {
            let (mut rounds, mut violations) = (0_u32, Vec::new());
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                violations.extend(triggered_without_jobs(&client, "flaky").await);
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (rounds, violations)
        }
    });
    let run = env
        .wait_for("flaky", Duration::from_secs(180), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (rounds, violations) = checker.await.unwrap();

    assert_eq!(state(&run), Some(RunState::Succeeded), "{:#?}", run.status);
    let left = env.cluster.faults().describe()["fail"].clone();
    assert_eq!(
        left,
        serde_json::json!([]),
        "every injected failure was served"
    );
    let attempts = attempts(&env, "flaky").await;
    assert!(attempts.values().all(|a| a == &[1]), "{attempts:?}");
    assert!(
        rounds >= 10,
        "the checker read the claims throughout ({rounds} rounds)"
    );
    assert_eq!(violations, Vec::<String>::new());
    assert_eq!(
        triggered_without_jobs(&env.client, "flaky").await,
        Vec::<String>::new()
    );
    // Each failed reconcile said why in a Warning Event whose reason is the error category.
    let reasons: BTreeSet<String> = env.events().await.into_iter().map(|(r, _)| r).collect();
    assert!(
        reasons.contains("ApiError") && reasons.contains("ApiConflict"),
        "{reasons:?}"
    );
}

fn is_leader(op: &harness::Operator) -> bool {
    op.get("/metrics")
        // The sample line exactly: the metric's HELP text also starts "tipoff_leader 1 ...".
        .is_some_and(|(_, m)| m.lines().any(|l| l.trim() == "tipoff_leader 1"))
}

/// 20 trials with two replicas: the leader is SIGKILLed (its Lease is not released) at a
/// random moment while runs are in flight, a standby must take over within 20 s, and a new
/// standby replaces the dead replica. Only one replica leads at a time (checked every 100 ms
/// while both live), and no takeover duplicates a Job. (The e2e operators use a 6 s Lease and 2 s renewals to keep the test
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
        // Exactly one leader throughout the quiet spell, not only at its end.
        let quiet_until = Instant::now() + Duration::from_millis(random.between(500, 2500));
        loop {
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
            if Instant::now() >= quiet_until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
    let status = waiting.status.unwrap();
    let blocked = harness::condition(&status, "Blocked");
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
