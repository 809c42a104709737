//! KPIs from the call records (`call_records`, `call_turns`), the callback
//! queue and the mail outbox, per municipality or over every municipality an
//! operator sees, for a time range cut into days, weeks, months or quarters
//! (Copenhagen time: the municipalities' own calendar). Phone calls only:
//! operators' test calls from the softphone (`origin` `browser`/`draft`)
//! are listed with the call records but counted in no KPI.
//!
//! Definitions (the same for everyone, so municipalities can compare):
//! - *resolved by the bot*: outcome `resolved` (answered), `booked`,
//!   `cancelled`, `callback_ordered` or `mail_sent`: no human was needed.
//! - *funnel*: per flow step, the calls that reached it and the calls whose
//!   caller hung up (`abandoned`) with it as their last step.
//! - *misunderstood turns*: per gather step, the caller turns (speech or
//!   keys, not silence) the flow did not understand.
//! - *turn latency*: end of the caller's turn to the first packet of the
//!   reply; nearest-rank p50 and p95 over every turn that had a reply.
//! - *time to serve* a callback: ordered to marked done; the median.
//!
//! The quarterly export ([`QuarterRow`]) is one row per municipality and
//! quarter with the columns of [`QUARTER_COLUMNS`], as CSV or JSON.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Europe::Copenhagen;
use serde::{Deserialize, Serialize};

use super::on_pool;
use ivr_integrations::db::Db;

/// Outcomes that count as resolved by the bot.
pub const RESOLVED_BY_BOT: [&str; 5] = [
    "resolved",
    "booked",
    "cancelled",
    "callback_ordered",
    "mail_sent",
];

/// How a report's range is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Days.
    Day,
    /// ISO weeks.
    Week,
    /// Months.
    Month,
    /// Quarters.
    Quarter,
}

impl Period {
    /// The bucket label of local time `t` (`2026-12-05`, `2026-W49`, `2026-12`, `2026Q4`).
    pub fn label(self, t: DateTime<Utc>) -> String {
        let l = t.with_timezone(&Copenhagen);
        match self {
            Period::Day => l.format("%Y-%m-%d").to_string(),
            Period::Week => {
                let w = l.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            Period::Month => l.format("%Y-%m").to_string(),
            Period::Quarter => format!("{}Q{}", l.year(), l.month0() / 3 + 1),
        }
    }
}

/// A quarter, `2026Q4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quarter {
    /// Year.
    pub year: i32,
    /// 1-4.
    pub q: u32,
}

impl Quarter {
    /// Parses `2026Q4` (also `2026-Q4`).
    pub fn parse(s: &str) -> Option<Quarter> {
        let s = s.trim().to_ascii_uppercase().replace("-Q", "Q");
        let (y, q) = s.split_once('Q')?;
        let (year, q) = (y.parse().ok()?, q.parse().ok()?);
        ((1..=4).contains(&q) && (2000..=2200).contains(&year)).then_some(Quarter { year, q })
    }

    /// The quarter `t` falls in (Copenhagen time).
    pub fn of(t: DateTime<Utc>) -> Quarter {
        let l = t.with_timezone(&Copenhagen);
        Quarter {
            year: l.year(),
            q: l.month0() / 3 + 1,
        }
    }

    /// Its first instant and the next quarter's first instant.
    pub fn range(self) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = local_midnight(self.year, (self.q - 1) * 3 + 1);
        let end = if self.q == 4 {
            local_midnight(self.year + 1, 1)
        } else {
            local_midnight(self.year, self.q * 3 + 1)
        };
        (start, end)
    }
}

impl std::fmt::Display for Quarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}Q{}", self.year, self.q)
    }
}

fn local_midnight(year: i32, month: u32) -> DateTime<Utc> {
    let d = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default();
    Copenhagen
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Calls in one bucket of the range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    /// Label (`2026-12-05`, `2026-W49`, `2026-12`, `2026Q4`).
    pub label: String,
    /// Calls.
    pub calls: u64,
    /// Of them resolved by the bot.
    pub resolved_by_bot: u64,
}

/// One step of the funnel.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FunnelStep {
    /// `flow/step`.
    pub step: String,
    /// Calls that reached it.
    pub reached: u64,
    /// Calls whose caller hung up with it as the last step.
    pub hung_up: u64,
}

