//! Errors of the media layer.

/// Why a media input was rejected or an operation could not run.
///
/// Network input never panics: every malformed packet ends up as one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The bytes are not an RTP packet (RFC 3550 sec. 5.1): too short, wrong
    /// version, truncated header extension or bad padding.
    #[error("malformed RTP packet: {0}")]
    MalformedRtp(&'static str),
    /// The bytes are not an RTCP compound packet (RFC 3550 sec. 6.1).
    #[error("malformed RTCP packet: {0}")]
    MalformedRtcp(&'static str),
    /// An RFC 4733 telephone-event payload is shorter than 4 bytes or not a multiple of 4.
    #[error("malformed RFC 4733 telephone-event payload")]
    MalformedTelephoneEvent,
    /// The RTP payload type was not negotiated for this call.
    #[error("payload type {0} was not negotiated")]
    UnexpectedPayloadType(u8),
    /// The packet came from an address the SDP did not negotiate (or, with NAT
    /// latching, not the one latched) and was dropped unread.
    #[error("packet from an address the SDP did not negotiate dropped")]
    ForeignSource,
    /// A payload does not fit the fixed per-packet buffers (more than 60 ms of audio).
    #[error("payload of {0} bytes is larger than the {1}-byte frame buffer")]
    PayloadTooLarge(usize, usize),
    /// A prompt's audio cannot be converted to the session's rate.
    #[error(transparent)]
    Resample(#[from] ivr_core::resample::ResampleError),
    /// The negotiated parameters cannot be used (e.g. ptime 0, unknown codec).
    #[error("unusable media parameters: {0}")]
    BadParams(&'static str),
    /// The prompt queue (or DTMF send queue) is full; the prompt was not queued.
    #[error("play queue full")]
    PlayQueueFull,
    /// Writing the call recording failed (the call goes on without it).
    #[error("recording failed: {0}")]
    Recording(String),
}
