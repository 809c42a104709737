//! Hand-off of stored callback requests to Puzzel's callback web API.
//!
//! Puzzel's callback API is reached through configuration; the request shape
//! below is our assumption of a typical contact-centre callback endpoint
//! (documented in `docs/puzzel-callback-api.md`) and is the only place to
//! change when the real contract is confirmed:
//!
//! ```text
//! POST {base_url}/v1/callbacks
//! Authorization: Basic ... | Bearer ...
//! Idempotency-Key: {call_ref}:{kind}
//! Content-Type: application/json
//! {"queueId": "...", "phoneNumber": "+4512345678", "language": "da",
//!  "topic": "boligstoette", "municipality": "aarhus",
//!  "preferredFrom": "2026-11-23T08:00:00Z", "preferredTo": "2026-11-23T12:00:00Z",
//!  "externalReference": "c00000000000000aa:callback"}
//! -> 201/200 {"id": "..."}      accepted
//! -> 409     {"id": "..."}      already accepted (same Idempotency-Key)
//! -> 408/429/5xx, timeout       transient: retried with backoff
//! -> other 4xx                  rejected: the request is marked failed
//! ```
//!
//! The [`PuzzelClient`] retries transient failures within one attempt
//! (exponential backoff on tokio time); the [`HandoffWorker`] moves stored
//! requests `requested -> handed_off`, or back to `requested` with a later
//! due time, or `failed` after `max_attempts` (visible with its last error).
//! Nothing is lost across restarts: state lives only in the database, and a
//! crash between Puzzel's acceptance and our commit re-sends the same
//! Idempotency-Key, which the API is expected to answer with 409.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use ivr_core::{Pii, WallClock};
use serde::Deserialize;

use crate::{
    backoff::Backoff,
    callback::{CallbackRecord, CallbackStore},
    db::StoreError,
    outcome::Outcome,
};

/// How the client authenticates.
#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum PuzzelAuth {
    /// No Authorization header (stand-in, test setups).
    #[default]
    None,
    /// HTTP Basic.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// A bearer token.
    Bearer {
        /// The token.
        token: String,
    },
}

impl std::fmt::Debug for PuzzelAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials never reach a log line.
        match self {
            PuzzelAuth::None => f.write_str("None"),
            PuzzelAuth::Basic { username, .. } => write!(f, "Basic({username}, <secret>)"),
            PuzzelAuth::Bearer { .. } => f.write_str("Bearer(<secret>)"),
        }
    }
}

/// Configuration of the Puzzel callback API client (`[integrations.puzzel]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PuzzelConfig {
    /// Base URL of the API (the stand-in: `http://127.0.0.1:PORT`).
    pub base_url: String,
    /// The Puzzel queue callbacks are placed in.
    pub queue_id: String,
    /// Credentials.
    pub auth: PuzzelAuth,
    /// Timeout of one HTTP request, in milliseconds.
    pub request_timeout_ms: u64,
    /// HTTP tries within one hand-off attempt (transient failures only).
    pub tries_per_attempt: u32,
    /// Backoff between those tries.
    pub retry_backoff: Backoff,
    /// Hand-off attempts (worker passes) before a request is marked failed.
    pub max_attempts: u32,
    /// Backoff between hand-off attempts.
    pub attempt_backoff: Backoff,
}

impl Default for PuzzelConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8081".into(),
            queue_id: "callback".into(),
            auth: PuzzelAuth::None,
            request_timeout_ms: 5_000,
            tries_per_attempt: 3,
            retry_backoff: Backoff {
                base_ms: 200,
                max_ms: 2_000,
            },
            max_attempts: 8,
            attempt_backoff: Backoff {
                base_ms: 30_000,
                max_ms: 1_800_000,
            },
        }
    }
}

