//! The durable callback queue (use case 2: "ring mig op").
//!
//! A request is written with one `INSERT ... ON CONFLICT DO NOTHING` and the
//! call returns only after the commit (SQLite: fsynced, see [`crate::db`]),
//! so the flow may tell the caller "we will call you back" as soon as
//! [`CallbackStore::enqueue`] returns `Ok`. The key is (call reference, kind):
//! a retried step of the same call cannot queue a second callback.
//!
//! States: `requested` -> `handed_off` (accepted by Puzzel) -> `done`, or
//! `requested` -> `failed` after the configured number of attempts (visible
//! in [`CallbackStore::list`] with the last error; an operator can
//! [`CallbackStore::retry_failed`]). Several engine instances may run
//! hand-off workers on one PostgreSQL database: a row is claimed with a
//! conditional `UPDATE` (a lease), so only one worker hands it off at a time,
//! and a worker that dies leaves a lease that simply expires.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use ivr_core::{CallId, Lang, Pii};
use serde::Serialize;

use crate::db::{classify, from_ms, on_pool, one_row, to_ms, Db, LeasedTable, StoreError};

/// Why a callback was ordered; part of the idempotency key together with the
/// call reference. Lowercase ASCII letters, digits, `_` and `-`, 1-32 chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CallbackKind(String);

impl CallbackKind {
    /// Validates a kind name (`callback`, `out_of_hours`, ...).
    pub fn new(kind: &str) -> Result<Self, StoreError> {
        let ok = !kind.is_empty()
            && kind.len() <= 32
            && kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(kind.to_string()))
        } else {
            Err(StoreError::InvalidField {
                field: "kind",
                reason: "must be 1-32 chars of a-z, 0-9, _ or -",
            })
        }
    }
    /// The ordinary "call me back" request.
    pub fn callback() -> Self {
        Self("callback".into())
    }
    /// The kind as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The time window the caller asked to be called back in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeWindow {
    /// Earliest time to call.
    pub start: DateTime<Utc>,
    /// Latest time to call.
    pub end: DateTime<Utc>,
}

/// A new callback request from the flow.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackRequest {
    /// The call that ordered it.
    pub call_ref: CallId,
    /// Why (with `call_ref`, the idempotency key).
    pub kind: CallbackKind,
    /// Municipality id (`aarhus`, `odense`, ...).
    pub municipality: String,
    /// The number to call back (E.164 or national digits).
    pub phone: Pii<String>,
    /// Topic as a category or intent name (`boligstoette`), never a
    /// transcript of what the caller said.
    pub topic: String,
    /// Language to call back in.
    pub lang: Lang,
    /// When to call.
    pub window: TimeWindow,
}

/// Where a callback request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackState {
    /// Stored, not yet accepted by the contact centre.
    Requested,
    /// Accepted by Puzzel's callback API.
    HandedOff,
    /// Served (an agent called back, or the centre marked it done).
    Done,
    /// Given up after the maximum number of attempts (see `last_error`).
    Failed,
}

impl CallbackState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackState::Requested => "requested",
            CallbackState::HandedOff => "handed_off",
            CallbackState::Done => "done",
            CallbackState::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "requested" => CallbackState::Requested,
            "handed_off" => CallbackState::HandedOff,
            "done" => CallbackState::Done,
            "failed" => CallbackState::Failed,
            other => {
                return Err(StoreError::CorruptRow {
                    column: "state",
                    value: other.to_string(),
                })
            }
        })
    }
}

/// A stored callback request with its state.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackRecord {
    /// The request as ordered.
    pub request: CallbackRequest,
    /// When it was committed.
    pub created_at: DateTime<Utc>,
    /// Current state.
    pub state: CallbackState,
    /// When the state last changed.
    pub state_changed_at: DateTime<Utc>,
    /// Hand-off attempts made so far.
    pub attempts: u32,
    /// Earliest time of the next hand-off attempt.
    pub next_attempt_at: DateTime<Utc>,
    /// Error of the last failed attempt (no personal data).
    pub last_error: Option<String>,
    /// The contact centre's id for the request, once handed off.
    pub external_ref: Option<String>,
    /// When it was handed off.
    pub handed_off_at: Option<DateTime<Utc>>,
    /// When it was marked done.
    pub done_at: Option<DateTime<Utc>>,
    /// When it was given up.
    pub failed_at: Option<DateTime<Utc>>,
    /// A hand-off started at this time and its outcome was never recorded
    /// (the worker died or lost the database mid-send): the contact centre
    /// may already hold the request.
    pub sent_at: Option<DateTime<Utc>>,
    /// How many times the request was sent again after such an unknown
    /// outcome: each may have become a duplicate callback at the contact
    /// centre (which has no idempotency key).
    pub uncertain_sends: u32,
}

