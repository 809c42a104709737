//! The Frontdesk REST client against the stand-in server on loopback, and
//! against sockets that never answer.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use ivr_core::{CallId, FixedClock, Pii};
use ivr_integrations::{
    frontdesk::{
        BookingRequest, CancelBy, Frontdesk, FrontdeskClient, FrontdeskConfig, FrontdeskError,
    },
    standin::frontdesk::{serve, FrontdeskStandin, FrontdeskStandinConfig},
    Outcome,
};

/// Monday 30 November 2026, 09:00 Copenhagen time.
fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock(
        Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap(),
    ))
}

async fn standin() -> FrontdeskStandin {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(l, FrontdeskStandinConfig::realistic_at(clock()))
        .await
        .unwrap()
}

fn client(base_url: String, timeout_ms: u64) -> FrontdeskClient {
    FrontdeskClient::new(&FrontdeskConfig {
        base_url,
        api_key: None,
        connect_timeout_ms: timeout_ms,
        request_timeout_ms: timeout_ms,
    })
    .unwrap()
}

fn d(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, day).unwrap()
}

fn booking(slot: &str, phone: &str, call: &str) -> BookingRequest {
    BookingRequest {
        municipality: "aarhus".into(),
        queue_id: "pas".into(),
        slot_id: slot.into(),
        name: Pii::new("Karen Jensen".into()),
        phone: Pii::new(phone.into()),
        cpr: Some(Pii::new("0101901234".into())),
        call_ref: CallId::new(call),
    }
}

#[tokio::test]
async fn lists_the_queues_of_each_municipality() {
    let s = standin().await;
    let fd: Box<dyn Frontdesk> = Box::new(client(s.base_url(), 4_000));
    let aarhus = fd.list_queues("aarhus").await.unwrap();
    let ids: Vec<&str> = aarhus.iter().map(|q| q.id.as_str()).collect();
    for q in ["mitid", "koerekort", "pas", "sundhedskort"] {
        assert!(ids.contains(&q), "{ids:?}");
    }
    let koerekort = aarhus.iter().find(|q| q.id == "koerekort").unwrap();
    assert_eq!(
        (koerekort.name_da.as_str(), koerekort.name_en.as_str()),
        ("kørekort", "driving licence")
    );
    let aalborg = fd.list_queues("aalborg").await.unwrap();
    assert!(
        !aalborg.iter().any(|q| q.id == "sundhedskort"),
        "municipalities differ"
    );
    let e = fd.list_queues("atlantis").await.unwrap_err();
    assert_eq!(e.outcome(), Outcome::NotFound, "{e}");
}