/// Misunderstood turns at one gather step.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GatherStep {
    /// `flow/step`.
    pub step: String,
    /// Caller turns (speech or keys) answering it.
    pub turns: u64,
    /// Of them not understood.
    pub misunderstood: u64,
    /// Times the caller said and pressed nothing there (not counted in `turns`).
    pub no_input: u64,
}

/// The callback queue's figures for calls in the range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallbackKpis {
    /// Callbacks ordered.
    pub ordered: u64,
    /// Of them handed off to the contact centre.
    pub handed_off: u64,
    /// Of them served (marked done).
    pub served: u64,
    /// Of them given up.
    pub failed: u64,
    /// Median time from order to done, in seconds.
    pub median_time_to_serve_s: Option<i64>,
}

/// The mail outbox's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MailKpis {
    /// Mails sent.
    pub sent: u64,
    /// Mails given up.
    pub failed: u64,
    /// Mails still waiting.
    pub pending: u64,
}

/// A KPI report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KpiReport {
    /// Municipality id, or `all`.
    pub municipality: String,
    /// First instant covered.
    pub from: DateTime<Utc>,
    /// First instant not covered.
    pub to: DateTime<Utc>,
    /// How [`KpiReport::series`] is cut.
    pub period: Period,
    /// Calls.
    pub calls: u64,
    /// Calls resolved by the bot.
    pub resolved_by_bot: u64,
    /// `resolved_by_bot / calls` (0 without calls).
    pub resolved_share: f64,
    /// Calls by outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Transfers by department.
    pub transfers: BTreeMap<String, u64>,
    /// Calls by language at the end of the call.
    pub languages: BTreeMap<String, u64>,
    /// Calls per bucket.
    pub series: Vec<Bucket>,
    /// Calls by hour of day (0-23, Copenhagen time).
    pub busiest_hours: Vec<u64>,
    /// Where callers hang up, most-reached step first.
    pub funnel: Vec<FunnelStep>,
    /// Misunderstood turns per gather step.
    pub gather_steps: Vec<GatherStep>,
    /// Caller turns (speech or keys).
    pub turns: u64,
    /// Of them misunderstood.
    pub misunderstood_turns: u64,
    /// Turn latency p50, ms.
    pub latency_p50_ms: Option<i64>,
    /// Turn latency p95, ms.
    pub latency_p95_ms: Option<i64>,
    /// Callbacks.
    pub callbacks: CallbackKpis,
    /// Mails.
    pub mails: MailKpis,
}

