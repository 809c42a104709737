//! Splitting a reply into sentences so the first can play while the rest is
//! synthesised.

/// Words that end in a full stop without ending the sentence (Danish, English).
const ABBREVIATIONS: [&str; 24] = [
    "f.eks", "bl.a", "ca", "kl", "nr", "dvs", "evt", "mht", "hr", "fr", "dr", "tlf", "jf", "ang",
    "vedr", "pga", "inkl", "ekskl", "mr", "mrs", "ms", "st", "e.g", "i.e",
];

/// Splits `text` at `.`, `?` and `!` followed by white space and a capital letter
/// (or a line break), leaving abbreviations (`kl. 10`, `f.eks. her`), decimals and
/// dates (`10.30`, `3. marts`) alone. Pieces are trimmed; empty ones dropped.
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if c == '\n' {
            push(&mut out, &text[start..pos]);
            start = pos + 1;
        } else if matches!(c, '.' | '?' | '!') {
            // Take a run of closing punctuation: "?!", "...", ".\"".
            let mut j = i + 1;
            while j < chars.len()
                && matches!(chars[j].1, '.' | '?' | '!' | '"' | '\'' | ')' | '»' | '”')
            {
                j += 1;
            }
            let end = chars.get(j).map_or(text.len(), |(p, _)| *p);
            let next_word = chars[j..]
                .iter()
                .find(|(_, ch)| !ch.is_whitespace() || *ch == '\n');
            let boundary = match next_word {
                None => true,
                Some((_, '\n')) => true,
                Some((_, ch)) => {
                    j < chars.len()
                        && chars[j].1.is_whitespace()
                        && ch.is_uppercase()
                        && !(c == '.' && is_abbreviation(&text[start..pos]))
                }
            };
            if boundary {
                push(&mut out, &text[start..end]);
                start = end;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    push(&mut out, &text[start..]);
    out
}

fn push<'a>(out: &mut Vec<&'a str>, s: &'a str) {
    let s = s.trim();
    if !s.is_empty() {
        out.push(s);
    }
}

pub(crate) fn is_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(|c: char| c.is_whitespace())
        .next()
        .unwrap_or("");
    let word = word.trim_start_matches(['(', '"']).to_lowercase();
    ABBREVIATIONS.contains(&word.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_danish_reply_into_sentences() {
        assert_eq!(
            split_sentences(
                "Tak for din henvendelse. Hvad drejer det sig om? Sig for eksempel boligstøtte!"
            ),
            [
                "Tak for din henvendelse.",
                "Hvad drejer det sig om?",
                "Sig for eksempel boligstøtte!"
            ]
        );
    }

    #[test]
    fn leaves_abbreviations_times_and_dates_alone() {
        assert_eq!(
            split_sentences(
                "Vi har åbent kl. 10.30 til 15, dvs. Mandag til fredag. Den 3. marts er lukket."
            ),
            [
                "Vi har åbent kl. 10.30 til 15, dvs. Mandag til fredag.",
                "Den 3. marts er lukket."
            ]
        );
        assert_eq!(
            split_sentences("Ring f.eks. Borgerservice i morgen."),
            ["Ring f.eks. Borgerservice i morgen."]
        );
    }

    #[test]
    fn line_breaks_and_runs_of_punctuation_end_sentences() {
        assert_eq!(split_sentences("Hvad?! Ja.\nNej"), ["Hvad?!", "Ja.", "Nej"]);
        assert_eq!(split_sentences("  "), Vec::<&str>::new());
        assert_eq!(
            split_sentences("no stop at the end"),
            ["no stop at the end"]
        );
    }
}
