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
use ivr_flow::{model::StepKind, Diagnostic, Flow};
use layout::{
    backends::svg::SVGWriter,
    core::{base::Orientation, color::Color, style::StyleAttr},
    std_shapes::{
        render::get_shape_size,
        shapes::{Arrow, Element, ShapeKind},
    },
    topo::layout::VisualGraph,
};

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

/// How a step is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Asks the caller (gather).
    Question,
    /// Decides without the caller (branch).
    Decision,
    /// Leaves the flow (hangup, transfer, return).
    End,
    /// Anything else.
    Plain,
}

/// One step as the diagrams show it: name, what it does, its shape.
struct Node {
    name: String,
    detail: String,
    shape: Shape,
}

fn nodes(flow: &Flow) -> Vec<Node> {
    flow.steps
        .iter()
        .map(|st| {
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
                StepKind::Gather(_) => Shape::Question,
                StepKind::Branch { .. } => Shape::Decision,
                StepKind::Hangup { .. } | StepKind::Transfer { .. } | StepKind::Return => {
                    Shape::End
                }
                _ => Shape::Plain,
            };
            Node {
                name: st.name.clone(),
                detail,
                shape,
            }
        })
        .collect()
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

/// The SVG picture of a flow: steps top to bottom from `start`, each box
/// with the step's name and what it does, coloured by kind, edges labelled
/// with the intent, key or condition that takes them.
///
/// # Errors
/// When the layout library gives up on the graph (it asserts its own
/// invariants); the Mermaid form always works.
pub(crate) fn svg(flow: &Flow) -> anyhow::Result<String> {
    // The flow is checked input, but a panic inside the layout library
    // must not be how a flow author learns about it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lay_out(flow))).map_err(|_| {
        anyhow::anyhow!(
            "cannot lay out {} as SVG; `--format mermaid` draws it",
            flow.file.display()
        )
    })
}

fn lay_out(flow: &Flow) -> String {
    let mut vg = VisualGraph::new(Orientation::TopToBottom);
    let look = |fill: &str| StyleAttr::new(Color::fast("black"), 1, Some(Color::fast(fill)), 0, 13);
    // A top-to-bottom graph lays its shapes out in the flipped direction
    // (as layout-rs's own DOT reader does).
    let dir = Orientation::TopToBottom.flip();
    let element = |shape: ShapeKind, style: StyleAttr| {
        let size = get_shape_size(dir, &shape, style.font_size, false);
        Element::create(shape, style, dir, size)
    };
    let start = vg.add_node(element(ShapeKind::new_circle("start"), look("palegreen")));
    let mut handles = std::collections::HashMap::new();
    for n in nodes(flow) {
        let (fill, rounded) = match n.shape {
            Shape::Question => ("lightblue", 0),
            Shape::Decision => ("lightyellow", 0),
            Shape::End => ("mistyrose", 12),
            Shape::Plain => ("white", 0),
        };
        let mut style = look(fill);
        style.rounded = rounded;
        let label = format!("{}\n{}", n.name, n.detail);
        let h = vg.add_node(element(ShapeKind::new_box(&label), style));
        handles.insert(n.name, h);
    }
    let edge = |label: &str| {
        let mut a = Arrow::simple(label);
        a.look.line_width = 1;
        a.look.font_size = 11;
        a
    };
    if let Some(first) = handles.get(flow.name_of(flow.start)) {
        vg.add_edge(edge(""), start, *first);
    }
    for st in &flow.steps {
        let Some(from) = handles.get(&st.name) else {
            continue;
        };
        for (label, to) in flow.edges(st) {
            if let Some(to) = handles.get(to) {
                vg.add_edge(edge(&label), *from, *to);
            }
        }
    }
    let mut out = SVGWriter::new();
    vg.do_it(false, false, false, &mut out);
    out.finalize()
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
