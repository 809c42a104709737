//! What operators and callers feed the flow engine: a flow file (TOML,
//! validated into a `Flow`), opening-hours intervals, and a caller's words
//! through every slot parser (numbers, yes/no, dates, times, CPR, phone) and
//! the simulator's turn syntax. None may panic, whatever the bytes.
#![no_main]

use std::io::Write;

use chrono::NaiveDate;
use ivr_core::Lang;
use ivr_flow::understand;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    // A caller's words, as whisper or the keypad hands them over.
    let today = NaiveDate::from_ymd_opt(2026, 12, 1).expect("valid date");
    let _ = understand::normalize(&text);
    let _ = understand::parse_number(&text);
    let _ = understand::spoken_digits(&text);
    let _ = understand::parse_yes_no(&text);
    let _ = understand::parse_date(&text, today);
    let _ = understand::parse_time(&text);
    let _ = understand::parse_cpr(&text);
    let _ = understand::parse_phone(&text);
    let _ = ivr_flow::sim::parse_turn(&text, Lang::Da);
    let _ = ivr_flow::hours::parse_intervals(&text);

    // A flow file as an operator might save it (the parser reads files, so
    // the input goes through one per process).
    let path = std::env::temp_dir().join(format!("ivr-fuzz-flow-{}.toml", std::process::id()));
    let mut f = std::fs::File::create(&path).expect("temp file");
    f.write_all(data).expect("write temp file");
    drop(f);
    let _ = ivr_flow::load::parse_flow_file(&path);
});
