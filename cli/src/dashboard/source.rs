//! What the page shows, kept current by watches: the namespace's PipelineRuns, their
//! PhaseCompletions and the ConfigMaps labelled `tipoff.dev/game-days`, each mirrored in a
//! kube-runtime reflector store. Every change bumps a version that the event streams follow.
//!
//! The watches run with the user's credentials: what they may not list is reported on the page
//! as an error, never worked around.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tipoff_crds::game_days::{self, GameDays, LABEL_GAME_DAYS};
use tipoff_crds::{PhaseCompletion, PipelineRun, PipelineSchedule};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::matrix::{self, Expectation, Matrix};

/// The reflected objects and the version that changes with them.
#[derive(Clone)]
pub struct Source {
    namespace: String,
    runs: Store<PipelineRun>,
    phase_completions: Store<PhaseCompletion>,
    game_days: Store<ConfigMap>,
    /// ConfigMap name -> the key its schedule reads (default `dates`).
    keys: Arc<BTreeMap<String, String>>,
    errors: Arc<Mutex<BTreeMap<&'static str, String>>>,
    version: watch::Receiver<u64>,
}

/// The watch tasks; dropping this does not stop them, [`Watches::abort`] does.
pub struct Watches(Vec<JoinHandle<()>>);

impl Watches {
    /// Stops every watch.
    pub fn abort(&self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

fn spawn_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    what: &'static str,
    errors: Arc<Mutex<BTreeMap<&'static str, String>>>,
    bump: Arc<watch::Sender<u64>>,
) -> (Store<K>, JoinHandle<()>)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            {
                let mut errs = errors.lock().unwrap_or_else(|p| p.into_inner());
                match &event {
                    Ok(_) => {
                        errs.remove(what);
                    }
                    Err(e) => {
                        errs.insert(what, format!("watching {what}: {e}"));
                    }
                }
            }
            bump.send_modify(|v| *v += 1);
        }
    });
    (reader, task)
}

impl Source {
    /// Starts the watches of `namespace`.
    pub async fn start(client: Client, namespace: &str) -> (Self, Watches) {
        let (tx, version) = watch::channel(0u64);
        let tx = Arc::new(tx);
        let errors = Arc::new(Mutex::new(BTreeMap::new()));
        let (runs, t1) = spawn_watch(
            Api::<PipelineRun>::namespaced(client.clone(), namespace),
            watcher::Config::default(),
            "pipelineruns",
            errors.clone(),
            tx.clone(),
        );
        let (phase_completions, t2) = spawn_watch(
            Api::<PhaseCompletion>::namespaced(client.clone(), namespace),
            watcher::Config::default(),
            "phasecompletions",
            errors.clone(),
            tx.clone(),
        );
        let (game_days, t3) = spawn_watch(
            Api::<ConfigMap>::namespaced(client.clone(), namespace),
            watcher::Config::default().labels(LABEL_GAME_DAYS),
            "game-day ConfigMaps",
            errors.clone(),
            tx.clone(),
        );
        // Which key of a ConfigMap a schedule reads; read once (schedules rarely change, and
        // a cluster without the schedule CRD simply has the default key).
        let schedules: Api<PipelineSchedule> = Api::namespaced(client, namespace);
        let keys = schedules
            .list(&Default::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .map(|s| (s.spec.game_days.config_map, s.spec.game_days.key))
                    .collect()
            })
            .unwrap_or_default();
        (
            Self {
                namespace: namespace.to_owned(),
                runs,
                phase_completions,
                game_days,
                keys: Arc::new(keys),
                errors,
                version,
            },
            Watches(vec![t1, t2, t3]),
        )
    }

    /// Waits until the watches of runs and PhaseCompletions have listed once, at most 5 s (a
    /// refused watch is shown as an error on the page instead).
    pub async fn ready(&self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let _ = self.runs.wait_until_ready().await;
            let _ = self.phase_completions.wait_until_ready().await;
        })
        .await;
    }

    /// A receiver that changes whenever a watched object does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.clone()
    }

    /// The runs as reflected now.
    pub fn runs(&self) -> Vec<PipelineRun> {
        self.runs.state().iter().map(|r| (**r).clone()).collect()
    }

    /// The game-day list a backfill created here should skip dates by: the one labelled
    /// ConfigMap (with the key a schedule reads it by), `None` without one or with several.
    pub fn game_days_source(&self) -> Option<tipoff_crds::GameDaysSource> {
        match self.game_days.state().as_slice() {
            [one] => {
                let name = one.name_any();
                let key = self.keys.get(&name).cloned().unwrap_or_else(|| {
                    tipoff_crds::pipeline_schedule::DEFAULT_GAME_DAYS_KEY.to_owned()
                });
                Some(tipoff_crds::GameDaysSource {
                    config_map: name,
                    key,
                })
            }
            _ => None,
        }
    }

    /// The game days of every labelled ConfigMap, merged; `None` without any.
    pub fn game_days(&self) -> Option<GameDays> {
        let mut merged: Option<GameDays> = None;
        for cm in self.game_days.state() {
            let name = cm.name_any();
            let key = self.keys.get(&name).map_or("dates", String::as_str);
            let text = cm
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
                .unwrap_or_default();
            let parsed = game_days::parse(
                &text,
                &format!("ConfigMap {}/{name} key {key}", self.namespace),
            );
            merged = Some(match (merged, parsed) {
                (
                    Some(GameDays::Listed { mut dates, through }),
                    GameDays::Listed {
                        dates: more,
                        through: t2,
                    },
                ) => {
                    dates.extend(more);
                    GameDays::Listed {
                        dates,
                        through: through.max(t2),
                    }
                }
                (Some(listed @ GameDays::Listed { .. }), GameDays::Unavailable { .. }) => listed,
                (_, parsed) => parsed,
            });
        }
        merged
    }

    /// The matrix at `now`, with any watch errors.
    pub fn matrix(
        &self,
        expectation: Option<&Expectation>,
        now: jiff::Timestamp,
    ) -> (Matrix, Vec<String>) {
        let runs = self.runs();
        let pcs: Vec<PhaseCompletion> = self
            .phase_completions
            .state()
            .iter()
            .map(|p| (**p).clone())
            .collect();
        let m = matrix::build(
            &self.namespace,
            &runs,
            &pcs,
            self.game_days().as_ref(),
            expectation,
            now,
        );
        let errors = self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        (m, errors)
    }
}
