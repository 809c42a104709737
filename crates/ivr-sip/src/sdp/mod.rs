//! SDP: session descriptions (RFC 8866, formerly RFC 4566) and the offer/answer
//! model (RFC 3264) for a voice endpoint.
//!
//! - [`SessionDescription::parse`] reads an SDP body into typed fields
//!   (RFC 8866 sec. 5): `v=`, `o=`, `s=`, `c=` (IPv4, IPv6, or a host name),
//!   `t=`, `m=` with port, protocol and formats, and the attributes a voice call
//!   needs: `a=rtpmap` (sec. 6.6), `a=fmtp` (sec. 6.15), `a=ptime` (sec. 6.4),
//!   `a=maxptime` (sec. 6.5), the direction attributes `sendrecv`/`sendonly`/
//!   `recvonly`/`inactive` (sec. 6.7) at session and media level, and `a=rtcp`
//!   (RFC 3605). Every other attribute and line is kept raw and printed back.
//!   [`Display`](std::fmt::Display) prints with CRLF line ends.
//! - Strict where a mistake would route media wrongly (`v=0` first, `o=`, `c=`,
//!   `m=` must parse), tolerant where real peers are sloppy: LF-only line ends,
//!   blank lines, trailing white space, a missing `s=` or `t=`, lines out of
//!   order, unknown line types, malformed values of attributes we only read
//!   (kept raw, so the codec they describe just does not match).
//! - [`answer`] answers a remote offer (RFC 3264 sec. 6), [`offer`] builds our
//!   offer (sec. 5) and [`accept_answer`] reads the answer to it (sec. 7).
//!   [`LocalSession`] keeps `o=` stable across re-INVITEs and increments its
//!   version only when our description changes (sec. 8).
//! - [`SdpConfig`] is the codec preference order and packetisation from config.
//! - [`crypto`]: SDES (RFC 4568) `a=crypto` lines; [`answer`] accepts
//!   RTP/SAVP when [`LocalMedia::srtp`] allows it and answers with our key.
//!
//! Nothing here does I/O, reads a clock or draws random numbers: the caller
//! supplies the session id (RFC 8866 sec. 5.2 suggests an NTP timestamp).

mod config;
pub mod crypto;
mod dtmf;
mod negotiate;
mod parse;

pub use config::{CodecPreference, ConfigError, SdpConfig};
pub use crypto::{LocalSrtp, SrtpKey, SrtpKeyMaterial, SrtpParams, SrtpPolicy, SrtpSuite};
pub use dtmf::EventSet;
pub use negotiate::{
    accept_answer, answer, answer_reoffer, offer, Codec, LocalMedia, LocalSession, Negotiated,
    TelephoneEvent,
};
pub use parse::{
    AddrType, Address, Attribute, Bandwidth, Connection, Direction, Fmtp, Media, MediaKind, Origin,
    RtcpAttr, RtpMap, SessionDescription, Timing, MAX_SDP_LEN,
};

