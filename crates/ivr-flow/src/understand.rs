//! Understanding what callers say: normalisation, intent matching with a
//! confidence, and slot extraction (numbers, dates, times, CPR and phone
//! numbers, yes/no) in Danish and English.
//!
//! Everything works on normalised text: lower case, `æ ø å` spelled `ae oe
//! aa` (so "Århus"/"Aarhus" and "boligstøtte"/"boligstoette" match),
//! punctuation removed except inside numbers (`10:30`, `3/12`).

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};
use ivr_core::{
    dates::{month_names, weekday_names},
    Lang, Pii,
};

/// Lower-cases, folds `æøå` to `ae oe aa`, strips accents we meet in names,
/// and turns punctuation into spaces (keeping `:` `/` `.` `-` `+` between
/// digits). Whitespace is collapsed.
pub fn normalize(text: &str) -> String {
    let lower = text.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut out = String::with_capacity(lower.len());
    for (i, c) in chars.iter().enumerate() {
        let prev_digit = i > 0 && chars[i - 1].is_ascii_digit();
        let next_digit = chars.get(i + 1).is_some_and(|c| c.is_ascii_digit());
        match c {
            'æ' | 'ä' => out.push_str("ae"),
            'ø' | 'ö' => out.push_str("oe"),
            'å' => out.push_str("aa"),
            'é' | 'è' => out.push('e'),
            'ü' => out.push('u'),
            c if c.is_alphanumeric() => out.push(*c),
            ':' | '/' | '.' | '-' if prev_digit && next_digit => out.push(*c),
            '+' if next_digit => out.push('+'),
            _ => out.push(' '),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn tokens(norm: &str) -> Vec<&str> {
    norm.split(' ').filter(|t| !t.is_empty()).collect()
}

// ---------------------------------------------------------------- numbers

fn unit_value(w: &str) -> Option<u64> {
    let v = match w {
        "nul" | "zero" | "oh" => 0,
        "en" | "et" | "een" | "one" => 1,
        "to" | "two" => 2,
        "tre" | "three" => 3,
        "fire" | "four" => 4,
        "fem" | "five" => 5,
        "seks" | "six" => 6,
        "syv" | "seven" => 7,
        "otte" | "eight" => 8,
        "ni" | "nine" => 9,
        "ti" | "ten" => 10,
        "elleve" | "eleven" => 11,
        "tolv" | "twelve" => 12,
        "tretten" | "thirteen" => 13,
        "fjorten" | "fourteen" => 14,
        "femten" | "fifteen" => 15,
        "seksten" | "sixteen" => 16,
        "sytten" | "seventeen" => 17,
        "atten" | "eighteen" => 18,
        "nitten" | "nineteen" => 19,
        _ => return None,
    };
    Some(v)
}

fn tens_value(w: &str) -> Option<u64> {
    let v = match w {
        "tyve" | "twenty" => 20,
        "tredive" | "tredieve" | "thirty" => 30,
        "fyrre" | "fyrretyve" | "forty" => 40,
        "halvtreds" | "halvtredsindstyve" | "fifty" => 50,
        "tres" | "tresindstyve" | "sixty" => 60,
        "halvfjerds" | "halvfjerdsindstyve" | "seventy" => 70,
        "firs" | "firsindstyve" | "eighty" => 80,
        "halvfems" | "halvfemsindstyve" | "ninety" => 90,
        _ => return None,
    };
    Some(v)
}

/// Value of one word below 100: "fire" 4, "tyve" 20, "fireogtyve" 24, "24" 24.
fn word_below_100(w: &str) -> Option<u64> {
    if let Some(v) = unit_value(w).or_else(|| tens_value(w)) {
        return Some(v);
    }
    if let Some((u, t)) = w.split_once("og") {
        if let (Some(u), Some(t)) = (unit_value(u), tens_value(t)) {
            if (1..10).contains(&u) {
                return Some(t + u);
            }
        }
    }
    None
}

/// One piece of a spoken number sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NumTok {
    /// Digits as written ("0512"): value and the digit count.
    Digits(u64, usize),
    /// A word below 100.
    Small(u64),
    /// "hundrede"/"hundred".
    Hundred,
    /// "tusind"/"thousand".
    Thousand,
    /// "og"/"and"/"a" between number words.
    Joiner,
}

fn num_tok(w: &str) -> Option<NumTok> {
    if !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()) && w.len() <= 12 {
        return w.parse().ok().map(|v| NumTok::Digits(v, w.len()));
    }
    if let Some(v) = word_below_100(w) {
        return Some(NumTok::Small(v));
    }
    match w {
        "hundrede" | "hundred" | "hundreds" => Some(NumTok::Hundred),
        "tusind" | "tusinde" | "thousand" => Some(NumTok::Thousand),
        "og" | "and" | "a" => Some(NumTok::Joiner),
        _ => {
            // "tohundrede", "firetusind" written together.
            for (suffix, tok) in [("hundrede", NumTok::Hundred), ("tusind", NumTok::Thousand)] {
                if let Some(head) = w.strip_suffix(suffix) {
                    if word_below_100(head).is_some() {
                        return Some(tok);
                    }
                }
            }
            None
        }
    }
}

/// Parses a whole spoken number from a token run: "to tusind og fireogtyve",
/// "twenty-four", "a hundred and five", "24".
fn parse_number_tokens(toks: &[&str]) -> Option<u64> {
    let mut total: u64 = 0;
    let mut current: u64 = 0;
    let mut seen = false;
    for raw in toks {
        // English hyphen compounds come in as one token after normalisation
        // only when digits; words were split on '-' already.
        let head_val = {
            let mut found = None;
            for (suffix, _) in [("hundrede", ()), ("tusind", ())] {
                if let Some(h) = raw.strip_suffix(suffix) {
                    if let Some(v) = word_below_100(h) {
                        found = Some((v, suffix));
                    }
                }
            }
            found
        };
        if let Some((v, suffix)) = head_val {
            if suffix == "hundrede" {
                current += v * 100;
            } else {
                total += (current + v) * 1000;
                current = 0;
            }
            seen = true;
            continue;
        }
        match num_tok(raw)? {
            NumTok::Digits(v, _) => {
                current += v;
                seen = true;
            }
            NumTok::Small(v) => {
                current += v;
                seen = true;
            }
            NumTok::Hundred => {
                current = if current == 0 { 100 } else { current * 100 };
                seen = true;
            }
            NumTok::Thousand => {
                total += if current == 0 { 1000 } else { current * 1000 };
                current = 0;
                seen = true;
            }
            NumTok::Joiner => {}
        }
    }
    seen.then_some(total + current)
}

/// The first number in an utterance, in digits or words (Danish or English):
/// "jeg er fireogtyve" -> 24, "two thousand and twenty-four" -> 2024.
pub fn parse_number(text: &str) -> Option<u64> {
    let norm = normalize(text).replace('-', " ");
    let toks = tokens(&norm);
    let start = toks.iter().position(|t| {
        matches!(
            num_tok(t),
            Some(NumTok::Digits(..) | NumTok::Small(_) | NumTok::Hundred | NumTok::Thousand)
        )
    })?;
    let mut end = start;
    while end < toks.len() && num_tok(toks[end]).is_some() {
        end += 1;
    }
    // Trailing joiners ("og") belong to the sentence, not the number.
    while end > start && num_tok(toks[end - 1]) == Some(NumTok::Joiner) {
        end -= 1;
    }
    parse_number_tokens(&toks[start..end])
}

/// The digits a caller said or keyed, read the way people read numbers in
/// groups: "tolv fireogtredive" -> "1234", "nul fem" -> "05", "one two three"
/// -> "123", "twenty one" -> "21", "12 34 56 78" -> "12345678". Words that
/// are not numbers end nothing: they are skipped.
pub fn spoken_digits(text: &str) -> String {
    let norm = normalize(text).replace(['-', ':', '/', '.', '+'], " ");
    let toks = tokens(&norm);
    let mut out = String::new();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        if t.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(t);
        } else if let Some(v) = word_below_100(t) {
            // English "twenty one" = 21.
            let next_unit = toks
                .get(i + 1)
                .and_then(|n| unit_value(n))
                .filter(|u| (1..10).contains(u));
            if v >= 20
                && v % 10 == 0
                && next_unit.is_some()
                && tens_value(t).is_some()
                && is_english_tens(t)
            {
                out.push_str(&(v + next_unit.unwrap_or(0)).to_string());
                i += 1;
            } else {
                out.push_str(&v.to_string());
            }
        } else if t == "hundrede" || t == "hundred" {
            out.push_str("00");
        }
        i += 1;
    }
    out
}

