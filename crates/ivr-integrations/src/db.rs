//! The SQL database behind the callback queue and the mail outbox.
//!
//! SQLite is the embedded default (a file under `var/`), PostgreSQL serves
//! deployments where several engine instances share one queue. Both run the
//! same migrations (`migrations/`, portable SQL: TEXT and BIGINT columns,
//! times as Unix milliseconds) and the same query text (`$1` placeholders,
//! which SQLite accepts as numbered parameters).
//!
//! Why a small enum over the two pools and not `sqlx::Any`: `Any` needs the
//! drivers installed at run time, supports only a reduced type set, and hides
//! the backend-specific connect options that matter here (SQLite journal
//! mode and `synchronous`, busy timeout; Postgres pool health checks). The
//! enum costs one macro ([`on_pool!`]) that expands each query for both
//! backends, and keeps the native drivers and their error codes.
//!
//! Durability (SQLite): WAL journal with `synchronous = FULL`. A callback
//! request or a mail is only acknowledged to the caller after its commit has
//! been fsynced, so it survives not only a kill -9 of the engine (WAL with
//! `NORMAL` would too) but also a power loss or kernel crash right after the
//! caller heard "we will call you back" (WAL with `NORMAL` may lose the last
//! transactions then). The cost, one fsync per commit, is irrelevant at the
//! rate callers order callbacks.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};

use crate::outcome::Outcome;

/// Runs `$body` with `$p` bound to the pool of whichever backend `$db` is.
/// The body is compiled once per backend, so one query text serves both.
macro_rules! on_pool {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($p) => $body,
            $crate::db::Db::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Errors of the SQL layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL has a scheme other than `sqlite:` or `postgres:`
    /// (only the scheme is kept: the URL may hold a password).
    #[error("unsupported database URL scheme `{0}` (use sqlite:PATH or postgres://...)")]
    UnsupportedUrl(String),
    /// The database URL could not be parsed by the driver.
    #[error("invalid database URL: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    /// The directory for the SQLite file could not be created.
    #[error("cannot create the database directory: {0}")]
    CreateDir(#[source] std::io::Error),
    /// Applying the migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The database could not be reached (connection refused, pool timed
    /// out, connection lost); the operation may succeed later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A statement failed for another reason (constraint, syntax, ...).
    #[error("database query failed: {0}")]
    Query(#[source] sqlx::Error),
    /// A stored row holds a value this version does not understand.
    #[error("stored row has an invalid {column}: `{value}`")]
    CorruptRow {
        /// Column name.
        column: &'static str,
        /// The value found (never a personal field).
        value: String,
    },
    /// No row with this key.
    #[error("no such record")]
    NotFound,
    /// A field of a new record is invalid.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// Field name.
        field: &'static str,
        /// What is wrong with it (never the value itself).
        reason: &'static str,
    },
}

impl StoreError {
    /// How the flow should speak about this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            StoreError::Unavailable(_) => Outcome::Unavailable,
            StoreError::NotFound => Outcome::NotFound,
            StoreError::InvalidField { .. } => Outcome::Rejected,
            _ => Outcome::Internal,
        }
    }
}

/// Maps a driver error to [`StoreError`], separating "cannot reach the
/// database" (transient) from query failures.
pub(crate) fn classify(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(e),
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => {
            // PostgreSQL: class 08 = connection exception, 57P01..57P03 =
            // admin shutdown / crash shutdown / cannot connect now.
            // SQLite: 5 = SQLITE_BUSY, 6 = SQLITE_LOCKED.
            let code = db.code().unwrap_or_default();
            if code.starts_with("08") || code.starts_with("57P") || code == "5" || code == "6" {
                StoreError::Unavailable(e)
            } else {
                StoreError::Query(e)
            }
        }
        _ => StoreError::Query(e),
    }
}

/// Makes `file` (an SQLite database) readable by its owner only before
/// SQLite opens it: its folder is created 0700 if missing, the file 0600
/// (created empty if missing; SQLite gives its -wal and -shm files the
/// database file's mode). An existing file with wider rights is narrowed.
/// The database holds calling numbers and callback requests.
fn private_file(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = file.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = file.as_os_str().to_owned();
        p.push(suffix);
        let p = std::path::PathBuf::from(p);
        if let Ok(m) = std::fs::metadata(&p) {
            if m.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

/// Which backend a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A connection pool to either backend. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    /// SQLite pool (WAL, synchronous=FULL).
    Sqlite(SqlitePool),
    /// PostgreSQL pool (connections tested before use, so a restarted server
    /// is reconnected transparently).
    Postgres(PgPool),
}

/// The migrations in `crates/ivr-integrations/migrations`, embedded.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Db {
    /// Connects to `url` (`sqlite:var/ivr.db`, `sqlite::memory:`,
    /// `postgres://user@host:port/db`) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        let db = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(StoreError::InvalidUrl)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5));
            let file = opts.get_filename().to_path_buf();
            let on_disk = file != Path::new(":memory:") && !url.contains(":memory:");
            if on_disk {
                private_file(&file).map_err(StoreError::CreateDir)?;
            }
            // An in-memory database exists once per connection: keep one.
            let max = if url.contains(":memory:") { 1 } else { 4 };
            let pool = SqlitePoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(opts)
                .await
                .map_err(classify)?;
            Db::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url).map_err(StoreError::InvalidUrl)?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(5))
                .test_before_acquire(true)
                .connect_with(opts)
                .await
                .map_err(classify)?;
            Db::Postgres(pool)
        } else {
            let scheme = url.split(':').next().unwrap_or_default().to_string();
            return Err(StoreError::UnsupportedUrl(scheme));
        };
        db.migrate().await?;
        Ok(db)
    }

    /// Applies pending migrations (idempotent; safe with several instances:
    /// sqlx takes an advisory lock on PostgreSQL).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        on_pool!(self, p => MIGRATOR.run(p).await).map_err(StoreError::Migrate)
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection (waits for running statements).
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

