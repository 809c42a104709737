//! The audit log (table `console_audit`): every change made through the
//! console or the API, every transcript viewed and every login, with who,
//! when, which municipality and what. Entries are never changed; they hold
//! no personal data (a callback is named by its call reference, never by
//! its number).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::on_pool;
use ivr_integrations::db::Db;

/// One entry.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (user name).
    pub username: String,
    /// What (`login`, `callback.done`, `transcript.view`, ...).
    pub action: String,
    /// Which municipality (empty: none).
    pub municipality: String,
    /// What it was done to (call reference, mail key, ...).
    pub target: String,
    /// Detail (no personal data).
    pub detail: String,
}

/// The audit log.
#[derive(Debug, Clone)]
pub struct Audit {
    db: Db,
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS console_audit (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    username TEXT NOT NULL,
    action TEXT NOT NULL,
    municipality TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
)";

const INDEX: &str =
    "CREATE INDEX IF NOT EXISTS console_audit_muni_at ON console_audit (municipality, at)";

type Row = (i64, String, String, String, String, String);

impl Audit {
    /// Over `db`.
    pub fn new(db: Db) -> Self {
        Audit { db }
    }

    /// Creates the table if needed.
    ///
    /// # Errors
    /// The database's.
    pub async fn create_tables(db: &Db) -> Result<(), sqlx::Error> {
        for t in [CREATE, INDEX] {
            on_pool!(db, p => sqlx::query(t).execute(p).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// Writes one entry.
    ///
    /// # Errors
    /// The database's.
    pub async fn write(&self, e: &AuditEntry) -> Result<(), sqlx::Error> {
        // Ordered by when it was written, also among entries of the same
        // wall-clock millisecond (or a fixed test clock): the system clock's
        // nanoseconds first, then randomness to keep ids unique.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = format!("{nanos:024}-{}", super::accounts::random_token());
        on_pool!(&self.db, p => sqlx::query(
            "INSERT INTO console_audit (id, at, username, action, municipality, target, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id).bind(e.at.timestamp_millis()).bind(&e.username).bind(&e.action)
            .bind(&e.municipality).bind(&e.target).bind(&e.detail)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Newest first: entries of municipality `m` (None: every entry),
    /// `offset` then at most `limit`.
    ///
    /// # Errors
    /// The database's.
    pub async fn list(
        &self,
        m: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<AuditEntry>, sqlx::Error> {
        let rows: Vec<Row> = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT at, username, action, municipality, target, detail FROM console_audit \
             WHERE (CAST($1 AS TEXT) IS NULL OR municipality = $1) ORDER BY at DESC, id DESC LIMIT $2 OFFSET $3")
            .bind(m).bind(i64::from(limit)).bind(i64::from(offset))
            .fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(
                |(at, username, action, municipality, target, detail)| AuditEntry {
                    at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
                    username,
                    action,
                    municipality,
                    target,
                    detail,
                },
            )
            .collect())
    }
}
