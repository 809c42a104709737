//! The admin API, `/api/v1`: everything the console does, as JSON,
//! documented by an OpenAPI description generated from these handlers
//! (`/api/v1/openapi.json`).
//!
//! - Errors are `{"error": {"code": "...", "message": "..."}}` with stable
//!   codes: `unauthenticated` (401), `csrf` (403), `forbidden` (403),
//!   `not_found` (404), `bad_request` (400), `rate_limited` (429),
//!   `internal` (500), `unavailable` (503).
//! - Every request but the login needs a session or a token; without one
//!   the answer is 401 whatever the path (an unknown path included), so an
//!   unauthenticated client learns nothing about what exists.
//! - Municipality-scoped data lives under `/api/v1/municipalities/{m}/...`:
//!   a municipality the operator may not see is answered exactly like one
//!   that does not exist (404).
//! - Lists take `limit` (default 50, at most 500) and `offset` and answer
//!   `{"items": [...], "offset": n, "next_offset": n|null}`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use ivr_core::{CallId, Lang};
use ivr_integrations::callback::{CallbackKind, CallbackState, ListFilter};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use super::accounts::{Operator, Role, Scope, TokenInfo};
use super::announce::Crisis;
use super::audit::AuditEntry;
use super::auth::{Authed, COOKIE};
use super::kpi::{self, KpiReport, Period, Quarter, QuarterRow};
use super::{on_pool, ConsoleState, FlowStatus};
use crate::live::{mask_number, LiveCall};

/// An API error with a stable code.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// No valid session or token.
    Unauthenticated,
    /// A change made with a session cookie lacked its CSRF token.
    Csrf,
    /// The account's role may not do this.
    Forbidden,
    /// No such thing, or not the operator's to see.
    NotFound,
    /// The request is malformed.
    BadRequest(String),
    /// Too many failed logins; retry after this many seconds.
    RateLimited(u64),
    /// Something failed inside (logged, not shown).
    Internal,
    /// The service cannot take this now (busy, or switched off); the
    /// message says which.
    Unavailable(String),
}

/// The error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable code.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl ApiError {
    /// An internal failure, logged here.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::warn!(error = %e, "console API failure");
        ApiError::Internal
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "log in first".to_string(),
            ),
            ApiError::Csrf => (
                StatusCode::FORBIDDEN,
                "csrf",
                "missing or wrong X-CSRF-Token".to_string(),
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "your role may not do this".to_string(),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", "not found".to_string()),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m.clone()),
            ApiError::RateLimited(s) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many failed logins; try again in {s} s"),
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".to_string(),
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m.clone()),
        };
        let mut r = (
            status,
            Json(ErrorBody {
                error: ErrorDetail { code, message },
            }),
        )
            .into_response();
        if let ApiError::RateLimited(s) = self {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PageOf<T> {
    /// The items.
    pub items: Vec<T>,
    /// Offset of the first item.
    pub offset: u32,
    /// Offset of the next page (null: this is the last).
    pub next_offset: Option<u32>,
}

/// `limit` and `offset`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct Paging {
    /// At most this many (default 50, at most 500).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

impl Paging {
    fn limit(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, 500)
    }
    fn offset(&self) -> u32 {
        self.offset.unwrap_or(0)
    }
    fn page<T>(&self, all: Vec<T>) -> PageOf<T> {
        let (limit, offset) = (self.limit() as usize, self.offset() as usize);
        let total = all.len();
        let items: Vec<T> = all.into_iter().skip(offset).take(limit).collect();
        let next = (offset + items.len() < total).then(|| (offset + items.len()) as u32);
        PageOf {
            items,
            offset: offset as u32,
            next_offset: next,
        }
    }
}

/// The client's address, when the listener records it.
struct ClientAddr(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Checks that `op` may see municipality `m` and that it exists.
fn visible(s: &ConsoleState, op: &Operator, m: &str) -> ApiResult<()> {
    if op.sees(m) && s.inner.flows.snapshot().municipalities.contains_key(m) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

fn may_change(op: &Operator) -> ApiResult<()> {
    if op.may_change() {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

async fn audit(
    s: &ConsoleState,
    op: &Operator,
    action: &str,
    m: &str,
    target: &str,
    detail: &str,
) -> ApiResult<()> {
    s.audit()
        .write(&AuditEntry {
            at: s.now(),
            username: op.username.clone(),
            action: action.into(),
            municipality: m.into(),
            target: target.into(),
            detail: detail.into(),
        })
        .await
        .map_err(ApiError::internal)
}

// ---- session ---------------------------------------------------------------

/// Login request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Login {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Who is logged in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The account.
    pub operator: Operator,
    /// Send this as `X-CSRF-Token` with every change (null for token requests).
    pub csrf_token: Option<String>,
    /// Municipalities the account sees: id and name.
    pub municipalities: Vec<MunicipalityInfo>,
}

/// A municipality.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MunicipalityInfo {
    /// Id (folder name).
    pub id: String,
    /// Name.
    pub name: String,
}

fn my_municipalities(s: &ConsoleState, op: &Operator) -> Vec<MunicipalityInfo> {
    s.municipalities()
        .into_iter()
        .filter(|(id, _)| op.sees(id))
        .map(|(id, name)| MunicipalityInfo { id, name })
        .collect()
}

/// Log in: sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session", request_body = Login,
    responses((status = 200, body = Me), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(s): State<ConsoleState>,
    ClientAddr(addr): ClientAddr,
    Json(l): Json<Login>,
) -> ApiResult<Response> {
    let t = std::time::Instant::now();
    if let Some(wait) = s.inner.limiter.blocked(&l.username, addr, t) {
        return Err(ApiError::RateLimited(wait));
    }
    let Some(op) = s
        .accounts()
        .verify(&l.username, &l.password)
        .await
        .map_err(ApiError::internal)?
    else {
        s.inner.limiter.failed(&l.username, addr, t);
        tracing::info!("console login failed");
        return Err(ApiError::Unauthenticated);
    };
    s.inner.limiter.succeeded(&l.username);
    let session = s
        .accounts()
        .open_session(&op.username, s.now(), s.config().session_hours)
        .await
        .map_err(ApiError::internal)?;
    audit(&s, &op, "login", "", &op.username, "").await?;
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        session.token,
        i64::from(s.config().session_hours) * 3600,
        if s.config().secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    let me = Me {
        municipalities: my_municipalities(&s, &op),
        operator: op,
        csrf_token: Some(session.csrf),
    };
    let mut r = Json(me).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// Who is logged in.
#[utoipa::path(get, path = "/api/v1/session", responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn whoami(State(s): State<ConsoleState>, a: Authed) -> Json<Me> {
    Json(Me {
        municipalities: my_municipalities(&s, &a.op),
        operator: a.op,
        csrf_token: a.csrf,
    })
}

/// Log out.
#[utoipa::path(delete, path = "/api/v1/session", responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(State(s): State<ConsoleState>, a: Authed) -> ApiResult<Response> {
    if let Some(t) = &a.session {
        s.accounts()
            .close_session(t)
            .await
            .map_err(ApiError::internal)?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("ivr_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(r)
}

// ---- tokens ----------------------------------------------------------------

/// A new token's name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    /// What it is for.
    pub name: String,
}

/// A token issued: the secret is shown only now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// Send as `Authorization: Bearer <secret>`.
    pub secret: String,
    /// The token.
    pub token: TokenInfo,
}

/// Your API tokens.
#[utoipa::path(get, path = "/api/v1/tokens", responses((status = 200, body = [TokenInfo])))]
async fn list_tokens(State(s): State<ConsoleState>, a: Authed) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(
        s.accounts()
            .tokens(&a.op.username)
            .await
            .map_err(ApiError::internal)?,
    ))
}

