//! The HTTP port: `/health` (200 `ok`, or 503 `draining` during shutdown so
//! a load balancer stops sending calls), `/metrics` (Prometheus text) and
//! `/version` (JSON: the flows and announcements this engine serves, see
//! [`crate::version`], so a deploy can check every engine serves the same).
//!
//! Serving ([`serve`]): hyper's HTTP/1 connection with its header-read
//! timeout (which also closes a keep-alive connection idle for that long,
//! since hyper starts it when it waits for the next request head), a cap on
//! open connections and one per client address. At a cap a new connection
//! is closed at once, so idle or slow clients cannot hold every descriptor
//! and `/health` still answers others.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::metrics::{Metrics, Sampled};
use crate::sip::SipHandle;
use crate::speech::SpeechPool;

/// Whether the engine is shutting down.
pub trait Draining: Send + Sync {
    /// True once shutdown has begun.
    fn draining(&self) -> bool;
}

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The STT pool (queue depth).
    pub stt: SpeechPool,
    /// The SIP driver (datagrams dropped at its full input queue).
    pub sip: SipHandle,
    /// Shutdown state.
    pub draining: Arc<dyn Draining>,
    /// The flows loaded (their version).
    pub reloads: crate::console::FlowReloads,
    /// The announcements read (their version).
    pub announcements: crate::console::announce::Announcements,
}

/// What `/version` answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Versions {
    /// Content hash of the flows folder loaded (flows, knowledge, prompts).
    pub flows: String,
    /// When that version was loaded (RFC 3339).
    pub flows_loaded_at: Option<String>,
    /// Hash of the crisis announcements as last read from the database.
    pub announcements: String,
    /// The engine's own version (the crate's).
    pub engine: String,
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/version", get(versions))
        .with_state(state)
}

async fn health(State(s): State<HttpState>) -> impl IntoResponse {
    if s.draining.draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

async fn versions(State(s): State<HttpState>) -> axum::Json<Versions> {
    let flows = s.reloads.status();
    axum::Json(Versions {
        flows: flows.version,
        flows_loaded_at: flows.loaded_at.map(|t| t.to_rfc3339()),
        announcements: s.announcements.version(),
        engine: env!("CARGO_PKG_VERSION").to_string(),
    })
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(Sampled {
            stt_queue_depth: s.stt.queue_depth(),
            sip_dropped_datagrams: s.sip.dropped_datagrams(),
            sip_dropped_outside: s.sip.dropped_outside(),
            sip_guard: s.sip.guard_stats(),
        }),
    )
}

/// Limits of the HTTP listener (`[http]`).
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// A request head must arrive whole within this long, and a keep-alive
    /// connection waiting for its next request is closed after it.
    pub header_read_timeout: Duration,
    /// A request's handler must answer within this long, else 503.
    pub request_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections per client address at most.
    pub max_connections_per_ip: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 256,
            max_connections_per_ip: 32,
        }
    }
}

/// Counts open connections, in total and per client address.
#[derive(Default)]
struct Slots {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// An open connection's place; given back on drop.
struct Slot {
    slots: Arc<Mutex<Slots>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut s) = self.slots.lock() {
            s.total = s.total.saturating_sub(1);
            if let Some(n) = s.per_ip.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    s.per_ip.remove(&self.ip);
                }
            }
        }
    }
}

fn take_slot(slots: &Arc<Mutex<Slots>>, ip: IpAddr, limits: &ServeLimits) -> Option<Slot> {
    let mut s = slots.lock().ok()?;
    let mine = s.per_ip.get(&ip).copied().unwrap_or(0);
    if s.total >= limits.max_connections || mine >= limits.max_connections_per_ip {
        return None;
    }
    s.total += 1;
    *s.per_ip.entry(ip).or_insert(0) += 1;
    Some(Slot {
        slots: slots.clone(),
        ip,
    })
}

/// Serves `app` on `listener` until `shutdown` resolves (then stops
/// accepting; open connections finish their request). Each request carries
/// [`ConnectInfo<SocketAddr>`] of its client.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let slots = Arc::new(Mutex::new(Slots::default()));
    let mut shutdown = std::pin::pin!(shutdown);
    let app = app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
                Ok(r) => r,
                Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout\n").into_response(),
            }
        },
    ));
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let Some(slot) = take_slot(&slots, peer.ip(), &limits) else {
            tracing::debug!(%peer, "HTTP connection limit reached; closed");
            drop(stream);
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    let mut app = app.clone();
                    async move { tower_service::Service::call(&mut app, req).await }
                },
            );
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            if let Err(e) = b.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
            drop(slot);
        });
    }
}

/// The address of a request's client (set by [`serve`]).
pub type ClientAddr = ConnectInfo<SocketAddr>;
