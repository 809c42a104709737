//! Stand-in Frontdesk server speaking the REST shape of
//! `docs/frontdesk-api.md`: realistic queues per municipality (MitID,
//! kørekort, pas, sundhedskort, ...), slots generated from opening hours in
//! Europe/Copenhagen time, bookings in memory. Used by the tests,
//! `ivr simulate` and `make run` (binary `ivr-standin frontdesk`).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
    Json, Router,
};
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::Copenhagen;
use ivr_core::{SystemClock, WallClock};
use serde::Deserialize;

use super::Shutdown;
use crate::frontdesk::{wire, Booking, QueueInfo, Slot};

/// Opening hours per weekday (Monday first), local time; `None` = closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpeningHours(pub [Option<(NaiveTime, NaiveTime)>; 7]);

impl OpeningHours {
    /// Typical borgerservice hours: Mon-Wed and Fri 10-14, Thu 10-17:30.
    pub fn borgerservice() -> Self {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
        let day = Some((t(10, 0), t(14, 0)));
        Self([day, day, day, Some((t(10, 0), t(17, 30))), day, None, None])
    }
}

/// One municipality's citizen service desk.
#[derive(Debug, Clone)]
pub struct MunicipalityDesk {
    /// Municipality id (`aarhus`).
    pub id: String,
    /// Its queues.
    pub queues: Vec<QueueInfo>,
    /// When appointments can be booked.
    pub hours: OpeningHours,
}

/// Stand-in settings.
#[derive(Clone)]
pub struct FrontdeskStandinConfig {
    /// Municipalities served.
    pub municipalities: Vec<MunicipalityDesk>,
    /// "Now": slots before it are not offered.
    pub clock: Arc<dyn WallClock>,
    /// Longest date range of one slot query, in days.
    pub max_days: u32,
    /// Required bearer token, if any.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for FrontdeskStandinConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FrontdeskStandinConfig({} municipalities)",
            self.municipalities.len()
        )
    }
}

fn queue(id: &str, da: &str, en: &str, minutes: u32) -> QueueInfo {
    QueueInfo {
        id: id.into(),
        name_da: da.into(),
        name_en: en.into(),
        slot_minutes: minutes,
    }
}

impl FrontdeskStandinConfig {
    /// Queues as Danish borgerservice centres offer them, for a few
    /// municipalities (not all offer every queue), on the system clock.
    pub fn realistic() -> Self {
        Self::realistic_at(Arc::new(SystemClock))
    }

