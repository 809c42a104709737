//! Everything the caller already said counts: the utterances of a call, the
//! values heard in them, and which gather each has answered.
//!
//! The interpreter keeps every speech turn of the call here (sub-flows
//! share it: it belongs to the call, not to a flow). Before a gather asks
//! its question it offers the earlier utterances, newest first, to its own
//! understanding (the same code that reads an answer to the question); the
//! first one understood answers it, and the gather confirms it instead of
//! asking (or takes it without a word: `prefill` in `docs/flows.md`).
//!
//! Rules that keep this from answering the wrong question:
//! - an utterance never answers the gather that heard it, and answers each
//!   gather at most once per call (a "nej" to a confirmation, or a flow going
//!   back to the question, asks it normally);
//! - answers to CPR, phone and digit questions are not kept: they are digits
//!   about the caller, not words that answer other questions;
//! - keys are never kept: a key answers the question it was pressed for.
//!
//! Values are parsed relative to the moment each utterance was heard ("på
//! mandag" said at 23:59 means the Monday after that day).

use chrono::{DateTime, Utc};
use chrono_tz::Europe::Copenhagen;
use ivr_core::{Lang, Pii};

use crate::{model::Expect, model::StepId, understand};

/// The most utterances kept per call (the oldest go first).
pub const MAX_UTTERANCES: usize = 24;

/// One speech turn of the caller.
#[derive(Debug, Clone)]
pub struct Utterance {
    /// The words as transcribed.
    pub text: Pii<String>,
    /// The language they were read in.
    pub lang: Lang,
    /// When they were heard.
    pub at: DateTime<Utc>,
    /// The gather that heard them.
    pub step: StepId,
    /// Gathers they have answered (the one that heard them included).
    pub used_by: Vec<StepId>,
    /// Values of each kind found in them (plain: ISO date, HH:MM, digits).
    pub values: Vec<(Expect, Pii<String>)>,
    /// 1-based turn number in the call (for explanations).
    pub turn: usize,
}

/// The call's utterances.
#[derive(Debug, Clone, Default)]
pub struct Heard {
    utterances: Vec<Utterance>,
    turns: usize,
}

/// The values of the kinds a flow can test for (`heard = "date"`) found in
/// `text`, read as said at `at`.
pub fn values_in(text: &str, at: DateTime<Utc>) -> Vec<(Expect, Pii<String>)> {
    let today = at.with_timezone(&Copenhagen).date_naive();
    let mut v = Vec::new();
    if let Some(d) = understand::parse_date(text, today) {
        v.push((Expect::Date, Pii::new(d.format("%Y-%m-%d").to_string())));
    }
    if let Some(t) = understand::parse_time(text) {
        v.push((Expect::Time, Pii::new(t.format("%H:%M").to_string())));
    }
    if let Some(p) = understand::parse_phone(text) {
        v.push((Expect::Phone, p));
    }
    if let Ok(c) = understand::parse_cpr(text) {
        v.push((Expect::Cpr, c.digits));
    }
    v
}

impl Heard {
    /// Keeps an utterance heard at gather `step` expecting `expect`. A
    /// transcript of the same turn again (recognised once more, e.g. in
    /// another language) replaces the previous one. Returns whether it was
    /// kept (answers to CPR, phone and digit questions are not).
    pub fn keep(
        &mut self,
        text: &Pii<String>,
        lang: Lang,
        at: DateTime<Utc>,
        step: StepId,
        expect: Expect,
        same_turn: bool,
    ) -> bool {
        if matches!(expect, Expect::Cpr | Expect::Phone | Expect::Digits)
            || text.expose().trim().is_empty()
        {
            return false;
        }
        if same_turn {
            if let Some(last) = self.utterances.last_mut() {
                if last.step == step {
                    last.text = text.clone();
                    last.lang = lang;
                    last.values = values_in(text.expose(), last.at);
                    return true;
                }
            }
        }
        self.turns += 1;
        if self.utterances.len() >= MAX_UTTERANCES {
            self.utterances.remove(0);
        }
        self.utterances.push(Utterance {
            text: text.clone(),
            lang,
            at,
            step,
            used_by: vec![step],
            values: values_in(text.expose(), at),
            turn: self.turns,
        });
        true
    }

