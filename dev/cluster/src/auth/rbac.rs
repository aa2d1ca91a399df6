//! The RBAC authorizer, with the semantics of Kubernetes' `rbac` authorizer:
//! ClusterRoles bound by ClusterRoleBindings apply everywhere; Roles and
//! ClusterRoles bound by RoleBindings apply in the binding's namespace; a
//! request is allowed when one rule of one of those roles matches it (there
//! are no deny rules). Pure: it works on a [`Policy`] snapshot of the RBAC
//! objects and never touches the store.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::User;

/// What a request asks to do, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// Who asks.
    pub user: User,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, `impersonate`, ... (lower-case HTTP verb for non-resource paths).
    pub verb: String,
    /// What is asked for.
    pub target: Target,
}

/// A resource or a non-resource path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A request for an API resource.
    Resource {
        /// API group (empty for core).
        group: String,
        /// Plural resource.
        resource: String,
        /// Subresource (`status`, `log`, `token`), empty for none.
        subresource: String,
        /// Namespace, empty for cluster scope (or all namespaces).
        namespace: String,
        /// Object name, empty for collections and creates.
        name: String,
    },
    /// Any other path (`/apis`, `/healthz`, `/openapi/v3`, ...).
    NonResource {
        /// The request path.
        path: String,
    },
}

