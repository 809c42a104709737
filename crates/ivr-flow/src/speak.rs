//! Speaking values aloud: Danish and English numbers, dates, times, phone and
//! CPR numbers as text a TTS voice reads naturally.
//!
//! Danish follows Dansk Sprognævn's spoken conventions: vigesimal tens
//! ("fireogtyve", "halvtreds"), the half hour counted towards the next hour
//! ("halv elleve" = 10:30) and "den 3. december". English uses British order
//! ("Tuesday 3 December at half past ten").

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use ivr_core::{
    dates::{month_name, weekday_name},
    Lang,
};

const DA_UNITS: [&str; 20] = [
    "nul", "en", "to", "tre", "fire", "fem", "seks", "syv", "otte", "ni", "ti", "elleve", "tolv",
    "tretten", "fjorten", "femten", "seksten", "sytten", "atten", "nitten",
];
const DA_TENS: [&str; 10] = [
    "",
    "",
    "tyve",
    "tredive",
    "fyrre",
    "halvtreds",
    "tres",
    "halvfjerds",
    "firs",
    "halvfems",
];
const EN_UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const EN_TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

fn da_below_100(n: u64) -> String {
    if n < 20 {
        DA_UNITS[n as usize].to_string()
    } else if n.is_multiple_of(10) {
        DA_TENS[(n / 10) as usize].to_string()
    } else {
        format!(
            "{}og{}",
            DA_UNITS[(n % 10) as usize],
            DA_TENS[(n / 10) as usize]
        )
    }
}

fn en_below_100(n: u64) -> String {
    if n < 20 {
        EN_UNITS[n as usize].to_string()
    } else if n.is_multiple_of(10) {
        EN_TENS[(n / 10) as usize].to_string()
    } else {
        format!(
            "{}-{}",
            EN_TENS[(n / 10) as usize],
            EN_UNITS[(n % 10) as usize]
        )
    }
}

fn below_1000(n: u64, lang: Lang, need_and: bool) -> String {
    let (h, rest) = (n / 100, n % 100);
    let mut parts: Vec<String> = Vec::new();
    if h > 0 {
        match lang {
            Lang::En => parts.push(format!("{} hundred", EN_UNITS[h as usize])),
            _ => parts.push(if h == 1 {
                "hundrede".to_string()
            } else {
                format!("{} hundrede", DA_UNITS[h as usize])
            }),
        }
    }
    if rest > 0 {
        if h > 0 || need_and {
            parts.push(if lang == Lang::En { "and" } else { "og" }.to_string());
        }
        parts.push(if lang == Lang::En {
            en_below_100(rest)
        } else {
            da_below_100(rest)
        });
    }
    parts.join(" ")
}

/// A whole number as words: `24` -> "fireogtyve" / "twenty-four",
/// `2024` -> "to tusind og fireogtyve" / "two thousand and twenty-four".
/// Numbers of a million and more are read as digits.
pub fn number_words(n: u64, lang: Lang) -> String {
    if n >= 1_000_000 {
        return n.to_string();
    }
    if n < 100 {
        return if lang == Lang::En {
            en_below_100(n)
        } else {
            da_below_100(n)
        };
    }
    let (th, rest) = (n / 1000, n % 1000);
    let mut parts: Vec<String> = Vec::new();
    if th > 0 {
        match lang {
            Lang::En => parts.push(format!("{} thousand", below_1000(th, lang, false))),
            _ => parts.push(if th == 1 {
                "tusind".to_string()
            } else {
                format!("{} tusind", below_1000(th, lang, false))
            }),
        }
    }
    if rest > 0 {
        parts.push(below_1000(rest, lang, th > 0 && rest < 100));
    }
    parts.join(" ")
}

/// The hour as spoken on a 12-hour dial ("et", "to", ... "tolv").
fn dial_hour(h: u32, lang: Lang) -> String {
    let h12 = match h % 12 {
        0 => 12,
        x => x,
    };
    if lang == Lang::En {
        EN_UNITS[h12 as usize].to_string()
    } else if h12 == 1 {
        "et".to_string()
    } else {
        DA_UNITS[h12 as usize].to_string()
    }
}

