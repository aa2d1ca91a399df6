//! Resource request handlers: get, list, create, update, patch, delete,
//! delete-collection, `/status`, `pods/log`, discovery documents, and the
//! follow-up work a write to a CRD triggers (registering its resources).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, Target, json_response, parse};
use crate::auth::User;
use crate::auth::owners::{self, Check};
use crate::auth::rbac::{self, Attributes, Policy};
use crate::discovery;
use crate::error::{ApiError, ApiResult};
use crate::patch::{self, PatchType};
use crate::resources::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ListOptions, Propagation, Subresource};
use crate::table::{self, IncludeObject};

pub(super) type Params = HashMap<String, String>;

/// The representation a client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Repr {
    /// The objects themselves.
    Object,
    /// A `meta.k8s.io/v1` Table.
    Table,
    /// `meta.k8s.io/v1` PartialObjectMetadata.
    Metadata,
}

pub(super) fn wanted_repr(headers: &HeaderMap) -> Repr {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accept.contains("as=Table") {
        Repr::Table
    } else if accept.contains("as=PartialObjectMetadata") {
        Repr::Metadata
    } else {
        Repr::Object
    }
}

/// An object as `PartialObjectMetadata`.
pub(super) fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"].clone(),
    })
}

pub(super) fn list_options(namespace: Option<String>, params: &Params) -> ApiResult<ListOptions> {
    Ok(ListOptions {
        namespace,
        labels: LabelSelector::parse(
            params
                .get("labelSelector")
                .map(String::as_str)
                .unwrap_or(""),
        )?,
        fields: FieldSelector::parse(
            params
                .get("fieldSelector")
                .map(String::as_str)
                .unwrap_or(""),
        )?,
        limit: params.get("limit").and_then(|l| l.parse().ok()),
        continue_token: params.get("continue").cloned(),
    })
}

