//! What GitOps tools read from tipoff objects, on real objects the operator wrote:
//!
//! - `kubectl wait --for=condition=Ready` returns once a run succeeded, and children carry the
//!   `app.kubernetes.io/` labels;
//! - the Argo CD health checks' testdata (`resource_customizations/tipoff.dev/<Kind>/testdata`)
//!   are these objects. Each scenario's live object (read with `kubectl get -o json`,
//!   normalized: no uid, resourceVersion, managedFields, fixed times) is compared with the
//!   committed file on what the health checks read: `metadata.generation`,
//!   `status.observedGeneration`, `status.state`, and each condition's type, status and reason.
//!   A change to the operator that changes them fails here; `TIPOFF_UPDATE_ARGOCD_TESTDATA=1`
//!   rewrites the files instead, and `scripts/argocd-health-test.py` then shows whether the
//!   expected health changed.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::Value;
use tipoff_crds::{BackfillState, Mode, RunState};

use super::backfill::{create_backfill, wait_backfill};
use super::harness::{Env, NS, state};
use super::schedule::{create_schedule, game_days, operator, set_clock, wait_schedule};
use super::{script, scripted, with_sleep};

const UPDATE: &str = "TIPOFF_UPDATE_ARGOCD_TESTDATA";
const FIXED_TIME: &str = "2026-01-30T12:00:00Z";

fn testdata(kind: &str, file: &str) -> PathBuf {
    super::harness::workspace()
        .join("resource_customizations/tipoff.dev")
        .join(kind)
        .join("testdata")
        .join(file)
}

/// Replaces every RFC 3339 timestamp string with [`FIXED_TIME`] and drops what only this
/// cluster knows (uid, resourceVersion, managedFields).
fn normalize(mut v: Value) -> Value {
    fn times(v: &mut Value) {
        match v {
            Value::String(s) if s.parse::<jiff::Timestamp>().is_ok() => {
                *s = FIXED_TIME.to_owned();
            }
            Value::Array(a) => a.iter_mut().for_each(times),
            Value::Object(o) => o.values_mut().for_each(times),
            _ => {}
        }
    }
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["uid", "resourceVersion", "managedFields"] {
            meta.remove(k);
        }
        if let Some(owners) = meta
            .get_mut("ownerReferences")
            .and_then(Value::as_array_mut)
        {
            for o in owners {
                if let Some(o) = o.as_object_mut() {
                    o.insert(
                        "uid".into(),
                        Value::String("00000000-0000-0000-0000-000000000000".into()),
                    );
                }
            }
        }
    }
    times(&mut v);
    v
}

/// What the health checks read, for comparison with the committed testdata.
fn shape(v: &Value) -> Value {
    let mut conditions: Vec<Value> = v["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            serde_json::json!({
                "type": c["type"], "status": c["status"], "reason": c["reason"],
                "observedGeneration": c["observedGeneration"],
            })
        })
        .collect();
    conditions.sort_by_key(|c| c["type"].as_str().unwrap_or_default().to_owned());
    serde_json::json!({
        "generation": v["metadata"]["generation"],
        "observedGeneration": v["status"]["observedGeneration"],
        "state": v["status"]["state"],
        "conditions": conditions,
    })
}

/// Compares (or, with [`UPDATE`], writes) the testdata file `kind/testdata/file` with the live
/// object `resource/name`.
fn capture(env: &Env, kind: &str, resource: &str, name: &str, file: &str) {
    let live: Value =
        serde_json::from_str(&env.kubectl(&["get", resource, name, "-o", "json"])).unwrap();
    let live = normalize(live);
    let path = testdata(kind, file);
    if std::env::var_os(UPDATE).is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let header = format!(
            "# Written by the operator in operator/tests/e2e/gitops.rs ({resource} {name});\n# regenerate with {UPDATE}=1 cargo nextest run -p tipoff-operator --test e2e gitops\n"
        );
        std::fs::write(&path, header + &serde_yaml::to_string(&live).unwrap()).unwrap();
        return;
    }
    let committed: Value = serde_yaml::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; create it with {UPDATE}=1", path.display())),
    )
    .unwrap();
    assert_eq!(
        shape(&live),
        shape(&committed),
        "the live {resource} {name} no longer matches {} on what the Argo CD health check reads; rerun with {UPDATE}=1, then scripts/argocd-health-test.py",
        path.display()
    );
}

