//! Flows are resolved at load: step targets are ids into the flow, sub-flows
//! ids into the municipality, queues and mail recipients are fixed values
//! (checked) or variables (read when the step runs).
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::path::PathBuf;

use ivr_flow::model::{Ref, StepKind};
use ivr_flow::FlowStore;

fn shipped() -> FlowStore {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows");
    FlowStore::load(p).unwrap().0
}

#[test]
fn every_step_target_of_the_shipped_flows_is_a_step_of_the_same_flow() {
    let store = shipped();
    let snap = store.snapshot();
    let mut edges = 0;
    for m in snap.municipalities.values() {
        for (i, f) in m.flows.iter().enumerate() {
            assert_eq!(f.id.index(), i, "a flow's id is its place");
            assert!(f.step(f.start).is_some(), "{}: start", f.name);
            for st in &f.steps {
                for (_, to) in st.kind.edges() {
                    assert_eq!(to.flow, f.id, "{}/{} leaves its flow", f.name, st.name);
                    assert!(f.step(to).is_some());
                    edges += 1;
                }
                if let StepKind::Call { flow, .. } = &st.kind {
                    assert_eq!(
                        m.flow(flow.id).map(|c| c.name.as_str()),
                        Some(flow.name.as_str())
                    );
                }
            }
        }
    }
    assert!(edges > 100, "only {edges} edges checked");
}

#[test]
fn queues_and_mail_recipients_are_fixed_or_variables_resolved_at_load() {
    let store = shipped();
    let route = store.route("+4570101010").unwrap();
    let m = &route.municipality;
    let booking = m.flow_named("booking").unwrap();
    let StepKind::Frontdesk { queue, .. } = &booking.step_named("find").unwrap().kind else {
        panic!("find is a frontdesk step")
    };
    assert!(matches!(queue, Ref::Var(v) if v.as_str() == "queue"));
    // A department as recipient is its mailbox, looked up once at load.
    let cancel = m.flow_named("jobcenter_cancel").unwrap();
    let StepKind::Mail { to, .. } = &cancel.step_named("send").unwrap().kind else {
        panic!("send is a mail step")
    };
    assert_eq!(to, &[Ref::Fixed("jobcenter@nordby.example".to_string())]);
    let main = m.flow_named("main").unwrap();
    let StepKind::Mail { to, .. } = &main.step_named("send_message").unwrap().kind else {
        panic!("send_message is a mail step")
    };
    assert!(matches!(to.as_slice(), [Ref::Var(v)] if v.as_str() == "dept_mail"));
}

#[test]
fn every_shipped_flow_file_parses_on_its_own_for_ivr_graph() {
    // `ivr graph FILE` knows no municipality: departments, queues
    // (`{queue:pas}`) and variables cannot be checked and must not fail it.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows");
    let mut n = 0;
    for dir in ["nordby", "sydhavn", "shared"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml")
                && p.file_stem().is_some_and(|s| s != "municipality")
            {
                let flow = ivr_flow::load::parse_flow_file(&p)
                    .unwrap_or_else(|d| panic!("{}: {d:?}", p.display()));
                assert!(flow.step(flow.start).is_some());
                n += 1;
            }
        }
    }
    assert_eq!(n, 6);
}
