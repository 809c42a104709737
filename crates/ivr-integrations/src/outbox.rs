//! The mail outbox: composed mails are committed to SQL before the caller
//! hears the confirmation, and a worker sends them over SMTP, retrying with
//! backoff while the server is down.
//!
//! Exactly once: each row has an idempotency key (`{call_ref}:{kind}`), so
//! a repeated enqueue of the same mail is a no-op; a row is claimed with a
//! lease before sending (several engine instances on one PostgreSQL do not
//! both send it) and marked `sent` after the server accepted it. The one
//! remaining window, a crash after the server said 250 and before our
//! commit, re-sends the mail with the same `Message-ID` (derived from the
//! key), so the receiving side can drop the duplicate.
//!
//! States: `pending` -> `sent`, or `failed` (after `max_attempts`, or at
//! once when the server rejects the mail permanently, RFC 5321 sec. 4.2.1
//! 5yz replies), visible with `last_error` in [`MailOutbox::list`].
//!
//! SMTP: lettre over tokio, plain (loopback relays), STARTTLS (RFC 3207)
//! or implicit TLS (RFC 8314), with optional AUTH PLAIN/LOGIN (RFC 4954).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use ivr_core::{Pii, WallClock};
use lettre::{
    message::{header::ContentType, Mailbox},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use serde::{Deserialize, Serialize};

use crate::{
    backoff::Backoff,
    db::{classify, from_ms, on_pool, one_row, to_ms, Db, LeasedTable, StoreError},
    mail::{MailKind, OutgoingMail},
    outcome::Outcome,
};

/// Transport security of the SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// No TLS (a relay on loopback or a trusted network only).
    None,
    /// Plain connection upgraded with STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// SMTP settings (`[integrations.mail.smtp]`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Server host name (also the TLS server name).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// User name for AUTH; none = no authentication.
    pub username: Option<String>,
    /// Password for AUTH.
    pub password: Option<String>,
    /// Timeout of each SMTP command, in milliseconds.
    pub timeout_ms: u64,
    /// PEM file with extra trusted root certificates (an internal relay
    /// with the municipality's own CA); the public roots stay trusted.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            timeout_ms: 10_000,
            ca_file: None,
        }
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .field("timeout_ms", &self.timeout_ms)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Errors sending one mail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The SMTP configuration cannot work (bad TLS server name, bad CA file).
    #[error("invalid SMTP configuration: {0}")]
    InvalidConfig(#[source] lettre::transport::smtp::Error),
    /// The CA file could not be read.
    #[error("cannot read the SMTP CA file: {0}")]
    CaFile(#[source] std::io::Error),
    /// An address of the mail is not a valid mailbox.
    #[error("invalid mail address ({0})")]
    BadAddress(&'static str),
    /// The message could not be built.
    #[error("cannot build the message: {0}")]
    Build(#[source] lettre::error::Error),
    /// The server could not be reached, timed out, or answered 4yz: retry.
    #[error("SMTP temporarily failed: {0}")]
    Transient(#[source] lettre::transport::smtp::Error),
    /// The server refused the mail permanently (5yz): retrying will not help.
    #[error("SMTP rejected the mail: {0}")]
    Permanent(#[source] lettre::transport::smtp::Error),
}

impl SendError {
    /// How the flow (and the worker) should treat this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            SendError::Transient(_) => Outcome::Unavailable,
            SendError::Permanent(_) | SendError::BadAddress(_) => Outcome::Rejected,
            SendError::InvalidConfig(_) | SendError::CaFile(_) | SendError::Build(_) => {
                Outcome::Internal
            }
        }
    }
}

/// Sends composed mails over SMTP.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpSender")
    }
}

impl SmtpSender {
    /// A sender for `cfg` (connects lazily, on the first mail).
    pub fn new(cfg: &SmtpConfig) -> Result<Self, SendError> {
        let tls_params = || -> Result<TlsParameters, SendError> {
            let mut b = TlsParameters::builder(cfg.host.clone());
            if let Some(path) = &cfg.ca_file {
                let pem = std::fs::read(path).map_err(SendError::CaFile)?;
                b = b.add_root_certificate(
                    Certificate::from_pem(&pem).map_err(SendError::InvalidConfig)?,
                );
            }
            b.build().map_err(SendError::InvalidConfig)
        };
        let tls = match cfg.tls {
            SmtpTls::None => Tls::None,
            // Required: no credentials or mail go out if the upgrade fails
            // (no downgrade to plain text).
            SmtpTls::Starttls => Tls::Required(tls_params()?),
            SmtpTls::Tls => Tls::Wrapper(tls_params()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .tls(tls)
            .port(cfg.port)
            .timeout(Some(Duration::from_millis(cfg.timeout_ms.max(1))));
        if let Some(user) = &cfg.username {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                cfg.password.clone().unwrap_or_default(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
        })
    }

    /// Sends one mail; returns after the server accepted it (250 to DATA).
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), SendError> {
        let from: Mailbox = mail
            .from
            .parse()
            .map_err(|_| SendError::BadAddress("from"))?;
        let to: Mailbox = mail.to.parse().map_err(|_| SendError::BadAddress("to"))?;
        let domain = from.email.domain().to_string();
        let local: String = mail
            .key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                    c
                } else {
                    '.'
                }
            })
            .collect();
        let msg = Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.expose().clone())
            .message_id(Some(format!("<{local}@{domain}>")))
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.expose().clone())
            .map_err(SendError::Build)?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e)),
            Err(e) => Err(SendError::Transient(e)),
        }
    }
}

