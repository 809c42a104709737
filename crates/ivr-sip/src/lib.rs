//! Sans-IO SIP (RFC 3261): message parsing and printing, transactions,
//! dialogs and a user-agent core, with no sockets, threads or clock reads.
//!
//! - [`msg`]: messages, typed headers, URIs, stream framing (RFC 3261 sec. 7, 18.3, 19, 20, 25).
//! - [`policy`]: UAS request checks and the error responses they produce (sec. 8.2).
//! - [`transaction`]: client/server INVITE and non-INVITE transactions, timers A-M as data (sec. 17, RFC 6026).
//! - [`dialog`]: dialog state and in-dialog requests (sec. 12).
//! - [`endpoint`]: the UA core: calls in and out, CANCEL, re-INVITE, INFO DTMF,
//!   REFER/NOTIFY (RFC 3515), REGISTER with digest, OPTIONS, inbound protection.
//! - [`guard`]: source allowlists and per-source rate limiting.
//! - [`sdp`]: SDP parse/print (RFC 8866) and offer/answer (RFC 3264).
//! - [`auth`]: HTTP digest (RFC 3261 sec. 22, RFC 2617, RFC 7616/8760), client and server side.
//!
//! Time is an input (`std::time::Instant` arguments); outputs are polled.
//!
//! SDP offer/answer (`sdp`, RFC 3264) and digest computations (`auth`,
//! RFC 7616/8760) live in sibling modules of this crate; the endpoint never
//! interprets SDP (the application passes offers and answers through) and
//! reaches digest through the [`DigestClient`] and
//! [`guard::DigestVerifier`] seams.

pub mod auth;
pub mod dialog;
pub mod endpoint;
pub mod guard;
pub mod ids;
pub mod msg;
pub mod policy;
pub mod sdp;
pub mod transaction;

pub use endpoint::{
    CallHandle, DigestClient, EndReason, Endpoint, EndpointConfig, EndpointError, Event,
    OutgoingCall, RegistrationConfig, RegistrationHandle, Transmit, Transport,
};