/// Issue an API token for scripts (acts as you).
#[utoipa::path(post, path = "/api/v1/tokens", request_body = NewToken, responses((status = 200, body = IssuedToken)))]
async fn issue_token(
    State(s): State<ConsoleState>,
    a: Authed,
    Json(n): Json<NewToken>,
) -> ApiResult<Json<IssuedToken>> {
    let (secret, token) = s
        .accounts()
        .issue_token(&a.op.username, &n.name, s.now())
        .await
        .map_err(ApiError::internal)?;
    audit(&s, &a.op, "token.issue", "", &token.id, &token.name).await?;
    Ok(Json(IssuedToken { secret, token }))
}

/// Revoke one of your tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if !s
        .accounts()
        .revoke_token(&a.op.username, &id)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::NotFound);
    }
    audit(&s, &a.op, "token.revoke", "", &id, "").await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- municipalities, live --------------------------------------------------

/// Municipalities you see.
#[utoipa::path(get, path = "/api/v1/municipalities", responses((status = 200, body = [MunicipalityInfo])))]
async fn municipalities(State(s): State<ConsoleState>, a: Authed) -> Json<Vec<MunicipalityInfo>> {
    Json(my_municipalities(&s, &a.op))
}

/// Calls in progress in every municipality you see.
#[utoipa::path(get, path = "/api/v1/live", responses((status = 200, body = [LiveCall])))]
async fn live_all(State(s): State<ConsoleState>, a: Authed) -> Json<Vec<LiveCall>> {
    Json(s.inner.live.list(|m| a.op.sees(m)))
}

/// Calls in progress in municipality `m`.
#[utoipa::path(get, path = "/api/v1/municipalities/{m}/live", responses((status = 200, body = [LiveCall]), (status = 404, body = ErrorBody)))]
async fn live_one(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
) -> ApiResult<Json<Vec<LiveCall>>> {
    visible(&s, &a.op, &m)?;
    Ok(Json(s.inner.live.list(|x| x == m)))
}

// ---- KPIs --------------------------------------------------------------------

/// The range and cut of a KPI report.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct KpiQuery {
    /// Cut into `day`, `week`, `month` or `quarter` (default `day`).
    pub period: Option<Period>,
    /// First instant (RFC 3339; default: the current quarter's start).
    pub from: Option<DateTime<Utc>>,
    /// First instant not covered (default: the current quarter's end).
    pub to: Option<DateTime<Utc>>,
    /// A quarter (`2026Q4`) instead of `from`/`to`.
    pub quarter: Option<String>,
}

fn kpi_range(s: &ConsoleState, q: &KpiQuery) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    if let Some(qs) = &q.quarter {
        let quarter = Quarter::parse(qs)
            .ok_or_else(|| ApiError::BadRequest("quarter: like 2026Q4".into()))?;
        return Ok(quarter.range());
    }
    let (qa, qb) = Quarter::of(s.now()).range();
    let (from, to) = (q.from.unwrap_or(qa), q.to.unwrap_or(qb));
    if to <= from || to - from > Duration::days(3 * 366) {
        return Err(ApiError::BadRequest(
            "from must be before to, at most three years apart".into(),
        ));
    }
    Ok((from, to))
}

/// KPIs over every municipality you see (a municipality-scoped account: its own).
#[utoipa::path(get, path = "/api/v1/kpis", params(KpiQuery), responses((status = 200, body = KpiReport)))]
async fn kpis_all(
    State(s): State<ConsoleState>,
    a: Authed,
    Query(q): Query<KpiQuery>,
) -> ApiResult<Json<KpiReport>> {
    let (from, to) = kpi_range(&s, &q)?;
    let m = match &a.op.scope {
        Scope::Central => None,
        Scope::Municipality(m) => Some(m.as_str()),
    };
    let r = kpi::report(s.db(), m, from, to, q.period.unwrap_or(Period::Day))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(r))
}

/// KPIs of municipality `m`.
#[utoipa::path(get, path = "/api/v1/municipalities/{m}/kpis", params(KpiQuery), responses((status = 200, body = KpiReport), (status = 404, body = ErrorBody)))]
async fn kpis_one(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
    Query(q): Query<KpiQuery>,
) -> ApiResult<Json<KpiReport>> {
    visible(&s, &a.op, &m)?;
    let (from, to) = kpi_range(&s, &q)?;
    let r = kpi::report(s.db(), Some(&m), from, to, q.period.unwrap_or(Period::Day))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(r))
}

/// Which quarter and format to export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExportQuery {
    /// `2026Q4` (default: the current quarter).
    pub quarter: Option<String>,
    /// `csv` (default) or `json`.
    pub format: Option<String>,
}

async fn quarter_rows(
    s: &ConsoleState,
    ms: &[String],
    q: &ExportQuery,
) -> ApiResult<(Quarter, Vec<QuarterRow>)> {
    let quarter = match &q.quarter {
        Some(x) => {
            Quarter::parse(x).ok_or_else(|| ApiError::BadRequest("quarter: like 2026Q4".into()))?
        }
        None => Quarter::of(s.now()),
    };
    let (from, to) = quarter.range();
    let mut rows = Vec::new();
    for m in ms {
        let r = kpi::report(s.db(), Some(m), from, to, Period::Quarter)
            .await
            .map_err(ApiError::internal)?;
        rows.push(QuarterRow::from_report(&r, quarter));
    }
    Ok((quarter, rows))
}

fn export_response(
    quarter: Quarter,
    rows: Vec<QuarterRow>,
    format: Option<&str>,
) -> ApiResult<Response> {
    match format.unwrap_or("csv") {
        "csv" => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"ivr-kpi-{quarter}.csv\""),
                ),
            ],
            kpi::quarter_csv(&rows),
        )
            .into_response()),
        "json" => Ok(Json(rows).into_response()),
        _ => Err(ApiError::BadRequest("format: csv or json".into())),
    }
}

/// The quarterly export of municipality `m` (one row; the format shared by all).
#[utoipa::path(get, path = "/api/v1/municipalities/{m}/export", params(ExportQuery),
    responses((status = 200, description = "CSV (text/csv) or JSON rows", body = [QuarterRow]), (status = 404, body = ErrorBody)))]
