//! Object name validation as a real API server does it on create: most kinds
//! take an RFC 1123 subdomain, Namespaces (and Services) an RFC 1123 label,
//! RBAC objects any path segment. Messages are the apimachinery ones, so a
//! client sees the same `422 Invalid` it would see on a real cluster.

use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::ResourceInfo;

const SUBDOMAIN_MAX: usize = 253;
const LABEL_MAX: usize = 63;
const SUBDOMAIN_FORMAT: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_FORMAT: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

/// The problems with `name` as an RFC 1123 subdomain.
pub fn subdomain_errors(name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > SUBDOMAIN_MAX {
        errors.push(format!("must be no more than {SUBDOMAIN_MAX} characters"));
    }
    if !name.split('.').all(is_label) {
        errors.push(SUBDOMAIN_FORMAT.to_string());
    }
    errors
}

/// The problems with `name` as an RFC 1123 label.
pub fn label_errors(name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > LABEL_MAX {
        errors.push(format!("must be no more than {LABEL_MAX} characters"));
    }
    if !is_label(name) {
        errors.push(LABEL_FORMAT.to_string());
    }
    errors
}

/// The problems with `name` as a path segment (RBAC object names).
pub fn path_segment_errors(name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name == "." || name == ".." {
        errors.push(format!("may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            errors.push(format!("may not contain '{bad}'"));
        }
    }
    errors
}

/// Checks the name of an object of type `info` being created.
pub fn validate(info: &ResourceInfo, name: &str) -> ApiResult<()> {
    let errors = match (info.group.as_str(), info.plural.as_str()) {
        ("", "namespaces" | "services") => label_errors(name),
        ("rbac.authorization.k8s.io", _) => path_segment_errors(name),
        _ => subdomain_errors(name),
    };
    if errors.is_empty() {
        return Ok(());
    }
    let causes = errors
        .into_iter()
        .map(|e| Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {name:?}: {e}"),
            field: "metadata.name".into(),
        })
        .collect();
    Err(ApiError::invalid(&info.group, &info.kind, name, causes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn info(group: &str, plural: &str) -> ResourceInfo {
        let registry = Registry::default();
        registry
            .all()
            .find(|i| i.group == group && i.plural == plural)
            .cloned()
            .unwrap()
    }

    #[test]
    fn subdomains_labels_and_path_segments() {
        assert!(subdomain_errors("tipoff-operator.v1").is_empty());
        assert!(subdomain_errors("0abc").is_empty());
        for bad in ["", "Upper", "under_score", "-dash", "dash-", "a..b", ".a"] {
            assert_eq!(subdomain_errors(bad), vec![SUBDOMAIN_FORMAT], "{bad}");
        }
        assert_eq!(subdomain_errors(&"a".repeat(254)).len(), 1);
        assert!(label_errors(&"a".repeat(63)).is_empty());
        assert_eq!(
            label_errors(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
        assert_eq!(label_errors("a.b"), vec![LABEL_FORMAT]);
        assert!(path_segment_errors("system:discovery").is_empty());
        assert_eq!(path_segment_errors("a/b"), vec!["may not contain '/'"]);
    }

    #[test]
    fn invalid_names_are_422_with_the_real_message() {
        let err = validate(&info("", "namespaces"), "team.a").unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            format!(
                r#"Namespace "team.a" is invalid: metadata.name: Invalid value: "team.a": {LABEL_FORMAT}"#
            )
        );
        assert!(validate(&info("", "configmaps"), "team.a").is_ok());
        let err = validate(&info("batch", "jobs"), "My_Job").unwrap_err();
        assert!(err.message.starts_with(r#"Job.batch "My_Job" is invalid: metadata.name: Invalid value: "My_Job": a lowercase RFC 1123 subdomain"#), "{}", err.message);
        assert!(
            validate(
                &info("rbac.authorization.k8s.io", "clusterroles"),
                "system:discovery"
            )
            .is_ok()
        );
    }
}
