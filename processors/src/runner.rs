//! Runs one real processor: configuration from the environment, the shared context (object
//! storage, warehouse, upstream client), dispatch by name, and the result.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tipoff_crds::{Check, ProcessorResult};
use tipoff_warehouse::storage::{ObjectKey, ObjectStorage};
use tipoff_warehouse::{Warehouse, WarehouseError};

use crate::contract::{self, Failure, RunArgs};
use crate::registry;
use crate::upstream::{RetryPolicy, Upstream};

/// Most names listed in a check's `missing` (the result must fit in 4 KiB).
pub const MAX_MISSING: usize = 12;

/// Configuration, normally from the environment.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `TIPOFF_WAREHOUSE_URL`: `file:///path` or `bigquery://project`.
    pub warehouse_url: Option<String>,
    /// `TIPOFF_STORAGE_URL`: `file:///dir` or `gs://bucket`.
    pub storage_url: Option<String>,
    /// `TIPOFF_UPSTREAM_URL`: base URL of the upstream APIs.
    pub upstream_url: Option<String>,
    /// `TIPOFF_UPSTREAM_API_KEY_FILE`: file holding the API key (a mounted Secret).
    pub api_key_file: Option<PathBuf>,
    /// Retries and timeouts (`TIPOFF_UPSTREAM_TIMEOUT_SECS`, `TIPOFF_UPSTREAM_MAX_ATTEMPTS`,
    /// `TIPOFF_UPSTREAM_BACKOFF_MS`).
    pub retry: RetryPolicy,
    /// `TIPOFF_DISABLED_CHECKS` (comma-separated): checks the catalog turned off for this run's
    /// mode; they are not reported.
    pub disabled_checks: Vec<String>,
    /// `TIPOFF_GAME`: limit a scraper to one game (an NBA game id or `AWY@HOM`), as a rerun
    /// asks. Raw processors ignore it: they replace the date's partition from every payload.
    pub game: Option<String>,
    /// `TIPOFF_NOW` (RFC 3339): the instant the run acts as of, for demos and replays on a
    /// simulated clock. Unset in production: the wall clock. It decides whether predictions are
    /// written before the date's first tip-off.
    pub now: Option<jiff::Timestamp>,
    /// Which shard of an Indexed Job this Pod is: `JOB_COMPLETION_INDEX` (set by the Job
    /// controller) of `TIPOFF_SHARDS` (set by the operator from the catalog's parallelism).
    pub shard: Shard,
    /// `TIPOFF_MODEL_MAX_AGE_DAYS`: `train-points-model` reuses the newest model trained on
    /// games at most this many days before the date (default 7) and retrains otherwise.
    pub model_max_age_days: Option<i64>,
    /// `TIPOFF_MODEL_MIN_ROWS`: fewer training rows than this and `train-points-model` trains
    /// nothing (default 1500, about two weeks of games).
    pub model_min_rows: Option<usize>,
    /// `TIPOFF_LIVE_POLL_SECS` (seconds, fractions allowed; default 180 when unset): how often
    /// `export-live` polls the upstream.
    pub live_poll: Option<Duration>,
    /// `TIPOFF_LIVE_MAX_SECS` (seconds; default 28800 when unset): the longest `export-live` runs before
    /// it gives up on games that are not final.
    pub live_max: Option<Duration>,
    /// Whether warnings also go to stderr as they happen: the binary's do (they reach the Pod's
    /// log); in-process callers (the demo's history, the benchmarks) read them from the result.
    pub log_warnings: bool,
}

/// A duration in seconds from the environment (fractions allowed), if set.
fn env_secs(name: &str) -> Result<Option<Duration>, Failure> {
    env(name)
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    Failure::Permanent(format!("{name}={v:?}: not a positive number of seconds"))
                })
        })
        .transpose()
}

