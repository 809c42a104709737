//! The operator console: a web app and its admin API, served on the
//! engine's HTTP listener next to `/health` and `/metrics`.
//!
//! ```text
//! /console/...          server-rendered page shells + console.js/console.css (no CDN)
//!       |  fetch (cookie session + X-CSRF-Token on changes)
//! /api/v1/...           JSON, documented at /api/v1/openapi.json (utoipa, from the handlers)
//!       |
//! accounts (argon2id, sessions, tokens) -- audit -- KPIs from call_records/call_turns
//! live calls (crate::live) -- callbacks/mail outbox (ivr-integrations) -- flows -- announcements
//! ```
//!
//! - [`accounts`]: operator accounts, roles and scopes, sessions, API tokens.
//! - [`auth`]: who is asking (cookie or bearer token), CSRF, login rate limit.
//! - [`api`]: the `/api/v1` endpoints; every municipality-scoped endpoint
//!   answers 404 for a municipality the operator may not see.
//! - [`kpi`]: KPIs and the quarterly export format.
//! - [`announce`]: crisis announcements.
//! - [`audit`]: who did what (and who read which transcript).
//! - [`pages`]: the HTML shells and assets.
//!
//! The console uses only the API: a page is a shell whose script fetches
//! `/api/v1` and draws tables and SVG charts. A later page (a softphone)
//! is a new entry in [`pages::PAGES`] plus its API routes.

pub mod accounts;
pub mod announce;
pub mod api;
pub mod audit;
pub mod auth;
pub mod graph;
pub mod kpi;
pub mod pages;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use chrono::{DateTime, Utc};
use ivr_core::WallClock;
use ivr_flow::FlowStore;
use ivr_integrations::db::Db;
use ivr_integrations::Integrations;
use ivr_tts::TextToSpeech;
use serde::Deserialize;

use crate::live::LiveCalls;

/// Runs `$body` with `$p` bound to the pool of whichever backend `$db` is
/// (one query text serves SQLite and PostgreSQL: `$1` placeholders).
macro_rules! on_pool {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            ivr_integrations::db::Db::Sqlite($p) => $body,
            ivr_integrations::db::Db::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// `[console]`: the web console and its API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve `/console` and `/api/v1` on the HTTP listener.
    pub enabled: bool,
    /// Mark the session cookie `Secure` (browsers send it over HTTPS and
    /// to localhost only). Turn off only behind a TLS-terminating proxy
    /// that speaks plain HTTP to a non-local engine address.
    pub secure_cookies: bool,
    /// A session lasts this long after login.
    pub session_hours: u32,
    /// Failed logins per user name or client address within
    /// `login_window_s` before further attempts get 429.
    pub login_failures: u32,
    /// The window of `login_failures`, in seconds.
    pub login_window_s: u64,
    /// Where crisis recordings are written for the calls to play.
    pub announcements_dir: std::path::PathBuf,
    /// `/metrics` only for these client addresses (empty: any).
    pub metrics_allow: Vec<IpAddr>,
    /// `/metrics` also for requests with `Authorization: Bearer <token>`
    /// (unset: no token opens it).
    pub metrics_token: Option<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            secure_cookies: true,
            session_hours: 12,
            login_failures: 5,
            login_window_s: 300,
            announcements_dir: "var/announcements".into(),
            metrics_allow: Vec::new(),
            metrics_token: None,
        }
    }
}

/// The last flow (re)load, for the flows page.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct FlowStatus {
    /// When the flows were last loaded successfully.
    pub loaded_at: Option<DateTime<Utc>>,
    /// The version served: a content hash of the flows folder as loaded then
    /// (see [`crate::version`]); engines serving the same folder agree.
    pub version: String,
    /// When a reload last failed (the previous version kept serving).
    pub failed_at: Option<DateTime<Utc>>,
    /// That reload's errors, `file:line:col: message`.
    pub errors: Vec<String>,
}

/// Shared record of flow (re)loads; the engine's reload loop writes it.
#[derive(Debug, Clone, Default)]
pub struct FlowReloads(Arc<Mutex<FlowStatus>>);

