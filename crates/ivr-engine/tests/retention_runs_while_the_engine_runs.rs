//! Retention is enforced at run time (issue 14, defect 5): the background
//! task the engine starts deletes call rows with calling numbers, blanks
//! transcripts and deletes served callbacks once they are older than
//! configured, reports per kind in /metrics, and names the oldest personal
//! row. Before, `purge_expired` was never called by `ivr serve` and call
//! rows had no retention at all.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ivr_core::{CallId, Lang, Pii, WallClock};
use ivr_engine::metrics::{Metrics, Sampled};
use ivr_engine::records::{CallRecordRow, Records};
use ivr_engine::retention::Retention;
use ivr_integrations::callback::{CallbackKind, CallbackRequest, TimeWindow};
use ivr_integrations::Integrations;

/// A wall clock the test moves.
struct Moving(Mutex<DateTime<Utc>>);
impl WallClock for Moving {
    fn now_utc(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn row(call_ref: &str, at: DateTime<Utc>, transcript: Option<&str>) -> CallRecordRow {
    CallRecordRow {
        call_ref: call_ref.into(),
        municipality: "nordby".into(),
        called: Pii::new("+4570101010".into()),
        calling: Pii::new("+4522334455".into()),
        started_at: at,
        ended_at: at,
        talk_ms: 30_000,
        steps: vec!["main/welcome".into()],
        intents: vec![],
        outcome: "transferred".into(),
        transferred_to: None,
        lang: "da".into(),
        turns: 1,
        transcript: transcript.map(|t| Pii::new(t.into())),
        questions: vec![],
        turn_log: vec![{
            let mut t = ivr_engine::records::TurnLog::new("speech", "main/menu");
            t.heard = transcript.map(|h| Pii::new(h.into()));
            t
        }],
        origin: ivr_engine::records::CallOrigin::Phone,
    }
}

async fn count(db: &ivr_integrations::db::Db, sql: &str) -> i64 {
    let ivr_integrations::db::Db::Sqlite(p) = db else {
        unreachable!()
    };
    sqlx::query_scalar(sql).fetch_one(p).await.unwrap()
}

#[tokio::test]
async fn the_retention_task_purges_each_kind_on_schedule_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let t0: DateTime<Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
    let clock = Arc::new(Moving(Mutex::new(t0)));
    let cfg = ivr_integrations::Config {
        database_url: format!("sqlite:{}", dir.path().join("ivr.db").display()),
        retention_days: 30,
        ..Default::default()
    };
    let integrations = Arc::new(Integrations::start(&cfg, clock.clone()).await.unwrap());
    let records = Records::open(integrations.db().clone()).await.unwrap();

    // Day 0: a call with a transcript, a served callback.
    records
        .insert(&row("old", t0, Some("mit cpr nummer er 0101901234")))
        .await
        .unwrap();
    let kind = CallbackKind::new("callback").unwrap();
    let req = CallbackRequest {
        call_ref: CallId::from_u64(7),
        kind: kind.clone(),
        municipality: "nordby".into(),
        phone: Pii::new("+4522334455".into()),
        topic: "pas".into(),
        lang: Lang::Da,
        window: TimeWindow {
            start: t0,
            end: t0 + chrono::Duration::hours(4),
        },
    };
    integrations.request_callback(&req).await.unwrap();
    integrations
        .callbacks()
        .mark_done(&req.call_ref, &kind, t0)
        .await
        .unwrap();
    // Day 40: a fresh call.
    let t40 = t0 + chrono::Duration::days(40);
    *clock.0.lock().unwrap() = t40;
    records.insert(&row("new", t40, Some("pas"))).await.unwrap();

    let metrics = Arc::new(Metrics::default());
    let retention = Retention {
        integrations: integrations.clone(),
        records: Some(records.clone()),
        metrics: metrics.clone(),
        clock: clock.clone(),
        record_days: 35,
        transcript_days: 30,
    };
    let oldest = retention.oldest().await.unwrap();
    let calls_oldest = oldest.iter().find(|(k, _)| *k == "call_records").unwrap().1;
    assert_eq!(calls_oldest, Some(t0), "the oldest personal row is named");

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let task = retention.clone().spawn(Duration::from_millis(50), stop);
    let db = integrations.db().clone();
    let purged = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let calls = count(&db, "SELECT COUNT(*) FROM call_records").await;
            let cbs = count(&db, "SELECT COUNT(*) FROM callback_requests").await;
            if calls == 1 && cbs == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        purged.is_ok(),
        "the task did not purge the old call row and callback"
    );
    let left: Vec<(String, Option<String>)> = {
        let ivr_integrations::db::Db::Sqlite(p) = &db else {
            unreachable!()
        };
        sqlx::query_as("SELECT call_ref, transcript FROM call_records")
            .fetch_all(p)
            .await
            .unwrap()
    };
    assert_eq!(left, vec![("new".to_string(), Some("pas".to_string()))]);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM call_turns WHERE call_ref = 'old'"
        )
        .await,
        0,
        "the purged call's turns (what the caller said) go with it"
    );

    // Day 71: the fresh call's transcript is past 30 days, its row not yet past 35... then it is.
    *clock.0.lock().unwrap() = t40 + chrono::Duration::days(31);
    let r = retention.run_once().await.unwrap();
    assert_eq!((r.transcripts, r.call_records), (1, 0));
    *clock.0.lock().unwrap() = t40 + chrono::Duration::days(36);
    let r = retention.run_once().await.unwrap();
    assert_eq!(r.call_records, 1);
    let _ = stop_tx.send(true);
    let _ = task.await;

    let text = metrics.render(Sampled::default());
    assert!(
        text.contains("ivr_retention_purged_total{kind=\"call_records\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("ivr_retention_purged_total{kind=\"callbacks\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("ivr_retention_purged_total{kind=\"transcripts\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("ivr_retention_oldest_age_seconds{kind=\"call_records\"} -1\n"),
        "{text}"
    );
}
