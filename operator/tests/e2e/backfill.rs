//! PipelineBackfill end to end: the real operator on dev/cluster creates the runs of a range,
//! a few at a time, and each run goes through the six-phase test catalog with the test
//! processor. Covers `maxConcurrent`, the `Failed` and `Drifted` reprocess policies, a date
//! whose run is in flight, and an overlapping backfill refused.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use tipoff_crds::pipeline_backfill::{ANNOTATION_REPLACES, LABEL_BACKFILL};
use tipoff_crds::{
    BackfillState, DateReason, DateState, Mode, PipelineBackfill, PipelineBackfillSpec,
    PipelineRun, Release, Reprocess, RunState,
};

use super::harness::{COMMIT, DIGEST, Env, NS, REPO, state};
use super::{script, scripted, with_sleep};

fn backfills(env: &Env) -> Api<PipelineBackfill> {
    Api::namespaced(env.client.clone(), NS)
}

pub(crate) async fn create_backfill(
    env: &Env,
    name: &str,
    from: &str,
    to: &str,
    edit: impl FnOnce(&mut PipelineBackfillSpec),
) -> PipelineBackfill {
    let mut spec: PipelineBackfillSpec = serde_json::from_value(serde_json::json!({
        "from": from, "to": to,
        "release": Release::pinned(format!("{REPO}@{DIGEST}"), COMMIT),
    }))
    .unwrap();
    edit(&mut spec);
    backfills(env)
        .create(&PostParams::default(), &PipelineBackfill::new(name, spec))
        .await
        .unwrap()
}

