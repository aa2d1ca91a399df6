//! PipelineSchedule end to end: the real operator on dev/cluster, with its schedules' clock
//! read from a file (`--test-clock-file`, test only) so days pass in seconds, creates each game
//! day's run, and each run goes through the six-phase test catalog with the test processor.
//! Covers the seed-003 outage (the operator down over several game days, then catch-up), a
//! day without games, and two replicas.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use tipoff_crds::pipeline_schedule::{LABEL_GAME_DAYS, LABEL_SCHEDULE};
use tipoff_crds::{
    ConcurrencyPolicy, MissReason, PipelineRun, PipelineSchedule, PipelineScheduleSpec, Release,
    RunState, SkipReason,
};

use super::harness::{COMMIT, DIGEST, Env, NS, Operator, REPO, state, test_catalog};
use super::{script, with_sleep};

fn schedules(env: &Env) -> Api<PipelineSchedule> {
    Api::namespaced(env.client.clone(), NS)
}

/// The test clock's file, set to `now`.
pub(crate) fn set_clock(env: &Env, now: &str) -> PathBuf {
    let path = env.dir.path().join("now");
    let tmp = env.dir.path().join("now.new");
    std::fs::write(&tmp, now).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// An operator whose schedules read the test clock.
pub(crate) fn operator(env: &Env, name: &str, leader_elect: bool) -> Operator {
    let clock = env.dir.path().join("now").display().to_string();
    env.operator_with(
        name,
        leader_elect,
        &test_catalog(),
        &["--test-clock-file", &clock],
    )
}

/// The game-day ConfigMap: every date from `from` to `to` except `without`.
pub(crate) async fn game_days(env: &Env, from: &str, to: &str, without: &[&str]) {
    let (from, to): (jiff::civil::Date, jiff::civil::Date) =
        (from.parse().unwrap(), to.parse().unwrap());
    let mut text = String::from("# test season\n");
    let mut d = from;
    while d <= to {
        if !without.contains(&d.to_string().as_str()) {
            text.push_str(&format!("{d}\n"));
        }
        d = d.tomorrow().unwrap();
    }
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "games", "labels": {LABEL_GAME_DAYS: "true"}},
        "data": {"dates": text},
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(env.client.clone(), NS)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
}

pub(crate) async fn create_schedule(env: &Env, edit: impl FnOnce(&mut PipelineScheduleSpec)) {
    let mut spec: PipelineScheduleSpec = serde_json::from_value(serde_json::json!({
        "gameDays": {"configMap": "games"},
        "release": Release::pinned(format!("{REPO}@{DIGEST}"), COMMIT),
    }))
    .unwrap();
    edit(&mut spec);
    schedules(env)
        .create(&PostParams::default(), &PipelineSchedule::new("nba", spec))
        .await
        .unwrap();
}

/// The schedule's runs, by date (a date with two runs fails the test).
pub(super) async fn runs_by_date(env: &Env) -> BTreeMap<String, PipelineRun> {
    let mut out = BTreeMap::new();
    for run in env
        .runs()
        .list(&ListParams::default().labels(&format!("{LABEL_SCHEDULE}=nba")))
        .await
        .unwrap()
        .items
    {
        let date = run.spec.date.clone();
        if let Some(other) = out.insert(date.clone(), run) {
            panic!("two runs for {date}: {} and another", other.name_any());
        }
    }
    out
}