type CallRow = (String, String, String, String, Option<String>, String);
type TurnRow = (String, String, i64, Option<i64>);

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Computes the report for municipality `m` (None: every municipality)
/// over `[from, to)`.
///
/// # Errors
/// The database's.
pub async fn report(
    db: &Db,
    m: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    period: Period,
) -> Result<KpiReport, sqlx::Error> {
    let (f, t) = (from.to_rfc3339(), to.to_rfc3339());
    let calls: Vec<CallRow> = on_pool!(db, p => sqlx::query_as(
        "SELECT started_at, steps, outcome, lang, transferred_to, municipality FROM call_records \
         WHERE (CAST($1 AS TEXT) IS NULL OR municipality = $1) AND started_at >= $2 AND started_at < $3 \
         AND origin = 'phone'")
        .bind(m).bind(&f).bind(&t).fetch_all(p).await)?;
    let turns: Vec<TurnRow> = on_pool!(db, p => sqlx::query_as(
        "SELECT t.step, t.input, t.misunderstood, t.latency_ms FROM call_turns t JOIN call_records r ON r.call_ref = t.call_ref \
         WHERE (CAST($1 AS TEXT) IS NULL OR r.municipality = $1) AND r.started_at >= $2 AND r.started_at < $3 \
         AND r.origin = 'phone'")
        .bind(m).bind(&f).bind(&t).fetch_all(p).await)?;
    let (fm, tm) = (from.timestamp_millis(), to.timestamp_millis());
    let cbs: Vec<(String, i64, Option<i64>, Option<i64>)> = on_pool!(db, p => sqlx::query_as(
        "SELECT state, created_at, handed_off_at, done_at FROM callback_requests \
         WHERE (CAST($1 AS TEXT) IS NULL OR municipality = $1) AND created_at >= $2 AND created_at < $3")
        .bind(m).bind(fm).bind(tm).fetch_all(p).await)?;
    let mails: Vec<(String,)> = on_pool!(db, p => sqlx::query_as(
        "SELECT state FROM mail_outbox WHERE (CAST($1 AS TEXT) IS NULL OR municipality = $1) AND created_at >= $2 AND created_at < $3")
        .bind(m).bind(fm).bind(tm).fetch_all(p).await)?;

    let mut r = KpiReport {
        municipality: m.unwrap_or("all").to_string(),
        from,
        to,
        period,
        calls: 0,
        resolved_by_bot: 0,
        resolved_share: 0.0,
        outcomes: BTreeMap::new(),
        transfers: BTreeMap::new(),
        languages: BTreeMap::new(),
        series: Vec::new(),
        busiest_hours: vec![0; 24],
        funnel: Vec::new(),
        gather_steps: Vec::new(),
        turns: 0,
        misunderstood_turns: 0,
        latency_p50_ms: None,
        latency_p95_ms: None,
        callbacks: CallbackKpis::default(),
        mails: MailKpis::default(),
    };
    let mut series: BTreeMap<String, Bucket> = BTreeMap::new();
    let mut funnel: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (started, steps, outcome, lang, transferred_to, _) in &calls {
        let Ok(started) = DateTime::parse_from_rfc3339(started) else {
            continue;
        };
        let started = started.with_timezone(&Utc);
        let bot = RESOLVED_BY_BOT.contains(&outcome.as_str());
        r.calls += 1;
        r.resolved_by_bot += u64::from(bot);
        *r.outcomes.entry(outcome.clone()).or_default() += 1;
        *r.languages.entry(lang.clone()).or_default() += 1;
        if let Some(d) = transferred_to.as_ref().filter(|_| outcome == "transferred") {
            *r.transfers.entry(d.clone()).or_default() += 1;
        }
        let label = period.label(started);
        let b = series.entry(label.clone()).or_insert_with(|| Bucket {
            label,
            ..Bucket::default()
        });
        b.calls += 1;
        b.resolved_by_bot += u64::from(bot);
        let hour = started.with_timezone(&Copenhagen).hour() as usize;
        if let Some(h) = r.busiest_hours.get_mut(hour) {
            *h += 1;
        }
        let steps: Vec<String> = serde_json::from_str(steps).unwrap_or_default();
        let reached: BTreeSet<&String> = steps.iter().collect();
        for s in reached {
            funnel.entry(s.clone()).or_default().0 += 1;
        }
        if outcome == "abandoned" {
            if let Some(last) = steps.last() {
                funnel.entry(last.clone()).or_default().1 += 1;
            }
        }
    }
    r.resolved_share = if r.calls == 0 {
        0.0
    } else {
        r.resolved_by_bot as f64 / r.calls as f64
    };
    r.series = series.into_values().collect();
    r.funnel = funnel
        .into_iter()
        .map(|(step, (reached, hung_up))| FunnelStep {
            step,
            reached,
            hung_up,
        })
        .collect();
    r.funnel
        .sort_by(|a, b| b.reached.cmp(&a.reached).then(a.step.cmp(&b.step)));

    let mut gather: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let mut latencies = Vec::new();
    for (step, input, mis, latency) in &turns {
        if let Some(l) = latency {
            latencies.push(*l);
        }
        if input == "speech" || input == "dtmf" {
            r.turns += 1;
            let g = gather.entry(step.clone()).or_default();
            g.0 += 1;
            if *mis != 0 {
                g.1 += 1;
                r.misunderstood_turns += 1;
            }
        } else if input == "no_input" {
            gather.entry(step.clone()).or_default().2 += 1;
        }
    }
    latencies.sort_unstable();
    r.latency_p50_ms = percentile(&latencies, 50.0);
    r.latency_p95_ms = percentile(&latencies, 95.0);
    r.gather_steps = gather
        .into_iter()
        .map(|(step, (turns, misunderstood, no_input))| GatherStep {
            step,
            turns,
            misunderstood,
            no_input,
        })
        .collect();

    let mut serve_times = Vec::new();
    for (state, created, handed, done) in &cbs {
        r.callbacks.ordered += 1;
        r.callbacks.handed_off += u64::from(handed.is_some());
        match state.as_str() {
            "done" => r.callbacks.served += 1,
            "failed" => r.callbacks.failed += 1,
            _ => {}
        }
        if let Some(d) = done {
            serve_times.push((d - created) / 1000);
        }
    }
    serve_times.sort_unstable();
    r.callbacks.median_time_to_serve_s = percentile(&serve_times, 50.0);
    for (state,) in &mails {
        match state.as_str() {
            "sent" => r.mails.sent += 1,
            "failed" => r.mails.failed += 1,
            _ => r.mails.pending += 1,
        }
    }
    Ok(r)
}

