//! The call core's vocabulary: its inputs ([`Input`]: datagrams, [`SipEvent`]s,
//! finished [`Done`] jobs, timeouts) and outputs ([`Output`]: datagrams,
//! [`SipCommand`]s, [`Job`]s, [`CallEvent`]s, the record, the next timeout).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use ivr_core::{Dtmf, Lang, Pcm, Pii, Speech};
use ivr_flow::semantic::EncodeError;
use ivr_flow::{Meaning, MeaningWanted, Request, Response};
use ivr_media::Transmit;
use ivr_sip::msg::Uri;
use ivr_sip::EndReason;
use ivr_stt::LanguageChoice;

use crate::metrics::EagerOutcome;
use crate::records::CallRecordRow;
use crate::speech::{Recognition, SpeechError};
use crate::turns::{SttTiming, TurnTiming};

/// A job's tag: its result comes back with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// Work for the world outside the core.
#[derive(Debug)]
pub enum Job {
    /// Recognise an utterance (16 kHz); answer with [`Done::Transcript`].
    Recognize {
        /// Tag.
        id: JobId,
        /// The audio (personal data: kept in memory only).
        pcm: Pcm,
        /// The language, or the languages to identify it among.
        choice: LanguageChoice,
        /// Recogniser hints and the answers the question expects.
        hints: crate::speech::Hints,
        /// A speculative recognition (eager end of turn): start it only on an
        /// idle worker, else answer [`Done::Declined`].
        eager: bool,
        /// Set by the core when it no longer needs the result (a
        /// speculation the caller spoke on after): the recogniser then
        /// stops early and answers with an error, which the core drops.
        cancel: ivr_stt::Cancel,
    },
    /// Synthesise speech; answer with one [`Done::Audio`] per sentence (the
    /// last marked). [`Speech::Personal`] only through the non-caching path.
    Synthesize {
        /// Tag.
        id: JobId,
        /// What to say.
        speech: Speech,
        /// Voice language.
        lang: Lang,
        /// Sample rate to give the audio at: the call's codec rate, so the
        /// call plays the shared cached audio as it is (`None`: the
        /// synthesiser's output rate).
        rate: Option<u32>,
    },
    /// Ask the end-of-turn model whether the caller has finished (the
    /// utterance so far, at a tentative end); answer with [`Done::EndOfTurn`].
    EndOfTurn {
        /// Tag.
        id: JobId,
        /// The audio (personal data: kept in memory only).
        pcm: Pcm,
    },
    /// Make the meaning of a caller's words (their vector by the
    /// municipality's sentence encoder, tens of milliseconds of CPU) off the
    /// call's thread; answer with [`Done::Meaning`]. The flow's event for
    /// those words waits for it.
    Embed {
        /// Tag.
        id: JobId,
        /// The words (personal: kept in memory only) and the encoder.
        wanted: MeaningWanted,
    },
    /// Load a recorded prompt; answer with one [`Done::Audio`].
    PlayFile {
        /// Tag.
        id: JobId,
        /// The file.
        path: PathBuf,
        /// Sample rate to give the audio at (as for [`Job::Synthesize`]).
        rate: Option<u32>,
    },
    /// Perform an integration request; answer with [`Done::Response`].
    Invoke {
        /// Tag.
        id: JobId,
        /// The request.
        request: Request,
        /// The flow's language.
        lang: Lang,
        /// Wall time of the request.
        at: DateTime<Utc>,
    },
}

/// A finished job.
#[derive(Debug)]
pub enum Done {
    /// A recognition's result.
    Transcript {
        /// The job.
        id: JobId,
        /// What was heard.
        result: Result<Recognition, SpeechError>,
        /// How the recogniser spent the time.
        stt: SttTiming,
    },
    /// The end-of-turn model's verdict.
    EndOfTurn {
        /// The job.
        id: JobId,
        /// Probability that the turn is complete; `None`: no verdict (the
        /// model failed or is not loaded), so the end silence decides.
        complete: Option<f32>,
    },
    /// The meaning of a caller's words ([`Job::Embed`]); an error: the flow
    /// goes on without it (by the words alone).
    Meaning {
        /// The job.
        id: JobId,
        /// The words and their vector (personal).
        meaning: Result<Meaning, EncodeError>,
    },
    /// A speculative recognition that was not started (no idle worker).
    Declined {
        /// The job.
        id: JobId,
    },
    /// Audio of a synthesis (one per sentence) or a prompt file; `None`: it failed.
    Audio {
        /// The job.
        id: JobId,
        /// The audio.
        pcm: Option<Arc<Pcm>>,
        /// The job's last piece.
        last: bool,
    },
    /// An integration's answer.
    Response {
        /// The job.
        id: JobId,
        /// The answer.
        response: Response,
    },
}

