//! The object store: every object as JSON keyed by group/resource, namespace
//! and name, one monotonic resourceVersion, and the write rules the real API
//! server applies (uid, generation, status subresource, optimistic
//! concurrency, finalizers, deletion). It emits watch events; it knows nothing
//! about HTTP.

use std::collections::{BTreeMap, HashMap};
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
}

/// The object store shared by the HTTP layer, the garbage collector and the Job runner.
pub struct Store {
    inner: Mutex<Inner>,
    registry: RwLock<Registry>,
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

/// Equality ignoring resourceVersion and managedFields timestamps.
fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut c = v.clone();
        if let Some(meta) = c["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
        c
    };
    strip(a) == strip(b)
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
            }),
            registry: RwLock::new(Registry::with_builtins()),
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
    pub fn registry(&self) -> Registry {
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
        let mut registry = self.registry.write().unwrap_or_else(|e| e.into_inner());
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
        self.registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&gr);
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

    fn emit(
        inner: &mut Inner,
        events: &broadcast::Sender<Arc<WatchEvent>>,
        gr: &GroupResource,
        namespace: &str,
        type_: EventType,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) {
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

    fn next_rv(inner: &mut Inner) -> u64 {
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

    /// Reads one object.
    pub fn get(&self, info: &ResourceInfo, namespace: &str, name: &str) -> ApiResult<Value> {
        let inner = self.lock();
        inner
            .objects
            .get(&info.group_resource())
            .and_then(|m| m.get(&(ns_of(info, namespace), name.to_string())))
            .map(|v| with_version(v, info))
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))
    }

    /// Lists objects with selectors and pagination.
    pub fn list(&self, info: &ResourceInfo, options: &ListOptions) -> ApiResult<ListResult> {
        let inner = self.lock();
        let (rv, after) = match &options.continue_token {
            Some(token) if !token.is_empty() => {
                let mut parts = token.splitn(3, '/');
                let rv = parts.next().and_then(|r| r.parse::<u64>().ok());
                let ns = parts.next();
                let name = parts.next();
                match (rv, ns, name) {
                    (Some(rv), Some(ns), Some(name)) => {
                        (rv, Some((ns.to_string(), name.to_string())))
                    }
                    _ => return Err(ApiError::bad_request("invalid continue token")),
                }
            }
            _ => (inner.rv, None),
        };
        let mut items = Vec::new();
        let mut continue_token = None;
        let mut remaining = None;
        if let Some(map) = inner.objects.get(&info.group_resource()) {
            let range: Box<dyn Iterator<Item = Entry<'_>>> = match &after {
                Some(key) => Box::new(map.range((
                    std::ops::Bound::Excluded(key.clone()),
                    std::ops::Bound::Unbounded,
                ))),
                None => Box::new(map.iter()),
            };
            let mut matching = range.filter(|((ns, _), obj)| options.matches(ns, obj));
            for ((ns, name), obj) in matching.by_ref() {
                items.push(with_version(obj, info));
                if options.limit.is_some_and(|l| l > 0 && items.len() >= l) {
                    continue_token = Some(format!("{rv}/{ns}/{name}"));
                    break;
                }
            }
            if continue_token.is_some() {
                let rest = matching.count();
                if rest == 0 {
                    continue_token = None;
                } else {
                    remaining = Some(rest);
                }
            }
        }
        Ok(ListResult {
            items,
            resource_version: rv,
            continue_token,
            remaining,
        })
    }

    /// Starts a watch: returns the events to send first and a receiver for
    /// the rest, taken atomically so nothing is missed. `since` of `None`
    /// or `0` sends every current object as ADDED first.
    #[allow(clippy::type_complexity)]
    pub fn watch(
        &self,
        info: &ResourceInfo,
        options: &ListOptions,
        since: Option<u64>,
    ) -> ApiResult<(
        Vec<Arc<WatchEvent>>,
        broadcast::Receiver<Arc<WatchEvent>>,
        u64,
    )> {
        let inner = self.lock();
        let gr = info.group_resource();
        let initial = match since {
            None | Some(0) => inner
                .objects
                .get(&gr)
                .map(|m| {
                    m.iter()
                        .filter(|((ns, _), obj)| options.matches(ns, obj))
                        .map(|((ns, _), obj)| {
                            Arc::new(WatchEvent {
                                rv: inner.rv,
                                gr: gr.clone(),
                                namespace: ns.clone(),
                                type_: EventType::Added,
                                object: obj.clone(),
                                old: None,
                                encoded: Default::default(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Some(rv) => inner.window.since(rv, &gr).ok_or_else(|| {
                ApiError::expired(format!(
                    "too old resource version: {rv} ({})",
                    inner.window.compacted_rv() + 1
                ))
            })?,
        };
        Ok((initial, self.events.subscribe(), inner.rv))
    }

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
        inner
            .objects
            .values()
            .flat_map(|m| m.values())
            .any(|o| owner_uids(o).any(|u| u == uid))
    }

    fn orphan_dependents(
        inner: &mut Inner,
        events: &broadcast::Sender<Arc<WatchEvent>>,
        uid: &str,
    ) {
        let mut changes = Vec::new();
        for (gr, map) in &inner.objects {
            for (key, obj) in map {
                if owner_uids(obj).any(|u| u == uid) {
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