async fn export_one(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    visible(&s, &a.op, &m)?;
    let (quarter, rows) = quarter_rows(&s, &[m], &q).await?;
    export_response(quarter, rows, q.format.as_deref())
}

/// The quarterly export of every municipality you see, one row each.
#[utoipa::path(get, path = "/api/v1/export", params(ExportQuery),
    responses((status = 200, description = "CSV (text/csv) or JSON rows", body = [QuarterRow])))]
async fn export_all(
    State(s): State<ConsoleState>,
    a: Authed,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let ms: Vec<String> = my_municipalities(&s, &a.op)
        .into_iter()
        .map(|m| m.id)
        .collect();
    let (quarter, rows) = quarter_rows(&s, &ms, &q).await?;
    export_response(quarter, rows, q.format.as_deref())
}

// ---- callbacks and mails -----------------------------------------------------

/// A callback request as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackItem {
    /// The call that ordered it.
    pub call_ref: String,
    /// Kind.
    pub kind: String,
    /// Number to call (masked unless your role sees personal data).
    pub phone: String,
    /// Topic.
    pub topic: String,
    /// Language.
    pub lang: String,
    /// Earliest time to call.
    pub window_start: DateTime<Utc>,
    /// Latest time to call.
    pub window_end: DateTime<Utc>,
    /// Ordered.
    pub created_at: DateTime<Utc>,
    /// `requested`, `handed_off`, `done` or `failed`.
    pub state: String,
    /// Hand-off attempts.
    pub attempts: u32,
    /// Last hand-off error.
    pub last_error: Option<String>,
    /// Marked done.
    pub done_at: Option<DateTime<Utc>>,
    /// The operator who last marked it done or retried it.
    pub handled_by: Option<String>,
}

/// Which callbacks.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CallbackQuery {
    /// Only this state: `requested`, `handed_off`, `done` or `failed`.
    pub state: Option<String>,
    /// At most this many.
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

async fn handlers_of(
    s: &ConsoleState,
    m: &str,
    prefix: &str,
) -> ApiResult<HashMap<String, String>> {
    let entries = s
        .audit()
        .list(Some(m), 500, 0)
        .await
        .map_err(ApiError::internal)?;
    let mut by = HashMap::new();
    for e in entries.into_iter().filter(|e| e.action.starts_with(prefix)) {
        by.entry(e.target).or_insert(e.username);
    }
    Ok(by)
}

fn integrations(s: &ConsoleState) -> ApiResult<&ivr_integrations::Integrations> {
    s.inner.integrations.as_deref().ok_or(ApiError::NotFound)
}

/// Callback requests of municipality `m`, oldest first.
#[utoipa::path(get, path = "/api/v1/municipalities/{m}/callbacks", params(CallbackQuery),
    responses((status = 200, body = PageOf<CallbackItem>), (status = 404, body = ErrorBody)))]
async fn callbacks(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Json<PageOf<CallbackItem>>> {
    visible(&s, &a.op, &m)?;
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(x) => Some(
            [
                CallbackState::Requested,
                CallbackState::HandedOff,
                CallbackState::Done,
                CallbackState::Failed,
            ]
            .into_iter()
            .find(|c| c.as_str() == x)
            .ok_or_else(|| {
                ApiError::BadRequest("state: requested, handed_off, done or failed".into())
            })?,
        ),
    };
    let list = integrations(&s)?
        .callbacks()
        .list(&ListFilter {
            state,
            municipality: Some(m.clone()),
            limit: None,
        })
        .await
        .map_err(ApiError::internal)?;
    let by = handlers_of(&s, &m, "callback.").await?;
    let personal = a.op.sees_personal_data();
    let items = list
        .into_iter()
        .map(|r| {
            let target = format!("{}/{}", r.request.call_ref, r.request.kind.as_str());
            CallbackItem {
                handled_by: by.get(&target).cloned(),
                call_ref: r.request.call_ref.to_string(),
                kind: r.request.kind.as_str().to_string(),
                phone: if personal {
                    r.request.phone.expose().clone()
                } else {
                    mask_number(r.request.phone.expose())
                },
                topic: r.request.topic,
                lang: r.request.lang.code().to_string(),
                window_start: r.request.window.start,
                window_end: r.request.window.end,
                created_at: r.created_at,
                state: r.state.as_str().to_string(),
                attempts: r.attempts,
                last_error: r.last_error,
                done_at: r.done_at,
            }
        })
        .collect();
    let paging = Paging {
        limit: q.limit,
        offset: q.offset,
    };
    Ok(Json(paging.page(items)))
}

/// What a change did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Done {
    /// Always true.
    pub ok: bool,
}

async fn callback_in(
    s: &ConsoleState,
    m: &str,
    call_ref: &str,
    kind: &str,
) -> ApiResult<(CallId, CallbackKind)> {
    let kind = CallbackKind::new(kind).map_err(|_| ApiError::NotFound)?;
    let id = CallId::new(call_ref);
    let r = integrations(s)?
        .callbacks()
        .get(&id, &kind)
        .await
        .map_err(|e| match e {
            ivr_integrations::db::StoreError::NotFound => ApiError::NotFound,
            e => ApiError::internal(e),
        })?;
    if r.request.municipality != m {
        return Err(ApiError::NotFound);
    }
    Ok((id, kind))
}

/// Mark a callback served.
#[utoipa::path(post, path = "/api/v1/municipalities/{m}/callbacks/{call_ref}/{kind}/done",
    responses((status = 200, body = Done), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn callback_done(
    State(s): State<ConsoleState>,
    a: Authed,
    Path((m, call_ref, kind)): Path<(String, String, String)>,
) -> ApiResult<Json<Done>> {
    callback_action(&s, &a, &m, &call_ref, &kind, CallbackAction::Done).await
}

/// Retry a failed callback's hand-off.
#[utoipa::path(post, path = "/api/v1/municipalities/{m}/callbacks/{call_ref}/{kind}/retry",
    responses((status = 200, body = Done), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn callback_retry(
    State(s): State<ConsoleState>,
    a: Authed,
    Path((m, call_ref, kind)): Path<(String, String, String)>,
) -> ApiResult<Json<Done>> {
    callback_action(&s, &a, &m, &call_ref, &kind, CallbackAction::Retry).await
}

/// What an operator does to one callback.
#[derive(Clone, Copy)]
enum CallbackAction {
    Done,
    Retry,
}

/// One operator action on a callback: in scope, allowed to change, done,
/// audited.
async fn callback_action(
    s: &ConsoleState,
    a: &Authed,
    m: &str,
    call_ref: &str,
    kind: &str,
    action: CallbackAction,
) -> ApiResult<Json<Done>> {
    visible(s, &a.op, m)?;
    let (id, k) = callback_in(s, m, call_ref, kind).await?;
    may_change(&a.op)?;
    let callbacks = integrations(s)?.callbacks();
    let (done, refused, what) = match action {
        CallbackAction::Done => (
            callbacks.mark_done(&id, &k, s.now()).await,
            "not in a state that can be marked done",
            "callback.done",
        ),
        CallbackAction::Retry => (
            callbacks.retry_failed(&id, &k, s.now()).await,
            "only a failed callback can be retried",
            "callback.retry",
        ),
    };
    done.map_err(|_| ApiError::BadRequest(refused.into()))?;
    audit(s, &a.op, what, m, &format!("{call_ref}/{kind}"), "").await?;
    Ok(Json(Done { ok: true }))
}

/// A mail as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MailItem {
    /// Idempotency key.
    pub key: String,
    /// Kind.
    pub kind: String,
    /// Recipient mailbox (the municipality's own).
    pub to: String,
    /// Subject (masked unless your role sees personal data).
    pub subject: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    /// Attempts.
    pub attempts: u32,
    /// Last error.
    pub last_error: Option<String>,
    /// Queued.
    pub created_at: DateTime<Utc>,
    /// Sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// The operator who last retried it.
    pub handled_by: Option<String>,
}

/// Mails of municipality `m`.
#[utoipa::path(get, path = "/api/v1/municipalities/{m}/mails", params(Paging),
    responses((status = 200, body = PageOf<MailItem>), (status = 404, body = ErrorBody)))]
