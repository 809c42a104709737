//! Retention enforced while the engine runs: a background task purges
//! personal data on a schedule (`[retention] interval_s`), per kind:
//!
//! | kind | what | kept for |
//! |---|---|---|
//! | `transcripts` | what callers said, in `call_records.transcript` (blanked) | `[records] transcript_retention_days` |
//! | `call_records` | whole call rows, with the calling number | `[records] retention_days` |
//! | `callbacks` | callback requests done or handed off | `[integrations] retention_days` |
//! | `mails` | sent mails (bodies hold CPR numbers, names) | `[integrations] retention_days` |
//!
//! The engine records no call audio, and the prompt cache holds only
//! static speech, so there is nothing else to purge. Figures go to
//! `/metrics` (`ivr_retention_purged_total{kind}`,
//! `ivr_retention_oldest_age_seconds{kind}`, `ivr_retention_runs_total`).
//! Time comes from the engine's wall clock, so tests can stand at any date.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ivr_core::WallClock;
use ivr_integrations::Integrations;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::records::Records;

/// Why a pass failed (the next pass tries again).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The callback queue or the outbox could not be purged.
    #[error("integrations: {0}")]
    Integrations(#[from] ivr_integrations::IntegrationError),
    /// The database refused a query.
    #[error("database: {0}")]
    Db(#[from] ivr_integrations::db::StoreError),
    /// The call records could not be purged.
    #[error("call records: {0}")]
    Records(#[from] crate::records::RecordError),
}

/// What one pass did, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Transcripts blanked.
    pub transcripts: u64,
    /// Call rows deleted.
    pub call_records: u64,
    /// Callback requests deleted.
    pub callbacks: u64,
    /// Sent mails deleted.
    pub mails: u64,
}

/// The retention task's settings and handles.
#[derive(Clone)]
pub struct Retention {
    /// The callback queue and outbox (their own `retention_days`).
    pub integrations: Arc<Integrations>,
    /// Call records (None: records are off).
    pub records: Option<Records>,
    /// Where figures go.
    pub metrics: Arc<Metrics>,
    /// Wall time.
    pub clock: Arc<dyn WallClock>,
    /// Days call rows are kept (0: forever).
    pub record_days: u32,
    /// Days transcripts are kept (0: forever).
    pub transcript_days: u32,
}

fn days_before(now: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
    (days > 0).then(|| now - chrono::Duration::days(i64::from(days)))
}

impl Retention {
    /// One pass now: purges every kind, then records the figures.
    ///
    /// # Errors
    /// [`RetentionError`]; kinds purged before the failure stay purged.
    pub async fn run_once(&self) -> Result<PassReport, RetentionError> {
        let now = self.clock.now_utc();
        let mut r = PassReport::default();
        if let Some(rec) = &self.records {
            if let Some(before) = days_before(now, self.transcript_days) {
                r.transcripts = rec.expire_transcripts(before).await?;
            }
            if let Some(before) = days_before(now, self.record_days) {
                r.call_records = rec.purge(before).await?;
            }
        }
        (r.callbacks, r.mails) = self.integrations.purge_expired().await?;
        for (kind, n) in [
            ("transcripts", r.transcripts),
            ("call_records", r.call_records),
            ("callbacks", r.callbacks),
            ("mails", r.mails),
        ] {
            self.metrics.purged(kind, n);
        }
        let oldest = self.oldest().await?;
        let ages: Vec<(&'static str, Option<i64>)> = oldest
            .iter()
            .map(|(k, t)| (*k, t.map(|t| (now - t).num_seconds().max(0))))
            .collect();
        self.metrics.retention_pass(&ages);
        Ok(r)
    }

    /// When the oldest row of personal data of each kind was made.
    ///
    /// # Errors
    /// [`RetentionError`].
    pub async fn oldest(
        &self,
    ) -> Result<Vec<(&'static str, Option<DateTime<Utc>>)>, RetentionError> {
        let mut out = self.integrations.db().oldest_personal().await?;
        if let Some(rec) = &self.records {
            out.push(("call_records", rec.oldest().await?));
        }
        Ok(out)
    }

    /// Runs a pass now and then every `every` until `stop` turns true.
    pub fn spawn(self, every: Duration, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.run_once().await {
                    Ok(r) => tracing::info!(
                        transcripts = r.transcripts,
                        call_records = r.call_records,
                        callbacks = r.callbacks,
                        mails = r.mails,
                        "retention pass"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "retention pass failed; next pass retries")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => return,
                }
            }
        })
    }
}