/// What the SIP side tells the call.
#[derive(Debug)]
pub enum SipEvent {
    /// The ACK arrived (with the SDP answer for an offerless INVITE).
    Confirmed(Option<Vec<u8>>),
    /// A key from SIP INFO.
    Dtmf(Dtmf),
    /// A re-INVITE to answer (its offer, if any).
    ReInvite(Option<Vec<u8>>),
    /// The transfer's outcome; `status: None` when the REFER could not be sent.
    TransferResult {
        /// The target answered.
        success: bool,
        /// The status behind it.
        status: Option<u16>,
    },
    /// The call is over on the SIP side.
    Ended(EndReason),
    /// The engine is stopping: hang up now.
    Terminate,
    /// The engine is gone (the call's input queue closed).
    Gone,
}

/// A SIP command for the call's dialog.
#[derive(Debug)]
pub enum SipCommand {
    /// Send BYE.
    Hangup,
    /// Transfer with REFER to `target`; the context becomes headers (see
    /// `Services::transfer_headers`). Answer with [`SipEvent::TransferResult`].
    Refer {
        /// Where to.
        target: Uri,
        /// The department (for the headers and the log).
        department: String,
        /// Context fields from the flow.
        context: Vec<(String, Pii<String>)>,
        /// The caller's last intent.
        intent: Option<String>,
        /// The flow's language.
        lang: Lang,
    },
    /// Answer a re-INVITE with 200 and this SDP.
    AnswerReInvite(Vec<u8>),
    /// Refuse a re-INVITE with this status.
    RejectReInvite(u16),
}

/// Something to count or publish.
#[derive(Debug)]
pub enum CallEvent {
    /// A turn was answered: its timings.
    Turn(Box<TurnTiming>),
    /// What a tentative end of utterance came to.
    Eager(EagerOutcome),
    /// The first packet of prompt audio left this long after the call was
    /// answered (the 200 OK): the caller hears the greeting
    /// (`ivr_greeting_delay_seconds`).
    Greeting(std::time::Duration),
    /// A caller turn reached the flow, by its input: `speech`, `dtmf`,
    /// `no_input` or `stt_busy` (`ivr_caller_turns_total`).
    CallerTurn(&'static str),
    /// The caller's speech stopped the prompt (the media session flushed it
    /// before sending the next packet).
    BargeIn,
    /// An RTP or RTCP datagram from an address the SDP did not negotiate was
    /// dropped (`ivr_rtp_dropped_foreign_total`).
    ForeignMediaDropped,
    /// An SRTP/SRTCP packet failed authentication or the replay check, or
    /// arrived in clear on an SRTP call, and was dropped
    /// (`ivr_srtp_refused_total`).
    SrtpRefused,
    /// The flow took a step: the call's record so far (outcome
    /// [`crate::records::IN_PROGRESS`]), to be written now so a crash loses
    /// at most the step after it.
    Progress(Box<CallRecordRow>),
}

/// One input to the core.
#[derive(Debug)]
pub enum Input<'a> {
    /// A datagram on the RTP port.
    Rtp {
        /// Its bytes.
        bytes: &'a [u8],
        /// Its source.
        from: SocketAddr,
    },
    /// A datagram on the RTCP port.
    Rtcp {
        /// Its bytes.
        bytes: &'a [u8],
        /// Its source.
        from: SocketAddr,
    },
    /// A SIP event.
    Sip(SipEvent),
    /// A job finished.
    Done(Done),
    /// The instant of the last [`Output::Timeout`] came.
    Timeout,
}

/// One output of the core.
#[derive(Debug)]
pub enum Output<'a> {
    /// Send this datagram now (before polling again).
    Transmit(Transmit<'a>),
    /// Perform this SIP command.
    Sip(SipCommand),
    /// Start this job.
    Job(Job),
    /// Count or publish this.
    Event(CallEvent),
    /// The call is over: its record. The core is done ([`super::core::CallCore::is_done`]).
    Finished(Box<CallRecordRow>),
    /// Nothing more until this instant (or the next input).
    Timeout(Instant),
}
