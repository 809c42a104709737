//! A call's record is written as the call goes (issue 14, defect 7): after
//! every flow step the core hands out the row so far, which the call's task
//! writes at once, so a crash (kill -9) loses at most the last step. Before,
//! the only write was at the end of the call.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use chrono::Utc;
use ivr_core::Pii;
use ivr_engine::call::core::CallEvent;
use ivr_engine::records::{CallRecordRow, Records, IN_PROGRESS};
use ivr_integrations::db::Db;
use support::{shipped_flows, Options, Sim};

fn progress(sim: &Sim) -> Vec<CallRecordRow> {
    sim.log
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            CallEvent::Progress(r) => Some((**r).clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_record_so_far_is_handed_out_after_each_flow_step_before_the_call_ends() {
    let mut sim = Sim::answered(&shipped_flows(), "+4570101010", Options::default());
    sim.run_for(Duration::from_secs(8));
    assert!(!sim.done(), "the call should still be up");
    let rows = progress(&sim);
    assert!(
        !rows.is_empty(),
        "no record was handed out while the call was up"
    );
    let last = rows.last().unwrap();
    assert_eq!(last.outcome, IN_PROGRESS);
    assert!(!last.steps.is_empty());
    assert_eq!(last.calling.expose(), "+4522334455");
    for w in rows.windows(2) {
        assert!(
            w[1].steps.len() > w[0].steps.len(),
            "a snapshot without a new step"
        );
    }
}

#[tokio::test]
async fn an_in_progress_row_is_completed_at_the_end_and_a_late_snapshot_never_overwrites_it() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    let rec = Records::open(db.clone()).await.unwrap();
    let t = Utc::now();
    let mut row = CallRecordRow {
        call_ref: "c9".into(),
        municipality: "nordby".into(),
        called: Pii::new("+4570101010".into()),
        calling: Pii::new("+4522334455".into()),
        started_at: t,
        ended_at: t,
        talk_ms: 10,
        steps: vec!["main/welcome".into()],
        intents: vec![],
        outcome: IN_PROGRESS.into(),
        transferred_to: None,
        lang: "da".into(),
        turns: 0,
        transcript: None,
        questions: vec![],
        turn_log: vec![],
        origin: ivr_engine::records::CallOrigin::Phone,
    };
    rec.upsert(&row).await.unwrap();
    let stale = row.clone();
    row.steps.push("main/menu".into());
    row.outcome = "transferred".into();
    rec.upsert(&row).await.unwrap();
    rec.upsert(&stale).await.unwrap();
    let Db::Sqlite(p) = &db else { unreachable!() };
    let (steps, outcome): (String, String) =
        sqlx::query_as("SELECT steps, outcome FROM call_records WHERE call_ref = 'c9'")
            .fetch_one(p)
            .await
            .unwrap();
    assert_eq!(outcome, "transferred");
    assert!(steps.contains("main/menu"), "{steps}");
}