/// Result of [`CallbackStore::enqueue`].
#[derive(Debug, Clone, PartialEq)]
pub enum Enqueued {
    /// Committed now.
    New(CallbackRecord),
    /// This call already ordered a callback of this kind; nothing was
    /// written, the existing record is returned.
    AlreadyQueued(CallbackRecord),
}

impl Enqueued {
    /// The stored record either way.
    pub fn record(&self) -> &CallbackRecord {
        match self {
            Enqueued::New(r) | Enqueued::AlreadyQueued(r) => r,
        }
    }
}

/// Which records [`CallbackStore::list`] returns.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this state.
    pub state: Option<CallbackState>,
    /// Only this municipality.
    pub municipality: Option<String>,
    /// At most this many (oldest first); `None` = 10 000.
    pub limit: Option<u32>,
}

#[derive(sqlx::FromRow)]
struct Row {
    call_ref: String,
    kind: String,
    municipality: String,
    phone: String,
    topic: String,
    lang: String,
    window_start: i64,
    window_end: i64,
    created_at: i64,
    state: String,
    state_changed_at: i64,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    external_ref: Option<String>,
    handed_off_at: Option<i64>,
    done_at: Option<i64>,
    failed_at: Option<i64>,
    sent_at: Option<i64>,
    uncertain_sends: i64,
}

impl Row {
    fn into_record(self) -> Result<CallbackRecord, StoreError> {
        let lang = self
            .lang
            .parse::<Lang>()
            .map_err(|_| StoreError::CorruptRow {
                column: "lang",
                value: self.lang.clone(),
            })?;
        Ok(CallbackRecord {
            request: CallbackRequest {
                call_ref: CallId::new(self.call_ref),
                kind: CallbackKind(self.kind),
                municipality: self.municipality,
                phone: Pii::new(self.phone),
                topic: self.topic,
                lang,
                window: TimeWindow {
                    start: from_ms(self.window_start),
                    end: from_ms(self.window_end),
                },
            },
            created_at: from_ms(self.created_at),
            state: CallbackState::parse(&self.state)?,
            state_changed_at: from_ms(self.state_changed_at),
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_attempt_at: from_ms(self.next_attempt_at),
            last_error: self.last_error,
            external_ref: self.external_ref,
            handed_off_at: self.handed_off_at.map(from_ms),
            done_at: self.done_at.map(from_ms),
            failed_at: self.failed_at.map(from_ms),
            sent_at: self.sent_at.map(from_ms),
            uncertain_sends: u32::try_from(self.uncertain_sends).unwrap_or(u32::MAX),
        })
    }
}

const COLUMNS: &str = "call_ref, kind, municipality, phone, topic, lang, window_start, window_end, created_at, \
     state, state_changed_at, attempts, next_attempt_at, last_error, external_ref, handed_off_at, done_at, failed_at, \
     sent_at, uncertain_sends";

/// The callback queue in SQL. Cheap to clone (shares the pool).
#[derive(Clone, Debug)]
pub struct CallbackStore {
    db: Db,
}

/// Longest error text kept in `last_error`.
const MAX_ERROR_LEN: usize = 500;

fn short_error(e: &str) -> String {
    let mut s: String = e.chars().take(MAX_ERROR_LEN).collect();
    if s.len() < e.len() {
        s.push('…');
    }
    s
}

