//! The per-call record (table `call_records`, in the integrations database):
//! municipality, called and calling number (personal data: kept in the
//! database, never logged), steps taken, outcome, durations, and what the
//! caller said only when `[records] keep_transcripts` is on, blanked after
//! the retention period; whole rows (with the calling number) are deleted
//! after `[records] retention_days` by the retention task
//! ([`crate::retention`]).
//!
//! A call's row is written as the call goes ([`Records::upsert`] after each
//! flow step, outcome `in_progress`) and completed at its end, so a crash
//! (kill -9) loses at most the last step.
//!
//! Beside it, table `call_turns` holds one row per caller turn (the gather
//! step it answered, speech/keys/no input, the intent it led to, whether it
//! was misunderstood, the turn latency, and, only with `keep_transcripts`,
//! what was heard and said): the console's KPIs (misunderstood turns per
//! step, latency percentiles) and transcripts read it.
//!
//! Each row names where the call came from (`origin`): `phone` (SIP), or
//! an operator's test call from the console's softphone, `browser` (the
//! published flow) or `draft` (the municipality's draft). The console lists
//! them all, marked; the KPIs count phone calls only.
//!
//! The table is created with `CREATE TABLE IF NOT EXISTS` rather than a sqlx
//! migration, so the integrations crate's migration set stays its own.

use chrono::{DateTime, Utc};
use ivr_integrations::db::Db;

/// Where a call came from (column `origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallOrigin {
    /// A caller on the phone (SIP).
    #[default]
    Phone,
    /// An operator's test call from the console's softphone to the published flow.
    Browser,
    /// An operator's test call from the console's softphone to a draft flow.
    Draft,
}

impl CallOrigin {
    /// The stored name: `phone`, `browser`, `draft`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallOrigin::Phone => "phone",
            CallOrigin::Browser => "browser",
            CallOrigin::Draft => "draft",
        }
    }
}

/// One finished call.
#[derive(Debug, Clone)]
pub struct CallRecordRow {
    /// Call reference.
    pub call_ref: String,
    /// Municipality id.
    pub municipality: String,
    /// Called number (personal data).
    pub called: ivr_core::Pii<String>,
    /// Calling number (personal data).
    pub calling: ivr_core::Pii<String>,
    /// When the INVITE arrived.
    pub started_at: DateTime<Utc>,
    /// When the call ended.
    pub ended_at: DateTime<Utc>,
    /// Answered to end, in ms.
    pub talk_ms: i64,
    /// Steps run, `flow/step`.
    pub steps: Vec<String>,
    /// Intents recognised.
    pub intents: Vec<String>,
    /// Outcome name (`transferred`, `callback_ordered`, `abandoned`, ...).
    pub outcome: String,
    /// Department transferred to.
    pub transferred_to: Option<String>,
    /// Language at the end.
    pub lang: String,
    /// Caller turns (speech or keys).
    pub turns: i64,
    /// What the caller said, when kept (personal data).
    pub transcript: Option<ivr_core::Pii<String>>,
    /// Questions answered from the knowledge base: the entry (`None`:
    /// declined) and whether the caller confirmed it helped.
    pub questions: Vec<ivr_flow::QuestionRecord>,
    /// One entry per caller turn; the first is the call's beginning.
    pub turn_log: Vec<TurnLog>,
    /// Where the call came from.
    pub origin: CallOrigin,
}

/// One caller turn of a call (or, with input `start`, the call's beginning).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnLog {
    /// `start`, `speech`, `dtmf`, `no_input`, or `stt_busy` (the caller
    /// spoke but the recogniser could not take it: the call moved to keys).
    pub input: &'static str,
    /// The step the turn answered (`flow/step`; empty for the start).
    pub step: String,
    /// What the caller said, only when transcripts are kept.
    pub heard: Option<ivr_core::Pii<String>>,
    /// The intent the turn led to.
    pub intent: Option<String>,
    /// The flow did not understand the turn.
    pub misunderstood: bool,
    /// End of the caller's turn to the first reply packet, in ms.
    pub latency_ms: Option<i64>,
    /// What the bot said in reply, each with whether it holds personal
    /// data (personal prompts only when transcripts are kept, `[personal]`
    /// otherwise). Stored as `[{"text": ..., "personal": bool}]`.
    pub said: Vec<(ivr_core::Pii<String>, bool)>,
}

