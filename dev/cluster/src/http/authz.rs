//! Authentication, impersonation and RBAC enforcement in front of every
//! request: works out the request's attributes (verb, group, resource,
//! subresource, namespace, name, or the non-resource path) the way a real API
//! server does, answers 401/403 as it would, and hands the authenticated user
//! to the handlers (the self-reviews need it).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AppState, Target, parse};
use crate::auth::rbac::{self, Attributes};
use crate::auth::{AUTHENTICATED, User};
use crate::error::{ApiError, ApiResult};
use crate::resources::Registry;

/// The middleware.
pub(super) async fn enforce(
    State(app): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    match admit(&app, &request) {
        Ok(user) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        Err(err) => err.into_response(),
    }
}

fn admit(app: &AppState, request: &Request) -> ApiResult<User> {
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let user = app.auth.authenticate(&app.store, bearer)?;
    // The test-control endpoints are not part of the Kubernetes API.
    if request.uri().path().starts_with("/_dev") {
        return Ok(user);
    }
    let user = impersonate(app, user, headers)?;
    let attributes = attributes(
        &app.store.registry(),
        user.clone(),
        request.method(),
        request.uri().path(),
        request.uri().query().unwrap_or_default(),
    );
    app.auth.authorize(&app.store, &attributes)?;
    Ok(user)
}

/// Applies `Impersonate-User`/`Impersonate-Group` after checking the requester
/// may impersonate them (verb `impersonate` on users, groups or serviceaccounts).
fn impersonate(app: &AppState, requester: User, headers: &HeaderMap) -> ApiResult<User> {
    let Some(name) = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
    else {
        if headers.contains_key("impersonate-group") {
            return Err(ApiError::bad_request(
                "requested [Impersonate-Group] without impersonating a user",
            ));
        }
        return Ok(requester);
    };
    let groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect();
    let mut user = match User::service_account_of(&User {
        name: name.to_string(),
        groups: Vec::new(),
    }) {
        Some((ns, sa)) if groups.is_empty() => User::service_account(ns, sa),
        _ => User {
            name: name.to_string(),
            groups: groups.clone(),
        },
    };
    let check = |resource: &str, namespace: &str, name: &str| {
        app.auth.authorize(
            &app.store,
            &Attributes {
                user: requester.clone(),
                verb: "impersonate".into(),
                target: rbac::Target::Resource {
                    group: String::new(),
                    resource: resource.into(),
                    subresource: String::new(),
                    namespace: namespace.into(),
                    name: name.into(),
                },
            },
        )
    };
    match user.service_account_of() {
        Some((ns, sa)) => check("serviceaccounts", ns, sa)?,
        None => check("users", "", &user.name)?,
    }
    for group in &groups {
        check("groups", "", group)?;
    }
    if !user.groups.iter().any(|g| g == AUTHENTICATED) && user.name != "system:anonymous" {
        user.groups.push(AUTHENTICATED.into());
    }
    Ok(user)
}

fn query_flag(query: &str, key: &str) -> bool {
    query.split('&').any(|pair| {
        pair.split_once('=')
            .is_some_and(|(k, v)| k == key && (v == "1" || v.eq_ignore_ascii_case("true")))
    })
}

/// The authorization attributes of a request, as a real API server's request-info resolver sees them.
pub fn attributes(
    registry: &Registry,
    user: User,
    method: &Method,
    path: &str,
    query: &str,
) -> Attributes {
    let non_resource = |user: User| Attributes {
        user,
        verb: method.as_str().to_ascii_lowercase(),
        target: rbac::Target::NonResource {
            path: path.to_string(),
        },
    };
    let Some(Target::Resource(mut api)) = parse(path) else {
        return non_resource(user);
    };
    // `/api/v1/namespaces/<ns>/status` is the Namespace's status, not a resource named `status`.
    let namespaced = registry
        .get(&api.group, &api.version, &api.resource)
        .map(|i| i.namespaced);
    if namespaced != Some(true)
        && let Some(alt) = api.namespace_subresource()
    {
        api = alt;
    }
    let watch = api.watch_prefix || query_flag(query, "watch");
    let verb = match (method, api.name.is_some()) {
        (&Method::GET | &Method::HEAD, _) if watch => "watch",
        (&Method::GET | &Method::HEAD, true) => "get",
        (&Method::GET | &Method::HEAD, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => return non_resource(user),
    };
    Attributes {
        user,
        verb: verb.into(),
        target: rbac::Target::Resource {
            group: api.group,
            resource: api.resource,
            subresource: api.subresource.unwrap_or_default(),
            namespace: api.namespace.unwrap_or_default(),
            name: api.name.unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(method: Method, path: &str, query: &str) -> (String, rbac::Target) {
        let a = attributes(&Registry::default(), User::admin(), &method, path, query);
        (a.verb, a.target)
    }

    fn resource(group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> rbac::Target {
        rbac::Target::Resource {
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn verbs_follow_the_request_info_resolver() {
        let jobs = "/apis/batch/v1/namespaces/ns/jobs";
        assert_eq!(target(Method::GET, jobs, "").0, "list");
        assert_eq!(target(Method::GET, jobs, "watch=true&rv=1").0, "watch");
        assert_eq!(
            target(Method::GET, "/apis/batch/v1/watch/namespaces/ns/jobs/j", "").0,
            "watch"
        );
        assert_eq!(target(Method::GET, &format!("{jobs}/j"), "").0, "get");
        assert_eq!(target(Method::POST, jobs, "").0, "create");
        assert_eq!(target(Method::PUT, &format!("{jobs}/j"), "").0, "update");
        assert_eq!(
            target(Method::PATCH, &format!("{jobs}/j/status"), "").0,
            "patch"
        );
        assert_eq!(target(Method::DELETE, &format!("{jobs}/j"), "").0, "delete");
        assert_eq!(target(Method::DELETE, jobs, "").0, "deletecollection");
        assert_eq!(
            target(Method::GET, "/api/v1/namespaces/ns/pods/p/log", "").1,
            resource("", "pods", "log", "ns", "p")
        );
        assert_eq!(
            target(
                Method::POST,
                "/api/v1/namespaces/ns/serviceaccounts/sa/token",
                ""
            )
            .1,
            resource("", "serviceaccounts", "token", "ns", "sa")
        );
    }

    #[test]
    fn namespaces_and_their_subresources_are_cluster_scoped() {
        assert_eq!(
            target(Method::GET, "/api/v1/namespaces/ns", "").1,
            resource("", "namespaces", "", "", "ns")
        );
        assert_eq!(
            target(Method::PUT, "/api/v1/namespaces/ns/finalize", "").1,
            resource("", "namespaces", "finalize", "", "ns")
        );
    }

    #[test]
    fn other_paths_are_non_resource_requests() {
        for path in ["/apis", "/api/v1", "/openapi/v3", "/healthz", "/version"] {
            assert_eq!(
                target(Method::GET, path, ""),
                (
                    "get".into(),
                    rbac::Target::NonResource { path: path.into() }
                )
            );
        }
    }
}
