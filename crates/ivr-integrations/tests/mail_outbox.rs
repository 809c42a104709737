//! The mail outbox against a real SMTP server on loopback (aiosmtpd, from
//! scripts/setup/40-integration-test-tools.sh), on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod common;

use std::{
    collections::HashMap,
    io::BufRead,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use ivr_core::{CallId, Lang, Pii};
use ivr_integrations::{
    backoff::Backoff,
    mail::{CprMask, MailComposer, MailFields, MailKind, Recipients, TemplateSet},
    outbox::{
        DeliveryPolicy, DeliveryReport, MailOutbox, OutboxState, OutboxWorker, SmtpConfig,
        SmtpSender, SmtpTls,
    },
    Outcome,
};

/// aiosmtpd running as a child process; killed on drop.
struct SmtpSink {
    child: Child,
    dir: PathBuf,
}

impl SmtpSink {
    fn start(port: u16, dir: &Path, auth: Option<(&str, &str)>) -> SmtpSink {
        Self::start_with(port, dir, auth, &[])
    }

    fn start_with(
        port: u16,
        dir: &Path,
        auth: Option<(&str, &str)>,
        extra: &[&std::ffi::OsStr],
    ) -> SmtpSink {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg(port.to_string()).arg(dir);
        if let Some((u, p)) = auth {
            cmd.arg(u).arg(p);
        }
        cmd.args(extra);
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed (make setup)");
        let out = child.stdout.take().unwrap();
        let ready = std::io::BufReader::new(out)
            .lines()
            .next()
            .and_then(Result::ok);
        assert_eq!(
            ready.as_deref(),
            Some("READY"),
            "aiosmtpd did not start: run `make setup` (scripts/setup/40-integration-test-tools.sh installs it)"
        );
        SmtpSink {
            child,
            dir: dir.to_path_buf(),
        }
    }

    fn received(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, h, m, 0).unwrap()
}

fn smtp(port: u16, auth: Option<(&str, &str)>) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: auth.map(|a| a.0.to_string()),
        password: auth.map(|a| a.1.to_string()),
        timeout_ms: 5_000,
        ca_file: None,
    }
}

fn composer() -> MailComposer {
    let mut r = HashMap::new();
    r.insert(
        "aarhus".to_string(),
        Recipients {
            jobcentre: Some("jobcenter@aarhus.example".into()),
            departments: [("*".to_string(), "borgerservice@aarhus.example".to_string())].into(),
        },
    );
    MailComposer::new(
        TemplateSet::builtin(),
        CprMask::BirthDate,
        "Telefonrobot <ivr@aarhus.example>",
        r,
    )
    .unwrap()
}

fn cancellation(call: &str) -> MailFields {
    MailFields {
        call_ref: CallId::new(call),
        municipality: "aarhus".into(),
        lang: Lang::Da,
        called_at: t(9, 15),
        caller_name: Some(Pii::new("Søren Ærø".into())),
        cpr: Some(Pii::new("0101901234".into())),
        birth_date: None,
        phone: None,
        appointment: NaiveDate::from_ymd_opt(2026, 12, 3)
            .unwrap()
            .and_hms_opt(10, 30, 0),
        department: None,
        message: None,
    }
}

fn policy() -> DeliveryPolicy {
    DeliveryPolicy {
        max_attempts: 5,
        backoff: Backoff {
            base_ms: 60_000,
            max_ms: 600_000,
        },
        poll_interval_ms: 1_000,
    }
}

#[tokio::test]
async fn a_cancellation_reaches_the_job_centre_with_its_fields() {
    for b in common::backends("mail_fields").await {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let sink = SmtpSink::start(port, dir.path(), None);
        let outbox = MailOutbox::new(b.connect().await);
        let mail = composer()
            .compose(MailKind::JobcentreCancellation, &cancellation("c1"))
            .unwrap();
        assert!(outbox.enqueue(&mail, t(9, 16)).await.unwrap());
        let worker = OutboxWorker::new(
            outbox.clone(),
            SmtpSender::new(&smtp(port, None)).unwrap(),
            policy(),
            Duration::from_secs(5),
        );
        assert_eq!(
            worker.run_once(t(9, 16)).await.unwrap(),
            DeliveryReport {
                sent: 1,
                retrying: 0,
                failed: 0
            }
        );

        let got = sink.received();
        assert_eq!(got.len(), 1, "{}", b.label);
        let m = &got[0];
        assert_eq!(m["rcpt_tos"][0], "jobcenter@aarhus.example");
        assert_eq!(m["mail_from"], "ivr@aarhus.example");
        assert_eq!(
            m["subject"],
            "Aflysning af aftale torsdag den 3. december 2026 kl. 10:30 (c1)"
        );
        assert_eq!(
            m["message_id"],
            "<c1.jobcentre_cancellation@aarhus.example>"
        );
        let body = m["body"].as_str().unwrap();
        assert!(body.contains("Navn: Søren Ærø"), "{body}");
        assert!(body.contains("CPR-nummer: 010190-XXXX"), "{body}");
        assert!(!body.contains("1234"), "the full CPR never leaves: {body}");
        assert!(
            body.contains("Opkaldet kom: mandag den 23. november 2026 kl. 10:15"),
            "{body}"
        );
        assert!(body.contains("Opkaldsreference: c1"), "{body}");
        let rec = outbox.get(&mail.key).await.unwrap();
        assert_eq!(
            (rec.state, rec.attempts, rec.sent_at),
            (OutboxState::Sent, 1, Some(t(9, 16)))
        );
        // Sent once: later passes and a repeated enqueue send nothing more.
        assert!(!outbox.enqueue(&mail, t(9, 17)).await.unwrap());
        assert_eq!(
            worker.run_once(t(10, 0)).await.unwrap(),
            DeliveryReport::default()
        );
        assert_eq!(sink.received().len(), 1);
    }
}

