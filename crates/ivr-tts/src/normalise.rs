//! Danish text as espeak-ng and piper should read it: espeak-ng spells `kl.`
//! as the letters "k l" and reads `10.30` as "ti punktum tredive"; opening
//! hours and appointment times are what municipal prompts say most.

/// Abbreviations read out in full (matched as whole words, case-insensitive first letter).
const DA_ABBREVIATIONS: [(&str, &str); 10] = [
    ("kl.", "klokken"),
    ("ca.", "cirka"),
    ("f.eks.", "for eksempel"),
    ("bl.a.", "blandt andet"),
    ("nr.", "nummer"),
    ("tlf.", "telefon"),
    ("dvs.", "det vil sige"),
    ("evt.", "eventuelt"),
    ("inkl.", "inklusive"),
    ("pga.", "på grund af"),
];

/// Rewrites Danish text for synthesis: abbreviations in full, clock times
/// (`10.30`, `10:30`, `9.05`, `15.00`) as spoken ("10 30", "9 nul 5", "15").
pub fn normalise_danish(text: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for word in text.split(' ') {
        words.push(normalise_word(word));
    }
    words.join(" ")
}

fn normalise_word(word: &str) -> String {
    let lower = word.to_lowercase();
    for (abbr, full) in DA_ABBREVIATIONS {
        if lower == abbr {
            return if word.starts_with(|c: char| c.is_uppercase()) {
                capitalise(full)
            } else {
                full.to_string()
            };
        }
    }
    // A clock time, possibly followed by punctuation: "10.30", "10:30,", "15.00."
    let core_end = word
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .unwrap_or(word.len());
    let (core, rest) = word.split_at(core_end);
    let (core, trailing_dot) = match core.strip_suffix('.') {
        Some(c) if c.contains(['.', ':']) => (c, "."),
        _ => (core, ""),
    };
    if let Some((h, m)) = core.split_once(['.', ':']) {
        let time = h.len() <= 2
            && m.len() == 2
            && h.parse::<u32>().is_ok_and(|h| h < 24)
            && m.parse::<u32>().is_ok_and(|m| m < 60);
        if time {
            let h = h.trim_start_matches('0');
            let h = if h.is_empty() { "0" } else { h };
            let spoken = match m.as_bytes() {
                b"00" => h.to_string(),
                [b'0', d] => format!("{h} nul {}", char::from(*d)),
                _ => format!("{h} {m}"),
            };
            return format!("{spoken}{trailing_dot}{rest}");
        }
    }
    word.to_string()
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_hours_are_read_as_a_dane_says_them() {
        assert_eq!(
            normalise_danish("Vi har åbent kl. 10.30 til 15.00."),
            "Vi har åbent klokken 10 30 til 15."
        );
        assert_eq!(
            normalise_danish("Din tid er kl. 9.05, tirsdag."),
            "Din tid er klokken 9 nul 5, tirsdag."
        );
        assert_eq!(normalise_danish("Kl. 08:15"), "Klokken 8 15");
    }

    #[test]
    fn other_numbers_and_words_are_left_alone() {
        for t in [
            "Det koster 10.500 kr.",
            "Tast 1.",
            "Version 2.5",
            "den 3. marts",
            "CPR 010203-1234",
            "Ring 70 20 30 40",
        ] {
            assert_eq!(normalise_danish(t), t);
        }
        assert_eq!(
            normalise_danish("Ring f.eks. på tlf. 70 20 30 40"),
            "Ring for eksempel på telefon 70 20 30 40"
        );
    }
}