    /// Utterances that have not answered gather `step` yet, newest first
    /// (indexes for [`Heard::get`] and [`Heard::mark_used`]).
    pub fn candidates(&self, step: StepId) -> Vec<usize> {
        (0..self.utterances.len())
            .rev()
            .filter(|&i| !self.utterances[i].used_by.contains(&step))
            .collect()
    }

    /// An utterance by index.
    pub fn get(&self, i: usize) -> Option<&Utterance> {
        self.utterances.get(i)
    }

    /// Records that utterance `i` answered gather `step`.
    pub fn mark_used(&mut self, i: usize, step: StepId) {
        if let Some(u) = self.utterances.get_mut(i) {
            if !u.used_by.contains(&step) {
                u.used_by.push(step);
            }
        }
    }

    /// Whether a value of kind `e` was heard in any utterance of the call.
    pub fn has(&self, e: Expect) -> bool {
        self.utterances
            .iter()
            .any(|u| u.values.iter().any(|(k, _)| *k == e))
    }

    /// All utterances, oldest first.
    pub fn all(&self) -> &[Utterance] {
        &self.utterances
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FlowId, StepId};

    fn at() -> DateTime<Utc> {
        // Saturday 5 December 2026, 10:00 in Copenhagen.
        DateTime::parse_from_rfc3339("2026-12-05T10:00:00+01:00")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn step(n: usize) -> StepId {
        StepId {
            flow: FlowId(0),
            step: n as u32,
        }
    }

    #[test]
    fn a_weekday_and_a_time_in_a_long_turn_are_heard_relative_to_the_call_date() {
        let v = values_in(
            "jeg kan ikke komme til mit møde i jobcentret på mandag klokken ti",
            at(),
        );
        let get = |e| {
            v.iter()
                .find(|(k, _)| *k == e)
                .map(|(_, x)| x.expose().clone())
        };
        assert_eq!(get(Expect::Date).as_deref(), Some("2026-12-07"));
        assert_eq!(get(Expect::Time).as_deref(), Some("10:00"));
        assert_eq!(get(Expect::Phone), None);
    }

    #[test]
    fn a_phone_number_in_pairs_is_heard_inside_a_sentence() {
        let v = values_in(
            "kan I ringe mig op på toogtyve fireogtredive seksoghalvtreds otteoghalvfjerds",
            at(),
        );
        assert!(v
            .iter()
            .any(|(k, x)| *k == Expect::Phone && x.expose() == "22345678"));
    }

    #[test]
    fn answers_to_cpr_questions_are_not_kept_and_an_utterance_never_answers_its_own_gather() {
        let mut h = Heard::default();
        let cpr = Pii::new("0312901234".to_string());
        assert!(!h.keep(&cpr, Lang::Da, at(), step(1), Expect::Cpr, false));
        let t = Pii::new("jeg skal aflyse min tid på mandag".to_string());
        assert!(h.keep(&t, Lang::Da, at(), step(2), Expect::Intent, false));
        assert!(h.candidates(step(2)).is_empty());
        assert_eq!(h.candidates(step(3)), vec![0]);
        h.mark_used(0, step(3));
        assert!(h.candidates(step(3)).is_empty());
        assert!(h.has(Expect::Date));
        assert!(!h.has(Expect::Phone));
    }

    #[test]
    fn the_same_turn_recognised_again_replaces_the_first_transcript() {
        let mut h = Heard::default();
        let a = Pii::new("jeg vil aflyse".to_string());
        let b = Pii::new("I want to cancel".to_string());
        h.keep(&a, Lang::Da, at(), step(1), Expect::Intent, false);
        h.keep(&b, Lang::En, at(), step(1), Expect::Intent, true);
        assert_eq!(h.all().len(), 1);
        assert_eq!(h.all()[0].lang, Lang::En);
        assert_eq!(h.all()[0].turn, 1);
    }

    #[test]
    fn only_the_newest_utterances_are_kept() {
        let mut h = Heard::default();
        for i in 0..(MAX_UTTERANCES + 5) {
            let t = Pii::new(format!("turn {i}"));
            h.keep(&t, Lang::Da, at(), step(i), Expect::Intent, false);
        }
        assert_eq!(h.all().len(), MAX_UTTERANCES);
        assert_eq!(h.all()[0].turn, 6);
    }
}
