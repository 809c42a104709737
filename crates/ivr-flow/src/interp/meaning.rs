//! A turn's meaning made outside the interpreter. Embedding the caller's
//! words with the municipality's sentence encoder costs tens of
//! milliseconds of CPU (e5-small: about 25 ms on a quiet core); a call's
//! engine must not spend them on the thread that paces every call's audio.
//! So the engine asks first which words the interpreter would embed for an
//! event ([`Interpreter::meaning_wanted`]), has them embedded elsewhere
//! ([`MeaningWanted::make`]), hands the result back
//! ([`Interpreter::know_meaning`]) and only then feeds the event: the
//! interpreter finds the vector made and embeds nothing itself.
//!
//! The vector is kept by its words, as the interpreter's own is: a meaning
//! made for other words than the ones the flow reads (a speculative
//! transcript the caller then spoke on from) is never used for them, so a
//! wrong guess costs an embedding, never a wrong answer.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ivr_core::Pii;

use super::{Event, Interpreter};
use crate::semantic::{EncodeError, Role, SentenceEncoder};

/// Words of a caller's turn whose meaning the interpreter would make for an
/// event, and the encoder to make it with ([`Interpreter::meaning_wanted`]).
/// The words are the caller's: personal, never logged (its `Debug` redacts).
#[derive(Clone, Debug)]
pub struct MeaningWanted {
    text: Pii<String>,
    encoder: Arc<dyn SentenceEncoder>,
}

impl MeaningWanted {
    /// Whether `other` asks for the meaning of the same words by the same encoder.
    pub fn same_words(&self, other: &MeaningWanted) -> bool {
        self.text.expose() == other.text.expose() && Arc::ptr_eq(&self.encoder, &other.encoder)
    }

    /// Makes the meaning: a blocking call that takes the encoder's time
    /// (tens of milliseconds with e5), for a thread that may spend it.
    pub fn make(self) -> Result<Meaning, EncodeError> {
        let vector: Arc<[f32]> = self.encoder.embed(self.text.expose(), Role::Query)?.into();
        Ok(Meaning {
            text: self.text,
            vector: Pii::new(vector),
            encoder: self.encoder,
        })
    }
}

/// A caller's words and their meaning, made outside the interpreter
/// ([`MeaningWanted::make`]), for [`Interpreter::know_meaning`]. Personal
/// (the vector stands for the words): its `Debug` redacts both.
#[derive(Clone, Debug)]
pub struct Meaning {
    text: Pii<String>,
    vector: Pii<Arc<[f32]>>,
    encoder: Arc<dyn SentenceEncoder>,
}

/// While the interpreter finds out which words it would embed (on a copy,
/// [`Interpreter::meaning_wanted`]): nothing is embedded, the first words
/// asked for are noted.
#[derive(Clone, Debug, Default)]
pub(super) enum Probe {
    /// Not probing: meanings are made as asked.
    #[default]
    Off,
    /// Probing; no words asked for yet.
    Looking,
    /// Probing; these words were asked for first.
    Found(Pii<String>),
}

impl Interpreter {
    /// The words the interpreter would embed if `event` came now (and the
    /// encoder), when it has an encoder and their meaning is not made yet:
    /// the turn's words for a menu's intents ("nej, jeg mener ..." read as
    /// what the caller corrected to), or as heard for a question to the
    /// knowledge base. `None`: nothing to embed (no encoder, not speech, a
    /// step that does not read meanings, or the meaning already known).
    ///
    /// Found by running the event on a copy that embeds nothing (as
    /// [`Interpreter::would_answer`] tries an answer) and stops reading the
    /// turn once the words are known, so it names exactly the first words
    /// [`Interpreter::handle`] would embed; words a turn embeds after those
    /// (rare: a declined question then read as an errand in corrected
    /// words, or an earlier turn reused at the next gather) are still
    /// embedded by the interpreter.
    pub fn meaning_wanted(&self, event: &Event, now: DateTime<Utc>) -> Option<MeaningWanted> {
        let encoder = self.muni.encoder.clone()?;
        let Event::Speech { text, .. } = event else {
            return None;
        };
        if text.expose().trim().is_empty() {
            return None;
        }
        let mut copy = self.clone();
        copy.explain = None;
        copy.probe = Probe::Looking;
        copy.handle(event.clone(), now);
        match copy.probe {
            Probe::Found(text) => Some(MeaningWanted { text, encoder }),
            Probe::Off | Probe::Looking => None,
        }
    }

    /// Takes a meaning made outside ([`MeaningWanted::make`]) as the turn's:
    /// the next event whose words are the same uses it instead of embedding
    /// them. A meaning by another encoder than the municipality's (a flow
    /// reload does not change a call's) is ignored.
    pub fn know_meaning(&mut self, meaning: Meaning) {
        let ours = self
            .muni
            .encoder
            .as_ref()
            .is_some_and(|e| Arc::ptr_eq(e, &meaning.encoder));
        if !ours {
            return;
        }
        self.turn_vector = Some(Pii::new((
            meaning.text.into_inner(),
            meaning.vector.into_inner(),
        )));
    }

    /// A copy probing for the words it would embed has found them: the
    /// rest of its turn is moot (cut short to save the call's thread the
    /// scoring).
    pub(super) fn probe_found(&self) -> bool {
        matches!(self.probe, Probe::Found(_))
    }

    /// While probing: notes the first words asked for; true then (no
    /// meaning is made). False: not probing, make it.
    pub(super) fn probed(&mut self, text: &str) -> bool {
        match self.probe {
            Probe::Off => false,
            Probe::Looking => {
                self.probe = Probe::Found(Pii::new(text.to_string()));
                true
            }
            Probe::Found(_) => true,
        }
    }
}
