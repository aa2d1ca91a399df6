//! Failure classes beyond crashes: the operator down while Jobs finish, Jobs deleted or past
//! their deadline, malformed results, dropped and delayed watches, and a SameDay run held by a
//! failed dependency until an audited override.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PropagationPolicy};
use tipoff_crds::{Mode, PhaseState, PipelineRunSpec, RetryPolicy, RunState};

use super::harness::{self, Env, state};
use super::{TEST_PROCESSORS, attempts, script, scripted, with_sleep};

/// Retries one second apart, so a retried attempt shows up within the test's bounds (the test
/// catalog's default backoff is 30 s).
fn fast_retry(spec: &mut PipelineRunSpec) {
    spec.retry = Some(RetryPolicy {
        max_attempts: Some(3),
        backoff_seconds: Some(1),
        max_backoff_seconds: Some(2),
    });
}

fn label<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> &'a str {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map_or("", String::as_str)
}

fn job_finished(job: &Job) -> bool {
    job.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .flatten()
            .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
    })
}

fn job_succeeded(job: &Job) -> bool {
    job.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Complete" && c.status == "True")
    })
}

/// Waits for `run` to end and checks it `Failed` with reason `ProcessorFailed` and a message
/// naming `processor`, with no Job left running; returns the message.
async fn wait_for_processor_failed(
    env: &Env,
    op: &harness::Operator,
    run: &str,
    processor: &str,
    within: Duration,
) -> String {
    let ended = env
        .wait_for(run, within, |r| state(r).is_some_and(RunState::is_terminal))
        .await;
    let status = ended.status.unwrap();
    assert_eq!(
        status.state,
        Some(RunState::Failed),
        "{status:#?}\n{}",
        op.log()
    );
    let succeeded = harness::condition(&status, "Succeeded");
    assert_eq!(succeeded.reason, "ProcessorFailed", "{succeeded:?}");
    assert!(succeeded.message.contains(processor), "{succeeded:?}");
    assert!(
        env.jobs(run).await.iter().all(job_finished),
        "a Job is left running"
    );
    succeeded.message.clone()
}

/// Waits until the Pod of `processor`'s `attempt` is running, i.e. its process has started and
/// read the behaviour script.
pub(super) async fn wait_for_running_pod(
    env: &Env,
    run: &str,
    processor: &str,
    attempt: u32,
) -> Pod {
    let pod = env
        .poll(
            &format!("{processor} attempt {attempt} running"),
            Duration::from_secs(60),
            || async {
                env.pods(run).await.into_iter().find(|p| {
                    label(&p.metadata, "tipoff.dev/processor") == processor
                        && label(&p.metadata, "tipoff.dev/attempt") == attempt.to_string()
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                })
            },
        )
        .await;
    // The runner reports Running once it spawned the process; give the process a moment to
    // read its script before a test rewrites it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    pod
}

/// Waits for an `AttemptFailed` Event naming `what` (e.g. "raw-schedule attempt 1 failed
/// (MalformedResult)").
async fn wait_for_attempt_failed(env: &Env, what: &str) {
    env.poll(
        &format!("an AttemptFailed Event with {what:?}"),
        Duration::from_secs(30),
        || async {
            env.events()
                .await
                .into_iter()
                .any(|(reason, message)| reason == "AttemptFailed" && message.contains(what))
                .then_some(())
        },
    )
    .await;
}

/// Finished (processor, attempt) pairs of a run that succeeded.
async fn succeeded_jobs(env: &Env, run: &str) -> BTreeSet<(u8, String, u32)> {
    env.jobs(run)
        .await
        .iter()
        .filter(|j| job_succeeded(j))
        .map(|j| {
            (
                label(&j.metadata, "tipoff.dev/phase").parse().unwrap(),
                label(&j.metadata, "tipoff.dev/processor").to_owned(),
                label(&j.metadata, "tipoff.dev/attempt").parse().unwrap(),
            )
        })
        .collect()
}

/// Waits until `run` has a Job of `phase`.
async fn wait_for_phase_jobs(env: &Env, run: &str, phase: u8) {
    env.poll(
        &format!("phase {phase} Jobs of {run}"),
        Duration::from_secs(90),
        || async {
            env.jobs(run)
                .await
                .iter()
                .any(|j| label(&j.metadata, "tipoff.dev/phase") == phase.to_string())
                .then_some(())
        },
    )
    .await;
}

/// With the operator down: waits until every Job of `run` has finished and returns the ones
/// that succeeded.
async fn let_jobs_finish(env: &Env, run: &str) -> BTreeSet<(u8, String, u32)> {
    env.poll(
        &format!("every Job of {run} finished"),
        Duration::from_secs(60),
        || async { env.jobs(run).await.iter().all(job_finished).then_some(()) },
    )
    .await;
    succeeded_jobs(env, run).await
}

