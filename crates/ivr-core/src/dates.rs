//! Month and weekday names in the languages the engine speaks and writes:
//! the one table that prompts, the understanding of spoken dates and mails
//! all use. Danish names are written in lower case ("mandag den 3.
//! december"), English ones capitalised ("Monday 3 December").

use chrono::Datelike;

use crate::Lang;

#[rustfmt::skip] // reason: the names read as a calendar, one line per quarter
const DA_MONTHS: [&str; 12] = [
    "januar", "februar", "marts",
    "april", "maj", "juni",
    "juli", "august", "september",
    "oktober", "november", "december",
];
#[rustfmt::skip] // reason: as above
const EN_MONTHS: [&str; 12] = [
    "January", "February", "March",
    "April", "May", "June",
    "July", "August", "September",
    "October", "November", "December",
];
#[rustfmt::skip] // reason: as above, the working week and the weekend
const DA_WEEKDAYS: [&str; 7] = [
    "mandag", "tirsdag", "onsdag", "torsdag", "fredag",
    "lørdag", "søndag",
];
#[rustfmt::skip] // reason: as above
const EN_WEEKDAYS: [&str; 7] = [
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday", "Sunday",
];

/// The month names of `lang`, January first.
pub fn month_names(lang: Lang) -> &'static [&'static str; 12] {
    match lang {
        Lang::Da => &DA_MONTHS,
        Lang::En => &EN_MONTHS,
    }
}

/// The weekday names of `lang`, Monday first.
pub fn weekday_names(lang: Lang) -> &'static [&'static str; 7] {
    match lang {
        Lang::Da => &DA_WEEKDAYS,
        Lang::En => &EN_WEEKDAYS,
    }
}

/// The name of the month of `date` in `lang`.
pub fn month_name(lang: Lang, date: &impl Datelike) -> &'static str {
    // month0() is 0..=11 for every chrono date.
    month_names(lang)[date.month0() as usize % 12]
}

/// The name of the weekday of `date` in `lang`.
pub fn weekday_name(lang: Lang, date: &impl Datelike) -> &'static str {
    weekday_names(lang)[date.weekday().num_days_from_monday() as usize % 7]
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    #[test]
    fn a_date_is_named_in_each_language() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap_or_default();
        assert_eq!(
            (weekday_name(Lang::Da, &d), month_name(Lang::Da, &d)),
            ("torsdag", "december")
        );
        assert_eq!(
            (weekday_name(Lang::En, &d), month_name(Lang::En, &d)),
            ("Thursday", "December")
        );
        let sunday = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default();
        assert_eq!(weekday_name(Lang::Da, &sunday), "søndag");
        assert_eq!(month_name(Lang::En, &sunday), "November");
    }
}
