//! PostgreSQL restarted under a running store: operations fail as
//! `Unavailable` while it is down and succeed after it is back, through the
//! same pool (it reconnects). Its own test binary, because stopping the
//! server would disturb other tests running in parallel threads.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod common;

use chrono::{TimeZone, Utc};
use ivr_core::{CallId, Lang, Pii};
use ivr_integrations::{
    callback::{CallbackKind, CallbackRequest, CallbackStore, ListFilter, TimeWindow},
    Outcome,
};

fn request(call: &str) -> CallbackRequest {
    let t = Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap();
    CallbackRequest {
        call_ref: CallId::new(call),
        kind: CallbackKind::callback(),
        municipality: "aarhus".into(),
        phone: Pii::new("+4512345678".into()),
        topic: "pas".into(),
        lang: Lang::En,
        window: TimeWindow {
            start: t,
            end: t + chrono::Duration::hours(4),
        },
    }
}

fn ctl(action: &str) {
    let script = std::env::var("IVR_TEST_POSTGRES_CTL")
        .expect("IVR_TEST_POSTGRES_CTL (set by scripts/with-test-services.sh)");
    let st = std::process::Command::new("bash")
        .arg(&script)
        .arg(action)
        .status()
        .unwrap();
    assert!(st.success(), "pg_ctl {action} failed");
}

#[tokio::test]
async fn the_store_reconnects_after_a_database_restart() {
    let Some(admin) = common::postgres_url() else {
        return;
    };
    let url = common::fresh_postgres(&admin, "restart").await;
    let store = CallbackStore::open(&url).await.unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 7, 0, 0).unwrap();
    store.enqueue(&request("before"), now).await.unwrap();

    ctl("stop");
    let down = store.enqueue(&request("during"), now).await;
    // Start again before asserting, so a failed assertion leaves the server up.
    ctl("start");
    let e = down.expect_err("a write while the database is down must fail, not be acknowledged");
    assert_eq!(e.outcome(), Outcome::Unavailable, "{e}");

    store
        .enqueue(&request("after"), now)
        .await
        .expect("the pool reconnects after the restart");
    let refs: Vec<String> = store
        .list(&ListFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.request.call_ref.as_str().to_string())
        .collect();
    // Same created_at: ordered by call reference. "during" was never stored.
    assert_eq!(refs, ["after", "before"]);
}
