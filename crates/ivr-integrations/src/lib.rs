//! Integrations: the systems a call ends in.
//!
//! Async adapters (tokio) the engine calls on behalf of the flow engine. None
//! of them depends on `ivr-flow`: the engine maps flow requests to these
//! types and every error back to an [`Outcome`] the flow can speak about.
//!
//! - [`callback`]: the durable callback queue in SQL ([`db`]: SQLite or
//!   PostgreSQL), listable and exportable; [`puzzel`] hands it off to
//!   Puzzel's callback web API.
//! - [`mail`]: job-centre cancellations and out-of-hours messages composed
//!   from templates; [`outbox`] stores them in SQL and sends them over SMTP
//!   (lettre) until they are sent.
//! - [`frontdesk`]: the booking interface and its REST client.
//! - [`transfer`]: the context that travels with a transfer to Puzzel as SIP
//!   headers (User-to-User per RFC 7433, or X- headers).
//! - [`standin`]: local stand-in servers (Puzzel, Frontdesk) for tests,
//!   `ivr simulate` and `make run`.
//! - [`config`]: the `[integrations]` section of the engine configuration.
//! - [`service`]: [`Integrations`], the one handle the engine holds.
//!
//! Binaries: `ivr-standin frontdesk|puzzel [--listen ADDR]` (stand-ins for
//! `make run`) and `ivr-callbacks` (operator tool: list, export, done, retry).
//!
//! No in-memory queues: every request lives in the database until it is
//! done; the workers take at most 50 callbacks / 20 mails per pass, so a
//! backlog (Puzzel or SMTP down for hours) waits in SQL, not in memory.

pub mod backoff;
pub mod callback;
pub mod config;
pub mod db;
pub mod frontdesk;
pub mod mail;
pub mod outbox;
pub mod outcome;
pub mod puzzel;
pub mod service;
pub mod standin;
pub mod transfer;

pub use config::Config;
pub use outcome::Outcome;
pub use service::{IntegrationError, Integrations, MailQueued};
