//! Patch semantics: JSON merge patch, JSON patch, strategic merge patch
//! (treated as a merge patch) and a server-side apply that is enough for a
//! controller applying whole objects under one field manager.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

/// The patch flavours the server accepts, from the request Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json` (handled as a merge patch).
    Strategic,
    /// `application/apply-patch+yaml`.
    Apply,
}

impl PatchType {
    /// Parses a Content-Type header.
    pub fn from_content_type(content_type: &str) -> ApiResult<Self> {
        let base = content_type.split(';').next().unwrap_or_default().trim();
        match base {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/json-patch+json" => Ok(Self::Json),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            other => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                ),
            )),
        }
    }
}

/// Parses a patch body (YAML is accepted for apply).
pub fn parse_body(patch_type: PatchType, body: &[u8]) -> ApiResult<Value> {
    match patch_type {
        PatchType::Apply => serde_yaml::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}"))),
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}"))),
    }
}

/// Drops strategic-merge directives (`$patch`, `$setElementOrder/...`, `$retainKeys`).
fn strip_directives(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('$'));
            map.values_mut().for_each(strip_directives);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// Applies a merge, JSON or strategic patch to `current`.
pub fn apply_patch(patch_type: PatchType, current: &Value, patch: &Value) -> ApiResult<Value> {
    let mut target = current.clone();
    match patch_type {
        PatchType::Merge => json_patch::merge(&mut target, patch),
        PatchType::Strategic => {
            let mut patch = patch.clone();
            strip_directives(&mut patch);
            json_patch::merge(&mut target, &patch);
        }
        PatchType::Json => {
            // Like the real server (evanphx/json-patch), `test` of a missing
            // path against `null` succeeds; kube-runtime's finalizer helper
            // relies on it.
            let kept: Vec<Value> = patch
                .as_array()
                .into_iter()
                .flatten()
                .filter(|op| {
                    let missing = op["path"]
                        .as_str()
                        .is_some_and(|p| target.pointer(p).is_none_or(Value::is_null));
                    !(op["op"] == "test" && op["value"].is_null() && missing)
                })
                .cloned()
                .collect();
            let patch = if patch.is_array() {
                Value::Array(kept)
            } else {
                patch.clone()
            };
            let ops: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut target, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        PatchType::Apply => return Err(ApiError::bad_request("apply patches go through apply()")),
    }
    Ok(target)
}

/// The `fieldsV1` set of an applied configuration: every object key as
/// `f:<key>`, lists and scalars as leaves.
pub fn fields_of(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if k == "apiVersion" || k == "kind" {
                    continue;
                }
                out.insert(format!("f:{k}"), fields_of(v));
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

/// Removes from `target` the fields listed in `previous` but absent from `applied`.
fn remove_dropped(target: &mut Value, previous: &Value, applied: &Value) {
    let (Some(prev), Some(obj)) = (previous.as_object(), target.as_object_mut()) else {
        return;
    };
    for (fkey, sub) in prev {
        let Some(key) = fkey.strip_prefix("f:") else {
            continue;
        };
        match applied.get(key) {
            None => {
                obj.remove(key);
            }
            Some(applied_child) => {
                if let Some(child) = obj.get_mut(key)
                    && sub.as_object().is_some_and(|m| !m.is_empty())
                {
                    remove_dropped(child, sub, applied_child);
                }
            }
        }
    }
}

/// Deep merge where objects merge recursively and everything else replaces.
fn deep_merge(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        deep_merge(existing, v)
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, a) => *t = a.clone(),
    }
}

/// Server-side apply of `applied` by `manager` onto `current` (or a new
/// object when `current` is `None`). Fields this manager applied before and
/// no longer applies are removed; other managers' fields stay. Conflicts are
/// never reported (as if `force=true`).
pub fn apply(current: Option<&Value>, applied: &Value, manager: &str, subresource: &str) -> Value {
    let mut target = current.cloned().unwrap_or_else(|| json!({}));
    let mut managed: Vec<Value> = target["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let matches_entry = |e: &Value| {
        e["manager"] == manager
            && e["operation"] == "Apply"
            && e["subresource"].as_str().unwrap_or_default() == subresource
    };
    if let Some(previous) = managed.iter().find(|e| matches_entry(e)) {
        remove_dropped(&mut target, &previous["fieldsV1"], applied);
    }
    let mut applied_clean = applied.clone();
    if let Some(meta) = applied_clean["metadata"].as_object_mut() {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    deep_merge(&mut target, &applied_clean);
    managed.retain(|e| !matches_entry(e));
    let mut entry = json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": applied["apiVersion"].clone(),
        "time": crate::store::now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_of(&applied_clean),
    });
    if !subresource.is_empty() {
        entry["subresource"] = json!(subresource);
    }
    managed.push(entry);
    if !target["metadata"].is_object() {
        target["metadata"] = json!({});
    }
    target["metadata"]["managedFields"] = Value::Array(managed);
    if let Some(rv) = applied["metadata"].get("resourceVersion") {
        target["metadata"]["resourceVersion"] = rv.clone();
    } else if let Some(current) = current {
        target["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_removes_fields_the_manager_dropped() {
        let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}});
        let obj = apply(None, &first, "m", "");
        assert_eq!(obj["data"], json!({"x": "1", "y": "2"}));
        let mut with_other = obj.clone();
        with_other["data"]["z"] = json!("3");
        let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "9"}});
        let obj = apply(Some(&with_other), &second, "m", "");
        assert_eq!(obj["data"], json!({"x": "9", "z": "3"}));
        assert_eq!(
            obj["metadata"]["managedFields"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn merge_and_json_patch() {
        let cur = json!({"a": {"b": 1, "c": 2}});
        let merged = apply_patch(PatchType::Merge, &cur, &json!({"a": {"c": null, "d": 3}}));
        assert_eq!(merged.ok(), Some(json!({"a": {"b": 1, "d": 3}})));
        let patched = apply_patch(
            PatchType::Json,
            &cur,
            &json!([{"op": "replace", "path": "/a/b", "value": 5}]),
        );
        assert_eq!(patched.ok(), Some(json!({"a": {"b": 5, "c": 2}})));
        let bad = apply_patch(
            PatchType::Json,
            &cur,
            &json!([{"op": "test", "path": "/a/b", "value": 7}]),
        );
        assert!(bad.is_err());
    }
}
