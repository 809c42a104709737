//! The one handle the engine holds, wired from configuration to real local
//! servers: Puzzel and Frontdesk stand-ins, aiosmtpd, SQLite.

use std::{path::Path, process::Stdio, sync::Arc};

use chrono::{NaiveDate, TimeZone, Utc};
use ivr_core::{CallId, FixedClock, Lang, Pii};
use ivr_integrations::{
    callback::{CallbackKind, CallbackRequest, CallbackState, TimeWindow},
    mail::{MailFields, MailKind},
    outbox::OutboxState,
    standin,
    transfer::{ContextValue, TransferContext},
    Config, Integrations, Outcome,
};

#[tokio::test]
async fn the_engine_handle_queues_callbacks_and_mails_and_books() {
    let dir = tempfile::tempdir().unwrap();
    let puzzel = standin::puzzel::serve(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        standin::puzzel::PuzzelStandinConfig::default(),
    )
    .await
    .unwrap();
    let clock = Arc::new(FixedClock(
        Utc.with_ymd_and_hms(2026, 11, 30, 19, 0, 0).unwrap(),
    ));
    let frontdesk = standin::frontdesk::serve(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        standin::frontdesk::FrontdeskStandinConfig::realistic_at(clock.clone()),
    )
    .await
    .unwrap();
    let smtp_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maildir = dir.path().join("mail");
    std::fs::create_dir_all(&maildir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
    let mut sink = std::process::Command::new("python3")
        .arg(script)
        .arg(smtp_port.to_string())
        .arg(&maildir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(sink.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "READY", "aiosmtpd missing: run make setup");

    let toml = format!(
        r#"
database_url = "sqlite:{db}"
[puzzel]
base_url = "{puzzel}"
queue_key = "q1"
[mail]
from = "ivr@aarhus.example"
[mail.smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
[mail.recipients.aarhus]
jobcentre = "jobcenter@aarhus.example"
[frontdesk]
base_url = "{frontdesk}"
[transfer]
form = "x-headers"
"#,
        db = dir.path().join("var/ivr.db").display(),
        puzzel = puzzel.base_url(),
        frontdesk = frontdesk.base_url(),
    );
    let cfg: Config = toml::from_str(&toml).unwrap();
    let ivr = Integrations::start(&cfg, clock.clone()).await.unwrap();

    let window = TimeWindow {
        start: clock.0,
        end: clock.0 + chrono::Duration::hours(16),
    };
    let req = CallbackRequest {
        call_ref: CallId::new("c1"),
        kind: CallbackKind::callback(),
        municipality: "aarhus".into(),
        phone: Pii::new("+4512345678".into()),
        topic: "boligstoette".into(),
        lang: Lang::Da,
        window,
    };
    ivr.request_callback(&req).await.unwrap();
    let fields = MailFields {
        call_ref: CallId::new("c1"),
        municipality: "aarhus".into(),
        lang: Lang::Da,
        called_at: clock.0,
        caller_name: Some(Pii::new("Jens Hansen".into())),
        cpr: None,
        birth_date: NaiveDate::from_ymd_opt(1990, 1, 1),
        phone: None,
        appointment: NaiveDate::from_ymd_opt(2026, 12, 3)
            .unwrap()
            .and_hms_opt(9, 0, 0),
        department: None,
        message: None,
    };
    let queued = ivr
        .queue_mail(MailKind::JobcentreCancellation, &fields)
        .await
        .unwrap();
    assert!(queued.new);
    assert!(
        !ivr.queue_mail(MailKind::JobcentreCancellation, &fields)
            .await
            .unwrap()
            .new,
        "once per call"
    );
    let mut odense = fields.clone();
    odense.municipality = "odense".into();
    let e = ivr
        .queue_mail(MailKind::JobcentreCancellation, &odense)
        .await
        .unwrap_err();
    assert_eq!(
        e.outcome(),
        Outcome::Internal,
        "no recipient configured is an operator problem: {e}"
    );

    let (h, d) = ivr.run_pending().await.unwrap();
    assert_eq!((h.handed_off, d.sent), (1, 1));
    assert_eq!(puzzel.accepted()[0].form["queueKey"], "q1");
    let rec = ivr
        .callbacks()
        .get(&CallId::new("c1"), &CallbackKind::callback())
        .await
        .unwrap();
    assert_eq!(rec.state, CallbackState::HandedOff);
    assert_eq!(
        ivr.outbox().get(&queued.key).await.unwrap().state,
        OutboxState::Sent
    );
    let mails = std::fs::read_dir(&maildir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "json")
        .count();
    assert_eq!(mails, 1);

    let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let slots = ivr
        .frontdesk()
        .free_slots("aarhus", "mitid", day, day)
        .await
        .unwrap();
    assert!(!slots.is_empty());

    let headers = ivr
        .transfer_headers(&TransferContext {
            call_ref: CallId::new("c1"),
            intent: Some("boligstoette".into()),
            lang: Lang::Da,
            department: Some("borgerservice".into()),
            fields: vec![(
                "name".into(),
                ContextValue::Personal(Pii::new("Jens Hansen".into())),
            )],
        })
        .unwrap();
    assert!(headers
        .headers
        .iter()
        .any(|(k, v)| k == "X-IVR-Intent" && v == "boligstoette"));
    assert!(!headers.headers.iter().any(|(_, v)| v.contains("Jens")));

    ivr.shutdown().await;
    let _ = sink.kill();
    let _ = sink.wait();
}

#[tokio::test]
async fn workers_start_and_stop_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg: Config = toml::from_str(&format!(
        "database_url = \"sqlite:{}\"",
        dir.path().join("ivr.db").display()
    ))
    .unwrap();
    let mut ivr = Integrations::start(&cfg, Arc::new(ivr_core::SystemClock))
        .await
        .unwrap();
    ivr.spawn_workers(std::time::Duration::from_secs(3600));
    ivr.shutdown().await; // returns: both workers saw the shutdown signal
}

#[tokio::test]
async fn a_bad_configuration_is_refused_at_start() {
    let cfg: Config = toml::from_str("database_url = \"mysql://x\"").unwrap();
    let e = Integrations::start(&cfg, Arc::new(ivr_core::SystemClock))
        .await
        .unwrap_err();
    assert_eq!(e.outcome(), Outcome::Internal);
    assert!(e.to_string().contains("database_url"), "{e}");
}
