//! Behaviour specific to built-in types: defaulting on create and update
//! (namespaces, pods, Jobs, Secrets, CRD status) and the conversion between
//! core `v1` Events (the storage form) and `events.k8s.io/v1` Events.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::ResourceInfo;

/// Converts an incoming object to its storage form and sets apiVersion/kind.
pub fn to_storage(info: &ResourceInfo, mut object: Value) -> Value {
    if info.group == "events.k8s.io" {
        return new_event_to_core(object);
    }
    object["apiVersion"] = json!(info.api_version());
    object["kind"] = json!(info.kind);
    object
}

/// Converts a stored object to the form served by `info`.
pub fn from_storage(info: &ResourceInfo, object: Value) -> Value {
    if info.group == "events.k8s.io" {
        return core_event_to_new(object);
    }
    object
}

const EVENT_RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename(object: Value, from_core: bool, api_version: &str) -> Value {
    let Value::Object(map) = object else {
        return object;
    };
    let mut out = Map::new();
    for (key, value) in map {
        let renamed = EVENT_RENAMES
            .iter()
            .find(|(core, new)| if from_core { core == &key } else { new == &key })
            .map(|(core, new)| if from_core { *new } else { *core })
            .unwrap_or(key.as_str())
            .to_string();
        out.insert(renamed, value);
    }
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!("Event"));
    Value::Object(out)
}

fn new_event_to_core(object: Value) -> Value {
    let mut core = rename(object, false, "v1");
    if core["source"].is_null()
        && let Some(component) = core["reportingComponent"].as_str()
    {
        core["source"] = json!({ "component": component });
    }
    core
}

fn core_event_to_new(object: Value) -> Value {
    rename(object, true, "events.k8s.io/v1")
}

fn default_containers(spec: &mut Value) {
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec[list].as_array_mut() {
            for c in containers {
                if c["terminationMessagePath"].is_null() {
                    c["terminationMessagePath"] = json!("/dev/termination-log");
                }
                if c["terminationMessagePolicy"].is_null() {
                    c["terminationMessagePolicy"] = json!("File");
                }
                if c["imagePullPolicy"].is_null() {
                    c["imagePullPolicy"] = json!("IfNotPresent");
                }
            }
        }
    }
}

/// Defaults applied when an object is created.
pub fn on_create(info: &ResourceInfo, object: &mut Value) {
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "namespaces") => {
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
        }
        ("", "pods") => {
            defaults(info, object);
            object["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        ("batch", "jobs") => {
            defaults(info, object);
            object["status"] = json!({});
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => crd_status(object),
        _ => defaults(info, object),
    }
}

/// Defaulting the real server applies on every write of the main resource
/// (so re-applying an object without the defaults is a no-op).
pub fn defaults(info: &ResourceInfo, object: &mut Value) {
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => {
            if object["spec"]["restartPolicy"].is_null() {
                object["spec"]["restartPolicy"] = json!("Always");
            }
            default_containers(&mut object["spec"]);
        }
        ("batch", "jobs") => default_job(object),
        ("", "secrets") => fold_string_data(object),
        _ => {}
    }
}

/// Rejects changes to fields the real server treats as immutable:
/// a Job's `selector`, `completionMode` and (unless suspended) `template`.
pub fn check_immutable(info: &ResourceInfo, old: &Value, new: &Value) -> ApiResult<()> {
    if (info.group.as_str(), info.plural.as_str()) != ("batch", "jobs") {
        return Ok(());
    }
    let suspended = new["spec"]["suspend"].as_bool() == Some(true);
    let mut causes = Vec::new();
    for field in ["selector", "completionMode", "template"] {
        if field == "template" && suspended {
            continue;
        }
        if old["spec"][field] != new["spec"][field] {
            causes.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: \"object\": field is immutable".into(),
                field: format!("spec.{field}"),
            });
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    let name = old["metadata"]["name"].as_str().unwrap_or_default();
    Err(ApiError::invalid("batch", "Job", name, causes))
}

/// Rules applied after every update (derived status).
pub fn on_update(info: &ResourceInfo, object: &mut Value, _old: &Value) {
    if (info.group.as_str(), info.plural.as_str())
        == ("apiextensions.k8s.io", "customresourcedefinitions")
    {
        crd_status(object);
    }
}

fn default_job(object: &mut Value) {
    let uid = object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let spec = &mut object["spec"];
    if spec["parallelism"].is_null() {
        spec["parallelism"] = json!(1);
    }
    if spec["completions"].is_null() && spec["completionMode"].as_str() != Some("Indexed") {
        spec["completions"] = json!(1);
    }
    if spec["backoffLimit"].is_null() {
        spec["backoffLimit"] = json!(6);
    }
    if spec["completionMode"].is_null() {
        spec["completionMode"] = json!("NonIndexed");
    }
    if spec["suspend"].is_null() {
        spec["suspend"] = json!(false);
    }
    if spec["podReplacementPolicy"].is_null() {
        spec["podReplacementPolicy"] = json!("TerminatingOrFailed");
    }
    if spec["manualSelector"].as_bool() != Some(true) {
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
        let labels = &mut spec["template"]["metadata"]["labels"];
        if !labels.is_object() {
            *labels = json!({});
        }
        labels["batch.kubernetes.io/controller-uid"] = json!(uid);
        labels["controller-uid"] = json!(uid);
        labels["batch.kubernetes.io/job-name"] = json!(name);
        labels["job-name"] = json!(name);
    }
    if spec["template"]["spec"]["restartPolicy"].is_null() {
        spec["template"]["spec"]["restartPolicy"] = json!("Never");
    }
    default_containers(&mut spec["template"]["spec"]);
}

/// Moves `stringData` into base64 `data`, as the real server does.
fn fold_string_data(object: &mut Value) {
    let Some(Value::Object(string_data)) =
        object.as_object_mut().and_then(|m| m.remove("stringData"))
    else {
        return;
    };
    if !object["data"].is_object() {
        object["data"] = json!({});
    }
    for (key, value) in string_data {
        let text = value.as_str().unwrap_or_default();
        object["data"][key] = json!(base64(text.as_bytes()));
    }
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The status the real server settles on for a CRD with valid names.
fn crd_status(object: &mut Value) {
    let now = crate::store::now_rfc3339();
    let names = object["spec"]["names"].clone();
    let mut accepted = names.clone();
    if accepted["singular"].is_null()
        && let Some(kind) = names["kind"].as_str()
    {
        accepted["singular"] = json!(kind.to_lowercase());
    }
    if accepted["listKind"].is_null()
        && let Some(kind) = names["kind"].as_str()
    {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    let stored: Vec<Value> = object["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    let previous = object["status"]["conditions"].clone();
    let transition = |type_: &str| -> Value {
        previous
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == type_ && c["status"] == "True")
            .map(|c| c["lastTransitionTime"].clone())
            .unwrap_or_else(|| json!(now))
    };
    object["status"] = json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": transition("NamesAccepted")},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": transition("Established")},
        ],
        "storedVersions": stored,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_reference() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"hello world"), "aGVsbG8gd29ybGQ=");
    }

    #[test]
    fn events_round_trip() {
        let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"name": "x"}, "note": "hi", "reason": "R", "reportingController": "c"});
        let core = new_event_to_core(new.clone());
        assert_eq!(core["involvedObject"]["name"], "x");
        assert_eq!(core["message"], "hi");
        assert_eq!(core["source"]["component"], "c");
        let back = core_event_to_new(core);
        assert_eq!(back["note"], "hi");
        assert_eq!(back["regarding"]["name"], "x");
    }
}