    /// [`Self::realistic`] on a given clock (tests stand at a fixed time).
    pub fn realistic_at(clock: Arc<dyn WallClock>) -> Self {
        let mitid = queue("mitid", "MitID", "MitID", 15);
        let koerekort = queue("koerekort", "kørekort", "driving licence", 20);
        let pas = queue("pas", "pas", "passport", 15);
        let sundhedskort = queue("sundhedskort", "sundhedskort", "health insurance card", 10);
        let legitimation = queue("legitimationskort", "legitimationskort", "ID card", 15);
        let flytning = queue(
            "flytning",
            "flytning og folkeregister",
            "change of address",
            15,
        );
        let pension = queue("pension", "pension", "pension", 30);
        let desk = |id: &str, queues: Vec<QueueInfo>| MunicipalityDesk {
            id: id.into(),
            queues,
            hours: OpeningHours::borgerservice(),
        };
        Self {
            municipalities: vec![
                desk(
                    "aarhus",
                    vec![
                        mitid.clone(),
                        koerekort.clone(),
                        pas.clone(),
                        sundhedskort.clone(),
                        legitimation.clone(),
                        flytning.clone(),
                    ],
                ),
                desk(
                    "odense",
                    vec![
                        mitid.clone(),
                        koerekort.clone(),
                        pas.clone(),
                        sundhedskort.clone(),
                        pension,
                    ],
                ),
                desk(
                    "aalborg",
                    vec![mitid.clone(), koerekort.clone(), pas.clone(), legitimation],
                ),
                desk(
                    "koebenhavn",
                    vec![mitid, koerekort, pas, sundhedskort, flytning],
                ),
            ],
            clock,
            max_days: 31,
            api_key: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Stored {
    booking: Booking,
    slot_id: String,
    phone: String,
    cpr: Option<String>,
}

struct Inner {
    cfg: FrontdeskStandinConfig,
    /// (municipality, slot id) -> booking.
    bookings: HashMap<(String, String), Stored>,
    next_ref: u32,
    fail_next: u32,
    fail_status: u16,
    requests: u32,
}

type Shared = Arc<Mutex<Inner>>;

/// One booking held by the stand-in.
#[derive(Debug, Clone)]
pub struct HeldBooking {
    /// Municipality id.
    pub municipality: String,
    /// The booking (reference, queue, start, end).
    pub booking: Booking,
    /// The phone number it was booked with.
    pub phone: ivr_core::Pii<String>,
    /// The CPR number it was booked for, if given.
    pub cpr: Option<ivr_core::Pii<String>>,
}

/// A running stand-in. Dropping it stops the server.
pub struct FrontdeskStandin {
    addr: SocketAddr,
    inner: Shared,
    _shutdown: Shutdown,
}

impl std::fmt::Debug for FrontdeskStandin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrontdeskStandin({})", self.addr)
    }
}

impl FrontdeskStandin {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://ADDR`, the `base_url` for [`crate::frontdesk::FrontdeskConfig`].
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// Number of live bookings.
    pub fn booking_count(&self) -> usize {
        self.lock().bookings.len()
    }
    /// The live bookings, oldest reference first: what a test checks arrived.
    pub fn bookings(&self) -> Vec<HeldBooking> {
        let mut v: Vec<HeldBooking> = self
            .lock()
            .bookings
            .iter()
            .map(|((m, _), s)| HeldBooking {
                municipality: m.clone(),
                booking: s.booking.clone(),
                phone: ivr_core::Pii::new(s.phone.clone()),
                cpr: s.cpr.clone().map(ivr_core::Pii::new),
            })
            .collect();
        v.sort_by(|a, b| a.booking.reference.cmp(&b.booking.reference));
        v
    }
    /// Requests served so far.
    pub fn requests(&self) -> u32 {
        self.lock().requests
    }
    /// Answers the next `n` requests with `status` (e.g. 503).
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut g = self.lock();
        g.fail_next = n;
        g.fail_status = status;
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves the stand-in on `listener` until the handle is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: FrontdeskStandinConfig,
) -> std::io::Result<FrontdeskStandin> {
    let addr = listener.local_addr()?;
    let inner: Shared = Arc::new(Mutex::new(Inner {
        cfg,
        bookings: HashMap::new(),
        next_ref: 1,
        fail_next: 0,
        fail_status: 503,
        requests: 0,
    }));
    let app = router(inner.clone());
    let (shutdown, rx) = Shutdown::new();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(FrontdeskStandin {
        addr,
        inner,
        _shutdown: shutdown,
    })
}

/// Serves the stand-in on `listener` until the process ends (for the
/// `ivr-standin` binary and `make run`).
pub async fn serve_forever(
    listener: tokio::net::TcpListener,
    cfg: FrontdeskStandinConfig,
) -> std::io::Result<()> {
    let inner: Shared = Arc::new(Mutex::new(Inner {
        cfg,
        bookings: HashMap::new(),
        next_ref: 1,
        fail_next: 0,
        fail_status: 503,
        requests: 0,
    }));
    axum::serve(listener, router(inner)).await
}

fn router(inner: Shared) -> Router {
    Router::new()
        .route("/v1/municipalities/{m}/queues", get(queues))
        .route("/v1/municipalities/{m}/queues/{q}/slots", get(slots))
        .route("/v1/municipalities/{m}/bookings", post(book))
        .route(
            "/v1/municipalities/{m}/bookings/cancel-by-caller",
            post(cancel_by_caller),
        )
        .route(
            "/v1/municipalities/{m}/bookings/{r}",
            delete(cancel_by_reference),
        )
        .route("/health", get(|| async { "ok" }))
        .with_state(inner)
}

fn err(status: StatusCode, code: &str) -> Response {
    (status, Json(wire::ErrorBody { error: code.into() })).into_response()
}

/// Common request gate: injected failures, bearer token. Returns the guard.
#[allow(clippy::result_large_err)] // reason: the Err is the HTTP response itself, returned at once
fn enter<'a>(
    inner: &'a Shared,
    headers: &HeaderMap,
) -> Result<std::sync::MutexGuard<'a, Inner>, Response> {
    let mut g = inner.lock().unwrap_or_else(|p| p.into_inner());
    g.requests += 1;
    if g.fail_next > 0 {
        g.fail_next -= 1;
        let s = StatusCode::from_u16(g.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return Err(err(s, "injected_failure"));
    }
    if let Some(key) = &g.cfg.api_key {
        let want = format!("Bearer {key}");
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
            return Err(err(StatusCode::UNAUTHORIZED, "unauthorized"));
        }
    }
    Ok(g)
}