/// Waits until the schedule's runs are exactly `dates`, all Succeeded, checking meanwhile
/// that (Forbid) no two are ever in flight at once.
pub(super) async fn wait_for_dates(
    env: &Env,
    dates: &[&str],
    timeout: Duration,
) -> BTreeMap<String, PipelineRun> {
    let deadline = Instant::now() + timeout;
    loop {
        let runs = runs_by_date(env).await;
        let in_flight: Vec<&String> = runs
            .iter()
            .filter(|(_, r)| !state(r).is_some_and(RunState::is_terminal))
            .map(|(d, _)| d)
            .collect();
        assert!(
            in_flight.len() <= 1,
            "Forbid: two runs in flight: {in_flight:?}"
        );
        let done = runs.keys().map(String::as_str).eq(dates.iter().copied())
            && runs.values().all(|r| state(r) == Some(RunState::Succeeded));
        if done {
            return runs;
        }
        assert!(
            Instant::now() < deadline,
            "the schedule's runs did not become {dates:?} in {timeout:?}: {:?}",
            runs.iter()
                .map(|(d, r)| (d.clone(), state(r)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn wait_schedule(
    env: &Env,
    timeout: Duration,
    done: impl Fn(&PipelineSchedule) -> bool,
) -> PipelineSchedule {
    let deadline = Instant::now() + timeout;
    loop {
        let s = schedules(env).get("nba").await.unwrap();
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "schedule did not get there in {timeout:?}; status: {:#?}",
            s.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_down_for_days_catches_up_every_game_day_in_the_window_oldest_first() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 0), None).await;
    // Jan 27 has no games.
    game_days(&env, "2026-01-20", "2026-02-10", &["2026-01-27"]).await;
    set_clock(&env, "2026-01-26T12:00:00Z");
    let mut op = operator(&env, "op-a", false);
    create_schedule(&env, |s| {
        s.start_date = Some("2026-01-24".into());
        s.catch_up_window = "72h".into();
    })
    .await;
    // The 24th (due the 25th 06:00 EST) and the 25th (due the 26th) run, one after the other.
    wait_for_dates(
        &env,
        &["2026-01-24", "2026-01-25"],
        Duration::from_secs(120),
    )
    .await;

    // Seed 003: the operator goes down on the 26th and comes back on Feb 1 at 07:00 EST.
    op.kill();
    set_clock(&env, "2026-02-01T12:00:00Z");
    let op = operator(&env, "op-b", false);
    let dates = [
        "2026-01-24",
        "2026-01-25",
        "2026-01-29",
        "2026-01-30",
        "2026-01-31",
    ];
    let runs = wait_for_dates(&env, &dates, Duration::from_secs(300)).await;
    // Oldest first: each caught-up run was created once the one before it had ended.
    let created: Vec<_> = dates[2..]
        .iter()
        .map(|d| runs[*d].metadata.creation_timestamp.clone().unwrap().0)
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "{created:?}");
    for w in dates[2..].windows(2) {
        let ended = runs[w[0]]
            .status
            .as_ref()
            .unwrap()
            .completion_time
            .clone()
            .unwrap()
            .0;
        let next = runs[w[1]].metadata.creation_timestamp.clone().unwrap().0;
        assert!(ended <= next, "{} created before {} ended", w[1], w[0]);
    }

    // Beyond the 72h window: the 26th and the 28th are missed; the 27th had no games.
    let s = wait_schedule(&env, Duration::from_secs(30), |s| {
        s.status.as_ref().is_some_and(|st| {
            st.missed_count == 2 && st.last_scheduled_date.as_deref() == Some("2026-01-31")
        })
    })
    .await;
    let st = s.status.unwrap();
    let missed: Vec<_> = st
        .missed
        .iter()
        .map(|m| (m.date.as_str(), m.reason))
        .collect();
    assert_eq!(
        missed,
        [
            ("2026-01-28", MissReason::OutsideCatchUpWindow),
            ("2026-01-26", MissReason::OutsideCatchUpWindow)
        ]
    );
    assert!(
        st.skipped
            .iter()
            .any(|k| k.date == "2026-01-27" && k.reason == SkipReason::NoGames),
        "{:?}",
        st.skipped
    );
    assert_eq!(st.next_scheduled_date.as_deref(), Some("2026-02-01"));
    assert_eq!(st.overdue, 0);
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert!(ready.is_true(), "{ready:?}");

    let events = env.events().await;
    let missed_event = events
        .iter()
        .find(|(r, _)| r == "RunMissed")
        .expect("a RunMissed Event");
    assert!(
        missed_event.1.contains("2026-01-26") && missed_event.1.contains("2026-01-28"),
        "{missed_event:?}"
    );
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "DateSkipped" && m.contains("2026-01-27"))
    );
    let created_events = events.iter().filter(|(r, _)| r == "RunCreated").count();
    assert_eq!(created_events, 5, "one RunCreated Event per run");

    // The metrics an alert reads.
    let metrics = env
        .poll("the schedule metrics", Duration::from_secs(10), || async {
            op.get("/metrics")
                .map(|(_, body)| body)
                .filter(|b| b.contains("tipoff_schedule_missed_runs"))
        })
        .await;
    assert!(
        metrics.contains(r#"tipoff_schedule_missed_runs{namespace="default",schedule="nba"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tipoff_schedule_overdue_runs{namespace="default",schedule="nba"} 0"#),
        "{metrics}"
    );

    // kubectl shows the schedule's columns.
    let table = env.kubectl(&["get", "pipelineschedules"]);
    assert!(
        table.contains("MISSED") && table.contains("2026-01-31"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_schedule_creates_nothing_and_catches_up_when_resumed() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 0), None).await;
    game_days(&env, "2026-01-20", "2026-02-10", &[]).await;
    set_clock(&env, "2026-01-31T12:00:00Z");
    let _op = operator(&env, "op-a", false);
    create_schedule(&env, |s| {
        s.start_date = Some("2026-01-29".into());
        s.suspend = true;
        s.concurrency_policy = ConcurrencyPolicy::Allow;
    })
    .await;
    // Due: the 29th and the 30th. Suspended: overdue, no run, Ready False.
    let s = wait_schedule(&env, Duration::from_secs(30), |s| {
        s.status.as_ref().is_some_and(|st| st.overdue == 2)
    })
    .await;
    let ready = s
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.is_true(), ready.reason.as_str()),
        (false, "Suspended")
    );
    assert!(runs_by_date(&env).await.is_empty());

    let mut s = schedules(&env).get("nba").await.unwrap();
    s.spec.suspend = false;
    schedules(&env)
        .replace("nba", &PostParams::default(), &s)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let runs = runs_by_date(&env).await;
        if runs
            .keys()
            .map(String::as_str)
            .eq(["2026-01-29", "2026-01-30"])
            && runs.values().all(|r| state(r) == Some(RunState::Succeeded))
        {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", runs.keys());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_create_a_date_twice_across_a_takeover() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 0), None).await;
    game_days(&env, "2026-01-20", "2026-02-10", &[]).await;
    set_clock(&env, "2026-01-30T12:00:00Z");
    // Two replicas as deployed (leader election), and a third without a Lease, which a
    // misconfiguration could start: the date key alone must keep one run per date.
    let mut a = operator(&env, "op-a", true);
    let mut b = operator(&env, "op-b", true);
    let _rogue = operator(&env, "op-rogue", false);
    create_schedule(&env, |s| {
        s.start_date = Some("2026-01-26".into());
        s.concurrency_policy = ConcurrencyPolicy::Allow;
    })
    .await;
    // Due inside 72h: the 27th, 28th and 29th (the 26th, due the 27th 11:00Z, is outside).
    let want = ["2026-01-27", "2026-01-28", "2026-01-29"];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let runs = runs_by_date(&env).await;
        if runs.keys().map(String::as_str).eq(want) {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", runs.keys());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The leader dies; the next day falls due; the standby (or the rogue) creates it once.
    if a.log().contains("became leader") {
        a.kill();
    } else {
        assert!(b.log().contains("became leader"), "one of them leads");
        b.kill();
    }
    set_clock(&env, "2026-01-31T12:00:00Z");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let runs = runs_by_date(&env).await;
        if runs.contains_key("2026-01-30") {
            assert_eq!(runs.len(), 4, "{:?}", runs.keys());
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", runs.keys());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A few more seconds of three reconcilers: still one run per date.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(runs_by_date(&env).await.len(), 4);
    let all = env.runs().list(&ListParams::default()).await.unwrap().items;
    assert_eq!(
        all.len(),
        4,
        "{:?}",
        all.iter().map(|r| r.name_any()).collect::<Vec<_>>()
    );
    drop(b);
}

/// The US clock changes on 2026-03-08 (02:00 EST -> 03:00 EDT) and 2026-11-01 (02:00 EDT ->
/// 01:00 EST). A schedule due at 02:30 (a time Mar 8 does not have) and one due at 01:30 (a
/// time Nov 1 has twice) each walk a week across the change, the clock stepped by 1 h 50 min
/// at a time under the running operator: every game day gets exactly one run, in date order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_across_each_dst_change_neither_skips_nor_doubles_a_date() {
    for (time, from, to, start, end) in [
        (
            "02:30",
            "2026-03-05",
            "2026-03-10",
            "2026-03-06T05:00:00Z",
            "2026-03-11T12:00:00Z",
        ),
        (
            "01:30",
            "2026-10-29",
            "2026-11-03",
            "2026-10-30T04:00:00Z",
            "2026-11-04T12:00:00Z",
        ),
    ] {
        let env = Env::start(&with_sleep(&script("  {}\n"), 0), None).await;
        game_days(&env, from, to, &[]).await;
        set_clock(&env, start);
        let _op = operator(&env, "op-a", false);
        create_schedule(&env, |s| {
            s.production_time = time.into();
            s.start_date = Some(from.into());
        })
        .await;
        let mut now: jiff::Timestamp = start.parse().unwrap();
        let end: jiff::Timestamp = end.parse().unwrap();
        while now < end {
            now = now
                .checked_add(jiff::SignedDuration::from_mins(110))
                .unwrap()
                .min(end);
            set_clock(&env, &now.to_string());
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let (first, last): (jiff::civil::Date, jiff::civil::Date) =
            (from.parse().unwrap(), to.parse().unwrap());
        let dates: Vec<String> = first
            .series(jiff::ToSpan::days(1))
            .take_while(|d| *d <= last)
            .map(|d| d.to_string())
            .collect();
        let dates: Vec<&str> = dates.iter().map(String::as_str).collect();
        wait_for_dates(&env, &dates, Duration::from_secs(180)).await;
        // One run per date: the names are keyed by date, and nothing else was created.
        let runs = Api::<PipelineRun>::namespaced(env.client.clone(), NS)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        assert_eq!(
            runs.len(),
            dates.len(),
            "{time}: {:?}",
            runs.iter().map(|r| r.name_any()).collect::<Vec<_>>()
        );
        let created = env
            .events()
            .await
            .iter()
            .filter(|(r, _)| r == "RunCreated")
            .count();
        assert_eq!(
            created,
            dates.len(),
            "{time}: one RunCreated Event per date"
        );
    }
}