async fn mails(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
    Query(p): Query<Paging>,
) -> ApiResult<Json<PageOf<MailItem>>> {
    visible(&s, &a.op, &m)?;
    let list = integrations(&s)?
        .outbox()
        .list(None)
        .await
        .map_err(ApiError::internal)?;
    let by = handlers_of(&s, &m, "mail.").await?;
    let personal = a.op.sees_personal_data();
    let items = list
        .into_iter()
        .filter(|r| r.mail.municipality == m)
        .map(|r| MailItem {
            handled_by: by.get(&r.mail.key).cloned(),
            key: r.mail.key.clone(),
            kind: r.mail.kind.as_str().to_string(),
            to: r.mail.to.clone(),
            subject: if personal {
                r.mail.subject.expose().clone()
            } else {
                "•••".into()
            },
            state: r.state.as_str().to_string(),
            attempts: r.attempts,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
        })
        .collect();
    Ok(Json(p.page(items)))
}

/// Retry a failed mail.
#[utoipa::path(post, path = "/api/v1/municipalities/{m}/mails/{key}/retry",
    responses((status = 200, body = Done), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn mail_retry(
    State(s): State<ConsoleState>,
    a: Authed,
    Path((m, key)): Path<(String, String)>,
) -> ApiResult<Json<Done>> {
    visible(&s, &a.op, &m)?;
    let outbox = integrations(&s)?.outbox();
    let r = outbox.get(&key).await.map_err(|_| ApiError::NotFound)?;
    if r.mail.municipality != m {
        return Err(ApiError::NotFound);
    }
    may_change(&a.op)?;
    outbox
        .retry_failed(&key, s.now())
        .await
        .map_err(|_| ApiError::BadRequest("only a failed mail can be retried".into()))?;
    audit(&s, &a.op, "mail.retry", &m, &key, "").await?;
    Ok(Json(Done { ok: true }))
}

// ---- calls and transcripts ---------------------------------------------------

/// A finished call as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallItem {
    /// Call reference.
    pub call_ref: String,
    /// Caller (masked unless your role sees personal data).
    pub caller: String,
    /// Started.
    pub started_at: String,
    /// Ended.
    pub ended_at: String,
    /// Talk time, ms.
    pub talk_ms: i64,
    /// Outcome.
    pub outcome: String,
    /// Department transferred to.
    pub transferred_to: Option<String>,
    /// Language.
    pub lang: String,
    /// Caller turns.
    pub turns: i64,
    /// Whether what the caller said was kept.
    pub has_transcript: bool,
    /// When what was said is deleted (retention).
    pub transcript_deleted_after: Option<DateTime<Utc>>,
    /// Where the call came from: `phone`, or an operator's test call from
    /// the softphone, `browser` (published flow) or `draft`.
    pub origin: String,
}

type RecordRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    String,
    i64,
    Option<String>,
    String,
);

const RECORD_COLUMNS: &str = "call_ref, calling, started_at, ended_at, talk_ms, outcome, transferred_to, lang, turns, transcript, origin";

fn call_item(s: &ConsoleState, op: &Operator, r: RecordRow) -> CallItem {
    let (
        call_ref,
        calling,
        started_at,
        ended_at,
        talk_ms,
        outcome,
        transferred_to,
        lang,
        turns,
        transcript,
        origin,
    ) = r;
    let has = transcript.is_some();
    let deleted_after = DateTime::parse_from_rfc3339(&ended_at)
        .ok()
        .filter(|_| has)
        .map(|t| t.with_timezone(&Utc) + Duration::days(i64::from(s.inner.records.retention_days)));
    CallItem {
        call_ref,
        caller: if op.sees_personal_data() {
            calling
        } else {
            mask_number(&calling)
        },
        started_at,
        ended_at,
        talk_ms,
        outcome,
        transferred_to,
        lang,
        turns,
        has_transcript: has,
        transcript_deleted_after: deleted_after,
        origin,
    }
}

/// Finished calls of municipality `m`, newest first.
#[utoipa::path(get, path = "/api/v1/municipalities/{m}/calls", params(Paging),
    responses((status = 200, body = PageOf<CallItem>), (status = 404, body = ErrorBody)))]
async fn calls(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
    Query(p): Query<Paging>,
) -> ApiResult<Json<PageOf<CallItem>>> {
    visible(&s, &a.op, &m)?;
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM call_records WHERE municipality = $1 ORDER BY started_at DESC, call_ref LIMIT $2 OFFSET $3"
    );
    let rows: Vec<RecordRow> = on_pool!(s.db(), pool => sqlx::query_as(&sql)
        .bind(&m).bind(i64::from(p.limit()) + 1).bind(i64::from(p.offset()))
        .fetch_all(pool).await)
    .map_err(ApiError::internal)?;
    let more = rows.len() > p.limit() as usize;
    let items: Vec<CallItem> = rows
        .into_iter()
        .take(p.limit() as usize)
        .map(|r| call_item(&s, &a.op, r))
        .collect();
    let next = more.then(|| p.offset() + items.len() as u32);
    Ok(Json(PageOf {
        items,
        offset: p.offset(),
        next_offset: next,
    }))
}

/// What the bot said, from the stored `[{"text", "personal"}]`: personal
/// prompts masked unless `unmasked`.
fn said_texts(stored: &str, unmasked: bool) -> Vec<String> {
    #[derive(Deserialize)]
    struct Said {
        text: String,
        personal: bool,
    }
    let said: Vec<Said> = serde_json::from_str(stored).unwrap_or_default();
    said.into_iter()
        .map(|s| {
            if s.personal && !unmasked {
                "••• (personal)".to_string()
            } else {
                s.text
            }
        })
        .collect()
}

/// A `call_turns` row: input, step, intent, misunderstood, latency, heard, said.
type TurnDbRow = (
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<String>,
    String,
);

