//! [`Integrations`]: everything the engine needs from this crate behind one
//! handle, started from the `[integrations]` configuration: the database
//! (migrated), the callback store and mail outbox on it, the Frontdesk
//! client, the transfer context form, and the hand-off and mail delivery
//! workers. The engine (`ivr serve`), `ivr simulate` and the tests all start
//! the integrations through [`Integrations::start`]; the engine's mapping of
//! flow requests onto them lives in `ivr_engine::services`. Each method
//! returns only after the request is durable or answered, and every error
//! maps to an [`Outcome`] through [`IntegrationError::outcome`].

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use ivr_core::WallClock;
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    callback::{CallbackRequest, CallbackStore, Enqueued},
    config::{Config, ConfigError},
    db::{Db, StoreError},
    frontdesk::{Frontdesk, FrontdeskClient, FrontdeskError},
    mail::{CprMask, MailComposer, MailError, MailFields, MailKind},
    outbox::{DeliveryReport, MailOutbox, OutboxWorker, SendError, SmtpSender},
    outcome::Outcome,
    puzzel::{HandoffReport, HandoffWorker, PuzzelClient, PuzzelError},
    transfer::{TransferConfig, TransferContext, TransferError, TransferHeaders},
};

/// Any integration failure, classified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrationError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Composing a mail.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// Sending a mail.
    #[error(transparent)]
    Send(#[from] SendError),
    /// Frontdesk.
    #[error(transparent)]
    Frontdesk(#[from] FrontdeskError),
    /// Puzzel's callback API.
    #[error(transparent)]
    Puzzel(#[from] PuzzelError),
    /// The transfer context.
    #[error(transparent)]
    Transfer(#[from] TransferError),
}

impl IntegrationError {
    /// How the flow should speak about this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            IntegrationError::Config(_) | IntegrationError::Transfer(_) => Outcome::Internal,
            IntegrationError::Store(e) => e.outcome(),
            IntegrationError::Mail(e) => e.outcome(),
            IntegrationError::Send(e) => e.outcome(),
            IntegrationError::Frontdesk(e) => e.outcome(),
            IntegrationError::Puzzel(e) => e.outcome(),
        }
    }
}

/// A mail committed to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailQueued {
    /// Its idempotency key (`{call_ref}:{kind}`).
    pub key: String,
    /// `false` when this call had already queued this mail (nothing new written).
    pub new: bool,
}

/// The running integrations: stores, clients and background workers.
pub struct Integrations {
    clock: Arc<dyn WallClock>,
    db: Db,
    callbacks: CallbackStore,
    outbox: MailOutbox,
    composer: MailComposer,
    mail_from: String,
    cpr_mask: CprMask,
    frontdesk: Arc<dyn Frontdesk>,
    transfer: TransferConfig,
    handoff: Option<HandoffWorker>,
    delivery: OutboxWorker,
    retention_days: u32,
    shutdown: watch::Sender<bool>,
    /// Taken (emptied) by [`Integrations::shutdown`].
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Integrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Integrations({:?}, {} workers)",
            self.db.backend(),
            self.workers.lock().map_or(0, |w| w.len())
        )
    }
}

impl Integrations {
    /// Validates `cfg`, connects the database (creating an SQLite file's
    /// folder, applying migrations) and builds the clients. No background
    /// worker runs until [`Integrations::spawn_workers`].
    pub async fn start(cfg: &Config, clock: Arc<dyn WallClock>) -> Result<Self, IntegrationError> {
        cfg.validate()?;
        let db = Db::connect(&cfg.database_url).await?;
        let callbacks = CallbackStore::new(db.clone());
        let outbox = MailOutbox::new(db.clone());
        let composer = cfg.mail.composer()?;
        let frontdesk: Arc<dyn Frontdesk> = Arc::new(FrontdeskClient::new(&cfg.frontdesk)?);
        let handoff = if cfg.callbacks.handoff {
            Some(HandoffWorker::new(
                callbacks.clone(),
                PuzzelClient::new(cfg.puzzel.clone())?,
            ))
        } else {
            None
        };
        let delivery = OutboxWorker::new(
            outbox.clone(),
            SmtpSender::new(&cfg.mail.smtp)?,
            cfg.mail.delivery,
            Duration::from_millis(cfg.mail.smtp.timeout_ms),
        );
        let (shutdown, _) = watch::channel(false);
        Ok(Self {
            clock,
            db,
            callbacks,
            outbox,
            composer,
            mail_from: cfg.mail.from.clone(),
            cpr_mask: cfg.mail.cpr_mask,
            frontdesk,
            transfer: cfg.transfer.clone(),
            handoff,
            delivery,
            retention_days: cfg.retention_days,
            shutdown,
            workers: Mutex::new(Vec::new()),
        })
    }

