//! Who is asking and what they may do: authentication (ServiceAccount bearer
//! tokens the server issued; no credentials means the cluster admin),
//! impersonation, the RBAC authorizer ([`rbac`]), the default cluster roles a
//! real cluster bootstraps, and a record of every authorization decision made
//! by RBAC (so tests can prove what an identity used and was refused).
//!
//! It decides; it does not serve HTTP (`http::authz` does) and it never
//! writes objects except the bootstrap roles.

pub mod owners;
pub mod rbac;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::store::{ListOptions, Store};
use rbac::{Attributes, Policy, Target};

/// The group whose members skip authorization, as on a real API server.
pub const MASTERS: &str = "system:masters";
/// The group every authenticated user is in.
pub const AUTHENTICATED: &str = "system:authenticated";

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User name (`system:serviceaccount:<ns>:<name>` for ServiceAccounts).
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
}

impl User {
    /// The identity of requests without credentials: the cluster admin.
    pub fn admin() -> Self {
        Self {
            name: "devcluster-admin".into(),
            groups: vec![MASTERS.into(), AUTHENTICATED.into()],
        }
    }

    /// A ServiceAccount with the groups Kubernetes gives it.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                AUTHENTICATED.into(),
            ],
        }
    }

    /// Whether this user bypasses RBAC (`system:masters`).
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }

    /// `(namespace, name)` when this is a ServiceAccount.
    pub fn service_account_of(&self) -> Option<(&str, &str)> {
        self.name
            .strip_prefix("system:serviceaccount:")?
            .split_once(':')
    }
}

/// One distinct authorization decision made by RBAC, with how often it was made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Decision {
    /// The user.
    pub user: String,
    /// The verb.
    pub verb: String,
    /// API group (empty for core and for non-resource paths).
    pub group: String,
    /// Resource, or the path for non-resource requests.
    pub resource: String,
    /// Subresource, empty for none.
    pub subresource: String,
    /// Namespace, empty for cluster scope.
    pub namespace: String,
    /// Whether it was allowed.
    pub allowed: bool,
}