/// One RBAC `PolicyRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// Verbs (`*` for all).
    pub verbs: Vec<String>,
    /// API groups (`*` for all, `""` for core).
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource`, `*` or `*/subresource`.
    pub resources: Vec<String>,
    /// When not empty, only these object names.
    pub resource_names: Vec<String>,
    /// Non-resource URLs (exact, or a prefix ending in `*`).
    pub non_resource_urls: Vec<String>,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl Rule {
    /// Reads a `PolicyRule` object.
    pub fn from_json(rule: &Value) -> Self {
        Self {
            verbs: strings(&rule["verbs"]),
            api_groups: strings(&rule["apiGroups"]),
            resources: strings(&rule["resources"]),
            resource_names: strings(&rule["resourceNames"]),
            non_resource_urls: strings(&rule["nonResourceURLs"]),
        }
    }

    /// The rule as a `PolicyRule` object.
    pub fn to_json(&self) -> Value {
        let mut rule = json!({"verbs": self.verbs});
        if !self.non_resource_urls.is_empty() {
            rule["nonResourceURLs"] = json!(self.non_resource_urls);
        } else {
            rule["apiGroups"] = json!(self.api_groups);
            rule["resources"] = json!(self.resources);
            if !self.resource_names.is_empty() {
                rule["resourceNames"] = json!(self.resource_names);
            }
        }
        rule
    }

    fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    /// Whether this rule allows `verb` on `target`.
    pub fn allows(&self, verb: &str, target: &Target) -> bool {
        if !self.verb_matches(verb) {
            return false;
        }
        match target {
            Target::Resource {
                group,
                resource,
                subresource,
                name,
                ..
            } => {
                self.api_groups.iter().any(|g| g == "*" || g == group)
                    && self.resource_matches(resource, subresource)
                    // A rule naming objects never matches a request without a name
                    // (list, watch, create, deletecollection), as in Kubernetes.
                    && (self.resource_names.is_empty() || self.resource_names.contains(name))
            }
            Target::NonResource { path } => self.non_resource_urls.iter().any(|url| {
                url == "*"
                    || url == path
                    || url
                        .strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix))
            }),
        }
    }

    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        let combined = if subresource.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}/{subresource}")
        };
        self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
        })
    }
}

/// A snapshot of the RBAC objects in the cluster.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// ClusterRoles by name.
    pub cluster_roles: BTreeMap<String, Value>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<Value>,
    /// Roles by (namespace, name).
    pub roles: BTreeMap<(String, String), Value>,
    /// RoleBindings.
    pub role_bindings: Vec<Value>,
}

/// Whether a binding's subject is `user` (`namespace` is the binding's, for
/// ServiceAccount subjects without one).
fn subject_matches(subject: &Value, user: &User, namespace: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str() {
        Some("User") => user.name == name,
        Some("Group") => user.groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            let sa_namespace = subject["namespace"]
                .as_str()
                .filter(|ns| !ns.is_empty())
                .unwrap_or(namespace);
            !sa_namespace.is_empty()
                && user.name == format!("system:serviceaccount:{sa_namespace}:{name}")
        }
        _ => false,
    }
}

fn binds(binding: &Value, user: &User) -> bool {
    let namespace = binding["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| subject_matches(s, user, namespace))
}

fn role_rules(role: Option<&Value>) -> impl Iterator<Item = Rule> + '_ {
    role.and_then(|r| r["rules"].as_array())
        .into_iter()
        .flatten()
        .map(Rule::from_json)
}

impl Policy {
    /// Every rule that applies to `user` in `namespace` (cluster-wide rules only
    /// when `namespace` is empty), each with the binding that grants it.
    pub fn rules_for(&self, user: &User, namespace: &str) -> Vec<(String, Rule)> {
        let mut out = Vec::new();
        for binding in &self.cluster_role_bindings {
            if !binds(binding, user) {
                continue;
            }
            let role = binding["roleRef"]["name"].as_str().unwrap_or_default();
            let via = format!(
                "ClusterRoleBinding {:?} of ClusterRole {role:?}",
                binding["metadata"]["name"].as_str().unwrap_or_default()
            );
            out.extend(role_rules(self.cluster_roles.get(role)).map(|r| (via.clone(), r)));
        }
        if namespace.is_empty() {
            return out;
        }
        for binding in &self.role_bindings {
            if binding["metadata"]["namespace"].as_str() != Some(namespace) || !binds(binding, user)
            {
                continue;
            }
            let role = binding["roleRef"]["name"].as_str().unwrap_or_default();
            let kind = binding["roleRef"]["kind"].as_str().unwrap_or_default();
            let rules = match kind {
                "ClusterRole" => self.cluster_roles.get(role),
                "Role" => self.roles.get(&(namespace.to_string(), role.to_string())),
                _ => None,
            };
            let via = format!(
                "RoleBinding \"{}/{namespace}\" of {kind} {role:?}",
                binding["metadata"]["name"].as_str().unwrap_or_default()
            );
            out.extend(role_rules(rules).map(|r| (via.clone(), r)));
        }
        out
    }

    /// Decides a request: the reason it is allowed (the binding), `None` when no rule allows it.
    pub fn authorize(&self, attributes: &Attributes) -> Option<String> {
        let namespace = match &attributes.target {
            Target::Resource { namespace, .. } => namespace.as_str(),
            Target::NonResource { .. } => "",
        };
        self.rules_for(&attributes.user, namespace)
            .into_iter()
            .find(|(_, rule)| rule.allows(&attributes.verb, &attributes.target))
            .map(|(via, _)| format!("RBAC: allowed by {via}"))
    }
}

/// The message a real API server gives for a denied request, e.g.
/// `User "system:serviceaccount:tipoff:op" cannot list resource "pods" in API group "" in the namespace "tipoff"`.
pub fn forbidden_reason(attributes: &Attributes) -> String {
    let user = &attributes.user.name;
    let verb = &attributes.verb;
    match &attributes.target {
        Target::NonResource { path } => format!("User {user:?} cannot {verb} path {path:?}"),
        Target::Resource {
            group,
            resource,
            subresource,
            namespace,
            ..
        } => {
            let resource = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_string()
            } else {
                format!("in the namespace {namespace:?}")
            };
            format!(
                "User {user:?} cannot {verb} resource {resource:?} in API group {group:?} {scope}"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(ns: &str, name: &str) -> User {
        User::service_account(ns, name)
    }

    fn resource(
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        ns: &str,
        name: &str,
    ) -> Attributes {
        Attributes {
            user: sa("tipoff", "op"),
            verb: verb.into(),
            target: Target::Resource {
                group: group.into(),
                resource: resource.into(),
                subresource: sub.into(),
                namespace: ns.into(),
                name: name.into(),
            },
        }
    }

    fn policy() -> Policy {
        let mut policy = Policy::default();
        policy.roles.insert(
            ("tipoff".into(), "op".into()),
            json!({"rules": [
                {"apiGroups": ["tipoff.dev"], "resources": ["pipelineruns"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["tipoff.dev"], "resources": ["pipelineruns/status"], "verbs": ["patch"]},
                {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["catalog"], "verbs": ["get", "list"]},
                {"apiGroups": ["batch"], "resources": ["*"], "verbs": ["*"]},
                {"apiGroups": ["*"], "resources": ["*/log"], "verbs": ["get"]},
            ]}),
        );
        policy.role_bindings.push(json!({
            "metadata": {"name": "op", "namespace": "tipoff"},
            "roleRef": {"kind": "Role", "name": "op"},
            "subjects": [{"kind": "ServiceAccount", "name": "op"}],
        }));
        policy.cluster_roles.insert(
            "discovery".into(),
            json!({"rules": [{"nonResourceURLs": ["/apis", "/apis/*"], "verbs": ["get"]}]}),
        );
        policy.cluster_role_bindings.push(json!({
            "metadata": {"name": "discovery"},
            "roleRef": {"kind": "ClusterRole", "name": "discovery"},
            "subjects": [{"kind": "Group", "name": "system:authenticated"}],
        }));
        policy
    }

    #[test]
    fn verbs_resources_and_subresources_match_exactly() {
        let p = policy();
        assert!(
            p.authorize(&resource(
                "watch",
                "tipoff.dev",
                "pipelineruns",
                "",
                "tipoff",
                ""
            ))
            .is_some()
        );
        assert!(
            p.authorize(&resource(
                "patch",
                "tipoff.dev",
                "pipelineruns",
                "",
                "tipoff",
                "r"
            ))
            .is_none()
        );
        assert!(
            p.authorize(&resource(
                "patch",
                "tipoff.dev",
                "pipelineruns",
                "status",
                "tipoff",
                "r"
            ))
            .is_some()
        );
        assert!(
            p.authorize(&resource(
                "get",
                "tipoff.dev",
                "pipelineruns",
                "status",
                "tipoff",
                "r"
            ))
            .is_none()
        );
        assert!(
            p.authorize(&resource(
                "get",
                "tipoff.dev",
                "phasecompletions",
                "",
                "tipoff",
                "r"
            ))
            .is_none()
        );
        assert!(
            p.authorize(&resource("get", "", "pipelineruns", "", "tipoff", "r"))
                .is_none()
        );
    }

    #[test]
    fn wildcards_match_verbs_resources_and_subresources() {
        let p = policy();
        assert!(
            p.authorize(&resource(
                "deletecollection",
                "batch",
                "jobs",
                "",
                "tipoff",
                ""
            ))
            .is_some()
        );
        // `*` covers subresources too; `*/log` only the log subresource.
        assert!(
            p.authorize(&resource(
                "update", "batch", "jobs", "status", "tipoff", "j"
            ))
            .is_some()
        );
        assert!(
            p.authorize(&resource("get", "", "pods", "log", "tipoff", "p"))
                .is_some()
        );
        assert!(
            p.authorize(&resource("get", "", "pods", "", "tipoff", "p"))
                .is_none()
        );
    }

    #[test]
    fn resource_names_restrict_named_requests_and_never_grant_collections() {
        let p = policy();
        assert!(
            p.authorize(&resource("get", "", "configmaps", "", "tipoff", "catalog"))
                .is_some()
        );
        assert!(
            p.authorize(&resource("get", "", "configmaps", "", "tipoff", "other"))
                .is_none()
        );
        assert!(
            p.authorize(&resource("list", "", "configmaps", "", "tipoff", ""))
                .is_none()
        );
    }

    #[test]
    fn role_bindings_apply_only_in_their_namespace() {
        let p = policy();
        assert!(
            p.authorize(&resource(
                "get",
                "tipoff.dev",
                "pipelineruns",
                "",
                "other",
                "r"
            ))
            .is_none()
        );
        // All namespaces (empty) is a cluster-wide question.
        assert!(
            p.authorize(&resource("list", "tipoff.dev", "pipelineruns", "", "", ""))
                .is_none()
        );
        let mut other = resource("get", "tipoff.dev", "pipelineruns", "", "tipoff", "r");
        other.user = sa("other", "op");
        assert!(p.authorize(&other).is_none());
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_prefix() {
        let p = policy();
        let path = |verb: &str, path: &str| Attributes {
            user: sa("tipoff", "op"),
            verb: verb.into(),
            target: Target::NonResource { path: path.into() },
        };
        assert!(p.authorize(&path("get", "/apis")).is_some());
        assert!(
            p.authorize(&path("get", "/apis/tipoff.dev/v1alpha1"))
                .is_some()
        );
        assert!(p.authorize(&path("get", "/api")).is_none());
        assert!(p.authorize(&path("post", "/apis")).is_none());
    }

    #[test]
    fn cluster_roles_bound_in_a_namespace_apply_there_only() {
        let mut p = policy();
        p.cluster_roles.insert(
            "view".into(),
            json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        );
        p.role_bindings.push(json!({
            "metadata": {"name": "view", "namespace": "tipoff"},
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "system:serviceaccount:tipoff:op"}],
        }));
        assert!(
            p.authorize(&resource("get", "", "pods", "", "tipoff", "p"))
                .is_some()
        );
        assert!(
            p.authorize(&resource("get", "", "pods", "", "default", "p"))
                .is_none()
        );
    }

    #[test]
    fn forbidden_messages_read_like_the_real_server() {
        assert_eq!(
            forbidden_reason(&resource("list", "", "pods", "", "tipoff", "")),
            r#"User "system:serviceaccount:tipoff:op" cannot list resource "pods" in API group "" in the namespace "tipoff""#
        );
        assert_eq!(
            forbidden_reason(&resource(
                "patch",
                "tipoff.dev",
                "pipelineruns",
                "status",
                "",
                "r"
            )),
            r#"User "system:serviceaccount:tipoff:op" cannot patch resource "pipelineruns/status" in API group "tipoff.dev" at the cluster scope"#
        );
    }
}
