//! `ivr graph FILE`: a flow as a diagram, for documentation: Mermaid text
//! (the default, for Markdown) or an SVG picture (`--format svg`, laid out
//! with `layout-rs`) for people who want to look rather than read.
//!
//! A flow refers to its municipality's departments and queues, so a file
//! inside a deployment (`flows/<municipality>/*.toml`, `flows/shared/*.toml`)
//! is loaded with its deployment, exactly as `ivr check` and the engine load
//! it. A file outside any deployment is parsed on its own.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::Context as _;
use ivr_engine::console::graph::{nodes, Shape};
use ivr_flow::{Diagnostic, Flow};

/// Arguments of `ivr graph`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The flow file.
    file: PathBuf,
    /// What to write: Mermaid text or an SVG picture.
    #[arg(long, value_enum, default_value_t = Format::Mermaid)]
    format: Format,
    /// Write the SVG picture to this file (same as `--format svg -o FILE`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["format", "output"])]
    svg: Option<PathBuf>,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Choice of `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// A Mermaid flowchart (text, for Markdown).
    Mermaid,
    /// An SVG picture.
    Svg,
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
pub(crate) fn mermaid(flow: &Flow) -> String {
    let mut out = String::from("flowchart TD\n");
    for n in nodes(flow) {
        let shape = match n.shape {
            Shape::Question => ("{{", "}}"),
            Shape::Decision => ("{", "}"),
            Shape::End => ("([", "])"),
            Shape::Plain => ("[", "]"),
        };
        out.push_str(&format!(
            "    {}{}\"{}<br/><small>{}</small>\"{}\n",
            id(&n.name),
            shape.0,
            esc(&n.name),
            esc(&n.detail),
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

/// The SVG picture of a flow (drawn by the engine's console too).
///
/// # Errors
/// When the layout library gives up on the graph; the Mermaid form always works.
pub(crate) fn svg(flow: &Flow) -> anyhow::Result<String> {
    ivr_engine::console::graph::svg(flow).map_err(|_| {
        anyhow::anyhow!(
            "cannot lay out {} as SVG; `--format mermaid` draws it",
            flow.file.display()
        )
    })
}

/// The deployment folder a flow file belongs to: the parent of its
/// municipality folder (one with `municipality.toml`) or of `shared/`.
fn deployment_root(file: &Path) -> Option<PathBuf> {
    let dir = file.parent()?;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let in_municipality = dir.join("municipality.toml").is_file();
    let in_shared = dir.file_name().is_some_and(|n| n == "shared");
    (in_municipality || in_shared).then(|| dir.join(".."))
}

/// The flow in `file`, loaded with its deployment when it has one, or the
/// errors of the flow (or its deployment) as `ivr check` reports them.
fn load_flow(file: &Path) -> anyhow::Result<Result<Arc<Flow>, Vec<Diagnostic>>> {
    let Some(root) = deployment_root(file) else {
        return Ok(ivr_flow::load::parse_flow_file(file).map(Arc::new));
    };
    let loaded = ivr_flow::load::load(&root);
    let Some(deployment) = loaded.deployment else {
        return Ok(Err(loaded
            .diagnostics
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect()));
    };
    let wanted = file
        .canonicalize()
        .with_context(|| format!("cannot open {}", file.display()))?;
    let found = deployment
        .municipalities
        .values()
        .flat_map(|m| m.flows.iter())
        .find(|f| f.file.canonicalize().is_ok_and(|p| p == wanted))
        .cloned();
    Ok(match found {
        Some(flow) => Ok(flow),
        // Not a flow of the deployment (e.g. municipality.toml): the
        // stand-alone parser says what is wrong with it.
        None => ivr_flow::load::parse_flow_file(file).map(Arc::new),
    })
}

/// Runs `ivr graph`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let flow = match load_flow(&args.file)? {
        Ok(flow) => flow,
        Err(diags) => {
            for d in diags {
                eprintln!("{d}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let (format, output) = match args.svg {
        Some(path) => (Format::Svg, Some(path)),
        None => (args.format, args.output),
    };
    let text = match format {
        Format::Mermaid => mermaid(&flow),
        Format::Svg => svg(&flow)?,
    };
    match output {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