/// Issued tokens and the decision record.
#[derive(Default)]
pub struct Auth {
    tokens: Mutex<HashMap<String, (String, String)>>,
    decisions: Mutex<BTreeMap<Decision, u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Auth {
    /// Issues a bearer token for an existing ServiceAccount.
    pub fn issue_token(&self, store: &Store, namespace: &str, name: &str) -> ApiResult<String> {
        let info = store
            .resource("", "v1", "serviceaccounts")
            .ok_or_else(|| ApiError::not_found("", "serviceaccounts", name))?;
        store.get(&info, namespace, name)?;
        let token = format!("devcluster-sa.{}", uuid::Uuid::new_v4().simple());
        lock(&self.tokens).insert(token.clone(), (namespace.into(), name.into()));
        Ok(token)
    }

    /// The user a bearer token stands for; `None` for no credentials (the admin).
    /// A token that was never issued, or whose ServiceAccount is gone, is 401.
    pub fn authenticate(&self, store: &Store, bearer: Option<&str>) -> ApiResult<User> {
        let Some(token) = bearer else {
            return Ok(User::admin());
        };
        let unauthorized = || ApiError::new(401, "Unauthorized", "Unauthorized");
        let (namespace, name) = lock(&self.tokens)
            .get(token)
            .cloned()
            .ok_or_else(unauthorized)?;
        let info = store
            .resource("", "v1", "serviceaccounts")
            .ok_or_else(unauthorized)?;
        store
            .get(&info, &namespace, &name)
            .map_err(|_| unauthorized())?;
        Ok(User::service_account(&namespace, &name))
    }

    /// Decides a request and records the decision (`system:masters` is allowed
    /// without consulting RBAC and not recorded, as a real server's
    /// privileged-group authorizer does).
    pub fn authorize(&self, store: &Store, attributes: &Attributes) -> Result<(), ApiError> {
        if attributes.user.is_master() {
            return Ok(());
        }
        self.decide(&policy(store), attributes)
    }

    /// Decides a request against a policy snapshot and records the decision.
    pub fn decide(&self, policy: &Policy, attributes: &Attributes) -> Result<(), ApiError> {
        let allowed = policy.authorize(attributes).is_some();
        let decision = match &attributes.target {
            Target::Resource {
                group,
                resource,
                subresource,
                namespace,
                ..
            } => Decision {
                user: attributes.user.name.clone(),
                verb: attributes.verb.clone(),
                group: group.clone(),
                resource: resource.clone(),
                subresource: subresource.clone(),
                namespace: namespace.clone(),
                allowed,
            },
            Target::NonResource { path } => Decision {
                user: attributes.user.name.clone(),
                verb: attributes.verb.clone(),
                group: String::new(),
                resource: path.clone(),
                subresource: String::new(),
                namespace: String::new(),
                allowed,
            },
        };
        *lock(&self.decisions).entry(decision).or_default() += 1;
        if allowed {
            Ok(())
        } else {
            Err(forbidden(attributes))
        }
    }

    /// Every distinct decision RBAC made so far, with its count.
    pub fn decisions(&self) -> Vec<(Decision, u64)> {
        lock(&self.decisions)
            .iter()
            .map(|(d, n)| (d.clone(), *n))
            .collect()
    }
}

/// `403 Forbidden` shaped like a real API server's.
pub fn forbidden(attributes: &Attributes) -> ApiError {
    let reason = rbac::forbidden_reason(attributes);
    match &attributes.target {
        Target::NonResource { .. } => {
            ApiError::new(403, "Forbidden", format!("forbidden: {reason}"))
        }
        Target::Resource {
            group,
            resource,
            name,
            ..
        } => {
            let qualified = if group.is_empty() {
                resource.clone()
            } else {
                format!("{resource}.{group}")
            };
            let message = if name.is_empty() {
                format!("{qualified} is forbidden: {reason}")
            } else {
                format!("{qualified} {name:?} is forbidden: {reason}")
            };
            ApiError::forbidden(group, resource, name, message)
        }
    }
}

/// The RBAC objects in the store now.
pub fn policy(store: &Store) -> Policy {
    let list = |plural: &str| -> Vec<Value> {
        store
            .resource("rbac.authorization.k8s.io", "v1", plural)
            .and_then(|info| store.list(&info, &ListOptions::default()).ok())
            .map(|l| l.items)
            .unwrap_or_default()
    };
    let name = |o: &Value| {
        o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let namespace = |o: &Value| {
        o["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    Policy {
        cluster_roles: list("clusterroles")
            .into_iter()
            .map(|o| (name(&o), o))
            .collect(),
        cluster_role_bindings: list("clusterrolebindings"),
        roles: list("roles")
            .into_iter()
            .map(|o| ((namespace(&o), name(&o)), o))
            .collect(),
        role_bindings: list("rolebindings"),
    }
}

/// The default ClusterRoles and bindings of a real cluster that matter here:
/// `cluster-admin` for `system:masters`, and discovery, health and
/// self-review access for every authenticated user.
pub fn bootstrap(store: &Store) {
    let roles = [
        (
            "cluster-admin",
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ]),
            "system:masters",
        ),
        (
            "system:discovery",
            json!([{"nonResourceURLs": [
                "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                "/openapi/*", "/readyz", "/version", "/version/"
            ], "verbs": ["get"]}]),
            AUTHENTICATED,
        ),
        (
            "system:basic-user",
            json!([
                {"apiGroups": ["authorization.k8s.io"],
                 "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                 "verbs": ["create"]},
            ]),
            AUTHENTICATED,
        ),
        (
            "system:public-info-viewer",
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": ["get"]}]),
            AUTHENTICATED,
        ),
    ];
    let (Some(role_info), Some(binding_info)) = (
        store.resource("rbac.authorization.k8s.io", "v1", "clusterroles"),
        store.resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
    ) else {
        return;
    };
    let labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    for (name, rules, group) in roles {
        let _ = store.create(
            &role_info,
            "",
            json!({"metadata": {"name": name, "labels": labels}, "rules": rules}),
        );
        let _ = store.create(
            &binding_info,
            "",
            json!({
                "metadata": {"name": name, "labels": labels},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
            }),
        );
    }
}
