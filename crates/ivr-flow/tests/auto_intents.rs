//! Departments of municipality.toml (name and `synonyms`) are intents of a
//! menu gather without editing the flow; a flow switches that off; the
//! `[understanding]` thresholds are checked at load.
#![allow(clippy::unwrap_used)] // reason: tests

mod support;

use ivr_flow::{Action, Event};
use support::*;

const MUNICIPALITY: &str = r#"
name = "Testby Kommune"
languages = ["da", "en"]
fallback = "omstilling"

[department.omstilling]
name = { da = "omstillingen", en = "the switchboard" }
target = "sip:omstilling@test.example"
hours = { mon = "08:00-15:00", tue = "08:00-15:00", wed = "08:00-15:00", thu = "08:00-15:00", fri = "08:00-13:00" }

[department.jobcenter]
name = { da = "Jobcentret", en = "the Job Centre" }
target = "sip:jobcenter@test.example"
hours = { mon = "08:00-15:00", tue = "08:00-15:00", wed = "08:00-15:00", thu = "08:00-15:00", fri = "08:00-13:00" }

[department.omsorg]
name = { da = "Sundhed og Omsorg", en = "Health and Care" }
synonyms.da = ["hjemmeplejen", "ældreplejen"]
synonyms.en = ["home care"]
target = "sip:omsorg@test.example"
hours = { mon = "08:00-15:00", tue = "08:00-15:00", wed = "08:00-15:00", thu = "08:00-15:00", fri = "08:00-13:00" }
"#;

fn menu(understanding: &str) -> String {
    format!(
        r#"
start = "menu"
{understanding}

[step.menu]
do = "gather"
prompt.da = "Hvad drejer det sig om?"
prompt.en = "What is it about?"
no_match = "staff"

[[step.menu.intent]]
name = "jobcenter"
keywords.da = ["jobcenter", "sagsbehandler"]
keywords.en = ["job centre"]
dtmf = "1"
goto = "job"

[[step.menu.intent]]
name = "medarbejder"
keywords.da = ["medarbejder", "sagsbehandler"]
keywords.en = ["member of staff"]
dtmf = "0"
goto = "staff"

[step.job]
do = "transfer"
department = "jobcenter"

[step.staff]
do = "transfer"
department = "omstilling"
"#
    )
}

fn transfer_of(actions: &[Action]) -> Option<String> {
    actions.iter().find_map(|a| match a {
        Action::Transfer { department, .. } => Some(department.clone()),
        _ => None,
    })
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-23T10:30:00+01:00")
        .unwrap()
        .into()
}

#[test]
fn a_department_synonym_routes_to_it_in_a_menu_without_editing_the_flow() {
    let (store, number, root) = deployment("auto-on", MUNICIPALITY, &menu(""));
    let mut it = call(&store, &number);
    it.start(now());
    let a = it.handle(heard("jeg ringer om hjemmeplejen til min mor"), now());
    assert_eq!(transfer_of(&a).as_deref(), Some("omsorg"), "{a:?}");
    assert_eq!(
        it.record().intents.last().map(String::as_str),
        Some("omsorg")
    );
    // The switchboard's own name joins the flow's intent that leads there.
    let mut it = call(&store, &number);
    it.start(now());
    let a = it.handle(heard("giv mig omstillingen"), now());
    assert_eq!(transfer_of(&a).as_deref(), Some("omstilling"), "{a:?}");
    assert_eq!(
        it.record().intents.last().map(String::as_str),
        Some("medarbejder")
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_flow_that_switches_auto_intents_off_does_not_understand_the_synonym() {
    let (store, number, root) = deployment(
        "auto-off",
        MUNICIPALITY,
        &menu("[understanding]\nauto_intents = false"),
    );
    let mut it = call(&store, &number);
    it.start(now());
    let a = it.handle(heard("jeg ringer om hjemmeplejen til min mor"), now());
    assert_eq!(transfer_of(&a), None, "{a:?}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn thresholds_outside_zero_to_one_are_refused_at_load() {
    let root = std::env::temp_dir().join(format!("ivr-flow-accept-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("testby")).unwrap();
    std::fs::write(
        root.join("tenants.toml"),
        "[[tenant]]\nnumber = \"+4570000000\"\nmunicipality = \"testby\"\n",
    )
    .unwrap();
    std::fs::write(root.join("testby/municipality.toml"), MUNICIPALITY).unwrap();
    std::fs::write(
        root.join("testby/main.toml"),
        menu("[understanding]\naccept = 1.5"),
    )
    .unwrap();
    let loaded = ivr_flow::load(&root);
    assert!(loaded.deployment.is_none());
    assert!(
        loaded
            .diagnostics
            .iter()
            .any(|d| d.message.contains("accept = 1.5 is outside 0..1")),
        "{:?}",
        loaded.diagnostics
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn keys_still_choose_while_a_clarifying_question_is_open() {
    // "sagsbehandler": a keyword of both, a tie the words cannot break (two
    // errands named one after the other would be: the first is taken): the
    // bot asks back; a key answers the question as it answers the menu.
    let (store, number, root) = deployment("clarify-keys", MUNICIPALITY, &menu(""));
    let mut it = call(&store, &number);
    it.start(now());
    let a = it.handle(heard("sagsbehandler"), now());
    assert!(
        a.iter().any(
            |x| matches!(x, Action::Say { speech, .. } if speech.expose().starts_with("Vil du "))
        ),
        "{a:?}"
    );
    let a = it.handle(Event::Dtmf(ivr_core::Dtmf::D1), now());
    assert_eq!(transfer_of(&a).as_deref(), Some("jobcenter"), "{a:?}");
    let _ = std::fs::remove_dir_all(root);
}