/// The quarterly export's columns, in order (CSV header, JSON keys).
pub const QUARTER_COLUMNS: [&str; 29] = [
    "format",
    "municipality",
    "quarter",
    "calls",
    "resolved_by_bot",
    "resolved_share",
    "resolved",
    "booked",
    "cancelled",
    "callback_ordered",
    "mail_sent",
    "transferred",
    "abandoned",
    "failed",
    "turns",
    "misunderstood_turns",
    "latency_p50_ms",
    "latency_p95_ms",
    "lang_da",
    "lang_en",
    "callbacks_ordered",
    "callbacks_handed_off",
    "callbacks_served",
    "callbacks_failed",
    "callbacks_median_time_to_serve_s",
    "mails_sent",
    "mails_failed",
    "mails_pending",
    "transfers_by_department",
];

/// The export format's version (the `format` column).
pub const QUARTER_FORMAT: &str = "ivr-kpi-quarter-v1";

/// One municipality's quarter, as exported. The same columns for every
/// municipality, so quarters and municipalities can be put side by side.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QuarterRow {
    /// [`QUARTER_FORMAT`].
    pub format: String,
    /// Municipality id.
    pub municipality: String,
    /// `2026Q4`.
    pub quarter: String,
    /// Calls.
    pub calls: u64,
    /// Resolved by the bot.
    pub resolved_by_bot: u64,
    /// Share resolved by the bot, 0-1, four decimals.
    pub resolved_share: f64,
    /// Outcome `resolved` (answered).
    pub resolved: u64,
    /// Outcome `booked`.
    pub booked: u64,
    /// Outcome `cancelled`.
    pub cancelled: u64,
    /// Outcome `callback_ordered`.
    pub callback_ordered: u64,
    /// Outcome `mail_sent`.
    pub mail_sent: u64,
    /// Outcome `transferred`.
    pub transferred: u64,
    /// Outcome `abandoned`.
    pub abandoned: u64,
    /// Outcome `failed`.
    pub failed: u64,
    /// Caller turns.
    pub turns: u64,
    /// Misunderstood turns.
    pub misunderstood_turns: u64,
    /// Turn latency p50, ms.
    pub latency_p50_ms: Option<i64>,
    /// Turn latency p95, ms.
    pub latency_p95_ms: Option<i64>,
    /// Calls ending in Danish.
    pub lang_da: u64,
    /// Calls ending in English.
    pub lang_en: u64,
    /// Callbacks ordered.
    pub callbacks_ordered: u64,
    /// Callbacks handed off.
    pub callbacks_handed_off: u64,
    /// Callbacks served.
    pub callbacks_served: u64,
    /// Callbacks failed.
    pub callbacks_failed: u64,
    /// Median time to serve, s.
    pub callbacks_median_time_to_serve_s: Option<i64>,
    /// Mails sent.
    pub mails_sent: u64,
    /// Mails failed.
    pub mails_failed: u64,
    /// Mails pending.
    pub mails_pending: u64,
    /// Transfers per department, `dept=n;dept=n` in CSV.
    pub transfers_by_department: BTreeMap<String, u64>,
}

impl QuarterRow {
    /// From a report over exactly one quarter of one municipality.
    pub fn from_report(r: &KpiReport, quarter: Quarter) -> Self {
        let o = |k: &str| r.outcomes.get(k).copied().unwrap_or(0);
        let l = |k: &str| r.languages.get(k).copied().unwrap_or(0);
        QuarterRow {
            format: QUARTER_FORMAT.into(),
            municipality: r.municipality.clone(),
            quarter: quarter.to_string(),
            calls: r.calls,
            resolved_by_bot: r.resolved_by_bot,
            resolved_share: (r.resolved_share * 10_000.0).round() / 10_000.0,
            resolved: o("resolved"),
            booked: o("booked"),
            cancelled: o("cancelled"),
            callback_ordered: o("callback_ordered"),
            mail_sent: o("mail_sent"),
            transferred: o("transferred"),
            abandoned: o("abandoned"),
            failed: o("failed"),
            turns: r.turns,
            misunderstood_turns: r.misunderstood_turns,
            latency_p50_ms: r.latency_p50_ms,
            latency_p95_ms: r.latency_p95_ms,
            lang_da: l("da"),
            lang_en: l("en"),
            callbacks_ordered: r.callbacks.ordered,
            callbacks_handed_off: r.callbacks.handed_off,
            callbacks_served: r.callbacks.served,
            callbacks_failed: r.callbacks.failed,
            callbacks_median_time_to_serve_s: r.callbacks.median_time_to_serve_s,
            mails_sent: r.mails.sent,
            mails_failed: r.mails.failed,
            mails_pending: r.mails.pending,
            transfers_by_department: r.transfers.clone(),
        }
    }

