//! The callback queue against real databases (SQLite file; PostgreSQL from
//! scripts/with-test-services.sh) and the hand-off to the Puzzel stand-in.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod common;

use std::{io::BufRead, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use ivr_core::{CallId, Lang, Pii};
use ivr_integrations::{
    backoff::Backoff,
    callback::{
        CallbackKind, CallbackRequest, CallbackState, CallbackStore, Enqueued, ExportFormat,
        ListFilter, PhoneExport, TimeWindow,
    },
    puzzel::{HandoffReport, HandoffWorker, PuzzelClient, PuzzelConfig},
    standin::puzzel::{serve, PuzzelStandinConfig},
    Outcome,
};

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, h, m, 0).unwrap()
}

fn request(call: &str, phone: &str) -> CallbackRequest {
    CallbackRequest {
        call_ref: CallId::new(call),
        kind: CallbackKind::callback(),
        municipality: "aarhus".into(),
        phone: Pii::new(phone.into()),
        topic: "boligstoette".into(),
        lang: Lang::Da,
        window: TimeWindow {
            start: t(8, 0),
            end: t(12, 0),
        },
    }
}

fn fast_puzzel(base_url: String) -> PuzzelConfig {
    PuzzelConfig {
        base_url,
        queue_key: "q-aarhus-callback".into(),
        request_timeout_ms: 5_000,
        tries_per_attempt: 3,
        retry_backoff: Backoff {
            base_ms: 1,
            max_ms: 5,
        },
        max_attempts: 3,
        attempt_backoff: Backoff {
            base_ms: 60_000,
            max_ms: 600_000,
        },
        ..PuzzelConfig::default()
    }
}

async fn listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
}

#[tokio::test]
async fn a_second_request_of_the_same_call_is_not_queued_twice() {
    for b in common::backends("idem").await {
        let store = CallbackStore::new(b.connect().await);
        let first = store
            .enqueue(&request("c1", "+4511111111"), t(7, 0))
            .await
            .unwrap();
        assert!(matches!(first, Enqueued::New(_)), "{}", b.label);
        let rec = first.record();
        assert_eq!(rec.state, CallbackState::Requested);
        assert_eq!(rec.created_at, t(7, 0));
        assert_eq!(rec.request.phone.expose(), "+4511111111");
        assert_eq!(
            rec.request.window,
            TimeWindow {
                start: t(8, 0),
                end: t(12, 0)
            }
        );

        // The flow step is retried: same call, same kind, another number.
        let again = store
            .enqueue(&request("c1", "+4522222222"), t(7, 1))
            .await
            .unwrap();
        match again {
            Enqueued::AlreadyQueued(r) => {
                assert_eq!(r.request.phone.expose(), "+4511111111", "{}", b.label)
            }
            other => panic!("{}: {other:?}", b.label),
        }
        // Another kind for the same call is a separate request.
        let mut other = request("c1", "+4511111111");
        other.kind = CallbackKind::new("out_of_hours").unwrap();
        assert!(matches!(
            store.enqueue(&other, t(7, 2)).await.unwrap(),
            Enqueued::New(_)
        ));
        assert_eq!(
            store.list(&ListFilter::default()).await.unwrap().len(),
            2,
            "{}",
            b.label
        );
    }
}

#[tokio::test]
async fn invalid_requests_are_rejected_before_storage() {
    for b in common::backends("invalid").await {
        let store = CallbackStore::new(b.connect().await);
        let mut r = request("c1", "  ");
        let e = store.enqueue(&r, t(7, 0)).await.unwrap_err();
        assert_eq!(e.outcome(), Outcome::Rejected, "{}", b.label);
        r.phone = Pii::new("+4511111111".into());
        r.window = TimeWindow {
            start: t(12, 0),
            end: t(8, 0),
        };
        assert_eq!(
            store.enqueue(&r, t(7, 0)).await.unwrap_err().outcome(),
            Outcome::Rejected
        );
        assert!(store.list(&ListFilter::default()).await.unwrap().is_empty());
        assert!(CallbackKind::new("Robert'); DROP TABLE").is_err());
    }
}