#[allow(clippy::result_large_err)] // reason: the Err is the HTTP response itself, returned at once
fn desk<'a>(g: &'a Inner, m: &str) -> Result<&'a MunicipalityDesk, Response> {
    g.cfg
        .municipalities
        .iter()
        .find(|d| d.id == m)
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "unknown_municipality"))
}

fn slot_id(q: &str, local: chrono::NaiveDateTime) -> String {
    format!("{q}-{}", local.format("%Y%m%dT%H%M"))
}

/// Every slot of `q` on `date` (booked or not, past or not).
fn day_slots(d: &MunicipalityDesk, q: &QueueInfo, date: NaiveDate) -> Vec<Slot> {
    let idx = date.weekday().num_days_from_monday() as usize;
    let Some((open, close)) = d.hours.0.get(idx).copied().flatten() else {
        return Vec::new();
    };
    let step = chrono::Duration::minutes(i64::from(q.slot_minutes.max(5)));
    let mut out = Vec::new();
    let mut t = date.and_time(open);
    while t + step <= date.and_time(close) {
        if let (Some(s), Some(e)) = (
            Copenhagen.from_local_datetime(&t).single(),
            Copenhagen.from_local_datetime(&(t + step)).single(),
        ) {
            out.push(Slot {
                id: slot_id(&q.id, t),
                queue_id: q.id.clone(),
                start: s.with_timezone(&Utc),
                end: e.with_timezone(&Utc),
            });
        }
        t += step;
    }
    out
}

