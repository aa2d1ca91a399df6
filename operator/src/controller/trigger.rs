//! When a run is reconciled after a change: at once while the controller is quiet, batched as
//! load rises.
//!
//! Every watch event about a run (the run itself, one of its PhaseCompletions, Jobs or ended
//! Pods) asks for a reconcile of it. A Job's life is a burst of such events, and reconciling on
//! each would write a status for each; under load, a trailing-edge debounce folds a burst into
//! one reconcile (the benchmark's 1,000 runs in flight need it to stay at or under 4 API writes
//! per Job). But a fixed debounce also delays every phase hand-off of a lone run by as much,
//! for nothing: there is no burst of other runs to batch.
//!
//! So the delay follows the load, measured as how many runs asked for a reconcile recently
//! (over the last half second, or the half second before): up to [`QUIET`] runs (the daily
//! run, with the tail of the run before it or a same-day run beside it) are reconciled at once;
//! from [`FULL_AT`] runs on, each waits the whole `max` after its last event (kube-runtime's
//! fixed debounce, as before); in between the wait grows linearly. A run already waiting has its wait restarted by a new event (trailing edge),
//! so one reconcile sees the whole burst.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::reflector::ObjectRef;
use tokio::time::Instant;

use super::cache::CachedPipelineRun;

/// A run to reconcile.
pub(crate) type RunRef = ObjectRef<CachedPipelineRun>;

/// How many runs asking for reconciles at once count as full load (the whole `max` delay).
pub const FULL_AT: usize = 8;

/// How long one bucket of the load measure lasts.
const BUCKET: Duration = Duration::from_millis(500);

/// The runs that asked for a reconcile in the current and the previous [`BUCKET`].
struct Load {
    current: HashSet<RunRef>,
    previous: HashSet<RunRef>,
    since: Instant,
}

impl Load {
    fn new(now: Instant) -> Self {
        Self {
            current: HashSet::new(),
            previous: HashSet::new(),
            since: now,
        }
    }

    /// Records that `run` asked at `now`; returns how many runs asked recently.
    fn record(&mut self, run: &RunRef, now: Instant) -> usize {
        let age = now.saturating_duration_since(self.since);
        if age >= BUCKET * 2 {
            self.previous.clear();
            self.current.clear();
            self.since = now;
        } else if age >= BUCKET {
            self.previous = std::mem::take(&mut self.current);
            self.since = now;
        }
        self.current.insert(run.clone());
        self.current.len().max(self.previous.len())
    }
}

/// Runs asking at once that still count as quiet: a run and one more (the run before it ending,
/// or a same-day run beside the next-day one) are not delayed.
pub const QUIET: usize = 2;

/// The wait for a run when `active` runs asked recently (itself included): none up to
/// [`QUIET`], then growing linearly to `max` at [`FULL_AT`].
pub(crate) fn delay(active: usize, max: Duration) -> Duration {
    let above = active.saturating_sub(QUIET).min(FULL_AT - QUIET);
    max.mul_f64(above as f64 / (FULL_AT - QUIET) as f64)
}

/// Runs whose reconcile waits, by when it is due.
#[derive(Default)]
struct Held {
    due: HashMap<RunRef, (Instant, u64)>,
    order: BTreeMap<(Instant, u64), RunRef>,
    seq: u64,
}

impl Held {
    fn hold(&mut self, run: RunRef, at: Instant) {
        if let Some(old) = self.due.remove(&run) {
            self.order.remove(&old);
        }
        self.seq += 1;
        self.order.insert((at, self.seq), run.clone());
        self.due.insert(run, (at, self.seq));
    }

    fn is_held(&self, run: &RunRef) -> bool {
        self.due.contains_key(run)
    }

    fn next_due(&self) -> Option<Instant> {
        self.order.keys().next().map(|(at, _)| *at)
    }

    /// The runs due at `now`, in the order they became due.
    fn take_due(&mut self, now: Instant) -> Vec<RunRef> {
        let later = self.order.split_off(&(now, u64::MAX));
        let due = std::mem::replace(&mut self.order, later);
        due.into_values()
            .inspect(|run| {
                self.due.remove(run);
            })
            .collect()
    }
}

/// Passes each run of `triggers` on at once, or after a wait that grows with the load (see the
/// module doc), at most `max`. Ends when `triggers` ends; runs still waiting then are dropped
/// (the controller is stopping).
pub(crate) fn adaptive<S>(triggers: S, max: Duration) -> impl Stream<Item = RunRef> + Send + 'static
where
    S: Stream<Item = RunRef> + Send + 'static,
{
    struct State<S> {
        triggers: std::pin::Pin<Box<S>>,
        load: Load,
        held: Held,
        ready: VecDeque<RunRef>,
    }
    let state = State {
        triggers: Box::pin(triggers),
        load: Load::new(Instant::now()),
        held: Held::default(),
        ready: VecDeque::new(),
    };
    futures::stream::unfold(state, move |mut state| async move {
        loop {
            if let Some(run) = state.ready.pop_front() {
                return Some((run, state));
            }
            let next_due = state.held.next_due();
            tokio::select! {
                trigger = state.triggers.next() => {
                    let run = trigger?;
                    let now = Instant::now();
                    let wait = delay(state.load.record(&run, now), max);
                    if wait.is_zero() && !state.held.is_held(&run) {
                        return Some((run, state));
                    }
                    state.held.hold(run, now + wait);
                }
                () = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                    let due = state.held.take_due(Instant::now());
                    state.ready.extend(due);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use futures::channel::mpsc;

    use super::*;

    fn run(name: &str) -> RunRef {
        ObjectRef::new(name).within("ns")
    }

    #[test]
    fn the_wait_grows_with_the_runs_asking_up_to_the_maximum() {
        let max = Duration::from_millis(200);
        assert_eq!(delay(0, max), Duration::ZERO);
        assert_eq!(delay(1, max), Duration::ZERO, "a run alone goes at once");
        assert_eq!(delay(QUIET, max), Duration::ZERO);
        assert!(delay(QUIET + 1, max) > Duration::ZERO && delay(QUIET + 1, max) < max);
        assert_eq!(delay(FULL_AT, max), max);
        assert_eq!(delay(1000, max), max);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_run_goes_at_once_and_many_runs_wait_for_their_bursts_to_end() {
        let (tx, rx) = mpsc::unbounded();
        let start = Instant::now();
        // The controller polls the stream all the time; so does this collector.
        let collected = tokio::spawn(async move {
            adaptive(rx, Duration::from_millis(200))
                .map(|run| (run.name, Instant::now() - start))
                .collect::<Vec<_>>()
                .await
        });
        tx.unbounded_send(run("a")).unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        // Many runs at once: the later ones wait, and a second event for one restarts its wait.
        for i in 0..FULL_AT {
            tx.unbounded_send(run(&format!("r{i}"))).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let last = format!("r{}", FULL_AT - 1);
        tx.unbounded_send(run(&last)).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(tx);
        let seen = collected.await.unwrap();
        let at = |name: &str| seen.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(at("a"), Duration::ZERO, "no wait while alone");
        assert_eq!(
            at("r0"),
            Duration::from_millis(1),
            "two runs are still quiet"
        );
        assert!(at("r1") > at("r0"), "a third waits: {seen:?}");
        assert!(at(&last) >= Duration::from_millis(301), "{seen:?}");
        assert_eq!(
            seen.iter().filter(|(n, _)| *n == last).count(),
            1,
            "one reconcile per burst"
        );
        assert_eq!(seen.len(), FULL_AT + 1);
    }
}