/// A time of day as spoken: 10:30 -> "halv elleve" / "half past ten",
/// 10:15 -> "kvart over ti", 11:50 -> "ti minutter i tolv", 8:00 -> "otte" /
/// "eight o'clock". Seconds are ignored.
pub fn time_words(t: NaiveTime, lang: Lang) -> String {
    let (h, m) = (t.hour(), t.minute());
    let next = h + 1;
    let min = |n: u32| -> String {
        let w = number_words(u64::from(n), lang);
        match (lang, n) {
            (Lang::En, 1) => format!("{w} minute"),
            (Lang::En, _) => format!("{w} minutes"),
            (_, 1) => "et minut".to_string(),
            _ => format!("{w} minutter"),
        }
    };
    if lang == Lang::En {
        return match m {
            0 => format!("{} o'clock", dial_hour(h, lang)),
            15 => format!("quarter past {}", dial_hour(h, lang)),
            30 => format!("half past {}", dial_hour(h, lang)),
            45 => format!("quarter to {}", dial_hour(next, lang)),
            5 | 10 | 20 | 25 => format!(
                "{} past {}",
                number_words(u64::from(m), lang),
                dial_hour(h, lang)
            ),
            35 | 40 | 50 | 55 => format!(
                "{} to {}",
                number_words(u64::from(60 - m), lang),
                dial_hour(next, lang)
            ),
            1..=29 => format!("{} past {}", min(m), dial_hour(h, lang)),
            _ => format!("{} to {}", min(60 - m), dial_hour(next, lang)),
        };
    }
    match m {
        0 => dial_hour(h, lang),
        15 => format!("kvart over {}", dial_hour(h, lang)),
        30 => format!("halv {}", dial_hour(next, lang)),
        45 => format!("kvart i {}", dial_hour(next, lang)),
        1..=20 => format!("{} over {}", min(m), dial_hour(h, lang)),
        21..=29 => format!("{} i halv {}", min(30 - m), dial_hour(next, lang)),
        31..=39 => format!("{} over halv {}", min(m - 30), dial_hour(next, lang)),
        _ => format!("{} i {}", min(60 - m), dial_hour(next, lang)),
    }
}

/// A date as spoken: "tirsdag den 3. december" / "Tuesday 3 December".
/// The year is added when it differs from `today`'s.
pub fn date_words(d: NaiveDate, lang: Lang, today: Option<NaiveDate>) -> String {
    let (weekday, month) = (weekday_name(lang, &d), month_name(lang, &d));
    let year = match today {
        Some(t) if t.year() != d.year() => format!(" {}", d.year()),
        _ => String::new(),
    };
    match lang {
        Lang::En => format!("{weekday} {} {month}{year}", d.day()),
        _ => format!("{weekday} den {}. {month}{year}", d.day()),
    }
}

/// A date relative to today when that is shorter ("i dag", "i morgen",
/// "today", "tomorrow"), otherwise [`date_words`].
pub fn relative_date_words(d: NaiveDate, lang: Lang, today: NaiveDate) -> String {
    let diff = (d - today).num_days();
    match (diff, lang) {
        (0, Lang::En) => "today".to_string(),
        (1, Lang::En) => "tomorrow".to_string(),
        (0, _) => "i dag".to_string(),
        (1, _) => "i morgen".to_string(),
        _ => date_words(d, lang, Some(today)),
    }
}

/// Date and time: "tirsdag den 3. december klokken halv elleve" /
/// "Tuesday 3 December at half past ten".
pub fn datetime_words(d: NaiveDate, t: NaiveTime, lang: Lang, today: Option<NaiveDate>) -> String {
    let date = match today {
        Some(td) => relative_date_words(d, lang, td),
        None => date_words(d, lang, None),
    };
    match lang {
        Lang::En => format!("{date} at {}", time_words(t, lang)),
        _ => format!("{date} klokken {}", time_words(t, lang)),
    }
}

