//! Update rules: optimistic concurrency, immutable metadata, the status
//! subresource, generation, no-op detection and finalization on update.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Store, Subresource, meta_str, ns_of, with_version};
use crate::builtin;
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::watch::EventType;

/// The object without the fields that do not count as a spec change.
fn spec_part(object: &Value, has_status: bool) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("apiVersion");
        map.remove("kind");
        if has_status {
            map.remove("status");
        }
    }
    copy
}

/// Equality ignoring resourceVersion and managedFields timestamps, without copying either
/// object (this runs on every write).
fn same_content(a: &Value, b: &Value) -> bool {
    fn same_ignoring(a: &Value, b: &Value, ignored: &[&str]) -> bool {
        let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
            return a == b;
        };
        let kept = |m: &serde_json::Map<String, Value>| {
            m.keys().filter(|k| !ignored.contains(&k.as_str())).count()
        };
        kept(a) == kept(b)
            && a.iter()
                .filter(|(k, _)| !ignored.contains(&k.as_str()))
                .all(|(k, va)| b.get(k).is_some_and(|vb| va == vb))
    }
    let (Some(a_map), Some(b_map)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    a_map.len() == b_map.len()
        && a_map.iter().all(|(k, va)| match b_map.get(k) {
            None => false,
            Some(vb) if k == "metadata" => {
                same_ignoring(va, vb, &["resourceVersion", "managedFields"])
            }
            Some(vb) => va == vb,
        })
}

impl Store {
    /// Replaces an object through `mutate`, which sees the stored object and
    /// returns the desired one; the write rules of `subresource` apply. The
    /// closure runs under the store lock, so a patch is atomic.
    pub fn update_with(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        subresource: Subresource,
        mutate: impl FnOnce(&Value) -> ApiResult<Value>,
    ) -> ApiResult<Value> {
        self.update_checked(info, namespace, name, subresource, false, mutate)
    }

    /// [`Self::update_with`]; `strict` reports unknown fields instead of pruning them.
    pub fn update_checked(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        subresource: Subresource,
        strict: bool,
        mutate: impl FnOnce(&Value) -> ApiResult<Value>,
    ) -> ApiResult<Value> {
        let gr = info.group_resource();
        let ns = ns_of(info, namespace);
        let key = (ns.clone(), name.to_string());
        let mut inner = self.lock();
        let old = inner
            .objects
            .get(&gr)
            .and_then(|m| m.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
        let desired = builtin::to_storage(info, mutate(&with_version(&old, info))?);
        let mut new = self.merge_update(info, &old, desired, subresource)?;
        if same_content(&old, &new) {
            return Ok(with_version(&old, info));
        }
        if subresource == Subresource::Main || info.group == "apiextensions.k8s.io" {
            builtin::on_update(info, &mut new, &old);
        }
        self.validate(info, &mut new, Some(&old), strict)?;
        if same_content(&old, &new) {
            return Ok(with_version(&old, info));
        }
        let old_for_gc = old.clone();
        let finalized = new["metadata"]["deletionTimestamp"].is_string()
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty());
        let rv = Self::next_rv(&mut inner);
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        let stored = Arc::new(new);
        if finalized {
            if let Some(map) = inner.objects.get_mut(&gr) {
                map.remove(&key);
            }
            Self::emit(
                &mut inner,
                &self.events,
                &gr,
                &ns,
                EventType::Deleted,
                stored.clone(),
                Some(old),
            );
            drop(inner);
            self.gc_wakeup.notify_one();
        } else {
            inner
                .objects
                .entry(gr.clone())
                .or_default()
                .insert(key, stored.clone());
            Self::emit(
                &mut inner,
                &self.events,
                &gr,
                &ns,
                EventType::Modified,
                stored.clone(),
                Some(old),
            );
            drop(inner);
            let owned = |o: &Value| o["metadata"]["ownerReferences"].clone();
            if stored["metadata"]["ownerReferences"].is_array()
                && owned(&stored) != owned(&old_for_gc)
            {
                self.gc_wakeup.notify_one();
            }
        }
        self.changed.notify_waiters();
        Ok(with_version(&stored, info))
    }

    /// Applies the update rules: optimistic concurrency, immutable metadata,
    /// status subresource separation and generation.
    fn merge_update(
        &self,
        info: &ResourceInfo,
        old: &Value,
        mut desired: Value,
        subresource: Subresource,
    ) -> ApiResult<Value> {
        if !desired.is_object() {
            return Err(ApiError::bad_request("the request body must be an object"));
        }
        let name = meta_str(old, "name");
        let given_rv = meta_str(&desired, "resourceVersion");
        if !given_rv.is_empty() && given_rv != meta_str(old, "resourceVersion") {
            return Err(ApiError::conflict(&info.group, &info.plural, name));
        }
        let given_name = meta_str(&desired, "name");
        if !given_name.is_empty() && given_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given_name}) does not match the name on the URL ({name})"
            )));
        }
        let mut new = match subresource {
            Subresource::Status => {
                let mut new = old.clone();
                match desired.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(map) = new.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
                if let Some(mf) = desired["metadata"].get("managedFields") {
                    new["metadata"]["managedFields"] = mf.clone();
                }
                new
            }
            Subresource::Main => {
                if info.has_status {
                    match old.get("status") {
                        Some(status) => desired["status"] = status.clone(),
                        None => {
                            if let Some(map) = desired.as_object_mut() {
                                map.remove("status");
                            }
                        }
                    }
                }
                if !desired["metadata"].is_object() {
                    desired["metadata"] = json!({});
                }
                for field in [
                    "name",
                    "namespace",
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match old["metadata"].get(field) {
                        Some(v) => desired["metadata"][field] = v.clone(),
                        None => {
                            if let Some(meta) = desired["metadata"].as_object_mut() {
                                meta.remove(field);
                            }
                        }
                    }
                }
                if desired["metadata"].get("managedFields").is_none()
                    && let Some(mf) = old["metadata"].get("managedFields")
                {
                    desired["metadata"]["managedFields"] = mf.clone();
                }
                if let Some(meta) = desired["metadata"].as_object_mut() {
                    meta.remove("generateName");
                    if let Some(gn) = old["metadata"].get("generateName") {
                        meta.insert("generateName".into(), gn.clone());
                    }
                }
                builtin::defaults(info, &mut desired);
                builtin::check_immutable(info, old, &desired)?;
                if spec_part(old, info.has_status) != spec_part(&desired, info.has_status) {
                    let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
                    desired["metadata"]["generation"] = json!(generation + 1);
                }
                desired
            }
        };
        new["apiVersion"] = old["apiVersion"].clone();
        new["kind"] = old["kind"].clone();
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::same_content;
    use serde_json::json;

    #[test]
    fn same_content_ignores_resource_version_and_managed_fields_only() {
        let a = json!({"metadata": {"name": "a", "resourceVersion": "1", "managedFields": [1]},
                       "spec": {"x": 1}});
        let b = json!({"metadata": {"name": "a", "resourceVersion": "2"}, "spec": {"x": 1}});
        assert!(same_content(&a, &b));
        let c = json!({"metadata": {"name": "a", "labels": {}}, "spec": {"x": 1}});
        assert!(!same_content(&a, &c));
        let d = json!({"metadata": {"name": "a"}, "spec": {"x": 2}});
        assert!(!same_content(&b, &d));
        let e = json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {}});
        assert!(!same_content(&b, &e));
        assert!(!same_content(&e, &b));
    }
}
