//! The runtime: SIP transport, one task per call, media sessions, STT worker pool, flow reload, admin HTTP API.
//!
//! Not implemented yet: see the open issues.

pub mod sip;
