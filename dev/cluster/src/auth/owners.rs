//! The `OwnerReferencesPermissionEnforcement` admission check of a real API
//! server, for users RBAC applies to: changing an object's owner references
//! needs `delete` on the object (except on create), and setting
//! `blockOwnerDeletion: true` on a reference needs `update` on the owner's
//! `finalizers` subresource. Refusals are 403 with the real messages.

use serde_json::Value;

use super::rbac::{Attributes, Policy, Target};
use super::{Auth, User};
use crate::error::{ApiError, ApiResult};
use crate::resources::{Registry, ResourceInfo};

fn references(object: Option<&Value>) -> Vec<&Value> {
    object
        .and_then(|o| o["metadata"]["ownerReferences"].as_array())
        .map(|refs| refs.iter().collect())
        .unwrap_or_default()
}

fn blocking(reference: &Value) -> bool {
    reference["blockOwnerDeletion"].as_bool() == Some(true)
}

/// The context of a check: who writes, and the RBAC and resource snapshots
/// (taken before the store is locked for the write).
pub struct Check<'a> {
    /// Records the decisions.
    pub auth: &'a Auth,
    /// The RBAC objects.
    pub policy: &'a Policy,
    /// Served resources (to map an owner's kind to its resource).
    pub registry: &'a Registry,
    /// The writer.
    pub user: &'a User,
}

/// Checks a write of `new` over `old` (`None` on create).
pub fn admit(
    check: &Check<'_>,
    info: &ResourceInfo,
    namespace: &str,
    new: &Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    let Check {
        auth,
        policy,
        registry,
        user,
    } = *check;
    if user.is_master() {
        return Ok(());
    }
    let (new_refs, old_refs) = (references(Some(new)), references(old));
    if new_refs == old_refs {
        return Ok(());
    }
    let name = new["metadata"]["name"].as_str().unwrap_or_default();
    let qualified = if info.group.is_empty() {
        info.plural.clone()
    } else {
        format!("{}.{}", info.plural, info.group)
    };
    let refuse = |why: &str, err: ApiError| {
        let reason = err
            .message
            .split_once(" is forbidden: ")
            .map(|(_, r)| r.to_string())
            .unwrap_or(err.message);
        ApiError::forbidden(
            &info.group,
            &info.plural,
            name,
            format!("{qualified} {name:?} is forbidden: {why}: {reason}, <nil>"),
        )
    };
    if old.is_some() {
        let delete = Attributes {
            user: user.clone(),
            verb: "delete".into(),
            target: Target::Resource {
                group: info.group.clone(),
                resource: info.plural.clone(),
                subresource: String::new(),
                namespace: namespace.into(),
                name: name.into(),
            },
        };
        auth.decide(policy, &delete)
            .map_err(|e| refuse("cannot set an ownerRef on a resource you can't delete", e))?;
    }
    for reference in new_refs.iter().filter(|r| blocking(r)) {
        let already = old_refs
            .iter()
            .any(|o| blocking(o) && o["uid"] == reference["uid"]);
        if already {
            continue;
        }
        let api_version = reference["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let kind = reference["kind"].as_str().unwrap_or_default();
        let Some(owner) = registry
            .all()
            .find(|i| i.group == group && i.version == version && i.kind == kind)
        else {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "{qualified} {name:?}: cannot set blockOwnerDeletion in this case because cannot find RESTMapping for APIVersion {api_version} Kind {kind}"
                ),
            ));
        };
        let finalizers = Attributes {
            user: user.clone(),
            verb: "update".into(),
            target: Target::Resource {
                group: group.into(),
                resource: owner.plural.clone(),
                subresource: "finalizers".into(),
                namespace: if owner.namespaced {
                    namespace.into()
                } else {
                    String::new()
                },
                name: reference["name"].as_str().unwrap_or_default().into(),
            },
        };
        auth.decide(policy, &finalizers).map_err(|e| {
            refuse(
                "cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on",
                e,
            )
        })?;
    }
    Ok(())
}
