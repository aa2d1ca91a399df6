//! The operator as `deploy/operator.yaml` deploys it, under RBAC enforcement: the manifest's
//! ServiceAccounts, Role and RoleBinding are applied to `dev/cluster`, and the operator runs
//! with its Deployment's arguments and environment and a token of its ServiceAccount, so every
//! call it makes is authorized by the shipped Role. `dev/cluster` records each decision; the
//! tests fail on any refusal, and on any grant of the Role the operator never used.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde::Deserialize;
use serde_json::Value;

use super::harness::{self, Env, NS, Operator};
use super::is_leader;
use tipoff_crds::{PipelineRun, RunState};

/// The documents of `deploy/operator.yaml`.
pub fn shipped_manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(harness::workspace().join("deploy/operator.yaml")).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| doc.is_object())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The operator started from the shipped manifest.
pub struct Shipped {
    /// The process.
    pub op: Operator,
    /// Its ServiceAccount's user name.
    pub user: String,
    /// The `--processor-service-account` argument.
    pub processor_account: String,
    /// The `--processor-env-configmap` argument.
    pub processor_configmap: String,
}

/// Applies the manifest's ServiceAccounts, Role and RoleBinding (moved from the manifest's
/// namespace to the test namespace, the one difference from `kubectl apply`), then starts the
/// operator the way the Deployment's Pod would run, as its ServiceAccount, with `extra_args`
/// after the manifest's; waits until it leads and is ready.
pub async fn start_shipped_operator(env: &Env, name: &str, extra_args: &[String]) -> Shipped {
    let docs = shipped_manifest();
    for doc in ["ServiceAccount", "Role", "RoleBinding"]
        .iter()
        .flat_map(|kind| of_kind(&docs, kind))
    {
        let mut object = doc.clone();
        object["metadata"]["namespace"] = NS.into();
        for subject in object["subjects"].as_array_mut().into_iter().flatten() {
            subject["namespace"] = NS.into();
        }
        let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (
                String::new(),
                object["apiVersion"].as_str().unwrap().to_owned(),
            ),
        };
        let kind = object["kind"].as_str().unwrap().to_owned();
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&group, &version, &kind),
            &format!("{}s", kind.to_lowercase()),
        );
        let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), NS, &resource);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(object).unwrap(),
        )
        .await
        .unwrap_or_else(|e| panic!("applying the shipped {kind}: {e}"));
    }

    let deployment: Deployment =
        serde_json::from_value(of_kind(&docs, "Deployment")[0].clone()).unwrap();
    let pod = deployment.spec.template.spec.unwrap();
    let container = &pod.containers[0];
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "catalog")
        .unwrap();
    let catalog_dir = env.dir.path().join(format!("{name}-catalog-configmap"));
    std::fs::create_dir(&catalog_dir).unwrap();
    std::fs::copy(harness::test_catalog(), catalog_dir.join("pipeline.yaml")).unwrap();
    let mut args: Vec<String> = container
        .args
        .iter()
        .flatten()
        .map(|a| a.replace(&mount.mount_path, &catalog_dir.display().to_string()))
        .collect();
    args.extend_from_slice(extra_args);
    let mut vars: Vec<(String, String)> = container
        .env
        .iter()
        .flatten()
        .map(|var| {
            let field = var
                .value_from
                .as_ref()
                .and_then(|f| f.field_ref.as_ref())
                .map(|f| f.field_path.as_str());
            let value = match (field, &var.value) {
                (Some("metadata.namespace"), _) => NS.to_owned(),
                (Some("metadata.name"), _) => format!("tipoff-operator-7d4b9-{name}"),
                (None, Some(value)) => value.clone(),
                other => panic!("{}: no value for {other:?}", var.name),
            };
            (var.name.clone(), value)
        })
        .collect();
    // The one difference from the Pod: a free port instead of 8080 (tests run in parallel).
    vars.push(("TIPOFF_LISTEN".into(), "127.0.0.1:0".into()));

    // What the manifest's arguments name must exist, as `kubectl apply` would have made it.
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap()
            .to_owned()
    };
    let (processor_account, processor_configmap) = (
        flag("processor-service-account"),
        flag("processor-env-configmap"),
    );
    assert!(
        of_kind(&docs, "ServiceAccount")
            .iter()
            .any(|sa| sa["metadata"]["name"] == processor_account.as_str()),
        "the manifest creates the processors' ServiceAccount {processor_account}"
    );
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(env.client.clone(), NS);
    maps.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({
            "metadata": {"name": processor_configmap}, "data": {"TIPOFF_DEPLOYED_BY": "deploy/operator.yaml"}
        }))
        .unwrap(),
    )
    .await
    .unwrap();

    let account = pod.service_account_name.clone().unwrap();
    let kubeconfig = env
        .dir
        .path()
        .join(format!("{name}-serviceaccount-kubeconfig"));
    std::fs::write(
        &kubeconfig,
        env.cluster
            .service_account_kubeconfig(NS, &account)
            .unwrap(),
    )
    .unwrap();
    let op = env.spawn_operator_as(name, &args, vars, &kubeconfig);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(is_leader(&op) && op.get("/readyz").map(|r| r.0) == Some(200)) {
        assert!(
            Instant::now() < deadline,
            "never leader and ready:\n{}\nrefused: {:#?}",
            op.log(),
            refused(env, &format!("system:serviceaccount:{NS}:{account}"))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Shipped {
        op,
        user: format!("system:serviceaccount:{NS}:{account}"),
        processor_account,
        processor_configmap,
    }
}

/// Every request of `user` the API server refused, with how often.
pub fn refused(env: &Env, user: &str) -> Vec<String> {
    env.cluster
        .authorization_decisions()
        .into_iter()
        .filter(|(d, _)| d.user == user && !d.allowed)
        .map(|(d, n)| {
            format!(
                "{n} x {} {}{}{} in {:?}",
                d.verb,
                if d.group.is_empty() {
                    String::new()
                } else {
                    format!("{}/", d.group)
                },
                d.resource,
                if d.subresource.is_empty() {
                    String::new()
                } else {
                    format!("/{}", d.subresource)
                },
                d.namespace
            )
        })
        .collect()
}

/// `(apiGroup, resource[/subresource], verb)` of every grant in the shipped Role.
pub fn role_grants() -> BTreeSet<(String, String, String)> {
    let docs = shipped_manifest();
    let mut grants = BTreeSet::new();
    for role in of_kind(&docs, "Role") {
        for rule in role["rules"].as_array().into_iter().flatten() {
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect()
            };
            assert!(
                list("resourceNames").is_empty(),
                "resourceNames are not compared yet"
            );
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        grants.insert((group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    grants
}

/// The grants of the Role that `user` never used.
pub fn unused_grants(env: &Env, user: &str) -> Vec<String> {
    let used: BTreeSet<(String, String, String)> = env
        .cluster
        .authorization_decisions()
        .into_iter()
        .filter(|(d, _)| d.user == user && d.allowed)
        .map(|(d, _)| {
            let resource = if d.subresource.is_empty() {
                d.resource
            } else {
                format!("{}/{}", d.resource, d.subresource)
            };
            (d.group, resource, d.verb)
        })
        .collect();
    role_grants()
        .into_iter()
        .filter(|grant| !used.contains(grant))
        .map(|(group, resource, verb)| format!("{verb} {group:?} {resource}"))
        .collect()
}

/// Runs (one stopped by its 60 s deadline, which deletes its live Job), a backfill and a schedule
/// (whose history limit deletes a run) with the operator under the shipped Role: nothing may
/// be refused, and every grant of the Role must have been used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_role_grants_exactly_what_the_operator_uses() {
    use super::backfill::{backfill_state, create_backfill, wait_backfill};
    use super::schedule::{create_schedule, game_days, set_clock, wait_for_dates};
    use super::{script, with_sleep};
    use tipoff_crds::{BackfillState, Mode};

    let hang = with_sleep(&script("  raw-schedule: {outcome: hang}\n"), 20);
    let env = Env::start(&hang, None).await;
    let clock = set_clock(&env, "2026-01-26T12:00:00Z");
    let shipped = start_shipped_operator(
        &env,
        "usage",
        &["--test-clock-file".into(), clock.display().to_string()],
    )
    .await;
    let failed = |what: &str| {
        format!(
            "{what}\nrefused: {:#?}\n{}",
            refused(&env, &shipped.user),
            shipped.op.log()
        )
    };

    // A run past its deadline (60 s, the least allowed) with a hanging processor: the
    // operator deletes its live Job. Later processes do not hang.
    env.create_run_with("overdue", Mode::Production, |spec| {
        spec.deadline_seconds = Some(60);
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.jobs("overdue").await.is_empty() {
        let refused = refused(&env, &shipped.user);
        assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
        assert!(
            Instant::now() < deadline,
            "{}",
            failed("no Job for overdue")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    super::failures::wait_for_running_pod(&env, "overdue", "raw-schedule", 1).await;
    env.set_script(&with_sleep(&script("  {}\n"), 20));

    // A plain run, a backfill of two dates, and a schedule keeping one successful run.
    env.create_run("plain", Mode::Production).await;
    create_backfill(&env, "jan", "2026-01-10", "2026-01-11", |_| {}).await;
    let run = wait_run(&env, &shipped, "plain", Duration::from_secs(120)).await;
    assert_eq!(
        harness::state(&run),
        Some(RunState::Succeeded),
        "{}",
        failed("plain")
    );
    wait_backfill(&env, "jan", Duration::from_secs(180), |b| {
        backfill_state(b).is_some_and(BackfillState::is_terminal)
    })
    .await;
    game_days(&env, "2026-01-24", "2026-01-25", &[]).await;
    create_schedule(&env, |s| {
        s.start_date = Some("2026-01-24".into());
        s.catch_up_window = "72h".into();
        s.successful_runs_history_limit = 1;
    })
    .await;
    wait_for_dates(
        &env,
        &["2026-01-24", "2026-01-25"],
        Duration::from_secs(180),
    )
    .await;
    // Days later both are out of the catch-up window: the older run is deleted past the
    // history limit. (A touch of the schedule makes the operator look at the new time.)
    set_clock(&env, "2026-01-30T12:00:00Z");
    Api::<tipoff_crds::PipelineSchedule>::namespaced(env.client.clone(), NS)
        .patch(
            "nba",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({
                "metadata": {"annotations": {"test.tipoff.dev/touched": "1"}}
            })),
        )
        .await
        .unwrap();
    wait_for_dates(&env, &["2026-01-25"], Duration::from_secs(120)).await;
    let run = wait_run(&env, &shipped, "overdue", Duration::from_secs(120)).await;
    assert_eq!(
        harness::state(&run),
        Some(RunState::Failed),
        "{}",
        failed("overdue")
    );

    let refused = refused(&env, &shipped.user);
    assert!(
        refused.is_empty(),
        "the API server refused the operator:\n{}",
        refused.join("\n")
    );
    let unused = unused_grants(&env, &shipped.user);
    assert!(
        unused.is_empty(),
        "deploy/operator.yaml's Role grants what the operator never used:\n{}",
        unused.join("\n")
    );
}

/// Waits until the run `name` ends, failing at once (with the list) if the API server refused
/// the operator anything.
pub async fn wait_run(env: &Env, shipped: &Shipped, name: &str, timeout: Duration) -> PipelineRun {
    let deadline = Instant::now() + timeout;
    loop {
        let refused = refused(env, &shipped.user);
        assert!(
            refused.is_empty(),
            "the API server refused the operator:\n{}\n{}",
            refused.join("\n"),
            shipped.op.log()
        );
        if let Some(run) = env.runs().get_opt(name).await.unwrap()
            && harness::state(&run).is_some_and(RunState::is_terminal)
        {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {name} did not end in {timeout:?}\n{}",
            shipped.op.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
