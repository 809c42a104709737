//! Opening hours of departments: weekly schedules, Danish public holidays,
//! configurable closures and special days, in Europe/Copenhagen local time
//! (daylight saving handled by `chrono-tz`).
//!
//! Public holidays follow the Danish helligdagslov: nytårsdag, skærtorsdag,
//! langfredag, påskedag, 2. påskedag, Kristi himmelfartsdag, pinsedag,
//! 2. pinsedag, juledag, 2. juledag. Store bededag was abolished as a holiday
//! from 2024 (lov nr. 43 af 28/02/2023) and counts only up to 2023.
//! Grundlovsdag, juleaftensdag and nytårsaftensdag are not public holidays
//! but many municipalities close: they are [`OptionalClosure`]s a
//! municipality opts into.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::{Europe::Copenhagen, Tz};

/// One opening interval of a day, `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Opens at.
    pub start: NaiveTime,
    /// Closes at.
    pub end: NaiveTime,
}

/// A bad opening-hours string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HoursError {
    /// An interval is not `HH:MM-HH:MM`.
    #[error("`{0}` is not an interval like `08:00-15:00`")]
    BadInterval(String),
    /// The interval closes before it opens.
    #[error("`{0}` closes before it opens")]
    Backwards(String),
    /// Two intervals of the same day overlap.
    #[error("intervals `{0}` and `{1}` overlap")]
    Overlap(String, String),
    /// Not a known optional closure name.
    #[error(
        "`{0}` is not an optional closure (known: grundlovsdag, juleaftensdag, nytaarsaftensdag)"
    )]
    UnknownClosure(String),
}

/// Parses `"08:00-12:00, 13:00-15:30"`; `"closed"`/`"lukket"`/`""` is no interval.
pub fn parse_intervals(s: &str) -> Result<Vec<Interval>, HoursError> {
    let trimmed = s.trim();
    if trimmed.is_empty()
        || trimmed.eq_ignore_ascii_case("closed")
        || trimmed.eq_ignore_ascii_case("lukket")
    {
        return Ok(Vec::new());
    }
    let mut out: Vec<Interval> = Vec::new();
    for part in trimmed.split(',') {
        let part = part.trim();
        let (a, b) = part
            .split_once('-')
            .ok_or_else(|| HoursError::BadInterval(part.to_string()))?;
        let p = |x: &str| {
            NaiveTime::parse_from_str(x.trim(), "%H:%M")
                .map_err(|_| HoursError::BadInterval(part.to_string()))
        };
        let (start, end) = (
            p(a)?,
            if b.trim() == "24:00" {
                NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN)
            } else {
                p(b)?
            },
        );
        if end <= start {
            return Err(HoursError::Backwards(part.to_string()));
        }
        out.push(Interval { start, end });
    }
    out.sort_by_key(|i| i.start);
    for w in out.windows(2) {
        if w[1].start < w[0].end {
            let f = |i: &Interval| format!("{}-{}", i.start.format("%H:%M"), i.end.format("%H:%M"));
            return Err(HoursError::Overlap(f(&w[0]), f(&w[1])));
        }
    }
    Ok(out)
}

/// A Danish public holiday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Holiday {
    /// 1 January.
    Nytaarsdag,
    /// Maundy Thursday.
    Skaertorsdag,
    /// Good Friday.
    Langfredag,
    /// Easter Sunday.
    Paaskedag,
    /// Easter Monday.
    AndenPaaskedag,
    /// Fourth Friday after Easter; a holiday only up to 2023.
    StoreBededag,
    /// Ascension Day, Easter + 39.
    KristiHimmelfart,
    /// Whit Sunday, Easter + 49.
    Pinsedag,
    /// Whit Monday, Easter + 50.
    AndenPinsedag,
    /// 25 December.
    Juledag,
    /// 26 December.
    AndenJuledag,
}

impl Holiday {
    /// The Danish name.
    pub fn name_da(self) -> &'static str {
        match self {
            Holiday::Nytaarsdag => "nytårsdag",
            Holiday::Skaertorsdag => "skærtorsdag",
            Holiday::Langfredag => "langfredag",
            Holiday::Paaskedag => "påskedag",
            Holiday::AndenPaaskedag => "2. påskedag",
            Holiday::StoreBededag => "store bededag",
            Holiday::KristiHimmelfart => "Kristi himmelfartsdag",
            Holiday::Pinsedag => "pinsedag",
            Holiday::AndenPinsedag => "2. pinsedag",
            Holiday::Juledag => "juledag",
            Holiday::AndenJuledag => "2. juledag",
        }
    }
}

/// Easter Sunday (Gregorian computus, the anonymous algorithm of 1876).
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