pub(crate) async fn wait_backfill(
    env: &Env,
    name: &str,
    timeout: Duration,
    done: impl Fn(&PipelineBackfill) -> bool,
) -> PipelineBackfill {
    let deadline = Instant::now() + timeout;
    loop {
        let b = backfills(env).get(name).await.unwrap();
        if done(&b) {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "backfill {name} did not get there in {timeout:?}; status: {:#?}",
            b.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(super) fn backfill_state(b: &PipelineBackfill) -> Option<BackfillState> {
    b.status.as_ref().and_then(|s| s.state)
}

/// The runs a backfill created, by date.
async fn runs_of(env: &Env, backfill: &str) -> BTreeMap<String, PipelineRun> {
    env.runs()
        .list(&ListParams::default().labels(&format!("{LABEL_BACKFILL}={backfill}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| (r.spec.date.clone(), r))
        .collect()
}

/// `(state, reason, run)` of every date of the backfill's ledger.
fn ledger(
    b: &PipelineBackfill,
) -> BTreeMap<String, (DateState, Option<DateReason>, Option<String>)> {
    b.status
        .iter()
        .flat_map(|s| &s.dates)
        .map(|d| (d.date.clone(), (d.state, d.reason, d.run.clone())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_of_twenty_dates_never_has_more_than_three_runs_in_flight() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 30), None).await;
    let op = env.operator("op-a", false);
    let created = create_backfill(&env, "jan", "2026-01-01", "2026-01-20", |s| {
        s.max_concurrent = 3;
    })
    .await;

    // Watch the runs while it goes: never more than three without an end.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut most_in_flight = 0;
    let mut seen_eta = false;
    let done = loop {
        let runs = runs_of(&env, "jan").await;
        let in_flight = runs
            .values()
            .filter(|r| !state(r).is_some_and(RunState::is_terminal))
            .count();
        most_in_flight = most_in_flight.max(in_flight);
        assert!(
            in_flight <= 3,
            "{in_flight} runs in flight: {:?}",
            runs.iter()
                .map(|(d, r)| (d.clone(), state(r)))
                .collect::<Vec<_>>()
        );
        let b = backfills(&env).get("jan").await.unwrap();
        seen_eta |= b
            .status
            .as_ref()
            .is_some_and(|s| s.estimated_completion_time.is_some());
        if backfill_state(&b).is_some_and(BackfillState::is_terminal) {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "the backfill did not end: {:#?}\n{}",
            b.status,
            op.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(most_in_flight, 3, "the cap was reached and held");
    assert!(seen_eta, "an ETA was shown while it ran");

    let status = done.status.clone().unwrap();
    assert_eq!(status.state, Some(BackfillState::Succeeded), "{status:#?}");
    let c = status.counts;
    assert_eq!(
        (
            c.targeted,
            c.succeeded,
            c.failed,
            c.skipped,
            c.pending,
            c.running
        ),
        (20, 20, 0, 0, 0, 0)
    );
    assert_eq!(status.progress.as_deref(), Some("20/20"));
    assert!(status.completion_time.is_some());
    assert!(status.estimated_completion_time.is_none());
    let complete = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Complete")
        .unwrap();
    assert!(complete.is_true(), "{complete:?}");

    // One run per date, owned by the backfill, in Backfill mode, named after it.
    let runs = runs_of(&env, "jan").await;
    assert_eq!(runs.len(), 20);
    for (date, run) in &runs {
        assert_eq!(run.name_any(), format!("jan-{date}"));
        assert_eq!(run.spec.mode, Mode::Backfill);
        assert_eq!(state(run), Some(RunState::Succeeded));
        let owner = &run.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), Some(owner.uid.as_str())),
            ("PipelineBackfill", created.metadata.uid.as_deref())
        );
    }
    // Oldest first: each date's run was created no later than the next date's.
    let created_at: Vec<_> = runs
        .values()
        .map(|r| r.metadata.creation_timestamp.clone().unwrap().0)
        .collect();
    assert!(
        created_at.windows(2).all(|w| w[0] <= w[1]),
        "{created_at:?}"
    );

    let table = env.kubectl(&["get", "pipelinebackfills"]);
    for column in [
        "FROM",
        "TO",
        "REPROCESS",
        "DONE",
        "RUNNING",
        "FAILED",
        "SKIPPED",
        "STATE",
        "ETA",
    ] {
        assert!(table.contains(column), "{table}");
    }
    assert!(
        table.contains("2026-01-01") && table.contains("20/20") && table.contains("Succeeded"),
        "{table}"
    );
    let events = env.events().await;
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "BackfillStateChanged" && m.starts_with("Succeeded")),
        "{events:#?}"
    );
    // A status write when a date starts or ends, not on every reconcile (each of a run's own
    // status writes wakes the backfill): at most one per date started and one per date ended.
    let writes = op
        .log()
        .lines()
        .filter(|l| l.contains("reconciled backfill") && l.contains("\"status_written\":true"))
        .count();
    eprintln!("backfill status writes: {writes}");
    assert!(
        (1..=40).contains(&writes),
        "{writes} backfill status writes"
    );
    let (_, metrics) = op.get("/metrics").unwrap();
    assert!(
        metrics.contains("tipoff_backfill_runs_created_total 20"),
        "{}",
        op.log()
            .lines()
            .filter(|l| l.contains("PipelineRun") || l.contains("backfill"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        metrics.contains("tipoff_backfill_dates{state=\"Succeeded\"} 20"),
        "{metrics}"
    );
}

/// A run of `date` pinned to `commit`, left to end; returns its final state.
async fn run_to_end(env: &Env, date: &str, commit: &str) -> RunState {
    let name = format!("nba-{date}");
    env.create_run_on(&name, Mode::Backfill, date, commit).await;
    let run = env
        .wait_for(&name, Duration::from_secs(120), |r| {
            state(r).is_some_and(RunState::is_terminal)
        })
        .await;
    state(&run).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprocess_failed_then_drifted_run_exactly_the_right_dates_beside_the_old_runs() {
    const OLD: &str = "0123abcd";
    let ok = with_sleep(&script("  {}\n"), 20);
    let failing = with_sleep(
        &script(&scripted(
            "schedule-scraper",
            &[("outcome", "fail"), ("exitCode", "65")],
        )),
        20,
    );
    let env = Env::start(&failing, None).await;
    let op = env.operator("op-a", false);

    // Feb 1 and 5 failed; Feb 2 and 6 succeeded; Feb 3 succeeded on an older commit (another
    // pin, and CodeDrift: the processor reports the current commit); Feb 4 never ran.
    for date in ["2026-02-01", "2026-02-05"] {
        assert_eq!(run_to_end(&env, date, COMMIT).await, RunState::Failed);
    }
    env.set_script(&ok);
    for (date, commit) in [
        ("2026-02-02", COMMIT),
        ("2026-02-03", OLD),
        ("2026-02-06", COMMIT),
    ] {
        assert_eq!(run_to_end(&env, date, commit).await, RunState::Succeeded);
    }

    // reprocess: Failed runs Feb 1 and 5 again, and nothing else.
    create_backfill(&env, "fix-failed", "2026-02-01", "2026-02-06", |s| {
        s.reprocess = Reprocess::Failed;
    })
    .await;
    let b = wait_backfill(&env, "fix-failed", Duration::from_secs(300), |b| {
        backfill_state(b).is_some_and(BackfillState::is_terminal)
    })
    .await;
    assert_eq!(
        backfill_state(&b),
        Some(BackfillState::Succeeded),
        "{:#?}\n{}",
        b.status,
        op.log()
    );
    let runs = runs_of(&env, "fix-failed").await;
    if runs.len() != 2 {
        // For the diagnosis of a rare InFlight verdict (see .config/nextest.toml): when the
        // backfill was created, and when each older run was created and ended.
        let all = Api::<PipelineRun>::namespaced(env.client.clone(), NS)
            .list(&Default::default())
            .await
            .unwrap();
        for r in all.items {
            let st = r.status.as_ref();
            eprintln!(
                "run {}: created {:?}, state {:?}, completionTime {:?}",
                r.name_any(),
                r.metadata.creation_timestamp,
                st.and_then(|s| s.state),
                st.and_then(|s| s.completion_time.clone())
            );
        }
        eprintln!("backfill created {:?}", b.metadata.creation_timestamp);
    }
    assert_eq!(
        runs.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from(["2026-02-01".to_owned(), "2026-02-05".to_owned()]),
        "{:#?}\n{}",
        b.status,
        op.log()
    );
    let l = ledger(&b);
    let skip = |reason, run: &str| (DateState::Skipped, Some(reason), Some(run.to_owned()));
    assert_eq!(
        l["2026-02-02"],
        skip(DateReason::AlreadySucceeded, "nba-2026-02-02")
    );
    assert_eq!(
        l["2026-02-03"],
        skip(DateReason::AlreadySucceeded, "nba-2026-02-03")
    );
    assert_eq!(
        l["2026-02-04"],
        (DateState::Skipped, Some(DateReason::NoRun), None)
    );
    assert_eq!(
        l["2026-02-06"],
        skip(DateReason::AlreadySucceeded, "nba-2026-02-06")
    );
    assert_eq!(
        l["2026-02-01"],
        (
            DateState::Succeeded,
            None,
            Some("fix-failed-2026-02-01".to_owned())
        )
    );
    // The replaced run stays, Failed, and the new one names it.
    let new = &runs["2026-02-01"];
    assert_eq!(new.annotations()[ANNOTATION_REPLACES], "nba-2026-02-01");
    let old = env.runs().get("nba-2026-02-01").await.unwrap();
    assert_eq!(state(&old), Some(RunState::Failed));
    let c = b.status.as_ref().unwrap().counts;
    assert_eq!((c.targeted, c.succeeded, c.skipped), (2, 2, 4));

    // reprocess: Drifted (after that one ended, so they do not overlap) runs Feb 3 only: the
    // latest run of every other date ran the pinned code, and Feb 4 has no run.
    create_backfill(&env, "fix-drift", "2026-02-01", "2026-02-06", |s| {
        s.reprocess = Reprocess::Drifted;
    })
    .await;
    let b = wait_backfill(&env, "fix-drift", Duration::from_secs(300), |b| {
        backfill_state(b).is_some_and(BackfillState::is_terminal)
    })
    .await;
    assert_eq!(
        backfill_state(&b),
        Some(BackfillState::Succeeded),
        "{:#?}",
        b.status
    );
    let runs = runs_of(&env, "fix-drift").await;
    assert_eq!(runs.keys().collect::<Vec<_>>(), ["2026-02-03"]);
    assert_eq!(
        runs["2026-02-03"].annotations()[ANNOTATION_REPLACES],
        "nba-2026-02-03"
    );
    let l = ledger(&b);
    assert_eq!(
        l["2026-02-01"],
        skip(DateReason::NotDrifted, "fix-failed-2026-02-01")
    );
    assert_eq!(
        l["2026-02-02"],
        skip(DateReason::NotDrifted, "nba-2026-02-02")
    );
    assert_eq!(
        l["2026-02-04"],
        (DateState::Skipped, Some(DateReason::NoRun), None)
    );
    assert_eq!(
        l["2026-02-05"],
        skip(DateReason::NotDrifted, "fix-failed-2026-02-05")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_in_flight_is_skipped_and_an_overlapping_backfill_is_refused_until_the_first_ends() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 300), None).await;
    let _op = env.operator("op-a", false);
    // Mar 2 has a run in flight: suspended before it started, it holds the date.
    env.create_run_with("nba-2026-03-02", Mode::Production, |s| {
        s.date = "2026-03-02".into();
        s.suspend = true;
    })
    .await;
    env.wait_for("nba-2026-03-02", Duration::from_secs(30), |r| {
        state(r) == Some(RunState::Suspended)
    })
    .await;

    create_backfill(&env, "first", "2026-03-01", "2026-03-03", |_| {}).await;
    let first = wait_backfill(&env, "first", Duration::from_secs(30), |b| {
        backfill_state(b) == Some(BackfillState::Running)
    })
    .await;
    assert_eq!(
        ledger(&first)["2026-03-02"],
        (
            DateState::Skipped,
            Some(DateReason::InFlight),
            Some("nba-2026-03-02".to_owned())
        )
    );

    // A second backfill sharing Mar 3 is refused while the first one runs.
    create_backfill(&env, "second", "2026-03-03", "2026-03-04", |_| {}).await;
    let second = wait_backfill(&env, "second", Duration::from_secs(30), |b| {
        backfill_state(b) == Some(BackfillState::Blocked)
    })
    .await;
    let blocked = second
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Blocked")
        .unwrap();
    assert!(blocked.is_true());
    assert_eq!(blocked.reason, "OverlapsBackfill");
    assert!(
        blocked.message.contains("first (2026-03-01 to 2026-03-03)"),
        "{}",
        blocked.message
    );
    let first_now = backfills(&env).get("first").await.unwrap();
    assert!(
        !backfill_state(&first_now).is_some_and(BackfillState::is_terminal),
        "the first backfill must still be running for the refusal to mean anything"
    );
    assert!(
        runs_of(&env, "second").await.is_empty(),
        "a refused backfill creates no run"
    );
    assert!(
        env.events()
            .await
            .iter()
            .any(|(r, m)| r == "BackfillStateChanged" && m.contains("overlap")),
        "a Warning Event says why"
    );

    // The first ends with Mar 2 still skipped (its run is still there, suspended).
    let first = wait_backfill(&env, "first", Duration::from_secs(180), |b| {
        backfill_state(b).is_some_and(BackfillState::is_terminal)
    })
    .await;
    assert_eq!(backfill_state(&first), Some(BackfillState::Succeeded));
    let c = first.status.as_ref().unwrap().counts;
    assert_eq!((c.targeted, c.succeeded, c.skipped), (2, 2, 1));
    assert_eq!(
        runs_of(&env, "first").await.keys().collect::<Vec<_>>(),
        ["2026-03-01", "2026-03-03"]
    );

    // Then the second runs: Mar 3's run was in flight when it was created (the first's), so
    // only Mar 4 is run.
    let second = wait_backfill(&env, "second", Duration::from_secs(180), |b| {
        backfill_state(b).is_some_and(BackfillState::is_terminal)
    })
    .await;
    assert_eq!(
        backfill_state(&second),
        Some(BackfillState::Succeeded),
        "{:#?}",
        second.status
    );
    assert_eq!(
        ledger(&second)["2026-03-03"],
        (
            DateState::Skipped,
            Some(DateReason::InFlight),
            Some("first-2026-03-03".to_owned())
        )
    );
    assert_eq!(
        runs_of(&env, "second").await.keys().collect::<Vec<_>>(),
        ["2026-03-04"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_mid_backfill_resumes_it_from_the_runs_with_no_duplicate() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 100), None).await;
    let mut op = env.operator("op-a", false);
    create_backfill(&env, "restart", "2026-04-01", "2026-04-08", |s| {
        s.max_concurrent = 2;
    })
    .await;
    // Killed (SIGKILL) as soon as its first runs exist: whether it wrote the status that
    // counts them is a race, and must not matter.
    env.poll("the first runs", Duration::from_secs(60), || async {
        (runs_of(&env, "restart").await.len() >= 2).then_some(())
    })
    .await;
    op.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let op = env.operator("op-b", false);

    let deadline = Instant::now() + Duration::from_secs(300);
    let done = loop {
        let runs = env
            .runs()
            .list(&ListParams::default().labels(&format!("{LABEL_BACKFILL}=restart")))
            .await
            .unwrap()
            .items;
        let dates: BTreeSet<&str> = runs.iter().map(|r| r.spec.date.as_str()).collect();
        assert_eq!(dates.len(), runs.len(), "two runs of one date");
        let in_flight = runs
            .iter()
            .filter(|r| !state(r).is_some_and(RunState::is_terminal))
            .count();
        assert!(in_flight <= 2, "{in_flight} runs in flight");
        let b = backfills(&env).get("restart").await.unwrap();
        if backfill_state(&b).is_some_and(BackfillState::is_terminal) {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "did not end: {:#?}\n{}",
            b.status,
            op.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(backfill_state(&done), Some(BackfillState::Succeeded));
    assert_eq!(runs_of(&env, "restart").await.len(), 8);
    let c = done.status.unwrap().counts;
    assert_eq!((c.targeted, c.succeeded), (8, 8));
}
