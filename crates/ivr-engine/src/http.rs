//! The HTTP port: `/health` (200 `ok`, or 503 `draining` during shutdown so
//! a load balancer stops sending calls) and `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

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
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn health(State(s): State<HttpState>) -> impl IntoResponse {
    if s.draining.draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(Sampled {
            stt_queue_depth: s.stt.queue_depth(),
            sip_dropped_datagrams: s.sip.dropped_datagrams(),
        }),
    )
}