/// Where a mail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Not sent yet (waiting for its next attempt).
    Pending,
    /// Accepted by the SMTP server.
    Sent,
    /// Given up (see `last_error`).
    Failed,
}

impl OutboxState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => OutboxState::Pending,
            "sent" => OutboxState::Sent,
            "failed" => OutboxState::Failed,
            other => {
                return Err(StoreError::CorruptRow {
                    column: "state",
                    value: other.to_string(),
                })
            }
        })
    }
}

/// A mail in the outbox with its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    /// The mail.
    pub mail: OutgoingMail,
    /// When it was committed.
    pub created_at: DateTime<Utc>,
    /// Delivery state.
    pub state: OutboxState,
    /// Send attempts so far.
    pub attempts: u32,
    /// Earliest next attempt.
    pub next_attempt_at: DateTime<Utc>,
    /// Error of the last failed attempt (no personal data: SMTP replies).
    pub last_error: Option<String>,
    /// When the server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    idempotency_key: String,
    municipality: String,
    kind: String,
    mail_from: String,
    mail_to: String,
    subject: String,
    body: String,
    created_at: i64,
    state: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    sent_at: Option<i64>,
}

impl Row {
    fn into_record(self) -> Result<OutboxRecord, StoreError> {
        let kind = match self.kind.as_str() {
            "jobcentre_cancellation" => MailKind::JobcentreCancellation,
            "out_of_hours_message" => MailKind::OutOfHoursMessage,
            _ => {
                return Err(StoreError::CorruptRow {
                    column: "kind",
                    value: self.kind,
                })
            }
        };
        Ok(OutboxRecord {
            mail: OutgoingMail {
                key: self.idempotency_key,
                municipality: self.municipality,
                kind,
                from: self.mail_from,
                to: self.mail_to,
                subject: Pii::new(self.subject),
                body: Pii::new(self.body),
            },
            created_at: from_ms(self.created_at),
            state: OutboxState::parse(&self.state)?,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_attempt_at: from_ms(self.next_attempt_at),
            last_error: self.last_error,
            sent_at: self.sent_at.map(from_ms),
        })
    }
}

const COLUMNS: &str =
    "idempotency_key, municipality, kind, mail_from, mail_to, subject, body, created_at, state, \
                       attempts, next_attempt_at, last_error, sent_at";

