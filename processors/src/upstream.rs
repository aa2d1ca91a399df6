//! The HTTP client every scraper uses to call the upstream APIs: timeouts, retries with jittered
//! exponential backoff on 5xx, 429 (honouring `Retry-After`) and network errors, and an API-key
//! refresh on 401 (the key is re-read from its file, which a Secret rotation updates).
//!
//! API keys never leave the process: errors are built without the request URL (The Odds API
//! takes its key as `?apiKey=`), and every message a processor prints or returns passes
//! through [`redact`], which blanks each key this process has read and any `apiKey=` value.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::contract::Failure;

/// How requests are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request for 5xx, 429 and network errors (the first included).
    pub max_attempts: u32,
    /// First backoff; attempt n waits a jittered `base * 2^(n-1)`, capped at `max_backoff`.
    pub base_backoff: Duration,
    /// Longest backoff between two attempts.
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; a longer one is capped to this.
    pub max_retry_after: Duration,
    /// Per-request timeout (connect and body).
    pub timeout: Duration,
    /// How many times a 401 re-reads the key file (waiting `base_backoff * n` when the key
    /// has not changed yet) before the run fails.
    pub key_refresh_attempts: u32,
    /// The largest response body read; a larger one fails the run as bad input (exit 65)
    /// instead of filling the Pod's memory.
    pub max_body_bytes: usize,
}

/// The default [`RetryPolicy::max_body_bytes`]: 64 MiB, far above any upstream payload (the
/// largest, a league schedule, is about 10 MiB).
pub const MAX_BODY_BYTES: usize = 64 << 20;

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            timeout: Duration::from_secs(30),
            key_refresh_attempts: 8,
            max_body_bytes: MAX_BODY_BYTES,
        }
    }
}

/// Where a request carries the API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No key.
    None,
    /// The raw key in the `Authorization` header (balldontlie).
    Header,
    /// `?apiKey=` (The Odds API).
    Query,
}

impl Auth {
    /// The upstream service whose key this request carries: its file name when the key file
    /// is a directory of one key per service (a mounted projected Secret volume).
    pub fn service(self) -> Option<&'static str> {
        match self {
            Auth::None => None,
            Auth::Header => Some("balldontlie"),
            Auth::Query => Some("odds"),
        }
    }
}

/// A response the caller must interpret: 200 with its body, or a 4xx other than 401 and 429
/// (for example 404 "not available yet").
#[derive(Debug, Clone)]
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// The body, verbatim.
    pub body: Bytes,
}

impl Fetched {
    /// Whether the status is 200.
    pub fn is_ok(&self) -> bool {
        self.status == 200
    }
}

/// Counters for the run's result.
#[derive(Debug, Default)]
pub struct UpstreamStats {
    /// Requests sent (every attempt).
    pub requests: AtomicU64,
    /// Attempts that were retries (after 5xx, 429 or a network error).
    pub retries: AtomicU64,
    /// 429 answers seen.
    pub rate_limited: AtomicU64,
    /// Times a new API key was picked up after a 401.
    pub key_refreshes: AtomicU64,
}

/// The upstream client.
#[derive(Debug)]
pub struct Upstream {
    http: reqwest::Client,
    base: String,
    key_file: Option<PathBuf>,
    /// The key in use per service.
    keys: Mutex<std::collections::BTreeMap<&'static str, String>>,
    policy: RetryPolicy,
    jitter: Mutex<u64>,
    /// Counters for the result.
    pub stats: UpstreamStats,
}

fn transient(msg: String) -> Failure {
    Failure::Transient(redact(&msg))
}

/// What [`redact`] puts in place of a secret.
pub const REDACTED: &str = "[REDACTED]";

/// The API keys this process has read; [`redact`] blanks each of them.
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn register_secret(secret: &str) {
    if let Ok(mut s) = SECRETS.lock()
        && !s.iter().any(|k| k == secret)
    {
        s.push(secret.to_owned());
    }
}

/// `text` with every API key this process has read, and the value of every `apiKey=` query
/// parameter (in any letter case), replaced by [`REDACTED`]. Apply it to anything that is
/// printed or written to a result.
pub fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    if let Ok(secrets) = SECRETS.lock() {
        for k in secrets.iter().filter(|k| !k.is_empty()) {
            out = out.replace(k.as_str(), REDACTED);
        }
    }
    // `apiKey=<value>` up to the end of the query parameter. ASCII lowercasing keeps byte
    // offsets, so positions found in `lower` are valid in `out`.
    const PARAM: &str = "apikey=";
    let mut from = 0;
    while let Some(pos) = out.to_ascii_lowercase()[from..].find(PARAM) {
        let start = from + pos + PARAM.len();
        let end = out[start..]
            .find(['&', '#', ')', '"', '\'', ' ', '\n', '\t'])
            .map_or(out.len(), |n| start + n);
        out.replace_range(start..end, REDACTED);
        from = start + REDACTED.len();
    }
    out
}

