//! Operator accounts, sessions and API tokens (tables `console_users`,
//! `console_sessions`, `console_tokens` in the engine's database).
//!
//! - A password is stored only as an argon2id PHC string (random salt,
//!   the crate's default cost: 19 MiB, 2 passes).
//! - A session or API token is 256 random bits shown once to its holder;
//!   the database holds only its SHA-256, so a copy of the database does not
//!   open sessions.
//! - Scope: `central` sees every municipality; a municipality id sees only
//!   that one. Role: `viewer` reads, `operator` also changes (callbacks,
//!   mails, announcements), `supervisor` also sees personal data unmasked
//!   (transcripts, numbers) and, when central, manages accounts.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::on_pool;
use ivr_integrations::db::Db;

/// Which municipalities an account sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every municipality (the central chatbot team).
    Central,
    /// One municipality (its super-user).
    Municipality(String),
}

impl Scope {
    /// As stored: `central` or `municipality:<id>`.
    pub fn as_stored(&self) -> String {
        match self {
            Scope::Central => "central".into(),
            Scope::Municipality(m) => format!("municipality:{m}"),
        }
    }

    /// Parses the stored form (or the CLI's: `central` or a municipality id).
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "central" => Some(Scope::Central),
            _ => {
                let id = s.strip_prefix("municipality:").unwrap_or(s);
                valid_id(id).then(|| Scope::Municipality(id.to_string()))
            }
        }
    }

    /// Whether this scope admits municipality `id`.
    pub fn sees(&self, id: &str) -> bool {
        match self {
            Scope::Central => true,
            Scope::Municipality(m) => m == id,
        }
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// What an account may do, in increasing order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads dashboards; personal data masked.
    Viewer,
    /// Also marks callbacks done, retries mails, sets announcements.
    Operator,
    /// Also reads personal data unmasked; a central supervisor manages accounts.
    Supervisor,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Supervisor => "supervisor",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "supervisor" => Some(Role::Supervisor),
            _ => None,
        }
    }
}

/// Who is asking: an authenticated account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Operator {
    /// User name.
    pub username: String,
    /// Which municipalities it sees.
    pub scope: Scope,
    /// What it may do.
    pub role: Role,
}

impl Operator {
    /// Whether it may see municipality `id` (else: 404).
    pub fn sees(&self, id: &str) -> bool {
        self.scope.sees(id)
    }

    /// Whether it may change things.
    pub fn may_change(&self) -> bool {
        self.role >= Role::Operator
    }

    /// Whether it may see personal data unmasked.
    pub fn sees_personal_data(&self) -> bool {
        self.role >= Role::Supervisor
    }
}

/// Errors of the account store.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The database failed.
    #[error("account database: {0}")]
    Db(#[from] sqlx::Error),
    /// The user name is taken.
    #[error("user `{0}` exists")]
    Exists(String),
    /// A user name, password or scope is not acceptable.
    #[error("{0}")]
    Invalid(&'static str),
    /// Hashing failed.
    #[error("password hashing failed")]
    Hash,
}

/// A new session: the cookie value (shown once) and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie value.
    pub token: String,
    /// Must accompany every change made with this session (`X-CSRF-Token`).
    pub csrf: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// An API token as listed (the secret is never shown again).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// Token id (its first characters, for revoking).
    pub id: String,
    /// What it is for.
    pub name: String,
    /// Owner.
    pub username: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// An account as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    /// User name.
    pub username: String,
    /// Scope.
    pub scope: Scope,
    /// Role.
    pub role: Role,
    /// Created.
    pub created_at: DateTime<Utc>,
}

const TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS console_users (
        username TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        scope TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS console_sessions (
        token_hash TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS console_tokens (
        token_hash TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        username TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )",
];

/// 256 random bits, URL-safe base64.
pub(crate) fn random_token() -> String {
    let mut b = [0u8; 32];
    for chunk in b.chunks_mut(8) {
        chunk.copy_from_slice(&ivr_sip::ids::secure_u64().to_le_bytes());
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn digest(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hashes a password with argon2id and a random salt.
///
/// # Errors
/// [`AccountError::Hash`].
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    for chunk in salt.chunks_mut(8) {
        chunk.copy_from_slice(&ivr_sip::ids::secure_u64().to_le_bytes());
    }
    let salt = SaltString::encode_b64(&salt).map_err(|_| AccountError::Hash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AccountError::Hash)
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to verify against when the user does not exist, so that a wrong
/// user name costs as long as a wrong password.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("not a password").unwrap_or_default())
}

type UserRow = (String, String, String, String, i64);

/// The account store.
#[derive(Debug, Clone)]
pub struct Accounts {
    db: Db,
}

impl Accounts {
    /// Over `db` (tables from [`Accounts::create_tables`]).
    pub fn new(db: Db) -> Self {
        Accounts { db }
    }

    /// Creates the tables if needed.
    ///
    /// # Errors
    /// The database's.
    pub async fn create_tables(db: &Db) -> Result<(), sqlx::Error> {
        for t in TABLES {
            on_pool!(db, p => sqlx::query(t).execute(p).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// Creates an account.
    ///
    /// # Errors
    /// [`AccountError::Exists`], [`AccountError::Invalid`] for a bad name or
    /// a password under 10 characters.
    pub async fn add_user(
        &self,
        username: &str,
        password: &str,
        scope: &Scope,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<(), AccountError> {
        if !valid_id(username) {
            return Err(AccountError::Invalid(
                "user name: 1-64 characters of a-z, 0-9, _ or -",
            ));
        }
        if password.chars().count() < 10 {
            return Err(AccountError::Invalid("password: at least 10 characters"));
        }
        let hash = hash_password(password)?;
        let r = on_pool!(&self.db, p => sqlx::query(
            "INSERT INTO console_users (username, password_hash, scope, role, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING")
            .bind(username).bind(&hash).bind(scope.as_stored()).bind(role.as_str()).bind(now.timestamp_millis())
            .execute(p).await.map(|r| r.rows_affected()))?;
        if r == 0 {
            return Err(AccountError::Exists(username.to_string()));
        }
        Ok(())
    }

    /// Every account.
    ///
    /// # Errors
    /// The database's.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>, AccountError> {
        let rows: Vec<UserRow> = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT username, password_hash, scope, role, created_at FROM console_users ORDER BY username")
            .fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(u, _, s, r, c)| {
                Some(UserInfo {
                    username: u,
                    scope: Scope::parse(&s)?,
                    role: Role::parse(&r)?,
                    created_at: DateTime::from_timestamp_millis(c).unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn user(&self, username: &str) -> Result<Option<(Operator, String)>, AccountError> {
        let row: Option<UserRow> = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT username, password_hash, scope, role, created_at FROM console_users WHERE username = $1")
            .bind(username).fetch_optional(p).await)?;
        Ok(row.and_then(|(u, h, s, r, _)| {
            Some((
                Operator {
                    username: u,
                    scope: Scope::parse(&s)?,
                    role: Role::parse(&r)?,
                },
                h,
            ))
        }))
    }

    /// Checks a user name and password (argon2 runs on a blocking thread;
    /// an unknown user costs as much as a wrong password).
    ///
    /// # Errors
    /// The database's.
    pub async fn verify(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<Operator>, AccountError> {
        let found = self.user(username).await?;
        let hash = found
            .as_ref()
            .map_or_else(|| dummy_hash().to_string(), |(_, h)| h.clone());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        Ok(found.filter(|_| ok).map(|(o, _)| o))
    }

    /// Opens a session for `username` until `now + hours`.
    ///
    /// # Errors
    /// The database's.
    pub async fn open_session(
        &self,
        username: &str,
        now: DateTime<Utc>,
        hours: u32,
    ) -> Result<NewSession, AccountError> {
        let token = random_token();
        let csrf = random_token();
        let expires_at = now + Duration::hours(i64::from(hours));
        on_pool!(&self.db, p => sqlx::query(
            "INSERT INTO console_sessions (token_hash, username, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(digest(&token)).bind(username).bind(&csrf)
            .bind(now.timestamp_millis()).bind(expires_at.timestamp_millis())
            .execute(p).await.map(|r| r.rows_affected()))?;
        // Expired sessions go as new ones come.
        on_pool!(&self.db, p => sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1")
            .bind(now.timestamp_millis()).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(NewSession {
            token,
            csrf,
            expires_at,
        })
    }

    /// The operator and CSRF token of a live session.
    ///
    /// # Errors
    /// The database's.
    pub async fn session(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Operator, String)>, AccountError> {
        let row: Option<(String, String)> = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT username, csrf FROM console_sessions WHERE token_hash = $1 AND expires_at > $2")
            .bind(digest(token)).bind(now.timestamp_millis()).fetch_optional(p).await)?;
        let Some((user, csrf)) = row else {
            return Ok(None);
        };
        Ok(self.user(&user).await?.map(|(o, _)| (o, csrf)))
    }

    /// Ends a session.
    ///
    /// # Errors
    /// The database's.
    pub async fn close_session(&self, token: &str) -> Result<(), AccountError> {
        on_pool!(&self.db, p => sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(digest(token)).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Issues an API token for `username`; the secret is returned once.
    ///
    /// # Errors
    /// The database's.
    pub async fn issue_token(
        &self,
        username: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, TokenInfo), AccountError> {
        let secret = format!("ivr_{}", random_token());
        let id: String = secret.chars().skip(4).take(8).collect();
        let name: String = name.chars().take(80).collect();
        on_pool!(&self.db, p => sqlx::query(
            "INSERT INTO console_tokens (token_hash, id, username, name, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(digest(&secret)).bind(&id).bind(username).bind(&name).bind(now.timestamp_millis())
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok((
            secret,
            TokenInfo {
                id,
                name,
                username: username.to_string(),
                created_at: now,
            },
        ))
    }

    /// The account behind an API token.
    ///
    /// # Errors
    /// The database's.
    pub async fn token(&self, secret: &str) -> Result<Option<Operator>, AccountError> {
        let row: Option<(String,)> = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT username FROM console_tokens WHERE token_hash = $1")
            .bind(digest(secret)).fetch_optional(p).await)?;
        match row {
            Some((u,)) => Ok(self.user(&u).await?.map(|(o, _)| o)),
            None => Ok(None),
        }
    }

    /// The tokens of `username`.
    ///
    /// # Errors
    /// The database's.
    pub async fn tokens(&self, username: &str) -> Result<Vec<TokenInfo>, AccountError> {
        let rows: Vec<(String, String, String, i64)> = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT id, username, name, created_at FROM console_tokens WHERE username = $1 ORDER BY created_at")
            .bind(username).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(|(id, username, name, c)| TokenInfo {
                id,
                username,
                name,
                created_at: DateTime::from_timestamp_millis(c).unwrap_or_default(),
            })
            .collect())
    }

    /// Revokes a token of `username`; false when it has none with this id.
    ///
    /// # Errors
    /// The database's.
    pub async fn revoke_token(&self, username: &str, id: &str) -> Result<bool, AccountError> {
        let r = on_pool!(&self.db, p => sqlx::query("DELETE FROM console_tokens WHERE username = $1 AND id = $2")
            .bind(username).bind(id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(r > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_is_stored_as_argon2id_and_only_the_right_one_opens_a_session() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        Accounts::create_tables(&db).await.unwrap();
        let a = Accounts::new(db.clone());
        let now = Utc::now();
        let scope = Scope::Municipality("nordby".into());
        a.add_user("anna", "korrekt hest batteri", &scope, Role::Operator, now)
            .await
            .unwrap();
        assert!(matches!(
            a.add_user("anna", "korrekt hest batteri", &scope, Role::Operator, now)
                .await,
            Err(AccountError::Exists(_))
        ));
        let Db::Sqlite(p) = &db else { unreachable!() };
        let (hash,): (String,) = sqlx::query_as("SELECT password_hash FROM console_users")
            .fetch_one(p)
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(a.verify("anna", "forkert").await.unwrap().is_none());
        assert!(a
            .verify("bent", "korrekt hest batteri")
            .await
            .unwrap()
            .is_none());
        let op = a
            .verify("anna", "korrekt hest batteri")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(op.scope, scope);
        let s = a.open_session("anna", now, 1).await.unwrap();
        assert_eq!(a.session(&s.token, now).await.unwrap().unwrap().1, s.csrf);
        assert!(a
            .session(&s.token, now + Duration::hours(2))
            .await
            .unwrap()
            .is_none());
        let (secret, info) = a.issue_token("anna", "script", now).await.unwrap();
        assert_eq!(a.token(&secret).await.unwrap().unwrap().username, "anna");
        assert!(a.revoke_token("anna", &info.id).await.unwrap());
        assert!(a.token(&secret).await.unwrap().is_none());
    }
}
