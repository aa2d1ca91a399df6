//! The object store: every object as JSON keyed by group/resource, namespace
//! and name, one monotonic resourceVersion, and the write rules the real API
//! server applies (uid, generation, status subresource, optimistic
//! concurrency, finalizers, deletion). It emits watch events; it knows nothing
//! about HTTP. Reads live in `read.rs`, update rules in `update.rs`,
//! deletion and owner handling in `delete.rs`.

mod delete;
mod read;
mod update;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

use crate::builtin;
use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::{GroupResource, Registry, ResourceInfo};
use crate::selector::{FieldSelector, LabelSelector};
use crate::watch::{EventType, EventWindow, WatchEvent};

/// The current time as a Kubernetes `Time` string (seconds precision).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Which part of an object a write targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// The main resource: status is kept from the stored object when a status subresource exists.
    Main,
    /// The `/status` subresource: only status changes.
    Status,
}

/// Cascading deletion policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents lose their owner reference.
    Orphan,
    /// The owner goes now; the garbage collector removes dependents afterwards.
    Background,
    /// The owner waits (finalizer `foregroundDeletion`) until its dependents are gone.
    Foreground,
}

impl Propagation {
    /// Parses `Orphan`, `Background` or `Foreground`.
    pub fn parse(s: &str) -> ApiResult<Self> {
        match s {
            "Orphan" => Ok(Self::Orphan),
            "Background" => Ok(Self::Background),
            "Foreground" => Ok(Self::Foreground),
            other => Err(ApiError::bad_request(format!(
                "unknown propagationPolicy {other:?}"
            ))),
        }
    }
}

/// The finalizer that holds an owner during foreground deletion.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// The result of a list call.
#[derive(Debug, Clone)]
pub struct ListResult {
    /// Matching objects, ordered by namespace then name.
    pub items: Vec<Value>,
    /// The resourceVersion of the list.
    pub resource_version: u64,
    /// Token for the next page, if any.
    pub continue_token: Option<String>,
    /// How many matching objects remain after this page.
    pub remaining: Option<usize>,
}

/// Options for a list or watch.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Namespace to restrict to, `None` for all.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Page size.
    pub limit: Option<usize>,
    /// Continue token from a previous page.
    pub continue_token: Option<String>,
}

impl ListOptions {
    /// Whether an object passes the namespace and selectors.
    pub fn matches(&self, namespace: &str, object: &Value) -> bool {
        self.namespace.as_deref().is_none_or(|ns| ns == namespace)
            && self.labels.matches(object)
            && self.fields.matches(object)
    }
}

/// A hook validating (and possibly pruning/defaulting) custom resources on
/// write: resource, object, old object, `fieldValidation=Strict`.
pub type Validator =
    Arc<dyn Fn(&ResourceInfo, &mut Value, Option<&Value>, bool) -> ApiResult<()> + Send + Sync>;

type ObjectMap = BTreeMap<(String, String), Arc<Value>>;
type Entry<'a> = (&'a (String, String), &'a Arc<Value>);

pub(crate) struct Inner {
    pub(crate) rv: u64,
    pub(crate) objects: HashMap<GroupResource, ObjectMap>,
    pub(crate) window: EventWindow,
    changes: ChangeLog,
    /// Owner references and uids, for the garbage collector and cascading deletion.
    pub(crate) owners: crate::gc::OwnerIndex,
}

/// Which objects of the tracked resources were written since the last
/// [`Store::take_changes`]: a set of keys, so an object written many times between two
/// drains is reported once, and a consumer that pauses cannot fall behind (unlike a
/// broadcast receiver, which lags and loses events).
#[derive(Default)]
struct ChangeLog {
    tracked: HashSet<GroupResource>,
    keys: HashSet<(GroupResource, String, String)>,
}

/// One object of a tracked resource that changed, as it is now.
#[derive(Debug, Clone)]
pub struct Change {
    /// Which resource.
    pub gr: GroupResource,
    /// Namespace (empty for cluster scope).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The stored object now, or `None` when it is gone.
    pub object: Option<Arc<Value>>,
}

/// The object store shared by the HTTP layer, the garbage collector and the Job runner.
pub struct Store {
    inner: Mutex<Inner>,
    /// Shared snapshots: a request takes one without copying every resource's schema.
    registry: RwLock<Arc<Registry>>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    /// Woken whenever something may need garbage collection.
    pub(crate) gc_wakeup: Notify,
    /// Woken on every write (the Job runner listens).
    pub(crate) changed: Notify,
    validator: RwLock<Option<Validator>>,
}

fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object["metadata"][field].as_str().unwrap_or_default()
}

/// Random lowercase alphanumeric suffix for `generateName`.
pub fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(len)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

