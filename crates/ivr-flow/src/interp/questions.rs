//! Questions anywhere: the interpreter's side of the knowledge base
//! ([`crate::knowledge`]). At a gather of a flow with a `[questions]` table,
//! a caller's question is answered from the municipality's knowledge, then
//! "Fik du svar på dit spørgsmål?" is asked; two close entries are told
//! apart by asking which one; a question the knowledge base cannot answer
//! is declined plainly and routed. The interrupted gather stays the one the
//! interpreter waits at, so the flow resumes there unless `[questions]`
//! names another step. See `docs/knowledge.md`.

use super::*;
use crate::knowledge::{self, Decision};

/// What the interpreter waits for inside a question.
#[derive(Debug, Clone)]
pub(super) enum Pending {
    /// "Did that answer your question?" after reading this entry.
    Confirm { entry: usize, tries: u32 },
    /// "Do you mean A or B?"
    Clarify {
        a: usize,
        b: usize,
        question: Pii<String>,
        tries: u32,
    },
}

impl Pending {
    /// True for "do you mean A or B?".
    pub(super) fn is_clarify(&self) -> bool {
        matches!(self, Pending::Clarify { .. })
    }
}

/// One question of a call, for the call record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionRecord {
    /// The entry that answered it; `None` when it was declined.
    pub entry: Option<String>,
    /// Whether the caller said the answer helped (`None`: not asked or not
    /// answered).
    pub confirmed: Option<bool>,
}

impl Interpreter {
    /// The flow's `[questions]` when questions are answered at this gather.
    fn questions_here(&self, id: StepId, g: &Gather) -> Option<Questions> {
        // Free text (a message, a name) is kept as the caller said it.
        if !g.questions || g.expect == Expect::Text || self.muni.knowledge.is_empty() {
            return None;
        }
        self.muni.flow(id.flow)?.questions.clone()
    }

    /// Before the gather's own understanding: a question (asked as one) that
    /// the knowledge base answers or narrows to two entries. True when the
    /// turn was taken.
    #[allow(clippy::too_many_arguments)] // reason: one turn's facts, passed as they are
    pub(super) fn question_first(
        &mut self,
        id: StepId,
        g: &Gather,
        heard: &str,
        confidence: f32,
        lang: Lang,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) -> bool {
        if confidence < MIN_STT_CONFIDENCE || !knowledge::looks_like_question(heard) {
            return false;
        }
        if self.questions_here(id, g).is_none() {
            return false;
        }
        let today = now.with_timezone(&Copenhagen).date_naive();
        // The words' meaning, made once for every look-up below (when the
        // knowledge was embedded by the municipality's encoder).
        let query = self.meaning_of(heard);
        if self.probe_found() {
            // A copy finding out which words it would embed: it knows.
            return false;
        }
        let same_encoder = match (self.muni.knowledge.encoder(), &self.muni.encoder) {
            (Some(k), Some(m)) => Arc::ptr_eq(k, m),
            _ => false,
        };
        let kq = query.as_deref().filter(|_| same_encoder);
        let r = self.muni.knowledge.retrieve_with(heard, lang, today, kq);
        // Words that fit another of the municipality's languages better are
        // left to the language rules (recognised again with identification),
        // so an English question is not answered in Danish.
        let best = |r: &knowledge::Retrieval| r.candidates.first().map_or(0.0, |c| c.score);
        if self
            .muni
            .languages
            .iter()
            .filter(|l| **l != lang)
            .any(|l| best(&self.muni.knowledge.retrieve_with(heard, *l, today, kq)) > best(&r))
        {
            return false;
        }
        if !matches!(r.decision, Decision::Decline)
            && self.errand_rather_than_question(g, heard, lang, &r, query.as_deref())
        {
            return false;
        }
        match r.decision {
            Decision::Answer(e) => {
                self.speak_in(lang, out);
                self.answer(e, heard, now, out);
                true
            }
            Decision::Clarify(a, b) => {
                self.speak_in(lang, out);
                self.clarify(a, b, heard, out);
                true
            }
            Decision::Decline => false,
        }
    }

    /// True when the turn reads more like one of the gather's errands than
    /// like the knowledge base's best question ("kan jeg flytte min tid til
    /// pas?" is a booking, not a question about passports): the meaning of
    /// the closest intent example is closer than the closest phrasing of the
    /// best entry (raw cosines of the same encoder, so comparable). Without
    /// an encoder the question is answered as before.
    fn errand_rather_than_question(
        &self,
        g: &Gather,
        heard: &str,
        lang: Lang,
        r: &knowledge::Retrieval,
        query: Option<&[f32]>,
    ) -> bool {
        if g.expect != Expect::Intent {
            return false;
        }
        let Some(entry_cos) = r.candidates.first().and_then(|c| c.cosine) else {
            return false;
        };
        let Some(query) = query else {
            return false;
        };
        let langs = self.muni.languages.clone();
        intents::score(g, heard, lang, &langs, Some(query))
            .iter()
            .filter_map(|s| s.cosine)
            .any(|c| c > entry_cos)
    }