impl CallbackStore {
    /// A store over an open database (migrations already applied by
    /// [`Db::connect`]).
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Connects to `url` and applies the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(Db::connect(url).await?))
    }

    /// The database underneath.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Stores a new request and returns after the commit. Idempotent per
    /// (call reference, kind): a second call returns the first record.
    pub async fn enqueue(
        &self,
        req: &CallbackRequest,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, StoreError> {
        if req.municipality.is_empty() {
            return Err(StoreError::InvalidField {
                field: "municipality",
                reason: "empty",
            });
        }
        if req.phone.expose().trim().is_empty() {
            return Err(StoreError::InvalidField {
                field: "phone",
                reason: "empty",
            });
        }
        if req.window.end < req.window.start {
            return Err(StoreError::InvalidField {
                field: "window",
                reason: "ends before it starts",
            });
        }
        let sql = "INSERT INTO callback_requests (call_ref, kind, municipality, phone, topic, lang, window_start, \
                   window_end, created_at, state, state_changed_at, attempts, next_attempt_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'requested', $9, 0, $9) \
                   ON CONFLICT (call_ref, kind) DO NOTHING";
        let n = on_pool!(&self.db, p => sqlx::query(sql)
            .bind(req.call_ref.as_str())
            .bind(req.kind.as_str())
            .bind(&req.municipality)
            .bind(req.phone.expose())
            .bind(&req.topic)
            .bind(req.lang.code())
            .bind(to_ms(req.window.start))
            .bind(to_ms(req.window.end))
            .bind(to_ms(now))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(classify)?;
        let rec = self.get(&req.call_ref, &req.kind).await?;
        Ok(if n == 1 {
            Enqueued::New(rec)
        } else {
            Enqueued::AlreadyQueued(rec)
        })
    }

    /// The record for (call reference, kind).
    pub async fn get(
        &self,
        call_ref: &CallId,
        kind: &CallbackKind,
    ) -> Result<CallbackRecord, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM callback_requests WHERE call_ref = $1 AND kind = $2");
        let row: Option<Row> = on_pool!(&self.db, p => sqlx::query_as(&sql)
            .bind(call_ref.as_str())
            .bind(kind.as_str())
            .fetch_optional(p)
            .await)
        .map_err(classify)?;
        row.ok_or(StoreError::NotFound)?.into_record()
    }

    /// Records matching `filter`, oldest first.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<CallbackRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM callback_requests \
             WHERE (CAST($1 AS TEXT) IS NULL OR state = $1) AND (CAST($2 AS TEXT) IS NULL OR municipality = $2) \
             ORDER BY created_at, call_ref, kind LIMIT $3"
        );
        let state = filter.state.map(|s| s.as_str());
        let limit = i64::from(filter.limit.unwrap_or(10_000));
        let rows: Vec<Row> = on_pool!(&self.db, p => sqlx::query_as(&sql)
            .bind(state)
            .bind(filter.municipality.as_deref())
            .bind(limit)
            .fetch_all(p)
            .await)
        .map_err(classify)?;
        rows.into_iter().map(Row::into_record).collect()
    }

    /// Claims up to `limit` requests due for a hand-off attempt at `now`, each
    /// leased until `now + lease` so no other worker takes it meanwhile.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<CallbackRecord>, StoreError> {
        let queue = LeasedTable {
            table: "callback_requests",
            columns: COLUMNS,
            ready_state: "requested",
            key: &["call_ref", "kind"],
        };
        let rows: Vec<Row> = self
            .db
            .claim_due(&queue, now, lease, limit, |r: &Row| {
                vec![r.call_ref.clone(), r.kind.clone()]
            })
            .await?;
        rows.into_iter().map(Row::into_record).collect()
    }

    /// `requested` -> `handed_off` with the contact centre's id.
    pub async fn mark_handed_off(
        &self,
        call_ref: &CallId,
        kind: &CallbackKind,
        external_ref: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE callback_requests SET state = 'handed_off', state_changed_at = $1, handed_off_at = $1, \
                   attempts = attempts + 1, lease_until = NULL, last_error = NULL, external_ref = $2, sent_at = NULL \
                   WHERE call_ref = $3 AND kind = $4 AND state = 'requested'";
        self.update(sql, to_ms(now), Some(external_ref), call_ref, kind)
            .await
    }

    /// Commits, before a claimed request is sent to the contact centre, that
    /// a send starts at `now`. When the row already carried an unfinished
    /// send (its worker died before learning the outcome), the new send is
    /// counted in `uncertain_sends`.
    pub async fn mark_sending(
        &self,
        call_ref: &CallId,
        kind: &CallbackKind,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE callback_requests SET \
                   uncertain_sends = uncertain_sends + CASE WHEN sent_at IS NULL THEN 0 ELSE 1 END, \
                   sent_at = $1 WHERE call_ref = $2 AND kind = $3 AND state = 'requested'";
        let n = on_pool!(&self.db, p => sqlx::query(sql)
            .bind(to_ms(now)).bind(call_ref.as_str()).bind(kind.as_str())
            .execute(p).await.map(|r| r.rows_affected()))
        .map_err(classify)?;
        one_row(n)
    }

    /// Puts a claimed request back without counting an attempt, due again at
    /// `until` (e.g. its time window starts later than the contact centre
    /// accepts requests ahead).
    pub async fn defer(
        &self,
        call_ref: &CallId,
        kind: &CallbackKind,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE callback_requests SET next_attempt_at = $1, lease_until = NULL \
                   WHERE call_ref = $2 AND kind = $3 AND state = 'requested'";
        let n = on_pool!(&self.db, p => sqlx::query(sql)
            .bind(to_ms(until)).bind(call_ref.as_str()).bind(kind.as_str())
            .execute(p).await.map(|r| r.rows_affected()))
        .map_err(classify)?;
        one_row(n)
    }

    /// Records a failed hand-off attempt: back to `requested` with the next
    /// attempt at `retry_at`, or `failed` when `retry_at` is `None`.
    pub async fn record_failure(
        &self,
        call_ref: &CallId,
        kind: &CallbackKind,
        error: &str,
        now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let err = short_error(error);
        let n = match retry_at {
            Some(at) => {
                let sql = "UPDATE callback_requests SET attempts = attempts + 1, last_error = $1, \
                           next_attempt_at = $2, lease_until = NULL, sent_at = NULL \
                           WHERE call_ref = $3 AND kind = $4 AND state = 'requested'";
                on_pool!(&self.db, p => sqlx::query(sql)
                    .bind(&err).bind(to_ms(at)).bind(call_ref.as_str()).bind(kind.as_str())
                    .execute(p).await.map(|r| r.rows_affected()))
            }
            None => {
                let sql = "UPDATE callback_requests SET state = 'failed', state_changed_at = $2, failed_at = $2, \
                           attempts = attempts + 1, last_error = $1, lease_until = NULL, sent_at = NULL \
                           WHERE call_ref = $3 AND kind = $4 AND state = 'requested'";
                on_pool!(&self.db, p => sqlx::query(sql)
                    .bind(&err).bind(to_ms(now)).bind(call_ref.as_str()).bind(kind.as_str())
                    .execute(p).await.map(|r| r.rows_affected()))
            }
        }
        .map_err(classify)?;
        one_row(n)
    }

    /// Marks a request served (`requested` or `handed_off` -> `done`), e.g.
    /// by a centre that works the queue itself.
    pub async fn mark_done(
        &self,
        call_ref: &CallId,
        kind: &CallbackKind,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql =
            "UPDATE callback_requests SET state = 'done', state_changed_at = $1, done_at = $1, \
                   lease_until = NULL, external_ref = COALESCE(external_ref, $2) \
                   WHERE call_ref = $3 AND kind = $4 AND state IN ('requested', 'handed_off')";
        self.update(sql, to_ms(now), None, call_ref, kind).await
    }

    /// Operator action: a `failed` request goes back to `requested`, due now,
    /// with its attempt counter reset.
    pub async fn retry_failed(
        &self,
        call_ref: &CallId,
        kind: &CallbackKind,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE callback_requests SET state = 'requested', state_changed_at = $1, next_attempt_at = $1, \
                   attempts = 0, failed_at = NULL, external_ref = COALESCE(external_ref, $2) \
                   WHERE call_ref = $3 AND kind = $4 AND state = 'failed'";
        self.update(sql, to_ms(now), None, call_ref, kind).await
    }

    async fn update(
        &self,
        sql: &str,
        now_ms: i64,
        text: Option<&str>,
        call_ref: &CallId,
        kind: &CallbackKind,
    ) -> Result<(), StoreError> {
        let n = on_pool!(&self.db, p => sqlx::query(sql)
            .bind(now_ms).bind(text).bind(call_ref.as_str()).bind(kind.as_str())
            .execute(p).await.map(|r| r.rows_affected()))
        .map_err(classify)?;
        one_row(n)
    }

    /// Deletes `done` requests whose state changed before `before` (GDPR
    /// retention: the phone number goes with the row). `requested`,
    /// `handed_off` and `failed` rows are kept until someone acts on them.
    /// Returns the number deleted.
    pub async fn purge_done(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = "DELETE FROM callback_requests WHERE state = 'done' AND state_changed_at < $1";
        on_pool!(&self.db, p => sqlx::query(sql).bind(to_ms(before)).execute(p).await.map(|r| r.rows_affected()))
            .map_err(classify)
    }

    /// Deletes `handed_off` requests handed to Puzzel before `before`: the
    /// centre has had them for the whole retention period, and our copy of
    /// the phone number is no longer needed. Returns the number deleted.
    pub async fn purge_handed_off(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql =
            "DELETE FROM callback_requests WHERE state = 'handed_off' AND state_changed_at < $1";
        on_pool!(&self.db, p => sqlx::query(sql).bind(to_ms(before)).execute(p).await.map(|r| r.rows_affected()))
            .map_err(classify)
    }

    /// Writes the records matching `filter` to `out` in `format` (for the
    /// `ivr callbacks export` command and centres that work the queue
    /// themselves). Phone numbers only with [`PhoneExport::Include`].
    pub async fn export(
        &self,
        filter: &ListFilter,
        format: ExportFormat,
        phones: PhoneExport,
        out: &mut dyn std::io::Write,
    ) -> Result<usize, ExportError> {
        let records = self.list(filter).await?;
        let text = match format {
            ExportFormat::Json => export_json(&records, phones),
            ExportFormat::Csv => export_csv(&records, phones),
        };
        out.write_all(text.as_bytes()).map_err(ExportError::Write)?;
        Ok(records.len())
    }
}

