//! Keys instead of speech: what a question says when the caller must use the
//! keypad because the speech recogniser could not take their words (its
//! queue was full in a crisis peak, or no model is loaded).
//!
//! The notice is made from the question itself, so every menu gets one
//! without the flow writing it: a menu names the key of each option that
//! has one ("Tryk 1 for at bestille eller aflyse en tid til pas, 2 for ...",
//! from the intents' `clarify` words, or their first keyword), a yes/no
//! question says 1 and 2, a number, date or CPR question says how to key it
//! in. It uses only the flow's own words, so it is static speech: rendered
//! once at load with the other static prompts ([`Municipality::static_prompts`])
//! and played from the prompt cache, costing no synthesis in a peak.
//!
//! A question that takes no keys, or free text (`expect = "text"`, which
//! keys cannot answer), has no notice: [`keys_notice`] is `None`.
//!
//! [`Municipality::static_prompts`]: crate::model::Municipality::static_prompts

use ivr_core::Lang;

use crate::model::{Expect, Gather};

/// Said once, when a call first falls back to keys.
pub fn busy_notice(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "Our speech recognition is busy right now, so please use your keypad.",
        _ => "Talegenkendelsen har travlt lige nu, så brug venligst tastaturet.",
    }
}

/// What to press to answer a yes/no question (also a confirmation).
pub fn yes_no_notice(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "Press 1 for yes or 2 for no.",
        _ => "Tryk 1 for ja eller 2 for nej.",
    }
}

/// What to press to answer `g` in `lang`, or `None` when keys cannot answer it.
pub fn keys_notice(g: &Gather, lang: Lang) -> Option<String> {
    if !g.dtmf {
        return None;
    }
    let en = lang == Lang::En;
    Some(match g.expect {
        Expect::Intent => menu_notice(g, lang)?,
        Expect::YesNo => yes_no_notice(lang).to_string(),
        Expect::Date => if en {
            "Key in the day and the month as four digits, for example 0 7 1 2 for the seventh of December."
        } else {
            "Indtast dag og måned med fire cifre, for eksempel 0 7 1 2 for den syvende december."
        }
        .to_string(),
        Expect::Time => if en {
            "Key in the time as four digits, for example 1 4 3 0."
        } else {
            "Indtast klokkeslættet med fire cifre, for eksempel 1 4 3 0."
        }
        .to_string(),
        Expect::Cpr | Expect::Phone | Expect::Number | Expect::Digits => if en {
            "Key in the number and finish with the hash key."
        } else {
            "Indtast nummeret, og afslut med firkant."
        }
        .to_string(),
        Expect::Text => return None,
    })
}

/// "Tryk 1 for at bestille en tid til pas, 2 for kørekort, eller 0 for at
/// tale med en medarbejder." over the intents that have a key, in the
/// flow's order; `None` when none has one.
fn menu_notice(g: &Gather, lang: Lang) -> Option<String> {
    let en = lang == Lang::En;
    let options: Vec<String> = g
        .intents
        .iter()
        .filter_map(|i| {
            let key = i.dtmf.as_deref()?;
            let what = match i
                .clarify
                .as_ref()
                .and_then(|t| t.0.get(&lang))
                .and_then(|t| t.as_static())
            {
                // `clarify` is a verb phrase: "tale med jobcentret".
                Some(c) if en => format!("to {c}"),
                Some(c) => format!("for at {c}"),
                None => {
                    let word = i
                        .keywords
                        .get(&lang)
                        .and_then(|k| k.first())
                        .cloned()
                        .unwrap_or_else(|| i.name.clone());
                    format!("for {word}")
                }
            };
            Some(format!("{key} {what}"))
        })
        .collect();
    let (last, rest) = options.split_last()?;
    let (press, or) = if en {
        ("Press", "or")
    } else {
        ("Tryk", "eller")
    };
    Some(if rest.is_empty() {
        format!("{press} {last}.")
    } else {
        format!("{press} {}, {or} {last}.", rest.join(", "))
    })
}
