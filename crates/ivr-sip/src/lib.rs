//! Sans-IO SIP (RFC 3261): message parsing and printing, transactions,
//! dialogs and a user-agent core, with no sockets, threads or clock reads.
//!
//! - [`msg`]: messages, typed headers, URIs, stream framing (RFC 3261 sec. 7, 18.3, 19, 20, 25).
//! - [`policy`]: UAS request checks and the error responses they produce (sec. 8.2).
//! - [`transaction`]: client/server INVITE and non-INVITE transactions, timers A-M as data (sec. 17, RFC 6026).
//!
//! Time is an input (`std::time::Instant` arguments); outputs are polled.

pub mod msg;
pub mod policy;
pub mod transaction;
