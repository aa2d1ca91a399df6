//! The access reviews of `authorization.k8s.io/v1` (SelfSubjectAccessReview,
//! SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview,
//! behind `kubectl auth can-i [--list]`) and TokenRequest
//! (`serviceaccounts/<name>/token`, behind `kubectl create token`). Nothing
//! is stored: each answers the request it got.

use serde_json::{Value, json};

use super::{AppState, json_response};
use crate::auth::rbac::{Attributes, Target};
use crate::auth::{self, User};
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use axum::response::Response;

fn str_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// The attributes a review's spec asks about, for `user`.
fn asked(spec: &Value, user: User) -> ApiResult<Attributes> {
    let resource = &spec["resourceAttributes"];
    let non_resource = &spec["nonResourceAttributes"];
    if resource.is_object() == non_resource.is_object() {
        return Err(ApiError::invalid(
            "authorization.k8s.io",
            "SubjectAccessReview",
            "",
            vec![crate::error::Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
                field: "spec.resourceAttributes".into(),
            }],
        ));
    }
    if resource.is_object() {
        Ok(Attributes {
            user,
            verb: str_of(&resource["verb"]),
            target: Target::Resource {
                group: str_of(&resource["group"]),
                resource: str_of(&resource["resource"]),
                subresource: str_of(&resource["subresource"]),
                namespace: str_of(&resource["namespace"]),
                name: str_of(&resource["name"]),
            },
        })
    } else {
        Ok(Attributes {
            user,
            verb: str_of(&non_resource["verb"]),
            target: Target::NonResource {
                path: str_of(&non_resource["path"]),
            },
        })
    }
}

/// Answers a review (`create` of a create-only `authorization.k8s.io` type).
pub(super) fn review(
    app: &AppState,
    info: &ResourceInfo,
    requester: &User,
    namespace: Option<&str>,
    mut body: Value,
) -> ApiResult<Response> {
    let spec = body["spec"].clone();
    let policy = auth::policy(&app.store);
    let status = match info.plural.as_str() {
        "selfsubjectrulesreviews" => {
            let namespace = str_of(&spec["namespace"]);
            let (mut resource_rules, mut non_resource_rules) = (Vec::new(), Vec::new());
            for (_, rule) in policy.rules_for(requester, &namespace) {
                if rule.non_resource_urls.is_empty() {
                    resource_rules.push(rule.to_json());
                } else {
                    non_resource_rules.push(rule.to_json());
                }
            }
            json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false})
        }
        plural => {
            let user = match plural {
                "selfsubjectaccessreviews" => requester.clone(),
                _ => User {
                    name: str_of(&spec["user"]),
                    groups: spec["groups"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|g| g.as_str().map(String::from))
                        .collect(),
                },
            };
            let mut attributes = asked(&spec, user)?;
            if let (Some(ns), Target::Resource { namespace, .. }) =
                (namespace, &mut attributes.target)
            {
                // A LocalSubjectAccessReview asks about its own namespace.
                if !namespace.is_empty() && namespace != ns {
                    return Err(ApiError::bad_request(format!(
                        "spec.resourceAttributes.namespace must match namespace: {ns}"
                    )));
                }
                *namespace = ns.to_string();
            }
            if attributes.user.is_master() {
                json!({"allowed": true, "reason": "system:masters"})
            } else {
                match policy.authorize(&attributes) {
                    Some(reason) => json!({"allowed": true, "reason": reason}),
                    None => json!({"allowed": false}),
                }
            }
        }
    };
    body["apiVersion"] = json!(info.api_version());
    body["kind"] = json!(info.kind);
    if !body["metadata"].is_object() {
        body["metadata"] = json!({});
    }
    body["metadata"]["creationTimestamp"] = Value::Null;
    body["status"] = status;
    Ok(json_response(201, &body))
}

/// Issues a token for the ServiceAccount `namespace/name` (a TokenRequest).
pub(super) fn token_request(
    app: &AppState,
    namespace: &str,
    name: &str,
    mut body: Value,
) -> ApiResult<Response> {
    let token = app.auth.issue_token(&app.store, namespace, name)?;
    let seconds = body["spec"]["expirationSeconds"].as_i64().unwrap_or(3600);
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .map_err(|e| ApiError::bad_request(format!("spec.expirationSeconds: {e}")))?;
    body["apiVersion"] = json!("authentication.k8s.io/v1");
    body["kind"] = json!("TokenRequest");
    if !body["metadata"].is_object() {
        body["metadata"] = json!({});
    }
    body["metadata"]["name"] = json!(name);
    body["metadata"]["namespace"] = json!(namespace);
    body["metadata"]["creationTimestamp"] = Value::Null;
    if !body["spec"].is_object() {
        body["spec"] = json!({});
    }
    body["spec"]["expirationSeconds"] = json!(seconds);
    body["status"] = json!({"token": token, "expirationTimestamp": expires});
    Ok(json_response(201, &body))
}