#[tokio::test]
async fn smtp_down_then_up_sends_the_mail_later_exactly_once() {
    for b in common::backends("mail_down").await {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port(); // nothing listens yet
        let outbox = MailOutbox::new(b.connect().await);
        let mut f = cancellation("c2");
        f.lang = Lang::En;
        let mail = composer()
            .compose(MailKind::JobcentreCancellation, &f)
            .unwrap();
        outbox.enqueue(&mail, t(9, 0)).await.unwrap();
        let worker = OutboxWorker::new(
            outbox.clone(),
            SmtpSender::new(&smtp(port, None)).unwrap(),
            policy(),
            Duration::from_secs(5),
        );

        assert_eq!(
            worker.run_once(t(9, 0)).await.unwrap().retrying,
            1,
            "{}",
            b.label
        );
        let rec = outbox.get(&mail.key).await.unwrap();
        assert_eq!((rec.state, rec.attempts), (OutboxState::Pending, 1));
        assert_eq!(rec.next_attempt_at, t(9, 1));
        assert!(rec.last_error.is_some(), "the failure is visible");
        assert_eq!(
            outbox.list(Some(OutboxState::Pending)).await.unwrap().len(),
            1
        );

        let sink = SmtpSink::start(port, dir.path(), None);
        // Not due yet: nothing is sent before the backoff expires.
        assert_eq!(
            worker.run_once(t(9, 0)).await.unwrap(),
            DeliveryReport::default()
        );
        assert_eq!(worker.run_once(t(9, 1)).await.unwrap().sent, 1);
        assert_eq!(
            worker.run_once(t(9, 30)).await.unwrap(),
            DeliveryReport::default()
        );
        let got = sink.received();
        assert_eq!(got.len(), 1, "sent exactly once");
        assert!(got[0]["body"]
            .as_str()
            .unwrap()
            .contains("Appointment: Thursday 3 December 2026 at 10:30"));
        let rec = outbox.get(&mail.key).await.unwrap();
        assert_eq!(
            (rec.state, rec.attempts, rec.last_error),
            (OutboxState::Sent, 2, None)
        );
    }
}

#[tokio::test]
async fn a_mail_waits_in_the_outbox_across_a_restart_of_the_engine() {
    for b in common::backends("mail_restart").await {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let db = b.connect().await;
        let mail = composer()
            .compose(MailKind::JobcentreCancellation, &cancellation("c3"))
            .unwrap();
        MailOutbox::new(db.clone())
            .enqueue(&mail, t(9, 0))
            .await
            .unwrap();
        db.close().await; // the engine stops before sending
        let sink = SmtpSink::start(port, dir.path(), None);
        let outbox = MailOutbox::new(b.connect().await);
        let worker = OutboxWorker::new(
            outbox,
            SmtpSender::new(&smtp(port, None)).unwrap(),
            policy(),
            Duration::from_secs(5),
        );
        assert_eq!(
            worker.run_once(t(9, 5)).await.unwrap().sent,
            1,
            "{}",
            b.label
        );
        assert_eq!(sink.received().len(), 1);
    }
}

#[tokio::test]
async fn smtp_authentication_is_used_and_wrong_credentials_fail_visibly() {
    let b = common::backends("mail_auth").await.remove(0);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = SmtpSink::start(port, dir.path(), Some(("ivr", "s3cret")));
    let outbox = MailOutbox::new(b.connect().await);
    let f = MailFields {
        department: Some("byggeri".into()),
        phone: Some(Pii::new("+4512345678".into())),
        message: Some(Pii::new("Ring venligst om min byggesag".into())),
        ..cancellation("c4")
    };
    let mail = composer().compose(MailKind::OutOfHoursMessage, &f).unwrap();
    outbox.enqueue(&mail, t(20, 0)).await.unwrap();

    let wrong = OutboxWorker::new(
        outbox.clone(),
        SmtpSender::new(&smtp(port, Some(("ivr", "wrong")))).unwrap(),
        policy(),
        Duration::from_secs(5),
    );
    let r = wrong.run_once(t(20, 0)).await.unwrap();
    assert_eq!(r.sent, 0);
    assert!(sink.received().is_empty());
    let rec = outbox.get(&mail.key).await.unwrap();
    // 535 authentication failed is a permanent reply: failed, with the reason.
    assert_eq!(rec.state, OutboxState::Failed, "{:?}", rec.last_error);
    assert!(
        rec.last_error.as_deref().unwrap().contains("535"),
        "{:?}",
        rec.last_error
    );

    outbox.retry_failed(&mail.key, t(20, 5)).await.unwrap();
    let right = OutboxWorker::new(
        outbox.clone(),
        SmtpSender::new(&smtp(port, Some(("ivr", "s3cret")))).unwrap(),
        policy(),
        Duration::from_secs(5),
    );
    assert_eq!(right.run_once(t(20, 5)).await.unwrap().sent, 1);
    let got = sink.received();
    assert_eq!(got[0]["authenticated_as"], "ivr");
    assert_eq!(got[0]["rcpt_tos"][0], "borgerservice@aarhus.example");
    assert_eq!(
        got[0]["subject"],
        "Besked uden for åbningstid til byggeri (c4)"
    );
    let body = got[0]["body"].as_str().unwrap();
    assert!(
        body.contains("Telefon: +4512345678")
            && body.contains("Besked: Ring venligst om min byggesag"),
        "{body}"
    );
}

