//! A crisis announcement set in the console comes before the flow of every
//! new call: the text in the call's language before the welcome and the
//! menu question, or a recording played first; an expired one is not heard,
//! and a call to another municipality hears nothing of it.
#![allow(clippy::unwrap_used)] // reason: test code

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use ivr_engine::console::announce::{self, Announcements, Crisis, Recording};
use ivr_integrations::db::Db;
use support::{shipped_flows, wednesday_morning, Options, Sim};

const NORDBY: &str = "+4570101010";
const SYDHAVN: &str = "+4570202020";

async fn announcements(
    dir: &std::path::Path,
    expires_at: DateTime<Utc>,
    rec: Option<Recording>,
) -> Announcements {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    announce::create_tables(&db).await.unwrap();
    let a = Announcements::new(dir.to_path_buf());
    let c = Crisis {
        municipality: "nordby".into(),
        text_da: Some("Vandet er afbrudt i hele kommunen.".into()),
        text_en: Some("The water is cut off in the whole municipality.".into()),
        has_audio: false,
        expires_at,
        set_by: "anna".into(),
        set_at: wednesday_morning(),
    };
    if let Some(r) = &rec {
        a.stage(&c, r).unwrap();
    }
    a.set(&db, c, rec.as_ref()).await.unwrap();
    // What another engine on the same database reads.
    let other = Announcements::new(dir.join("other"));
    other.refresh(&db).await.unwrap();
    assert_eq!(
        other
            .get("nordby", expires_at - chrono::Duration::seconds(1))
            .map(|c| c.has_audio),
        Some(rec.is_some())
    );
    a
}

fn call(called: &str, crisis: Announcements) -> Sim {
    let mut s = Sim::answered(
        &shipped_flows(),
        called,
        Options {
            crisis: Some(crisis),
            ..Options::default()
        },
    );
    s.run_for(Duration::from_secs(20));
    s
}

#[tokio::test]
async fn the_text_is_said_before_the_welcome_and_the_menu_question() {
    let dir = tempfile::tempdir().unwrap();
    let a = announcements(
        dir.path(),
        wednesday_morning() + chrono::Duration::hours(1),
        None,
    )
    .await;
    let s = call(NORDBY, a);
    let said = s.said();
    assert_eq!(
        said.first().map(String::as_str),
        Some("Vandet er afbrudt i hele kommunen."),
        "{said:?}"
    );
    assert!(
        said.iter().skip(1).any(|t| t.contains("Velkommen")),
        "{said:?}"
    );
}

#[tokio::test]
async fn an_expired_announcement_and_another_municipality_hear_only_the_flow() {
    let dir = tempfile::tempdir().unwrap();
    let a = announcements(
        dir.path(),
        wednesday_morning() - chrono::Duration::minutes(1),
        None,
    )
    .await;
    let s = call(NORDBY, a);
    assert!(!s.has_said("Vandet"), "{:?}", s.said());
    let a = announcements(
        dir.path(),
        wednesday_morning() + chrono::Duration::hours(1),
        None,
    )
    .await;
    let s = call(SYDHAVN, a);
    assert!(!s.has_said("Vandet"), "{:?}", s.said());
    assert!(!s.said().is_empty());
}

#[tokio::test]
async fn a_recording_plays_first_and_the_flow_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    // One second of a 440 Hz tone, 16 kHz mono WAV.
    let wav = {
        let mut cur = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for i in 0..16_000 {
            let v = (f64::from(i) * 440.0 * std::f64::consts::TAU / 16_000.0).sin();
            w.write_sample((v * 8000.0) as i16).unwrap();
        }
        w.finalize().unwrap();
        cur.into_inner()
    };
    let a = announcements(
        dir.path(),
        wednesday_morning() + chrono::Duration::hours(1),
        Some(Recording {
            bytes: wav,
            format: "wav".into(),
        }),
    )
    .await;
    let s = call(NORDBY, a);
    let (played_at, file) = s.log.files.first().cloned().expect("a file was played");
    assert!(
        file.starts_with(dir.path()) && file.extension().is_some_and(|e| e == "wav"),
        "{file:?}"
    );
    let welcome = s.said_at("Velkommen").expect("the welcome follows");
    assert!(played_at < welcome, "the recording comes first");
    assert!(!s.has_said("Vandet"), "the recording replaces the text");
}
