//! Server-side `meta.k8s.io/v1` Table output for `kubectl get`: CRD
//! `additionalPrinterColumns`, fixed columns for built-ins, Name and Age
//! defaults, and the per-row object (`includeObject`).

use serde_json::{Value, json};

use crate::jsonpath;
use crate::resources::{PrinterColumn, ResourceInfo};

/// What each row carries besides cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// Kubernetes' short human duration (`45s`, `3m2s`, `5h`, `12d`).
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn seconds_since(timestamp: &Value) -> Option<i64> {
    let ts: jiff::Timestamp = timestamp.as_str()?.parse().ok()?;
    Some(jiff::Timestamp::now().as_second() - ts.as_second())
}

fn age(timestamp: &Value) -> Value {
    match seconds_since(timestamp) {
        Some(s) => json!(human_duration(s)),
        None => json!("<unknown>"),
    }
}

fn col(name: &str, type_: &str, format: &str, priority: i64) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": "", "priority": priority})
}

fn columns_for(info: &ResourceInfo) -> Vec<Value> {
    let name = col("Name", "string", "name", 0);
    let age = col("Age", "string", "", 0);
    if info.is_custom() {
        let mut cols = vec![json!({"name": "Name", "type": "string", "format": "name",
            "description": "Name must be unique within a namespace.", "priority": 0})];
        if info.printer_columns.is_empty() {
            cols.push(col("Age", "date", "", 0));
        }
        for c in &info.printer_columns {
            cols.push(json!({"name": c.name, "type": c.type_, "format": c.format,
                "description": c.description, "priority": c.priority}));
        }
        return cols;
    }
    match (info.group.as_str(), info.plural.as_str()) {
        ("batch", "jobs") => vec![
            name,
            col("Status", "string", "", 0),
            col("Completions", "string", "", 0),
            col("Duration", "string", "", 0),
            age,
        ],
        ("", "pods") => vec![
            name,
            col("Ready", "string", "", 0),
            col("Status", "string", "", 0),
            col("Restarts", "string", "", 0),
            age,
        ],
        ("", "namespaces") => vec![name, col("Status", "string", "", 0), age],
        ("", "configmaps") => vec![name, col("Data", "integer", "", 0), age],
        ("", "secrets") => vec![
            name,
            col("Type", "string", "", 0),
            col("Data", "integer", "", 0),
            age,
        ],
        ("", "events") | ("events.k8s.io", "events") => vec![
            col("Last Seen", "string", "", 0),
            col("Type", "string", "", 0),
            col("Reason", "string", "", 0),
            col("Object", "string", "", 0),
            col("Message", "string", "", 0),
        ],
        ("coordination.k8s.io", "leases") => vec![name, col("Holder", "string", "", 0), age],
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            vec![name, col("Created At", "date", "", 0)]
        }
        _ => vec![name, age],
    }
}

fn job_status(obj: &Value) -> &'static str {
    let conditions = obj["status"]["conditions"].as_array();
    let has = |t: &str| {
        conditions
            .into_iter()
            .flatten()
            .any(|c| c["type"] == t && c["status"] == "True")
    };
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("Suspended") {
        "Suspended"
    } else {
        "Running"
    }
}

fn job_duration(obj: &Value) -> Value {
    let start = &obj["status"]["startTime"];
    let Some(start_s) = seconds_since(start) else {
        return json!("");
    };
    let end = seconds_since(&obj["status"]["completionTime"]).unwrap_or(0);
    json!(human_duration(start_s - end))
}

fn pod_cells(obj: &Value) -> Vec<Value> {
    let statuses = obj["status"]["containerStatuses"].as_array();
    let total = obj["spec"]["containers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let ready = statuses
        .into_iter()
        .flatten()
        .filter(|c| c["ready"].as_bool() == Some(true))
        .count();
    let restarts: i64 = statuses
        .into_iter()
        .flatten()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let mut status = obj["status"]["phase"]
        .as_str()
        .unwrap_or("Pending")
        .to_string();
    for c in statuses.into_iter().flatten() {
        if let Some(reason) = c["state"]["waiting"]["reason"].as_str() {
            status = reason.to_string();
        } else if let Some(reason) = c["state"]["terminated"]["reason"].as_str() {
            status = reason.to_string();
        }
    }
    if obj["metadata"]["deletionTimestamp"].is_string() {
        status = "Terminating".into();
    }
    vec![
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts),
        age(&obj["metadata"]["creationTimestamp"]),
    ]
}