impl TurnLog {
    /// An entry with nothing known yet.
    pub fn new(input: &'static str, step: &str) -> Self {
        TurnLog {
            input,
            step: step.to_string(),
            heard: None,
            intent: None,
            misunderstood: false,
            latency_ms: None,
            said: Vec::new(),
        }
    }
}

/// Why a record could not be written.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The database refused or is unreachable.
    #[error("call record database error: {0}")]
    Db(#[from] sqlx::Error),
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS call_records (
    call_ref TEXT PRIMARY KEY,
    municipality TEXT NOT NULL,
    called TEXT NOT NULL,
    calling TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    talk_ms BIGINT NOT NULL,
    steps TEXT NOT NULL,
    intents TEXT NOT NULL,
    outcome TEXT NOT NULL,
    transferred_to TEXT,
    lang TEXT NOT NULL,
    turns BIGINT NOT NULL,
    transcript TEXT,
    questions TEXT,
    origin TEXT NOT NULL DEFAULT 'phone'
)";

/// Tables made before the knowledge base have no `questions` column.
const ADD_QUESTIONS: &str = "ALTER TABLE call_records ADD COLUMN questions TEXT";

/// Tables made before browser calls were recorded have no `origin` column
/// (their rows are phone calls).
const ADD_ORIGIN: &str = "ALTER TABLE call_records ADD COLUMN origin TEXT NOT NULL DEFAULT 'phone'";

const CREATE_TURNS: &str = "CREATE TABLE IF NOT EXISTS call_turns (
    call_ref TEXT NOT NULL,
    seq BIGINT NOT NULL,
    input TEXT NOT NULL,
    step TEXT NOT NULL,
    intent TEXT,
    misunderstood BIGINT NOT NULL,
    latency_ms BIGINT,
    heard TEXT,
    said TEXT NOT NULL,
    PRIMARY KEY (call_ref, seq)
)";

const CREATE_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS call_records_muni_started ON call_records (municipality, started_at)";

const INSERT_TURN: &str = "INSERT INTO call_turns (call_ref, seq, input, step, intent, misunderstood, latency_ms, heard, said) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (call_ref, seq) DO UPDATE SET input = excluded.input, step = excluded.step, \
     intent = COALESCE(excluded.intent, call_turns.intent), misunderstood = excluded.misunderstood, \
     latency_ms = COALESCE(excluded.latency_ms, call_turns.latency_ms), \
     heard = COALESCE(excluded.heard, call_turns.heard), said = excluded.said";

const EXPIRE_TURNS: &str = "UPDATE call_turns SET heard = NULL, said = '[]' WHERE call_ref IN \
     (SELECT call_ref FROM call_records WHERE ended_at < $1) AND (heard IS NOT NULL OR said <> '[]')";

const INSERT: &str = "INSERT INTO call_records (call_ref, municipality, called, calling, started_at, ended_at, talk_ms, steps, intents, outcome, transferred_to, lang, turns, transcript, questions, origin) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (call_ref) DO UPDATE SET ended_at = excluded.ended_at, talk_ms = excluded.talk_ms, \
     steps = excluded.steps, intents = excluded.intents, outcome = excluded.outcome, \
     transferred_to = excluded.transferred_to, lang = excluded.lang, turns = excluded.turns, \
     transcript = excluded.transcript, questions = excluded.questions \
     WHERE call_records.outcome = 'in_progress'";

/// The outcome of a row written while its call is still up.
pub const IN_PROGRESS: &str = "in_progress";

const PURGE: &str = "DELETE FROM call_records WHERE ended_at < $1";

const PURGE_TURNS: &str =
    "DELETE FROM call_turns WHERE call_ref IN (SELECT call_ref FROM call_records WHERE ended_at < $1)";

const OLDEST: &str = "SELECT MIN(started_at) FROM call_records";

const EXPIRE: &str =
    "UPDATE call_records SET transcript = NULL WHERE transcript IS NOT NULL AND ended_at < $1";