/// Export file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A JSON array of objects.
    Json,
    /// RFC 4180 CSV with a header line.
    Csv,
}

/// Whether an export contains phone numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneExport {
    /// Phone numbers replaced by `<redacted>` (the default).
    Redacted,
    /// Phone numbers included: the operator asked on purpose.
    Include,
}

/// Errors of an export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading the records failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("cannot write the export: {0}")]
    Write(#[source] std::io::Error),
}

#[derive(Serialize)]
struct ExportRow<'a> {
    call_ref: &'a str,
    kind: &'a str,
    municipality: &'a str,
    phone: &'a str,
    topic: &'a str,
    lang: &'a str,
    window_start: String,
    window_end: String,
    created_at: String,
    state: &'static str,
    state_changed_at: String,
    attempts: u32,
    last_error: Option<&'a str>,
    external_ref: Option<&'a str>,
}

fn export_row(r: &CallbackRecord, phones: PhoneExport) -> ExportRow<'_> {
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    ExportRow {
        call_ref: r.request.call_ref.as_str(),
        kind: r.request.kind.as_str(),
        municipality: &r.request.municipality,
        phone: match phones {
            PhoneExport::Include => r.request.phone.expose(),
            PhoneExport::Redacted => "<redacted>",
        },
        topic: &r.request.topic,
        lang: r.request.lang.code(),
        window_start: rfc(r.request.window.start),
        window_end: rfc(r.request.window.end),
        created_at: rfc(r.created_at),
        state: r.state.as_str(),
        state_changed_at: rfc(r.state_changed_at),
        attempts: r.attempts,
        last_error: r.last_error.as_deref(),
        external_ref: r.external_ref.as_deref(),
    }
}

