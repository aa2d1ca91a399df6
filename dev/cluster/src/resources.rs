//! The resource registry: which group/version/resources exist, their kind,
//! scope and subresources, built-ins plus those registered at runtime by
//! CustomResourceDefinitions. It owns no objects.

use std::collections::BTreeMap;

use serde_json::Value;

/// A group and resource, the storage identity of a type (all versions share it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group, empty for the core group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl GroupResource {
    /// Builds a group/resource pair.
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }
}

/// One additional printer column of a CRD version.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type (`string`, `integer`, `date`, ...).
    pub type_: String,
    /// Optional format.
    pub format: String,
    /// Description shown by `kubectl explain`-like tools.
    pub description: String,
    /// Priority (0 shows by default, higher only with `-o wide`).
    pub priority: i64,
    /// Simple JSONPath (`.spec.date`).
    pub json_path: String,
}

/// Everything the server knows about one served resource version.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural name.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// List kind.
    pub list_kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories (`all`, ...).
    pub categories: Vec<String>,
    /// Whether a `/status` subresource exists.
    pub has_status: bool,
    /// Extra subresources beyond status (`log` for pods).
    pub extra_subresources: Vec<String>,
    /// Printer columns (CRDs only; built-ins have fixed tables).
    pub printer_columns: Vec<PrinterColumn>,
    /// The CRD version entry (schema, validation rules) for custom resources.
    pub crd_version: Option<Value>,
    /// Whether this version is the storage version (used for discovery ordering).
    pub storage: bool,
    /// Review types (`SelfSubjectAccessReview`, ...): only `create`, nothing is stored.
    pub create_only: bool,
}

impl ResourceInfo {
    /// The `apiVersion` string for this version.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage identity. `events.k8s.io` Events share storage with core Events.
    pub fn group_resource(&self) -> GroupResource {
        if self.group == "events.k8s.io" {
            return GroupResource::new("", "events");
        }
        GroupResource::new(&self.group, &self.plural)
    }

    /// Whether this is a custom resource.
    pub fn is_custom(&self) -> bool {
        self.crd_version.is_some()
    }
}

fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    has_status: bool,
) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        has_status,
        extra_subresources: Vec::new(),
        printer_columns: Vec::new(),
        crd_version: None,
        storage: true,
        create_only: false,
    }
}

/// All served resource versions, keyed by (group, version, plural).
#[derive(Debug, Clone)]
pub struct Registry {
    resources: BTreeMap<(String, String, String), ResourceInfo>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl Registry {
    /// The registry with the built-in resources tipoff and kubectl need.
    pub fn with_builtins() -> Self {
        let mut pods = builtin("", "v1", "pods", "Pod", true, &["po"], true);
        pods.extra_subresources.push("log".into());
        pods.categories.push("all".into());
        let mut jobs = builtin("batch", "v1", "jobs", "Job", true, &[], true);
        jobs.categories.push("all".into());
        let mut accounts = builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
        );
        // TokenRequest (`kubectl create token`).
        accounts.extra_subresources.push("token".into());
        let rbac = |plural: &str, kind: &str, namespaced: bool| {
            builtin(
                "rbac.authorization.k8s.io",
                "v1",
                plural,
                kind,
                namespaced,
                &[],
                false,
            )
        };
        let review = |plural: &str, kind: &str, namespaced: bool| ResourceInfo {
            create_only: true,
            ..builtin(
                "authorization.k8s.io",
                "v1",
                plural,
                kind,
                namespaced,
                &[],
                false,
            )
        };
        let list = vec![
            builtin("", "v1", "namespaces", "Namespace", false, &["ns"], true),
            pods,
            builtin("", "v1", "events", "Event", true, &["ev"], false),
            builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"], false),
            builtin("", "v1", "secrets", "Secret", true, &[], false),
            accounts,
            jobs,
            rbac("roles", "Role", true),
            rbac("rolebindings", "RoleBinding", true),
            rbac("clusterroles", "ClusterRole", false),
            rbac("clusterrolebindings", "ClusterRoleBinding", false),
            review("selfsubjectaccessreviews", "SelfSubjectAccessReview", false),
            review("selfsubjectrulesreviews", "SelfSubjectRulesReview", false),
            review("subjectaccessreviews", "SubjectAccessReview", false),
            review(
                "localsubjectaccessreviews",
                "LocalSubjectAccessReview",
                true,
            ),
            builtin(
                "events.k8s.io",
                "v1",
                "events",
                "Event",
                true,
                &["ev"],
                false,
            ),
            builtin(
                "coordination.k8s.io",
                "v1",
                "leases",
                "Lease",
                true,
                &[],
                false,
            ),
            builtin(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
                &["crd", "crds"],
                true,
            ),
        ];
        let mut registry = Self {
            resources: BTreeMap::new(),
        };
        for info in list {
            registry.insert(info);
        }
        registry
    }

