//! Hand-off of stored callback requests to Puzzel's "Callback on Web" API.
//!
//! Puzzel documents Callback on Web as an HTML-form POST, answered with a
//! redirect to one of three URLs the request itself names
//! (`docs/puzzel-callback-api.md` has the fields and our mapping):
//!
//! ```text
//! POST {base_url}/contactcentre5/cow.aspx
//! Content-Type: application/x-www-form-urlencoded
//! customerKey=...&accessPoint=...&countryCode=45&queueKey=...&ciqType=CallAgentFirst
//! &maxAttempts=2&secondsBetweenAttempts=300&callbackNumber=004512345678
//! &scheduledDateTime=2026-11-23T09:00:00&requestDescription=...&requestCategory=...
//! &redirectOK=...&redirectError=...&redirectFull=...
//! -> 302 Location: {redirectOK}      accepted
//! -> 302 Location: {redirectFull}    the queue is full: transient, tried again later
//! -> 302 Location: {redirectError}   rejected (bad number, number not allowed by the
//!                                     `_WebCallback` list, ...): failed, visible
//! -> 408/429/5xx, timeout, refused   transient: retried with backoff
//! -> other 4xx, 401/403              rejected
//! ```
//!
//! Puzzel has no idempotency key. The [`HandoffWorker`] therefore commits
//! that a send starts (`sent_at`) before the request leaves, and clears it
//! with the outcome. A worker that dies mid-send leaves `sent_at` behind; the
//! row's lease expires and the next pass sends it again, counting it in
//! `uncertain_sends`: a callback is never lost, and the only duplicate that
//! can happen is one the operator can see (a crash or lost database between
//! Puzzel's answer and our commit).
//!
//! The [`PuzzelClient`] retries transient failures within one attempt
//! (exponential backoff on tokio time); the worker moves stored requests
//! `requested -> handed_off`, or back to `requested` with a later due time,
//! or `failed` after `max_attempts` (visible with its last error).

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

/// HTTP authentication in front of the API. Puzzel's Callback on Web is a
/// public form and needs none; a site that puts it behind a proxy with
/// credentials sets them here.
#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum PuzzelAuth {
    /// No Authorization header.
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

/// Who Puzzel calls first when an agent takes the request (`ciqType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum CiqType {
    /// The agent is connected first, then the caller is dialled (Puzzel's
    /// default).
    #[default]
    CallAgentFirst,
    /// The caller is dialled first.
    CallRequestFirst,
}

impl CiqType {
    fn as_str(self) -> &'static str {
        match self {
            CiqType::CallAgentFirst => "CallAgentFirst",
            CiqType::CallRequestFirst => "CallRequestFirst",
        }
    }
}

/// Configuration of the Puzzel callback client (`[integrations.puzzel]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PuzzelConfig {
    /// Base URL of Puzzel's contact centre web (the stand-in:
    /// `http://127.0.0.1:PORT`); the form is posted to
    /// `{base_url}/contactcentre5/cow.aspx`.
    pub base_url: String,
    /// Puzzel customer key (`customerKey`).
    pub customer_key: String,
    /// The access point number callbacks belong to (`accessPoint`).
    pub access_point: String,
    /// Country calling code of national numbers (`countryCode`, and the
    /// prefix of 8-digit callback numbers): "45".
    pub country_code: String,
    /// The Puzzel queue callbacks are placed in (`queueKey`).
    pub queue_key: String,
    /// Who is called first (`ciqType`).
    pub ciq_type: CiqType,
    /// Times Puzzel tries to reach the caller (`maxAttempts`, 1-3).
    pub call_attempts: u32,
    /// Seconds between those tries (`secondsBetweenAttempts`).
    pub seconds_between_attempts: u32,
    /// Time zone of `scheduledDateTime` (Puzzel takes local time, no zone).
    pub time_zone: String,
    /// The three outcome URLs sent with each request; Puzzel answers with a
    /// redirect to one of them (never followed, only compared).
    pub redirect_ok: String,
    /// See `redirect_ok`.
    pub redirect_error: String,
    /// See `redirect_ok`.
    pub redirect_full: String,
    /// Credentials of a proxy in front of the API, if any.
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
            customer_key: "10000".into(),
            access_point: "4570000000".into(),
            country_code: "45".into(),
            queue_key: "q_callback".into(),
            ciq_type: CiqType::CallAgentFirst,
            call_attempts: 2,
            seconds_between_attempts: 300,
            time_zone: "Europe/Copenhagen".into(),
            redirect_ok: "https://ivr.invalid/puzzel/ok".into(),
            redirect_error: "https://ivr.invalid/puzzel/error".into(),
            redirect_full: "https://ivr.invalid/puzzel/full".into(),
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