/// Writes call records.
#[derive(Debug, Clone)]
pub struct Records {
    db: Db,
}

impl Records {
    /// Creates the table if needed.
    ///
    /// # Errors
    /// [`RecordError::Db`].
    pub async fn open(db: Db) -> Result<Self, RecordError> {
        // The column may exist already: its error is the expected one.
        match &db {
            Db::Sqlite(p) => {
                sqlx::query(CREATE).execute(p).await?;
                let _ = sqlx::query(ADD_QUESTIONS).execute(p).await;
                let _ = sqlx::query(ADD_ORIGIN).execute(p).await;
            }
            Db::Postgres(p) => {
                sqlx::query(CREATE).execute(p).await?;
                let _ = sqlx::query(ADD_QUESTIONS).execute(p).await;
                let _ = sqlx::query(ADD_ORIGIN).execute(p).await;
            }
        };
        for sql in [CREATE, CREATE_TURNS, CREATE_INDEX] {
            match &db {
                Db::Sqlite(p) => {
                    sqlx::query(sql).execute(p).await?;
                }
                Db::Postgres(p) => {
                    sqlx::query(sql).execute(p).await?;
                }
            };
        }
        Ok(Records { db })
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Stores one call (idempotent per call reference).
    ///
    /// # Errors
    /// [`RecordError::Db`].
    pub async fn insert(&self, r: &CallRecordRow) -> Result<(), RecordError> {
        self.upsert(r).await
    }

    /// Writes a call's row: a new row, or the newer state of a row still
    /// `in_progress` (a finished row is never overwritten). Turn rows are
    /// written as they are known and completed by later snapshots (a turn's
    /// latency is known only once the reply went out, after the progress
    /// snapshot of its step), never emptied by them.
    ///
    /// # Errors
    /// [`RecordError::Db`].
    pub async fn upsert(&self, r: &CallRecordRow) -> Result<(), RecordError> {
        let steps = serde_json::to_string(&r.steps).unwrap_or_default();
        let intents = serde_json::to_string(&r.intents).unwrap_or_default();
        let transcript = r.transcript.as_ref().map(|t| t.expose().clone());
        let questions = questions_json(&r.questions);
        macro_rules! run {
            ($p:expr) => {
                sqlx::query(INSERT)
                    .bind(&r.call_ref)
                    .bind(&r.municipality)
                    .bind(r.called.expose())
                    .bind(r.calling.expose())
                    .bind(r.started_at.to_rfc3339())
                    .bind(r.ended_at.to_rfc3339())
                    .bind(r.talk_ms)
                    .bind(&steps)
                    .bind(&intents)
                    .bind(&r.outcome)
                    .bind(&r.transferred_to)
                    .bind(&r.lang)
                    .bind(r.turns)
                    .bind(&transcript)
                    .bind(&questions)
                    .bind(r.origin.as_str())
                    .execute($p)
                    .await?;
            };
        }
        match &self.db {
            Db::Sqlite(p) => {
                run!(p);
            }
            Db::Postgres(p) => {
                run!(p);
            }
        };
        for (seq, t) in r.turn_log.iter().enumerate() {
            let said: Vec<serde_json::Value> = t
                .said
                .iter()
                .map(|(s, personal)| serde_json::json!({"text": s.expose(), "personal": personal}))
                .collect();
            let said = serde_json::to_string(&said).unwrap_or_default();
            let heard = t.heard.as_ref().map(|h| h.expose().clone());
            macro_rules! turn {
                ($p:expr) => {
                    sqlx::query(INSERT_TURN)
                        .bind(&r.call_ref)
                        .bind(seq as i64)
                        .bind(t.input)
                        .bind(&t.step)
                        .bind(&t.intent)
                        .bind(i64::from(t.misunderstood))
                        .bind(t.latency_ms)
                        .bind(&heard)
                        .bind(&said)
                        .execute($p)
                        .await?;
                };
            }
            match &self.db {
                Db::Sqlite(p) => {
                    turn!(p);
                }
                Db::Postgres(p) => {
                    turn!(p);
                }
            };
        }
        Ok(())
    }

    /// Deletes the rows of calls that ended before `before` (the calling
    /// number goes with them), and their turns (what the caller said).
    /// Returns how many calls.
    ///
    /// # Errors
    /// [`RecordError::Db`].
    pub async fn purge(&self, before: DateTime<Utc>) -> Result<u64, RecordError> {
        let b = before.to_rfc3339();
        let n = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query(PURGE_TURNS).bind(&b).execute(p).await?;
                sqlx::query(PURGE).bind(b).execute(p).await?.rows_affected()
            }
            Db::Postgres(p) => {
                sqlx::query(PURGE_TURNS).bind(&b).execute(p).await?;
                sqlx::query(PURGE).bind(b).execute(p).await?.rows_affected()
            }
        };
        Ok(n)
    }

    /// When the oldest call still on record started (`None`: no rows).
    ///
    /// # Errors
    /// [`RecordError::Db`].
    pub async fn oldest(&self) -> Result<Option<DateTime<Utc>>, RecordError> {
        let t: Option<String> = match &self.db {
            Db::Sqlite(p) => sqlx::query_scalar(OLDEST).fetch_one(p).await?,
            Db::Postgres(p) => sqlx::query_scalar(OLDEST).fetch_one(p).await?,
        };
        Ok(t.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    /// Blanks transcripts of calls that ended before `before`.
    ///
    /// # Errors
    /// [`RecordError::Db`].
    pub async fn expire_transcripts(&self, before: DateTime<Utc>) -> Result<u64, RecordError> {
        match &self.db {
            Db::Sqlite(p) => sqlx::query(EXPIRE_TURNS)
                .bind(before.to_rfc3339())
                .execute(p)
                .await?
                .rows_affected(),
            Db::Postgres(p) => sqlx::query(EXPIRE_TURNS)
                .bind(before.to_rfc3339())
                .execute(p)
                .await?
                .rows_affected(),
        };
        let n = match &self.db {
            Db::Sqlite(p) => sqlx::query(EXPIRE)
                .bind(before.to_rfc3339())
                .execute(p)
                .await?
                .rows_affected(),
            Db::Postgres(p) => sqlx::query(EXPIRE)
                .bind(before.to_rfc3339())
                .execute(p)
                .await?
                .rows_affected(),
        };
        Ok(n)
    }
}

/// Record snapshots waiting to be written, per call.
const PROGRESS_QUEUE: usize = 4;

/// A call's record as the call goes: snapshots (outcome `in_progress`,
/// one after each flow step) written off the call's loop, in order, by one
/// writer task; a snapshot that finds the queue full is skipped (the next
/// one, or the final row, holds its steps). SIP and browser calls use it
/// alike.
pub(crate) struct ProgressWriter {
    tx: Option<tokio::sync::mpsc::Sender<Box<CallRecordRow>>>,
    writer: Option<tokio::task::JoinHandle<()>>,
}

impl ProgressWriter {
    /// A writer into `records` (nothing is written without them).
    pub(crate) fn new(records: Option<Records>) -> Self {
        let Some(records) = records else {
            return ProgressWriter {
                tx: None,
                writer: None,
            };
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Box<CallRecordRow>>(PROGRESS_QUEUE);
        let writer = tokio::spawn(async move {
            while let Some(row) = rx.recv().await {
                if let Err(e) = records.upsert(&row).await {
                    tracing::warn!(error = %e, "call record progress not written");
                }
            }
        });
        ProgressWriter {
            tx: Some(tx),
            writer: Some(writer),
        }
    }

    /// Queues a snapshot (skipped when the queue is full).
    pub(crate) fn send(&self, row: Box<CallRecordRow>) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(row);
        }
    }

    /// Waits until the queued snapshots are written (before the final row).
    pub(crate) async fn flush(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.await;
        }
    }
}

