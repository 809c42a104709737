//! Sans-IO SIP (RFC 3261): message parsing and printing, transactions, dialogs, SDP offer/answer, digest auth.
//!
//! Not implemented yet: see the open issues.
//!
//! - [`sdp`]: SDP parse/print (RFC 8866) and offer/answer (RFC 3264).
//! - [`auth`]: HTTP digest (RFC 3261 sec. 22, RFC 2617, RFC 7616/8760), client and server side.

pub mod auth;
pub mod sdp;