fn is_english_tens(w: &str) -> bool {
    matches!(
        w,
        "twenty" | "thirty" | "forty" | "fifty" | "sixty" | "seventy" | "eighty" | "ninety"
    )
}

// ---------------------------------------------------------------- yes / no

/// Yes or no, in Danish or English ("ja", "jo", "det er rigtigt", "yes",
/// "nej", "no", "forkert"). `None` when neither is heard, or both.
pub fn parse_yes_no(text: &str) -> Option<bool> {
    let norm = normalize(text);
    let toks = tokens(&norm);
    let yes_words = [
        "ja", "jo", "jep", "yes", "yeah", "yep", "correct", "rigtigt", "rigtig", "korrekt", "okay",
        "ok", "gerne", "sure", "right",
    ];
    let no_words = ["nej", "no", "nope", "forkert", "wrong", "ikke", "not"];
    let yes = toks.iter().any(|t| yes_words.contains(t));
    let no = toks.iter().any(|t| no_words.contains(t));
    match (yes, no) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        // "nej det er ikke rigtigt" is no; "ja, det er ikke noget problem"
        // is rare enough that the first word decides.
        (true, true) => toks.iter().find_map(|t| {
            if yes_words.contains(t) {
                Some(true)
            } else if no_words.contains(t) {
                Some(false)
            } else {
                None
            }
        }),
        _ => None,
    }
}

// ---------------------------------------------------------------- openers

/// The turn without the phrases that say only that the caller is calling
/// ("jeg ringer fordi", "jeg ringer for at få en tid", "vi ringer fra
/// energiselskabet", "I'm calling about", "I'm phoning to ask"): a caller
/// speaking of their own call in the first person never asks to be called
/// back with those words, so their "ringe"/"call" must not count for the
/// callback intent. The first-person verb goes, with the connective after
/// it ("fordi", "angående", "for at", "about", "to ask", ...). Examples of
/// intents are read the same way ([`IntentMatcher::add`]).
pub fn without_openers(text: &str) -> String {
    /// The caller speaking of their own call.
    const SUBJECT_VERB: &[&str] = &[
        "jeg ringer",
        "vi ringer",
        "jeg ringede",
        "i'm calling",
        "i am calling",
        "im calling",
        "i'm ringing",
        "i am ringing",
        "i'm phoning",
        "i am phoning",
        "we're calling",
        "we are calling",
        "i called",
        "i call",
    ];
    /// What may follow it and says nothing of the errand (longest first).
    const CONNECTIVES: &[&str] = &[
        "for at høre om",
        "for at høre",
        "for at spørge om",
        "for at spørge",
        "fordi at",
        "for at",
        "fordi",
        "angående",
        "vedrørende",
        "omkring",
        "bare",
        "om",
        "to ask about",
        "to ask",
        "regarding",
        "because",
        "about",
    ];
    let lower = text.to_lowercase();
    if lower.len() != text.len() {
        return text.to_string();
    }
    let whole_word_at = |hay: &str, i: usize, len: usize| {
        let end = i + len;
        hay.is_char_boundary(i)
            && hay.is_char_boundary(end)
            && (i == 0 || !hay[..i].ends_with(char::is_alphanumeric))
            && (end == hay.len() || !hay[end..].starts_with(char::is_alphanumeric))
    };
    let mut out = text.to_string();
    let mut from = 0;
    loop {
        let low = out.to_lowercase();
        let Some((i, len)) = SUBJECT_VERB
            .iter()
            .filter_map(|o| {
                let mut k = from;
                while let Some(j) = low.get(k..).and_then(|r| r.find(o)) {
                    if whole_word_at(&low, k + j, o.len()) {
                        return Some((k + j, o.len()));
                    }
                    k += j + 1;
                    while !low.is_char_boundary(k) {
                        k += 1;
                    }
                }
                None
            })
            .min()
        else {
            break;
        };
        let mut end = i + len;
        let rest = &low[end..];
        let trimmed = rest.trim_start();
        if let Some(c) = CONNECTIVES
            .iter()
            .find(|c| trimmed.starts_with(*c) && whole_word_at(trimmed, 0, c.len()))
        {
            end += rest.len() - trimmed.len() + c.len();
        }
        out.replace_range(i..end, " ");
        from = i + 1;
    }
    out
}

