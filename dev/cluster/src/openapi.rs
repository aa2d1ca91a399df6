//! A minimal OpenAPI v3 surface: the `/openapi/v3` index and one document
//! per group/version listing each resource's paths with its
//! `x-kubernetes-group-version-kind` and the `fieldValidation` query
//! parameter, which is what kubectl checks before relying on server-side
//! field validation. CRD schemas are included as component schemas.

use std::hash::{Hash, Hasher};

use serde_json::{Value, json};

use crate::resources::{Registry, ResourceInfo};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn group_versions(registry: &Registry) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for info in registry.all() {
        let gv = (info.group.clone(), info.version.clone());
        if !out.contains(&gv) {
            out.push(gv);
        }
    }
    out
}

/// `/openapi/v3`: the index of group/version documents.
pub fn index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for (group, version) in group_versions(registry) {
        let doc = document(registry, &group, &version).unwrap_or_default();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        doc.to_string().hash(&mut hasher);
        let path = gv_path(&group, &version);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={:016X}", hasher.finish())}),
        );
    }
    json!({"paths": paths})
}

fn operations(info: &ResourceInfo) -> Value {
    let gvk = json!({"group": info.group, "version": info.version, "kind": info.kind});
    let params = json!([
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
    ]);
    let op = |action: &str| {
        json!({
            "operationId": format!("{action}{}", info.kind),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": params,
            "responses": {"200": {"description": "OK"}},
        })
    };
    json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")})
}

/// `/openapi/v3/apis/<group>/<version>` (or `api/v1`), if served.
pub fn document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let infos: Vec<&ResourceInfo> = registry
        .all()
        .filter(|i| i.group == group && i.version == version)
        .collect();
    if infos.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for info in infos {
        let base = if info.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}",
                gv_path(group, version),
                info.plural
            )
        } else {
            format!("/{}/{}", gv_path(group, version), info.plural)
        };
        paths.insert(format!("{base}/{{name}}"), operations(info));
        if let Some(schema) = info
            .crd_version
            .as_ref()
            .map(|v| v["schema"]["openAPIV3Schema"].clone())
            .filter(Value::is_object)
        {
            let mut schema = schema;
            schema["x-kubernetes-group-version-kind"] =
                json!([{"group": info.group, "version": info.version, "kind": info.kind}]);
            let prefix: String = group.split('.').rev().collect::<Vec<_>>().join(".");
            schemas.insert(format!("{prefix}.{version}.{}", info.kind), schema);
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-devcluster"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