/// How far ahead Puzzel holds a request (it is valid for 72 hours): a
/// request whose window starts later waits in our queue until then.
pub const PUZZEL_HORIZON: chrono::Duration = chrono::Duration::hours(71);

/// Errors of the Puzzel callback client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PuzzelError {
    /// The configuration cannot work (bad base URL, time zone, ...).
    #[error("invalid Puzzel configuration: {0}")]
    InvalidConfig(&'static str),
    /// The request cannot be sent as it is (a callback number Puzzel cannot
    /// dial): repeating will not help.
    #[error("callback request cannot be sent to Puzzel: {0}")]
    Invalid(&'static str),
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
    /// Puzzel redirected to `redirectFull`: the queue takes no more
    /// callbacks now; try again later.
    #[error("Puzzel callback queue is full")]
    QueueFull,
    /// Puzzel redirected to `redirectError`.
    #[error("Puzzel refused the callback request (redirectError)")]
    Refused,
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
    /// The API answered with something that is none of the three outcomes.
    #[error("unexpected Puzzel API response: {0}")]
    BadResponse(&'static str),
}

impl PuzzelError {
    /// How the flow (and the worker) should treat this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            PuzzelError::Timeout
            | PuzzelError::Connect(_)
            | PuzzelError::Server { .. }
            | PuzzelError::QueueFull => Outcome::Unavailable,
            PuzzelError::Unauthorized { .. }
            | PuzzelError::Rejected { .. }
            | PuzzelError::Refused
            | PuzzelError::Invalid(_) => Outcome::Rejected,
            PuzzelError::InvalidConfig(_) | PuzzelError::BadResponse(_) => Outcome::Internal,
        }
    }
}

/// Puzzel's acceptance of a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PuzzelReceipt {
    /// Our reference for the request at Puzzel (Puzzel returns no id: the
    /// reference also travels in `requestDescription`, so agents see it).
    pub id: String,
}

/// `+4512345678`, `004512345678` or a national `12345678` as Puzzel wants
/// it: international with a `00` prefix.
pub fn puzzel_number(number: &str, country_code: &str) -> Result<String, PuzzelError> {
    let digits: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let (intl, rest) = if let Some(r) = digits.strip_prefix('+') {
        (true, r)
    } else if let Some(r) = digits.strip_prefix("00") {
        (true, r)
    } else {
        (false, digits.as_str())
    };
    if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_digit()) {
        return Err(PuzzelError::Invalid(
            "callback number is not a phone number",
        ));
    }
    if intl {
        Ok(format!("00{rest}"))
    } else {
        Ok(format!("00{country_code}{rest}"))
    }
}

fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Client of Callback on Web.
#[derive(Debug, Clone)]
pub struct PuzzelClient {
    http: reqwest::Client,
    cfg: Arc<PuzzelConfig>,
    url: reqwest::Url,
    tz: chrono_tz::Tz,
}