/// English contractions spelt out ("I'd" -> "I would", "can't" -> "can
/// not"): normalised, "I'd" would be the words "i d", which joined spell
/// "id" (the keyword "my id" heard in "I'd like to move my appointment").
pub fn without_contractions(text: &str) -> String {
    const FULL: &[(&str, &str)] = &[
        ("n't", " not"),
        ("'d", " would"),
        ("'m", " am"),
        ("'ve", " have"),
        ("'ll", " will"),
        ("'re", " are"),
    ];
    let t = text
        .replace('’', "'")
        .replace("can't", "can not")
        .replace("Can't", "Can not")
        .replace("won't", "will not")
        .replace("Won't", "Will not");
    let mut out = String::with_capacity(t.len() + 8);
    let mut i = 0;
    while let Some(rest) = t.get(i..).filter(|r| !r.is_empty()) {
        let hit = FULL.iter().find(|(short, _)| {
            rest.get(..short.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(short))
                && out.ends_with(char::is_alphabetic)
                && !rest[short.len()..].starts_with(char::is_alphanumeric)
        });
        if let Some((short, full)) = hit {
            out.push_str(full);
            i += short.len();
        } else if let Some(c) = rest.chars().next() {
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// A turn as intents read it: contractions spelt out, the caller's own
/// call left out ([`without_contractions`], [`without_openers`]).
pub fn read_turn(text: &str) -> String {
    without_openers(&without_contractions(text))
}

// ---------------------------------------------------------------- corrections

/// What a caller corrected to, when they corrected themselves in the turn
/// ("til min skat... nej, til min pension", "a passport, no sorry, a driving
/// licence", "jeg mener"): the words after the last correction; otherwise
/// the whole turn.
pub fn corrected(text: &str) -> &str {
    let lower = text.to_lowercase();
    const MARKERS: &[&str] = &[
        "... nej",
        "…nej",
        "… nej",
        "...nej",
        ", nej,",
        ", nej ",
        "nej undskyld",
        "nej vent",
        "nej nej",
        "eller nej",
        "øh nej",
        "altså nej",
        "jeg mener",
        "undskyld, jeg mener",
        ", no,",
        ", no ",
        "no sorry",
        "no wait",
        "sorry, i mean",
        "i mean",
        "... no",
        "...no",
    ];
    let cut = MARKERS
        .iter()
        .filter_map(|m| lower.rfind(m).map(|i| i + m.len()))
        .max();
    match cut {
        // Byte offsets of the lower-cased text match the original only when
        // lower-casing kept every length (true for Danish and English text).
        Some(i) if lower.len() == text.len() && text.is_char_boundary(i) => {
            let rest = &text[i..];
            // Something must be left to understand.
            if normalize(rest).split(' ').filter(|w| w.len() > 2).count() >= 1 {
                rest
            } else {
                text
            }
        }
        _ => text,
    }
}

// ---------------------------------------------------------------- language

/// A request to switch language: "English please", "can we speak English",
/// "på dansk tak", "kan vi tale dansk". `None` otherwise.
pub fn language_request(text: &str) -> Option<Lang> {
    let norm = normalize(text);
    let toks = tokens(&norm);
    if toks.len() > 6 {
        return None;
    }
    if toks
        .iter()
        .any(|t| matches!(*t, "english" | "engelsk" | "englisch" | "inglese"))
    {
        Some(Lang::En)
    } else if toks.iter().any(|t| matches!(*t, "dansk" | "danish")) {
        Some(Lang::Da)
    } else {
        None
    }
}

/// A request to hear the question again: "gentag", "hvad sagde du",
/// "undskyld hvad", "repeat", "say that again", "pardon". Only short
/// utterances count, so an answer that happens to contain "igen" is not one.
pub fn repeat_request(text: &str) -> bool {
    let norm = normalize(text);
    let toks = tokens(&norm);
    if toks.len() > 5 {
        return false;
    }
    let joined = format!(" {norm} ");
    toks.iter()
        .any(|t| matches!(*t, "gentag" | "gentage" | "repeat" | "pardon"))
        || [
            " hvad sagde du ",
            " sig det igen ",
            " say that again ",
            " say again ",
            " what did you say ",
        ]
        .iter()
        .any(|p| joined.contains(p))
}

// ---------------------------------------------------------------- dates

fn ordinal_day(w: &str) -> Option<u32> {
    let da = [
        "foerste",
        "anden",
        "tredje",
        "fjerde",
        "femte",
        "sjette",
        "syvende",
        "ottende",
        "niende",
        "tiende",
        "ellevte",
        "tolvte",
        "trettende",
        "fjortende",
        "femtende",
        "sekstende",
        "syttende",
        "attende",
        "nittende",
        "tyvende",
    ];
    let en = [
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
        "twentieth",
    ];
    if let Some(i) = da
        .iter()
        .position(|x| *x == w)
        .or_else(|| en.iter().position(|x| *x == w))
    {
        return Some(i as u32 + 1);
    }
    match w {
        "tredivte" | "tredivteh" | "thirtieth" => return Some(30),
        "enogtredivte" => return Some(31),
        _ => {}
    }
    // "fireogtyvende", "enogtyvende".
    if let Some((u, t)) = w.split_once("og") {
        let uv = unit_value(u)?;
        let tv = match t {
            "tyvende" => 20,
            "tredivte" => 30,
            _ => return None,
        };
        return Some(tv + uv as u32);
    }
    // "3rd", "21st", "3." (the dot was kept only between digits, so "3" here).
    let digits: String = w.chars().take_while(|c| c.is_ascii_digit()).collect();
    let rest = &w[digits.len()..];
    if !digits.is_empty() && matches!(rest, "st" | "nd" | "rd" | "th" | "") {
        return digits.parse().ok().filter(|d| (1..=31).contains(d));
    }
    None
}

fn month_of(w: &str) -> Option<u32> {
    let short = |m: &str| -> String { m.chars().take(3).collect() };
    for (i, m) in month_names(Lang::Da).iter().enumerate() {
        if normalize(m) == w {
            return Some(i as u32 + 1);
        }
    }
    for (i, m) in month_names(Lang::En).iter().enumerate() {
        let m = m.to_lowercase();
        if m == w || (w.len() >= 3 && short(&m) == w) {
            return Some(i as u32 + 1);
        }
    }
    None
}

fn weekday_of(w: &str) -> Option<Weekday> {
    Lang::ALL.iter().find_map(|&lang| {
        let i = weekday_names(lang).iter().position(|n| normalize(n) == w)?;
        Weekday::try_from(u8::try_from(i).ok()?).ok()
    })
}

/// Picks the year for a day and month said without one: this year, or next
/// year when the date is more than a week in the past (appointments lie ahead).
fn infer_year(day: u32, month: u32, today: NaiveDate) -> Option<NaiveDate> {
    let this = NaiveDate::from_ymd_opt(today.year(), month, day);
    match this {
        Some(d) if d >= today - Duration::days(7) => Some(d),
        _ => NaiveDate::from_ymd_opt(today.year() + 1, month, day),
    }
}

/// A date in an utterance, relative to `today`: "i dag", "i morgen",
/// "i overmorgen", "på tirsdag" (the next Tuesday after today), "den tredje
/// december", "3. december", "December 3rd", "3/12", "3/12-2026",
/// "2026-12-03", "tomorrow", "on Tuesday".
pub fn parse_date(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    let norm = normalize(text);
    let toks = tokens(&norm);
    let joined = format!(" {norm} ");
    if joined.contains(" i overmorgen ")
        || joined.contains(" overmorgen ")
        || joined.contains(" day after tomorrow ")
    {
        return Some(today + Duration::days(2));
    }
    if joined.contains(" i morgen ")
        || joined.contains(" imorgen ")
        || joined.contains(" tomorrow ")
    {
        return Some(today + Duration::days(1));
    }
    if joined.contains(" i dag ") || joined.contains(" idag ") || joined.contains(" today ") {
        return Some(today);
    }
    // Numeric forms.
    for t in &toks {
        if let Some(d) = numeric_date(t, today) {
            return Some(d);
        }
    }
    // Day + month words, in either order.
    let month = toks
        .iter()
        .enumerate()
        .find_map(|(i, t)| month_of(t).map(|m| (i, m)));
    if let Some((mi, m)) = month {
        let day = toks[..mi]
            .iter()
            .rev()
            .take(3)
            .find_map(|t| ordinal_day(t).or_else(|| cardinal_day(t)));
        let day = day.or_else(|| {
            toks[mi + 1..]
                .iter()
                .take(3)
                .find_map(|t| ordinal_day(t).or_else(|| cardinal_day(t)))
        });
        let year = toks[mi + 1..]
            .iter()
            .find_map(|t| t.parse::<i32>().ok().filter(|y| (1900..2100).contains(y)));
        if let Some(day) = day {
            return match year {
                Some(y) => NaiveDate::from_ymd_opt(y, m, day),
                None => infer_year(day, m, today),
            };
        }
    }
    // A weekday: the next one after today.
    if let Some(wd) = toks.iter().find_map(|t| weekday_of(t)) {
        let mut d = today + Duration::days(1);
        while d.weekday() != wd {
            d += Duration::days(1);
        }
        return Some(d);
    }
    // "den tredje": this month, or next month when it has passed.
    if toks.contains(&"den") || toks.contains(&"the") {
        if let Some(day) = toks.iter().find_map(|t| ordinal_day(t)) {
            let this = NaiveDate::from_ymd_opt(today.year(), today.month(), day);
            return match this {
                Some(d) if d >= today => Some(d),
                _ => {
                    let (y, m) = if today.month() == 12 {
                        (today.year() + 1, 1)
                    } else {
                        (today.year(), today.month() + 1)
                    };
                    NaiveDate::from_ymd_opt(y, m, day)
                }
            };
        }
    }
    None
}

/// Whether a normalised word names a month or a weekday ("marts",
/// "february", "fredag").
pub fn is_month_or_weekday(w: &str) -> bool {
    month_of(w).is_some() || weekday_of(w).is_some()
}

/// Whether a normalised word can close a date or the time said after it: a
/// month, a weekday, a year, a relative day ("morgen", "overmorgen", "dag" of
/// "i dag", "tomorrow", "today"), a numeric date ("3/12", "2026-12-03") or a
/// word that closes a time of day ("o'clock", "eftermiddagen", "morning").
pub fn is_date_closing_word(w: &str) -> bool {
    month_of(w).is_some()
        || weekday_of(w).is_some()
        || matches!(
            w,
            "morgen"
                | "imorgen"
                | "overmorgen"
                | "dag"
                | "idag"
                | "tomorrow"
                | "today"
                | "clock"
                | "oclock"
                | "morgenen"
                | "formiddag"
                | "formiddagen"
                | "eftermiddag"
                | "eftermiddagen"
                | "aften"
                | "aftenen"
                | "middag"
                | "morning"
                | "afternoon"
                | "evening"
                | "noon"
                | "am"
                | "pm"
        )
        || w.parse::<i32>().is_ok_and(|y| (1900..2100).contains(&y))
        || (w.contains(['/', '-', '.']) && w.chars().any(|c| c.is_ascii_digit()))
}

/// Whether a normalised word is a day of the month said alone: an ordinal
/// ("femtende", "fourteenth", "3rd") or a number from 1 to 31.
pub fn is_day_number(w: &str) -> bool {
    ordinal_day(w).or_else(|| cardinal_day(w)).is_some()
}

fn cardinal_day(t: &str) -> Option<u32> {
    word_below_100(t)
        .map(|v| v as u32)
        .filter(|d| (1..=31).contains(d))
}

fn numeric_date(t: &str, today: NaiveDate) -> Option<NaiveDate> {
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Some(d);
    }
    let parts: Vec<&str> = t.split(['/', '.', '-']).collect();
    let nums: Vec<u32> = parts
        .iter()
        .map(|p| p.parse().ok())
        .collect::<Option<Vec<u32>>>()?;
    match nums.as_slice() {
        [d, m] if parts.len() == 2 && t.contains(['/', '.']) && !t.contains(':') => {
            if (1..=12).contains(m) {
                infer_year(*d, *m, today)
            } else {
                None
            }
        }
        [d, m, y] => {
            let y = if *y < 100 {
                2000 + *y as i32
            } else {
                *y as i32
            };
            NaiveDate::from_ymd_opt(y, *m, *d)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------- times

/// Office-hours reading of a bare hour: "klokken to" is 14:00, "halv et" is
/// 12:30, because municipal appointments lie between 7 and 19.
fn office_hour(h: u64) -> Option<u32> {
    let h = u32::try_from(h).ok()?;
    match h {
        1..=6 => Some(h + 12),
        0..=23 => Some(h),
        24 => Some(0),
        _ => None,
    }
}

fn hour_word(t: &str) -> Option<u64> {
    if let Ok(v) = t.parse::<u64>() {
        return Some(v);
    }
    word_below_100(t).filter(|v| *v <= 24)
}

/// A time of day in an utterance: "kvart over ti" (10:15), "halv elleve"
/// (10:30), "ti minutter i tolv" (11:50), "fem minutter i halv ti" (9:25),
/// "klokken 14", "10:30", "10.30", "half past ten", "quarter to eleven",
/// "ten to twelve", "ten thirty". Hours 1-6 without a.m./p.m. are read as
/// afternoon (see `office_hour`).
pub fn parse_time(text: &str) -> Option<NaiveTime> {
    let norm = normalize(text).replace('-', " ");
    let toks = tokens(&norm);
    let pm = toks
        .iter()
        .any(|t| matches!(*t, "pm" | "eftermiddagen" | "aftenen"));
    let am = toks
        .iter()
        .any(|t| matches!(*t, "am" | "morgenen" | "formiddagen"));
    // The office-hours reading applies to the resulting hour: "halv syv" is
    // 18:30, "halv et" 12:30, "klokken to" 14:00.
    let fix = |h: u32, m: u32| -> Option<NaiveTime> {
        let h = if pm && h < 12 {
            h + 12
        } else if am && (12..24).contains(&h) {
            h - 12
        } else if !am && !pm {
            office_hour(u64::from(h))?
        } else {
            h
        };
        NaiveTime::from_hms_opt(h % 24, m, 0)
    };
    let hour_at = |i: usize| -> Option<u32> {
        toks.get(i)
            .and_then(|t| hour_word(t))
            .and_then(|h| u32::try_from(h).ok())
            .filter(|h| *h <= 24)
    };
    // hh:mm / hh.mm
    for t in &toks {
        if let Some((h, m)) = t.split_once([':', '.']) {
            if let (Ok(h), Ok(m)) = (h.parse::<u32>(), m.parse::<u32>()) {
                if h < 24 && m < 60 && m.to_string().len() <= 2 {
                    return fix(h, m);
                }
            }
        }
    }
    for i in 0..toks.len() {
        let t = toks[i];
        // On the dial the hour before one is twelve.
        let prev_hour = |h: u32| match h {
            0 => 23,
            1 => 12,
            h => h - 1,
        };
        match t {
            "halv" => {
                if let Some(h) = hour_at(i + 1) {
                    // "N minutter over/i halv H".
                    return fix(prev_hour(h), 30);
                }
            }
            "kvart" | "quarter" => match toks.get(i + 1).copied() {
                Some("over" | "past" | "efter") => return hour_at(i + 2).and_then(|h| fix(h, 15)),
                Some("i" | "to" | "til" | "before") => {
                    return hour_at(i + 2).and_then(|h| fix(prev_hour(h), 45))
                }
                _ => {}
            },
            "half" if toks.get(i + 1) == Some(&"past") => {
                return hour_at(i + 2).and_then(|h| fix(h, 30))
            }
            "over" | "past" | "efter" | "i" | "to" | "til" if i > 0 => {
                // "<N> [minutter] over|i [halv] <H>".
                let mut j = i - 1;
                if matches!(toks[j], "minutter" | "minut" | "minutes" | "minute") {
                    if j == 0 {
                        continue;
                    }
                    j -= 1;
                }
                // "twenty one minutes" (English compounds arrive split).
                let tens = j
                    .checked_sub(1)
                    .and_then(|k| tens_value(toks[k]))
                    .unwrap_or(0);
                let Some(n) = word_below_100(toks[j])
                    .or_else(|| toks[j].parse().ok())
                    .map(|n| if n < 10 { n + tens } else { n })
                    .filter(|n| *n < 30)
                else {
                    continue;
                };
                let n = n as u32;
                let forward = matches!(t, "over" | "past" | "efter");
                if toks.get(i + 1) == Some(&"halv") {
                    let Some(h) = hour_at(i + 2) else { continue };
                    let base = prev_hour(h) * 60 + 30;
                    let mins = if forward { base + n } else { base - n };
                    return fix(mins / 60, mins % 60);
                }
                let Some(h) = hour_at(i + 1) else { continue };
                return if forward {
                    fix(h, n)
                } else {
                    fix(prev_hour(h), 60 - n)
                };
            }
            _ => {}
        }
    }
    // "klokken 10 30": only when no relative form ("over", "halv") was said.
    for i in 0..toks.len() {
        if matches!(toks[i], "klokken" | "kl" | "at" | "clock") {
            if let Some(h) = hour_at(i + 1) {
                let m = toks
                    .get(i + 2)
                    .and_then(|t| word_below_100(t).or_else(|| t.parse().ok()))
                    .filter(|m| *m < 60 && *m > 0);
                return fix(h, m.unwrap_or(0) as u32);
            }
        }
    }
    // "ten thirty", "10 30", "ten o'clock", "noon".
    if toks.contains(&"noon") || toks.contains(&"middag") {
        return fix(12, 0);
    }
    if let Some(i) = toks.iter().position(|t| hour_word(t).is_some()) {
        let h = hour_at(i)?;
        let m = toks
            .get(i + 1)
            .and_then(|t| word_below_100(t).or_else(|| t.parse().ok()));
        let m2 = toks
            .get(i + 2)
            .and_then(|t| unit_value(t))
            .filter(|u| (1..10).contains(u));
        return match (m, m2) {
            (Some(m), Some(u)) if m >= 20 && m % 10 == 0 => fix(h, (m + u) as u32),
            (Some(m), _)
                if m < 60 && (m >= 10 || toks.get(i + 1).is_some_and(|t| t.len() == 2)) =>
            {
                fix(h, m as u32)
            }
            // A bare hour ("syv", "ten o'clock") is that hour sharp.
            _ if toks.len() <= 2
                || toks
                    .iter()
                    .any(|t| matches!(*t, "oclock" | "o" | "klokken" | "kl")) =>
            {
                fix(h, 0)
            }
            _ => None,
        };
    }
    None
}

// ---------------------------------------------------------------- CPR

/// A CPR number (personnummer): ten digits, the first six a valid birth date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpr {
    /// The ten digits, no dash.
    pub digits: Pii<String>,
    /// The birth date, century from the 7th digit.
    pub birth_date: Pii<NaiveDate>,
}

/// Why a CPR number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CprError {
    /// Not exactly ten digits were heard.
    #[error("a CPR number has 10 digits, {0} were heard")]
    WrongLength(usize),
    /// The first six digits are not a date (e.g. 31 February).
    #[error("the first six digits are not a valid date")]
    BadDate,
}

/// Reads a CPR number from speech or keys ("nul tre tolv halvfems, tolv
/// fireogtredive", "031290-1234") and checks it: ten digits, day-month-year a
/// real date, the century chosen by the 7th digit (CPR-kontoret's table:
/// 0-3 -> 1900s; 4 and 9 -> 2000s for years 00-36 else 1900s; 5-8 -> 2000s
/// for 00-57 else 1800s). The modulus-11 check is not applied: numbers
/// issued since 2007 need not satisfy it.
pub fn parse_cpr(text: &str) -> Result<Cpr, CprError> {
    let digits = spoken_digits(text);
    if digits.len() != 10 {
        return Err(CprError::WrongLength(digits.len()));
    }
    let n = |r: std::ops::Range<usize>| -> u32 { digits[r].parse().unwrap_or(0) };
    let (dd, mm, yy, seventh) = (n(0..2), n(2..4), n(4..6), n(6..7));
    let century = match seventh {
        0..=3 => 1900,
        4 | 9 => {
            if yy <= 36 {
                2000
            } else {
                1900
            }
        }
        _ => {
            if yy <= 57 {
                2000
            } else {
                1800
            }
        }
    };
    let date = NaiveDate::from_ymd_opt(century + yy as i32, mm, dd).ok_or(CprError::BadDate)?;
    Ok(Cpr {
        digits: Pii::new(digits),
        birth_date: Pii::new(date),
    })
}

// ---------------------------------------------------------------- phone

/// Reads a Danish phone number: eight digits, optionally after +45 / 0045 /
/// 45, spoken in pairs or digit by digit. Returns the eight digits.
pub fn parse_phone(text: &str) -> Option<Pii<String>> {
    let norm = normalize(text);
    let mut digits = spoken_digits(&norm);
    if norm.contains("+45") || digits.len() == 12 && digits.starts_with("0045") {
        digits = digits.trim_start_matches("00").to_string();
    }
    if digits.len() == 10 && digits.starts_with("45") {
        digits = digits[2..].to_string();
    }
    let ok = digits.len() == 8
        && digits
            .chars()
            .next()
            .is_some_and(|c| ('2'..='9').contains(&c));
    ok.then(|| Pii::new(digits))
}

// ---------------------------------------------------------------- intents

/// What an intent is recognised by, in one language.
#[derive(Debug, Clone, Default)]
pub struct IntentMatcher {
    /// Normalised example phrases.
    pub examples: Vec<String>,
    /// Normalised keywords (one or more words each).
    pub keywords: Vec<String>,
    /// Stemmed content words of each example ([`crate::lexical::Terms`]).
    pub example_terms: Vec<Vec<String>>,
    /// Stemmed words of each keyword: its content words when it has two or
    /// more, else every word ([`crate::lexical::Terms::stems`]).
    pub keyword_terms: Vec<Vec<String>>,
    /// Examples as written, for the sentence encoder.
    pub example_texts: Vec<String>,
    /// Keywords as written.
    pub keyword_texts: Vec<String>,
}

/// Similarity of a heard word to a keyword word: exact 1.0, otherwise
/// Jaro-Winkler when the words are long enough to survive STT misspellings
/// ("boligstoette"/"boligstotte"), zero for short words.
fn word_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    // Short words must match exactly; words of very different length are
    // different words (and the similarity is not worth computing).
    if a.len() < 5 || b.len() < 5 || a.len().abs_diff(b.len()) > 3 {
        return 0.0;
    }
    let s = strsim::jaro_winkler(a, b);
    if s >= 0.88 {
        s
    } else {
        0.0
    }
}

impl IntentMatcher {
    /// Adds examples and keywords written in `lang` (normalised, stemmed).
    pub fn add(
        &mut self,
        lang: Lang,
        examples: &[String],
        keywords: &[String],
        terms: &crate::lexical::Terms,
    ) {
        for e in examples {
            // Read as a caller's turn is read: "jeg ringer angående
            // hjemmeplejen" is about home care, not a callback.
            let read = read_turn(e);
            self.examples.push(normalize(&read));
            self.example_terms.push(terms.of(&read, lang));
            self.example_texts.push(e.clone());
        }
        for k in keywords {
            self.keywords.push(normalize(k));
            // Content words when there are two or more ("det gule kort":
            // gul, kort); every word when the small ones carry the meaning
            // ("ring mig op", "tale med").
            let content = terms.of(k, lang);
            self.keyword_terms.push(if content.len() >= 2 {
                content
            } else {
                terms.stems(k, lang)
            });
            self.keyword_texts.push(k.clone());
        }
    }

    /// A score in [0, 1] for a normalised utterance: a keyword heard (each of
    /// its words found, allowing small misspellings) gives up to 0.95; an
    /// example phrase contributes its word overlap.
    pub fn score(&self, utterance: &str) -> f64 {
        let words = tokens(utterance);
        // Speech recognisers split compounds ("kør kort", "bolig støtte",
        // "mit i d"): for keywords, the joined neighbours count as heard
        // words too.
        // A joined pair must spell the keyword's word, or come near a long
        // one: "min tid" joined is "mintid", a letter from "mitid", and
        // not the caller's MitID.
        let joined: Vec<String> = (2..=3)
            .flat_map(|n| words.windows(n).map(|w| w.concat()))
            .collect();
        let mut best: f64 = 0.0;
        for kw in &self.keywords {
            let kws = tokens(kw);
            if kws.is_empty() {
                continue;
            }
            let mut sum = 0.0;
            for k in &kws {
                let single = words
                    .iter()
                    .map(|h| word_similarity(h, k).max(compound_similarity(h, k)));
                let long = k.chars().count() >= JOINED_FUZZY_LEN;
                let joined = joined.iter().map(|h| {
                    if h == k {
                        1.0
                    } else if long {
                        word_similarity(h, k).max(compound_similarity(h, k))
                    } else {
                        0.0
                    }
                });
                let s = single.chain(joined).fold(0.0, f64::max);
                if s == 0.0 {
                    sum = 0.0;
                    break;
                }
                sum += s;
            }
            best = best.max(0.95 * sum / kws.len() as f64);
        }
        for ex in &self.examples {
            let exs = tokens(ex);
            if exs.is_empty() {
                continue;
            }
            if ex == utterance {
                return 1.0;
            }
            let content: Vec<&&str> = exs
                .iter()
                .filter(|w| w.len() > 2 && !crate::lexical::is_stop_word(w))
                .collect();
            if content.is_empty() {
                continue;
            }
            let hit = content
                .iter()
                .filter(|w| words.iter().any(|h| word_similarity(h, w) > 0.0))
                .count();
            // One content word says too little on its own: at most half, as
            // in [`IntentMatcher::lexical`] ("ringet forkert" is not "jeg
            // vil gerne ringes op").
            let overlap = hit as f64 / content.len().max(2) as f64;
            best = best.max(0.9 * overlap);
        }
        best
    }

    /// [`IntentMatcher::score`], or the same measures on stemmed words, so
    /// "aflysningen", "aflyste" and "aflyse" meet: every stemmed word of a
    /// keyword heard (`stems`: [`crate::lexical::Terms::stems`] of the
    /// utterance) gives 0.95; an example gives 0.9 times the share of its
    /// stemmed content words heard (`content`: [`crate::lexical::Terms::of`]).
    pub fn lexical(&self, utterance: &str, stems: &[String], content: &[String]) -> f64 {
        let mut best = self.score(utterance);
        for k in &self.keyword_terms {
            if !k.is_empty() && k.iter().all(|t| stems.contains(t) || content.contains(t)) {
                best = best.max(0.95);
            }
        }
        for e in &self.example_terms {
            if e.is_empty() {
                continue;
            }
            // An example of one content word ("ringes op" -> "ring") says
            // too little on its own: at most half.
            let hit = e.iter().filter(|t| content.contains(t)).count();
            best = best.max(0.9 * hit as f64 / e.len().max(2) as f64);
        }
        best
    }
}

/// Keyword words at least this long may be heard fuzzily in words a
/// recogniser split ("kør kort" for "kørekort"); shorter ones must be spelt.
const JOINED_FUZZY_LEN: usize = 7;

/// "boligstoetten" contains "boligstoette": Danish inflects by suffix.
fn compound_similarity(heard: &str, kw: &str) -> f64 {
    if kw.len() >= 4 && heard.starts_with(kw) && heard.len() <= kw.len() + 3 {
        0.97
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }
    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn contractions_are_spelt_out_so_their_letters_spell_no_keyword() {
        assert_eq!(
            without_contractions("I'd like to move my appointment"),
            "I would like to move my appointment"
        );
        assert_eq!(
            without_contractions("I can't, I’m at work, it doesn't work"),
            "I can not, I am at work, it does not work"
        );
        assert_eq!(
            without_contractions("mit i d virker ikke"),
            "mit i d virker ikke"
        );
        assert_eq!(
            without_contractions("æ ska' ha' et pas"),
            "æ ska' ha' et pas"
        );
    }

    #[test]
    fn call_openers_are_no_request_to_be_called_back() {
        assert_eq!(
            without_openers("goddag, jeg ringer fordi vores pas udløber").trim(),
            "goddag,   vores pas udløber".trim()
        );
        assert_eq!(
            without_openers("det er passet jeg ringer om").trim(),
            "det er passet"
        );
        assert_eq!(without_openers("kan I ringe mig op"), "kan I ringe mig op");
        assert_eq!(
            without_openers("hej øh jeg ringer for at få en tid").trim(),
            "hej øh   få en tid"
        );
        assert_eq!(
            without_openers("hej, vi ringer fra energiselskabet").trim(),
            "hej,   fra energiselskabet"
        );
        assert_eq!(
            without_openers("I'm calling about my passport, can you call me back").trim(),
            "my passport, can you call me back"
        );
        // "ringer" of someone else is kept.
        assert_eq!(
            without_openers("hvornår ringer I mig op"),
            "hvornår ringer I mig op"
        );
    }

    #[test]
    fn normalisation_folds_danish_letters_and_case() {
        assert_eq!(normalize("Boligstøtte, TAK!"), "boligstoette tak");
        assert_eq!(normalize("Århus"), normalize("Aarhus"));
        assert_eq!(normalize("kl. 10:30"), "kl 10:30");
    }

    #[test]
    fn numbers_in_words_and_digits() {
        assert_eq!(parse_number("fireogtyve"), Some(24));
        assert_eq!(parse_number("jeg er 24 år"), Some(24));
        assert_eq!(parse_number("twenty-four"), Some(24));
        assert_eq!(parse_number("to tusind og fireogtyve"), Some(2024));
        assert_eq!(parse_number("a hundred and five"), Some(105));
        assert_eq!(parse_number("ingenting"), None);
    }

    #[test]
    fn dates_relative_to_today() {
        let today = d(2026, 11, 23); // a Monday
        assert_eq!(parse_date("i morgen", today), Some(d(2026, 11, 24)));
        assert_eq!(parse_date("på tirsdag", today), Some(d(2026, 11, 24)));
        assert_eq!(parse_date("på mandag", today), Some(d(2026, 11, 30)));
        assert_eq!(
            parse_date("den tredje december", today),
            Some(d(2026, 12, 3))
        );
        assert_eq!(parse_date("3/12", today), Some(d(2026, 12, 3)));
        assert_eq!(parse_date("on December 3rd", today), Some(d(2026, 12, 3)));
        assert_eq!(
            parse_date("the third of january", today),
            Some(d(2027, 1, 3))
        );
        assert_eq!(parse_date("3. december 2027", today), Some(d(2027, 12, 3)));
        assert_eq!(parse_date("tomorrow", today), Some(d(2026, 11, 24)));
        assert_eq!(parse_date("hvad", today), None);
    }

    #[test]
    fn times_the_danish_way() {
        assert_eq!(parse_time("kvart over ti"), Some(t(10, 15)));
        assert_eq!(parse_time("halv elleve"), Some(t(10, 30)));
        assert_eq!(parse_time("ti minutter i tolv"), Some(t(11, 50)));
        assert_eq!(parse_time("fem minutter i halv ti"), Some(t(9, 25)));
        assert_eq!(parse_time("klokken to"), Some(t(14, 0)));
        assert_eq!(parse_time("kl. 10:30"), Some(t(10, 30)));
        assert_eq!(parse_time("half past ten"), Some(t(10, 30)));
        assert_eq!(parse_time("quarter to eleven"), Some(t(10, 45)));
        assert_eq!(parse_time("ten to twelve"), Some(t(11, 50)));
        assert_eq!(parse_time("ten thirty"), Some(t(10, 30)));
    }

    #[test]
    fn cpr_century_rule_and_date_check() {
        let c = parse_cpr("031290-1234").unwrap();
        assert_eq!(*c.birth_date.expose(), d(1990, 12, 3));
        assert_eq!(
            *parse_cpr("0101054123").unwrap().birth_date.expose(),
            d(2005, 1, 1)
        );
        assert_eq!(
            *parse_cpr("0101604123").unwrap().birth_date.expose(),
            d(1960, 1, 1)
        );
        assert_eq!(
            *parse_cpr("0101585123").unwrap().birth_date.expose(),
            d(1858, 1, 1)
        );
        assert_eq!(
            *parse_cpr("0101205123").unwrap().birth_date.expose(),
            d(2020, 1, 1)
        );
        assert_eq!(parse_cpr("3102901234"), Err(CprError::BadDate));
        assert_eq!(parse_cpr("12345"), Err(CprError::WrongLength(5)));
        let spoken = parse_cpr("nul tre tolv halvfems tolv fireogtredive").unwrap();
        assert_eq!(spoken.digits.expose(), "0312901234");
    }

    #[test]
    fn phone_numbers_spoken_in_pairs() {
        assert_eq!(
            parse_phone("toogtyve fireogtredive seksoghalvtreds otteoghalvfjerds")
                .unwrap()
                .expose(),
            "22345678"
        );
        assert_eq!(parse_phone("+45 22 33 44 55").unwrap().expose(), "22334455");
        assert_eq!(
            parse_phone("two two three three four four five five")
                .unwrap()
                .expose(),
            "22334455"
        );
        assert!(parse_phone("123").is_none());
    }

    #[test]
    fn yes_no_and_language_requests() {
        assert_eq!(parse_yes_no("ja tak"), Some(true));
        assert_eq!(parse_yes_no("nej det er forkert"), Some(false));
        assert_eq!(parse_yes_no("yes please"), Some(true));
        assert_eq!(parse_yes_no("måske"), None);
        assert_eq!(language_request("English please"), Some(Lang::En));
        assert!(repeat_request("Undskyld, hvad sagde du?"));
        assert!(repeat_request("can you repeat"));
        assert!(!repeat_request(
            "jeg vil gerne have en ny tid igen på tirsdag i næste uge tak"
        ));
        assert_eq!(language_request("kan vi tale dansk"), Some(Lang::Da));
        assert_eq!(
            language_request("jeg skal have hjælp til min boligstøtte fra kommunen i dag"),
            None
        );
    }

    #[test]
    fn the_language_switch_phrases_callers_use_switch_in_either_direction() {
        for en in [
            "English please",
            "English, please.",
            "engelsk",
            "Engelsk.",
            "Can I speak English?",
            "kan vi tale engelsk",
            "på engelsk tak",
        ] {
            assert_eq!(language_request(en), Some(Lang::En), "{en}");
        }
        for da in [
            "dansk tak",
            "Dansk, tak.",
            "på dansk",
            "På dansk, tak!",
            "Danish please",
            "Can we speak Danish?",
        ] {
            assert_eq!(language_request(da), Some(Lang::Da), "{da}");
        }
        assert_eq!(language_request("I need a new passport"), None);
    }

    #[test]
    fn a_correction_in_the_turn_leaves_what_the_caller_corrected_to() {
        assert_eq!(
            corrected("til min skat... nej, til min pension").trim(),
            ", til min pension"
        );
        assert_eq!(
            corrected("a passport, no sorry, a driving licence").trim(),
            ", a driving licence"
        );
        // No correction, or nothing after it: the whole turn.
        assert_eq!(
            corrected("nej tak, jeg vil gerne have et pas"),
            "nej tak, jeg vil gerne have et pas"
        );
        assert_eq!(corrected("jeg mener"), "jeg mener");
    }

    #[test]
    fn compounds_a_recogniser_split_still_match_their_keyword() {
        let m = IntentMatcher {
            keywords: vec![normalize("kørekort"), normalize("mitid")],
            ..Default::default()
        };
        assert!(m.score(&normalize("jeg har mistet mit kør kort")) > 0.8);
        assert!(m.score(&normalize("jeg kan ikke logge på mit i d")) > 0.9);
        assert!(m.score(&normalize("jeg skal have et pas")) < 0.5);
    }

    #[test]
    fn keywords_survive_misspellings_and_inflection() {
        let m = IntentMatcher {
            keywords: vec![normalize("boligstøtte")],
            ..Default::default()
        };
        assert!(m.score(&normalize("jeg ringer om min boligstøtte")) > 0.9);
        assert!(m.score(&normalize("boligstotte")) > 0.8);
        assert!(m.score(&normalize("boligstøtten")) > 0.8);
        assert!(m.score(&normalize("jeg skal have et pas")) < 0.5);
    }
}