    /// After the gather did not understand the turn: a question is declined
    /// plainly and routed. True when the turn was taken.
    pub(super) fn question_last(
        &mut self,
        id: StepId,
        g: &Gather,
        heard: &str,
        confidence: f32,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) -> bool {
        if confidence < MIN_STT_CONFIDENCE || !knowledge::looks_like_question(heard) {
            return false;
        }
        let Some(q) = self.questions_here(id, g) else {
            return false;
        };
        self.decline(&q, now, out);
        true
    }

    /// [`Self::question_last`] for a turn identified in another of the
    /// municipality's languages: declined in that language.
    #[allow(clippy::too_many_arguments)] // reason: one turn's facts, passed as they are
    pub(super) fn question_last_in(
        &mut self,
        id: StepId,
        g: &Gather,
        heard: &str,
        confidence: f32,
        lang: Lang,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) -> bool {
        if confidence < MIN_STT_CONFIDENCE
            || !knowledge::looks_like_question(heard)
            || self.questions_here(id, g).is_none()
        {
            return false;
        }
        self.speak_in(lang, out);
        self.question_last(id, g, heard, confidence, now, out)
    }

    fn speak_in(&mut self, lang: Lang, out: &mut Vec<Action>) {
        if lang != self.lang && self.muni.languages.contains(&lang) {
            self.lang = lang;
            out.push(Action::SetLanguage(lang));
        }
    }

    /// Reads an entry's answer and asks whether it helped.
    fn answer(&mut self, e: usize, heard: &str, now: DateTime<Utc>, out: &mut Vec<Action>) {
        let muni = self.muni.clone();
        let Some(entry) = muni.knowledge.entries().get(e) else {
            return;
        };
        let text = knowledge::answer_text(entry, &muni.departments, heard, self.lang, now);
        // Written by the municipality or computed from its hours: public.
        out.push(Action::Say {
            speech: Speech::Static(text),
            lang: self.lang,
            barge_in: true,
        });
        self.record.questions.push(QuestionRecord {
            entry: Some(entry.id.clone()),
            confirmed: None,
        });
        self.set_var("question_entry", Value::Text(entry.id.clone()), true);
        self.set_var(
            "question_department",
            Value::Text(entry.department.clone()),
            true,
        );
        self.set_var(
            "question_follow_up",
            Value::Text(entry.follow_up.as_str().to_string()),
            true,
        );
        self.question = Some(Pending::Confirm { entry: e, tries: 0 });
        self.say_sys("did_it_answer", out);
        self.listen_for_reply(out);
    }

    /// "Mener du A, eller B?"
    fn clarify(&mut self, a: usize, b: usize, heard: &str, out: &mut Vec<Action>) {
        let kb = &self.muni.knowledge;
        let (ta, tb) = match (kb.entries().get(a), kb.entries().get(b)) {
            (Some(x), Some(y)) => (x.title(self.lang), y.title(self.lang)),
            _ => return,
        };
        let text = match self.lang {
            Lang::En => {
                format!("Do you mean {ta}, or {tb}? Say the first or the second, or press 1 or 2.")
            }
            _ => format!(
                "Mener du {ta}, eller {tb}? Sig den første eller den anden, eller tryk 1 eller 2."
            ),
        };
        out.push(Action::Say {
            speech: Speech::Static(text),
            lang: self.lang,
            barge_in: true,
        });
        self.question = Some(Pending::Clarify {
            a,
            b,
            question: Pii::new(heard.to_string()),
            tries: 0,
        });
        self.listen_for_reply(out);
    }

    fn listen_for_reply(&mut self, out: &mut Vec<Action>) {
        self.dtmf.clear();
        out.push(Action::Gather {
            speech: true,
            dtmf: true,
            hints: Vec::new(),
            lang: self.lang,
            timeout: Duration::from_secs(6),
            max_digits: 1,
            barge_in: true,
            identify: Vec::new(),
            // Which entry, or whether it helped: read as free words (the
            // reply is matched against the entries' titles here, not by
            // the recogniser).
            candidates: Vec::new(),
        });
    }