/// `[{"entry":"pas-pris","confirmed":true},{"entry":null,"confirmed":null}]`.
fn questions_json(q: &[ivr_flow::QuestionRecord]) -> String {
    let list: Vec<serde_json::Value> = q
        .iter()
        .map(|x| serde_json::json!({ "entry": x.entry, "confirmed": x.confirmed }))
        .collect();
    serde_json::Value::Array(list).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_core::Pii;

    #[tokio::test]
    async fn a_table_from_before_browser_calls_gets_the_origin_column_and_its_rows_are_phone_calls()
    {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let Db::Sqlite(p) = &db else { unreachable!() };
        // The table as it was: no `origin`, one call in it.
        let old = CREATE.replace(",\n    origin TEXT NOT NULL DEFAULT 'phone'", "");
        assert!(!old.contains("origin"));
        sqlx::query(&old).execute(p).await.unwrap();
        sqlx::query(
            "INSERT INTO call_records (call_ref, municipality, called, calling, started_at, ended_at, \
             talk_ms, steps, intents, outcome, lang, turns) \
             VALUES ('old', 'nordby', '+4570101010', '+4512345678', '2026-01-01T00:00:00Z', \
             '2026-01-01T00:01:00Z', 60000, '[]', '[]', 'resolved', 'da', 1)",
        )
        .execute(p)
        .await
        .unwrap();
        let rec = Records::open(db.clone()).await.unwrap();
        let t = Utc::now();
        let mut row = CallRecordRow {
            call_ref: "draft-call".into(),
            municipality: "nordby".into(),
            called: Pii::new("browser".into()),
            calling: Pii::new("browser:nordby-op".into()),
            started_at: t,
            ended_at: t,
            talk_ms: 0,
            steps: vec!["main/welcome".into()],
            intents: vec![],
            outcome: IN_PROGRESS.into(),
            transferred_to: None,
            lang: "da".into(),
            turns: 0,
            transcript: None,
            questions: vec![],
            turn_log: vec![TurnLog::new("start", "")],
            origin: CallOrigin::Draft,
        };
        rec.upsert(&row).await.unwrap();
        row.outcome = "abandoned".into();
        rec.upsert(&row).await.unwrap();
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT call_ref, origin, outcome FROM call_records ORDER BY call_ref")
                .fetch_all(p)
                .await
                .unwrap();
        assert_eq!(
            rows,
            vec![
                ("draft-call".into(), "draft".into(), "abandoned".into()),
                ("old".into(), "phone".into(), "resolved".into()),
            ]
        );
    }

    #[tokio::test]
    async fn a_call_record_keeps_numbers_in_the_database_and_transcripts_expire() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let rec = Records::open(db.clone()).await.unwrap();
        let t = Utc::now();
        let row = CallRecordRow {
            call_ref: "c1".into(),
            municipality: "nordby".into(),
            called: Pii::new("+4570101010".into()),
            calling: Pii::new("+4512345678".into()),
            started_at: t,
            ended_at: t,
            talk_ms: 1234,
            steps: vec!["main/welcome".into()],
            intents: vec!["pas".into()],
            outcome: "transferred".into(),
            transferred_to: Some("borgerservice".into()),
            lang: "da".into(),
            turns: 1,
            transcript: Some(Pii::new("jeg skal have et pas".into())),
            questions: vec![ivr_flow::QuestionRecord {
                entry: Some("pas-pris".into()),
                confirmed: Some(true),
            }],
            turn_log: vec![TurnLog::new("start", ""), {
                let mut t = TurnLog::new("speech", "main/menu");
                t.heard = Some(Pii::new("jeg skal have et pas".into()));
                t.intent = Some("pas".into());
                t.latency_ms = Some(420);
                t
            }],
            origin: CallOrigin::Phone,
        };
        rec.insert(&row).await.unwrap();
        rec.insert(&row).await.unwrap();
        let Db::Sqlite(p) = &db else { unreachable!() };
        let (calling, outcome): (String, String) =
            sqlx::query_as("SELECT calling, outcome FROM call_records WHERE call_ref = 'c1'")
                .fetch_one(p)
                .await
                .unwrap();
        assert_eq!(
            (calling.as_str(), outcome.as_str()),
            ("+4512345678", "transferred")
        );
        let (questions,): (String,) =
            sqlx::query_as("SELECT questions FROM call_records WHERE call_ref = 'c1'")
                .fetch_one(p)
                .await
                .unwrap();
        assert_eq!(questions, r#"[{"confirmed":true,"entry":"pas-pris"}]"#);
        assert_eq!(
            rec.expire_transcripts(t + chrono::Duration::days(1))
                .await
                .unwrap(),
            1
        );
    }
}