#[tokio::test]
async fn requests_survive_closing_and_reopening_the_database() {
    for b in common::backends("reopen").await {
        let db = b.connect().await;
        CallbackStore::new(db.clone())
            .enqueue(&request("c7", "+4533333333"), t(7, 0))
            .await
            .unwrap();
        db.close().await;
        let store = CallbackStore::new(b.connect().await);
        let rec = store
            .get(&CallId::new("c7"), &CallbackKind::callback())
            .await
            .unwrap();
        assert_eq!(rec.request.phone.expose(), "+4533333333", "{}", b.label);
        assert_eq!(rec.state, CallbackState::Requested);
    }
}

#[tokio::test]
async fn list_filters_by_state_and_municipality_oldest_first() {
    for b in common::backends("list").await {
        let store = CallbackStore::new(b.connect().await);
        store
            .enqueue(&request("c2", "+4500000002"), t(7, 2))
            .await
            .unwrap();
        store
            .enqueue(&request("c1", "+4500000001"), t(7, 1))
            .await
            .unwrap();
        let mut odense = request("c3", "+4500000003");
        odense.municipality = "odense".into();
        store.enqueue(&odense, t(7, 3)).await.unwrap();
        store
            .mark_done(&CallId::new("c2"), &CallbackKind::callback(), t(9, 0))
            .await
            .unwrap();

        let all = store.list(&ListFilter::default()).await.unwrap();
        let refs: Vec<&str> = all.iter().map(|r| r.request.call_ref.as_str()).collect();
        assert_eq!(refs, ["c1", "c2", "c3"], "{}", b.label);
        let open_aarhus = store
            .list(&ListFilter {
                state: Some(CallbackState::Requested),
                municipality: Some("aarhus".into()),
                limit: None,
            })
            .await
            .unwrap();
        assert_eq!(open_aarhus.len(), 1);
        assert_eq!(open_aarhus[0].request.call_ref.as_str(), "c1");
        let done = store
            .get(&CallId::new("c2"), &CallbackKind::callback())
            .await
            .unwrap();
        assert_eq!(
            (done.state, done.done_at),
            (CallbackState::Done, Some(t(9, 0)))
        );
    }
}

#[tokio::test]
async fn exports_hold_phone_numbers_only_when_asked() {
    for b in common::backends("export").await {
        let store = CallbackStore::new(b.connect().await);
        let mut r = request("c1", "+4512345678");
        r.topic = "pas, \"hurtigt\"".into();
        store.enqueue(&r, t(7, 0)).await.unwrap();
        let f = ListFilter::default();

        let mut json = Vec::new();
        assert_eq!(
            store
                .export(&f, ExportFormat::Json, PhoneExport::Redacted, &mut json)
                .await
                .unwrap(),
            1
        );
        let json = String::from_utf8(json).unwrap();
        assert!(!json.contains("12345678"), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v[0]["call_ref"], "c1");
        assert_eq!(v[0]["state"], "requested");
        assert_eq!(v[0]["window_start"], "2026-11-23T08:00:00Z");

        let mut csv = Vec::new();
        store
            .export(&f, ExportFormat::Csv, PhoneExport::Include, &mut csv)
            .await
            .unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert!(
            lines[0].starts_with("call_ref,kind,municipality,phone,topic"),
            "{csv}"
        );
        // + is guarded against spreadsheet formulas; the quote in the topic is escaped.
        assert!(
            lines[1].starts_with("c1,callback,aarhus,'+4512345678,\"pas, \"\"hurtigt\"\"\",da,"),
            "{csv}"
        );
    }
}

