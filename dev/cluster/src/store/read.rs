//! Reads: get, paginated list, and the atomic start of a watch.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use super::{Entry, ListOptions, ListResult, Store, ns_of, with_version};
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::watch::{EventType, WatchEvent};

impl Store {
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
}
