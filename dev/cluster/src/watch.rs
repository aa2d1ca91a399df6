//! Watch events and the bounded window of recent events that lets a client
//! resume a watch from a resourceVersion; older versions answer `410 Gone`.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::Value;

use crate::resources::GroupResource;

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// An object was created (or entered the selector).
    Added,
    /// An object changed.
    Modified,
    /// An object was removed (or left the selector).
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// Which resource changed.
    pub gr: GroupResource,
    /// Namespace of the object (empty for cluster scope).
    pub namespace: String,
    /// Kind of change.
    pub type_: EventType,
    /// The object after the change (for deletes, the last state).
    pub object: Arc<Value>,
    /// The object before the change, for modifications.
    pub old: Option<Arc<Value>>,
    /// The object serialized once, shared by every watcher that can send it as stored.
    pub encoded: std::sync::OnceLock<bytes::Bytes>,
}

/// The retained window of recent events.
#[derive(Debug)]
pub struct EventWindow {
    events: VecDeque<Arc<WatchEvent>>,
    capacity: usize,
    /// Events with a resourceVersion at or below this are no longer retained.
    compacted_rv: u64,
}

impl EventWindow {
    /// An empty window retaining at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            events: VecDeque::with_capacity(capacity.min(65_536)),
            capacity: capacity.max(1),
            compacted_rv: 0,
        }
    }

    /// Records an event, dropping the oldest when full.
    pub fn push(&mut self, event: Arc<WatchEvent>) {
        if self.events.len() >= self.capacity
            && let Some(old) = self.events.pop_front()
        {
            self.compacted_rv = old.rv;
        }
        self.events.push_back(event);
    }

    /// Forgets every retained event (as etcd compaction would).
    pub fn compact(&mut self, current_rv: u64) {
        self.events.clear();
        self.compacted_rv = current_rv;
    }

    /// The oldest resourceVersion a watch may resume from.
    pub fn compacted_rv(&self) -> u64 {
        self.compacted_rv
    }

    /// Events of one resource newer than `rv`, or `None` when `rv` is too old.
    pub fn since(&self, rv: u64, gr: &GroupResource) -> Option<Vec<Arc<WatchEvent>>> {
        if rv < self.compacted_rv {
            return None;
        }
        Some(
            self.events
                .iter()
                .filter(|e| e.rv > rv && &e.gr == gr)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(rv: u64) -> Arc<WatchEvent> {
        Arc::new(WatchEvent {
            rv,
            gr: GroupResource::new("", "pods"),
            namespace: String::new(),
            type_: EventType::Added,
            object: Arc::new(Value::Null),
            old: None,
            encoded: Default::default(),
        })
    }

    #[test]
    fn window_expires_old_versions() {
        let mut w = EventWindow::new(2);
        for rv in 1..=4 {
            w.push(ev(rv));
        }
        let gr = GroupResource::new("", "pods");
        assert!(w.since(1, &gr).is_none());
        assert_eq!(w.since(2, &gr).map(|v| v.len()), Some(2));
        w.compact(4);
        assert!(w.since(3, &gr).is_none());
        assert_eq!(w.since(4, &gr).map(|v| v.len()), Some(0));
    }
}
