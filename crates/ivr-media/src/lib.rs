//! Sans-IO media: RTP/RTCP, G.711/G.722, RFC 4733 DTMF, jitter buffer, pacer, VAD and endpointing.
//!
//! Not implemented yet: see the open issues.
