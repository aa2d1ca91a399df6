//! `tipoff dashboard` in headless Chromium against dev/cluster: a season of 150 game days whose
//! runs are in known states (statuses written directly, as the operator would), the `tipoff`
//! binary serving the page, and the page driven over W3C WebDriver. Asserts the cells' states
//! and symbols from the DOM, the drill-down, a date's summary, keyboard navigation, a live
//! update, and the backfill dialog (its YAML, a 403 shown plainly, and the create after
//! confirmation). Prints the 150-date render time measured in the browser.
//!
//! Needs Debian's chromium and chromium-driver (`scripts/lib/chromium.sh`; scripts/test.sh runs
//! it): without them the test fails, naming the script. With
//! `TIPOFF_DASHBOARD_SCREENSHOTS=docs/dashboard` it also writes the screenshots docs/dashboard.md
//! shows (always written under the test's temporary directory).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use jiff::civil::Date;
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tipoff_crds::{PhaseCompletion, PipelineBackfill, PipelineRun};
use tipoff_devcluster::{Config, DevCluster};
use webdriver::Browser;

const IMAGE: &str = "ghcr.io/tipoff/processor@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const COMMIT: &str = "c4f8f339";
const PHASES: [&str; 6] = [
    "ingest", "validate", "features", "usage", "predict", "publish",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn phases(states: &[&str]) -> Value {
    json!(
        PHASES
            .iter()
            .enumerate()
            .map(|(i, name)| json!({
                "phase": i + 1, "name": name,
                "state": states.get(i).copied().unwrap_or("Pending"),
                "done": u32::from(states.get(i) == Some(&"Succeeded")), "expected": 1,
            }))
            .collect::<Vec<_>>()
    )
}

/// The season: 150 game days ending today (New York), every seventh calendar day without games.
fn season(today: Date) -> (Vec<Date>, Vec<Date>) {
    let (mut games, mut off) = (Vec::new(), Vec::new());
    let mut day = today;
    let mut i = 0;
    while games.len() < 150 {
        if i % 7 == 3 {
            off.push(day);
        } else {
            games.push(day);
        }
        day = day.yesterday().unwrap();
        i += 1;
    }
    games.reverse();
    off.reverse();
    (games, off)
}

struct Fixture {
    runs: Api<PipelineRun>,
    pcs: Api<PhaseCompletion>,
}

impl Fixture {
    async fn run(&self, name: &str, date: Date, mode: &str, labels: Value, status: Value) {
        let run: PipelineRun = serde_json::from_value(json!({
            "apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineRun",
            "metadata": {"name": name, "labels": labels},
            "spec": {"date": date.to_string(), "mode": mode,
                     "release": {"image": IMAGE, "commit": COMMIT}},
        }))
        .unwrap();
        self.runs
            .create(&PostParams::default(), &run)
            .await
            .unwrap();
        self.set_status(name, status).await;
    }

    async fn set_status(&self, name: &str, status: Value) {
        self.runs
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .unwrap();
    }

    async fn pc(&self, run: &str, date: Date, phase: u8, expected: &[&str], status: Value) {
        let name = format!("{run}-p{phase}");
        let pc: PhaseCompletion = serde_json::from_value(json!({
            "apiVersion": "tipoff.dev/v1alpha1", "kind": "PhaseCompletion",
            "metadata": {"name": name, "labels": {"tipoff.dev/run": run}},
            "spec": {"run": run, "date": date.to_string(), "phase": phase,
                     "phaseName": PHASES[usize::from(phase) - 1], "expected": expected},
        }))
        .unwrap();
        self.pcs.create(&PostParams::default(), &pc).await.unwrap();
        self.pcs
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .unwrap();
    }
}

/// A `tipoff dashboard` process, killed when dropped (a failed assertion included).
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tipoff dashboard --port 0` against `kubeconfig`; returns the process and its URL.
fn start_dashboard(kubeconfig: &Path) -> (Served, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tipoff"))
        .args(["dashboard", "--port", "0", "--kubeconfig"])
        .arg(kubeconfig)
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (Served(child), url)
}

/// Every cell as `{date/row: [state, flags, symbol, aria-label]}`.
const CELLS: &str = r#"
const out = {};
for (const td of document.querySelectorAll('#matrix td')) {
  out[td.dataset.date + '/' + td.dataset.row] = [td.dataset.state, td.dataset.flags,
    td.querySelector('.sym').textContent + (td.querySelector('.flags')?.textContent || ''),
    td.getAttribute('aria-label')];
}
return out;"#;

/// dev/cluster with the tipoff CRDs; its kubeconfig in a temporary directory.
async fn start_cluster() -> (tempfile::TempDir, DevCluster, PathBuf, kube::Client) {
    tipoff_operator::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let cluster = DevCluster::start(Config::default()).await.unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let client = kube::Client::try_from(kube::Config::new(cluster.url().parse().unwrap())).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in [
        "pipelineruns.tipoff.dev.yaml",
        "phasecompletions.tipoff.dev.yaml",
        "pipelineschedules.tipoff.dev.yaml",
        "pipelinebackfills.tipoff.dev.yaml",
    ] {
        let text = std::fs::read_to_string(workspace().join("crds/generated").join(file)).unwrap();
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text).unwrap();
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    (dir, cluster, kubeconfig, client)
}

/// A watch the cluster refuses (the user's RBAC) is reported on the page with the API's
/// answer, and the rest of the page still works. No browser: the page shows `errors` as is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_watch_is_reported_and_the_rest_still_shows() {
    let (_dir, cluster, kubeconfig, client) = start_cluster().await;
    let f = Fixture {
        runs: Api::namespaced(client.clone(), "default"),
        pcs: Api::namespaced(client.clone(), "default"),
    };
    let date: Date = "2026-01-14".parse().unwrap();
    f.run(
        "nba-2026-01-14",
        date,
        "Production",
        json!({}),
        json!({"state": "Succeeded"}),
    )
    .await;
    // Every list and watch of PhaseCompletions is forbidden from now on.
    cluster
        .faults()
        .fail_next(u32::MAX, Some("GET"), "phasecompletions", 403);
    let (server, url) = start_dashboard(&kubeconfig);
    let http = reqwest::Client::new();
    let body: Value = http
        .get(format!("{url}api/matrix"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let errors = body["errors"].to_string();
    assert!(
        errors.contains("watching phasecompletions") && errors.contains("403"),
        "{body}"
    );
    assert_eq!(
        body["matrix"]["dates"][0]["cells"][0]["state"], "Succeeded",
        "{body}"
    );
    drop(server);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_season_page_shows_states_drills_down_follows_live_and_offers_a_backfill() {
    // Fail, never skip, without a browser.
    webdriver::browser_binaries();
    let (dir, cluster, kubeconfig, client) = start_cluster().await;

    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("America/New_York").unwrap())
        .date();
    let (games, off) = season(today);
    let list: String = games.iter().map(|d| format!("{d}\n")).collect();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "nba-game-days", "labels": {"tipoff.dev/game-days": "true"}},
        "data": {"dates": format!("# the season\n{list}")},
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();

    // The dates in known states (counted from the season's end).
    let g = |n: usize| games[games.len() - 1 - n];
    let live = g(0); // today: Running, phases finish during the test
    let late = g(3); // Running days after its expected finish
    let failed = g(5);
    let blocked = g(6);
    let drifted = g(7);
    let retried = g(8);
    let backfilled = g(9);
    let skipped = g(10);
    let outage = [g(20), g(21), g(22)]; // three game days without a run (seed 003)
    let no_games = *off.iter().rev().nth(2).unwrap();
    let f = Fixture {
        runs: Api::namespaced(client.clone(), "default"),
        pcs: Api::namespaced(client.clone(), "default"),
    };
    let ok = json!({"state": "Succeeded", "progress": "6/6", "phases": phases(&["Succeeded"; 6]),
                    "summary": {"rowsWritten": {"nba.predictions": 7, "nba.box_scores": 140}}});
    for d in &games {
        let d = *d;
        if outage.contains(&d)
            || [
                live, late, failed, blocked, drifted, retried, skipped, backfilled,
            ]
            .contains(&d)
        {
            continue;
        }
        f.run(&format!("nba-{d}"), d, "Production", json!({}), ok.clone())
            .await;
    }
    f.run(
        &format!("nba-{live}"),
        live,
        "Production",
        json!({}),
        json!({"state": "Running", "progress": "0/6", "phases": phases(&["Running"])}),
    )
    .await;
    f.run(&format!("nba-{late}"), late, "Production", json!({}),
        json!({"state": "Running", "progress": "3/6", "phases": phases(&["Succeeded", "Succeeded", "Succeeded", "Running"])})).await;
    let failed_run = format!("nba-{failed}");
    f.run(
        &failed_run,
        failed,
        "Production",
        json!({}),
        json!({"state": "Failed", "progress": "1/6", "phases": phases(&["Succeeded", "Failed"])}),
    )
    .await;
    f.pc(&failed_run, failed, 2, &["load-boxscores"], json!({"failed": [
        {"processor": "load-boxscores", "attempt": 3, "job": format!("{failed_run}-p2-load-boxscores-3"),
         "reason": "ExitPermanent", "message": "schema mismatch in box_scores", "exitCode": 2}]})).await;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let ev: Event = serde_json::from_value(json!({
        "metadata": {"name": format!("{failed_run}.1")},
        "involvedObject": {"kind": "PipelineRun", "name": failed_run, "namespace": "default"},
        "reason": "ProcessorFailed", "type": "Warning",
        "message": "load-boxscores attempt 3 failed: schema mismatch in box_scores",
        "lastTimestamp": format!("{}", jiff::Timestamp::now()),
    }))
    .unwrap();
    events.create(&PostParams::default(), &ev).await.unwrap();
    let blocked_run = format!("nba-{blocked}");
    f.run(&blocked_run, blocked, "Production", json!({}),
        json!({"state": "Blocked", "progress": "3/6", "phases": phases(&["Succeeded", "Succeeded", "Blocked"])})).await;
    f.pc(
        &blocked_run,
        blocked,
        3,
        &["boxscore-features"],
        json!({"completed": [
        {"processor": "boxscore-features", "attempt": 1, "job": "j",
         "gates": [{"name": "boxscore-coverage", "passed": false, "policy": "Blocking",
                    "observed": 6, "expected": 7, "missing": ["BOS@LAL"]}]}]}),
    )
    .await;
    let drift_run = format!("nba-{drifted}");
    f.run(
        &drift_run,
        drifted,
        "Production",
        json!({}),
        json!({
        "state": "Succeeded", "progress": "6/6", "phases": phases(&["Succeeded"; 6]),
        "drift": [{"processor": "scrape-boxscores", "attempt": 1, "field": "Commit",
                   "pinned": COMMIT, "observed": "deadbeef"}]}),
    )
    .await;
    f.pc(&drift_run, drifted, 1, &["scrape-boxscores"], json!({}))
        .await;
    let retried_run = format!("nba-{retried}");
    f.run(
        &retried_run,
        retried,
        "Production",
        json!({}),
        json!({
        "state": "Succeeded", "progress": "6/6", "phases": phases(&["Succeeded"; 6]),
        "summary": {"retries": 1, "rowsWritten": {"nba.predictions": 9},
                    "message": "9 predictions; accuracy not yet known"}}),
    )
    .await;
    f.pc(
        &retried_run,
        retried,
        2,
        &["load-boxscores"],
        json!({"completed": [
        {"processor": "load-boxscores", "attempt": 2, "job": "j"}]}),
    )
    .await;
    f.run(
        &format!("bf-{backfilled}"),
        backfilled,
        "Backfill",
        json!({"tipoff.dev/backfill": "backfill-x"}),
        ok.clone(),
    )
    .await;
    f.run(&format!("nba-{skipped}"), skipped, "Production", json!({}), json!({
        "state": "Succeeded", "progress": "4/4",
        "phases": phases(&["Succeeded", "Succeeded", "Succeeded", "Succeeded", "Skipped", "Skipped"])})).await;

    let (server, url) = start_dashboard(&kubeconfig);
    let browser = Browser::start().await;
    browser.goto(&url).await;
    browser
        .wait_for(
            "the matrix is drawn",
            30,
            "return window.tipoffRender && window.tipoffRender.dates",
        )
        .await;
    let render = browser.exec("return window.tipoffRender;", json!([])).await;
    let rendered_dates = render["dates"].as_u64().unwrap();
    println!(
        "dashboard: {} calendar days ({} game dates), {} cells rendered in {:.1} ms (performance.now in Chromium)",
        rendered_dates,
        games.len(),
        render["cells"],
        render["ms"].as_f64().unwrap()
    );
    assert!(rendered_dates >= 150, "{render}");
    assert_eq!(browser.text("#errors").await, "", "no watch errors");
    assert_eq!(browser.text("#live").await, "live");

    // States and symbols, from the DOM.
    let cells = browser.exec(CELLS, json!([])).await;
    let cell = |d: Date, row: u8| cells[format!("{d}/{row}")].clone();
    let is = |d: Date, row: u8, state: &str, sym: &str| {
        let c = cell(d, row);
        assert_eq!(c[0], state, "{d} row {row}: {c}");
        assert_eq!(c[2], sym, "{d} row {row}: {c}");
    };
    for d in outage {
        for row in 0..=6 {
            is(d, row, "NoRun", "∅");
        }
    }
    is(no_games, 0, "NoGames", "·");
    is(g(1), 0, "Succeeded", "✓");
    is(g(1), 6, "Succeeded", "✓");
    is(live, 0, "Running", "▶");
    is(live, 1, "Running", "▶");
    is(live, 2, "Pending", "…");
    is(late, 0, "Late", "!");
    is(late, 3, "Succeeded", "✓");
    is(late, 4, "Late", "!");
    is(failed, 0, "Failed", "✗");
    is(failed, 2, "Failed", "✗");
    is(blocked, 3, "Blocked", "■◔"); // still blocked past the expected time
    is(blocked, 4, "Late", "!");
    is(failed, 3, "Pending", "…"); // an ended run's unreached phase is not late
    is(drifted, 0, "Drifted", "≠");
    is(drifted, 1, "Drifted", "≠");
    is(drifted, 2, "Succeeded", "✓");
    is(retried, 2, "Succeeded", "✓↻");
    is(retried, 0, "Succeeded", "✓↻");
    is(skipped, 5, "Skipped", "–");
    assert!(
        cell(failed, 2)[3]
            .as_str()
            .unwrap()
            .contains("phase 2 validate Failed"),
        "{}",
        cell(failed, 2)
    );
    assert!(
        cell(outage[0], 0)[3]
            .as_str()
            .unwrap()
            .contains("game day, no run")
    );
    let marks = browser
        .exec("return [...document.querySelectorAll('#matrix th.date .bf')].map(b => b.closest('th').dataset.date);", json!([]))
        .await;
    assert_eq!(
        marks,
        json!([backfilled.to_string()]),
        "only the backfill's run is marked"
    );
    let legend = browser.text("#legend").await;
    for label in [
        "Pending",
        "Running",
        "Succeeded",
        "Failed",
        "Blocked",
        "Skipped",
        "Drifted",
        "Late",
        "No run",
        "No games",
        "backfill",
    ] {
        assert!(legend.contains(label), "legend lacks {label}: {legend}");
    }
    let shots = dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let season_png = browser.screenshot().await;
    std::fs::write(shots.join("season.png"), &season_png).unwrap();

    // Drill-down: the failed phase, as the CLI's tree shows it, with commands and Events.
    browser
        .click_css(&format!("td[data-date='{failed}'][data-row='2']"))
        .await;
    browser
        .wait_for(
            "the drill-down",
            10,
            "return document.querySelector('#detail-tree')?.textContent",
        )
        .await;
    let tree = browser.text("#detail-tree").await;
    assert!(
        tree.contains(&failed_run) && tree.contains("load-boxscores"),
        "{tree}"
    );
    assert!(tree.contains("schema mismatch"), "{tree}");
    let commands = browser.text("#detail-commands").await;
    assert!(
        commands.contains(&format!("tipoff logs {failed} --processor load-boxscores")),
        "{commands}"
    );
    assert!(
        commands.contains(&format!("tipoff rerun {failed} --processor load-boxscores")),
        "{commands}"
    );
    let ev_text = browser.text("#detail-events").await;
    assert!(ev_text.contains("ProcessorFailed"), "{ev_text}");
    std::fs::write(shots.join("drilldown.png"), browser.screenshot().await).unwrap();
    // A blocking gate names the missing game; drift shows pinned vs ran.
    browser
        .click_css(&format!("td[data-date='{blocked}'][data-row='3']"))
        .await;
    browser
        .wait_for(
            "the gate",
            10,
            "return document.querySelector('#detail-tree')?.textContent.includes('BOS@LAL')",
        )
        .await;
    browser
        .click_css(&format!("td[data-date='{drifted}'][data-row='1']"))
        .await;
    let tree = browser.wait_for("the drift", 10, "const t = document.querySelector('#detail-tree')?.textContent || ''; return t.includes('deadbeef') && t;").await;
    assert!(tree.as_str().unwrap().contains(COMMIT), "{tree}");

    // A date's summary.
    browser
        .click_css(&format!("th[data-date='{retried}'] button"))
        .await;
    browser
        .wait_for(
            "the date summary",
            10,
            &format!("return document.querySelector('#detail-title')?.textContent === '{retried}'"),
        )
        .await;
    let rows = browser.text("#date-rows").await;
    assert!(
        rows.contains("nba.predictions") && rows.contains('9'),
        "{rows}"
    );
    assert!(
        browser
            .text("#date-message")
            .await
            .contains("9 predictions")
    );

    // Keyboard: arrows move the focus across cells, Enter opens one, Escape closes it.
    browser.press("\u{E00C}").await; // Escape
    browser
        .exec(
            &format!("document.querySelector(\"td[data-date='{failed}'][data-row='1']\").focus();"),
            json!([]),
        )
        .await;
    browser.press("\u{E015}").await; // ArrowDown
    browser.press("\u{E014}").await; // ArrowRight
    let active = browser
        .exec(
            "const a = document.activeElement; return [a.dataset.date, a.dataset.row, a.tabIndex];",
            json!([]),
        )
        .await;
    assert_eq!(
        active,
        json!([failed.tomorrow().unwrap().to_string(), "2", 0]),
        "focus moved down then right"
    );
    browser.press("\u{E015}").await; // ArrowDown
    browser.press("\u{E012}").await; // ArrowLeft
    browser.press("\u{E007}").await; // Enter
    browser.wait_for("Enter opens the focused cell", 10,
        &format!("return document.querySelector('#detail-title')?.textContent.includes('nba-{failed} · phase 3')")).await;
    browser.press("\u{E00C}").await;
    assert!(
        browser
            .exec(
                "return document.querySelector('#detail').hidden;",
                json!([])
            )
            .await
            .as_bool()
            .unwrap()
    );
    // Escape gave the focus back to the cell; End and Home go to the last and first date.
    const ACTIVE: &str =
        "const a = document.activeElement; return [a.dataset.date, a.dataset.row];";
    browser.press("\u{E010}").await; // End
    assert_eq!(
        browser.exec(ACTIVE, json!([])).await,
        json!([today.to_string(), "3"])
    );
    browser.press("\u{E011}").await; // Home
    assert_eq!(
        browser.exec(ACTIVE, json!([])).await,
        json!([games[0].to_string(), "3"]),
        "the season's first date"
    );

    // Paging: a month at a time, the newest first; ◀ goes back one month.
    const MONTH_DATES: &str =
        "return [...document.querySelectorAll('#matrix th.date')].map(t => t.dataset.date);";
    let set_view = |v: &str| {
        format!(
            "const s = document.querySelector('#view'); s.value = '{v}'; s.dispatchEvent(new Event('change'));"
        )
    };
    browser.exec(&set_view("month"), json!([])).await;
    let this_month = today.strftime("%Y-%m").to_string();
    let shown = browser.exec(MONTH_DATES, json!([])).await;
    let shown: Vec<String> = serde_json::from_value(shown).unwrap();
    assert!(
        !shown.is_empty() && shown.iter().all(|d| d.starts_with(&this_month)),
        "{shown:?}"
    );
    assert_eq!(browser.text("#page-label").await, this_month);
    browser.click_css("#prev").await;
    let previous = today
        .first_of_month()
        .yesterday()
        .unwrap()
        .strftime("%Y-%m")
        .to_string();
    let shown: Vec<String> =
        serde_json::from_value(browser.exec(MONTH_DATES, json!([])).await).unwrap();
    assert!(
        !shown.is_empty() && shown.iter().all(|d| d.starts_with(&previous)),
        "{shown:?}"
    );
    browser.exec(&set_view("season"), json!([])).await;
    let shown: Vec<String> =
        serde_json::from_value(browser.exec(MONTH_DATES, json!([])).await).unwrap();
    assert_eq!(shown.len() as u64, rendered_dates);

    // Live: the running run's phase 1 finishes and phase 2 starts; the page follows without
    // reloading.
    browser.exec("window.notReloaded = true;", json!([])).await;
    f.set_status(
        &format!("nba-{live}"),
        json!({"progress": "1/6", "phases": phases(&["Succeeded", "Running"])}),
    )
    .await;
    browser.wait_for("the live update", 15, &format!(
        "return document.querySelector(\"td[data-date='{live}'][data-row='1']\").dataset.state === 'Succeeded' \
         && document.querySelector(\"td[data-date='{live}'][data-row='2']\").dataset.state === 'Running'")).await;
    assert_eq!(
        browser.exec("return window.notReloaded;", json!([])).await,
        json!(true)
    );

    // The backfill dialog: select the outage, see the YAML; nothing is written before the
    // confirmation; a 403 is shown plainly; then it is created.
    browser
        .click_css(&format!("th[data-date='{}'] button", outage[2]))
        .await;
    let last = browser
        .find(&format!("th[data-date='{}'] button", outage[0]))
        .await;
    browser.shift_click(&last).await;
    let selected = browser.exec("return [...document.querySelectorAll('#matrix th.date.selected')].map(t => t.dataset.date);", json!([])).await;
    let range: Vec<String> = outage[2]
        .series(jiff::Span::new().days(1))
        .take_while(|d| *d <= outage[0])
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        selected,
        json!(range),
        "the range from the first heading to the shift-clicked one"
    );
    browser.click_css("#backfill-open").await;
    let yaml = browser
        .wait_for(
            "the YAML",
            10,
            "return document.querySelector('#bf-yaml').textContent",
        )
        .await;
    let yaml = yaml.as_str().unwrap();
    let parsed: Value = serde_yaml::from_str(yaml).unwrap();
    assert_eq!(parsed["kind"], "PipelineBackfill", "{yaml}");
    assert_eq!(parsed["spec"]["from"], outage[2].to_string());
    assert_eq!(parsed["spec"]["to"], outage[0].to_string());
    assert_eq!(parsed["spec"]["reprocess"], "Missing");
    assert_eq!(parsed["spec"]["release"]["image"], IMAGE);
    // Days without games in the range are skipped by the namespace's game-day list.
    assert_eq!(
        parsed["spec"]["gameDays"]["configMap"], "nba-game-days",
        "{yaml}"
    );
    browser.exec("const s = document.querySelector('#bf-reprocess'); s.value = 'Failed'; s.dispatchEvent(new Event('change'));", json!([])).await;
    browser
        .wait_for(
            "the YAML follows the policy",
            10,
            "return document.querySelector('#bf-yaml').textContent.includes('reprocess: Failed')",
        )
        .await;
    let backfills: Api<PipelineBackfill> = Api::namespaced(client.clone(), "default");
    assert!(
        backfills
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing before the confirmation"
    );
    cluster
        .faults()
        .fail_next(1, Some("PATCH"), "pipelinebackfills", 403);
    browser.click_css("#bf-confirm").await;
    let refused = browser.wait_for("the 403", 10, "const r = document.querySelector('#bf-result'); return r.className === 'error' && r.textContent;").await;
    assert!(
        refused.as_str().unwrap().contains("403 Forbidden"),
        "{refused}"
    );
    assert!(
        backfills
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    browser.click_css("#bf-confirm").await;
    let done = browser.wait_for("the backfill", 10, "const r = document.querySelector('#bf-result'); return r.className === 'ok' && r.textContent;").await;
    let name = format!("backfill-{}-{}-failed", outage[2], outage[0]);
    assert!(done.as_str().unwrap().contains(&name), "{done}");
    let created = backfills.get(&name).await.unwrap();
    assert_eq!(created.spec.from, outage[2].to_string());
    assert_eq!(created.spec.reprocess, tipoff_crds::Reprocess::Failed);

    // Only the page may write, and only through 127.0.0.1: a POST without the page's header,
    // or any request naming another Host (DNS rebinding), is refused.
    let http = reqwest::Client::new();
    let body = json!({"from": outage[2].to_string(), "to": outage[0].to_string(), "reprocess": "All", "confirmed": true});
    let r = http
        .post(format!("{url}api/backfill"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("x-tipoff-dashboard"));
    let r = http
        .get(format!("{url}api/matrix"))
        .header("host", "evil.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        backfills
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    if let Ok(to) = std::env::var("TIPOFF_DASHBOARD_SCREENSHOTS") {
        let to = workspace().join(to);
        std::fs::create_dir_all(&to).unwrap();
        for f in ["season.png", "drilldown.png"] {
            std::fs::copy(shots.join(f), to.join(f)).unwrap();
        }
    }
    browser.quit().await;
    drop(server);
    cluster.shutdown().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