/// Why an SDP body could not be parsed or an offer/answer exchange failed.
///
/// [`SdpError::sip_status`] names the SIP response an INVITE carrying the body
/// should get.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is larger than [`MAX_SDP_LEN`]; we do not parse it.
    #[error("SDP body of {0} bytes is larger than the {MAX_SDP_LEN} byte limit")]
    TooLarge(usize),
    /// The body is empty (or only white space).
    #[error("SDP body is empty")]
    Empty,
    /// The first line is not `v=0` (RFC 8866 sec. 5.1).
    #[error("SDP must start with v=0 (line {line})")]
    BadVersion {
        /// 1-based line number.
        line: usize,
    },
    /// A line is not `<letter>=<value>` (RFC 8866 sec. 5).
    #[error("line {line} is not of the form <type>=<value>")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
    /// No `o=` line (RFC 8866 sec. 5.2 makes it mandatory).
    #[error("SDP has no o= line")]
    MissingOrigin,
    /// A second `v=` or `o=` line: the body is probably two bodies glued together.
    #[error("line {line}: duplicate {field}= line")]
    Duplicate {
        /// 1-based line number.
        line: usize,
        /// The line type, `v` or `o`.
        field: char,
    },
    /// An `o=` line does not have its six fields (RFC 8866 sec. 5.2).
    #[error("line {line}: malformed o= line")]
    BadOrigin {
        /// 1-based line number.
        line: usize,
    },
    /// A `c=` line is malformed: wrong field count, network type other than
    /// `IN`, unknown address type, or an address of the other family
    /// (RFC 8866 sec. 5.7).
    #[error("line {line}: malformed c= line")]
    BadConnection {
        /// 1-based line number.
        line: usize,
    },
    /// An `m=` line is malformed: missing fields or a port that is not a
    /// number in 0..=65535 (RFC 8866 sec. 5.14).
    #[error("line {line}: malformed m= line")]
    BadMedia {
        /// 1-based line number.
        line: usize,
    },
    /// A `t=` line does not hold two decimal numbers (RFC 8866 sec. 5.9).
    #[error("line {line}: malformed t= line")]
    BadTiming {
        /// 1-based line number.
        line: usize,
    },
    /// The offer has no audio stream we could accept (no `m=audio` with an
    /// RTP/AVP profile and a non-zero port). Answer 488 Not Acceptable Here.
    #[error("no acceptable audio stream in the SDP")]
    NoAudio,
    /// The audio stream offers no codec we support (PCMA, PCMU, G.722 as
    /// configured). Answer 488 Not Acceptable Here (RFC 3264 sec. 6).
    #[error("no codec in common with the remote party")]
    NoCommonCodec,
    /// The accepted audio stream has no `c=` line at media or session level,
    /// so we would not know where to send RTP (RFC 8866 sec. 5.7).
    #[error("audio stream has no connection address")]
    MissingConnection,
    /// The connection address is a host name; we do not resolve names in the
    /// sans-IO core. The engine may resolve [`Address::Host`] and retry.
    #[error("connection address is a host name, not an IP address")]
    UnresolvedHost,
    /// An answer does not have the same number of `m=` lines as our offer
    /// (RFC 3264 sec. 6).
    #[error("answer has {answer} m= lines, our offer had {offer}")]
    MediaCountMismatch {
        /// Number of m= lines in our offer.
        offer: usize,
        /// Number of m= lines in the answer.
        answer: usize,
    },
    /// The answer rejected our audio stream (port 0), or selected only codecs
    /// we never offered.
    #[error("the answer rejected our audio stream")]
    AnswerRejected,
    /// SRTP is required (per trunk or `[media] srtp`) and the offer has no
    /// audio stream with an `a=crypto` line we support. Answer 488.
    #[error("SRTP is required and the offer has no usable a=crypto line")]
    SrtpRequired,
    /// The stream is RTP/SAVP but SRTP is off, or none of its `a=crypto`
    /// lines is a suite we run (AES_CM_128_HMAC_SHA1_80/_32,
    /// AES_256_CM_HMAC_SHA1_80, one inline key, no MKI), or an answer to our
    /// SRTP offer picked none of our lines. Answer 488.
    #[error("no SRTP crypto suite in common")]
    NoCommonCrypto,
}

impl SdpError {
    /// The SIP status code for a request whose SDP fails this way: 400 for a
    /// body we cannot parse, 488 (Not Acceptable Here, RFC 3261 sec. 21.4.26)
    /// for a body we understand but cannot accept, 413 for an oversize body.
    #[must_use]
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::TooLarge(_) => 413,
            SdpError::Empty
            | SdpError::BadVersion { .. }
            | SdpError::BadLine { .. }
            | SdpError::MissingOrigin
            | SdpError::Duplicate { .. }
            | SdpError::BadOrigin { .. }
            | SdpError::BadConnection { .. }
            | SdpError::BadMedia { .. }
            | SdpError::BadTiming { .. } => 400,
            SdpError::NoAudio
            | SdpError::NoCommonCodec
            | SdpError::MissingConnection
            | SdpError::UnresolvedHost
            | SdpError::MediaCountMismatch { .. }
            | SdpError::AnswerRejected
            | SdpError::SrtpRequired
            | SdpError::NoCommonCrypto => 488,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_sip_status_a_caller_sees() {
        let big = "v=0\r\n".repeat(MAX_SDP_LEN / 5 + 1);
        let e = SessionDescription::parse(&big).unwrap_err();
        assert_eq!(
            (e.clone(), e.sip_status()),
            (SdpError::TooLarge(big.len()), 413)
        );
        assert_eq!(
            SessionDescription::parse("  \r\n")
                .unwrap_err()
                .sip_status(),
            400
        );
        assert_eq!(SdpError::BadMedia { line: 3 }.sip_status(), 400);
        assert_eq!(SdpError::NoCommonCodec.sip_status(), 488);
        assert_eq!(SdpError::AnswerRejected.sip_status(), 488);
    }

    #[test]
    fn non_utf8_session_name_is_replaced_not_fatal() {
        let body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=K\xf8benhavn\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";
        let sd = SessionDescription::parse_bytes(body).unwrap();
        assert_eq!(sd.session_name, "K\u{fffd}benhavn");
        assert_eq!(sd.media[0].port, 4000);
    }
}
