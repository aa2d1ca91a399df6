//! The Helm chart `charts/tipoff`: `helm lint` and `helm template` of several values sets,
//! every rendering checked by `kubernetes-validate --strict`, and the renderings that matter
//! asserted (restricted Pod specs, the Role's rules, the switches, the catalog checksum). The
//! operator Deployment's arguments are run through the operator's own parser and the rendered
//! catalog is loaded (`tipoff-operator --check-config`), so a chart value cannot produce a
//! Deployment that would crash at start-up.
//!
//! `helm` (scripts/bin/helm on Helm v4's SDK) and `kubernetes-validate` come from the project's
//! virtualenv: `source scripts/lib/pyenv.sh` puts both on PATH (scripts/test.sh does).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_yaml::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart() -> PathBuf {
    workspace().join("charts/tipoff")
}

/// A tool of the project's virtualenv, or a failure that says how to get it.
fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` is not on PATH: run `source scripts/lib/pyenv.sh` first (it installs \
             scripts/requirements-dev.txt into the project's virtualenv and puts scripts/bin \
             on PATH; scripts/test.sh does this)"
        )
    })
}

fn run(mut command: Command) -> Output {
    let shown = format!("{command:?}");
    command
        .output()
        .unwrap_or_else(|e| panic!("running {shown}: {e}"))
}

/// `helm template tipoff charts/tipoff -n tipoff` with `--set` expressions and values files.
fn template(sets: &[&str], files: &[&Path]) -> Result<String, String> {
    template_chart(&chart(), sets, files)
}

fn template_chart(chart: &Path, sets: &[&str], files: &[&Path]) -> Result<String, String> {
    let mut command = Command::new(tool("helm"));
    command.args(["template", "tipoff"]).arg(chart);
    command.args(["--namespace", "tipoff"]);
    for set in sets {
        command.args(["--set", set]);
    }
    for file in files {
        command.arg("-f").arg(file);
    }
    let out = run(command);
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn rendered(sets: &[&str]) -> Vec<Value> {
    docs(&template(sets, &[]).unwrap_or_else(|e| panic!("helm template {sets:?}: {e}")))
}

fn docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    match of_kind(docs, kind).as_slice() {
        [doc] => doc,
        other => panic!("expected one {kind}, found {}", other.len()),
    }
}

fn strs(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| s.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The values sets the chart is rendered with: every switch on and off at least once.
const VALUES_SETS: &[(&str, &[&str])] = &[
    ("defaults", &[]),
    ("cluster-wide", &["rbac.clusterWide=true"]),
    (
        "monitoring with a ServiceMonitor",
        &[
            "metrics.serviceMonitor.enabled=true",
            "metrics.prometheusRule.enabled=true",
            "metrics.serviceMonitor.labels.release=prometheus",
        ],
    ),
    (
        "monitoring with a PodMonitor",
        &["metrics.podMonitor.enabled=true"],
    ),
    (
        "network policy",
        &[
            "networkPolicy.enabled=true",
            "networkPolicy.apiServer.cidrs={10.0.0.1/32,10.0.0.2/32}",
        ],
    ),
    ("crds off", &["crds.enabled=false"]),
    ("crds not kept", &["crds.keep=false"]),
    (
        "processors configured",
        &[
            "processors.serviceAccount.gcpServiceAccount=tipoff@example.iam.gserviceaccount.com",
            "processors.env.TIPOFF_WAREHOUSE=bigquery://example",
            "processors.upstreamKeys[0].service=odds",
            "processors.upstreamKeys[0].value=not-a-real-key",
            "processors.upstreamKeys[1].service=balldontlie",
            "processors.upstreamKeys[1].existingSecret=tipoff-keys",
            "processors.upstreamKeys[1].key=bdl",
            "processors.resources.limits.cpu=2",
            "operator.allowedImageRepositories={ghcr.io/tipoff-dev/processor}",
            "image.digest=sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ],
    ),
    (
        "game-day CronJob",
        &[
            "gameDays.enabled=true",
            "gameDays.image=ghcr.io/tipoff-dev/processor@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ],
    ),
    (
        "one replica without leader election",
        &[
            "operator.replicas=1",
            "operator.leaderElection=false",
            "operator.podDisruptionBudget.enabled=false",
            "operator.topologySpread.enabled=false",
        ],
    ),
];

/// Kinds `kubernetes-validate` has no schema for (Prometheus Operator CRDs): it only warns on
/// them, and `validate-monitoring` checks them strictly instead (scripts/bin/validate-monitoring).
const NO_SCHEMA_KINDS: &[&str] = &["ServiceMonitor", "PodMonitor", "PrometheusRule"];

#[test]
fn helm_lint_passes_for_every_values_set() {
    for (name, sets) in VALUES_SETS {
        let mut command = Command::new(tool("helm"));
        command.arg("lint").arg(chart()).arg("--strict");
        for set in *sets {
            command.args(["--set", set]);
        }
        let out = run(command);
        assert!(
            out.status.success(),
            "helm lint --strict ({name}) failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_rendering_passes_kubernetes_validate_strict() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, sets)) in VALUES_SETS.iter().enumerate() {
        let text = template(sets, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let file = dir.path().join(format!("{i}.yaml"));
        std::fs::write(&file, &text).unwrap();
        let mut command = Command::new(tool("kubernetes-validate"));
        command.args(["--strict", "--quiet"]).arg(&file);
        let out = run(command);
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{name}: {report}");
        // A kind without a schema is only a warning: allow exactly the monitoring ones.
        for line in report.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                NO_SCHEMA_KINDS
                    .iter()
                    .any(|k| line.contains(&format!("schema for kind {k} "))),
                "{name}: kubernetes-validate reported: {line}"
            );
        }
        let kinds: BTreeSet<_> = docs(&text)
            .iter()
            .map(|d| d["kind"].as_str().unwrap().to_owned())
            .collect();
        assert!(kinds.contains("Deployment"), "{name}: {kinds:?}");

        let mut command = Command::new(tool("validate-monitoring"));
        command.arg(&file);
        let out = run(command);
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: validate-monitoring:\n{report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = kinds
            .iter()
            .filter(|k| NO_SCHEMA_KINDS.contains(&k.as_str()))
            .count();
        assert!(
            report.contains(&format!("{expected} object(s) checked, 0 error(s)")),
            "{name}: {report}"
        );
    }
}

#[test]
fn both_monitors_at_once_are_refused_with_the_reason() {
    let err = template(
        &[
            "metrics.serviceMonitor.enabled=true",
            "metrics.podMonitor.enabled=true",
        ],
        &[],
    )
    .unwrap_err();
    assert!(
        err.contains("metrics.serviceMonitor.enabled and metrics.podMonitor.enabled are both true: choose one"),
        "{err}"
    );
}

#[test]
fn values_that_cannot_work_are_refused_with_the_reason() {
    for (sets, expected) in [
        (
            &["networkPolicy.enabled=true"][..],
            "networkPolicy.enabled needs networkPolicy.apiServer.cidrs",
        ),
        (
            &["operator.leaderElection=false"][..],
            "operator.leaderElection is false with operator.replicas > 1",
        ),
        (
            &["processors.upstreamKeys[0].service=odds"][..],
            "processors.upstreamKeys[odds]: set existingSecret",
        ),
        (
            &[
                "processors.upstreamKeys[0].service=odds",
                "processors.upstreamKeys[0].value=k",
                "processors.upstreamKeys[0].existingSecret=s",
            ][..],
            "processors.upstreamKeys[odds]: set existingSecret or value, not both",
        ),
        (
            &[
                "gameDays.enabled=true",
                "gameDays.image=ghcr.io/tipoff-dev/processor:latest",
            ][..],
            "gameDays.image must be the processor image pinned by digest",
        ),
    ] {
        let err = template(sets, &[]).unwrap_err();
        assert!(err.contains(expected), "{sets:?}: {err}");
    }
}

#[test]
fn the_schema_rejects_unknown_keys_and_wrong_types() {
    for (sets, expected) in [
        (
            &["operator.replica=2"][..],
            "additional properties 'replica' not allowed",
        ),
        (
            &["bogus=1"][..],
            "additional properties 'bogus' not allowed",
        ),
        (&["crds.enabled=yes"][..], "want boolean"),
        (&["operator.replicas=two"][..], "want integer"),
        (
            &[
                "processors.upstreamKeys[0].service=odds",
                "processors.upstreamKeys[0].vaule=k",
            ][..],
            "additional properties 'vaule' not allowed",
        ),
        (&["operator.logFormat=xml"][..], "logFormat"),
        (&["image.digest=latest"][..], "digest"),
        (&["metrics.podMonitor.interval=30"][..], "interval"),
    ] {
        let err = template(sets, &[]).unwrap_err();
        assert!(err.contains(expected), "{sets:?}: {err}");
    }
}

/// Every object the schema describes refuses unknown keys: each `object` node of
/// values.schema.json has `additionalProperties: false` unless it is a free map of strings
/// (labels, annotations, env) or a Kubernetes type passed through (affinity, tolerations).
#[test]
fn the_schema_closes_every_object() {
    fn walk(node: &serde_json::Value, path: &str, open: &mut Vec<String>) {
        let Some(map) = node.as_object() else { return };
        if map.get("type") == Some(&serde_json::json!("object")) {
            match map.get("additionalProperties") {
                Some(serde_json::Value::Bool(false)) => {}
                Some(serde_json::Value::Object(_)) => {} // a typed free map
                _ => open.push(path.to_owned()),
            }
        }
        for (key, child) in map {
            let child_path = format!("{path}/{key}");
            match child {
                serde_json::Value::Object(_) => walk(child, &child_path, open),
                serde_json::Value::Array(items) => {
                    for item in items {
                        walk(item, &child_path, open);
                    }
                }
                _ => {}
            }
        }
    }
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(chart().join("values.schema.json")).unwrap())
            .unwrap();
    let mut open = Vec::new();
    walk(&schema, "", &mut open);
    let passed_through = [
        "/properties/global",
        "/properties/operator/properties/affinity",
        "/properties/operator/properties/tolerations/items",
    ];
    open.retain(|p| !passed_through.contains(&p.as_str()));
    assert!(
        open.is_empty(),
        "objects that accept unknown keys: {open:?}"
    );
}

/// The operator's Pod meets the `restricted` Pod Security Standard in every values set, with
/// probes, requests and limits.
#[test]
fn the_operator_pod_is_pss_restricted_with_probes_and_resources() {
    for (name, sets) in VALUES_SETS {
        let docs = rendered(sets);
        let deployment = one(&docs, "Deployment");
        let pod = &deployment["spec"]["template"]["spec"];
        let psc = &pod["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true, "{name}");
        assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
        assert!(psc["runAsUser"].as_u64().unwrap() > 0, "{name}");
        for forbidden in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(
                pod[forbidden].is_null() || pod[forbidden] == false,
                "{name}: {forbidden}"
            );
        }
        for volume in pod["volumes"].as_sequence().unwrap() {
            assert!(volume["hostPath"].is_null(), "{name}: {volume:?}");
        }
        let containers = pod["containers"].as_sequence().unwrap();
        assert_eq!(containers.len(), 1, "{name}");
        let c = &containers[0];
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"], "{name}");
        assert!(sc["capabilities"]["add"].is_null(), "{name}");
        assert!(sc["privileged"].is_null(), "{name}");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{name}");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{name}");
        assert!(!c["resources"]["requests"]["cpu"].is_null(), "{name}");
        assert!(!c["resources"]["requests"]["memory"].is_null(), "{name}");
        assert!(!c["resources"]["limits"]["memory"].is_null(), "{name}");
    }
    let docs = rendered(&[]);
    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let spread = &deployment["spec"]["template"]["spec"]["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(
        spread["labelSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let pdb = one(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let args = strs(&deployment["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(args.contains(&"--leader-elect=true".to_owned()), "{args:?}");
    // One Lease per release: another release in the namespace elects its own leader.
    assert!(
        args.contains(&"--lease-name=tipoff-operator".to_owned()),
        "{args:?}"
    );
    let mut command = Command::new(tool("helm"));
    command.args(["template", "prod"]).arg(chart());
    let out = run(command);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = docs_of(String::from_utf8(out.stdout).unwrap());
    let args =
        strs(&one(&other, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(
        args.contains(&"--lease-name=prod-tipoff-operator".to_owned()),
        "{args:?}"
    );
}

/// (apiGroup, resource, verb) triples a role grants, failing on wildcards.
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_sequence().unwrap() {
        for group in strs(&rule["apiGroups"]) {
            for resource in strs(&rule["resources"]) {
                for verb in strs(&rule["verbs"]) {
                    assert!(
                        group != "*" && resource != "*" && verb != "*",
                        "wildcard in {rule:?}"
                    );
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
        assert!(rule["nonResourceURLs"].is_null(), "{rule:?}");
    }
    out
}

fn triples(spec: &[(&str, &[&str], &[&str])]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (group, resources, verbs) in spec {
        for resource in *resources {
            for verb in *verbs {
                out.insert((group.to_string(), resource.to_string(), verb.to_string()));
            }
        }
    }
    out
}

/// What the operator calls (docs/operations.md, "Deploy"; operator/tests/e2e/rbac.rs proves
/// each is used under enforcement), plus `update` on its owners' finalizers for
/// `blockOwnerDeletion`; the Lease separately.
fn operator_grants() -> BTreeSet<(String, String, String)> {
    triples(&[
        (
            "tipoff.dev",
            &["pipelineruns"],
            &["list", "watch", "create", "patch", "delete"],
        ),
        (
            "tipoff.dev",
            &["phasecompletions"],
            &["list", "watch", "create", "patch"],
        ),
        (
            "tipoff.dev",
            &["pipelinebackfills", "pipelineschedules"],
            &["list", "watch"],
        ),
        (
            "tipoff.dev",
            &[
                "pipelineruns/status",
                "phasecompletions/status",
                "pipelinebackfills/status",
                "pipelineschedules/status",
            ],
            &["patch"],
        ),
        (
            "tipoff.dev",
            &[
                "pipelineruns/finalizers",
                "pipelinebackfills/finalizers",
                "pipelineschedules/finalizers",
            ],
            &["update"],
        ),
        ("", &["configmaps"], &["get", "list", "watch"]),
        ("", &["pods"], &["list", "watch"]),
        (
            "batch",
            &["jobs"],
            &["list", "watch", "create", "patch", "delete"],
        ),
        ("events.k8s.io", &["events"], &["create"]),
    ])
}

fn lease_grants() -> BTreeSet<(String, String, String)> {
    triples(&[(
        "coordination.k8s.io",
        &["leases"],
        &["get", "create", "update"],
    )])
}

fn env_names(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn by_default_a_namespaced_role_grants_exactly_the_operators_calls() {
    let docs = rendered(&[]);
    let role = one(&docs, "Role");
    assert_eq!(role["metadata"]["namespace"], "tipoff");
    let expected: BTreeSet<_> = operator_grants().union(&lease_grants()).cloned().collect();
    assert_eq!(grants(role), expected);
    let binding = one(&docs, "RoleBinding");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let deployment = one(&docs, "Deployment");
    assert_eq!(
        binding["subjects"][0]["name"],
        deployment["spec"]["template"]["spec"]["serviceAccountName"]
    );
    assert!(of_kind(&docs, "ClusterRoleBinding").is_empty());
    // Only the aggregated user roles are cluster-scoped, and they grant no write on the ledger.
    for role in of_kind(&docs, "ClusterRole") {
        let labels = &role["metadata"]["labels"];
        assert!(
            labels["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
                || labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true",
            "{role:?}"
        );
        for (_, resource, verb) in grants(role) {
            assert!(
                resource != "phasecompletions" || ["get", "list", "watch"].contains(&verb.as_str()),
                "users may not {verb} phasecompletions"
            );
        }
    }
    assert!(env_names(deployment).contains(&"TIPOFF_NAMESPACE".to_owned()));
}

#[test]
fn the_aggregated_roles_let_viewers_read_and_editors_write_runs() {
    let docs = rendered(&[]);
    let by_label = |label: &str| -> BTreeSet<(String, String, String)> {
        of_kind(&docs, "ClusterRole")
            .into_iter()
            .filter(|r| r["metadata"]["labels"][label] == "true")
            .flat_map(grants)
            .collect()
    };
    let view = by_label("rbac.authorization.k8s.io/aggregate-to-view");
    let edit = by_label("rbac.authorization.k8s.io/aggregate-to-edit");
    for resource in [
        "pipelineruns",
        "phasecompletions",
        "pipelinebackfills",
        "pipelineschedules",
    ] {
        for verb in ["get", "list", "watch"] {
            let t = (
                "tipoff.dev".to_owned(),
                resource.to_owned(),
                verb.to_owned(),
            );
            assert!(view.contains(&t) && edit.contains(&t), "{t:?}");
        }
    }
    assert!(
        view.iter()
            .all(|(_, _, v)| ["get", "list", "watch"].contains(&v.as_str()))
    );
    for verb in ["create", "patch", "delete"] {
        let t = (
            "tipoff.dev".to_owned(),
            "pipelineruns".to_owned(),
            verb.to_owned(),
        );
        assert!(edit.contains(&t), "{t:?}");
    }
    assert!(
        of_kind(
            &rendered(&["rbac.aggregateToDefaultRoles=false"]),
            "ClusterRole"
        )
        .is_empty()
    );
}

#[test]
fn cluster_wide_uses_a_cluster_role_and_keeps_the_lease_namespaced() {
    let docs = rendered(&["rbac.clusterWide=true"]);
    let operator_role = of_kind(&docs, "ClusterRole")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "tipoff-operator")
        .expect("a ClusterRole tipoff-operator");
    assert_eq!(grants(operator_role), operator_grants());
    let binding = one(&docs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], "tipoff-operator");
    assert_eq!(binding["subjects"][0]["namespace"], "tipoff");
    assert_eq!(grants(one(&docs, "Role")), lease_grants());
    // Without TIPOFF_NAMESPACE the operator watches every namespace (operator/src/main.rs).
    let deployment = one(&docs, "Deployment");
    assert!(!env_names(deployment).contains(&"TIPOFF_NAMESPACE".to_owned()));
    assert!(env_names(deployment).contains(&"POD_NAMESPACE".to_owned()));
}

/// Everything the test compares the chart's CRDs with: crds/generated/, parsed.
fn generated_crds() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(workspace().join("crds/generated"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                serde_yaml::from_str(&text).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn the_chart_crds_are_crds_generated_and_switchable() {
    // The chart's copies are byte for byte the generated files (scripts/render-deploy.sh).
    for (file, _) in generated_crds() {
        let generated = std::fs::read(workspace().join("crds/generated").join(&file)).unwrap();
        let copy = std::fs::read(chart().join("files/crds").join(&file)).unwrap_or_else(|e| {
            panic!("charts/tipoff/files/crds/{file}: {e} (run scripts/render-deploy.sh)")
        });
        assert!(
            generated == copy,
            "charts/tipoff/files/crds/{file} differs from crds/generated/{file}: run scripts/render-deploy.sh"
        );
    }
    assert_eq!(
        std::fs::read_dir(chart().join("files/crds"))
            .unwrap()
            .count(),
        generated_crds().len(),
        "charts/tipoff/files/crds has files crds/generated has not"
    );

    // Rendered: the same objects plus the chart's labels and, by default, the keep policy.
    let docs = rendered(&[]);
    let crds = of_kind(&docs, "CustomResourceDefinition");
    assert_eq!(crds.len(), generated_crds().len());
    for (file, generated) in generated_crds() {
        let name = generated["metadata"]["name"].as_str().unwrap();
        let crd = crds
            .iter()
            .find(|c| c["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{file} not rendered"));
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "{name}"
        );
        assert_eq!(
            crd["metadata"]["labels"]["app.kubernetes.io/part-of"],
            "tipoff"
        );
        let mut stripped = (*crd).clone();
        let meta = stripped["metadata"].as_mapping_mut().unwrap();
        meta.remove("labels");
        meta.remove("annotations");
        assert!(
            stripped == generated,
            "{name}: the rendered CRD differs from {file}"
        );
    }

    let not_kept = rendered(&["crds.keep=false"]);
    for crd in of_kind(&not_kept, "CustomResourceDefinition") {
        assert!(crd["metadata"]["annotations"].is_null(), "{crd:?}");
    }
    assert!(
        of_kind(
            &rendered(&["crds.enabled=false"]),
            "CustomResourceDefinition"
        )
        .is_empty()
    );
}

fn pod_annotation(docs: &[Value], key: &str) -> String {
    one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no Pod annotation {key}"))
        .to_owned()
}

fn catalog_values(dir: &Path, name: &str, catalog: &str) -> PathBuf {
    let file = dir.join(name);
    let values = serde_json::json!({"catalog": {"pipeline": catalog}});
    std::fs::write(&file, serde_yaml::to_string(&values).unwrap()).unwrap();
    file
}

#[test]
fn the_catalog_configmap_is_the_production_catalog_and_a_change_rolls_the_operator() {
    let shipped = std::fs::read_to_string(workspace().join("config/pipeline.yaml")).unwrap();
    assert_eq!(
        std::fs::read_to_string(chart().join("files/pipeline.yaml")).unwrap(),
        shipped,
        "charts/tipoff/files/pipeline.yaml differs from config/pipeline.yaml: run scripts/render-deploy.sh"
    );
    let docs = rendered(&[]);
    let catalog = of_kind(&docs, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "tipoff-catalog")
        .expect("the catalog ConfigMap");
    let text = catalog["data"]["pipeline.yaml"].as_str().unwrap();
    assert_eq!(text.trim_end(), shipped.trim_end());
    let default = pod_annotation(&docs, "checksum/catalog");
    assert_eq!(default.len(), 64, "{default}");

    // The checksum is a function of the catalog's text: the same text given as a value gives
    // the same checksum, another text another one.
    let dir = tempfile::tempdir().unwrap();
    let same = catalog_values(dir.path(), "same.yaml", &shipped);
    let same_docs = docs_of(template(&[], &[&same]).unwrap());
    assert_eq!(pod_annotation(&same_docs, "checksum/catalog"), default);
    let test_catalog =
        std::fs::read_to_string(workspace().join("config/test/pipeline.yaml")).unwrap();
    let other = catalog_values(dir.path(), "other.yaml", &test_catalog);
    let other_docs = docs_of(template(&[], &[&other]).unwrap());
    assert_ne!(pod_annotation(&other_docs, "checksum/catalog"), default);
    let other_map = of_kind(&other_docs, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "tipoff-catalog")
        .unwrap();
    assert_eq!(
        other_map["data"]["pipeline.yaml"]
            .as_str()
            .unwrap()
            .trim_end(),
        test_catalog.trim_end()
    );
}

fn docs_of(text: String) -> Vec<Value> {
    docs(&text)
}

/// Runs `tipoff-operator --check-config` with a rendered Deployment's arguments and
/// environment, the catalog mount pointing at the rendered catalog ConfigMap's file.
fn check_config(name: &str, docs: &[Value]) {
    let dir = tempfile::tempdir().unwrap();
    let deployment = one(docs, "Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "catalog")
        .expect("a catalog mount");
    let mount_path = mount["mountPath"].as_str().unwrap();
    let volume = deployment["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "catalog")
        .unwrap();
    let map = of_kind(docs, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == volume["configMap"]["name"])
        .expect("the ConfigMap the catalog volume names");
    for (key, value) in map["data"].as_mapping().unwrap() {
        std::fs::write(
            dir.path().join(key.as_str().unwrap()),
            value.as_str().unwrap(),
        )
        .unwrap();
    }
    let args: Vec<String> = strs(&container["args"])
        .into_iter()
        .map(|a| a.replace(mount_path, &dir.path().display().to_string()))
        .collect();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tipoff-operator"));
    command.args(&args).arg("--check-config");
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for var in container["env"].as_sequence().unwrap() {
        let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            Some("metadata.namespace") => "tipoff".to_owned(),
            Some("metadata.name") => "tipoff-operator-7d4b9-x2x5q".to_owned(),
            Some(other) => panic!("{name}: unexpected fieldRef {other}"),
            None => var["value"].as_str().unwrap().to_owned(),
        };
        command.env(var["name"].as_str().unwrap(), value);
    }
    let out = run(command);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name}: tipoff-operator {args:?} --check-config failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("configuration valid"), "{name}: {stdout}");
}

#[test]
fn the_deployments_arguments_parse_and_its_catalog_loads() {
    for (name, sets) in VALUES_SETS {
        check_config(name, &rendered(sets));
    }
}

/// `--check-config` is a real check: a Deployment the operator would refuse fails it.
#[test]
fn a_bad_operator_configuration_fails_the_check() {
    let bad = rendered(&["operator.extraArgs={--lease-renew-seconds=60}"]);
    let result = std::panic::catch_unwind(|| check_config("bad lease", &bad));
    assert!(
        result.is_err(),
        "a renew period above the lease duration passed the check"
    );
    let bad = rendered(&["operator.extraArgs={--no-such-flag=1}"]);
    let result = std::panic::catch_unwind(|| check_config("unknown flag", &bad));
    assert!(result.is_err(), "an unknown flag passed the check");
}

#[test]
fn the_processors_settings_reach_the_operator_and_their_service_account() {
    let docs = rendered(VALUES_SETS[7].1);
    let accounts = of_kind(&docs, "ServiceAccount");
    let processor = accounts
        .iter()
        .find(|a| a["metadata"]["name"] == "tipoff-processor")
        .unwrap();
    assert_eq!(
        processor["metadata"]["annotations"]["iam.gke.io/gcp-service-account"],
        "tipoff@example.iam.gserviceaccount.com"
    );
    assert_eq!(processor["automountServiceAccountToken"], false);
    let env = of_kind(&docs, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "tipoff-processor-env")
        .unwrap();
    assert_eq!(env["data"]["TIPOFF_WAREHOUSE"], "bigquery://example");
    // A value becomes the chart's Secret; an existing Secret is only referenced.
    let secrets = of_kind(&docs, "Secret");
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0]["metadata"]["name"], "tipoff-upstream-odds");
    assert!(secrets[0]["data"]["api-key"].is_string());
    let deployment = one(&docs, "Deployment");
    let args = strs(&deployment["spec"]["template"]["spec"]["containers"][0]["args"]);
    for expected in [
        "--upstream-secret=odds=tipoff-upstream-odds/api-key",
        "--upstream-secret=balldontlie=tipoff-keys/bdl",
        "--processor-service-account=tipoff-processor",
        "--processor-env-configmap=tipoff-processor-env",
        "--processor-cpu-limit=2",
        "--processor-memory-limit=1Gi",
        "--allowed-image-repository=ghcr.io/tipoff-dev/processor",
    ] {
        assert!(
            args.contains(&expected.to_owned()),
            "{expected} not in {args:?}"
        );
    }
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "tipoff-operator@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    assert!(of_kind(&rendered(&[]), "Secret").is_empty());
}

#[test]
fn the_network_policy_allows_the_api_server_dns_and_metrics_only() {
    assert!(of_kind(&rendered(&[]), "NetworkPolicy").is_empty());
    let docs = rendered(VALUES_SETS[4].1);
    let policy = one(&docs, "NetworkPolicy");
    let spec = &policy["spec"];
    assert_eq!(strs(&spec["policyTypes"]), ["Ingress", "Egress"]);
    let egress = spec["egress"].as_sequence().unwrap();
    assert_eq!(egress.len(), 2);
    let cidrs: Vec<_> = egress[0]["to"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t["ipBlock"]["cidr"].as_str().unwrap())
        .collect();
    assert_eq!(cidrs, ["10.0.0.1/32", "10.0.0.2/32"]);
    let dns_ports: Vec<_> = egress[1]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(dns_ports, [53, 53]);
    let ingress = spec["ingress"].as_sequence().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(
        ingress[0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    assert_eq!(
        spec["podSelector"]["matchLabels"],
        one(&docs, "Deployment")["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn monitoring_objects_select_the_operator_and_carry_the_alert_rules() {
    assert!(of_kind(&rendered(&[]), "ServiceMonitor").is_empty());
    let docs = rendered(VALUES_SETS[2].1);
    let monitor = one(&docs, "ServiceMonitor");
    let service = one(&docs, "Service");
    // The ServiceMonitor selects the Service by labels it has, on a port it names.
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .unwrap()
    {
        assert_eq!(&service["metadata"]["labels"][key.as_str().unwrap()], value);
    }
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert!(of_kind(&docs, "PodMonitor").is_empty());

    let pod_docs = rendered(VALUES_SETS[3].1);
    let pod_monitor = one(&pod_docs, "PodMonitor");
    assert_eq!(
        pod_monitor["spec"]["selector"]["matchLabels"],
        one(&pod_docs, "Deployment")["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        pod_monitor["spec"]["podMetricsEndpoints"][0]["port"],
        "http"
    );

    // The PrometheusRule is alerts/rules.yaml's groups, each runbook a page of docs/runbooks/.
    let rule = one(&docs, "PrometheusRule");
    let file: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart().join("alerts/rules.yaml")).unwrap())
            .unwrap();
    let groups = rule["spec"]["groups"].as_sequence().unwrap();
    assert_eq!(
        groups.len(),
        file["groups"].as_sequence().map_or(0, |g| g.len())
    );
    for group in groups {
        for r in group["rules"].as_sequence().into_iter().flatten() {
            if r["alert"].is_null() {
                continue;
            }
            let url = r["annotations"]["runbook_url"]
                .as_str()
                .unwrap_or_else(|| panic!("alert {:?} has no runbook_url", r["alert"]));
            let page = url
                .split("docs/runbooks/")
                .nth(1)
                .unwrap_or_else(|| panic!("{url} is not under docs/runbooks/"));
            let page = page.split('#').next().unwrap();
            assert!(
                workspace().join("docs/runbooks").join(page).is_file(),
                "{url}: no docs/runbooks/{page}"
            );
        }
    }
}

/// The PrometheusRule template on a rules file of its own: groups and rules as written, a
/// relative runbook_url prefixed with the base URL, an absolute one kept.
#[test]
fn the_prometheus_rule_renders_a_rules_file_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tipoff");
    copy_dir(&chart(), &copy);
    std::fs::write(
        copy.join("alerts/rules.yaml"),
        r#"groups:
  - name: tipoff-test
    rules:
      - alert: TipoffOperatorDown
        expr: absent(up{job="tipoff-operator"} == 1)
        for: 5m
        labels: {severity: critical}
        annotations:
          summary: "{{ $labels.job }} is down"
          runbook_url: docs/runbooks/orchestrator-down.md
      - alert: Elsewhere
        expr: vector(1)
        annotations: {runbook_url: "https://example.com/runbook"}
      - record: tipoff:reconciles:rate5m
        expr: sum(rate(x[5m]))
"#,
    )
    .unwrap();
    let docs = docs_of(
        template_chart(
            &copy,
            &[
                "metrics.prometheusRule.enabled=true",
                "metrics.prometheusRule.runbookBaseUrl=https://git.example/tipoff/blob/v1/",
            ],
            &[],
        )
        .unwrap(),
    );
    let rules = &one(&docs, "PrometheusRule")["spec"]["groups"][0]["rules"];
    assert_eq!(rules[0]["alert"], "TipoffOperatorDown");
    assert_eq!(
        rules[0]["expr"],
        r#"absent(up{job="tipoff-operator"} == 1)"#
    );
    assert_eq!(rules[0]["for"], "5m");
    assert_eq!(
        rules[0]["annotations"]["summary"],
        "{{ $labels.job }} is down"
    );
    assert_eq!(
        rules[0]["annotations"]["runbook_url"],
        "https://git.example/tipoff/blob/v1/docs/runbooks/orchestrator-down.md"
    );
    assert_eq!(
        rules[1]["annotations"]["runbook_url"],
        "https://example.com/runbook"
    );
    assert_eq!(rules[2]["record"], "tipoff:reconciles:rate5m");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// deploy/operator.yaml is the chart's rendering with default values (scripts/render-deploy.sh).
#[test]
fn deploy_operator_yaml_is_the_default_rendering() {
    let shipped = docs(&std::fs::read_to_string(workspace().join("deploy/operator.yaml")).unwrap());
    let rendering = rendered(&["crds.enabled=false"]);
    assert!(
        shipped == rendering,
        "deploy/operator.yaml is not the chart's rendering: run scripts/render-deploy.sh"
    );
}

/// Every leaf of values.yaml (dotted path) is documented in the chart's README.
#[test]
fn the_chart_readme_lists_every_value() {
    fn leaves(value: &Value, prefix: &str, out: &mut Vec<String>) {
        match value.as_mapping() {
            Some(map) if !map.is_empty() => {
                for (key, child) in map {
                    let key = key.as_str().unwrap();
                    let path = if prefix.is_empty() {
                        key.to_owned()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    leaves(child, &path, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }
    let values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap())
            .unwrap();
    let mut all = Vec::new();
    leaves(&values, "", &mut all);
    assert!(all.len() > 40, "{all:?}");
    let readme = std::fs::read_to_string(chart().join("README.md")).unwrap();
    let missing: Vec<_> = all
        .iter()
        .filter(|path| !readme.contains(&format!("`{path}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in charts/tipoff/README.md: {missing:?}"
    );
}