/// One turn of a transcript.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TurnItem {
    /// `start`, `speech`, `dtmf`, `no_input`.
    pub input: String,
    /// The step it answered.
    pub step: String,
    /// The intent it led to.
    pub intent: Option<String>,
    /// Not understood.
    pub misunderstood: bool,
    /// Turn latency, ms.
    pub latency_ms: Option<i64>,
    /// What the caller said (null: not kept; masked unless your role sees personal data).
    pub heard: Option<String>,
    /// What the bot said.
    pub said: Vec<String>,
}

/// A call's transcript.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Transcript {
    /// The call.
    pub call: CallItem,
    /// Steps run.
    pub steps: Vec<String>,
    /// Intents recognised.
    pub intents: Vec<String>,
    /// Turn by turn.
    pub turns: Vec<TurnItem>,
    /// Whether personal data is shown unmasked.
    pub unmasked: bool,
}

/// The transcript of one call (every view is written to the audit log).
#[utoipa::path(get, path = "/api/v1/municipalities/{m}/calls/{call_ref}",
    responses((status = 200, body = Transcript), (status = 404, body = ErrorBody)))]
async fn transcript(
    State(s): State<ConsoleState>,
    a: Authed,
    Path((m, call_ref)): Path<(String, String)>,
) -> ApiResult<Json<Transcript>> {
    visible(&s, &a.op, &m)?;
    let sql = format!(
        "SELECT {RECORD_COLUMNS}, steps, intents FROM call_records WHERE municipality = $1 AND call_ref = $2"
    );
    type Full = (
        String,
        String,
        String,
        String,
        i64,
        String,
        Option<String>,
        String,
        i64,
        Option<String>,
        String,
        String,
        String,
    );
    let row: Option<Full> = on_pool!(s.db(), pool => sqlx::query_as(&sql)
        .bind(&m).bind(&call_ref).fetch_optional(pool).await)
    .map_err(ApiError::internal)?;
    let Some(r) = row else {
        return Err(ApiError::NotFound);
    };
    let (steps, intents) = (r.11.clone(), r.12.clone());
    let record: RecordRow = (r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10);
    let turns: Vec<TurnDbRow> =
        on_pool!(s.db(), pool => sqlx::query_as(
            "SELECT input, step, intent, misunderstood, latency_ms, heard, said FROM call_turns WHERE call_ref = $1 ORDER BY seq")
            .bind(&call_ref).fetch_all(pool).await)
        .map_err(ApiError::internal)?;
    let unmasked = a.op.sees_personal_data();
    audit(
        &s,
        &a.op,
        "transcript.view",
        &m,
        &call_ref,
        if unmasked { "unmasked" } else { "masked" },
    )
    .await?;
    let mask = |t: String| {
        if unmasked {
            t
        } else {
            "•••".to_string()
        }
    };
    Ok(Json(Transcript {
        call: call_item(&s, &a.op, record),
        steps: serde_json::from_str(&steps).unwrap_or_default(),
        intents: serde_json::from_str(&intents).unwrap_or_default(),
        turns: turns
            .into_iter()
            .map(
                |(input, step, intent, mis, latency_ms, heard, said)| TurnItem {
                    input,
                    step,
                    intent,
                    misunderstood: mis != 0,
                    latency_ms,
                    heard: heard.map(mask),
                    said: said_texts(&said, unmasked),
                },
            )
            .collect(),
        unmasked,
    }))
}

// ---- flows -------------------------------------------------------------------

/// A municipality's loaded flows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlowInfo {
    /// Municipality id.
    pub municipality: String,
    /// Name.
    pub name: String,
    /// Languages, the default first.
    pub languages: Vec<String>,
    /// Flow names (own and shared).
    pub flows: Vec<String>,
    /// Departments.
    pub departments: Vec<String>,
    /// The deployment's load status.
    pub status: FlowStatus,
}

/// The flows loaded for municipality `m`, and the last reload.
#[utoipa::path(get, path = "/api/v1/municipalities/{m}/flows",
    responses((status = 200, body = FlowInfo), (status = 404, body = ErrorBody)))]
async fn flows(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
) -> ApiResult<Json<FlowInfo>> {
    visible(&s, &a.op, &m)?;
    let snap = s.inner.flows.snapshot();
    let muni = snap.municipalities.get(&m).ok_or(ApiError::NotFound)?;
    Ok(Json(FlowInfo {
        municipality: muni.id.clone(),
        name: muni.name.clone(),
        languages: muni
            .languages
            .iter()
            .map(|l| l.code().to_string())
            .collect(),
        flows: muni.flows.iter().map(|f| f.name.clone()).collect(),
        departments: muni.departments.keys().cloned().collect(),
        status: s.inner.reloads.status(),
    }))
}

/// The flow `name` of municipality `m` drawn as an SVG picture.
#[utoipa::path(get, path = "/api/v1/municipalities/{m}/flows/{name}/graph.svg",
    responses((status = 200, description = "image/svg+xml"), (status = 404, body = ErrorBody)))]
async fn flow_graph(
    State(s): State<ConsoleState>,
    a: Authed,
    Path((m, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    visible(&s, &a.op, &m)?;
    let snap = s.inner.flows.snapshot();
    let muni = snap.municipalities.get(&m).ok_or(ApiError::NotFound)?;
    let flow = muni
        .flows
        .iter()
        .find(|f| f.name == name)
        .cloned()
        .ok_or(ApiError::NotFound)?;
    let svg = tokio::task::spawn_blocking(move || super::graph::svg(&flow))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

// ---- announcements -------------------------------------------------------------

/// A crisis announcement to set.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetAnnouncement {
    /// Danish text.
    pub text_da: Option<String>,
    /// English text.
    pub text_en: Option<String>,
    /// Stops playing then (RFC 3339); or use `minutes`.
    pub expires_at: Option<DateTime<Utc>>,
    /// Plays for this many minutes from now.
    pub minutes: Option<u32>,
    /// A recording to play instead of the text (base64 of the file, at most 8 MiB).
    pub audio_base64: Option<String>,
    /// Its format: `wav`, `mp3`, `ogg` or `flac`.
    pub audio_format: Option<String>,
}

/// The announcement of municipality `m` (null: none in force).
#[utoipa::path(get, path = "/api/v1/municipalities/{m}/announcement",
    responses((status = 200, body = Option<Crisis>), (status = 404, body = ErrorBody)))]
async fn announcement(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
) -> ApiResult<Json<Option<Crisis>>> {
    visible(&s, &a.op, &m)?;
    Ok(Json(s.inner.announcements.get(&m, s.now())))
}

