//! Sans-IO media: RTP/RTCP, G.711/G.722, RFC 4733 DTMF, jitter buffer, pacer, VAD and endpointing.
//!
//! Nothing here opens a socket, spawns a thread or reads a clock: the engine
//! passes datagrams and `Instant`s in and polls [`MediaSession::poll_output`]
//! for datagrams to send, events and the next timer.

mod error;

pub mod codec;
pub mod endpoint;
pub mod g711;
pub mod jitter;
pub mod pacer;
pub mod resample;
pub mod rfc4733;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod vad;

pub use codec::{AudioDecoder, AudioEncoder, Codec};
pub use error::MediaError;
pub use session::{
    MediaEvent, MediaParams, MediaSession, Output, PacketKind, PlayOptions, RecordSink,
    SessionConfig, SessionStats, Transmit,
};
