//! Deletion: propagation policies, finalizers and `deletionTimestamp`,
//! orphaning dependents, and removal with its DELETED event.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::{
    FOREGROUND_FINALIZER, Inner, Propagation, Store, meta_str, now_rfc3339, ns_of, with_version,
};
use crate::error::{ApiError, ApiResult};
use crate::resources::{GroupResource, ResourceInfo};
use crate::watch::{EventType, WatchEvent};

impl Store {
    /// Deletes an object with a propagation policy. Returns the object and
    /// whether deletion is still pending (finalizers).
    pub fn delete(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        propagation: Option<Propagation>,
        precondition_uid: Option<&str>,
        precondition_rv: Option<&str>,
    ) -> ApiResult<(Value, bool)> {
        let gr = info.group_resource();
        let ns = ns_of(info, namespace);
        let key = (ns.clone(), name.to_string());
        let policy = propagation.unwrap_or(if gr == GroupResource::new("batch", "jobs") {
            // Like the real server, Jobs orphan their Pods unless told otherwise.
            Propagation::Orphan
        } else {
            Propagation::Background
        });
        let mut inner = self.lock();
        let old = inner
            .objects
            .get(&gr)
            .and_then(|m| m.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
        if precondition_uid.is_some_and(|u| u != meta_str(&old, "uid"))
            || precondition_rv.is_some_and(|r| r != meta_str(&old, "resourceVersion"))
        {
            return Err(ApiError::conflict(&info.group, &info.plural, name));
        }
        let uid = meta_str(&old, "uid").to_string();
        if policy == Propagation::Orphan {
            Self::orphan_dependents(&mut inner, &self.events, &uid);
        }
        let mut finalizers: Vec<Value> = old["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if policy == Propagation::Foreground
            && !finalizers.iter().any(|f| f == FOREGROUND_FINALIZER)
            && Self::has_dependents(&inner, &uid)
        {
            finalizers.push(json!(FOREGROUND_FINALIZER));
        }
        let result = if finalizers.is_empty() {
            let removed = Self::remove_locked(&mut inner, &self.events, &gr, &ns, name);
            (
                removed.map(|o| with_version(&o, info)).unwrap_or_default(),
                false,
            )
        } else {
            let mut new = (*old).clone();
            new["metadata"]["finalizers"] = Value::Array(finalizers);
            if !new["metadata"]["deletionTimestamp"].is_string() {
                new["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            }
            if new != *old {
                let rv = Self::next_rv(&mut inner);
                new["metadata"]["resourceVersion"] = json!(rv.to_string());
                let stored = Arc::new(new);
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
                (with_version(&stored, info), true)
            } else {
                (with_version(&old, info), true)
            }
        };
        drop(inner);
        self.gc_wakeup.notify_one();
        self.changed.notify_waiters();
        Ok(result)
    }

    pub(crate) fn remove_locked(
        inner: &mut Inner,
        events: &broadcast::Sender<Arc<WatchEvent>>,
        gr: &GroupResource,
        ns: &str,
        name: &str,
    ) -> Option<Arc<Value>> {
        let old = inner
            .objects
            .get_mut(gr)
            .and_then(|m| m.remove(&(ns.to_string(), name.to_string())))?;
        let rv = Self::next_rv(inner);
        let mut last = (*old).clone();
        last["metadata"]["resourceVersion"] = json!(rv.to_string());
        let last = Arc::new(last);
        Self::emit(
            inner,
            events,
            gr,
            ns,
            EventType::Deleted,
            last.clone(),
            Some(old),
        );
        Some(last)
    }

    pub(crate) fn has_dependents(inner: &Inner, uid: &str) -> bool {
        inner.owners.has_dependents(uid)
    }

    fn orphan_dependents(
        inner: &mut Inner,
        events: &broadcast::Sender<Arc<WatchEvent>>,
        uid: &str,
    ) {
        let mut changes = Vec::new();
        for (gr, ns, name) in inner.owners.dependents_of(uid) {
            let key = (ns, name);
            if let Some(obj) = inner.objects.get(&gr).and_then(|m| m.get(&key)) {
                let mut new = (**obj).clone();
                if let Some(refs) = new["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"].as_str() != Some(uid));
                    if refs.is_empty()
                        && let Some(meta) = new["metadata"].as_object_mut()
                    {
                        meta.remove("ownerReferences");
                    }
                }
                changes.push((gr.clone(), key.clone(), obj.clone(), new));
            }
        }
        for (gr, key, old, mut new) in changes {
            let rv = Self::next_rv(inner);
            new["metadata"]["resourceVersion"] = json!(rv.to_string());
            let stored = Arc::new(new);
            inner
                .objects
                .entry(gr.clone())
                .or_default()
                .insert(key.clone(), stored.clone());
            Self::emit(
                inner,
                events,
                &gr,
                &key.0,
                EventType::Modified,
                stored,
                Some(old),
            );
        }
    }
}