/// The outbox table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MailOutbox {
    db: Db,
}

impl MailOutbox {
    /// An outbox over an open database (migrations applied).
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Commits `mail`; returns `true` if it is new, `false` if a mail with
    /// the same idempotency key was already there (nothing written).
    pub async fn enqueue(
        &self,
        mail: &OutgoingMail,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if mail.to.parse::<Mailbox>().is_err() {
            return Err(StoreError::InvalidField {
                field: "to",
                reason: "not a mail address",
            });
        }
        let sql = "INSERT INTO mail_outbox (idempotency_key, municipality, kind, mail_from, mail_to, subject, body, \
                   created_at, state, state_changed_at, attempts, next_attempt_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $8, 0, $8) \
                   ON CONFLICT (idempotency_key) DO NOTHING";
        let n = on_pool!(&self.db, p => sqlx::query(sql)
            .bind(&mail.key).bind(&mail.municipality).bind(mail.kind.as_str()).bind(&mail.from).bind(&mail.to)
            .bind(mail.subject.expose()).bind(mail.body.expose()).bind(to_ms(now))
            .execute(p).await.map(|r| r.rows_affected()))
        .map_err(classify)?;
        Ok(n == 1)
    }

    /// The mail with this idempotency key.
    pub async fn get(&self, key: &str) -> Result<OutboxRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM mail_outbox WHERE idempotency_key = $1");
        let row: Option<Row> =
            on_pool!(&self.db, p => sqlx::query_as(&sql).bind(key).fetch_optional(p).await)
                .map_err(classify)?;
        row.ok_or(StoreError::NotFound)?.into_record()
    }

    /// Mails in `state` (all when `None`), oldest first.
    pub async fn list(&self, state: Option<OutboxState>) -> Result<Vec<OutboxRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM mail_outbox WHERE (CAST($1 AS TEXT) IS NULL OR state = $1) \
             ORDER BY created_at, idempotency_key"
        );
        let rows: Vec<Row> = on_pool!(&self.db, p => sqlx::query_as(&sql)
            .bind(state.map(OutboxState::as_str)).fetch_all(p).await)
        .map_err(classify)?;
        rows.into_iter().map(Row::into_record).collect()
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        let queue = LeasedTable {
            table: "mail_outbox",
            columns: COLUMNS,
            ready_state: "pending",
            key: &["idempotency_key"],
        };
        let rows: Vec<Row> = self
            .db
            .claim_due(&queue, now, lease, limit, |r: &Row| {
                vec![r.idempotency_key.clone()]
            })
            .await?;
        rows.into_iter().map(Row::into_record).collect()
    }

    async fn mark_sent(&self, key: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE mail_outbox SET state = 'sent', state_changed_at = $1, sent_at = $1, \
                   attempts = attempts + 1, lease_until = NULL, last_error = NULL \
                   WHERE idempotency_key = $2 AND state = 'pending'";
        on_pool!(&self.db, p => sqlx::query(sql).bind(to_ms(now)).bind(key).execute(p).await.map(|_| ())).map_err(classify)?;
        Ok(())
    }

    async fn record_failure(
        &self,
        key: &str,
        error: &str,
        now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let err: String = error.chars().take(500).collect();
        let (state, next) = match retry_at {
            Some(at) => ("pending", to_ms(at)),
            None => ("failed", to_ms(now)),
        };
        let sql =
            "UPDATE mail_outbox SET state = $1, next_attempt_at = $2, attempts = attempts + 1, \
                   last_error = $3, lease_until = NULL, \
                   state_changed_at = CASE WHEN $1 = 'failed' THEN $4 ELSE state_changed_at END \
                   WHERE idempotency_key = $5 AND state = 'pending'";
        on_pool!(&self.db, p => sqlx::query(sql)
            .bind(state).bind(next).bind(&err).bind(to_ms(now)).bind(key)
            .execute(p).await.map(|_| ()))
        .map_err(classify)?;
        Ok(())
    }

    /// Deletes `sent` mails sent before `before` (GDPR retention: the body
    /// holds personal data). Pending and failed mails are kept. Returns the
    /// number deleted.
    pub async fn purge_sent(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = "DELETE FROM mail_outbox WHERE state = 'sent' AND sent_at < $1";
        on_pool!(&self.db, p => sqlx::query(sql).bind(to_ms(before)).execute(p).await.map(|r| r.rows_affected()))
            .map_err(classify)
    }

    /// Operator action: a `failed` mail goes back to `pending`, due now.
    pub async fn retry_failed(&self, key: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE mail_outbox SET state = 'pending', state_changed_at = $1, next_attempt_at = $1, \
                   attempts = 0 WHERE idempotency_key = $2 AND state = 'failed'";
        let n = on_pool!(&self.db, p => sqlx::query(sql).bind(to_ms(now)).bind(key)
            .execute(p).await.map(|r| r.rows_affected()))
        .map_err(classify)?;
        one_row(n)
    }
}