/// The public holiday on a date, if any.
pub fn holiday_on(date: NaiveDate) -> Option<Holiday> {
    let y = date.year();
    match (date.month(), date.day()) {
        (1, 1) => return Some(Holiday::Nytaarsdag),
        (12, 25) => return Some(Holiday::Juledag),
        (12, 26) => return Some(Holiday::AndenJuledag),
        _ => {}
    }
    let easter = easter_sunday(y)?;
    let off = (date - easter).num_days();
    match off {
        -3 => Some(Holiday::Skaertorsdag),
        -2 => Some(Holiday::Langfredag),
        0 => Some(Holiday::Paaskedag),
        1 => Some(Holiday::AndenPaaskedag),
        26 if y <= 2023 => Some(Holiday::StoreBededag),
        39 => Some(Holiday::KristiHimmelfart),
        49 => Some(Holiday::Pinsedag),
        50 => Some(Holiday::AndenPinsedag),
        _ => None,
    }
}

/// A day that is not a public holiday but on which many municipalities close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionalClosure {
    /// Constitution Day, 5 June.
    Grundlovsdag,
    /// Christmas Eve, 24 December.
    Juleaftensdag,
    /// New Year's Eve, 31 December.
    Nytaarsaftensdag,
}

impl OptionalClosure {
    /// Parses the config name (`grundlovsdag`, `juleaftensdag`, `nytaarsaftensdag`; æøå accepted).
    pub fn parse(s: &str) -> Result<Self, HoursError> {
        match crate::understand::normalize(s).as_str() {
            "grundlovsdag" => Ok(Self::Grundlovsdag),
            "juleaftensdag" | "juleaften" => Ok(Self::Juleaftensdag),
            "nytaarsaftensdag" | "nytaarsaften" => Ok(Self::Nytaarsaftensdag),
            _ => Err(HoursError::UnknownClosure(s.to_string())),
        }
    }

    fn matches(self, d: NaiveDate) -> bool {
        matches!(
            (self, d.month(), d.day()),
            (Self::Grundlovsdag, 6, 5)
                | (Self::Juleaftensdag, 12, 24)
                | (Self::Nytaarsaftensdag, 12, 31)
        )
    }
}

/// Closures and special days of a municipality, shared by its departments.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    /// Optional closures the municipality observes.
    pub optional: Vec<OptionalClosure>,
    /// Extra closed days (inclusive ranges), e.g. a moving day.
    pub closures: Vec<(NaiveDate, NaiveDate)>,
    /// Days with their own hours (override holidays, closures and the week).
    pub special: Vec<(NaiveDate, Vec<Interval>)>,
}

/// Why a department is closed on a day (for prompts and the call record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DayKind {
    /// An ordinary day of the weekly schedule.
    Weekly,
    /// A public holiday.
    Holiday(Holiday),
    /// An optional closure the municipality observes.
    Optional(OptionalClosure),
    /// An extra closure from the config.
    Closure,
    /// A special day from the config.
    Special,
}

/// Opening hours of one department.
#[derive(Debug, Clone, Default)]
pub struct OpeningHours {
    /// Monday first.
    pub week: [Vec<Interval>; 7],
    /// The municipality's closures and special days.
    pub calendar: Calendar,
}

impl OpeningHours {
    /// The intervals of a local date and why.
    pub fn day(&self, date: NaiveDate) -> (Vec<Interval>, DayKind) {
        if let Some((_, iv)) = self.calendar.special.iter().find(|(d, _)| *d == date) {
            return (iv.clone(), DayKind::Special);
        }
        if self
            .calendar
            .closures
            .iter()
            .any(|(a, b)| *a <= date && date <= *b)
        {
            return (Vec::new(), DayKind::Closure);
        }
        if let Some(h) = holiday_on(date) {
            return (Vec::new(), DayKind::Holiday(h));
        }
        if let Some(o) = self.calendar.optional.iter().find(|o| o.matches(date)) {
            return (Vec::new(), DayKind::Optional(*o));
        }
        let wd = date.weekday().num_days_from_monday() as usize;
        (self.week[wd].clone(), DayKind::Weekly)
    }

    /// Whether the department is open at an instant.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&Copenhagen);
        let t = local.time();
        self.day(local.date_naive())
            .0
            .iter()
            .any(|i| i.start <= t && t < i.end)
    }

    /// When it opens next (now if open), searched up to 60 days ahead.
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Tz>> {
        let local = at.with_timezone(&Copenhagen);
        if self.is_open(at) {
            return Some(local);
        }
        let today = local.date_naive();
        for off in 0..60 {
            let date = today + Duration::days(off);
            for iv in self.day(date).0 {
                if off > 0 || iv.start > local.time() {
                    if let Some(dt) = Copenhagen
                        .from_local_datetime(&date.and_time(iv.start))
                        .earliest()
                    {
                        return Some(dt);
                    }
                }
            }
        }
        None
    }

    /// When the current opening interval ends, if open.
    pub fn closes_at(&self, at: DateTime<Utc>) -> Option<DateTime<Tz>> {
        let local = at.with_timezone(&Copenhagen);
        let t = local.time();
        let iv = self
            .day(local.date_naive())
            .0
            .into_iter()
            .find(|i| i.start <= t && t < i.end)?;
        Copenhagen
            .from_local_datetime(&local.date_naive().and_time(iv.end))
            .earliest()
    }

    /// True when no day of the week has hours (a department always closed).
    pub fn never_open(&self) -> bool {
        self.week.iter().all(Vec::is_empty)
            && self.calendar.special.iter().all(|(_, i)| i.is_empty())
    }
}

