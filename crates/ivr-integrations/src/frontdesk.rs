//! Booking through Frontdesk (use case 4: tidsbestilling).
//!
//! [`Frontdesk`] is the interface the engine calls: list queues, free slots
//! of a queue in a date range, book, cancel by reference or by caller.
//! [`FrontdeskClient`] implements it over REST against a configured base URL
//! (the shape is ours, since Frontdesk's API is not public: see
//! `docs/frontdesk-api.md`; the real endpoint or an adapter in front of it is
//! plugged in by configuration). The stand-in server
//! ([`crate::standin::frontdesk`]) speaks the same shape.
//!
//! Every failure maps to an [`Outcome`]: a slot taken between listing and
//! booking is [`Outcome::SlotTaken`] (HTTP 409), a timeout or an unreachable
//! server is [`Outcome::Unavailable`], other 4xx are [`Outcome::Rejected`].

use std::{future::Future, pin::Pin, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use ivr_core::{CallId, Pii};
use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;

/// A boxed future, so [`Frontdesk`] can be used as `dyn Frontdesk`.
pub type FrontdeskFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, FrontdeskError>> + Send + 'a>>;

/// A queue (appointment type) of a municipality's citizen service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueInfo {
    /// Stable id (`mitid`, `koerekort`, `pas`, ...).
    pub id: String,
    /// Danish name, as spoken (`MitID`, `kørekort`).
    pub name_da: String,
    /// English name.
    pub name_en: String,
    /// Length of one appointment, in minutes.
    pub slot_minutes: u32,
}

/// A free appointment time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    /// Id to book it with.
    pub id: String,
    /// The queue it belongs to.
    pub queue_id: String,
    /// Start (the engine speaks it in Europe/Copenhagen time).
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
}

/// A booking to make.
#[derive(Debug, Clone, PartialEq)]
pub struct BookingRequest {
    /// Municipality id.
    pub municipality: String,
    /// Queue id.
    pub queue_id: String,
    /// Slot id from [`Frontdesk::free_slots`].
    pub slot_id: String,
    /// The citizen's name.
    pub name: Pii<String>,
    /// The citizen's phone number.
    pub phone: Pii<String>,
    /// CPR number, when the queue needs it.
    pub cpr: Option<Pii<String>>,
    /// The call that booked (idempotency and support).
    pub call_ref: CallId,
}

/// A confirmed booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    /// Frontdesk's booking reference (read back to the caller).
    pub reference: String,
    /// Queue id.
    pub queue_id: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
}

/// Which bookings to cancel.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelBy {
    /// The booking with this reference.
    Reference(String),
    /// Every future booking of this caller (phone number, and CPR if given).
    Caller {
        /// The caller's phone number.
        phone: Pii<String>,
        /// The caller's CPR number, narrowing the match.
        cpr: Option<Pii<String>>,
    },
}

/// Errors of the Frontdesk interface.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrontdeskError {
    /// The configuration cannot work (bad base URL).
    #[error("invalid Frontdesk configuration: {0}")]
    InvalidConfig(&'static str),
    /// The slot was booked by someone else since it was listed.
    #[error("the slot is no longer free")]
    SlotTaken,
    /// Unknown municipality, queue, slot or booking reference.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// Frontdesk did not answer within the timeout.
    #[error("Frontdesk timed out")]
    Timeout,
    /// Frontdesk could not be reached.
    #[error("Frontdesk unreachable: {0}")]
    Connect(#[source] reqwest::Error),
    /// Frontdesk answered 5xx (or 429): try later.
    #[error("Frontdesk failed with HTTP {status}")]
    Server {
        /// HTTP status.
        status: u16,
    },
    /// Frontdesk refused our credentials.
    #[error("Frontdesk refused the credentials (HTTP {status})")]
    Unauthorized {
        /// HTTP status.
        status: u16,
    },
    /// Frontdesk rejected the request (4xx other than 404/409).
    #[error("Frontdesk rejected the request with HTTP {status} ({code})")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The error code of the body, if any.
        code: String,
    },
    /// A success answer we do not understand.
    #[error("unexpected Frontdesk response: {0}")]
    BadResponse(&'static str),
}

impl FrontdeskError {
    /// How the flow should speak about this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            FrontdeskError::SlotTaken => Outcome::SlotTaken,
            FrontdeskError::NotFound(_) => Outcome::NotFound,
            FrontdeskError::Timeout
            | FrontdeskError::Connect(_)
            | FrontdeskError::Server { .. } => Outcome::Unavailable,
            FrontdeskError::Rejected { .. } | FrontdeskError::Unauthorized { .. } => {
                Outcome::Rejected
            }
            FrontdeskError::InvalidConfig(_) | FrontdeskError::BadResponse(_) => Outcome::Internal,
        }
    }
}

