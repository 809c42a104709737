//! Stand-in for Puzzel's "Callback on Web" (the shape documented in
//! [`crate::puzzel`] and `docs/puzzel-callback-api.md`): a form POST to
//! `/contactcentre5/cow.aspx` answered, as Puzzel does, with a redirect to the
//! request's `redirectOK`, `redirectFull` or `redirectError`. It checks the
//! customer key and queue when configured, refuses numbers on its
//! `_WebCallback` deny list and malformed fields with `redirectError`, reports
//! a full queue at its capacity (or when told) with `redirectFull`, answers a
//! request that names no redirect URLs with a plain 400 page, and can be told
//! to fail the next N requests with an HTTP status. Like Puzzel it has no
//! idempotency key: a request sent twice is queued twice (tests count that).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Form, Router,
};

use super::Shutdown;

/// Stand-in settings.
#[derive(Debug, Clone, Default)]
pub struct PuzzelStandinConfig {
    /// The only `customerKey` accepted; `None` accepts any non-empty one.
    pub customer_key: Option<String>,
    /// The only `queueKey` accepted; `None` accepts any non-empty one.
    pub queue_key: Option<String>,
    /// Requests held before the queue reports full; `None`: no limit.
    pub capacity: Option<usize>,
    /// Callback numbers (`00…`) the `_WebCallback` list denies.
    pub deny_numbers: Vec<String>,
}

/// One request the stand-in accepted.
#[derive(Debug, Clone)]
pub struct RecordedCallback {
    /// Sequence number of the request at the stand-in (1, 2, …).
    pub id: String,
    /// The form fields as received (holds the phone number: test data only).
    pub form: BTreeMap<String, String>,
}

#[derive(Default)]
struct Inner {
    cfg: PuzzelStandinConfig,
    accepted: Vec<RecordedCallback>,
    fail_next: u32,
    fail_status: u16,
    full: bool,
    posts: u32,
}

type Shared = Arc<Mutex<Inner>>;

/// A running stand-in. Dropping it stops the server.
#[derive(Debug)]
pub struct PuzzelStandin {
    addr: SocketAddr,
    inner: Shared,
    _shutdown: Shutdown,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Inner({} accepted)", self.accepted.len())
    }
}

impl PuzzelStandin {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://ADDR`, the `base_url` for [`crate::puzzel::PuzzelConfig`].
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// Requests accepted so far (a request sent twice appears twice).
    pub fn accepted(&self) -> Vec<RecordedCallback> {
        self.lock().accepted.clone()
    }
    /// Every POST received, failed and refused ones included.
    pub fn posts(&self) -> u32 {
        self.lock().posts
    }
    /// Answers the next `n` requests with HTTP `status` (e.g. 503).
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut g = self.lock();
        g.fail_next = n;
        g.fail_status = status;
    }
    /// Reports the queue full (`redirectFull`) until called with `false`.
    pub fn set_full(&self, full: bool) {
        self.lock().full = full;
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves the stand-in on `listener` until the handle is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: PuzzelStandinConfig,
) -> std::io::Result<PuzzelStandin> {
    let addr = listener.local_addr()?;
    let inner: Shared = Arc::new(Mutex::new(Inner {
        cfg,
        ..Inner::default()
    }));
    let app = Router::new()
        .route("/contactcentre5/cow.aspx", post(create))
        .route("/health", get(|| async { "ok" }))
        .with_state(inner.clone());
    let (shutdown, rx) = Shutdown::new();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(PuzzelStandin {
        addr,
        inner,
        _shutdown: shutdown,
    })
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

/// Why a request goes to `redirectError` (`None`: it is acceptable).
fn invalid(cfg: &PuzzelStandinConfig, f: &BTreeMap<String, String>) -> Option<&'static str> {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    for k in ["customerKey", "accessPoint", "queueKey", "callbackNumber"] {
        if get(k).is_empty() {
            return Some("missing field");
        }
    }
    if cfg
        .customer_key
        .as_deref()
        .is_some_and(|c| c != get("customerKey"))
    {
        return Some("unknown customer");
    }
    if cfg
        .queue_key
        .as_deref()
        .is_some_and(|q| q != get("queueKey"))
    {
        return Some("unknown queue");
    }
    let number = get("callbackNumber");
    if !number.starts_with("00") || number.len() < 6 || !number.chars().all(|c| c.is_ascii_digit())
    {
        return Some("callbackNumber must be international with 00");
    }
    if cfg.deny_numbers.iter().any(|d| d == number) {
        return Some("number denied by _WebCallback");
    }
    if !matches!(get("ciqType"), "" | "CallAgentFirst" | "CallRequestFirst") {
        return Some("bad ciqType");
    }
    if !get("maxAttempts").is_empty() && !matches!(get("maxAttempts"), "1" | "2" | "3") {
        return Some("maxAttempts must be 1-3");
    }
    let when = get("scheduledDateTime");
    if !when.is_empty() && chrono::NaiveDateTime::parse_from_str(when, "%Y-%m-%dT%H:%M:%S").is_err()
    {
        return Some("scheduledDateTime must be YYYY-MM-DDTHH:MM:SS");
    }
    None
}

async fn create(
    State(inner): State<Shared>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let mut g = inner.lock().unwrap_or_else(|p| p.into_inner());
    g.posts += 1;
    if g.fail_next > 0 {
        g.fail_next -= 1;
        let status = StatusCode::from_u16(g.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (status, "injected failure").into_response();
    }
    let url = |k: &str| form.get(k).filter(|u| !u.is_empty()).cloned();
    let (Some(ok), Some(error), Some(full)) =
        (url("redirectOK"), url("redirectError"), url("redirectFull"))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "redirectOK, redirectError and redirectFull are required",
        )
            .into_response();
    };
    if invalid(&g.cfg, &form).is_some() {
        return redirect(&error);
    }
    if g.full || g.cfg.capacity.is_some_and(|c| g.accepted.len() >= c) {
        return redirect(&full);
    }
    let id = (g.accepted.len() + 1).to_string();
    g.accepted.push(RecordedCallback { id, form });
    redirect(&ok)
}