/// A reqwest error as text without its URL (which may carry the key), with its causes.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    redact(&text)
}

/// Why a body could not be read.
enum BodyError {
    /// The connection failed mid-body (worth a retry).
    Read(reqwest::Error),
    /// The body is larger than the limit.
    TooLarge,
}

/// Reads a response body, refusing one over `limit` bytes (by its `Content-Length`, or as it
/// arrives) without reading the rest.
async fn read_body(mut resp: reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
    if resp
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit))
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// How long a `Retry-After` value asks to wait: delay-seconds, or an HTTP date (any of the
/// three RFC 9110 formats) judged against `now`; a date in the past means no wait.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

impl Upstream {
    /// A client for `base` (e.g. `http://127.0.0.1:8790`); the API keys are read from
    /// `key_file`: one key for every service, or, when it is a directory, the file named after
    /// each service (`balldontlie`, `odds`), as the operator mounts them from their Secrets.
    pub fn new(
        base: &str,
        key_file: Option<PathBuf>,
        policy: RetryPolicy,
    ) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .build()
            .map_err(|e| Failure::Permanent(format!("building the HTTP client: {e}")))?;
        let seed = jiff::Timestamp::now().as_nanosecond() as u64 | 1;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key_file,
            keys: Mutex::new(std::collections::BTreeMap::new()),
            policy,
            jitter: Mutex::new(seed),
            stats: UpstreamStats::default(),
        })
    }

    fn read_key_file(&self, service: &str) -> Result<String, Failure> {
        let Some(path) = &self.key_file else {
            return Err(Failure::Permanent(
                "this endpoint needs an API key: set TIPOFF_UPSTREAM_API_KEY_FILE".into(),
            ));
        };
        let file;
        let path = if path.is_dir() {
            file = path.join(service);
            &file
        } else {
            path
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Permanent(format!("reading the API key file {}: {e}", path.display()))
        })?;
        let key = text.trim().to_owned();
        register_secret(&key);
        if key.is_empty() {
            return Err(Failure::Permanent(format!(
                "the API key file {} is empty",
                path.display()
            )));
        }
        Ok(key)
    }

    fn current_key(&self, service: &'static str) -> Result<String, Failure> {
        let mut guard = self
            .keys
            .lock()
            .map_err(|_| Failure::Permanent("key lock poisoned".into()))?;
        if let Some(k) = guard.get(service) {
            return Ok(k.clone());
        }
        let k = self.read_key_file(service)?;
        guard.insert(service, k.clone());
        Ok(k)
    }

    /// Re-reads the service's key file until it holds a key other than `stale`.
    async fn refresh_key(&self, service: &'static str, stale: &str) -> Result<(), Failure> {
        for n in 0..self.policy.key_refresh_attempts {
            let k = self.read_key_file(service)?;
            if k != stale {
                if let Ok(mut g) = self.keys.lock() {
                    g.insert(service, k);
                }
                self.stats.key_refreshes.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            tokio::time::sleep(self.policy.base_backoff * (n + 1)).await;
        }
        Err(transient(format!(
            "upstream rejected the API key (401) and the key file still holds the same key after {} re-reads; rotate the key",
            self.policy.key_refresh_attempts
        )))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .policy
            .base_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.policy.max_backoff);
        // Jitter: a uniform draw in [cap/2, cap] (xorshift; no need for a crypto RNG).
        let r = match self.jitter.lock() {
            Ok(mut s) => {
                let mut x = *s;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *s = x;
                x
            }
            Err(_) => 0,
        };
        let frac = (r % 1000) as f64 / 1000.0;
        cap.mul_f64(0.5 + 0.5 * frac)
    }

    /// GETs `path` (with its query string) from the upstream, retrying as the policy says.
    /// Returns 200 and non-retryable 4xx answers; 5xx/429/network errors that outlast the
    /// retries are transient failures, and a 401 that no key refresh fixes is one too.
    pub async fn get(&self, path: &str, auth: Auth) -> Result<Fetched, Failure> {
        let mut attempt = 0u32;
        let mut refreshes = 0u32;
        loop {
            attempt += 1;
            let key = match auth.service() {
                None => None,
                Some(service) => Some(self.current_key(service)?),
            };
            let mut url = format!("{}{path}", self.base);
            let mut req = match (auth, &key) {
                (Auth::Query, Some(k)) => {
                    url.push(if path.contains('?') { '&' } else { '?' });
                    url.push_str("apiKey=");
                    url.push_str(k);
                    self.http.get(&url)
                }
                _ => self.http.get(&url),
            };
            if let (Auth::Header, Some(k)) = (auth, &key) {
                req = req.header("Authorization", k.as_str());
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = req.send().await;
            let wait = match outcome {
                Err(e) => {
                    let e = describe(e);
                    tracing_like(&format!("GET {path}: {e}"));
                    if attempt >= self.policy.max_attempts {
                        return Err(transient(format!(
                            "GET {path}: {e} (after {attempt} attempts)"
                        )));
                    }
                    self.backoff(attempt)
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry_after(v, SystemTime::now()));
                    match status {
                        401 => {
                            let stale = key.unwrap_or_default();
                            refreshes += 1;
                            if refreshes > self.policy.key_refresh_attempts {
                                return Err(transient(format!(
                                    "GET {path}: 401 after {refreshes} key refreshes"
                                )));
                            }
                            let service = auth.service().unwrap_or_default();
                            self.refresh_key(service, &stale).await?;
                            // A refreshed key is not a failed attempt.
                            attempt -= 1;
                            continue;
                        }
                        429 | 500..=599 => {
                            if status == 429 {
                                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                            }
                            if attempt >= self.policy.max_attempts {
                                return Err(transient(format!(
                                    "GET {path}: HTTP {status} after {attempt} attempts"
                                )));
                            }
                            match retry_after {
                                Some(d) => d.min(self.policy.max_retry_after) + self.backoff(1) / 4,
                                None => self.backoff(attempt),
                            }
                        }
                        _ => {
                            let limit = self.policy.max_body_bytes;
                            let body = match read_body(resp, limit).await {
                                Ok(b) => b,
                                Err(BodyError::TooLarge) => {
                                    return Err(Failure::Permanent(redact(&format!(
                                        "GET {path}: HTTP {status} with a body over the {limit}-byte limit"
                                    ))));
                                }
                                Err(BodyError::Read(e)) => {
                                    if attempt >= self.policy.max_attempts {
                                        return Err(transient(format!(
                                            "GET {path}: reading the body: {}",
                                            describe(e)
                                        )));
                                    }
                                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                                    tokio::time::sleep(self.backoff(attempt)).await;
                                    continue;
                                }
                            };
                            return Ok(Fetched { status, body });
                        }
                    }
                }
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }
}

fn tracing_like(msg: &str) {
    eprintln!("tipoff-processor: upstream: {}", redact(msg));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn redact_blanks_read_keys_and_api_key_parameters() {
        register_secret("k-123-secret");
        assert_eq!(
            redact("error for url (http://h/odds?apiKey=whatever&markets=x) k-123-secret"),
            "error for url (http://h/odds?apiKey=[REDACTED]&markets=x) [REDACTED]"
        );
        assert_eq!(redact("a?APIKEY=zz"), "a?APIKEY=[REDACTED]");
        assert_eq!(redact("apiKey="), "apiKey=[REDACTED]");
        assert_eq!(redact("nothing here"), "nothing here");
    }

    #[test]
    fn retry_after_reads_seconds_and_all_http_date_formats() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:00 GMT").unwrap();
        let secs = |v: &str| retry_after(v, now).map(|d| d.as_secs());
        assert_eq!(secs(" 7 "), Some(7));
        assert_eq!(secs("Sun, 06 Nov 1994 08:49:37 GMT"), Some(37));
        assert_eq!(secs("Sunday, 06-Nov-94 08:49:37 GMT"), Some(37));
        assert_eq!(secs("Sun Nov  6 08:49:37 1994"), Some(37));
        assert_eq!(secs("Sun, 06 Nov 1994 08:48:00 GMT"), Some(0));
        assert_eq!(secs("soon"), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let u = Upstream::new("http://x", None, policy).unwrap();
        for attempt in 1..10 {
            let full =
                Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_millis(1000));
            let b = u.backoff(attempt);
            assert!(b >= full / 2 && b <= full, "attempt {attempt}: {b:?}");
        }
    }
}