impl Store {
    /// A store with the built-in resources, the default namespaces and a
    /// watch window of `window` events.
    pub fn new(window: usize) -> Arc<Self> {
        let (events, _) = broadcast::channel(8192);
        let store = Arc::new(Self {
            inner: Mutex::new(Inner {
                rv: 0,
                objects: HashMap::new(),
                window: EventWindow::new(window),
                changes: ChangeLog::default(),
                owners: crate::gc::OwnerIndex::default(),
            }),
            registry: RwLock::new(Arc::new(Registry::with_builtins())),
            events,
            gc_wakeup: Notify::new(),
            changed: Notify::new(),
            validator: RwLock::new(None),
        });
        for ns in ["default", "kube-system", "kube-public"] {
            let info = store.resource("", "v1", "namespaces");
            if let Some(info) = info {
                let _ = store.create(&info, "", json!({"metadata": {"name": ns}}));
            }
        }
        store
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Installs the validator called for every custom-resource write.
    pub fn set_validator(&self, validator: Validator) {
        *self.validator.write().unwrap_or_else(|e| e.into_inner()) = Some(validator);
    }

    /// A snapshot of the registry.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Looks up a served resource version.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<ResourceInfo> {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(group, version, plural)
            .cloned()
    }

    /// Any served version of a group/resource.
    pub fn resource_any(&self, gr: &GroupResource) -> Option<ResourceInfo> {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .any_version(gr)
            .cloned()
    }

    /// Registers (or re-registers) the resources a CRD declares.
    pub fn register_crd(&self, crd: &Value) {
        let infos = crate::resources::infos_from_crd(crd);
        let mut guard = self.registry.write().unwrap_or_else(|e| e.into_inner());
        let registry = Arc::make_mut(&mut guard);
        if let Some(first) = infos.first() {
            registry.remove(&first.group_resource());
        }
        for info in infos {
            registry.insert(info);
        }
    }

    /// Unregisters a CRD's resources and removes all their objects.
    pub fn unregister_crd(&self, crd: &Value) {
        let gr = GroupResource::new(
            crd["spec"]["group"].as_str().unwrap_or_default(),
            crd["spec"]["names"]["plural"].as_str().unwrap_or_default(),
        );
        Arc::make_mut(&mut self.registry.write().unwrap_or_else(|e| e.into_inner())).remove(&gr);
        let mut inner = self.lock();
        let keys: Vec<(String, String)> = inner
            .objects
            .get(&gr)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in keys {
            Self::remove_locked(&mut inner, &self.events, &gr, &ns, &name);
        }
        drop(inner);
        self.changed.notify_waiters();
    }