#[tokio::test]
async fn handoff_sends_the_request_to_puzzel_and_marks_it_handed_off() {
    for b in common::backends("handoff").await {
        let store = CallbackStore::new(b.connect().await);
        let puzzel = serve(listener().await, PuzzelStandinConfig::default())
            .await
            .unwrap();
        store
            .enqueue(&request("c1", "+4512345678"), t(7, 0))
            .await
            .unwrap();
        let worker = HandoffWorker::new(
            store.clone(),
            PuzzelClient::new(fast_puzzel(puzzel.base_url())).unwrap(),
        );

        let report = worker.run_once(t(7, 1)).await.unwrap();
        assert_eq!(
            report,
            HandoffReport {
                handed_off: 1,
                retrying: 0,
                failed: 0,
                deferred: 0,
            },
            "{}",
            b.label
        );
        let got = puzzel.accepted();
        assert_eq!(got.len(), 1);
        let form = &got[0].form;
        assert_eq!(
            form["callbackNumber"], "004512345678",
            "international, 00 prefix"
        );
        assert_eq!(form["queueKey"], "q-aarhus-callback");
        assert_eq!(form["countryCode"], "45");
        assert_eq!(form["ciqType"], "CallAgentFirst");
        assert_eq!(
            form["scheduledDateTime"], "2026-11-23T09:00:00",
            "08:00 UTC is 09:00 in Copenhagen, sent as local time without a zone"
        );
        assert!(form["requestDescription"].contains("ref c1:callback"));
        assert_eq!(form["requestCategory"], "boligstoette");
        let rec = store
            .get(&CallId::new("c1"), &CallbackKind::callback())
            .await
            .unwrap();
        assert_eq!(rec.state, CallbackState::HandedOff);
        assert_eq!(rec.external_ref.as_deref(), Some("cow:c1:callback"));
        assert_eq!((rec.attempts, rec.handed_off_at), (1, Some(t(7, 1))));
        assert_eq!((rec.sent_at, rec.uncertain_sends), (None, 0));
        // Nothing left to do: a second pass sends nothing.
        assert_eq!(
            worker.run_once(t(7, 2)).await.unwrap(),
            HandoffReport::default()
        );
        assert_eq!(puzzel.posts(), 1);
    }
}