/// One shard of a sharded processor: `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard.
    pub index: u32,
    /// How many shards the Job has.
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl Shard {
    /// Reads and checks `JOB_COMPLETION_INDEX` and `TIPOFF_SHARDS`.
    pub fn from_env() -> Result<Self, Failure> {
        let num = |name: &str, default: u32| -> Result<u32, Failure> {
            env(name).map_or(Ok(default), |v| {
                v.parse::<u32>()
                    .map_err(|e| Failure::Permanent(format!("{name}={v:?}: {e}")))
            })
        };
        let shard = Self {
            index: num("JOB_COMPLETION_INDEX", 0)?,
            count: num("TIPOFF_SHARDS", 1)?,
        };
        shard.check().map(|()| shard)
    }

    /// An index below the count, and a count the processors can split players into.
    pub fn check(&self) -> Result<(), Failure> {
        if self.count == 0 || self.count > MAX_SHARDS || self.index >= self.count {
            return Err(Failure::Permanent(format!(
                "shard {} of {} is impossible: TIPOFF_SHARDS must be 1-{MAX_SHARDS} and \
                 JOB_COMPLETION_INDEX below it",
                self.index, self.count
            )));
        }
        Ok(())
    }
}

/// The most shards a processor splits into (its players fall in this many hash buckets).
pub const MAX_SHARDS: u32 = 1024;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, Failure> {
        let mut retry = RetryPolicy::default();
        let num = |name: &str| -> Result<Option<u64>, Failure> {
            env(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|e| Failure::Permanent(format!("{name}={v:?}: {e}")))
                })
                .transpose()
        };
        if let Some(s) = num("TIPOFF_UPSTREAM_TIMEOUT_SECS")? {
            retry.timeout = Duration::from_secs(s);
        }
        if let Some(n) = num("TIPOFF_UPSTREAM_MAX_ATTEMPTS")? {
            retry.max_attempts = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        }
        if let Some(ms) = num("TIPOFF_UPSTREAM_BACKOFF_MS")? {
            retry.base_backoff = Duration::from_millis(ms);
        }
        Ok(Self {
            warehouse_url: env("TIPOFF_WAREHOUSE_URL"),
            storage_url: env("TIPOFF_STORAGE_URL"),
            upstream_url: env("TIPOFF_UPSTREAM_URL"),
            api_key_file: env("TIPOFF_UPSTREAM_API_KEY_FILE").map(PathBuf::from),
            retry,
            disabled_checks: env("TIPOFF_DISABLED_CHECKS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            game: env("TIPOFF_GAME"),
            now: env("TIPOFF_NOW")
                .map(|v| {
                    v.parse::<jiff::Timestamp>().map_err(|e| {
                        Failure::Permanent(format!(
                            "TIPOFF_NOW={v:?} is not an RFC 3339 instant: {e}"
                        ))
                    })
                })
                .transpose()?,
            shard: Shard::from_env()?,
            model_max_age_days: num("TIPOFF_MODEL_MAX_AGE_DAYS")?
                .map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
            model_min_rows: num("TIPOFF_MODEL_MIN_ROWS")?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            live_poll: env_secs("TIPOFF_LIVE_POLL_SECS")?,
            live_max: env_secs("TIPOFF_LIVE_MAX_SECS")?,
            log_warnings: true,
        })
    }
}

/// What a processor run produced: the result (always) and how it failed (if it did).
#[derive(Debug)]
pub struct Outcome {
    /// The result to write.
    pub result: ProcessorResult,
    /// `None` on success.
    pub failure: Option<Failure>,
}

impl Outcome {
    /// The exit code per the contract.
    pub fn exit_code(&self) -> i32 {
        self.failure.as_ref().map_or(0, Failure::exit_code)
    }
}

/// What processors share during a run.
pub struct Ctx {
    /// The run's arguments.
    pub args: RunArgs,
    /// Object storage for raw payloads.
    pub storage: ObjectStorage,
    /// Configuration.
    pub config: Config,
    /// The result being built.
    pub result: ProcessorResult,
    upstream: Option<Arc<Upstream>>,
    processed_at: jiff::Timestamp,
}

/// Maps a warehouse error to the contract: transient errors are retried, others are not.
pub fn warehouse_failure(context: &str, e: &WarehouseError) -> Failure {
    if e.is_transient() {
        Failure::Transient(format!("{context}: {e}"))
    } else {
        Failure::Permanent(format!("{context}: {e}"))
    }
}

/// Maps an object-storage error: storage errors are retried.
pub fn storage_failure(context: &str, e: &WarehouseError) -> Failure {
    Failure::Transient(format!("{context}: {e}"))
}

impl Ctx {
    /// The `processed_at` of every row this run writes (one instant per run).
    pub fn processed_at(&self) -> jiff::Timestamp {
        self.processed_at
    }