/// The booking system, as the engine sees it.
pub trait Frontdesk: Send + Sync {
    /// Queues of a municipality.
    fn list_queues<'a>(&'a self, municipality: &'a str) -> FrontdeskFuture<'a, Vec<QueueInfo>>;
    /// Free slots of a queue on the days `from..=to` (local dates).
    fn free_slots<'a>(
        &'a self,
        municipality: &'a str,
        queue_id: &'a str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> FrontdeskFuture<'a, Vec<Slot>>;
    /// Books a slot.
    fn book<'a>(&'a self, req: &'a BookingRequest) -> FrontdeskFuture<'a, Booking>;
    /// Cancels bookings; returns the references cancelled (empty: none found).
    fn cancel<'a>(
        &'a self,
        municipality: &'a str,
        by: &'a CancelBy,
    ) -> FrontdeskFuture<'a, Vec<String>>;
}

/// Client settings (`[integrations.frontdesk]`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrontdeskConfig {
    /// Base URL (the stand-in: `http://127.0.0.1:PORT`).
    pub base_url: String,
    /// Bearer token, if the endpoint needs one.
    pub api_key: Option<String>,
    /// Connect timeout, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Timeout of a whole request, in milliseconds (the flow plays a filler
    /// prompt meanwhile; keep it short enough for a caller to wait).
    pub request_timeout_ms: u64,
}

impl Default for FrontdeskConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8082".into(),
            api_key: None,
            connect_timeout_ms: 1_000,
            request_timeout_ms: 4_000,
        }
    }
}

impl std::fmt::Debug for FrontdeskConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontdeskConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<secret>"))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .finish()
    }
}

/// REST client of the Frontdesk API shape in `docs/frontdesk-api.md`.
#[derive(Debug, Clone)]
pub struct FrontdeskClient {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
}

/// Wire types shared with the stand-in.
pub(crate) mod wire {
    use serde::{Deserialize, Serialize};

    use super::{Booking, QueueInfo, Slot};

    #[derive(Serialize, Deserialize)]
    pub(crate) struct Queues {
        pub(crate) queues: Vec<QueueInfo>,
    }
    #[derive(Serialize, Deserialize)]
    pub(crate) struct Slots {
        pub(crate) slots: Vec<Slot>,
    }
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct BookBody {
        pub(crate) queue_id: String,
        pub(crate) slot_id: String,
        pub(crate) name: String,
        pub(crate) phone: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub(crate) cpr: Option<String>,
        pub(crate) external_reference: String,
    }
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct CancelByCallerBody {
        pub(crate) phone: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub(crate) cpr: Option<String>,
    }
    #[derive(Serialize, Deserialize)]
    pub(crate) struct Cancelled {
        pub(crate) cancelled: Vec<String>,
    }
    #[derive(Serialize, Deserialize)]
    pub(crate) struct ErrorBody {
        pub(crate) error: String,
    }
    pub(crate) type BookingOut = Booking;
}

fn map_send_error(e: reqwest::Error) -> FrontdeskError {
    if e.is_timeout() {
        FrontdeskError::Timeout
    } else {
        FrontdeskError::Connect(e.without_url())
    }
}

