//! Property tests: what the bot says, it understands. Numbers, times, dates,
//! phone and CPR numbers are formatted as Danish/English words and parsed back.

use chrono::{Duration, NaiveDate, NaiveTime};
use ivr_core::Lang;
use ivr_flow::{
    speak::{date_words, digit_pairs, number_words, time_words},
    understand::{parse_cpr, parse_date, parse_number, parse_phone, parse_time, spoken_digits},
};
use proptest::prelude::*;

fn lang() -> impl Strategy<Value = Lang> {
    prop_oneof![Just(Lang::Da), Just(Lang::En)]
}

proptest! {
    #[test]
    fn numbers_as_words_parse_back(n in 0u64..1_000_000, l in lang()) {
        let words = number_words(n, l);
        prop_assert_eq!(parse_number(&words), Some(n), "{}", words);
    }

    #[test]
    fn numbers_inside_a_sentence_parse_back(n in 1u64..10_000) {
        let s = format!("jeg har {} spørgsmål", number_words(n, Lang::Da));
        prop_assert_eq!(parse_number(&s), Some(n), "{}", s);
    }

    /// Office hours 07:00-18:59 (bare hours 1-6 are read as afternoon).
    #[test]
    fn times_as_words_parse_back(h in 7u32..19, m in 0u32..60, l in lang()) {
        let t = NaiveTime::from_hms_opt(h, m, 0).unwrap();
        let words = time_words(t, l);
        prop_assert_eq!(parse_time(&words), Some(t), "{}", words);
        let with_klokken = format!("klokken {}", time_words(t, Lang::Da));
        prop_assert_eq!(parse_time(&with_klokken), Some(t), "{}", with_klokken);
    }

    #[test]
    fn dates_as_words_parse_back(offset in 2i64..330, l in lang()) {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let d = today + Duration::days(offset);
        let words = date_words(d, l, Some(today));
        prop_assert_eq!(parse_date(&words, today), Some(d), "{}", words);
    }

    #[test]
    fn digits_read_in_pairs_parse_back(s in "[0-9]{1,12}", l in lang()) {
        let words = digit_pairs(&s, l);
        prop_assert_eq!(spoken_digits(&words), s.clone(), "{}", words);
    }

    #[test]
    fn phone_numbers_read_back_parse_back(s in "[2-9][0-9]{7}", l in lang()) {
        let words = digit_pairs(&s, l);
        prop_assert_eq!(parse_phone(&words).map(|p| p.into_inner()), Some(s.clone()), "{}", words);
        let with_prefix = format!("+45 {s}");
        prop_assert_eq!(parse_phone(&with_prefix).map(|p| p.into_inner()), Some(s));
    }

    #[test]
    fn cpr_numbers_read_back_parse_back(day in 1u32..29, month in 1u32..13, yy in 0u32..100, seq in 0u32..4000) {
        let s = format!("{day:02}{month:02}{yy:02}{seq:04}");
        let words = digit_pairs(&s, Lang::Da);
        let cpr = parse_cpr(&words).unwrap();
        prop_assert_eq!(cpr.digits.expose(), &s);
        prop_assert_eq!(*cpr.birth_date.expose(), NaiveDate::from_ymd_opt(1900 + yy as i32, month, day).unwrap());
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,60}") {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let _ = parse_number(&s);
        let _ = parse_time(&s);
        let _ = parse_date(&s, today);
        let _ = parse_cpr(&s);
        let _ = parse_phone(&s);
    }
}
