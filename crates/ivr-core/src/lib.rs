//! Shared vocabulary of the IVR engine.
//!
//! Every other crate depends on this one and on nothing of each other's: the
//! types here are what travels between the SIP core, the media core, speech,
//! the flow interpreter and the integrations.
//!
//! - [`CallId`]: the engine's reference for one call (safe to log).
//! - [`Pii`]: personal data (phone numbers, CPR numbers, transcripts) whose
//!   `Debug`/`Display` redact, so a log line cannot leak it by accident.
//! - [`Lang`]: the languages a flow speaks.
//! - [`Dtmf`]: one telephone keypad key (RFC 4733 event codes 0-15).
//! - [`Speech`]: what the bot says, cacheable ([`Speech::Static`]) or
//!   personal ([`Speech::Personal`], never cached or logged).
//! - [`Pcm`]: mono 16-bit PCM audio at a known sample rate.
//! - `resample` (feature `resample`): whole-clip sample-rate conversion.
//! - [`dates`]: month and weekday names in Danish and English.
//! - [`sched`]: background threads at a lower CPU priority than the media path.
//! - [`WallClock`]: wall-clock time as an input, so tests can stand at 16:59
//!   on Christmas Eve. Monotonic time is passed to sans-IO cores as
//!   `std::time::Instant` arguments, never read by them.

mod audio;
mod clock;
pub mod dates;
mod dtmf;
mod ids;
mod lang;
mod pii;
#[cfg(feature = "resample")]
pub mod resample;
pub mod sched;
mod speech;

pub use audio::{Pcm, ENGINE_RATE, NARROWBAND_RATE};
pub use clock::{FixedClock, SystemClock, WallClock};
pub use dtmf::{Dtmf, DtmfError};
pub use ids::CallId;
pub use lang::{Lang, LangError};
pub use pii::Pii;
pub use speech::Speech;