    /// The instant the run acts as of: `TIPOFF_NOW`, or the run's `processed_at`.
    pub fn now(&self) -> jiff::Timestamp {
        self.config.now.unwrap_or(self.processed_at)
    }

    /// The upstream client (created on first use).
    pub fn upstream(&mut self) -> Result<Arc<Upstream>, Failure> {
        if let Some(u) = &self.upstream {
            return Ok(Arc::clone(u));
        }
        let base = self.config.upstream_url.clone().ok_or_else(|| {
            Failure::Permanent("TIPOFF_UPSTREAM_URL is not set (the upstream API base)".into())
        })?;
        let u = Arc::new(Upstream::new(
            &base,
            self.config.api_key_file.clone(),
            self.config.retry.clone(),
        )?);
        self.upstream = Some(Arc::clone(&u));
        Ok(u)
    }

    /// Opens the warehouse.
    pub async fn warehouse(&self) -> Result<Arc<dyn Warehouse>, Failure> {
        let url = self.config.warehouse_url.clone().ok_or_else(|| {
            Failure::Permanent(
                "TIPOFF_WAREHOUSE_URL is not set (file:///path or bigquery://project)".into(),
            )
        })?;
        tipoff_warehouse::open(&url)
            .await
            .map_err(|e| warehouse_failure("opening the warehouse", &e))
    }

    /// Reads an object; `None` if missing.
    pub async fn get(&self, key: &ObjectKey) -> Result<Option<bytes::Bytes>, Failure> {
        self.storage
            .get(key)
            .await
            .map_err(|e| storage_failure(&format!("reading {key}"), &e))
    }

    /// Writes an object.
    pub async fn put(&self, key: &ObjectKey, data: bytes::Bytes) -> Result<(), Failure> {
        self.storage
            .put(key, data)
            .await
            .map_err(|e| storage_failure(&format!("writing {key}"), &e))
    }

    /// Lists keys under a prefix.
    pub async fn list(&self, prefix: &ObjectKey) -> Result<Vec<ObjectKey>, Failure> {
        self.storage
            .list(Some(prefix))
            .await
            .map_err(|e| storage_failure(&format!("listing {prefix}"), &e))
    }

    /// Adds a check; `missing` is cut to [`MAX_MISSING`] names (the count stays in
    /// `expected - observed`).
    pub fn check(
        &mut self,
        name: &str,
        passed: bool,
        observed: Option<i64>,
        expected: Option<i64>,
        mut missing: Vec<String>,
    ) {
        if missing.len() > MAX_MISSING {
            let more = missing.len() - MAX_MISSING + 1;
            missing.truncate(MAX_MISSING - 1);
            missing.push(format!("... and {more} more"));
        }
        self.result.checks.push(Check {
            name: name.to_owned(),
            passed,
            observed,
            expected,
            missing,
        });
    }

    /// Adds a warning (kept short).
    pub fn warn(&mut self, msg: impl Into<String>) {
        let mut m = crate::upstream::redact(&msg.into());
        if m.len() > 200 {
            let mut cut = 200;
            while !m.is_char_boundary(cut) {
                cut -= 1;
            }
            m.truncate(cut);
        }
        if self.config.log_warnings {
            eprintln!("tipoff-processor: warning: {m}");
        }
        if self.result.warnings.len() < 8 {
            self.result.warnings.push(m);
        }
    }
}

