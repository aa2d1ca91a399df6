//! The committed CRD YAML is what the types generate, and it is a structural schema that an
//! `apiextensions.k8s.io/v1` API server accepts, with a description on every field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::PathBuf;

use serde_json::Value;

fn generated() -> Vec<(&'static str, String)> {
    tipoff_crds::generated::render_all().unwrap()
}

#[test]
fn committed_crds_are_not_stale() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("generated");
    let mut stale = Vec::new();
    for (file, yaml) in generated() {
        let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        if committed != yaml {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated CRDs {stale:?}: run `cargo run -p tipoff-crds --bin crdgen` and commit"
    );
}

/// Checks the rules of a structural schema (Kubernetes docs, "Specifying a structural schema")
/// plus tipoff's own: every property described, every string and list bounded.
fn check_node(path: &str, node: &Value, problems: &mut Vec<String>) {
    let obj = node.as_object().unwrap();
    for banned in [
        "$ref",
        "definitions",
        "$defs",
        "additionalItems",
        "patternProperties",
        "dependencies",
    ] {
        if obj.contains_key(banned) {
            problems.push(format!(
                "{path}: '{banned}' is not allowed in a structural schema"
            ));
        }
    }
    for combinator in ["anyOf", "oneOf", "allOf", "not"] {
        if let Some(branches) = obj.get(combinator) {
            // Allowed only as pure value validation: no type, properties or items inside.
            let text = branches.to_string();
            if text.contains("\"type\"") || text.contains("\"properties\"") {
                problems.push(format!(
                    "{path}: {combinator} must not specify types or properties"
                ));
            }
        }
    }
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let ty = obj.get("type").and_then(Value::as_str);
    if ty.is_none() && !preserve && !int_or_string {
        problems.push(format!("{path}: every node needs a type"));
    }
    if !path.is_empty()
        && !obj.contains_key("description")
        && !path.ends_with("[]")
        && !path.ends_with("{}")
    {
        problems.push(format!(
            "{path}: no description (doc comment) on this field"
        ));
    }
    if ty == Some("string")
        && !obj.contains_key("maxLength")
        && !obj.contains_key("enum")
        && obj.get("format").and_then(Value::as_str) != Some("date-time")
    {
        problems.push(format!("{path}: unbounded string (add maxLength)"));
    }
    if ty == Some("array") && !obj.contains_key("maxItems") {
        problems.push(format!("{path}: unbounded list (add maxItems)"));
    }
    if ty == Some("object")
        && obj.contains_key("additionalProperties")
        && !obj.contains_key("maxProperties")
    {
        problems.push(format!("{path}: unbounded map (add maxProperties)"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            check_node(&child_path, child, problems);
        }
    }
    if let Some(items) = obj.get("items") {
        check_node(&format!("{path}[]"), items, problems);
    }
    if let Some(additional) = obj.get("additionalProperties").filter(|a| a.is_object()) {
        check_node(&format!("{path}{{}}"), additional, problems);
    }
}

#[test]
fn schemas_are_structural_described_and_bounded() {
    for (file, yaml) in generated() {
        let crd: Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1", "{file}");
        let versions = crd["spec"]["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 1, "{file}");
        let v = &versions[0];
        assert_eq!(v["name"], "v1alpha1");
        assert_eq!(v["served"], true);
        assert_eq!(v["storage"], true);
        assert!(
            v["subresources"]["status"].is_object(),
            "{file}: status subresource"
        );
        let mut problems = Vec::new();
        let root = &v["schema"]["openAPIV3Schema"];
        // metadata, apiVersion and kind are implicit at the root; the rest must hold the rules.
        for part in ["spec", "status"] {
            check_node(part, &root["properties"][part], &mut problems);
        }
        assert!(problems.is_empty(), "{file}:\n{}", problems.join("\n"));
    }
}

#[test]
fn names_printer_columns_and_categories() {
    let expect = [
        (
            "pipelineruns.tipoff.dev.yaml",
            vec!["Date", "Mode", "Phase", "Done", "Drift", "State", "Age"],
        ),
        (
            "phasecompletions.tipoff.dev.yaml",
            vec!["Date", "Phase", "Phase Name", "Done", "State", "Age"],
        ),
        (
            "pipelinebackfills.tipoff.dev.yaml",
            vec![
                "From",
                "To",
                "Reprocess",
                "Done",
                "Running",
                "Failed",
                "Skipped",
                "State",
                "ETA",
                "Age",
            ],
        ),
        (
            "pipelineschedules.tipoff.dev.yaml",
            vec![
                "Time", "Zone", "Suspend", "Last", "Next", "Missed", "Ready", "Age",
            ],
        ),
    ];
    for ((file, yaml), (want_file, want_columns)) in generated().into_iter().zip(expect) {
        assert_eq!(file, want_file);
        let crd: Value = serde_yaml::from_str(&yaml).unwrap();
        let names = &crd["spec"]["names"];
        assert_eq!(names["categories"], serde_json::json!(["tipoff"]));
        let shorts: Vec<&str> = names["shortNames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        // Tekton owns `pr`, `prs` and `pipelinerun`; ours must never shadow them in kubectl.
        for tekton in ["pr", "prs", "pipelinerun", "pipelineruns"] {
            assert!(
                !shorts.contains(&tekton),
                "{file}: short name {tekton} collides with Tekton"
            );
        }
        let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, want_columns, "{file}");
        for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
        {
            let counter = ["Phase", "Running", "Failed", "Skipped", "Missed"]
                .contains(&c["name"].as_str().unwrap());
            if c["jsonPath"].as_str().unwrap().ends_with("Phase") || counter {
                assert_eq!(
                    c["type"], "integer",
                    "{file}: numeric columns are typed as integers"
                );
            }
        }
    }
}
