//! Sans-IO media: RTP/RTCP, G.711/G.722, RFC 4733 DTMF, jitter buffer, pacer, VAD and endpointing.
//!
//! Nothing here opens a socket, spawns a thread or reads a clock: the engine
//! passes datagrams and `Instant`s in and polls [`MediaSession::poll_output`]
//! for datagrams to send, events and the next timer.
//!
//! ```text
//! handle_rtp -> rtp (SDP address only, parse, RFC 3550 A.1/A.8) -+-> rfc4733 -> Event::Dtmf
//!                                                                +-> jitter -> codec decode -> 16 kHz
//!                                  16 kHz -> vad (8 kHz) -> endpointing -> Event::{SpeechStarted, TentativeEnd, SpeechResumed,
//!                                                                   Utterance, BargeIn}
//! play(Pcm) -> resample (rubato, once) -> prompt queue -> pacer tick -> codec encode -> rtp -> Transmit
//! every 5 s: rtcp SR + report block -> Transmit;  handle_rtcp -> remote loss/jitter/RTT
//! ```
//!
//! Modules: [`rtp`] (RFC 3550 sec. 5.1, A.1, A.3, A.8; latching), [`rtcp`]
//! (RFC 3550 sec. 6.4), [`g711`] (ITU-T G.711), [`codec`] (RFC 3551 PCMU/PCMA/G722),
//! [`resample`], [`rfc4733`] (RFC 4733 sec. 2.5), [`jitter`], [`pacer`], [`vad`],
//! [`endpointing`], [`session`].

mod error;

pub mod codec;
pub mod endpointing;
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