/// Digits read back in groups of two, as Danes say phone numbers:
/// "12345678" -> "tolv, fireogtredive, seksoghalvtreds, otteoghalvfjerds";
/// a pair starting with 0 is read "nul fem". English reads single digits in
/// pairs: "one two, three four, ...". Non-digits are skipped; an odd last
/// digit is read on its own.
pub fn digit_pairs(digits: &str, lang: Lang) -> String {
    let ds: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    let mut groups = Vec::new();
    for pair in ds.chunks(2) {
        groups.push(pair_words(pair, lang));
    }
    groups.join(", ")
}

fn pair_words(pair: &[u32], lang: Lang) -> String {
    let single = |d: u32| -> String {
        if lang == Lang::En {
            EN_UNITS[d as usize].to_string()
        } else if d == 1 {
            "et".to_string()
        } else {
            DA_UNITS[d as usize].to_string()
        }
    };
    match (pair, lang) {
        ([a, b], Lang::En) => format!("{} {}", single(*a), single(*b)),
        ([0, b], _) => format!("nul {}", single(*b)),
        ([a, b], _) => number_words(u64::from(a * 10 + b), lang),
        ([a], _) => single(*a),
        _ => String::new(),
    }
}

/// A CPR number read back for confirmation: the birth date in pairs, then the
/// four last digits in pairs ("nul tre, tolv, halvfems, tolv, fireogtredive").
pub fn cpr_words(cpr: &str, lang: Lang) -> String {
    digit_pairs(cpr, lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn danish_numbers_read_like_a_dane_says_them() {
        assert_eq!(number_words(24, Lang::Da), "fireogtyve");
        assert_eq!(number_words(50, Lang::Da), "halvtreds");
        assert_eq!(number_words(97, Lang::Da), "syvoghalvfems");
        assert_eq!(number_words(105, Lang::Da), "hundrede og fem");
        assert_eq!(number_words(2024, Lang::Da), "to tusind og fireogtyve");
        assert_eq!(
            number_words(1350, Lang::Da),
            "tusind tre hundrede og halvtreds"
        );
    }

    #[test]
    fn english_numbers() {
        assert_eq!(number_words(24, Lang::En), "twenty-four");
        assert_eq!(number_words(2024, Lang::En), "two thousand and twenty-four");
        assert_eq!(number_words(315, Lang::En), "three hundred and fifteen");
    }

    #[test]
    fn danish_times() {
        assert_eq!(time_words(t(10, 30), Lang::Da), "halv elleve");
        assert_eq!(time_words(t(10, 15), Lang::Da), "kvart over ti");
        assert_eq!(time_words(t(11, 50), Lang::Da), "ti minutter i tolv");
        assert_eq!(time_words(t(12, 45), Lang::Da), "kvart i et");
        assert_eq!(time_words(t(8, 0), Lang::Da), "otte");
        assert_eq!(time_words(t(9, 25), Lang::Da), "fem minutter i halv ti");
    }

    #[test]
    fn english_times() {
        assert_eq!(time_words(t(10, 30), Lang::En), "half past ten");
        assert_eq!(time_words(t(10, 45), Lang::En), "quarter to eleven");
        assert_eq!(time_words(t(13, 0), Lang::En), "one o'clock");
        assert_eq!(time_words(t(10, 7), Lang::En), "seven minutes past ten");
    }

    #[test]
    fn dates_and_datetimes_as_in_the_domain_brief() {
        let d = NaiveDate::from_ymd_opt(2024, 12, 3).unwrap();
        assert_eq!(
            datetime_words(d, t(10, 30), Lang::Da, None),
            "tirsdag den 3. december klokken halv elleve"
        );
        assert_eq!(
            datetime_words(d, t(10, 30), Lang::En, None),
            "Tuesday 3 December at half past ten"
        );
        let today = NaiveDate::from_ymd_opt(2024, 12, 2).unwrap();
        assert_eq!(
            datetime_words(d, t(8, 0), Lang::Da, Some(today)),
            "i morgen klokken otte"
        );
    }

    #[test]
    fn phone_numbers_in_pairs() {
        assert_eq!(
            digit_pairs("12345678", Lang::Da),
            "tolv, fireogtredive, seksoghalvtreds, otteoghalvfjerds"
        );
        assert_eq!(digit_pairs("05", Lang::Da), "nul fem");
        assert_eq!(digit_pairs("1234", Lang::En), "one two, three four");
    }
}
