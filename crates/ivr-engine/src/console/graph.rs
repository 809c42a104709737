//! A flow drawn as an SVG picture (laid out with `layout-rs`): steps top to
//! bottom from `start`, each box with the step's name and what it does,
//! coloured by kind, edges labelled with the intent, key or condition that
//! takes them. `ivr graph --format svg` and the console's flows page draw
//! with this.

use ivr_flow::{model::StepKind, Flow};
use layout::{
    backends::svg::SVGWriter,
    core::{base::Orientation, color::Color, style::StyleAttr},
    std_shapes::{
        render::get_shape_size,
        shapes::{Arrow, Element, ShapeKind},
    },
    topo::layout::VisualGraph,
};

/// The layout library gave up on the graph (it asserts its own invariants).
#[derive(Debug, thiserror::Error)]
#[error("the flow cannot be laid out as a picture")]
pub struct GraphError;

/// How a step is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
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
pub struct Node {
    /// Step name.
    pub name: String,
    /// What it does.
    pub detail: String,
    /// How it is drawn.
    pub shape: Shape,
}

/// Every step of `flow` as drawn.
pub fn nodes(flow: &Flow) -> Vec<Node> {
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

/// The SVG picture of a flow: steps top to bottom from `start`, each box
/// with the step's name and what it does, coloured by kind, edges labelled
/// with the intent, key or condition that takes them.
///
/// # Errors
/// When the layout library gives up on the graph (it asserts its own
/// invariants); the Mermaid form always works.
pub fn svg(flow: &Flow) -> Result<String, GraphError> {
    // The flow is checked input, but a panic inside the layout library
    // must not be how a flow author learns about it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lay_out(flow))).map_err(|_| GraphError)
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