fn cell_for_column(c: &PrinterColumn, obj: &Value) -> Value {
    let found = jsonpath::evaluate(&c.json_path, obj);
    let Some(first) = found.first() else {
        return Value::Null;
    };
    match c.type_.as_str() {
        "date" => age(first),
        "integer" | "number" | "boolean" => (*first).clone(),
        _ => {
            if found.len() > 1 {
                let parts: Vec<String> = found
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect();
                json!(parts.join(","))
            } else {
                match first {
                    Value::String(s) => json!(s),
                    other => json!(other.to_string()),
                }
            }
        }
    }
}

fn cells_for(info: &ResourceInfo, obj: &Value) -> Vec<Value> {
    let name = obj["metadata"]["name"].clone();
    let created = &obj["metadata"]["creationTimestamp"];
    if info.is_custom() {
        let mut cells = vec![name];
        if info.printer_columns.is_empty() {
            cells.push(age(created));
        }
        for c in &info.printer_columns {
            cells.push(cell_for_column(c, obj));
        }
        return cells;
    }
    let count = |v: &Value| json!(v.as_object().map(|m| m.len()).unwrap_or(0));
    match (info.group.as_str(), info.plural.as_str()) {
        ("batch", "jobs") => {
            let completions = obj["spec"]["completions"]
                .as_i64()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "1".into());
            let succeeded = obj["status"]["succeeded"].as_i64().unwrap_or(0);
            vec![
                name,
                json!(job_status(obj)),
                json!(format!("{succeeded}/{completions}")),
                job_duration(obj),
                age(created),
            ]
        }
        ("", "pods") => {
            let mut cells = vec![name];
            cells.extend(pod_cells(obj));
            cells
        }
        ("", "namespaces") => vec![name, obj["status"]["phase"].clone(), age(created)],
        ("", "configmaps") => vec![name, count(&obj["data"]), age(created)],
        ("", "secrets") => vec![
            name,
            json!(obj["type"].as_str().unwrap_or("Opaque")),
            count(&obj["data"]),
            age(created),
        ],
        ("", "events") | ("events.k8s.io", "events") => {
            let core = if info.group.is_empty() {
                obj.clone()
            } else {
                crate::builtin::to_storage(info, obj.clone())
            };
            let last = [
                &core["lastTimestamp"],
                &core["series"]["lastObservedTime"],
                &core["eventTime"],
                created,
            ]
            .into_iter()
            .find(|v| v.is_string())
            .map(age)
            .unwrap_or_else(|| json!("<unknown>"));
            let involved = &core["involvedObject"];
            vec![
                last,
                core["type"].clone(),
                core["reason"].clone(),
                json!(format!(
                    "{}/{}",
                    involved["kind"].as_str().unwrap_or_default().to_lowercase(),
                    involved["name"].as_str().unwrap_or_default()
                )),
                core["message"].clone(),
            ]
        }
        ("coordination.k8s.io", "leases") => vec![
            name,
            json!(obj["spec"]["holderIdentity"].as_str().unwrap_or_default()),
            age(created),
        ],
        ("apiextensions.k8s.io", "customresourcedefinitions") => vec![name, created.clone()],
        _ => vec![name, age(created)],
    }
}

/// One table row for `obj`.
pub fn row(info: &ResourceInfo, obj: &Value, include: IncludeObject) -> Value {
    let mut row = json!({"cells": cells_for(info, obj)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"].clone(),
            });
        }
        IncludeObject::Object => row["object"] = obj.clone(),
    }
    row
}

/// A full Table for a list (or a single object).
pub fn table(
    info: &ResourceInfo,
    items: &[Value],
    resource_version: Option<String>,
    continue_token: Option<String>,
    include: IncludeObject,
) -> Value {
    let mut metadata = json!({});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv);
    }
    if let Some(c) = continue_token {
        metadata["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns_for(info),
        "rows": items.iter().map(|o| row(info, o, include)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_kubernetes() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(185), "3m5s");
        assert_eq!(human_duration(3600), "60m");
        assert_eq!(human_duration(4 * 3600 + 60), "4h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86_400), "3d");
        assert_eq!(human_duration(100 * 86_400), "100d");
    }
}
