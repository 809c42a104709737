//! Stand-in for Puzzel's callback web API (the shape documented in
//! [`crate::puzzel`]). Records every accepted request, answers a repeated
//! `Idempotency-Key` with 409 and the first id, checks Basic credentials when
//! configured, and can be told to fail the next N requests.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
    Json, Router,
};

use super::Shutdown;

/// Stand-in settings.
#[derive(Debug, Clone, Default)]
pub struct PuzzelStandinConfig {
    /// Expected `Authorization` header value (e.g. `Basic dXNlcjpwdw==`);
    /// `None` accepts any.
    pub expect_authorization: Option<String>,
}

/// One request the stand-in accepted.
#[derive(Debug, Clone)]
pub struct RecordedCallback {
    /// The id it answered.
    pub id: String,
    /// The `Idempotency-Key` header.
    pub idempotency_key: String,
    /// The JSON body as received (holds the phone number: test data only).
    pub body: serde_json::Value,
}

#[derive(Default)]
struct Inner {
    cfg: PuzzelStandinConfig,
    accepted: Vec<RecordedCallback>,
    by_key: HashMap<String, String>,
    fail_next: u32,
    fail_status: u16,
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
    /// Requests accepted so far (duplicates not repeated).
    pub fn accepted(&self) -> Vec<RecordedCallback> {
        self.lock().accepted.clone()
    }
    /// Every POST received, failed and duplicate ones included.
    pub fn posts(&self) -> u32 {
        self.lock().posts
    }
    /// Answers the next `n` requests with `status` (e.g. 503 or 400).
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
    cfg: PuzzelStandinConfig,
) -> std::io::Result<PuzzelStandin> {
    let addr = listener.local_addr()?;
    let inner: Shared = Arc::new(Mutex::new(Inner {
        cfg,
        ..Inner::default()
    }));
    let app = Router::new()
        .route("/v1/callbacks", post(create))
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

async fn create(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> (StatusCode, Json<serde_json::Value>) {
    let mut g = inner.lock().unwrap_or_else(|p| p.into_inner());
    g.posts += 1;
    if g.fail_next > 0 {
        g.fail_next -= 1;
        let status = StatusCode::from_u16(g.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (
            status,
            Json(serde_json::json!({"error": "injected failure"})),
        );
    }
    if let Some(expected) = &g.cfg.expect_authorization {
        let got = headers.get("authorization").and_then(|v| v.to_str().ok());
        if got != Some(expected.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({"error": "unauthorized"})),
            );
        }
    }
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "Idempotency-Key required"})),
        );
    };
    let required = ["queueId", "phoneNumber", "preferredFrom", "preferredTo"];
    if required.iter().any(|f| {
        body.get(f)
            .and_then(|v| v.as_str())
            .is_none_or(str::is_empty)
    }) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({"error": "missing field"})),
        );
    }
    if let Some(id) = g.by_key.get(&key) {
        return (StatusCode::CONFLICT, Json(serde_json::json!({"id": id})));
    }
    let id = format!("pz-{}", g.accepted.len() + 1);
    g.by_key.insert(key.clone(), id.clone());
    g.accepted.push(RecordedCallback {
        id: id.clone(),
        idempotency_key: key,
        body,
    });
    (StatusCode::CREATED, Json(serde_json::json!({"id": id})))
}