#[tokio::test]
async fn puzzel_errors_are_retried_with_backoff_then_given_up_visibly() {
    for b in common::backends("retry").await {
        let store = CallbackStore::new(b.connect().await);
        let puzzel = serve(listener().await, PuzzelStandinConfig::default())
            .await
            .unwrap();
        store
            .enqueue(&request("c1", "+4512345678"), t(7, 0))
            .await
            .unwrap();
        let worker = HandoffWorker::new(
            store.clone(),
            PuzzelClient::new(fast_puzzel(puzzel.base_url())).unwrap(),
        );

        // Two 503s are absorbed by the client's own retries within one attempt.
        puzzel.fail_next(2, 503);
        assert_eq!(
            worker.run_once(t(7, 1)).await.unwrap().handed_off,
            1,
            "{}",
            b.label
        );
        assert_eq!(puzzel.posts(), 3);

        // A request meeting a dead API: 3 tries per attempt, 3 attempts, then failed.
        store
            .enqueue(&request("c2", "+4587654321"), t(7, 5))
            .await
            .unwrap();
        puzzel.fail_next(100, 503);
        assert_eq!(worker.run_once(t(7, 6)).await.unwrap().retrying, 1);
        let rec = store
            .get(&CallId::new("c2"), &CallbackKind::callback())
            .await
            .unwrap();
        assert_eq!((rec.state, rec.attempts), (CallbackState::Requested, 1));
        assert_eq!(
            rec.next_attempt_at,
            t(7, 7),
            "first attempt backoff is 60 s"
        );
        assert!(rec.last_error.as_deref().unwrap().contains("503"));
        // Not due yet: nothing is sent before the backoff expires.
        let posts = puzzel.posts();
        assert_eq!(
            worker.run_once(t(7, 6)).await.unwrap(),
            HandoffReport::default()
        );
        assert_eq!(puzzel.posts(), posts);
        assert_eq!(worker.run_once(t(7, 7)).await.unwrap().retrying, 1);
        assert_eq!(worker.run_once(t(8, 0)).await.unwrap().failed, 1);
        let rec = store
            .get(&CallId::new("c2"), &CallbackKind::callback())
            .await
            .unwrap();
        assert_eq!(
            (rec.state, rec.attempts, rec.failed_at),
            (CallbackState::Failed, 3, Some(t(8, 0)))
        );
        let failed = store
            .list(&ListFilter {
                state: Some(CallbackState::Failed),
                ..ListFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(failed.len(), 1, "failures are visible in the list");

        // The operator retries once the API is back.
        puzzel.fail_next(0, 503);
        store
            .retry_failed(&CallId::new("c2"), &CallbackKind::callback(), t(9, 0))
            .await
            .unwrap();
        assert_eq!(worker.run_once(t(9, 0)).await.unwrap().handed_off, 1);
        assert_eq!(puzzel.accepted().len(), 2);
    }
}

#[tokio::test]
async fn a_rejected_request_fails_at_once_and_unreachable_puzzel_is_unavailable() {
    for b in common::backends("reject").await {
        let store = CallbackStore::new(b.connect().await);
        let puzzel = serve(listener().await, PuzzelStandinConfig::default())
            .await
            .unwrap();
        store
            .enqueue(&request("c1", "+4512345678"), t(7, 0))
            .await
            .unwrap();
        let client = PuzzelClient::new(fast_puzzel(puzzel.base_url())).unwrap();
        puzzel.fail_next(1, 400);
        let rec = store
            .get(&CallId::new("c1"), &CallbackKind::callback())
            .await
            .unwrap();
        let e = client.submit(&rec, t(7, 1)).await.unwrap_err();
        assert_eq!(e.outcome(), Outcome::Rejected, "{}: {e}", b.label);
        puzzel.fail_next(1, 422);
        let worker = HandoffWorker::new(store.clone(), client);
        assert_eq!(worker.run_once(t(7, 1)).await.unwrap().failed, 1);
        assert_eq!(puzzel.posts(), 2, "a 4xx is not retried");

        // Nothing listens: connection refused maps to Unavailable.
        let dead = listener().await;
        let url = format!("http://{}", dead.local_addr().unwrap());
        drop(dead);
        let e = PuzzelClient::new(fast_puzzel(url))
            .unwrap()
            .submit(&rec, t(7, 1))
            .await
            .unwrap_err();
        assert_eq!(e.outcome(), Outcome::Unavailable, "{e}");
    }
}

#[tokio::test]
async fn a_send_whose_outcome_was_lost_is_sent_again_and_marked_uncertain() {
    for b in common::backends("crash_dup").await {
        let store = CallbackStore::new(b.connect().await);
        let puzzel = serve(listener().await, PuzzelStandinConfig::default())
            .await
            .unwrap();
        store
            .enqueue(&request("c1", "+4512345678"), t(7, 0))
            .await
            .unwrap();
        let client = PuzzelClient::new(fast_puzzel(puzzel.base_url())).unwrap();
        // A worker claims the request, commits that a send starts, Puzzel
        // accepts it, and the engine dies before committing handed_off.
        let lease = Duration::from_secs(60);
        let rec = store.claim_due(t(7, 1), lease, 10).await.unwrap().remove(0);
        store
            .mark_sending(&rec.request.call_ref, &rec.request.kind, t(7, 1))
            .await
            .unwrap();
        client.submit(&rec, t(7, 1)).await.unwrap();
        // Leased: no other worker touches it meanwhile.
        let worker = HandoffWorker::new(store.clone(), client);
        assert_eq!(
            worker.run_once(t(7, 1)).await.unwrap(),
            HandoffReport::default()
        );
        // After the lease the next pass sends it again rather than lose it.
        let report = worker.run_once(t(7, 3)).await.unwrap();
        assert_eq!(report.handed_off, 1, "{}", b.label);
        assert_eq!(
            puzzel.accepted().len(),
            2,
            "Puzzel has no idempotency key: the lost outcome costs one duplicate"
        );
        let rec = store
            .get(&CallId::new("c1"), &CallbackKind::callback())
            .await
            .unwrap();
        assert_eq!(rec.state, CallbackState::HandedOff);
        assert_eq!(
            (rec.uncertain_sends, rec.sent_at),
            (1, None),
            "the possible duplicate is visible to operators"
        );
    }
}

#[tokio::test]
async fn a_full_queue_is_retried_later_and_a_denied_number_fails_at_once() {
    for b in common::backends("full_deny").await {
        let store = CallbackStore::new(b.connect().await);
        let puzzel = serve(
            listener().await,
            PuzzelStandinConfig {
                deny_numbers: vec!["004599999999".into()],
                ..PuzzelStandinConfig::default()
            },
        )
        .await
        .unwrap();
        let worker = HandoffWorker::new(
            store.clone(),
            PuzzelClient::new(fast_puzzel(puzzel.base_url())).unwrap(),
        );
        store
            .enqueue(&request("c1", "+4512345678"), t(7, 0))
            .await
            .unwrap();
        puzzel.set_full(true);
        assert_eq!(
            worker.run_once(t(7, 1)).await.unwrap().retrying,
            1,
            "{}",
            b.label
        );
        let rec = store
            .get(&CallId::new("c1"), &CallbackKind::callback())
            .await
            .unwrap();
        assert_eq!(rec.state, CallbackState::Requested);
        assert!(rec.last_error.as_deref().unwrap().contains("full"));
        puzzel.set_full(false);
        assert_eq!(worker.run_once(t(7, 2)).await.unwrap().handed_off, 1);

        store
            .enqueue(&request("c2", "99999999"), t(7, 0))
            .await
            .unwrap();
        assert_eq!(worker.run_once(t(7, 3)).await.unwrap().failed, 1);
        let rec = store
            .get(&CallId::new("c2"), &CallbackKind::callback())
            .await
            .unwrap();
        assert_eq!(rec.state, CallbackState::Failed);
        assert!(rec.last_error.as_deref().unwrap().contains("redirectError"));
        assert_eq!(puzzel.accepted().len(), 1);
    }
}

#[tokio::test]
async fn a_window_beyond_puzzels_72_hours_waits_in_our_queue_without_an_attempt() {
    let b = common::backends("horizon").await.remove(0);
    let store = CallbackStore::new(b.connect().await);
    let puzzel = serve(listener().await, PuzzelStandinConfig::default())
        .await
        .unwrap();
    let mut req = request("c1", "+4512345678");
    req.window = TimeWindow {
        start: t(8, 0) + chrono::Duration::days(5),
        end: t(12, 0) + chrono::Duration::days(5),
    };
    store.enqueue(&req, t(7, 0)).await.unwrap();
    let worker = HandoffWorker::new(
        store.clone(),
        PuzzelClient::new(fast_puzzel(puzzel.base_url())).unwrap(),
    );
    assert_eq!(worker.run_once(t(7, 1)).await.unwrap().deferred, 1);
    assert_eq!(puzzel.posts(), 0);
    let rec = store
        .get(&CallId::new("c1"), &CallbackKind::callback())
        .await
        .unwrap();
    assert_eq!(rec.attempts, 0);
    let due = req.window.start - chrono::Duration::hours(71);
    assert_eq!(rec.next_attempt_at, due);
    assert_eq!(worker.run_once(due).await.unwrap().handed_off, 1);
}

#[tokio::test]
async fn two_workers_never_claim_the_same_request() {
    for b in common::backends("claim").await {
        let store = CallbackStore::new(b.connect().await);
        for i in 0..6 {
            store
                .enqueue(&request(&format!("c{i}"), "+4512345678"), t(7, 0))
                .await
                .unwrap();
        }
        let other = CallbackStore::new(b.connect().await); // a second engine instance
        let lease = Duration::from_secs(60);
        let a = store.claim_due(t(7, 1), lease, 4).await.unwrap();
        let b2 = other.claim_due(t(7, 1), lease, 10).await.unwrap();
        assert_eq!((a.len(), b2.len()), (4, 2), "{}", b.label);
        // After the lease expires (a worker died) the requests are due again.
        assert_eq!(other.claim_due(t(7, 3), lease, 10).await.unwrap().len(), 6);
    }
}

/// Child half of the kill -9 test: commits a request, says so, and waits to
/// be killed. Does nothing unless started by the parent.
#[tokio::test]
#[ignore = "started by a_committed_request_survives_kill_9"]
async fn kill9_child() {
    let Ok(url) = std::env::var("IVR_KILL9_DB") else {
        return;
    };
    let store = CallbackStore::open(&url).await.unwrap();
    store
        .enqueue(&request("c-kill9", "+4512345678"), t(7, 0))
        .await
        .unwrap();
    println!("COMMITTED");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::park();
    }
}

#[tokio::test]
async fn a_committed_request_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("var/ivr.db").display());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill9_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("IVR_KILL9_DB", &url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut committed = false;
    for line in std::io::BufReader::new(out).lines() {
        if line.unwrap().contains("COMMITTED") {
            committed = true;
            break;
        }
    }
    assert!(committed, "child never committed");
    child.kill().unwrap(); // SIGKILL: no destructors, no WAL checkpoint
    let status = child.wait().unwrap();
    assert!(!status.success());
    let store = CallbackStore::open(&url).await.unwrap();
    let rec = store
        .get(&CallId::new("c-kill9"), &CallbackKind::callback())
        .await
        .unwrap();
    assert_eq!(rec.state, CallbackState::Requested);
    assert_eq!(rec.request.phone.expose(), "+4512345678");
}