/// Weekday from a config key (`mon`, `man`, `monday`, `mandag`, ...).
pub fn weekday_key(s: &str) -> Option<Weekday> {
    let n = crate::understand::normalize(s);
    Some(match n.as_str() {
        "mon" | "monday" | "man" | "mandag" => Weekday::Mon,
        "tue" | "tuesday" | "tir" | "tirsdag" => Weekday::Tue,
        "wed" | "wednesday" | "ons" | "onsdag" => Weekday::Wed,
        "thu" | "thursday" | "tor" | "torsdag" => Weekday::Thu,
        "fri" | "friday" | "fre" | "fredag" => Weekday::Fri,
        "sat" | "saturday" | "loer" | "loerdag" => Weekday::Sat,
        "sun" | "sunday" | "soen" | "soendag" => Weekday::Sun,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn office() -> OpeningHours {
        let mut h = OpeningHours::default();
        for i in 0..4 {
            h.week[i] = parse_intervals("08:00-15:00").unwrap();
        }
        h.week[3] = parse_intervals("08:00-17:00").unwrap();
        h.week[4] = parse_intervals("08:00-13:00").unwrap();
        h.calendar.optional = vec![
            OptionalClosure::Juleaftensdag,
            OptionalClosure::Grundlovsdag,
        ];
        h
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn easter_dates_match_the_almanac() {
        assert_eq!(easter_sunday(2024), Some(d(2024, 3, 31)));
        assert_eq!(easter_sunday(2025), Some(d(2025, 4, 20)));
        assert_eq!(easter_sunday(2026), Some(d(2026, 4, 5)));
        assert_eq!(holiday_on(d(2026, 4, 6)), Some(Holiday::AndenPaaskedag));
        assert_eq!(holiday_on(d(2026, 5, 14)), Some(Holiday::KristiHimmelfart));
        assert_eq!(holiday_on(d(2026, 5, 25)), Some(Holiday::AndenPinsedag));
    }

    #[test]
    fn store_bededag_is_a_holiday_only_until_2023() {
        assert_eq!(holiday_on(d(2023, 5, 5)), Some(Holiday::StoreBededag));
        assert_eq!(holiday_on(d(2024, 4, 26)), None);
    }

    #[test]
    fn christmas_eve_at_1659_is_closed_and_opens_after_christmas() {
        let h = office();
        // Thursday 24 December 2026, 16:59 local (CET = UTC+1).
        let at = utc("2026-12-24T16:59:00+01:00");
        assert!(!h.is_open(at));
        let next = h.next_open(at).unwrap();
        assert_eq!(next.date_naive(), d(2026, 12, 28)); // 25, 26 holidays, 27 Sunday
        assert_eq!(next.time(), NaiveTime::from_hms_opt(8, 0, 0).unwrap());
    }

    #[test]
    fn daylight_saving_is_respected() {
        let h = office();
        // Monday 29 June 2026 07:30 UTC = 09:30 CEST: open.
        assert!(h.is_open(utc("2026-06-29T07:30:00Z")));
        // 06:30 UTC = 08:30 CEST: open in summer; in winter 06:30 UTC is 07:30 CET: closed.
        assert!(h.is_open(utc("2026-06-29T06:30:00Z")));
        assert!(!h.is_open(utc("2026-11-23T06:30:00Z")));
    }

    #[test]
    fn special_days_and_closures_override_the_week() {
        let mut h = office();
        h.calendar
            .special
            .push((d(2026, 12, 24), parse_intervals("09:00-12:00").unwrap()));
        h.calendar.closures.push((d(2026, 11, 23), d(2026, 11, 24)));
        assert!(h.is_open(utc("2026-12-24T10:00:00+01:00")));
        assert!(!h.is_open(utc("2026-11-23T10:00:00+01:00")));
        assert_eq!(
            h.day(d(2026, 6, 5)).1,
            DayKind::Optional(OptionalClosure::Grundlovsdag)
        );
    }

    #[test]
    fn bad_intervals_are_refused() {
        assert!(matches!(
            parse_intervals("8-15"),
            Err(HoursError::BadInterval(_))
        ));
        assert!(matches!(
            parse_intervals("15:00-08:00"),
            Err(HoursError::Backwards(_))
        ));
        assert!(matches!(
            parse_intervals("08:00-12:00, 11:00-13:00"),
            Err(HoursError::Overlap(..))
        ));
        assert_eq!(parse_intervals("lukket").unwrap(), vec![]);
    }
}