/// Set the crisis announcement of municipality `m`: new calls hear it
/// before their flow within seconds; it is synthesised at once.
#[utoipa::path(put, path = "/api/v1/municipalities/{m}/announcement", request_body = SetAnnouncement,
    responses((status = 200, body = Crisis), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_announcement(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
    Json(b): Json<SetAnnouncement>,
) -> ApiResult<Json<Crisis>> {
    visible(&s, &a.op, &m)?;
    may_change(&a.op)?;
    let clean = |t: Option<String>| t.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let (da, en) = (clean(b.text_da), clean(b.text_en));
    let rec = match (
        b.audio_base64.as_deref().filter(|a| !a.is_empty()),
        b.audio_format.as_deref(),
    ) {
        (None, _) => None,
        (Some(a), Some(f)) if super::announce::AUDIO_FORMATS.contains(&f) => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|_| ApiError::BadRequest("audio_base64 is not base64".into()))?;
            if bytes.is_empty() || bytes.len() > super::announce::MAX_AUDIO {
                return Err(ApiError::BadRequest(
                    "the recording is empty or over 8 MiB".into(),
                ));
            }
            Some(super::announce::Recording {
                bytes,
                format: f.to_string(),
            })
        }
        (Some(_), _) => {
            return Err(ApiError::BadRequest(
                "audio_format: wav, mp3, ogg or flac".into(),
            ))
        }
    };
    if da.is_none() && en.is_none() && rec.is_none() {
        return Err(ApiError::BadRequest(
            "give text_da, text_en or a recording".into(),
        ));
    }
    if [&da, &en].iter().any(|t| {
        t.as_ref()
            .is_some_and(|t| t.chars().count() > super::announce::MAX_TEXT)
    }) {
        return Err(ApiError::BadRequest(format!(
            "a text is at most {} characters",
            super::announce::MAX_TEXT
        )));
    }
    let now = s.now();
    let expires_at = match (b.expires_at, b.minutes) {
        (Some(t), _) => t,
        (None, Some(min)) => now + Duration::minutes(i64::from(min)),
        (None, None) => return Err(ApiError::BadRequest("give expires_at or minutes".into())),
    };
    if expires_at <= now || expires_at - now > Duration::days(31) {
        return Err(ApiError::BadRequest(
            "the expiry must be in the future, at most 31 days ahead".into(),
        ));
    }
    let c = Crisis {
        municipality: m.clone(),
        text_da: da,
        text_en: en,
        has_audio: rec.is_some(),
        expires_at,
        set_by: a.op.username.clone(),
        set_at: now,
    };
    // A recording is written and decoded now: one that cannot be played is refused.
    if let Some(r) = &rec {
        let file = s
            .inner
            .announcements
            .stage(&c, r)
            .map_err(ApiError::internal)?;
        if let Some(tts) = s.inner.tts.clone() {
            let check = file.clone();
            let ok = tokio::task::spawn_blocking(move || tts.prompt_file(&check).is_ok())
                .await
                .unwrap_or(false);
            if !ok {
                let _ = std::fs::remove_file(&file);
                return Err(ApiError::BadRequest(
                    "the recording cannot be decoded as the format given".into(),
                ));
            }
        }
    }
    // Synthesised now, so the first caller hears it without delay.
    if let Some(tts) = s.inner.tts.clone() {
        let texts: Vec<(Lang, String)> = c
            .texts()
            .into_iter()
            .map(|(l, t)| (l, t.to_string()))
            .collect();
        let r = tokio::task::spawn_blocking(move || {
            texts
                .iter()
                .try_for_each(|(l, t)| tts.prerender_lang(t, *l))
        })
        .await;
        if !matches!(r, Ok(Ok(()))) {
            tracing::warn!("crisis announcement not pre-rendered; calls synthesise it");
        }
    }
    s.inner
        .announcements
        .set(s.db(), c.clone(), rec.as_ref())
        .await
        .map_err(ApiError::internal)?;
    audit(
        &s,
        &a.op,
        "announcement.set",
        &m,
        &m,
        &format!(
            "until {}{}",
            expires_at.to_rfc3339(),
            if rec.is_some() { ", recording" } else { "" }
        ),
    )
    .await?;
    Ok(Json(c))
}

/// Clear the crisis announcement of municipality `m`.
#[utoipa::path(delete, path = "/api/v1/municipalities/{m}/announcement",
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn clear_announcement(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
) -> ApiResult<StatusCode> {
    visible(&s, &a.op, &m)?;
    may_change(&a.op)?;
    s.inner
        .announcements
        .clear(s.db(), &m)
        .await
        .map_err(ApiError::internal)?;
    audit(&s, &a.op, "announcement.clear", &m, &m, "").await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- browser calls (softphone) ----------------------------------------------

/// A browser call to place.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PlaceCall {
    /// The municipality whose flow to call.
    pub municipality: String,
    /// The browser's SDP offer (`RTCPeerConnection.createOffer`, ICE gathered).
    pub sdp: String,
    /// Call the municipality's draft instead of its published flow.
    #[serde(default)]
    pub draft: bool,
    /// Call the flow this phone number of the municipality leads to
    /// (default: its first number's).
    #[serde(default)]
    pub number: Option<String>,
}

fn softphone(s: &ConsoleState) -> ApiResult<&crate::webrtc::Softphone> {
    s.inner.softphone.as_ref().ok_or_else(|| {
        ApiError::Unavailable("browser calls are switched off ([webrtc] enabled)".into())
    })
}

/// Call a municipality's flow from the browser (WebRTC): send the SDP
/// offer, get the answer. Operators and supervisors only; audited.
#[utoipa::path(post, path = "/api/v1/calls/webrtc", request_body = PlaceCall,
    responses((status = 200, body = crate::webrtc::Placed), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn place_call(
    State(s): State<ConsoleState>,
    a: Authed,
    ClientAddr(ip): ClientAddr,
    Json(b): Json<PlaceCall>,
) -> ApiResult<Json<crate::webrtc::Placed>> {
    visible(&s, &a.op, &b.municipality)?;
    may_change(&a.op)?;
    let phone = softphone(&s)?;
    use crate::webrtc::WebRtcError as E;
    let client = ip.map(|ip| SocketAddr::new(ip, 0));
    let placed = if b.draft {
        let entry = match &b.number {
            Some(n) => Some(
                phone
                    .entry_of(&b.municipality, n)
                    .map_err(|_| ApiError::NotFound)?,
            ),
            None => None,
        };
        let drafts = s.inner.drafts.clone();
        let m = b.municipality.clone();
        let mut route = tokio::task::spawn_blocking(move || drafts.route(&m))
            .await
            .map_err(ApiError::internal)?
            .map_err(draft_error)?;
        if let Some(e) = entry {
            route.entry = e;
        }
        phone
            .place_route(
                &a.op.username,
                route,
                crate::records::CallOrigin::Draft,
                &b.sdp,
                client,
            )
            .await
    } else {
        phone
            .place(
                &a.op.username,
                &b.municipality,
                b.number.as_deref(),
                &b.sdp,
                client,
            )
            .await
    };
    let placed = placed.map_err(|e| match e {
        E::UnknownMunicipality | E::UnknownNumber => ApiError::NotFound,
        E::BadOffer(m) => ApiError::BadRequest(format!("SDP offer: {m}")),
        E::Busy | E::Disabled => ApiError::Unavailable(e.to_string()),
        other => ApiError::internal(other),
    })?;
    audit(
        &s,
        &a.op,
        "webrtc.call",
        &b.municipality,
        &placed.call_ref,
        if b.draft {
            "browser call to the draft"
        } else {
            "browser call to the published flow"
        },
    )
    .await?;
    Ok(Json(placed))
}

/// Where the operator's own browser call stands (step, last intent, ended).
#[utoipa::path(get, path = "/api/v1/calls/webrtc/{call_ref}",
    responses((status = 200, body = crate::webrtc::PhoneState), (status = 404, body = ErrorBody)))]
