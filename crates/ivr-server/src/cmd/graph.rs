//! `ivr graph FILE`: a flow as a Mermaid flowchart, for documentation.

use std::{path::PathBuf, process::ExitCode};

use ivr_flow::model::StepKind;

/// Arguments of `ivr graph`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The flow file.
    file: PathBuf,
}

fn id(step: &str) -> String {
    step.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn esc(s: &str) -> String {
    s.replace('"', "'")
}

/// The Mermaid text of a flow.
pub(crate) fn mermaid(flow: &ivr_flow::Flow) -> String {
    let mut out = String::from("flowchart TD\n");
    for st in &flow.steps {
        let name = &st.name;
        let detail = match &st.kind {
            StepKind::Transfer { department, .. } => format!("transfer {department}"),
            StepKind::Call { flow, .. } => format!("call {}", flow.name),
            StepKind::Frontdesk { op, queue, .. } => {
                format!("frontdesk {op:?} {queue}").to_lowercase()
            }
            StepKind::Hangup { outcome, .. } => format!("hangup {}", outcome.as_str()),
            k => k.verb().to_string(),
        };
        let shape = match &st.kind {
            StepKind::Gather(_) => ("{{", "}}"),
            StepKind::Branch { .. } => ("{", "}"),
            StepKind::Hangup { .. } | StepKind::Transfer { .. } | StepKind::Return => ("([", "])"),
            _ => ("[", "]"),
        };
        out.push_str(&format!(
            "    {}{}\"{}<br/><small>{}</small>\"{}\n",
            id(name),
            shape.0,
            esc(name),
            esc(&detail),
            shape.1
        ));
    }
    out.push_str(&format!(
        "    start((start)) --> {}\n",
        id(flow.name_of(flow.start))
    ));
    for st in &flow.steps {
        let name = &st.name;
        for (label, to) in flow.edges(st) {
            if label.is_empty() {
                out.push_str(&format!("    {} --> {}\n", id(name), id(to)));
            } else {
                out.push_str(&format!(
                    "    {} -- \"{}\" --> {}\n",
                    id(name),
                    esc(&label),
                    id(to)
                ));
            }
        }
    }
    out
}

/// Runs `ivr graph`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    match ivr_flow::load::parse_flow_file(&args.file) {
        Ok(flow) => {
            print!("{}", mermaid(&flow));
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            for d in diags {
                eprintln!("{d}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