    /// Subscribes to every future event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.events.subscribe()
    }

    /// Starts recording which objects of `gr` change, for [`Self::take_changes`]. Every
    /// object that exists now counts as changed, so the first drain sees them all.
    pub fn track_changes(&self, gr: &GroupResource) {
        let mut inner = self.lock();
        let existing: Vec<(String, String)> = inner
            .objects
            .get(gr)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        inner.changes.tracked.insert(gr.clone());
        for (ns, name) in existing {
            inner.changes.keys.insert((gr.clone(), ns, name));
        }
    }

    /// Drains the objects of tracked resources written since the last call, each with its
    /// stored state now (shared, not copied). Costs O(changes), not O(objects).
    pub fn take_changes(&self) -> Vec<Change> {
        let mut inner = self.lock();
        let keys = std::mem::take(&mut inner.changes.keys);
        keys.into_iter()
            .map(|(gr, namespace, name)| {
                let object = inner
                    .objects
                    .get(&gr)
                    .and_then(|m| m.get(&(namespace.clone(), name.clone())))
                    .cloned();
                Change {
                    gr,
                    namespace,
                    name,
                    object,
                }
            })
            .collect()
    }

    /// The current resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Drops the retained event window, so older resourceVersions answer 410.
    pub fn compact(&self) {
        let mut inner = self.lock();
        let rv = inner.rv;
        inner.window.compact(rv);
    }

    pub(crate) fn emit(
        inner: &mut Inner,
        events: &broadcast::Sender<Arc<WatchEvent>>,
        gr: &GroupResource,
        namespace: &str,
        type_: EventType,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) {
        inner
            .owners
            .record(gr, namespace, type_, &object, old.as_deref());
        if inner.changes.tracked.contains(gr) {
            let name = meta_str(&object, "name").to_string();
            inner
                .changes
                .keys
                .insert((gr.clone(), namespace.to_string(), name));
        }
        let event = Arc::new(WatchEvent {
            rv: inner.rv,
            gr: gr.clone(),
            namespace: namespace.to_string(),
            type_,
            object,
            old,
            encoded: Default::default(),
        });
        inner.window.push(event.clone());
        let _ = events.send(event);
    }

    pub(crate) fn next_rv(inner: &mut Inner) -> u64 {
        inner.rv += 1;
        inner.rv
    }

    fn validate(
        &self,
        info: &ResourceInfo,
        object: &mut Value,
        old: Option<&Value>,
        strict: bool,
    ) -> ApiResult<()> {
        if info.is_custom() {
            let validator = self
                .validator
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(validator) = validator {
                validator(info, object, old, strict)?;
            }
        }
        Ok(())
    }

    /// Creates an object. `namespace` is the request's namespace (empty for cluster scope).
    pub fn create(&self, info: &ResourceInfo, namespace: &str, object: Value) -> ApiResult<Value> {
        self.create_checked(info, namespace, object, false)
    }

    /// Creates an object; `strict` reports unknown fields instead of pruning them.
    pub fn create_checked(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        mut object: Value,
        strict: bool,
    ) -> ApiResult<Value> {
        if !object.is_object() {
            return Err(ApiError::bad_request("the request body must be an object"));
        }
        if !object["metadata"].is_object() {
            object["metadata"] = json!({});
        }
        let body_ns = meta_str(&object, "namespace").to_string();
        if info.namespaced {
            if !body_ns.is_empty() && body_ns != namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            object["metadata"]["namespace"] = json!(namespace);
        } else if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("namespace");
        }
        let mut name = meta_str(&object, "name").to_string();
        if name.is_empty() {
            let prefix = meta_str(&object, "generateName").to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    &info.group,
                    &info.kind,
                    "",
                    vec![Cause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                ));
            }
            name = format!("{prefix}{}", random_suffix(5));
            object["metadata"]["name"] = json!(name);
        }
        crate::names::validate(info, &name)?;
        let gr = info.group_resource();
        if info.has_status
            && let Some(map) = object.as_object_mut()
        {
            map.remove("status");
        }
        if let Some(meta) = object["metadata"].as_object_mut() {
            for field in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "resourceVersion",
            ] {
                meta.remove(field);
            }
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
            meta.insert("generation".into(), json!(1));
        }
        let mut object = builtin::to_storage(info, object);
        builtin::on_create(info, &mut object);
        self.validate(info, &mut object, None, strict)?;
        let mut inner = self.lock();
        if info.namespaced && !namespace_exists(&inner, namespace) {
            return Err(ApiError::not_found("", "namespaces", namespace));
        }
        let ns_key = if info.namespaced { namespace } else { "" };
        let map = inner.objects.entry(gr.clone()).or_default();
        if map.contains_key(&(ns_key.to_string(), name.clone())) {
            return Err(ApiError::already_exists(&info.group, &info.plural, &name));
        }
        let rv = Self::next_rv(&mut inner);
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let stored = Arc::new(object);
        inner
            .objects
            .entry(gr.clone())
            .or_default()
            .insert((ns_key.to_string(), name), stored.clone());
        Self::emit(
            &mut inner,
            &self.events,
            &gr,
            ns_key,
            EventType::Added,
            stored.clone(),
            None,
        );
        drop(inner);
        if stored["metadata"]["ownerReferences"].is_array() {
            self.gc_wakeup.notify_one();
        }
        self.changed.notify_waiters();
        Ok(with_version(&stored, info))
    }

    pub(crate) fn events_sender(&self) -> &broadcast::Sender<Arc<WatchEvent>> {
        &self.events
    }
}

/// The uids in an object's ownerReferences.
pub fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str())
}

fn namespace_exists(inner: &Inner, namespace: &str) -> bool {
    inner
        .objects
        .get(&GroupResource::new("", "namespaces"))
        .is_some_and(|m| m.contains_key(&(String::new(), namespace.to_string())))
}

fn ns_of(info: &ResourceInfo, namespace: &str) -> String {
    if info.namespaced {
        namespace.to_string()
    } else {
        String::new()
    }
}

/// The stored object as seen through one served version.
pub fn with_version(object: &Value, info: &ResourceInfo) -> Value {
    let mut copy = object.clone();
    if info.is_custom() {
        copy["apiVersion"] = json!(info.api_version());
    }
    builtin::from_storage(info, copy)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn take_changes_reports_each_tracked_object_once_as_it_is_now() {
        let store = Store::new(100);
        let pods = store.resource("", "v1", "pods").unwrap();
        let maps = store.resource("", "v1", "configmaps").unwrap();
        store
            .create(&pods, "default", json!({"metadata": {"name": "before"}}))
            .unwrap();
        store.track_changes(&pods.group_resource());
        let first = store.take_changes();
        assert_eq!(first.len(), 1, "objects that existed count as changed");
        assert!(store.take_changes().is_empty());
        store
            .create(&pods, "default", json!({"metadata": {"name": "p"}}))
            .unwrap();
        store
            .update_with(&pods, "default", "p", Subresource::Main, |p| {
                let mut p = p.clone();
                p["metadata"]["labels"] = json!({"a": "b"});
                Ok(p)
            })
            .unwrap();
        store
            .create(&maps, "default", json!({"metadata": {"name": "untracked"}}))
            .unwrap();
        store
            .delete(&pods, "default", "before", None, None, None)
            .unwrap();
        let mut changes = store.take_changes();
        changes.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].name, "before");
        assert!(changes[0].object.is_none());
        assert_eq!(changes[1].name, "p");
        let p = changes[1].object.as_ref().unwrap();
        assert_eq!(p["metadata"]["labels"]["a"], "b");
    }
}