async fn call_state(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(call_ref): Path<String>,
) -> ApiResult<Json<crate::webrtc::PhoneState>> {
    softphone(&s)?
        .state(&a.op.username, &call_ref)
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// The flow debugger of the operator's own browser call, as server-sent
/// events: `heard` (transcript, confidence, language), `flow` (step,
/// intent, intent scores and other explanations, variables), `key`,
/// `integration`, `integration_result`, `turn` (timings in ms), `state`.
/// Each event's data is one JSON object with its `kind`. The stream ends
/// after the call has ended.
#[utoipa::path(get, path = "/api/v1/calls/webrtc/{call_ref}/events",
    responses((status = 200, description = "text/event-stream"), (status = 404, body = ErrorBody)))]
async fn call_events(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(call_ref): Path<String>,
) -> ApiResult<Response> {
    let log = softphone(&s)?
        .debug_log(&a.op.username, &call_ref)
        .ok_or(ApiError::NotFound)?;
    Ok(crate::webrtc::debugger::stream(log).into_response())
}

/// Hang up the operator's own browser call.
#[utoipa::path(delete, path = "/api/v1/calls/webrtc/{call_ref}",
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn hang_up_call(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(call_ref): Path<String>,
) -> ApiResult<StatusCode> {
    if softphone(&s)?.hang_up(&a.op.username, &call_ref).await {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

// ---- draft flows -------------------------------------------------------------

use super::drafts::{CheckReport, DraftError, DraftFile};

fn draft_error(e: DraftError) -> ApiError {
    match e {
        DraftError::NoDraft | DraftError::NoPrevious => ApiError::NotFound,
        DraftError::Invalid(errors) => {
            ApiError::BadRequest(format!("the draft has errors: {}", errors.join("; ")))
        }
        DraftError::Io(e) => ApiError::internal(e),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// Runs a draft operation off the async threads (files, flow loading).
async fn on_drafts<T: Send + 'static>(
    s: &ConsoleState,
    f: impl FnOnce(&super::drafts::Drafts) -> Result<T, DraftError> + Send + 'static,
) -> ApiResult<T> {
    let d = s.inner.drafts.clone();
    tokio::task::spawn_blocking(move || f(&d))
        .await
        .map_err(ApiError::internal)?
        .map_err(draft_error)
}

/// A municipality's draft.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DraftView {
    /// A draft exists.
    pub exists: bool,
    /// A previous version can be restored.
    pub has_previous: bool,
    /// The draft's files.
    pub files: Vec<DraftFile>,
    /// `ivr check` on the draft (null without one).
    pub check: Option<CheckReport>,
}

/// A draft file's new text.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DraftText {
    /// The file's text (TOML).
    pub text: String,
}

async fn draft_view(s: &ConsoleState, m: &str) -> ApiResult<DraftView> {
    let m = m.to_string();
    on_drafts(s, move |d| {
        let has_previous = d.has_previous(&m);
        if !d.exists(&m) {
            return Ok(DraftView {
                exists: false,
                has_previous,
                files: Vec::new(),
                check: None,
            });
        }
        Ok(DraftView {
            exists: true,
            has_previous,
            files: d.files(&m)?,
            check: Some(d.check(&m)?),
        })
    })
    .await
}

/// Municipality `m`'s draft: its files and what `ivr check` says of it.
#[utoipa::path(get, path = "/api/v1/municipalities/{m}/draft",
    responses((status = 200, body = DraftView), (status = 404, body = ErrorBody)))]
async fn get_draft(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
) -> ApiResult<Json<DraftView>> {
    visible(&s, &a.op, &m)?;
    may_change(&a.op)?;
    Ok(Json(draft_view(&s, &m).await?))
}

/// Start a draft of `m` from its published flows (replacing any draft).
#[utoipa::path(post, path = "/api/v1/municipalities/{m}/draft",
    responses((status = 200, body = DraftView), (status = 404, body = ErrorBody)))]
async fn create_draft(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
) -> ApiResult<Json<DraftView>> {
    visible(&s, &a.op, &m)?;
    may_change(&a.op)?;
    let mm = m.clone();
    on_drafts(&s, move |d| d.create(&mm)).await?;
    audit(
        &s,
        &a.op,
        "draft.create",
        &m,
        &m,
        "from the published flows",
    )
    .await?;
    Ok(Json(draft_view(&s, &m).await?))
}

/// Drop `m`'s draft.
#[utoipa::path(delete, path = "/api/v1/municipalities/{m}/draft",
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn discard_draft(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
) -> ApiResult<StatusCode> {
    visible(&s, &a.op, &m)?;
    may_change(&a.op)?;
    let mm = m.clone();
    on_drafts(&s, move |d| d.discard(&mm)).await?;
    audit(&s, &a.op, "draft.discard", &m, &m, "").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Write (upload or edit) one file of `m`'s draft; the answer holds the
/// draft and its check.
#[utoipa::path(put, path = "/api/v1/municipalities/{m}/draft/files/{name}", request_body = DraftText,
    responses((status = 200, body = DraftView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn put_draft_file(
    State(s): State<ConsoleState>,
    a: Authed,
    Path((m, name)): Path<(String, String)>,
    Json(b): Json<DraftText>,
) -> ApiResult<Json<DraftView>> {
    visible(&s, &a.op, &m)?;
    may_change(&a.op)?;
    let (mm, nn) = (m.clone(), name.clone());
    on_drafts(&s, move |d| d.write(&mm, &nn, &b.text)).await?;
    audit(&s, &a.op, "draft.edit", &m, &name, "").await?;
    Ok(Json(draft_view(&s, &m).await?))
}

/// Publish `m`'s draft: the flows change and reload now (new calls get it;
/// calls in progress keep theirs); the version before is kept for restore.
/// Refused while the draft has errors.
#[utoipa::path(post, path = "/api/v1/municipalities/{m}/draft/publish",
    responses((status = 200, body = DraftView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn publish_draft(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
) -> ApiResult<Json<DraftView>> {
    visible(&s, &a.op, &m)?;
    may_change(&a.op)?;
    let mm = m.clone();
    on_drafts(&s, move |d| d.publish(&mm)).await?;
    let version = crate::version::folder_version_or_unreadable(s.inner.drafts.flows_dir());
    s.inner.reloads.loaded(s.now(), version);
    audit(&s, &a.op, "draft.publish", &m, &m, "").await?;
    Ok(Json(draft_view(&s, &m).await?))
}

/// Restore the version of `m`'s flows before the last publish.
#[utoipa::path(post, path = "/api/v1/municipalities/{m}/draft/restore",
    responses((status = 200, body = DraftView), (status = 404, body = ErrorBody)))]
async fn restore_flows(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
) -> ApiResult<Json<DraftView>> {
    visible(&s, &a.op, &m)?;
    may_change(&a.op)?;
    let mm = m.clone();
    on_drafts(&s, move |d| d.restore(&mm)).await?;
    let version = crate::version::folder_version_or_unreadable(s.inner.drafts.flows_dir());
    s.inner.reloads.loaded(s.now(), version);
    audit(
        &s,
        &a.op,
        "draft.restore",
        &m,
        &m,
        "the version before the last publish",
    )
    .await?;
    Ok(Json(draft_view(&s, &m).await?))
}

// ---- audit -------------------------------------------------------------------

/// The audit log of municipality `m`, newest first.
#[utoipa::path(get, path = "/api/v1/municipalities/{m}/audit", params(Paging),
    responses((status = 200, body = PageOf<AuditEntry>), (status = 404, body = ErrorBody)))]
async fn audit_one(
    State(s): State<ConsoleState>,
    a: Authed,
    Path(m): Path<String>,
    Query(p): Query<Paging>,
) -> ApiResult<Json<PageOf<AuditEntry>>> {
    visible(&s, &a.op, &m)?;
    let items = s
        .audit()
        .list(Some(&m), p.limit() + 1, p.offset())
        .await
        .map_err(ApiError::internal)?;
    let more = items.len() > p.limit() as usize;
    let items: Vec<AuditEntry> = items.into_iter().take(p.limit() as usize).collect();
    let next = more.then(|| p.offset() + items.len() as u32);
    Ok(Json(PageOf {
        items,
        offset: p.offset(),
        next_offset: next,
    }))
}

// ---- accounts (central supervisors) -----------------------------------------

/// A new account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    /// User name (a-z, 0-9, _ or -).
    pub username: String,
    /// Password (at least 10 characters).
    pub password: String,
    /// `central` or a municipality id.
    pub scope: String,
    /// Role.
    pub role: Role,
}

