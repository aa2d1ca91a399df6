//! The alert rules on a real Prometheus (Debian's `prometheus`, installed by
//! `scripts/lib/prometheus.sh`): it scrapes the real operator on dev/cluster every second and
//! evaluates `charts/tipoff/alerts/rules.yaml`, unchanged, every second. A PipelineSchedule's
//! game day becomes due while the operator is stopped (seed 003): `TipoffGameDayWithoutRun`
//! must not be active before, and must be pending (its real `for: 15m` is covered by the
//! promtool tests) once the due time passes with no run; a restarted operator creates the run
//! and the alert goes away.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::{Timestamp, ToSpan, tz::TimeZone};
use kube::api::ListParams;
use tipoff_crds::pipeline_schedule::LABEL_SCHEDULE;

use super::harness::{Env, NS, Operator, workspace};
use super::schedule::{create_schedule, game_days};
use super::{script, with_sleep};

const ALERT: &str = "TipoffGameDayWithoutRun";
const INSTALL: &str = "scripts/lib/prometheus.sh";

/// A `prometheus` process with its own config, data directory and port; killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
    targets: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `127.0.0.1:<target>` and evaluating `rules`, every second.
    /// The target is read from a file ([`Self::set_target`] changes it), so an operator
    /// restarted on another port is scraped as the same job.
    fn start(dir: &Path, target: u16, rules: &Path) -> Self {
        let version = Command::new("prometheus").arg("--version").output();
        assert!(
            version.as_ref().is_ok_and(|o| o.status.success()),
            "this test runs a real Prometheus, and `prometheus` is not on PATH ({version:?}): \
             install it with {INSTALL} (scripts/test.sh runs it)"
        );
        let targets = dir.join("targets.json");
        write_targets(&targets, target);
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [{rules:?}]\n\
                 scrape_configs:\n\
                 \x20 - job_name: tipoff-operator\n\
                 \x20   file_sd_configs: [{{files: [{targets:?}], refresh_interval: 1s}}]\n",
                rules = rules.display().to_string(),
                targets = targets.display().to_string(),
            ),
        )
        .unwrap();
        let check = Command::new("promtool")
            .args(["check", "config"])
            .arg(&config)
            .output()
            .unwrap_or_else(|e| panic!("promtool: {e}: install it with {INSTALL}"));
        assert!(
            check.status.success(),
            "promtool check config: {}",
            String::from_utf8_lossy(&check.stdout) + String::from_utf8_lossy(&check.stderr)
        );
        // A free port, chosen here: Prometheus does not report a port the system picked. If
        // another process takes it before Prometheus binds, Prometheus exits and we try again.
        for attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = dir.join(format!("prometheus-{attempt}.log"));
            let child = Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join(format!("tsdb-{attempt}")).display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let mut prometheus = Self {
                child,
                port,
                log,
                targets: targets.clone(),
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if prometheus
                    .get("/-/ready")
                    .is_some_and(|(code, _)| code == 200)
                {
                    return prometheus;
                }
                if prometheus.child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!(
                "prometheus on port {port} did not start:\n{}",
                prometheus.log()
            );
        }
        panic!("prometheus never became ready (logs in {})", dir.display());
    }

    /// Scrapes `127.0.0.1:<port>` from now on.
    fn set_target(&self, port: u16) {
        write_targets(&self.targets, port);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GETs `path` (HTTP/1.0, so the body is never chunked).
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        Some((code, body))
    }

    /// The `data` of a successful API answer.
    fn api(&self, path: &str) -> serde_json::Value {
        let (code, body) = self
            .get(path)
            .unwrap_or_else(|| panic!("prometheus did not answer {path}:\n{}", self.log()));
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {code} {body}"));
        assert!(
            code == 200 && json["status"] == "success",
            "{path}: {code} {body}"
        );
        json["data"].clone()
    }

    /// The state (`pending`, `firing`) of alert `name` for schedule `NS/nba`, if active.
    fn alert_state(&self, name: &str) -> Option<String> {
        let data = self.api("/api/v1/alerts");
        data["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| {
                let l = &a["labels"];
                l["alertname"] == name
                    && (name != ALERT || (l["namespace"] == NS && l["schedule"] == "nba"))
            })
            .map(|a| a["state"].as_str().unwrap_or_default().to_owned())
    }

    /// The value of the instant query `query`'s only sample, if it has one.
    fn scalar(&self, query: &str) -> Option<f64> {
        let data = self.api(&format!("/api/v1/query?query={query}"));
        let result = data["result"].as_array()?;
        assert!(result.len() <= 1, "{query}: {result:?}");
        result.first()?["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus's file service discovery format: one static target, job `tipoff-operator`.
fn write_targets(path: &Path, port: u16) {
    let tmp = path.with_extension("new");
    std::fs::write(
        &tmp,
        serde_json::json!([{"targets": [format!("127.0.0.1:{port}")]}]).to_string(),
    )
    .unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn wait_for_port(op: &Operator) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(port) = op.port() {
            return port;
        }
        assert!(Instant::now() < deadline, "no port logged:\n{}", op.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn schedule_runs(env: &Env) -> Vec<String> {
    env.runs()
        .list(&ListParams::default().labels(&format!("{LABEL_SCHEDULE}=nba")))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.spec.date)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_day_due_while_the_operator_is_down_raises_the_no_run_alert_in_prometheus() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 20), None).await;

    // The game day's run is due at the first whole minute at least 40 s away (times of day are
    // HH:MM), in UTC: game date D is due at productionTime on D + 1.
    let due = {
        let soon = Timestamp::now() + 100.seconds();
        let z = soon.to_zoned(TimeZone::UTC);
        z.with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .unwrap()
            .timestamp()
    };
    assert!(due >= Timestamp::now() + 40.seconds());
    let due_utc = due.to_zoned(TimeZone::UTC);
    let date = due_utc.date().yesterday().unwrap();
    let production_time = format!("{:02}:{:02}", due_utc.hour(), due_utc.minute());
    // D, and two more game days so a run created for D moves the deadline to the future.
    let last = date.tomorrow().unwrap().tomorrow().unwrap();
    game_days(&env, &date.to_string(), &last.to_string(), &[]).await;

    let op = env.operator("op-a", false);
    let port = wait_for_port(&op);
    let rules = workspace().join("charts/tipoff/alerts/rules.yaml");
    let prometheus = Prometheus::start(env.dir.path(), port, &rules);
    // The rule file Prometheus loaded is the chart's, with the alert in it.
    let groups = prometheus.api("/api/v1/rules");
    assert!(groups.to_string().contains(ALERT), "{groups}");

    create_schedule(&env, |spec| {
        spec.time_zone = "UTC".into();
        spec.production_time = production_time.clone();
    })
    .await;

    // Prometheus sees the schedule's deadline: the due time of D's run.
    let query = "tipoff_schedule_deadline_timestamp_seconds%7Bschedule%3D%22nba%22%7D";
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        if let Some(v) = prometheus.scalar(query) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the schedule deadline:\n{}\n{}",
            op.log(),
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(seen, due.as_second() as f64, "due {due}");
    // Rules have been evaluated with the operator up and the deadline ahead: nothing active.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(prometheus.alert_state(ALERT), None);
    assert_eq!(prometheus.alert_state("TipoffOperatorDown"), None);
    assert!(
        Timestamp::now() < due,
        "the setup took too long: the run is already due"
    );

    // Seed 003: the operator goes down before the game day is due.
    let mut op = op;
    op.kill();
    let stopped = Instant::now();

    // Until the due time the alert stays silent; after it, with no operator to create the
    // run, it becomes active (pending: its `for` is 15 minutes).
    let state = loop {
        let state = prometheus.alert_state(ALERT);
        let now = Timestamp::now();
        match state {
            Some(state) => {
                assert!(
                    now >= due,
                    "{ALERT} was {state} at {now}, before the run was due at {due}"
                );
                break state;
            }
            None => assert!(
                now < due + 30.seconds(),
                "{ALERT} not active 30 s after the run was due ({due}):\n{}",
                prometheus.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(state == "pending" || state == "firing", "{state}");
    assert!(
        schedule_runs(&env).await.is_empty(),
        "a run exists although the operator is down"
    );
    // The operator's own alert is active too: no replica reports.
    assert!(
        prometheus.alert_state("TipoffOperatorDown").is_some(),
        "TipoffOperatorDown not active {:?} after the operator stopped",
        stopped.elapsed()
    );

    // The operator comes back: it creates D's run and the deadline moves to D + 1's run, so
    // the alert ends.
    let op = env.operator("op-b", false);
    prometheus.set_target(wait_for_port(&op));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !schedule_runs(&env).await.contains(&date.to_string()) {
        assert!(
            Instant::now() < deadline,
            "the restarted operator did not create D's run:\n{}",
            op.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let next_due = due + 24.hours();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = prometheus.scalar(query);
        let active = prometheus.alert_state(ALERT);
        if seen == Some(next_due.as_second() as f64) && active.is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the restart: deadline {seen:?} (want {next_due}), {ALERT} {active:?}\n{}\n{}",
            op.log(),
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The value of the sample `series` (name and labels exactly) in a `/metrics` text.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The run and phase deadlines `TipoffRunLate` and `TipoffPhaseStalled` compare with are
/// exported while a run is in flight, at its start plus the catalog's budgets, and leave once
/// it ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_and_phase_deadlines_are_exported_while_a_run_is_in_flight() {
    use tipoff_crds::{Mode, RunState};
    use tipoff_operator::catalog::Catalog;
    use tipoff_operator::planner::timing::phase_budget;

    let env = Env::start(&with_sleep(&script("  {}\n"), 1500), None).await;
    let op = env.operator("op-a", false);
    env.create_run("timed", Mode::Production).await;
    let finish = r#"tipoff_runs_expected_finish_timestamp_seconds{mode="Production"}"#;
    let stall = r#"tipoff_phases_stall_timestamp_seconds{phase="1"}"#;

    // While phase 1 runs: both deadlines, at the run's start (phase 1's start) plus the budgets.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (seen_finish, seen_stall, run) = loop {
        let metrics = op.get("/metrics").map(|(_, m)| m).unwrap_or_default();
        let run = env.runs().get("timed").await.unwrap();
        let status = run.status.clone().unwrap_or_default();
        let phase1_running = status
            .phases
            .first()
            .is_some_and(|p| p.phase == 1 && p.state == tipoff_crds::PhaseState::Running);
        if let (Some(f), Some(s), true) = (
            sample(&metrics, finish),
            sample(&metrics, stall),
            phase1_running,
        ) {
            break (f, s, run);
        }
        assert!(
            Instant::now() < deadline,
            "no deadlines while phase 1 runs: {status:#?}\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let catalog = Catalog::load(&super::harness::test_catalog()).unwrap();
    let status = run.status.unwrap();
    let started = status.start_time.unwrap().0;
    let expected: i64 = catalog
        .phases
        .iter()
        .map(|p| phase_budget(p, Mode::Production, None).expected.as_secs())
        .sum();
    assert!(expected > 0);
    // Start times come from Kubernetes timestamps (whole seconds); allow that rounding.
    let want_finish = (started.as_millisecond() as f64 + expected as f64 * 1000.0) / 1000.0;
    assert!(
        (seen_finish - want_finish).abs() <= 1.0,
        "expected finish {seen_finish}, want {want_finish} (start {started} + {expected} s)"
    );
    let phase1 = &status.phases[0];
    let since = phase1.start_time.as_ref().map_or(started, |t| t.0);
    let limit = phase_budget(catalog.phase(1).unwrap(), Mode::Production, None).limit;
    let want_stall = (since.as_millisecond() as f64 + limit.as_secs() as f64 * 1000.0) / 1000.0;
    assert!(
        (seen_stall - want_stall).abs() <= 1.0,
        "phase 1 stalls at {seen_stall}, want {want_stall} ({since} + {limit:?})"
    );

    // Once the run ended, no deadline is left.
    env.wait_for("timed", Duration::from_secs(180), |r| {
        super::harness::state(r).is_some_and(RunState::is_terminal)
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = op.get("/metrics").map(|(_, m)| m).unwrap_or_default();
        if !metrics.contains("tipoff_runs_expected_finish_timestamp_seconds{")
            && !metrics.contains("tipoff_phases_stall_timestamp_seconds{")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deadlines left after the run ended:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