/// `validate-monitoring` is a real check: a misspelt field of a rendered ServiceMonitor fails.
#[test]
fn validate_monitoring_refuses_a_misspelt_field() {
    let text = template(&["metrics.serviceMonitor.enabled=true"], &[]).unwrap();
    assert!(text.contains("  endpoints:"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, text.replace("  endpoints:", "  endponts:")).unwrap();
    let mut command = Command::new(tool("validate-monitoring"));
    command.arg(&file);
    let out = run(command);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("'endponts' was unexpected"), "{report}");
}

/// The game-day CronJob runs `tipoff-processor game-days` as the processors' ServiceAccount,
/// PSS-restricted, with the one API token a processor Pod mounts, and its Role reaches only
/// its ConfigMap (plus `create`, which RBAC cannot limit by name).
#[test]
fn the_game_day_cronjob_writes_only_its_configmap() {
    assert!(
        of_kind(&rendered(&[]), "CronJob").is_empty(),
        "off by default"
    );
    let sets = VALUES_SETS
        .iter()
        .find(|(name, _)| *name == "game-day CronJob")
        .unwrap()
        .1;
    let docs = rendered(sets);
    let cron = one(&docs, "CronJob");
    let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "tipoff-processor");
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(
        strs(&container["args"]),
        ["game-days", "--config-map=nba-game-days"]
    );
    assert_eq!(
        container["envFrom"][0]["configMapRef"]["name"],
        "tipoff-processor-env"
    );
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    let role = of_kind(&docs, "Role")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "tipoff-game-days")
        .unwrap();
    let rules = role["rules"].as_sequence().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(strs(&rules[0]["resourceNames"]), ["nba-game-days"]);
    assert_eq!(strs(&rules[0]["verbs"]), ["get", "patch"]);
    assert_eq!(strs(&rules[1]["verbs"]), ["create"]);
    let binding = of_kind(&docs, "RoleBinding")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "tipoff-game-days")
        .unwrap();
    assert_eq!(binding["subjects"][0]["name"], "tipoff-processor");
}

/// The values the GitOps examples give the chart (Flux's HelmRelease `values`, Argo CD's
/// `helm.valuesObject`) pass its closed schema and render.
#[test]
fn the_gitops_examples_values_render_with_the_chart() {
    let dir = tempfile::tempdir().unwrap();
    let examples = workspace().join("examples/gitops");
    for (file, kind, path) in [
        (
            "flux/helmrelease.yaml",
            "HelmRelease",
            &["spec", "values"][..],
        ),
        (
            "argocd/tipoff-operator.yaml",
            "Application",
            &["spec", "source", "helm", "valuesObject"][..],
        ),
    ] {
        let text = std::fs::read_to_string(examples.join(file)).unwrap();
        let object = docs(&text)
            .into_iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("{file}: no {kind}"));
        let values = path.iter().fold(&object, |v, key| &v[*key]);
        assert!(values.is_mapping(), "{file}: no values at {path:?}");
        let values_file = dir.path().join(format!("{kind}.yaml"));
        std::fs::write(&values_file, serde_yaml::to_string(values).unwrap()).unwrap();
        let rendered = template(&[], &[&values_file]).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(rendered.contains("kind: Deployment"), "{file}");
    }
}