/// Path segment escaping for ids we put in URLs (RFC 3986 sec. 2.3
/// unreserved characters pass, everything else is percent-encoded).
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl FrontdeskClient {
    /// A client for `cfg`.
    pub fn new(cfg: &FrontdeskConfig) -> Result<Self, FrontdeskError> {
        reqwest::Url::parse(&cfg.base_url)
            .map_err(|_| FrontdeskError::InvalidConfig("base_url is not a URL"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms.max(1)))
            .timeout(Duration::from_millis(cfg.request_timeout_ms.max(1)))
            .build()
            .map_err(|_| FrontdeskError::InvalidConfig("cannot build the HTTP client"))?;
        Ok(Self {
            http,
            base: cfg.base_url.trim_end_matches('/').to_string(),
            api_key: cfg.api_key.clone(),
        })
    }

    fn url(&self, municipality: &str, rest: &str) -> String {
        format!(
            "{}/v1/municipalities/{}{rest}",
            self.base,
            seg(municipality)
        )
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, FrontdeskError> {
        let resp = self.auth(req).send().await.map_err(map_send_error)?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return resp.json::<T>().await.map_err(|e| {
                if e.is_timeout() {
                    FrontdeskError::Timeout
                } else {
                    FrontdeskError::BadResponse("body does not match the API shape")
                }
            });
        }
        let code = resp
            .json::<wire::ErrorBody>()
            .await
            .map(|b| b.error)
            .unwrap_or_default();
        Err(match status {
            409 if code == "slot_taken" => FrontdeskError::SlotTaken,
            404 => FrontdeskError::NotFound(match code.as_str() {
                "unknown_municipality" => "municipality",
                "unknown_queue" => "queue",
                "unknown_slot" => "slot",
                "unknown_booking" => "booking",
                _ => "resource",
            }),
            401 | 403 => FrontdeskError::Unauthorized { status },
            408 | 429 | 500..=599 => FrontdeskError::Server { status },
            _ => FrontdeskError::Rejected {
                status,
                code: code
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(64)
                    .collect(),
            },
        })
    }
}

impl Frontdesk for FrontdeskClient {
    fn list_queues<'a>(&'a self, municipality: &'a str) -> FrontdeskFuture<'a, Vec<QueueInfo>> {
        Box::pin(async move {
            let q: wire::Queues = self
                .call(self.http.get(self.url(municipality, "/queues")))
                .await?;
            Ok(q.queues)
        })
    }

    fn free_slots<'a>(
        &'a self,
        municipality: &'a str,
        queue_id: &'a str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> FrontdeskFuture<'a, Vec<Slot>> {
        Box::pin(async move {
            let url = self.url(municipality, &format!("/queues/{}/slots", seg(queue_id)));
            let req = self
                .http
                .get(url)
                .query(&[("from", from.to_string()), ("to", to.to_string())]);
            let s: wire::Slots = self.call(req).await?;
            Ok(s.slots)
        })
    }

    fn book<'a>(&'a self, r: &'a BookingRequest) -> FrontdeskFuture<'a, Booking> {
        Box::pin(async move {
            let body = wire::BookBody {
                queue_id: r.queue_id.clone(),
                slot_id: r.slot_id.clone(),
                name: r.name.expose().clone(),
                phone: r.phone.expose().clone(),
                cpr: r.cpr.as_ref().map(|c| c.expose().clone()),
                external_reference: r.call_ref.to_string(),
            };
            let b: wire::BookingOut = self
                .call(
                    self.http
                        .post(self.url(&r.municipality, "/bookings"))
                        .json(&body),
                )
                .await?;
            Ok(b)
        })
    }

    fn cancel<'a>(
        &'a self,
        municipality: &'a str,
        by: &'a CancelBy,
    ) -> FrontdeskFuture<'a, Vec<String>> {
        Box::pin(async move {
            let req = match by {
                CancelBy::Reference(r) => self
                    .http
                    .delete(self.url(municipality, &format!("/bookings/{}", seg(r)))),
                // POST, so personal data travels in the body, never in a URL
                // that proxies and access logs keep.
                CancelBy::Caller { phone, cpr } => self
                    .http
                    .post(self.url(municipality, "/bookings/cancel-by-caller"))
                    .json(&wire::CancelByCallerBody {
                        phone: phone.expose().clone(),
                        cpr: cpr.as_ref().map(|c| c.expose().clone()),
                    }),
            };
            let c: wire::Cancelled = self.call(req).await?;
            Ok(c.cancelled)
        })
    }
}