async fn queues(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path(m): Path<String>,
) -> Response {
    let g = match enter(&inner, &headers) {
        Ok(g) => g,
        Err(r) => return r,
    };
    match desk(&g, &m) {
        Ok(d) => Json(wire::Queues {
            queues: d.queues.clone(),
        })
        .into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct Range {
    from: NaiveDate,
    to: NaiveDate,
}

async fn slots(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((m, q)): Path<(String, String)>,
    Query(range): Query<Range>,
) -> Response {
    let g = match enter(&inner, &headers) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let d = match desk(&g, &m) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(queue) = d.queues.iter().find(|x| x.id == q) else {
        return err(StatusCode::NOT_FOUND, "unknown_queue");
    };
    let days = (range.to - range.from).num_days();
    if days < 0 || days >= i64::from(g.cfg.max_days) {
        return err(StatusCode::BAD_REQUEST, "invalid_range");
    }
    let now = g.cfg.clock.now_utc();
    let mut out = Vec::new();
    for date in range
        .from
        .iter_days()
        .take(usize::try_from(days + 1).unwrap_or(0))
    {
        out.extend(
            day_slots(d, queue, date)
                .into_iter()
                .filter(|s| s.start > now && !g.bookings.contains_key(&(m.clone(), s.id.clone()))),
        );
    }
    Json(wire::Slots { slots: out }).into_response()
}

/// Finds the slot with `id` in queue `q` (ids carry their local start).
fn find_slot(d: &MunicipalityDesk, q: &QueueInfo, id: &str) -> Option<Slot> {
    let stamp = id.strip_prefix(&q.id)?.strip_prefix('-')?;
    let local = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M").ok()?;
    day_slots(d, q, local.date())
        .into_iter()
        .find(|s| s.id == id)
}

async fn book(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path(m): Path<String>,
    Json(body): Json<wire::BookBody>,
) -> Response {
    let mut g = match enter(&inner, &headers) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let d = match desk(&g, &m) {
        Ok(d) => d.clone(),
        Err(r) => return r,
    };
    let Some(queue) = d.queues.iter().find(|x| x.id == body.queue_id) else {
        return err(StatusCode::NOT_FOUND, "unknown_queue");
    };
    let Some(slot) = find_slot(&d, queue, &body.slot_id) else {
        return err(StatusCode::NOT_FOUND, "unknown_slot");
    };
    if body.name.trim().is_empty() || body.phone.trim().is_empty() {
        return err(StatusCode::UNPROCESSABLE_ENTITY, "invalid_booking");
    }
    if slot.start <= g.cfg.clock.now_utc() {
        return err(StatusCode::CONFLICT, "slot_taken");
    }
    let key = (m.clone(), slot.id.clone());
    if g.bookings.contains_key(&key) {
        return err(StatusCode::CONFLICT, "slot_taken");
    }
    let reference = format!(
        "FD-{}-{:05}",
        m.chars().take(3).collect::<String>().to_uppercase(),
        g.next_ref
    );
    g.next_ref += 1;
    let booking = Booking {
        reference,
        queue_id: queue.id.clone(),
        start: slot.start,
        end: slot.end,
    };
    g.bookings.insert(
        key,
        Stored {
            booking: booking.clone(),
            slot_id: slot.id,
            phone: body.phone,
            cpr: body.cpr,
        },
    );
    (StatusCode::CREATED, Json(booking)).into_response()
}

async fn cancel_by_reference(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((m, r)): Path<(String, String)>,
) -> Response {
    let mut g = match enter(&inner, &headers) {
        Ok(g) => g,
        Err(r) => return r,
    };
    if let Err(r) = desk(&g, &m) {
        return r;
    }
    let key = g
        .bookings
        .iter()
        .find(|(k, s)| k.0 == m && s.booking.reference == r)
        .map(|(k, _)| k.clone());
    match key {
        Some(k) => {
            g.bookings.remove(&k);
            Json(wire::Cancelled { cancelled: vec![r] }).into_response()
        }
        None => err(StatusCode::NOT_FOUND, "unknown_booking"),
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn same_phone(a: &str, b: &str) -> bool {
    // +45 12 34 56 78 and 12345678 are the same Danish number.
    let (a, b) = (digits(a), digits(b));
    let strip = |s: &str| {
        s.strip_prefix("45")
            .filter(|r| r.len() == 8)
            .map(str::to_string)
            .unwrap_or(s.to_string())
    };
    !a.is_empty() && strip(&a) == strip(&b)
}

async fn cancel_by_caller(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path(m): Path<String>,
    Json(body): Json<wire::CancelByCallerBody>,
) -> Response {
    let mut g = match enter(&inner, &headers) {
        Ok(g) => g,
        Err(r) => return r,
    };
    if let Err(r) = desk(&g, &m) {
        return r;
    }
    let now: DateTime<Utc> = g.cfg.clock.now_utc();
    let keys: Vec<(String, String)> = g
        .bookings
        .iter()
        .filter(|(k, s)| {
            k.0 == m
                && s.booking.start > now
                && same_phone(&s.phone, &body.phone)
                && body
                    .cpr
                    .as_ref()
                    .is_none_or(|c| s.cpr.as_deref().map(digits) == Some(digits(c)))
        })
        .map(|(k, _)| k.clone())
        .collect();
    let mut cancelled = Vec::new();
    for k in keys {
        if let Some(s) = g.bookings.remove(&k) {
            debug_assert_eq!(s.slot_id, k.1);
            cancelled.push(s.booking.reference);
        }
    }
    cancelled.sort();
    Json(wire::Cancelled { cancelled }).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_opening_hours_in_copenhagen_time() {
        let cfg = FrontdeskStandinConfig::realistic();
        let aarhus = &cfg.municipalities[0];
        let pas = aarhus.queues.iter().find(|q| q.id == "pas").unwrap();
        // Thursday 3 December 2026: 10:00-17:30, 15 minutes => 30 slots.
        let thu = day_slots(aarhus, pas, NaiveDate::from_ymd_opt(2026, 12, 3).unwrap());
        assert_eq!(thu.len(), 30);
        assert_eq!(thu[0].id, "pas-20261203T1000");
        assert_eq!(
            thu[0].start,
            Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap(),
            "10:00 CET is 09:00 UTC"
        );
        // Saturday: closed.
        assert!(day_slots(aarhus, pas, NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()).is_empty());
        assert_eq!(
            find_slot(aarhus, pas, "pas-20261203T1015").unwrap().id,
            "pas-20261203T1015"
        );
        assert!(
            find_slot(aarhus, pas, "pas-20261203T1017").is_none(),
            "not on the slot grid"
        );
        assert!(find_slot(aarhus, pas, "mitid-20261203T1015").is_none());
    }

    #[test]
    fn phone_numbers_match_with_or_without_country_code() {
        assert!(same_phone("+45 12 34 56 78", "12345678"));
        assert!(!same_phone("12345678", "12345679"));
        assert!(!same_phone("", ""));
    }
}