fn truthy(params: &Params, key: &str) -> bool {
    params
        .get(key)
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// The fallback handler for every `/api` and `/apis` path.
pub(super) async fn dispatch(
    State(app): State<Arc<AppState>>,
    Extension(user): Extension<User>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<Params>,
    body: Bytes,
) -> Response {
    match handle(&app, &user, &method, &uri, &headers, &params, body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle(
    app: &Arc<AppState>,
    user: &User,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    params: &Params,
    body: Bytes,
) -> ApiResult<Response> {
    if uri.path() == "/version" {
        return Ok(json_response(200, &discovery::version()));
    }
    if let Some(rest) = uri.path().strip_prefix("/openapi/v3") {
        let registry = app.store.registry();
        let rest = rest.trim_matches('/');
        if rest.is_empty() {
            return Ok(json_response(200, &crate::openapi::index(&registry)));
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let doc = match parts.as_slice() {
            ["api", version] => crate::openapi::document(&registry, "", version),
            ["apis", group, version] => crate::openapi::document(&registry, group, version),
            _ => None,
        };
        return doc
            .map(|d| json_response(200, &d))
            .ok_or_else(not_found_path);
    }
    if uri.path().starts_with("/openapi") {
        return Err(not_found_path());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // kubectl sends access reviews and TokenRequests only as protobuf.
    let decoded = if content_type.contains("protobuf") {
        Some(crate::protobuf::decode_request(&body)?)
    } else {
        None
    };
    if content_type.contains("cbor") {
        // Clients (client-go) fall back to JSON on 415.
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type})"
            ),
        ));
    }
    let target = parse(uri.path()).ok_or_else(not_found_path)?;
    let registry = app.store.registry();
    let mut api = match target {
        Target::CoreVersions => return Ok(json_response(200, &discovery::core_versions())),
        Target::Groups => return Ok(json_response(200, &discovery::group_list(&registry))),
        Target::Group(group) => {
            return discovery::group(&registry, &group)
                .map(|doc| json_response(200, &doc))
                .ok_or_else(not_found_path);
        }
        Target::ResourceList(group, version) => {
            return discovery::resource_list(&registry, &group, &version)
                .map(|doc| json_response(200, &doc))
                .ok_or_else(not_found_path);
        }
        Target::Resource(api) => api,
    };
    let mut info = registry
        .get(&api.group, &api.version, &api.resource)
        .cloned();
    if (info.is_none() || info.as_ref().is_some_and(|i| !i.namespaced))
        && let Some(alt) = api.namespace_subresource()
    {
        api = alt;
        info = registry
            .get(&api.group, &api.version, &api.resource)
            .cloned();
    }
    let info = info.ok_or_else(not_found_path)?;
    let namespace = if info.namespaced {
        api.namespace.clone()
    } else {
        None
    };
    let ns = namespace.clone().unwrap_or_default();
    let repr = wanted_repr(headers);
    let body_json = |body: &[u8]| match &decoded {
        Some(object) => Ok(object.clone()),
        None if body.is_empty() => Ok(json!({})),
        None => parse_json(body),
    };
    if info.create_only {
        return match (method, api.name.as_deref()) {
            (&Method::POST, None) => {
                super::review::review(app, &info, user, namespace.as_deref(), body_json(&body)?)
            }
            _ => Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method} {})",
                uri.path()
            ))),
        };
    }
    if decoded.is_some() && api.subresource.as_deref() != Some("token") {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (protobuf only for access reviews and TokenRequests)",
        ));
    }
    match (method, api.name.as_deref(), api.subresource.as_deref()) {
        (&Method::POST, Some(name), Some("token"))
            if info.plural == "serviceaccounts" && info.group.is_empty() =>
        {
            super::review::token_request(app, &ns, name, body_json(&body)?)
        }
        (&Method::GET, None, None) => {
            if api.watch_prefix || truthy(params, "watch") {
                let options = list_options(namespace, params)?;
                return super::watch::serve(app.clone(), info, options, params, repr);
            }
            list(app, &info, namespace, params, repr)
        }
        (&Method::GET, Some(name), sub @ (None | Some("status"))) => {
            if api.watch_prefix {
                let mut p = params.clone();
                p.insert("fieldSelector".into(), format!("metadata.name={name}"));
                let options = list_options(namespace, &p)?;
                return super::watch::serve(app.clone(), info, options, &p, repr);
            }
            let _ = sub;
            let object = app.store.get(&info, &ns, name)?;
            match repr {
                Repr::Table => {
                    let include =
                        IncludeObject::parse(params.get("includeObject").map(String::as_str));
                    let rv = object["metadata"]["resourceVersion"]
                        .as_str()
                        .map(String::from);
                    Ok(json_response(
                        200,
                        &table::table(&info, &[object], rv, None, include),
                    ))
                }
                Repr::Metadata => Ok(json_response(200, &partial_metadata(&object))),
                Repr::Object => Ok(json_response(200, &object)),
            }
        }
        (&Method::GET, Some(name), Some("log"))
            if info.plural == "pods" && info.group.is_empty() =>
        {
            logs(app, &info, &ns, name, params).await
        }
        (&Method::POST, None, None) => {
            if info.namespaced && namespace.is_none() {
                return Err(not_found_path());
            }
            let object = parse_json(&body)?;
            owner_check(app, user, |check| {
                owners::admit(check, &info, &ns, &object, None)
            })?;
            let created = app
                .store
                .create_checked(&info, &ns, object, strict(params))?;
            after_write(app, &info, &created);
            Ok(json_response(201, &created))
        }
        (&Method::PUT, Some(name), sub @ (None | Some("status"))) => {
            let object = parse_json(&body)?;
            let sub = subresource(sub);
            let guard = OwnerGuard::new(app, user, &info, &ns, sub);
            let updated =
                app.store
                    .update_checked(&info, &ns, name, sub, strict(params), |current| {
                        guard.admit(&object, current)?;
                        Ok(object)
                    })?;
            after_write(app, &info, &updated);
            Ok(json_response(200, &updated))
        }
        (&Method::PATCH, Some(name), sub @ (None | Some("status"))) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let patch_type = PatchType::from_content_type(content_type)?;
            let body = patch::parse_body(patch_type, &body)?;
            let (code, object) =
                patch_object(app, user, &info, &ns, name, sub, patch_type, &body, params)?;
            after_write(app, &info, &object);
            Ok(json_response(code, &object))
        }
        (&Method::DELETE, Some(name), None) => {
            let (object, pending) = delete(app, &info, &ns, name, params, &body)?;
            if pending {
                return Ok(json_response(200, &object));
            }
            after_delete(app, &info, &object);
            Ok(json_response(
                200,
                &json!({
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": info.group,
                        "kind": info.plural,
                        "uid": object["metadata"]["uid"],
                    }
                }),
            ))
        }
        (&Method::DELETE, None, None) => {
            let options = list_options(namespace, params)?;
            let listed = app.store.list(&info, &options)?;
            let mut deleted = Vec::new();
            for item in listed.items {
                let item_ns = item["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let item_name = item["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if let Ok((object, pending)) =
                    delete(app, &info, &item_ns, &item_name, params, &body)
                {
                    if !pending {
                        after_delete(app, &info, &object);
                    }
                    deleted.push(object);
                }
            }
            Ok(json_response(
                200,
                &json!({"kind": info.list_kind, "apiVersion": info.api_version(),
                        "metadata": {"resourceVersion": app.store.current_rv().to_string()},
                        "items": deleted}),
            ))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            uri.path()
        ))),
    }
}