/// Every account (central supervisors only).
#[utoipa::path(get, path = "/api/v1/users", responses((status = 200, body = [super::accounts::UserInfo]), (status = 403, body = ErrorBody)))]
async fn users(
    State(s): State<ConsoleState>,
    a: Authed,
) -> ApiResult<Json<Vec<super::accounts::UserInfo>>> {
    admin(&a.op)?;
    Ok(Json(
        s.accounts()
            .list_users()
            .await
            .map_err(ApiError::internal)?,
    ))
}

fn admin(op: &Operator) -> ApiResult<()> {
    if op.scope == Scope::Central && op.role == Role::Supervisor {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Create an account (central supervisors only).
#[utoipa::path(post, path = "/api/v1/users", request_body = NewUser, responses((status = 200, body = Done), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn add_user(
    State(s): State<ConsoleState>,
    a: Authed,
    Json(u): Json<NewUser>,
) -> ApiResult<Json<Done>> {
    admin(&a.op)?;
    let scope = Scope::parse(&u.scope)
        .ok_or_else(|| ApiError::BadRequest("scope: central or a municipality id".into()))?;
    s.accounts()
        .add_user(&u.username, &u.password, &scope, u.role, s.now())
        .await
        .map_err(|e| match e {
            super::accounts::AccountError::Exists(_)
            | super::accounts::AccountError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            e => ApiError::internal(e),
        })?;
    let m = match &scope {
        Scope::Central => String::new(),
        Scope::Municipality(m) => m.clone(),
    };
    audit(&s, &a.op, "user.add", &m, &u.username, u.role.as_str()).await?;
    Ok(Json(Done { ok: true }))
}

// ---- the router ----------------------------------------------------------------

/// The OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "IVR engine admin API",
        description = "Everything the operator console does. Authenticate with the session cookie from POST /api/v1/session (send X-CSRF-Token with changes) or with Authorization: Bearer <API token>."
    ),
    paths(
        login,
        whoami,
        logout,
        list_tokens,
        issue_token,
        revoke_token,
        municipalities,
        live_all,
        live_one,
        kpis_all,
        kpis_one,
        export_one,
        export_all,
        callbacks,
        callback_done,
        callback_retry,
        mails,
        mail_retry,
        calls,
        transcript,
        flows,
        announcement,
        set_announcement,
        clear_announcement,
        audit_one,
        users,
        add_user,
        place_call,
        call_state,
        call_events,
        hang_up_call,
        get_draft,
        create_draft,
        discard_draft,
        put_draft_file,
        publish_draft,
        restore_flows
    )
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Any other path under `/api/v1`: 401 before 404, so nothing is learnt unauthenticated.
async fn fallback(_a: Authed) -> ApiError {
    ApiError::NotFound
}

/// The `/api/v1` routes.
pub fn router(state: ConsoleState) -> Router {
    let m = "/api/v1/municipalities/{m}";
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/session", post(login).get(whoami).delete(logout))
        .route("/api/v1/tokens", get(list_tokens).post(issue_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/api/v1/users", get(users).post(add_user))
        .route("/api/v1/municipalities", get(municipalities))
        .route("/api/v1/live", get(live_all))
        .route("/api/v1/kpis", get(kpis_all))
        .route("/api/v1/export", get(export_all))
        .route(&format!("{m}/live"), get(live_one))
        .route(&format!("{m}/kpis"), get(kpis_one))
        .route(&format!("{m}/export"), get(export_one))
        .route(&format!("{m}/callbacks"), get(callbacks))
        .route(
            &format!("{m}/callbacks/{{call_ref}}/{{kind}}/done"),
            post(callback_done),
        )
        .route(
            &format!("{m}/callbacks/{{call_ref}}/{{kind}}/retry"),
            post(callback_retry),
        )
        .route(&format!("{m}/mails"), get(mails))
        .route(&format!("{m}/mails/{{key}}/retry"), post(mail_retry))
        .route(&format!("{m}/calls"), get(calls))
        .route(&format!("{m}/calls/{{call_ref}}"), get(transcript))
        .route(&format!("{m}/flows"), get(flows))
        .route(&format!("{m}/flows/{{name}}/graph.svg"), get(flow_graph))
        .route(
            &format!("{m}/announcement"),
            get(announcement)
                .put(set_announcement)
                .delete(clear_announcement),
        )
        .route(&format!("{m}/audit"), get(audit_one))
        .route(
            &format!("{m}/draft"),
            get(get_draft).post(create_draft).delete(discard_draft),
        )
        .route(&format!("{m}/draft/files/{{*name}}"), put(put_draft_file))
        .route(&format!("{m}/draft/publish"), post(publish_draft))
        .route(&format!("{m}/draft/restore"), post(restore_flows))
        .route("/api/v1/calls/webrtc", post(place_call))
        .route(
            "/api/v1/calls/webrtc/{call_ref}",
            get(call_state).delete(hang_up_call),
        )
        .route("/api/v1/calls/webrtc/{call_ref}/events", get(call_events))
        .route("/api/v1/{*rest}", axum::routing::any(fallback))
        .with_state(state)
}
