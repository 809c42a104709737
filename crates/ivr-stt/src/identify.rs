//! Which of the languages a flow allows the caller speaks: the decision rule
//! over whisper's language probabilities.
//!
//! whisper scores all of its 99 languages from the start of the utterance.
//! Only the allowed ones matter (`scores`: their probabilities renormalised
//! among themselves), but the raw scores alone decide badly: whisper base
//! rates English far above Danish whenever it is unsure, and on robotic
//! (espeak-ng) Danish it is always unsure: it puts that audio in Latin, Thai
//! or Chinese, Danish 10⁻³ to 10⁻⁶, English 10⁻¹ to 10⁻². On the speech test
//! set the restricted odds English : Danish were above e⁷ for every English
//! utterance and above it for a quarter of the Danish ones too, so a plain
//! arg-max called 1 of 20 Danish utterances Danish.
//!
//! The rule therefore adds, in log space, a per-language `bias` (whisper's
//! under-rating of that language, measured) and a `margin` for the call's
//! current language (a caller mostly goes on in the language of the call;
//! leaving it needs evidence), and picks the highest:
//!
//! ```text
//! chosen = argmax over allowed l of  ln p(l) + bias(l) + (l == current ? margin : 0)
//! ```
//!
//! With two languages this is a threshold on the log-odds
//! `d = ln p(en) − ln p(da)`: from Danish the call moves to English when
//! `d > bias(da) + margin`, from English to Danish when `d < bias(da) − margin`.
//! The defaults and the accuracy they give are in `tests/language_id.rs`.

use std::collections::BTreeMap;

use ivr_core::Lang;
use serde::Deserialize;

/// The outcome of identification.
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageId {
    /// The language chosen (and transcribed in).
    pub chosen: Lang,
    /// whisper's probabilities of the allowed languages, renormalised
    /// among them (they sum to 1), in the order the request gave them.
    pub scores: Vec<(Lang, f32)>,
}

/// The `[stt.identify]` settings: the decision rule's constants.
///
/// ```toml
/// [stt.identify]
/// margin = 1.0            # nats in favour of the call's current language
/// bias = { da = 5.0 }     # nats added to a language whisper under-rates
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentifyConfig {
    /// Log-odds (nats) in favour of the current language: another language
    /// must beat it by this much. 0 = no prior.
    pub margin: f32,
    /// Per-language correction (nats) added to whisper's log probability:
    /// how much the model under-rates that language relative to the others
    /// (whisper base: Danish against English). A Danish fine-tune needs less.
    pub bias: BTreeMap<Lang, f32>,
}

impl Default for IdentifyConfig {
    fn default() -> Self {
        Self {
            margin: DEFAULT_MARGIN,
            bias: BTreeMap::from([(Lang::Da, DEFAULT_DA_BIAS)]),
        }
    }
}

/// Default `margin` (see `tests/language_id.rs` for the measurement).
pub const DEFAULT_MARGIN: f32 = 1.0;
/// Default `bias` of Danish (see `tests/language_id.rs`).
pub const DEFAULT_DA_BIAS: f32 = 5.0;

/// Floor of a probability before taking its logarithm (whisper can give 0).
const MIN_PROB: f32 = 1e-30;