/// Errors of the Puzzel callback API client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PuzzelError {
    /// The configuration cannot work (bad base URL, ...).
    #[error("invalid Puzzel configuration: {0}")]
    InvalidConfig(&'static str),
    /// The API did not answer within the request timeout.
    #[error("Puzzel API timed out")]
    Timeout,
    /// The API could not be reached (connection refused, reset, DNS).
    #[error("Puzzel API unreachable: {0}")]
    Connect(#[source] reqwest::Error),
    /// The API answered 408, 429 or 5xx: try again later.
    #[error("Puzzel API temporarily failed with HTTP {status}")]
    Server {
        /// HTTP status.
        status: u16,
    },
    /// The API refused our credentials (401/403).
    #[error("Puzzel API refused the credentials (HTTP {status})")]
    Unauthorized {
        /// HTTP status.
        status: u16,
    },
    /// The API rejected the request (another 4xx): repeating will not help.
    #[error("Puzzel API rejected the request with HTTP {status}")]
    Rejected {
        /// HTTP status.
        status: u16,
    },
    /// The API answered success with a body we do not understand.
    #[error("unexpected Puzzel API response: {0}")]
    BadResponse(&'static str),
}

impl PuzzelError {
    /// How the flow (and the worker) should treat this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            PuzzelError::Timeout | PuzzelError::Connect(_) | PuzzelError::Server { .. } => {
                Outcome::Unavailable
            }
            PuzzelError::Unauthorized { .. } | PuzzelError::Rejected { .. } => Outcome::Rejected,
            PuzzelError::InvalidConfig(_) | PuzzelError::BadResponse(_) => Outcome::Internal,
        }
    }
}

/// Puzzel's acceptance of a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PuzzelReceipt {
    /// Puzzel's id for the callback request.
    pub id: String,
    /// Whether Puzzel already had this request (HTTP 409).
    pub duplicate: bool,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CallbackBody<'a> {
    queue_id: &'a str,
    phone_number: &'a str,
    language: &'a str,
    topic: &'a str,
    municipality: &'a str,
    preferred_from: String,
    preferred_to: String,
    external_reference: String,
}

#[derive(Deserialize)]
struct CallbackResponse {
    id: String,
}

/// Client of the callback web API.
#[derive(Debug, Clone)]
pub struct PuzzelClient {
    http: reqwest::Client,
    cfg: Arc<PuzzelConfig>,
    url: reqwest::Url,
}