/// Runs one processor with the given configuration. Never panics; every failure ends up in
/// the outcome with its exit class.
pub async fn run(args: RunArgs, config: Config) -> Outcome {
    let started = Instant::now();
    let mut result = contract::result_for(&args);
    let storage = match config.storage_url.as_deref() {
        None => Err(Failure::Permanent(
            "TIPOFF_STORAGE_URL is not set (file:///dir or gs://bucket)".into(),
        )),
        Some(url) => ObjectStorage::from_url(url)
            .map_err(|e| Failure::Permanent(format!("opening object storage {url}: {e}"))),
    };
    let storage = match storage {
        Ok(s) => s,
        Err(f) => {
            result.duration_ms = elapsed_ms(started);
            return Outcome {
                result,
                failure: Some(f),
            };
        }
    };
    let mut ctx = Ctx {
        args: args.clone(),
        storage,
        config,
        result,
        upstream: None,
        processed_at: jiff::Timestamp::now(),
    };
    let outcome = match registry::find(&args.processor) {
        Some(def) => (def.run)(&mut ctx).await,
        None => Err(Failure::Permanent(format!(
            "unknown processor {:?}",
            args.processor
        ))),
    };
    if let Some(u) = &ctx.upstream {
        let s = &u.stats;
        let requests = s.requests.load(Ordering::Relaxed);
        let retries = s.retries.load(Ordering::Relaxed);
        let refreshes = s.key_refreshes.load(Ordering::Relaxed);
        let limited = s.rate_limited.load(Ordering::Relaxed);
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        ctx.check(
            "upstream-requests",
            true,
            Some(as_i64(requests)),
            None,
            vec![],
        );
        ctx.check(
            "upstream-retries",
            true,
            Some(as_i64(retries)),
            None,
            vec![],
        );
        if limited > 0 || refreshes > 0 {
            ctx.warn(format!(
                "upstream: {limited} rate-limited answers, {refreshes} API key refreshes"
            ));
        }
        ctx.check(
            "upstream-key-refreshes",
            true,
            Some(as_i64(refreshes)),
            None,
            vec![],
        );
    }
    let mut result = ctx.result;
    let disabled = &ctx.config.disabled_checks;
    result.checks.retain(|c| !disabled.contains(&c.name));
    result.duration_ms = elapsed_ms(started);
    fit_result(&mut result);
    Outcome {
        result,
        failure: outcome.err(),
    }
}

/// Keeps the result under the 4 KiB termination-message limit, so it is never cut off (the
/// kubelet keeps the last 4096 bytes) nor refused at the writer: drops warnings first, then
/// shortens `missing` lists down to none (the counts in observed/expected stay exact), then
/// drops checks from the end (a gate that needs one fails as "not reported"), then rows. What
/// remains is the identity, which always fits.
fn fit_result(result: &mut ProcessorResult) {
    let too_large = |r: &ProcessorResult| r.to_message().is_err();
    while too_large(result) && result.warnings.pop().is_some() {}
    let mut keep = MAX_MISSING;
    while too_large(result) && keep > 0 {
        keep /= 2;
        for c in &mut result.checks {
            c.missing.truncate(keep);
        }
    }
    while too_large(result) && result.checks.pop().is_some() {}
    if too_large(result) {
        result.rows.clear();
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tipoff_crds::Mode;

    #[test]
    fn oversized_results_are_trimmed_to_fit() {
        let args = RunArgs {
            processor: "raw-play-by-play".into(),
            date: jiff::civil::date(2026, 1, 10),
            mode: Mode::Production,
        };
        let mut r = contract::result_for(&args);
        for i in 0..20 {
            r.warnings.push("w".repeat(190));
            r.checks.push(Check {
                name: format!("check-{i}"),
                passed: false,
                observed: Some(1),
                expected: Some(30),
                missing: (0..MAX_MISSING)
                    .map(|g| format!("GAME{g:04}@HOME"))
                    .collect(),
            });
        }
        assert!(r.to_message().is_err());
        fit_result(&mut r);
        assert!(r.to_message().is_ok());
        assert_eq!(r.checks.len(), 20);
        assert!(r.checks.iter().all(|c| !c.missing.is_empty()));
    }

    #[test]
    fn any_result_fits_after_trimming() {
        let args = RunArgs {
            processor: "raw-play-by-play".into(),
            date: jiff::civil::date(2026, 1, 10),
            mode: Mode::Production,
        };
        let long = |i: usize| format!("{i}-{}", "n".repeat(120));
        // Too many checks and tables to fit even with every list cut down.
        let mut r = contract::result_for(&args);
        r.checks = (0..60)
            .map(|i| Check {
                name: long(i),
                passed: i % 2 == 0,
                observed: Some(1),
                expected: Some(2),
                missing: vec![long(i)],
            })
            .collect();
        r.rows = (0..10).map(|i| (long(i), 1)).collect();
        fit_result(&mut r);
        assert!(r.to_message().is_ok());
        assert!(!r.checks.is_empty(), "only as many checks as needed go");
        assert_eq!(r.rows.len(), 10);
        // Rows alone over the limit: they go too, and the identity still fits.
        let mut r = contract::result_for(&args);
        r.rows = (0..200).map(|i| (long(i), 1)).collect();
        fit_result(&mut r);
        assert!(r.to_message().is_ok());
        assert_eq!(r.processor, "raw-play-by-play");
    }
}
