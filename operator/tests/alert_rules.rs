//! The alert rules (`charts/tipoff/alerts/rules.yaml`) against what they depend on: every
//! metric an expression names is one the operator exports, every alert has a severity, a
//! summary, a description and a runbook section that exists, and every alert has promtool
//! tests that show it firing and silent. (`promtool test rules` itself runs in
//! scripts/test.sh, and `operator/tests/e2e/alerts.rs` on a real Prometheus.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

const RUNBOOKS: &str = "https://github.com/tipoff-dev/tipoff/blob/main/";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rules() -> Vec<Value> {
    let text =
        std::fs::read_to_string(workspace().join("charts/tipoff/alerts/rules.yaml")).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    doc["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
        .collect()
}

/// GitHub's anchor of a Markdown heading: lower case, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_metric_the_rules_name_is_exported_by_the_operator() {
    // A family shows in the exposition once it has a series: give each one.
    let m = tipoff_operator::metrics::Metrics::new();
    m.retain_runs(&BTreeSet::new());
    m.retain_backfills(&BTreeSet::new());
    m.reconcile_error("ApiError");
    let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let status = tipoff_crds::PipelineScheduleStatus {
        next_schedule_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at)),
        ..Default::default()
    };
    m.observe_schedule("nba", "daily", &status, Some(at), std::time::Duration::ZERO);
    m.observe_timing(
        "nba/run",
        tipoff_operator::planner::timing::RunTiming {
            mode: Some(tipoff_crds::Mode::Production),
            expected_finish: Some(at),
            stall_at: [(3, at)].into(),
            failed_at: None,
        },
    );
    m.observe_timing(
        "nba/failed",
        tipoff_operator::planner::timing::RunTiming {
            mode: Some(tipoff_crds::Mode::Production),
            failed_at: Some(at),
            ..Default::default()
        },
    );
    let exported = m.encode();
    let names: BTreeSet<String> = exported
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    for rule in rules() {
        let expr = rule["expr"].as_str().unwrap();
        let mut rest = expr;
        while let Some(i) = rest.find("tipoff_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            // Counters are exported as `<name>_total`, histograms as `<name>_bucket` etc.; the
            // TYPE line names the family.
            let family = ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                names.contains(family),
                "{}: {name} is not a metric the operator exports ({names:?})",
                rule["alert"].as_str().unwrap_or_default()
            );
        }
    }
}

#[test]
fn every_alert_says_what_to_do_and_links_a_runbook_section_that_exists() {
    let rules = rules();
    assert!(rules.len() >= 8, "{rules:?}");
    let mut seen = BTreeSet::new();
    for rule in &rules {
        let alert = rule["alert"].as_str().expect("only alerting rules");
        assert!(seen.insert(alert.to_owned()), "{alert} twice");
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning"].contains(&severity),
            "{alert}: severity {severity:?}"
        );
        for key in ["summary", "description"] {
            let text = rule["annotations"][key].as_str().unwrap_or_default();
            assert!(text.len() > 20, "{alert}: {key} {text:?}");
        }
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        let (file, fragment) = url
            .strip_prefix(RUNBOOKS)
            .and_then(|u| u.split_once('#'))
            .unwrap_or_else(|| panic!("{alert}: {url} is not {RUNBOOKS}docs/runbooks/...#section"));
        assert!(file.starts_with("docs/runbooks/"), "{alert}: {url}");
        let page = std::fs::read_to_string(workspace().join(file))
            .unwrap_or_else(|e| panic!("{alert}: {file}: {e}"));
        let anchors: Vec<String> = page
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .map(anchor)
            .collect();
        assert!(
            anchors.iter().any(|a| a == fragment),
            "{alert}: {file} has no section #{fragment} ({anchors:?})"
        );
    }
}

#[test]
fn every_alert_has_promtool_tests_that_show_it_firing_and_silent() {
    let dir = workspace().join("charts/tipoff/alerts/tests");
    let (mut fires, mut silent) = (BTreeSet::new(), BTreeSet::new());
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for test in doc["tests"].as_sequence().unwrap() {
            for case in test["alert_rule_test"].as_sequence().unwrap() {
                let name = case["alertname"].as_str().unwrap().to_owned();
                let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
                if expected > 0 {
                    fires.insert(name);
                } else {
                    silent.insert(name);
                }
            }
        }
    }
    for rule in rules() {
        let alert = rule["alert"].as_str().unwrap();
        assert!(
            fires.contains(alert),
            "no promtool test shows {alert} firing"
        );
        assert!(
            silent.contains(alert),
            "no promtool test shows {alert} silent"
        );
    }
}