/// Runs an owner-reference check for `user` with fresh snapshots (none for the admin).
fn owner_check(
    app: &AppState,
    user: &User,
    run: impl FnOnce(&Check<'_>) -> ApiResult<()>,
) -> ApiResult<()> {
    if user.is_master() {
        return Ok(());
    }
    let (policy, registry) = (crate::auth::policy(&app.store), app.store.registry());
    run(&Check {
        auth: &app.auth,
        policy: &policy,
        registry: &registry,
        user,
    })
}

/// The owner-reference check of an update, with its snapshots taken before the
/// store locks for the write (the check runs inside it).
struct OwnerGuard<'a> {
    app: &'a AppState,
    user: &'a User,
    info: &'a ResourceInfo,
    namespace: &'a str,
    snapshot: Option<(Policy, Arc<crate::resources::Registry>)>,
}

impl<'a> OwnerGuard<'a> {
    fn new(
        app: &'a AppState,
        user: &'a User,
        info: &'a ResourceInfo,
        namespace: &'a str,
        sub: Subresource,
    ) -> Self {
        // Status writes cannot change metadata; the admin is never checked.
        let snapshot = (sub == Subresource::Main && !user.is_master())
            .then(|| (crate::auth::policy(&app.store), app.store.registry()));
        Self {
            app,
            user,
            info,
            namespace,
            snapshot,
        }
    }

    fn admit(&self, new: &Value, old: &Value) -> ApiResult<()> {
        let Some((policy, registry)) = &self.snapshot else {
            return Ok(());
        };
        let check = Check {
            auth: &self.app.auth,
            policy,
            registry,
            user: self.user,
        };
        owners::admit(&check, self.info, self.namespace, new, Some(old))
    }
}

/// Whether the client asked for `fieldValidation=Strict`.
fn strict(params: &Params) -> bool {
    params.get("fieldValidation").map(String::as_str) == Some("Strict")
}

fn subresource(sub: Option<&str>) -> Subresource {
    if sub == Some("status") {
        Subresource::Status
    } else {
        Subresource::Main
    }
}

fn parse_json(body: &[u8]) -> ApiResult<Value> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml::from_slice(body))
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}

fn list(
    app: &AppState,
    info: &ResourceInfo,
    namespace: Option<String>,
    params: &Params,
    repr: Repr,
) -> ApiResult<Response> {
    let options = list_options(namespace, params)?;
    if params.get("resourceVersionMatch").map(String::as_str) == Some("Exact")
        && let Some(rv) = params
            .get("resourceVersion")
            .and_then(|r| r.parse::<u64>().ok())
    {
        let compacted = {
            let inner = app.store.lock();
            inner.window.compacted_rv()
        };
        if rv < compacted {
            return Err(ApiError::expired(format!(
                "The resourceVersion for the provided list is too old. ({rv} < {compacted})"
            )));
        }
    }
    let result = app.store.list(info, &options)?;
    let rv = result.resource_version.to_string();
    if repr == Repr::Table {
        let include = IncludeObject::parse(params.get("includeObject").map(String::as_str));
        let doc = table::table(
            info,
            &result.items,
            Some(rv),
            result.continue_token,
            include,
        );
        return Ok(json_response(200, &doc));
    }
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(token) = result.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = result.remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    if repr == Repr::Metadata {
        let items: Vec<Value> = result.items.iter().map(partial_metadata).collect();
        return Ok(json_response(
            200,
            &json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "items": items,
            }),
        ));
    }
    Ok(json_response(
        200,
        &json!({
            "kind": info.list_kind,
            "apiVersion": info.api_version(),
            "metadata": metadata,
            "items": result.items,
        }),
    ))
}