/// Tables of personal data whose oldest row `ivr doctor` and `/metrics`
/// report, with the column of each row's creation time (Unix ms).
pub const PERSONAL_TABLES: [(&str, &str, &str); 2] = [
    ("callbacks", "callback_requests", "created_at"),
    ("mails", "mail_outbox", "created_at"),
];

impl Db {
    /// When the oldest row of each of [`PERSONAL_TABLES`] was created
    /// (`None`: the table is empty), by kind.
    pub async fn oldest_personal(
        &self,
    ) -> Result<Vec<(&'static str, Option<chrono::DateTime<chrono::Utc>>)>, StoreError> {
        let mut out = Vec::new();
        for (kind, table, column) in PERSONAL_TABLES {
            let sql = format!("SELECT MIN({column}) FROM {table}");
            let ms: Option<i64> = on_pool!(self, p => sqlx::query_scalar(&sql).fetch_one(p).await)
                .map_err(classify)?;
            out.push((kind, ms.map(from_ms)));
        }
        Ok(out)
    }
}

/// Milliseconds since the Unix epoch, as stored.
/// An update meant for exactly one row: [`StoreError::NotFound`] when it
/// changed none (the key is unknown or the row is not in the state the
/// update expects).
pub(crate) fn one_row(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

pub(crate) fn to_ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// Back from stored milliseconds.
pub(crate) fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A table of durable work (callback requests, outgoing mails) that workers
/// take by lease: rows in `ready_state` whose `next_attempt_at` has come and
/// whose `lease_until` is unset or past. Table and column names are
/// constants of this crate, never input.
pub(crate) struct LeasedTable {
    /// The table.
    pub(crate) table: &'static str,
    /// The columns selected for a row (the store's `COLUMNS`).
    pub(crate) columns: &'static str,
    /// The state of rows waiting for an attempt.
    pub(crate) ready_state: &'static str,
    /// The columns that identify one row.
    pub(crate) key: &'static [&'static str],
}

impl Db {
    /// Claims up to `limit` rows of `t` due at `now`, oldest due first, each
    /// leased until `now + lease` so no other worker (or engine instance)
    /// takes it meanwhile. A row another worker leased between the select and
    /// the claim is left to it. `key` gives the values of `t.key` of a row.
    pub(crate) async fn claim_due<R>(
        &self,
        t: &LeasedTable,
        now: chrono::DateTime<chrono::Utc>,
        lease: Duration,
        limit: u32,
        key: impl Fn(&R) -> Vec<String>,
    ) -> Result<Vec<R>, StoreError>
    where
        R: Send + Unpin,
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let now_ms = to_ms(now);
        let until = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let select = format!(
            "SELECT {} FROM {} WHERE state = '{}' AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until <= $1) \
             ORDER BY next_attempt_at, created_at LIMIT $2",
            t.columns, t.table, t.ready_state
        );
        let rows: Vec<R> = on_pool!(self, p => sqlx::query_as(&select)
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)
        .map_err(classify)?;
        let key_match: String = t
            .key
            .iter()
            .enumerate()
            .map(|(i, c)| format!(" AND {c} = ${}", i + 3))
            .collect();
        let claim = format!(
            "UPDATE {} SET lease_until = $1 WHERE state = '{}' \
             AND (lease_until IS NULL OR lease_until <= $2){key_match}",
            t.table, t.ready_state
        );
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let values = key(&row);
            let n = on_pool!(self, p => {
                let mut q = sqlx::query(&claim).bind(until).bind(now_ms);
                for v in &values {
                    q = q.bind(v);
                }
                q.execute(p).await.map(|r| r.rows_affected())
            })
            .map_err(classify)?;
            if n == 1 {
                claimed.push(row);
            }
        }
        Ok(claimed)
    }
}

#[cfg(test)]
mod file_mode_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::Db;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    /// Issue 14, defect 7: the database (calling numbers, callback requests)
    /// was 0644 under a 0755 folder.
    #[tokio::test]
    async fn the_sqlite_database_and_its_folder_are_readable_by_the_owner_only() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = tmp.path().join("var/ivr.db");
        let db = Db::connect(&format!("sqlite:{}", file.display()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode(&tmp.path().join("var")), 0o700);
        for f in ["ivr.db", "ivr.db-wal", "ivr.db-shm"] {
            let p = tmp.path().join("var").join(f);
            assert!(p.exists(), "{f} missing");
            assert_eq!(mode(&p), 0o600, "{f}");
        }
        db.close().await;
    }
}
