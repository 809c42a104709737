//! The flow debugger's view of one call: what the core tells the console
//! about an operator's own test call (a browser call), turn by turn. Only a
//! core made `with_debugger` collects it; SIP calls never do.
//!
//! It quotes the caller (what was heard, explanations, variable values):
//! personal data, kept in [`Pii`] here and shown only to the operator who
//! placed the call, through the API; never logged.

use ivr_core::Pii;

/// Most events a core holds before the task takes them (oldest dropped).
pub const DEBUG_QUEUE: usize = 256;

/// One thing the debugger shows.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DebugEvent {
    /// A transcript of the caller's turn.
    Heard {
        /// The words.
        text: Pii<String>,
        /// The recogniser's confidence, 0..1.
        confidence: f32,
        /// The language transcribed in (`da`, `en`).
        lang: Option<String>,
    },
    /// A key the flow received.
    Key {
        /// The key.
        key: char,
    },
    /// The flow moved.
    Flow {
        /// The step it is at (`flow/step`).
        step: String,
        /// The intents this turn led to, in order (an answer carried from
        /// the caller's earlier words can settle the next question at once).
        intents: Vec<String>,
        /// The interpreter's explanations: intent candidates with their
        /// scores, values heard, answers carried from earlier turns.
        explanations: Vec<Pii<String>>,
        /// All variables now (name, value as the flow would say it).
        variables: Vec<(String, Pii<String>)>,
    },
    /// An integration request went out.
    Integration {
        /// The request (personal fields redacted).
        request: String,
    },
    /// Its answer came back.
    IntegrationResult {
        /// The answer (personal fields redacted).
        response: String,
        /// How long it took, in ms.
        ms: u64,
    },
    /// A caller turn was answered: its timings, in ms (-1: not measured).
    Turn {
        /// End of the caller's turn to the first reply packet.
        latency_ms: i64,
        /// Speech recognition.
        stt_ms: i64,
        /// Synthesis of the reply's first audio.
        tts_ms: i64,
        /// Pacing until the first packet left.
        pacing_ms: i64,
        /// The reply came from a speculative recognition.
        eager: bool,
    },
}