    /// Starts the hand-off and mail delivery workers on the current tokio
    /// runtime, polling every `callback_poll` / the delivery policy's interval.
    pub fn spawn_workers(&mut self, callback_poll: Duration) {
        let workers = self.workers.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = self.handoff.clone() {
            let rx = self.shutdown.subscribe();
            workers.push(tokio::spawn(h.run(self.clock.clone(), callback_poll, rx)));
        }
        let rx = self.shutdown.subscribe();
        workers.push(tokio::spawn(
            self.delivery.clone().run(self.clock.clone(), rx),
        ));
    }

    /// Replaces the Frontdesk client (tests, `ivr simulate` with an
    /// in-process stand-in).
    pub fn with_frontdesk(mut self, frontdesk: Arc<dyn Frontdesk>) -> Self {
        self.frontdesk = frontdesk;
        self
    }

    /// Stores a callback request; returns after the commit, so the flow may
    /// confirm to the caller when this is `Ok`.
    pub async fn request_callback(
        &self,
        req: &CallbackRequest,
    ) -> Result<Enqueued, IntegrationError> {
        Ok(self.callbacks.enqueue(req, self.clock.now_utc()).await?)
    }

    /// Composes a mail and commits it to the outbox (sent by the worker);
    /// returns after the commit.
    pub async fn queue_mail(
        &self,
        kind: MailKind,
        fields: &MailFields,
    ) -> Result<MailQueued, IntegrationError> {
        let mail = self.composer.compose(kind, fields)?;
        let new = self.outbox.enqueue(&mail, self.clock.now_utc()).await?;
        Ok(MailQueued { key: mail.key, new })
    }

    /// The booking system.
    pub fn frontdesk(&self) -> &Arc<dyn Frontdesk> {
        &self.frontdesk
    }

    /// The database (the engine keeps its call records in it too).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Sender address of mails (`[integrations.mail] from`).
    pub fn mail_from(&self) -> &str {
        &self.mail_from
    }

    /// How CPR numbers appear in mails (`[integrations.mail] cpr_mask`).
    pub fn cpr_mask(&self) -> CprMask {
        self.cpr_mask
    }

    /// How transfer context becomes SIP headers (`[integrations.transfer]`).
    pub fn transfer(&self) -> &TransferConfig {
        &self.transfer
    }

    /// SIP headers carrying `ctx` with a transfer.
    pub fn transfer_headers(
        &self,
        ctx: &TransferContext,
    ) -> Result<TransferHeaders, IntegrationError> {
        Ok(self.transfer.build(ctx)?)
    }

    /// The callback queue (list, export, mark done).
    pub fn callbacks(&self) -> &CallbackStore {
        &self.callbacks
    }

    /// The mail outbox (list, retry failed).
    pub fn outbox(&self) -> &MailOutbox {
        &self.outbox
    }

    /// Runs one hand-off pass and one delivery pass now (`ivr simulate`
    /// flushes at the end of a call; tests drive the workers this way).
    pub async fn run_pending(&self) -> Result<(HandoffReport, DeliveryReport), IntegrationError> {
        let now = self.clock.now_utc();
        let h = match &self.handoff {
            Some(w) => w.run_once(now).await?,
            None => HandoffReport::default(),
        };
        let d = self.delivery.run_once(now).await?;
        Ok((h, d))
    }

    /// Deletes served and handed-off callbacks and sent mails older than
    /// the retention period (`retention_days`; 0 = keep). Returns
    /// (callbacks, mails) deleted. The engine's retention task runs it on a
    /// schedule.
    pub async fn purge_expired(&self) -> Result<(u64, u64), IntegrationError> {
        if self.retention_days == 0 {
            return Ok((0, 0));
        }
        let before = self.clock.now_utc() - chrono::Duration::days(i64::from(self.retention_days));
        let callbacks = self.callbacks.purge_done(before).await?
            + self.callbacks.purge_handed_off(before).await?;
        Ok((callbacks, self.outbox.purge_sent(before).await?))
    }

    /// Stops the workers (each finishes its current pass) and closes the
    /// database.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for w in workers {
            let _ = w.await;
        }
        self.db.close().await;
    }
}