impl IdentifyConfig {
    /// Applies the rule to whisper's probabilities of the allowed languages
    /// (`probs`: each allowed language with its probability among all of
    /// whisper's; not renormalised). `current`: the call's language, if the
    /// turn has one among them (otherwise no margin applies). An empty
    /// `probs` chooses `current`, or Danish.
    pub fn choose(&self, current: Option<Lang>, probs: &[(Lang, f32)]) -> LanguageId {
        let total: f32 = probs.iter().map(|(_, p)| p.max(0.0)).sum();
        let scores = probs
            .iter()
            .map(|&(l, p)| {
                let share = if total > 0.0 {
                    p.max(0.0) / total
                } else {
                    1.0 / probs.len() as f32
                };
                (l, share)
            })
            .collect();
        let rated = |&(l, p): &(Lang, f32)| {
            let prior = if Some(l) == current { self.margin } else { 0.0 };
            p.max(MIN_PROB).ln() + self.bias.get(&l).copied().unwrap_or(0.0) + prior
        };
        // The first of equals wins: the current language when it is first.
        let mut best: Option<(Lang, f32)> = None;
        for entry in probs {
            let r = rated(entry);
            if best.is_none_or(|(_, b)| r > b) {
                best = Some((entry.0, r));
            }
        }
        let chosen = best.map(|(l, _)| l).or(current).unwrap_or(Lang::Da);
        LanguageId { chosen, scores }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(margin: f32, da_bias: f32) -> IdentifyConfig {
        IdentifyConfig {
            margin,
            bias: BTreeMap::from([(Lang::Da, da_bias)]),
        }
    }

    #[test]
    fn scores_are_the_allowed_probabilities_renormalised() {
        let id = rule(0.0, 0.0).choose(None, &[(Lang::Da, 0.1), (Lang::En, 0.3)]);
        assert_eq!(id.chosen, Lang::En);
        assert_eq!(id.scores, vec![(Lang::Da, 0.25), (Lang::En, 0.75)]);
    }

    #[test]
    fn the_current_language_holds_unless_another_beats_it_by_the_margin() {
        // ln(0.6/0.4) = 0.41 nats for English.
        let probs = [(Lang::Da, 0.4), (Lang::En, 0.6)];
        assert_eq!(
            rule(1.0, 0.0).choose(Some(Lang::Da), &probs).chosen,
            Lang::Da
        );
        assert_eq!(
            rule(0.3, 0.0).choose(Some(Lang::Da), &probs).chosen,
            Lang::En
        );
        assert_eq!(
            rule(1.0, 0.0).choose(Some(Lang::En), &probs).chosen,
            Lang::En
        );
    }

    #[test]
    fn a_bias_corrects_a_language_whisper_underrates() {
        // Robotic Danish as whisper base hears it: English e^3 times likelier.
        let probs = [(Lang::Da, 0.001), (Lang::En, 0.02)];
        assert_eq!(
            rule(0.0, 0.0).choose(Some(Lang::En), &probs).chosen,
            Lang::En
        );
        assert_eq!(
            rule(1.0, 5.0).choose(Some(Lang::En), &probs).chosen,
            Lang::Da
        );
        // Clear English (odds e^10) still switches a Danish call.
        let probs = [(Lang::Da, 0.00004), (Lang::En, 0.9)];
        assert_eq!(
            rule(1.0, 5.0).choose(Some(Lang::Da), &probs).chosen,
            Lang::En
        );
    }

    #[test]
    fn zero_or_missing_probabilities_do_not_panic() {
        let id = rule(1.0, 5.0).choose(Some(Lang::En), &[(Lang::Da, 0.0), (Lang::En, 0.0)]);
        assert_eq!(id.chosen, Lang::Da, "bias 5 beats margin 1 on equal scores");
        assert_eq!(id.scores, vec![(Lang::Da, 0.5), (Lang::En, 0.5)]);
        assert_eq!(rule(1.0, 5.0).choose(Some(Lang::En), &[]).chosen, Lang::En);
        assert_eq!(rule(1.0, 5.0).choose(None, &[]).chosen, Lang::Da);
    }

    #[test]
    fn the_section_reads_from_toml() {
        let c: IdentifyConfig =
            toml::from_str("margin = 2.0\nbias = { da = 3.5, en = 0.5 }\n").unwrap();
        assert_eq!(c.margin, 2.0);
        assert_eq!(c.bias.get(&Lang::Da), Some(&3.5));
        assert_eq!(c.bias.get(&Lang::En), Some(&0.5));
        let d: IdentifyConfig = toml::from_str("").unwrap();
        assert_eq!(d, IdentifyConfig::default());
    }
}