    /// The caller's turn while a question is open.
    pub(super) fn on_question_reply(
        &mut self,
        id: StepId,
        g: &Gather,
        ev: Event,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) {
        let Some(pending) = self.question.clone() else {
            return;
        };
        let Some(q) = self.questions_here(id, g) else {
            self.question = None;
            return;
        };
        let (reply, key): (Option<String>, Option<char>) = match ev {
            Event::Speech {
                text, confidence, ..
            } => {
                self.heard_speech = true;
                if confidence < MIN_STT_CONFIDENCE {
                    (None, None)
                } else {
                    (Some(text.expose().clone()), None)
                }
            }
            Event::Dtmf(k) => (None, Some(k.as_char())),
            Event::NoInput => (None, None),
            // The recogniser was full: no words; the call goes on with keys.
            Event::SpeechUnavailable => {
                self.keys_only = true;
                (None, None)
            }
            Event::Result(_) | Event::TransferFailed { .. } | Event::Hangup => return,
        };
        match pending {
            Pending::Confirm { entry, tries } => {
                let yes = match (&reply, key) {
                    (_, Some('1')) => Some(true),
                    (_, Some('2')) => Some(false),
                    (Some(r), _) => understand::parse_yes_no(r).or_else(|| {
                        // "et" / "to" for the keys the prompt offers.
                        match understand::parse_number(r) {
                            Some(1) if r.split_whitespace().count() <= 2 => Some(true),
                            Some(2) if r.split_whitespace().count() <= 2 => Some(false),
                            _ => None,
                        }
                    }),
                    _ => None,
                };
                match yes {
                    Some(true) => {
                        self.confirm(Some(true));
                        self.say_sys("glad", out);
                        self.resume(id, g, &q, now, out);
                    }
                    Some(false) => {
                        self.confirm(Some(false));
                        self.unresolved(entry, &q, id, g, now, out);
                    }
                    None => {
                        // Another question instead of yes or no.
                        if let Some(r) = reply.as_deref() {
                            if knowledge::looks_like_question(r) {
                                self.question = None;
                                if !self.question_first(id, g, r, 1.0, self.lang, now, out) {
                                    self.decline(&q, now, out);
                                }
                                return;
                            }
                        }
                        if tries == 0 {
                            self.question = Some(Pending::Confirm { entry, tries: 1 });
                            self.say_sys(
                                if reply.is_none() && key.is_none() {
                                    "silence"
                                } else {
                                    "sorry"
                                },
                                out,
                            );
                            self.say_sys("did_it_answer_keys", out);
                            self.listen_for_reply(out);
                        } else {
                            // Answered, not confirmed: go on.
                            self.resume(id, g, &q, now, out);
                        }
                    }
                }
            }
            Pending::Clarify {
                a,
                b,
                question,
                tries,
            } => {
                let chosen = match (&reply, key) {
                    (_, Some('1')) => Some(a),
                    (_, Some('2')) => Some(b),
                    (Some(r), _) => self.muni.knowledge.choose_between(a, b, r, self.lang),
                    _ => None,
                };
                match chosen {
                    Some(e) => {
                        let heard = question.expose().clone();
                        self.question = None;
                        self.answer(e, &heard, now, out);
                    }
                    None if tries == 0 && reply.is_none() && key.is_none() => {
                        self.question = Some(Pending::Clarify {
                            a,
                            b,
                            question,
                            tries: 1,
                        });
                        self.say_sys("silence", out);
                        self.clarify_again(a, b, out);
                    }
                    None => self.decline(&q, now, out),
                }
            }
        }
    }

    fn clarify_again(&mut self, a: usize, b: usize, out: &mut Vec<Action>) {
        let heard = match &self.question {
            Some(Pending::Clarify { question, .. }) => question.expose().clone(),
            _ => String::new(),
        };
        self.clarify(a, b, &heard, out);
        if let Some(Pending::Clarify { tries, .. }) = &mut self.question {
            *tries = 1;
        }
    }

    fn confirm(&mut self, yes: Option<bool>) {
        if let Some(last) = self.record.questions.last_mut() {
            last.confirmed = yes;
        }
    }

    /// Back to the flow after an answer: `resume`, or the interrupted
    /// question again.
    fn resume(
        &mut self,
        id: StepId,
        g: &Gather,
        q: &Questions,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) {
        self.question = None;
        match q.resume {
            Some(step) => self.waiting_then_run(step, now, out),
            None => {
                self.attempts = 0;
                self.dtmf.clear();
                self.ask(g, &g.prompt, None, now, out);
                self.waiting = Waiting::Gather(id);
            }
        }
    }

    /// The answer did not help: `unresolved`, or the entry's department
    /// (when open), or when it opens and back to the flow.
    fn unresolved(
        &mut self,
        e: usize,
        q: &Questions,
        id: StepId,
        g: &Gather,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) {
        self.question = None;
        if let Some(step) = q.unresolved {
            self.waiting_then_run(step, now, out);
            return;
        }
        let dept = self
            .muni
            .knowledge
            .entries()
            .get(e)
            .map(|x| x.department.clone())
            .unwrap_or_else(|| self.muni.fallback.clone());
        let open = self
            .muni
            .departments
            .get(&dept)
            .is_some_and(|d| d.hours.is_open(now));
        if open && !self.failed_transfers.contains(&dept) {
            self.say_sys("to_human", out);
            self.waiting = Waiting::Nothing;
            self.transfer(&dept, &[], None, now, out);
        } else {
            self.say_closed(&dept, now, out);
            self.resume(id, g, q, now, out);
        }
    }

    /// "I cannot answer that", then `decline`, or a human.
    fn decline(&mut self, q: &Questions, now: DateTime<Utc>, out: &mut Vec<Action>) {
        self.question = None;
        self.record.questions.push(QuestionRecord {
            entry: None,
            confirmed: None,
        });
        self.say_sys("cannot_answer", out);
        self.waiting = Waiting::Nothing;
        match q.decline {
            Some(step) => self.run(step, now, out),
            None => self.give_up(now, out),
        }
    }
}
