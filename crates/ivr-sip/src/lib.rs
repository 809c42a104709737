//! Sans-IO SIP (RFC 3261): message parsing and printing, transactions, dialogs, SDP offer/answer, digest auth.
//!
//! Not implemented yet: see the open issues.
//!
//! - [`sdp`]: SDP parse/print (RFC 8866) and offer/answer (RFC 3264).

pub mod sdp;