/// The records as a pretty JSON array.
pub fn export_json(records: &[CallbackRecord], phones: PhoneExport) -> String {
    let rows: Vec<ExportRow<'_>> = records.iter().map(|r| export_row(r, phones)).collect();
    let mut s = serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

fn csv_field(out: &mut String, v: &str) {
    // RFC 4180 sec. 2: quote fields holding a comma, quote or line break.
    // A leading =, +, - or @ is prefixed with ' so a spreadsheet does not
    // run it as a formula (phone numbers start with +).
    let guarded;
    let v = if v.starts_with(['=', '+', '-', '@']) {
        guarded = format!("'{v}");
        guarded.as_str()
    } else {
        v
    };
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

/// The records as CSV (RFC 4180, CRLF line ends, header first).
pub fn export_csv(records: &[CallbackRecord], phones: PhoneExport) -> String {
    let mut out = String::from(
        "call_ref,kind,municipality,phone,topic,lang,window_start,window_end,created_at,state,state_changed_at,attempts,last_error,external_ref\r\n",
    );
    for r in records {
        let row = export_row(r, phones);
        let attempts = row.attempts.to_string();
        let fields = [
            row.call_ref,
            row.kind,
            row.municipality,
            row.phone,
            row.topic,
            row.lang,
            &row.window_start,
            &row.window_end,
            &row.created_at,
            row.state,
            &row.state_changed_at,
            &attempts,
            row.last_error.unwrap_or(""),
            row.external_ref.unwrap_or(""),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, f);
        }
        let _ = write!(out, "\r\n");
    }
    out
}