fn assert_standard_labels(env: &Env, resource: &str, selector: &str, component: &str) {
    let out = env.kubectl(&[
        "get",
        resource,
        "-l",
        &format!(
            "{selector},app.kubernetes.io/name=tipoff,app.kubernetes.io/part-of=tipoff,app.kubernetes.io/managed-by=tipoff,app.kubernetes.io/component={component}"
        ),
        "-o",
        "name",
    ]);
    assert!(
        !out.trim().is_empty(),
        "no {resource} with {selector} carries the app.kubernetes.io/ labels"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_for_ready_and_the_argocd_testdata_are_what_the_operator_writes() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 300), None).await;
    set_clock(&env, "2026-01-26T12:00:00Z");
    let mut op = operator(&env, "op-a", false);

    // A run in progress, then succeeded: `kubectl wait` returns on Ready.
    env.create_run("ok", Mode::Production).await;
    env.wait_for("ok", Duration::from_secs(60), |r| {
        state(r) == Some(RunState::Running)
    })
    .await;
    capture(
        &env,
        "PipelineRun",
        "pipelinerun",
        "ok",
        "progressing_running.yaml",
    );
    let pcs = env.phase_completions("ok").await;
    let first = pcs[&1].metadata.name.clone().unwrap();
    capture(
        &env,
        "PhaseCompletion",
        "phasecompletion",
        &first,
        "progressing_running.yaml",
    );
    let out = env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pipelinerun/ok",
        "--timeout=120s",
    ]);
    assert!(out.contains("condition met"), "{out}");
    assert_eq!(
        state(&env.runs().get("ok").await.unwrap()),
        Some(RunState::Succeeded)
    );
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "phasecompletions",
        "--all",
        "--timeout=30s",
    ]);
    capture(
        &env,
        "PipelineRun",
        "pipelinerun",
        "ok",
        "healthy_succeeded.yaml",
    );
    capture(
        &env,
        "PhaseCompletion",
        "phasecompletion",
        &first,
        "healthy_succeeded.yaml",
    );
    assert_standard_labels(&env, "jobs", "tipoff.dev/run=ok", "processor");
    assert_standard_labels(&env, "pods", "tipoff.dev/run=ok", "processor");
    assert_standard_labels(
        &env,
        "phasecompletions",
        "tipoff.dev/run=ok",
        "phase-completion",
    );
    let table = env.kubectl(&["get", "phasecompletions"]);
    let header = table.lines().next().unwrap_or_default();
    // Columns are separated by at least two spaces; each title appears once.
    let titles: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(
        titles.iter().filter(|t| **t == "NAME").count(),
        1,
        "{header}"
    );
    assert!(titles.contains(&"PHASE NAME"), "{header}");

    // A schedule that schedules, then one whose game-day list is gone (stalled).
    game_days(&env, "2026-01-20", "2026-02-10", &[]).await;
    create_schedule(&env, |s| s.start_date = Some("2026-01-28".into())).await;
    let ready = |s: &tipoff_crds::PipelineSchedule| {
        s.status.as_ref().is_some_and(|st| {
            st.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.is_true())
        })
    };
    wait_schedule(&env, Duration::from_secs(60), ready).await;
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pipelineschedule/nba",
        "--timeout=30s",
    ]);
    capture(
        &env,
        "PipelineSchedule",
        "pipelineschedule",
        "nba",
        "healthy_scheduled.yaml",
    );
    Api::<ConfigMap>::namespaced(env.client.clone(), NS)
        .delete("games", &DeleteParams::default())
        .await
        .unwrap();
    env.kubectl(&[
        "wait",
        "--for=condition=Stalled",
        "pipelineschedule/nba",
        "--timeout=60s",
    ]);
    capture(
        &env,
        "PipelineSchedule",
        "pipelineschedule",
        "nba",
        "degraded_game_days_missing.yaml",
    );

    // A backfill in progress, then succeeded.
    create_backfill(&env, "jan", "2026-01-10", "2026-01-11", |_| {}).await;
    wait_backfill(&env, "jan", Duration::from_secs(60), |b| {
        b.status.as_ref().and_then(|s| s.state) == Some(BackfillState::Running)
    })
    .await;
    capture(
        &env,
        "PipelineBackfill",
        "pipelinebackfill",
        "jan",
        "progressing_running.yaml",
    );
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pipelinebackfill/jan",
        "--timeout=180s",
    ]);
    capture(
        &env,
        "PipelineBackfill",
        "pipelinebackfill",
        "jan",
        "healthy_succeeded.yaml",
    );

    // A spec change the operator has not observed yet (it is down): Progressing.
    op.kill();
    env.runs()
        .patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"suspend": true}})),
        )
        .await
        .unwrap();
    capture(
        &env,
        "PipelineRun",
        "pipelinerun",
        "ok",
        "progressing_generation_lag.yaml",
    );
    Api::<tipoff_crds::PipelineSchedule>::namespaced(env.client.clone(), NS)
        .patch(
            "nba",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"suspend": true}})),
        )
        .await
        .unwrap();
    capture(
        &env,
        "PipelineSchedule",
        "pipelineschedule",
        "nba",
        "progressing_generation_lag.yaml",
    );
    let _op = operator(&env, "op-b", false);

    // Drift in Production: blocked before the next phase (Degraded, with the phase).
    env.set_script(&with_sleep(
        &script(&scripted(
            "player-prop-predictions",
            &[
                ("processor", "analytics-processors"),
                ("service", "analytics_processors"),
            ],
        )),
        20,
    ));
    env.create_run_on(
        "drift",
        Mode::Production,
        "2026-01-20",
        super::harness::COMMIT,
    )
    .await;
    env.wait_for("drift", Duration::from_secs(120), |r| {
        state(r) == Some(RunState::Blocked)
    })
    .await;
    capture(
        &env,
        "PipelineRun",
        "pipelinerun",
        "drift",
        "degraded_code_drift.yaml",
    );

    // A permanent failure: the run and its phase fail (Degraded, with the phase).
    env.set_script(&with_sleep(
        &script(&scripted(
            "raw-boxscores",
            &[("outcome", "fail"), ("exitCode", "65")],
        )),
        20,
    ));
    env.create_run_on(
        "failed",
        Mode::Production,
        "2026-01-21",
        super::harness::COMMIT,
    )
    .await;
    env.wait_for("failed", Duration::from_secs(120), |r| {
        state(r) == Some(RunState::Failed)
    })
    .await;
    env.kubectl(&[
        "wait",
        "--for=condition=Stalled",
        "pipelinerun/failed",
        "--timeout=30s",
    ]);
    capture(
        &env,
        "PipelineRun",
        "pipelinerun",
        "failed",
        "degraded_failed.yaml",
    );
    let phase2 = env.phase_completions("failed").await[&2]
        .metadata
        .name
        .clone()
        .unwrap();
    capture(
        &env,
        "PhaseCompletion",
        "phasecompletion",
        &phase2,
        "degraded_failed.yaml",
    );
    create_backfill(&env, "feb", "2026-02-02", "2026-02-02", |_| {}).await;
    wait_backfill(&env, "feb", Duration::from_secs(120), |b| {
        b.status.as_ref().and_then(|s| s.state) == Some(BackfillState::Failed)
    })
    .await;
    capture(
        &env,
        "PipelineBackfill",
        "pipelinebackfill",
        "feb",
        "degraded_failed.yaml",
    );
}