#[tokio::test]
async fn two_engine_instances_handing_off_at_once_send_each_request_once() {
    for b in common::backends("concurrent").await {
        let puzzel = serve(listener().await, PuzzelStandinConfig::default())
            .await
            .unwrap();
        let one = CallbackStore::new(b.connect().await);
        let two = CallbackStore::new(b.connect().await);
        for i in 0..20 {
            one.enqueue(&request(&format!("c{i:02}"), "+4512345678"), t(7, 0))
                .await
                .unwrap();
        }
        let w1 = HandoffWorker::new(
            one.clone(),
            PuzzelClient::new(fast_puzzel(puzzel.base_url())).unwrap(),
        );
        let w2 = HandoffWorker::new(
            two.clone(),
            PuzzelClient::new(fast_puzzel(puzzel.base_url())).unwrap(),
        );
        let (r1, r2) = tokio::join!(w1.run_once(t(7, 1)), w2.run_once(t(7, 1)));
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        assert_eq!(
            r1.handed_off + r2.handed_off,
            20,
            "{}: {r1:?} {r2:?}",
            b.label
        );
        assert_eq!(puzzel.posts(), 20, "{}: no request was sent twice", b.label);
        let open = one
            .list(&ListFilter {
                state: Some(CallbackState::Requested),
                ..ListFilter::default()
            })
            .await
            .unwrap();
        assert!(open.is_empty());
    }
}