impl FlowReloads {
    /// The flows of content version `version` loaded at `at`.
    pub fn loaded(&self, at: DateTime<Utc>, version: String) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.loaded_at = Some(at);
        s.version = version;
        s.errors.clear();
        s.failed_at = None;
    }

    /// A reload at `at` failed with `errors`.
    pub fn failed(&self, at: DateTime<Utc>, errors: Vec<String>) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.failed_at = Some(at);
        s.errors = errors;
    }

    /// The current status.
    pub fn status(&self) -> FlowStatus {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Everything the console's handlers read. Cheap to clone.
#[derive(Clone)]
pub struct ConsoleState {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ConsoleConfig,
    db: Db,
    accounts: accounts::Accounts,
    audit: audit::Audit,
    limiter: auth::LoginLimiter,
    flows: Arc<FlowStore>,
    reloads: FlowReloads,
    live: LiveCalls,
    announcements: announce::Announcements,
    integrations: Option<Arc<Integrations>>,
    tts: Option<Arc<dyn TextToSpeech>>,
    clock: Arc<dyn WallClock>,
    records: RecordsView,
    softphone: Option<crate::webrtc::Softphone>,
}

/// What the console knows of the call-record settings.
#[derive(Debug, Clone, Copy)]
pub struct RecordsView {
    /// Call records are written.
    pub enabled: bool,
    /// Transcripts are kept.
    pub keep_transcripts: bool,
    /// Days transcripts are kept.
    pub retention_days: u32,
}

/// The parts a [`ConsoleState`] is made of.
pub struct ConsoleParts {
    /// `[console]`.
    pub cfg: ConsoleConfig,
    /// The engine's database (accounts, audit, records, announcements).
    pub db: Db,
    /// The flows.
    pub flows: Arc<FlowStore>,
    /// Flow reload status.
    pub reloads: FlowReloads,
    /// Calls in progress.
    pub live: LiveCalls,
    /// Crisis announcements (shared with the calls).
    pub announcements: announce::Announcements,
    /// Callback queue and mail outbox (None in tests that need neither).
    pub integrations: Option<Arc<Integrations>>,
    /// Speech synthesis, to render an announcement at once.
    pub tts: Option<Arc<dyn TextToSpeech>>,
    /// Wall clock.
    pub clock: Arc<dyn WallClock>,
    /// Call-record settings.
    pub records: RecordsView,
    /// Browser calls (None: `[webrtc]` off, or a test without calls).
    pub softphone: Option<crate::webrtc::Softphone>,
}

/// Why the console could not start.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Its tables cannot be created or read.
    #[error("console database: {0}")]
    Db(#[from] sqlx::Error),
}

impl ConsoleState {
    /// Creates the console's tables (idempotent) and the state.
    ///
    /// # Errors
    /// [`ConsoleError::Db`].
    pub async fn open(parts: ConsoleParts) -> Result<Self, ConsoleError> {
        accounts::Accounts::create_tables(&parts.db).await?;
        audit::Audit::create_tables(&parts.db).await?;
        announce::create_tables(&parts.db).await?;
        // KPIs and transcripts read the call-record tables even when this
        // instance does not write them.
        let _ = crate::records::Records::open(parts.db.clone()).await;
        parts.announcements.refresh(&parts.db).await?;
        let limiter = auth::LoginLimiter::new(
            parts.cfg.login_failures,
            std::time::Duration::from_secs(parts.cfg.login_window_s),
        );
        Ok(ConsoleState {
            inner: Arc::new(Inner {
                accounts: accounts::Accounts::new(parts.db.clone()),
                audit: audit::Audit::new(parts.db.clone()),
                limiter,
                cfg: parts.cfg,
                db: parts.db,
                flows: parts.flows,
                reloads: parts.reloads,
                live: parts.live,
                announcements: parts.announcements,
                integrations: parts.integrations,
                tts: parts.tts,
                clock: parts.clock,
                records: parts.records,
                softphone: parts.softphone,
            }),
        })
    }

    /// Accounts.
    pub fn accounts(&self) -> &accounts::Accounts {
        &self.inner.accounts
    }

    /// The audit log.
    pub fn audit(&self) -> &audit::Audit {
        &self.inner.audit
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// `[console]`.
    pub fn config(&self) -> &ConsoleConfig {
        &self.inner.cfg
    }

    /// The wall clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now_utc()
    }

    /// Ids and names of every loaded municipality.
    pub fn municipalities(&self) -> Vec<(String, String)> {
        self.inner
            .flows
            .snapshot()
            .municipalities
            .values()
            .map(|m| (m.id.clone(), m.name.clone()))
            .collect()
    }
}

/// The console's routes: `/api/v1/...` and `/console/...` (and `/` leading there).
pub fn router(state: ConsoleState) -> Router {
    api::router(state.clone()).merge(pages::router(state))
}

/// `/metrics` restricted by `[console] metrics_allow` (client addresses)
/// and `metrics_token` (bearer token): with either set, a request that
/// matches neither gets 401. With neither set, `app` is returned as it is.
pub fn guard_metrics(app: Router, cfg: &ConsoleConfig) -> Router {
    use axum::extract::{ConnectInfo, Request};
    use axum::middleware::Next;
    use axum::response::IntoResponse;
    if cfg.metrics_allow.is_empty() && cfg.metrics_token.is_none() {
        return app;
    }
    let allow = Arc::new(cfg.metrics_allow.clone());
    let token = Arc::new(cfg.metrics_token.clone());
    app.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let (allow, token) = (allow.clone(), token.clone());
            async move {
                if req.uri().path() != "/metrics" {
                    return next.run(req).await;
                }
                let ip = req
                    .extensions()
                    .get::<ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.ip());
                let by_addr = ip.is_some_and(|ip| allow.contains(&ip));
                let by_token = token.as_deref().is_some_and(|t| {
                    req.headers()
                        .get(axum::http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .is_some_and(|b| b.trim() == t)
                });
                if by_addr || by_token {
                    next.run(req).await
                } else {
                    (axum::http::StatusCode::UNAUTHORIZED, "unauthorized\n").into_response()
                }
            }
        },
    ))
}