impl PuzzelClient {
    /// A client for `cfg`.
    pub fn new(cfg: PuzzelConfig) -> Result<Self, PuzzelError> {
        let base = reqwest::Url::parse(cfg.base_url.trim_end_matches('/'))
            .map_err(|_| PuzzelError::InvalidConfig("base_url is not a URL"))?;
        let url = reqwest::Url::parse(&format!(
            "{}/v1/callbacks",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|_| PuzzelError::InvalidConfig("base_url is not a URL"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.request_timeout_ms.max(1)))
            .build()
            .map_err(|_| PuzzelError::InvalidConfig("cannot build the HTTP client"))?;
        Ok(Self {
            http,
            cfg: Arc::new(cfg),
            url,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &PuzzelConfig {
        &self.cfg
    }

    /// Places one stored callback request in the configured queue, retrying
    /// transient failures up to `tries_per_attempt` times with backoff.
    pub async fn submit(&self, rec: &CallbackRecord) -> Result<PuzzelReceipt, PuzzelError> {
        let tries = self.cfg.tries_per_attempt.max(1);
        let mut n = 1;
        loop {
            match self.submit_once(rec).await {
                Err(e) if e.outcome().is_transient() && n < tries => {
                    tracing::warn!(call = %rec.request.call_ref, try_no = n, error = %e, "Puzzel callback API: retrying");
                    tokio::time::sleep(self.cfg.retry_backoff.delay(n)).await;
                    n += 1;
                }
                other => return other,
            }
        }
    }

    async fn submit_once(&self, rec: &CallbackRecord) -> Result<PuzzelReceipt, PuzzelError> {
        let r = &rec.request;
        let key = format!("{}:{}", r.call_ref.as_str(), r.kind.as_str());
        let phone: &Pii<String> = &r.phone;
        let body = CallbackBody {
            queue_id: &self.cfg.queue_id,
            phone_number: phone.expose(),
            language: r.lang.code(),
            topic: &r.topic,
            municipality: &r.municipality,
            preferred_from: r
                .window
                .start
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            preferred_to: r
                .window
                .end
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            external_reference: key.clone(),
        };
        let mut req = self
            .http
            .post(self.url.clone())
            .header("Idempotency-Key", &key)
            .json(&body);
        req = match &self.cfg.auth {
            PuzzelAuth::None => req,
            PuzzelAuth::Basic { username, password } => req.basic_auth(username, Some(password)),
            PuzzelAuth::Bearer { token } => req.bearer_auth(token),
        };
        let resp = req.send().await.map_err(map_send_error)?;
        let status = resp.status().as_u16();
        match status {
            200 | 201 | 202 | 409 => {
                let parsed: CallbackResponse = resp
                    .json()
                    .await
                    .map_err(|_| PuzzelError::BadResponse("body has no `id`"))?;
                Ok(PuzzelReceipt {
                    id: parsed.id,
                    duplicate: status == 409,
                })
            }
            401 | 403 => Err(PuzzelError::Unauthorized { status }),
            408 | 429 | 500..=599 => Err(PuzzelError::Server { status }),
            _ => Err(PuzzelError::Rejected { status }),
        }
    }
}

fn map_send_error(e: reqwest::Error) -> PuzzelError {
    if e.is_timeout() {
        PuzzelError::Timeout
    } else {
        PuzzelError::Connect(e.without_url())
    }
}

/// What one [`HandoffWorker::run_once`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandoffReport {
    /// Requests accepted by Puzzel.
    pub handed_off: u32,
    /// Requests that failed transiently and will be retried.
    pub retrying: u32,
    /// Requests given up (now `failed`).
    pub failed: u32,
}

/// Moves due callback requests to Puzzel.
#[derive(Debug, Clone)]
pub struct HandoffWorker {
    store: CallbackStore,
    client: PuzzelClient,
    /// How long a claimed request is reserved for this worker.
    lease: Duration,
    /// Requests per pass.
    batch: u32,
}

impl HandoffWorker {
    /// A worker over `store` handing off through `client`.
    pub fn new(store: CallbackStore, client: PuzzelClient) -> Self {
        let c = client.config();
        // The lease must outlast every try of one attempt and its backoff.
        let per_try = c.request_timeout_ms.saturating_add(c.retry_backoff.max_ms);
        let lease = Duration::from_millis(
            per_try.saturating_mul(u64::from(c.tries_per_attempt.max(1))) + 10_000,
        );
        Self {
            store,
            client,
            lease,
            batch: 50,
        }
    }

    /// One pass at `now`: claims due requests and hands each off.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<HandoffReport, StoreError> {
        let mut report = HandoffReport::default();
        let cfg = self.client.config();
        for rec in self.store.claim_due(now, self.lease, self.batch).await? {
            let (call_ref, kind) = (&rec.request.call_ref, &rec.request.kind);
            match self.client.submit(&rec).await {
                Ok(receipt) => {
                    self.store
                        .mark_handed_off(call_ref, kind, &receipt.id, now)
                        .await?;
                    tracing::info!(call = %call_ref, puzzel_id = %receipt.id, "callback handed off");
                    report.handed_off += 1;
                }
                Err(e) => {
                    let attempt = rec.attempts.saturating_add(1);
                    let retry_at = (e.outcome().is_transient()
                        && attempt < cfg.max_attempts.max(1))
                    .then(|| {
                        now + chrono::Duration::from_std(cfg.attempt_backoff.delay(attempt))
                            .unwrap_or(chrono::Duration::MAX)
                    });
                    self.store
                        .record_failure(call_ref, kind, &e.to_string(), now, retry_at)
                        .await?;
                    if retry_at.is_some() {
                        tracing::warn!(call = %call_ref, attempt, error = %e, "callback hand-off failed; will retry");
                        report.retrying += 1;
                    } else {
                        tracing::error!(call = %call_ref, attempt, error = %e, "callback hand-off given up");
                        report.failed += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    /// Runs passes every `every` until `shutdown` turns true. Errors of a
    /// pass (database down) are logged and the next pass tries again.
    pub async fn run(
        self,
        clock: Arc<dyn WallClock>,
        every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.run_once(clock.now_utc()).await {
                        tracing::warn!(error = %e, "callback hand-off pass failed");
                    }
                }
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
}