#[tokio::test]
async fn books_a_free_slot_and_it_is_no_longer_offered() {
    let s = standin().await;
    let fd = client(s.base_url(), 4_000);
    let slots = fd.free_slots("aarhus", "pas", d(3), d(3)).await.unwrap();
    assert_eq!(slots.len(), 30, "Thursday 10:00-17:30 in 15 minute slots");
    let first = &slots[0];
    assert_eq!(
        first.start,
        Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap()
    );
    let b = fd
        .book(&booking(&first.id, "+4512345678", "c1"))
        .await
        .unwrap();
    assert_eq!(b.reference, "FD-AAR-00001");
    assert_eq!((b.start, b.queue_id.as_str()), (first.start, "pas"));
    let after = fd.free_slots("aarhus", "pas", d(3), d(3)).await.unwrap();
    assert_eq!(after.len(), 29);
    assert!(!after.iter().any(|x| x.id == first.id));
    // The weekend is closed; a week has four short days and one long.
    assert!(fd
        .free_slots("aarhus", "pas", d(5), d(6))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_slot_taken_between_listing_and_booking_is_slot_taken() {
    let s = standin().await;
    let caller = client(s.base_url(), 4_000);
    let other_citizen = client(s.base_url(), 4_000);
    let offered = caller
        .free_slots("aarhus", "pas", d(1), d(1))
        .await
        .unwrap();
    let chosen = offered[3].id.clone();
    // While the bot reads the slots aloud, someone at the web booking takes it.
    other_citizen
        .book(&booking(&chosen, "+4511111111", "web"))
        .await
        .unwrap();
    let e = caller
        .book(&booking(&chosen, "+4512345678", "c1"))
        .await
        .unwrap_err();
    assert!(matches!(e, FrontdeskError::SlotTaken), "{e:?}");
    assert_eq!(e.outcome(), Outcome::SlotTaken);
    assert_eq!(s.booking_count(), 1);
}

#[tokio::test]
async fn past_and_unknown_slots_are_refused() {
    let s = standin().await;
    let fd = client(s.base_url(), 4_000);
    // Monday 30 November, 09:00 now: today's 10:00 is offered, last week's is not.
    let today = fd
        .free_slots(
            "aarhus",
            "mitid",
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            d(1),
        )
        .await
        .unwrap();
    assert_eq!(today[0].id, "mitid-20261130T1000");
    let past = fd
        .book(&booking("pas-20261123T1000", "+4512345678", "c1"))
        .await
        .unwrap_err();
    assert_eq!(past.outcome(), Outcome::SlotTaken, "{past}");
    let off_grid = fd
        .book(&booking("pas-20261203T1007", "+4512345678", "c1"))
        .await
        .unwrap_err();
    assert_eq!(off_grid.outcome(), Outcome::NotFound, "{off_grid}");
    let mut no_name = booking("pas-20261203T1000", "+4512345678", "c1");
    no_name.name = Pii::new(" ".into());
    let e = fd.book(&no_name).await.unwrap_err();
    assert_eq!(e.outcome(), Outcome::Rejected, "{e}");
    let e = fd
        .free_slots("aarhus", "pas", d(10), d(1))
        .await
        .unwrap_err();
    assert_eq!(
        e.outcome(),
        Outcome::Rejected,
        "a reversed range is a 400: {e}"
    );
}

#[tokio::test]
async fn cancels_by_reference_and_by_caller() {
    let s = standin().await;
    let fd = client(s.base_url(), 4_000);
    let a = fd
        .book(&booking("pas-20261203T1000", "+45 12 34 56 78", "c1"))
        .await
        .unwrap();
    let b = fd
        .book(&booking("pas-20261204T1100", "12345678", "c2"))
        .await
        .unwrap();
    let other = fd
        .book(&booking("pas-20261204T1115", "87654321", "c3"))
        .await
        .unwrap();

    let by_ref = fd
        .cancel("aarhus", &CancelBy::Reference(other.reference.clone()))
        .await
        .unwrap();
    assert_eq!(by_ref, vec![other.reference.clone()]);
    let again = fd
        .cancel("aarhus", &CancelBy::Reference(other.reference))
        .await
        .unwrap_err();
    assert_eq!(again.outcome(), Outcome::NotFound);

    let wrong_cpr = CancelBy::Caller {
        phone: Pii::new("+4512345678".into()),
        cpr: Some(Pii::new("3112991234".into())),
    };
    assert!(fd.cancel("aarhus", &wrong_cpr).await.unwrap().is_empty());
    let by_caller = CancelBy::Caller {
        phone: Pii::new("+4512345678".into()),
        cpr: Some(Pii::new("010190-1234".into())),
    };
    assert_eq!(
        fd.cancel("aarhus", &by_caller).await.unwrap(),
        vec![a.reference, b.reference]
    );
    assert_eq!(s.booking_count(), 0);
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable() {
    // Accepts connections (kernel backlog) but never reads or answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fd = client(format!("http://{}", silent.local_addr().unwrap()), 300);
    let e = fd
        .free_slots("aarhus", "pas", d(3), d(3))
        .await
        .unwrap_err();
    assert!(matches!(e, FrontdeskError::Timeout), "{e:?}");
    assert_eq!(e.outcome(), Outcome::Unavailable);
    drop(silent);
}

#[tokio::test]
async fn server_errors_and_refused_connections_are_unavailable() {
    let s = standin().await;
    let fd = client(s.base_url(), 4_000);
    s.fail_next(1, 503);
    let e = fd.list_queues("aarhus").await.unwrap_err();
    assert_eq!(e.outcome(), Outcome::Unavailable, "{e}");
    assert!(
        fd.list_queues("aarhus").await.is_ok(),
        "next request works again"
    );
    s.fail_next(1, 400);
    assert_eq!(
        fd.list_queues("aarhus").await.unwrap_err().outcome(),
        Outcome::Rejected
    );

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let e = client(url, 4_000).list_queues("aarhus").await.unwrap_err();
    assert_eq!(e.outcome(), Outcome::Unavailable, "{e}");
}

#[tokio::test]
async fn an_api_key_is_sent_as_a_bearer_token() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = FrontdeskStandinConfig::realistic_at(clock());
    cfg.api_key = Some("k3y".into());
    let s = serve(l, cfg).await.unwrap();
    let anonymous = client(s.base_url(), 4_000);
    assert_eq!(
        anonymous.list_queues("aarhus").await.unwrap_err().outcome(),
        Outcome::Rejected
    );
    let keyed = FrontdeskClient::new(&FrontdeskConfig {
        base_url: s.base_url(),
        api_key: Some("k3y".into()),
        ..FrontdeskConfig::default()
    })
    .unwrap();
    assert!(!keyed.list_queues("aarhus").await.unwrap().is_empty());
}
