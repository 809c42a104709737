//! The runtime: SIP transport, one task per call, media sessions, STT worker pool, flow reload, admin HTTP API.
//!
//! - [`engine::start`] starts everything from an [`config::EngineConfig`] and
//!   returns a [`engine::Running`] with the bound addresses;
//!   [`engine::Running::shutdown`] drains calls and stops.
//! - [`call`]: one call: the sans-IO [`call::core::CallCore`] (media session,
//!   flow, listening, timers, the record) and the thin tokio task driving it.
//! - [`dispatch`]: SIP events to per-call tasks; each call's set-up on its own task.
//! - [`services`]: flow requests mapped to the integrations.
//! - [`speech`]: the shared STT worker pool with its bounded queue.
//! - [`eager`]: eager end of turn (speculative recognition at a tentative end).
//! - [`records`], [`metrics`], [`http`]: the call record, counters, `/health` and `/metrics`.
//! - [`turns`]: per-turn timings (endpointing to first reply packet, by stage).
//! - [`version`]: which flows and announcements an engine serves (`/version`).
//! - [`console`]: the operator console and its admin API (`/console`, `/api/v1`);
//!   [`live`]: the calls in progress it shows.

pub mod call;
pub mod config;
pub mod console;
pub mod dispatch;
pub mod eager;
pub mod endofturn;
pub mod engine;
pub mod http;
pub mod live;
pub mod metrics;
pub mod records;
pub mod retention;
pub mod secrets;
pub mod services;
pub mod sip;
pub mod speech;
pub mod stt;
pub mod turns;
pub mod version;
pub mod webrtc;