    /// The CSV fields, in [`QUARTER_COLUMNS`] order.
    fn fields(&self) -> [String; 29] {
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        [
            self.format.clone(),
            self.municipality.clone(),
            self.quarter.clone(),
            self.calls.to_string(),
            self.resolved_by_bot.to_string(),
            format!("{:.4}", self.resolved_share),
            self.resolved.to_string(),
            self.booked.to_string(),
            self.cancelled.to_string(),
            self.callback_ordered.to_string(),
            self.mail_sent.to_string(),
            self.transferred.to_string(),
            self.abandoned.to_string(),
            self.failed.to_string(),
            self.turns.to_string(),
            self.misunderstood_turns.to_string(),
            opt(self.latency_p50_ms),
            opt(self.latency_p95_ms),
            self.lang_da.to_string(),
            self.lang_en.to_string(),
            self.callbacks_ordered.to_string(),
            self.callbacks_handed_off.to_string(),
            self.callbacks_served.to_string(),
            self.callbacks_failed.to_string(),
            opt(self.callbacks_median_time_to_serve_s),
            self.mails_sent.to_string(),
            self.mails_failed.to_string(),
            self.mails_pending.to_string(),
            self.transfers_by_department
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";"),
        ]
    }
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// Rows as CSV with the header line (RFC 4180, CRLF line ends).
pub fn quarter_csv(rows: &[QuarterRow]) -> String {
    let mut s = QUARTER_COLUMNS.join(",");
    s.push_str("\r\n");
    for r in rows {
        let f: Vec<String> = r.fields().iter().map(|v| csv_field(v)).collect();
        s.push_str(&f.join(","));
        s.push_str("\r\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_runs_from_local_midnight_on_its_first_day_to_the_next_quarters() {
        let q = Quarter::parse("2026Q4").unwrap();
        let (a, b) = q.range();
        assert_eq!(a.to_rfc3339(), "2026-09-30T22:00:00+00:00");
        assert_eq!(b.to_rfc3339(), "2026-12-31T23:00:00+00:00");
        assert_eq!(Quarter::of(a), q);
        assert_eq!(Quarter::parse("2026-q1").unwrap().q, 1);
        assert!(Quarter::parse("2026Q5").is_none());
    }

    #[test]
    fn the_csv_header_and_the_json_keys_are_the_same_columns() {
        let r = KpiReport {
            municipality: "nordby".into(),
            from: Utc::now(),
            to: Utc::now(),
            period: Period::Quarter,
            calls: 0,
            resolved_by_bot: 0,
            resolved_share: 0.0,
            outcomes: BTreeMap::new(),
            transfers: BTreeMap::from([("borgerservice".into(), 2)]),
            languages: BTreeMap::new(),
            series: vec![],
            busiest_hours: vec![0; 24],
            funnel: vec![],
            gather_steps: vec![],
            turns: 0,
            misunderstood_turns: 0,
            latency_p50_ms: None,
            latency_p95_ms: None,
            callbacks: CallbackKpis::default(),
            mails: MailKpis::default(),
        };
        let row = QuarterRow::from_report(&r, Quarter { year: 2026, q: 4 });
        let json = serde_json::to_value(&row).unwrap();
        let keys: BTreeSet<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let cols: BTreeSet<&str> = QUARTER_COLUMNS.iter().copied().collect();
        assert_eq!(keys, cols);
        let csv = quarter_csv(&[row]);
        assert!(csv.contains(",borgerservice=2\r\n"), "{csv}");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&v, 50.0), Some(10));
        assert_eq!(percentile(&v, 95.0), Some(19));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