#[allow(clippy::too_many_arguments)]
fn patch_object(
    app: &AppState,
    user: &User,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    patch_type: PatchType,
    body: &Value,
    params: &Params,
) -> ApiResult<(u16, Value)> {
    let subres = subresource(sub);
    let guard = OwnerGuard::new(app, user, info, ns, subres);
    if patch_type != PatchType::Apply {
        let updated =
            app.store
                .update_checked(info, ns, name, subres, strict(params), |current| {
                    let new = patch::apply_patch(patch_type, current, body)?;
                    guard.admit(&new, current)?;
                    Ok(new)
                })?;
        return Ok((200, updated));
    }
    let manager = params.get("fieldManager").cloned().ok_or_else(|| {
        ApiError::bad_request("PATCH requests with apply content type require fieldManager")
    })?;
    let sub_name = sub.unwrap_or_default().to_string();
    let result = app
        .store
        .update_checked(info, ns, name, subres, strict(params), |current| {
            let new = patch::apply(Some(current), body, &manager, &sub_name);
            guard.admit(&new, current)?;
            Ok(new)
        });
    match result {
        Err(err) if err.code == 404 && subres == Subresource::Main => {
            let object = patch::apply(None, body, &manager, "");
            let mut object = object;
            if let Some(meta) = object["metadata"].as_object_mut() {
                meta.insert("name".into(), json!(name));
            }
            // An apply that creates needs `create` too, as on a real API server.
            app.auth.authorize(
                &app.store,
                &Attributes {
                    user: user.clone(),
                    verb: "create".into(),
                    target: rbac::Target::Resource {
                        group: info.group.clone(),
                        resource: info.plural.clone(),
                        subresource: String::new(),
                        namespace: ns.into(),
                        name: name.into(),
                    },
                },
            )?;
            owner_check(app, user, |check| {
                owners::admit(check, info, ns, &object, None)
            })?;
            Ok((
                201,
                app.store.create_checked(info, ns, object, strict(params))?,
            ))
        }
        other => other.map(|o| (200, o)),
    }
}

fn delete(
    app: &AppState,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    params: &Params,
    body: &[u8],
) -> ApiResult<(Value, bool)> {
    let options: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).unwrap_or_else(|_| json!({}))
    };
    let policy = options["propagationPolicy"]
        .as_str()
        .map(String::from)
        .or_else(|| params.get("propagationPolicy").cloned())
        .or_else(|| match options["orphanDependents"].as_bool() {
            Some(true) => Some("Orphan".into()),
            Some(false) => Some("Background".into()),
            None => None,
        });
    let policy = policy.as_deref().map(Propagation::parse).transpose()?;
    app.store.delete(
        info,
        ns,
        name,
        policy,
        options["preconditions"]["uid"].as_str(),
        options["preconditions"]["resourceVersion"].as_str(),
    )
}

/// Follow-up work after a write: CRDs register their resources.
fn after_write(app: &AppState, info: &ResourceInfo, object: &Value) {
    if info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions" {
        if object["metadata"]["deletionTimestamp"].is_string() {
            return;
        }
        app.store.register_crd(object);
    }
}

/// Follow-up work after an object is gone: CRDs take their resources with them.
fn after_delete(app: &AppState, info: &ResourceInfo, object: &Value) {
    if info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions" {
        app.store.unregister_crd(object);
    }
}

async fn logs(
    app: &AppState,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    params: &Params,
) -> ApiResult<Response> {
    let pod = app.store.get(info, ns, name)?;
    let container = params
        .get("container")
        .cloned()
        .or_else(|| {
            pod["spec"]["containers"][0]["name"]
                .as_str()
                .map(String::from)
        })
        .unwrap_or_default();
    let path = app.processes.log_path(ns, name);
    let content = match tokio::fs::read(&path).await {
        Ok(content) => content,
        Err(_) => {
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
            )));
        }
    };
    let content = match params
        .get("tailLines")
        .and_then(|t| t.parse::<usize>().ok())
    {
        Some(n) => {
            let text = String::from_utf8_lossy(&content);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            let mut tail = lines[start..].join("\n");
            if !tail.is_empty() {
                tail.push('\n');
            }
            tail.into_bytes()
        }
        None => content,
    };
    let follow = params
        .get("follow")
        .is_some_and(|f| f == "true" || f == "1");
    let body = if follow && app.processes.is_running(ns, name) {
        follow_body(app.processes.clone(), ns, name, path, content)
    } else {
        Body::from(content)
    };
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain"),
    );
    Ok(response)
}

/// Streams what is already logged, then new output until the process ends.
fn follow_body(
    processes: Arc<crate::runner::Processes>,
    ns: &str,
    name: &str,
    path: std::path::PathBuf,
    initial: Vec<u8>,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let (ns, name) = (ns.to_string(), name.to_string());
    let mut offset = initial.len();
    tokio::spawn(async move {
        if !initial.is_empty() && tx.send(Bytes::from(initial)).await.is_err() {
            return;
        }
        loop {
            let running = processes.is_running(&ns, &name);
            let content = tokio::fs::read(&path).await.unwrap_or_default();
            if content.len() > offset {
                let chunk = Bytes::copy_from_slice(&content[offset..]);
                offset = content.len();
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
            if !running {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Body::from_stream(stream)
}