/// What one [`OutboxWorker::run_once`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Mails accepted by the server.
    pub sent: u32,
    /// Mails that failed transiently and wait for their next attempt.
    pub retrying: u32,
    /// Mails given up (now `failed`).
    pub failed: u32,
}

/// Delivery policy of the outbox worker (`[integrations.mail.delivery]`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryPolicy {
    /// Attempts before a mail is marked failed (the default, 40 with the
    /// default backoff, keeps trying for about a day).
    pub max_attempts: u32,
    /// Backoff between attempts.
    pub backoff: Backoff,
    /// How often the worker looks for due mails, in milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 40,
            backoff: Backoff {
                base_ms: 10_000,
                max_ms: 1_800_000,
            },
            poll_interval_ms: 5_000,
        }
    }
}

/// Sends due mails from the outbox.
#[derive(Debug, Clone)]
pub struct OutboxWorker {
    outbox: MailOutbox,
    sender: SmtpSender,
    policy: DeliveryPolicy,
    lease: Duration,
}

impl OutboxWorker {
    /// A worker over `outbox` sending through `sender`. `smtp_timeout` bounds
    /// one send; the claim lease is derived from it.
    pub fn new(
        outbox: MailOutbox,
        sender: SmtpSender,
        policy: DeliveryPolicy,
        smtp_timeout: Duration,
    ) -> Self {
        Self {
            outbox,
            sender,
            policy,
            lease: smtp_timeout * 6 + Duration::from_secs(10),
        }
    }

    /// One pass at `now`.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        for rec in self.outbox.claim_due(now, self.lease, 20).await? {
            let key = rec.mail.key.as_str();
            match self.sender.send(&rec.mail).await {
                Ok(()) => {
                    self.outbox.mark_sent(key, now).await?;
                    tracing::info!(mail = key, "mail sent");
                    report.sent += 1;
                }
                Err(e) => {
                    let attempt = rec.attempts.saturating_add(1);
                    let retry_at = (e.outcome().is_transient()
                        && attempt < self.policy.max_attempts.max(1))
                    .then(|| {
                        now + chrono::Duration::from_std(self.policy.backoff.delay(attempt))
                            .unwrap_or(chrono::Duration::MAX)
                    });
                    self.outbox
                        .record_failure(key, &e.to_string(), now, retry_at)
                        .await?;
                    if retry_at.is_some() {
                        tracing::warn!(mail = key, attempt, error = %e, "mail not sent; will retry");
                        report.retrying += 1;
                    } else {
                        tracing::error!(mail = key, attempt, error = %e, "mail given up");
                        report.failed += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    /// Runs passes every `poll_interval_ms` until `shutdown` turns true.
    pub async fn run(
        self,
        clock: Arc<dyn WallClock>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick =
            tokio::time::interval(Duration::from_millis(self.policy.poll_interval_ms.max(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.run_once(clock.now_utc()).await {
                        tracing::warn!(error = %e, "mail outbox pass failed");
                    }
                }
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
}