#[tokio::test]
async fn the_operator_tool_exports_and_marks_requests_done() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("var/ivr.db").display());
    let store = CallbackStore::open(&url).await.unwrap();
    store
        .enqueue(&request("c1", "+4512345678"), t(7, 0))
        .await
        .unwrap();
    let tool = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ivr-callbacks"))
            .arg("--db")
            .arg(&url)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let redacted = tool(&["export", "--format", "csv"]);
    assert!(
        redacted.contains("c1,callback,aarhus,<redacted>,"),
        "{redacted}"
    );
    let with_phones = tool(&[
        "export",
        "--format",
        "json",
        "--include-phones",
        "--state",
        "requested",
    ]);
    assert!(
        with_phones.contains("\"phone\": \"+4512345678\""),
        "{with_phones}"
    );
    tool(&["done", "c1"]);
    let rec = store
        .get(&CallId::new("c1"), &CallbackKind::callback())
        .await
        .unwrap();
    assert_eq!(rec.state, CallbackState::Done);
}

#[tokio::test]
async fn an_in_memory_database_works_for_simulation() {
    let store = CallbackStore::open("sqlite::memory:").await.unwrap();
    store
        .enqueue(&request("c1", "+4512345678"), t(7, 0))
        .await
        .unwrap();
    assert_eq!(store.list(&ListFilter::default()).await.unwrap().len(), 1);
    let e = CallbackStore::open("mysql://localhost/ivr")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("mysql"), "{e}");
}

#[tokio::test]
async fn served_requests_are_purged_after_the_retention_period_and_open_ones_kept() {
    for b in common::backends("purge").await {
        let store = CallbackStore::new(b.connect().await);
        store
            .enqueue(&request("old-done", "+4511111111"), t(7, 0))
            .await
            .unwrap();
        store
            .enqueue(&request("new-done", "+4522222222"), t(7, 0))
            .await
            .unwrap();
        store
            .enqueue(&request("old-open", "+4533333333"), t(7, 0))
            .await
            .unwrap();
        store
            .mark_done(&CallId::new("old-done"), &CallbackKind::callback(), t(8, 0))
            .await
            .unwrap();
        store
            .mark_done(
                &CallId::new("new-done"),
                &CallbackKind::callback(),
                t(12, 0),
            )
            .await
            .unwrap();
        assert_eq!(store.purge_done(t(10, 0)).await.unwrap(), 1, "{}", b.label);
        let left: Vec<String> = store
            .list(&ListFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.request.call_ref.as_str().to_string())
            .collect();
        assert_eq!(left, ["new-done", "old-open"]);
    }
}