impl PuzzelClient {
    /// A client for `cfg`.
    pub fn new(cfg: PuzzelConfig) -> Result<Self, PuzzelError> {
        let base = reqwest::Url::parse(cfg.base_url.trim_end_matches('/'))
            .map_err(|_| PuzzelError::InvalidConfig("base_url is not a URL"))?;
        let url = reqwest::Url::parse(&format!(
            "{}/contactcentre5/cow.aspx",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|_| PuzzelError::InvalidConfig("base_url is not a URL"))?;
        let tz: chrono_tz::Tz = cfg
            .time_zone
            .parse()
            .map_err(|_| PuzzelError::InvalidConfig("time_zone is not an IANA time zone"))?;
        if !(1..=3).contains(&cfg.call_attempts) {
            return Err(PuzzelError::InvalidConfig(
                "call_attempts must be 1, 2 or 3",
            ));
        }
        for u in [&cfg.redirect_ok, &cfg.redirect_error, &cfg.redirect_full] {
            reqwest::Url::parse(u)
                .map_err(|_| PuzzelError::InvalidConfig("a redirect URL is not a URL"))?;
        }
        if cfg.redirect_ok == cfg.redirect_error
            || cfg.redirect_ok == cfg.redirect_full
            || cfg.redirect_error == cfg.redirect_full
        {
            return Err(PuzzelError::InvalidConfig(
                "redirect_ok, redirect_error and redirect_full must differ",
            ));
        }
        // The outcome is the redirect itself: never follow it.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.request_timeout_ms.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| PuzzelError::InvalidConfig("cannot build the HTTP client"))?;
        Ok(Self {
            http,
            cfg: Arc::new(cfg),
            url,
            tz,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &PuzzelConfig {
        &self.cfg
    }

    /// Places one stored callback request in the configured queue at `now`,
    /// retrying transient failures up to `tries_per_attempt` times with
    /// backoff.
    pub async fn submit(
        &self,
        rec: &CallbackRecord,
        now: DateTime<Utc>,
    ) -> Result<PuzzelReceipt, PuzzelError> {
        let tries = self.cfg.tries_per_attempt.max(1);
        let mut n = 1;
        loop {
            match self.submit_once(rec, now).await {
                Err(e) if e.outcome().is_transient() && n < tries => {
                    tracing::warn!(call = %rec.request.call_ref, try_no = n, error = %e, "Puzzel callback API: retrying");
                    tokio::time::sleep(self.cfg.retry_backoff.delay(n)).await;
                    n += 1;
                }
                other => return other,
            }
        }
    }

    /// The form fields of one request (the phone number inside: never log it).
    fn form(
        &self,
        rec: &CallbackRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, Pii<String>)>, PuzzelError> {
        let r = &rec.request;
        let c = &*self.cfg;
        let reference = format!("{}:{}", r.call_ref.as_str(), r.kind.as_str());
        let number = puzzel_number(r.phone.expose(), &c.country_code)?;
        // A window that already started (Puzzel was down, the queue was full)
        // is scheduled for now: late is better than never.
        let at = r.window.start.max(now).with_timezone(&self.tz);
        let field = |v: String| Pii::new(v);
        Ok(vec![
            ("customerKey", field(c.customer_key.clone())),
            ("accessPoint", field(c.access_point.clone())),
            ("countryCode", field(c.country_code.clone())),
            ("queueKey", field(c.queue_key.clone())),
            ("ciqType", field(c.ciq_type.as_str().into())),
            ("maxAttempts", field(c.call_attempts.to_string())),
            (
                "secondsBetweenAttempts",
                field(c.seconds_between_attempts.to_string()),
            ),
            ("callbackNumber", Pii::new(number)),
            (
                "scheduledDateTime",
                field(at.format("%Y-%m-%dT%H:%M:%S").to_string()),
            ),
            (
                "requestDescription",
                field(format!(
                    "{} ({}, {}) ref {reference}",
                    r.topic,
                    r.municipality,
                    r.lang.code()
                )),
            ),
            ("requestCategory", field(r.topic.clone())),
            ("redirectOK", field(c.redirect_ok.clone())),
            ("redirectError", field(c.redirect_error.clone())),
            ("redirectFull", field(c.redirect_full.clone())),
        ])
    }

    async fn submit_once(
        &self,
        rec: &CallbackRecord,
        now: DateTime<Utc>,
    ) -> Result<PuzzelReceipt, PuzzelError> {
        let form = self.form(rec, now)?;
        let pairs: Vec<(&str, &str)> = form
            .iter()
            .map(|(k, v)| (*k, v.expose().as_str()))
            .collect();
        let mut req = self.http.post(self.url.clone()).form(&pairs);
        req = match &self.cfg.auth {
            PuzzelAuth::None => req,
            PuzzelAuth::Basic { username, password } => req.basic_auth(username, Some(password)),
            PuzzelAuth::Bearer { token } => req.bearer_auth(token),
        };
        let resp = req.send().await.map_err(map_send_error)?;
        let status = resp.status().as_u16();
        match status {
            301 | 302 | 303 | 307 | 308 => {
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(PuzzelError::BadResponse("redirect without a Location"))?;
                let c = &*self.cfg;
                let to = without_query(location);
                if to == without_query(&c.redirect_ok) {
                    Ok(PuzzelReceipt {
                        id: format!(
                            "cow:{}:{}",
                            rec.request.call_ref.as_str(),
                            rec.request.kind.as_str()
                        ),
                    })
                } else if to == without_query(&c.redirect_full) {
                    Err(PuzzelError::QueueFull)
                } else if to == without_query(&c.redirect_error) {
                    Err(PuzzelError::Refused)
                } else {
                    Err(PuzzelError::BadResponse(
                        "redirect to none of the three outcome URLs",
                    ))
                }
            }
            401 | 403 => Err(PuzzelError::Unauthorized { status }),
            408 | 429 | 500..=599 => Err(PuzzelError::Server { status }),
            200..=299 => Err(PuzzelError::BadResponse(
                "a page instead of a redirect to an outcome URL",
            )),
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
    /// Requests whose window starts beyond Puzzel's 72-hour horizon, put back
    /// until then.
    pub deferred: u32,
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
            // Puzzel holds a request for 72 hours: one for a later window
            // waits here, without counting an attempt.
            if rec.request.window.start > now + PUZZEL_HORIZON {
                self.store
                    .defer(call_ref, kind, rec.request.window.start - PUZZEL_HORIZON)
                    .await?;
                report.deferred += 1;
                continue;
            }
            if rec.sent_at.is_some() {
                tracing::warn!(call = %call_ref, "callback: an earlier send's outcome is unknown; sending again (Puzzel may hold it twice)");
            }
            self.store.mark_sending(call_ref, kind, now).await?;
            match self.client.submit(&rec, now).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_numbers_are_sent_international_with_a_00_prefix() {
        assert_eq!(
            puzzel_number("+45 12 34 56 78", "45").unwrap(),
            "004512345678"
        );
        assert_eq!(puzzel_number("004612345678", "45").unwrap(), "004612345678");
        assert_eq!(puzzel_number("12345678", "45").unwrap(), "004512345678");
        assert!(matches!(
            puzzel_number("+45 12x", "45"),
            Err(PuzzelError::Invalid(_))
        ));
        assert!(puzzel_number("", "45").is_err());
    }

    #[test]
    fn a_configuration_puzzel_cannot_answer_is_refused() {
        let same = PuzzelConfig {
            redirect_full: PuzzelConfig::default().redirect_ok,
            ..PuzzelConfig::default()
        };
        assert!(
            PuzzelClient::new(same).is_err(),
            "outcomes must be told apart"
        );
        let attempts = PuzzelConfig {
            call_attempts: 4,
            ..PuzzelConfig::default()
        };
        assert!(PuzzelClient::new(attempts).is_err());
        let tz = PuzzelConfig {
            time_zone: "Mars/Olympus".into(),
            ..PuzzelConfig::default()
        };
        assert!(PuzzelClient::new(tz).is_err());
        assert!(PuzzelClient::new(PuzzelConfig::default()).is_ok());
    }
}
