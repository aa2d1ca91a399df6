//! Parsing of Kubernetes API paths into discovery targets or resource requests.

/// A request aimed at a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPath {
    /// API group (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Namespace from the path, if any.
    pub namespace: Option<String>,
    /// Plural resource name.
    pub resource: String,
    /// Object name, if any.
    pub name: Option<String>,
    /// Subresource (`status`, `log`), if any.
    pub subresource: Option<String>,
    /// Whether the legacy `/watch/` prefix was used.
    pub watch_prefix: bool,
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`.
    ResourceList(String, String),
    /// A resource or object.
    Resource(ApiPath),
}

/// Parses a path. Namespaced-vs-namespace ambiguity
/// (`/api/v1/namespaces/x/status`) is resolved by the caller via
/// [`ApiPath::namespace_subresource`].
pub fn parse(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api"] => return Some(Target::CoreVersions),
        ["apis"] => return Some(Target::Groups),
        ["apis", group] => return Some(Target::Group(group.to_string())),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (watch_prefix, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let mut api = ApiPath {
        group: group.to_string(),
        version: version.to_string(),
        namespace: None,
        resource: String::new(),
        name: None,
        subresource: None,
        watch_prefix,
    };
    match rest {
        [] => return Some(Target::ResourceList(group.to_string(), version.to_string())),
        ["namespaces", ns, resource, tail @ ..] => {
            api.namespace = Some(ns.to_string());
            api.resource = resource.to_string();
            api.name = tail.first().map(|s| s.to_string());
            api.subresource = tail.get(1).map(|s| s.to_string());
            if tail.len() > 2 {
                return None;
            }
        }
        [resource, tail @ ..] => {
            api.resource = resource.to_string();
            api.name = tail.first().map(|s| s.to_string());
            api.subresource = tail.get(1).map(|s| s.to_string());
            if tail.len() > 2 {
                return None;
            }
        }
    }
    Some(Target::Resource(api))
}

impl ApiPath {
    /// Reinterprets `/namespaces/<name>/<sub>` as a subresource of the
    /// Namespace itself (used when `<sub>` is not a namespaced resource).
    pub fn namespace_subresource(&self) -> Option<ApiPath> {
        let ns = self.namespace.clone()?;
        if self.name.is_some() {
            return None;
        }
        Some(ApiPath {
            namespace: None,
            resource: "namespaces".into(),
            name: Some(ns),
            subresource: Some(self.resource.clone()),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths() {
        assert_eq!(parse("/api"), Some(Target::CoreVersions));
        assert_eq!(
            parse("/apis/batch/v1"),
            Some(Target::ResourceList("batch".into(), "v1".into()))
        );
        let Some(Target::Resource(p)) = parse("/apis/batch/v1/namespaces/ns1/jobs/j/status") else {
            panic!("not a resource path");
        };
        assert_eq!(p.namespace.as_deref(), Some("ns1"));
        assert_eq!(p.resource, "jobs");
        assert_eq!(p.name.as_deref(), Some("j"));
        assert_eq!(p.subresource.as_deref(), Some("status"));
        let Some(Target::Resource(p)) = parse("/api/v1/namespaces/foo") else {
            panic!("not a resource path");
        };
        assert_eq!(p.resource, "namespaces");
        assert_eq!(p.name.as_deref(), Some("foo"));
        let Some(Target::Resource(p)) = parse("/api/v1/watch/namespaces/a/pods") else {
            panic!("not a resource path");
        };
        assert!(p.watch_prefix);
        assert_eq!(p.resource, "pods");
    }
}