#[tokio::test]
async fn an_invalid_recipient_is_rejected_before_it_is_stored() {
    let b = common::backends("mail_invalid").await.remove(0);
    let outbox = MailOutbox::new(b.connect().await);
    let mut mail = composer()
        .compose(MailKind::JobcentreCancellation, &cancellation("c5"))
        .unwrap();
    mail.to = "not an address".into();
    let e = outbox.enqueue(&mail, t(9, 0)).await.unwrap_err();
    assert_eq!(e.outcome(), Outcome::Rejected);
    assert!(outbox.list(None).await.unwrap().is_empty());
}

/// A throwaway CA and a server certificate for 127.0.0.1 (openssl CLI).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let st = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .status();
        assert!(
            st.expect("openssl must be installed (apt package openssl)")
                .success(),
            "openssl {args:?}"
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=ivr test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[tokio::test]
async fn starttls_and_implicit_tls_are_verified_against_the_configured_ca() {
    let b = common::backends("mail_tls").await.remove(0);
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(certs.path());
    let outbox = MailOutbox::new(b.connect().await);
    for (i, (flag, mode)) in [("--starttls", SmtpTls::Starttls), ("--tls", SmtpTls::Tls)]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let sink = SmtpSink::start_with(
            port,
            dir.path(),
            Some(("ivr", "s3cret")),
            &[flag.as_ref(), cert.as_os_str(), key.as_os_str()],
        );
        let mail = composer()
            .compose(
                MailKind::JobcentreCancellation,
                &cancellation(&format!("tls{i}")),
            )
            .unwrap();
        outbox.enqueue(&mail, t(9, 0)).await.unwrap();

        // Without the CA the certificate is not trusted: nothing is sent.
        let mut cfg = SmtpConfig {
            tls: mode,
            ..smtp(port, Some(("ivr", "s3cret")))
        };
        let untrusted = OutboxWorker::new(
            outbox.clone(),
            SmtpSender::new(&cfg).unwrap(),
            policy(),
            Duration::from_secs(5),
        );
        assert_eq!(
            untrusted.run_once(t(9, 0)).await.unwrap().retrying,
            1,
            "{flag}"
        );
        assert!(
            sink.received().is_empty(),
            "{flag}: no mail over an unverified connection"
        );

        cfg.ca_file = Some(ca.clone());
        let trusted = OutboxWorker::new(
            outbox.clone(),
            SmtpSender::new(&cfg).unwrap(),
            policy(),
            Duration::from_secs(5),
        );
        assert_eq!(trusted.run_once(t(9, 1)).await.unwrap().sent, 1, "{flag}");
        let got = sink.received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["tls"], true, "{flag}");
        assert_eq!(got[0]["authenticated_as"], "ivr", "{flag}");
    }
}

#[tokio::test]
async fn two_engine_instances_delivering_at_once_send_each_mail_once() {
    for b in common::backends("mail_concurrent").await {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let sink = SmtpSink::start(port, dir.path(), None);
        let one = MailOutbox::new(b.connect().await);
        let two = MailOutbox::new(b.connect().await);
        for i in 0..8 {
            let mail = composer()
                .compose(
                    MailKind::JobcentreCancellation,
                    &cancellation(&format!("m{i}")),
                )
                .unwrap();
            one.enqueue(&mail, t(9, 0)).await.unwrap();
        }
        let sender = SmtpSender::new(&smtp(port, None)).unwrap();
        let w1 = OutboxWorker::new(one, sender.clone(), policy(), Duration::from_secs(5));
        let w2 = OutboxWorker::new(two, sender, policy(), Duration::from_secs(5));
        let (r1, r2) = tokio::join!(w1.run_once(t(9, 1)), w2.run_once(t(9, 1)));
        assert_eq!(r1.unwrap().sent + r2.unwrap().sent, 8, "{}", b.label);
        assert_eq!(sink.received().len(), 8, "{}: no mail sent twice", b.label);
    }
}