/// After a restart: within 10 s every Job in `finished` is in its PhaseCompletion's
/// `completed` list, and every phase all of whose expected processors are among them is
/// `Succeeded`. Returns how long that took.
async fn assert_recorded_within_10s(
    env: &Env,
    run: &str,
    finished: &BTreeSet<(u8, String, u32)>,
    op: &harness::Operator,
) -> Duration {
    let restarted = Instant::now();
    let deadline = restarted + Duration::from_secs(10);
    loop {
        let pcs = env.phase_completions(run).await;
        let missing: Vec<String> = finished
            .iter()
            .filter(|(phase, processor, attempt)| {
                !pcs.get(phase)
                    .and_then(|pc| pc.status.as_ref())
                    .is_some_and(|st| {
                        st.completed
                            .iter()
                            .any(|r| &r.processor == processor && r.attempt == *attempt)
                    })
            })
            .map(|(phase, processor, attempt)| format!("phase {phase} {processor} #{attempt}"))
            .chain(pcs.values().filter_map(|pc| {
                let all_done = pc.spec.expected.iter().all(|p| {
                    finished
                        .iter()
                        .any(|(phase, q, _)| *phase == pc.spec.phase && q == p)
                });
                let succeeded =
                    pc.status.as_ref().and_then(|s| s.state) == Some(PhaseState::Succeeded);
                (all_done && !succeeded).then(|| format!("phase {} not Succeeded", pc.spec.phase))
            }))
            .collect();
        if missing.is_empty() {
            return restarted.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "not recorded within 10 s of the restart: {missing:?}\n{}",
            op.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_finish_while_the_operator_is_down_are_recorded_within_10_seconds_of_restart() {
    // Seed: the orchestrator was down and nobody recorded what finished meanwhile.
    let env = Env::start(&with_sleep(&script("  {}\n"), 1500), None).await;
    let mut op = env.operator("op-a", false);
    env.create_run("down", Mode::Production).await;

    // Down while phase 3 runs (four processors in parallel, one depending on another): what
    // finishes is recorded, and the rest of the phase is started.
    wait_for_phase_jobs(&env, "down", 3).await;
    op.kill();
    let finished = let_jobs_finish(&env, "down").await;
    assert!(
        finished.iter().any(|(phase, _, _)| *phase == 3),
        "{finished:?}"
    );
    let op = env.operator("op-b", false);
    assert_recorded_within_10s(&env, "down", &finished, &op).await;

    // Down while phase 6 runs: both of its processors finish, so the whole phase (and the run)
    // ended while nobody watched.
    let mut op = op;
    wait_for_phase_jobs(&env, "down", 6).await;
    op.kill();
    let finished = let_jobs_finish(&env, "down").await;
    let op = env.operator("op-c", false);
    assert_recorded_within_10s(&env, "down", &finished, &op).await;
    let run = env
        .wait_for("down", Duration::from_secs(10), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    assert_eq!(state(&run), Some(RunState::Succeeded), "{:#?}", run.status);
    let attempts = attempts(&env, "down").await;
    assert_eq!(attempts.len(), TEST_PROCESSORS, "{attempts:?}");
    assert!(attempts.values().all(|a| a == &[1]), "{attempts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_deleted_while_running_is_retried_as_the_next_attempt() {
    let extra = "  schedule-scraper: {sleepMs: 20000}\n";
    let env = Env::start(&with_sleep(&script(extra), 50), None).await;
    let op = env.operator("op-a", false);
    env.create_run_with("deleted", Mode::Production, fast_retry)
        .await;
    wait_for_running_pod(&env, "deleted", "schedule-scraper", 1).await;
    // The ledger has seen the attempt running: only then is a missing Job a lost attempt.
    env.poll(
        "schedule-scraper recorded as running",
        Duration::from_secs(30),
        || async {
            env.phase_completions("deleted")
                .await
                .get(&1)
                .and_then(|pc| pc.status.as_ref())
                .is_some_and(|s| s.running.iter().any(|r| r.processor == "schedule-scraper"))
                .then_some(())
        },
    )
    .await;
    env.set_script(&with_sleep(&script("  {}\n"), 50));
    let jobs: Api<Job> = Api::namespaced(env.client.clone(), harness::NS);
    let name = env
        .jobs("deleted")
        .await
        .into_iter()
        .find(|j| label(&j.metadata, "tipoff.dev/processor") == "schedule-scraper")
        .and_then(|j| j.metadata.name)
        .unwrap();
    jobs.delete(
        &name,
        &DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();

    wait_for_attempt_failed(&env, "schedule-scraper attempt 1 failed (JobVanished)").await;
    let run = env
        .wait_for("deleted", Duration::from_secs(120), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    assert_eq!(
        state(&run),
        Some(RunState::Succeeded),
        "{:#?}\n{}",
        run.status,
        op.log()
    );
    let attempts = attempts(&env, "deleted").await;
    assert_eq!(attempts["schedule-scraper"], [2], "{attempts:?}");
    assert!(
        attempts
            .iter()
            .filter(|(p, _)| *p != "schedule-scraper")
            .all(|(_, a)| a == &[1]),
        "{attempts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_active_deadline_is_a_failed_attempt_and_is_retried() {
    let extra = "  raw-schedule: {outcome: hang}\n";
    let env = Env::start(&with_sleep(&script(extra), 50), None).await;
    // Processors without their own deadline get 4 s instead of 1800 s.
    let catalog = env.catalog_variant(
        "short-deadlines.yaml",
        &[("  deadlineSeconds: 1800\n", "  deadlineSeconds: 4\n")],
    );
    let op = env.operator_on("op-a", false, &catalog);
    env.create_run_with("overdue", Mode::Production, fast_retry)
        .await;
    wait_for_running_pod(&env, "overdue", "raw-schedule", 1).await;
    // Attempt 1 hangs; later attempts succeed.
    env.set_script(&with_sleep(&script("  {}\n"), 50));

    wait_for_attempt_failed(&env, "raw-schedule attempt 1 failed (DeadlineExceeded)").await;
    // Kubernetes (the Job's activeDeadlineSeconds), not the operator's 60 s grace, ended it.
    let first = env
        .jobs("overdue")
        .await
        .into_iter()
        .find(|j| {
            label(&j.metadata, "tipoff.dev/processor") == "raw-schedule"
                && label(&j.metadata, "tipoff.dev/attempt") == "1"
        })
        .unwrap();
    assert_eq!(
        first.spec.as_ref().unwrap().active_deadline_seconds,
        Some(4)
    );
    assert!(
        first
            .status
            .unwrap()
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| { c.type_ == "Failed" && c.reason.as_deref() == Some("DeadlineExceeded") }),
        "the Job itself failed on its deadline"
    );
    let run = env
        .wait_for("overdue", Duration::from_secs(60), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    assert_eq!(
        state(&run),
        Some(RunState::Succeeded),
        "{:#?}\n{}",
        run.status,
        op.log()
    );
    let attempts = attempts(&env, "overdue").await;
    assert_eq!(attempts["raw-schedule"], [1, 2], "{attempts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_hangs_on_every_attempt_fails_the_run_instead_of_staying_running() {
    let extra = "  raw-schedule: {outcome: hang}\n";
    let env = Env::start(&with_sleep(&script(extra), 50), None).await;
    let catalog = env.catalog_variant(
        "short-deadlines.yaml",
        &[("  deadlineSeconds: 1800\n", "  deadlineSeconds: 3\n")],
    );
    let op = env.operator_on("op-a", false, &catalog);
    env.create_run_with("hangs", Mode::Production, |spec| {
        spec.retry = Some(RetryPolicy {
            max_attempts: Some(2),
            backoff_seconds: Some(1),
            max_backoff_seconds: Some(1),
        });
    })
    .await;
    wait_for_processor_failed(&env, &op, "hangs", "raw-schedule", Duration::from_secs(60)).await;
    let attempts = attempts(&env, "hangs").await;
    assert_eq!(attempts["raw-schedule"], [1, 2], "{attempts:?}");
}

/// The processor contract's exit codes decide what a failure is: 75 (`EX_TEMPFAIL`, e.g. an
/// upstream API timing out) is retried as the next attempt, 65 (`EX_DATAERR`, bad data that a
/// retry cannot fix) fails the processor at once, and the run ends `Failed` with the reason
/// instead of burning its attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_exit_is_retried_and_a_permanent_exit_fails_the_run_at_once() {
    let extra = scripted("schedule-scraper", &[("failAttempts", "1")])
        + &scripted("raw-boxscores", &[("outcome", "fail"), ("exitCode", "65")]);
    let env = Env::start(&with_sleep(&script(&extra), 50), None).await;
    let op = env.operator("op-a", false);
    env.create_run_with("exits", Mode::Production, fast_retry)
        .await;
    let message = wait_for_processor_failed(
        &env,
        &op,
        "exits",
        "raw-boxscores",
        Duration::from_secs(120),
    )
    .await;
    assert!(message.contains("permanently"), "{message}");
    let attempts = attempts(&env, "exits").await;
    assert_eq!(attempts["schedule-scraper"], [1, 2], "{attempts:?}");
    assert_eq!(attempts["raw-boxscores"], [1], "not retried: {attempts:?}");
    let phase2 = env.phase_completions("exits").await.remove(&2).unwrap();
    let failed = &phase2.status.unwrap().failed;
    assert!(
        failed
            .iter()
            .any(|f| f.processor == "raw-boxscores" && f.exit_code == Some(65)),
        "{failed:#?}"
    );
}

/// A result over the 4 KiB limit (the kubelet keeps its first 4096 bytes) and a result that is
/// not JSON are each a failed attempt with a reason, retried as the next attempt; the operator
/// keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_results_are_failed_attempts_and_are_retried() {
    let oversized = "  schedule-scraper: {sleepMs: 1500, outcome: oversized}\n";
    let env = Env::start(&with_sleep(&script(oversized), 50), None).await;
    let op = env.operator("op-a", false);
    env.create_run_with("malformed", Mode::Production, fast_retry)
        .await;
    // Each first attempt reads the script while it names it; the next attempt reads the next.
    wait_for_running_pod(&env, "malformed", "schedule-scraper", 1).await;
    let malformed = "  raw-schedule: {sleepMs: 1500, outcome: malformed}\n";
    env.set_script(&with_sleep(&script(malformed), 50));
    wait_for_attempt_failed(&env, "schedule-scraper attempt 1 failed (ResultTooLarge)").await;
    wait_for_running_pod(&env, "malformed", "raw-schedule", 1).await;
    env.set_script(&with_sleep(&script("  {}\n"), 50));

    wait_for_attempt_failed(&env, "raw-schedule attempt 1 failed (MalformedResult)").await;
    let run = env
        .wait_for("malformed", Duration::from_secs(120), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    assert_eq!(
        state(&run),
        Some(RunState::Succeeded),
        "{:#?}\n{}",
        run.status,
        op.log()
    );
    let attempts = attempts(&env, "malformed").await;
    assert_eq!(attempts["schedule-scraper"], [1, 2], "{attempts:?}");
    assert_eq!(attempts["raw-schedule"], [1, 2], "{attempts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_and_delayed_watches_neither_stall_the_run_nor_duplicate_jobs() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 150), None).await;
    let op = env.operator("op-a", false);
    env.cluster
        .faults()
        .set_watch_delay(Duration::from_millis(300));
    env.create_run("watches", Mode::Production).await;
    // End every watch stream a few times mid-run; once, also forget the watch window so the
    // resume gets 410 Gone and the operator must relist.
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        if i == 3 {
            env.cluster.faults().compact();
        }
        env.cluster.faults().drop_watches();
    }
    let run = env
        .wait_for("watches", Duration::from_secs(120), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    assert_eq!(
        state(&run),
        Some(RunState::Succeeded),
        "{:#?}\n{}",
        run.status,
        op.log()
    );
    let attempts = attempts(&env, "watches").await;
    // The Events name each retried attempt's cause (the settled-Job bug showed as JobVanished).
    let events = env.events().await;
    assert_eq!(attempts.len(), TEST_PROCESSORS, "{attempts:?}");
    assert!(
        attempts.values().all(|a| a == &[1]),
        "a stale cache must never duplicate a Job: {attempts:?}\n{events:#?}\n{}",
        op.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_day_run_waits_on_a_failed_dependency_until_an_audited_override() {
    // Seed 002: team-defense-zone-analysis has no play-by-play before the games are played.
    let extra = "  team-defense-zone-analysis: {outcome: fail, exitCode: 65}\n";
    let env = Env::start(&with_sleep(&script(extra), 50), None).await;
    let op = env.operator("op-a", false);
    env.create_run("sameday", Mode::SameDay).await;
    let blocked = env
        .wait_for("sameday", Duration::from_secs(120), |r| {
            state(r) == Some(RunState::Blocked)
        })
        .await;
    let status = blocked.status.unwrap();
    let condition = harness::condition(&status, "Blocked");
    assert_eq!(condition.reason, "DependencyFailed", "{condition:?}");
    assert!(
        !attempts(&env, "sameday")
            .await
            .contains_key("ml-feature-store")
    );

    let patch = serde_json::json!({"spec": {"overrides": [{
        "type": "SkipDependencyCheck",
        "processor": "ml-feature-store",
        "reason": "SameDay: no play-by-play before tip-off (approved by on-call, INC-2)",
    }]}});
    env.runs()
        .patch("sameday", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();

    let run = env
        .wait_for("sameday", Duration::from_secs(120), |r| {
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
    let applied = harness::condition(&status, "OverridesApplied");
    assert!(applied.is_true(), "{applied:?}");
    assert!(applied.message.contains("ml-feature-store"), "{applied:?}");
    env.poll(
        "an OverrideApplied Event",
        Duration::from_secs(10),
        || async {
            env.events()
                .await
                .into_iter()
                .any(|(reason, _)| reason == "OverrideApplied")
                .then_some(())
        },
    )
    .await;
    let events = env.kubectl(&["get", "events"]);
    assert!(events.contains("OverrideApplied"), "{events}");
    assert_eq!(attempts(&env, "sameday").await["ml-feature-store"], [1]);
}