    /// Adds or replaces a resource version.
    pub fn insert(&mut self, info: ResourceInfo) {
        self.resources.insert(
            (
                info.group.clone(),
                info.version.clone(),
                info.plural.clone(),
            ),
            info,
        );
    }

    /// Removes every version of a group/resource.
    pub fn remove(&mut self, gr: &GroupResource) {
        self.resources
            .retain(|(g, _, p), _| !(g == &gr.group && p == &gr.resource));
    }

    /// Looks up a served resource version.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.resources
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
    }

    /// Any served version of a group/resource (the storage one first).
    pub fn any_version(&self, gr: &GroupResource) -> Option<&ResourceInfo> {
        let mut found: Option<&ResourceInfo> = None;
        for info in self.resources.values() {
            if info.group == gr.group && info.plural == gr.resource {
                if info.storage {
                    return Some(info);
                }
                found = found.or(Some(info));
            }
        }
        found
    }

    /// All resource versions.
    pub fn all(&self) -> impl Iterator<Item = &ResourceInfo> {
        self.resources.values()
    }

    /// Served versions of a group, storage version first.
    pub fn versions_of(&self, group: &str) -> Vec<String> {
        let mut versions: Vec<(bool, String)> = Vec::new();
        for info in self.resources.values() {
            if info.group == group && !versions.iter().any(|(_, v)| v == &info.version) {
                versions.push((info.storage, info.version.clone()));
            }
        }
        versions.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| version_priority(&a.1, &b.1)));
        versions.into_iter().map(|(_, v)| v).collect()
    }

    /// All groups (without the core group), in a stable order.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for info in self.resources.values() {
            if !info.group.is_empty() && !groups.contains(&info.group) {
                groups.push(info.group.clone());
            }
        }
        groups
    }
}

/// Orders versions like Kubernetes (v2 > v1 > v1beta1 > v1alpha1), newest first.
fn version_priority(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(v: &str) -> (u32, u32, u32) {
        let rest = v.trim_start_matches('v');
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let major = digits.parse().unwrap_or(0);
        let tail = &rest[digits.len()..];
        let (stability, minor_str) = if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (0, m)
        } else {
            (2, "")
        };
        (stability, major, minor_str.parse().unwrap_or(0))
    }
    key(b).cmp(&key(a))
}

/// Builds the resource versions a CRD object declares.
pub fn infos_from_crd(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for version in spec["versions"].as_array().into_iter().flatten() {
        if version["served"].as_bool() == Some(false) {
            continue;
        }
        let printer_columns = version["additionalPrinterColumns"]
            .as_array()
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: c["name"].as_str().unwrap_or_default().to_string(),
                        type_: c["type"].as_str().unwrap_or("string").to_string(),
                        format: c["format"].as_str().unwrap_or_default().to_string(),
                        description: c["description"].as_str().unwrap_or_default().to_string(),
                        priority: c["priority"].as_i64().unwrap_or(0),
                        json_path: c["jsonPath"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(ResourceInfo {
            group: group.to_string(),
            version: version["name"].as_str().unwrap_or_default().to_string(),
            plural: plural.to_string(),
            singular: names["singular"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| kind.to_lowercase()),
            kind: kind.to_string(),
            list_kind: names["listKind"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| format!("{kind}List")),
            namespaced: spec["scope"].as_str() != Some("Cluster"),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            has_status: version["subresources"]["status"].is_object(),
            extra_subresources: Vec::new(),
            printer_columns,
            crd_version: Some(version.clone()),
            storage: version["storage"].as_bool().unwrap_or(false),
            create_only: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_newest_stable_first() {
        let mut v = vec!["v1alpha1", "v1", "v2beta1", "v1beta1"];
        v.sort_by(|a, b| version_priority(a, b));
        assert_eq!(v, vec!["v1", "v2beta1", "v1beta1", "v1alpha1"]);
    }
}
