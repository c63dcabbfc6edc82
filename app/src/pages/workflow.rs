//! The workflow view on the Services page: which services feed which through their folders
//! (`model::workflow`), drawn as a graph, with the same links as a list for keyboards and
//! screen readers.

use leptos::prelude::*;
use leptos_router::components::A;
use model::url::percent_encode;
use model::workflow::{Node, Workflow};

use crate::api::services::service_workflow;

const COLUMN: f64 = 240.0;
const ROW: f64 = 64.0;
const NODE_WIDTH: f64 = 180.0;
const NODE_HEIGHT: f64 = 36.0;
const MARGIN: f64 = 24.0;
/// Longer names are cut in the drawing (the list and the hover text have them whole).
const NAME_CHARS: usize = 22;

/// Shown only when some service feeds another.
#[component]
pub fn WorkflowPanel() -> impl IntoView {
    let workflow = Resource::new(|| (), |_| service_workflow());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                workflow.await.ok().filter(|w| !w.edges.is_empty()).map(|workflow| view! {
                    <WorkflowGraph workflow />
                })
            })}
        </Transition>
    }
}

fn service_href(name: &str) -> String {
    format!("/services/{}", percent_encode(name, b""))
}

/// Where a node's box starts.
fn corner(node: &Node) -> (f64, f64) {
    (
        MARGIN + node.column as f64 * COLUMN,
        MARGIN + node.row as f64 * ROW,
    )
}

/// The SVG path of an edge: from the right of `from` to the left of `to`, or a loop over the
/// node when a service feeds itself.
fn edge_path(from: &Node, to: &Node) -> String {
    let ((fx, fy), (tx, ty)) = (corner(from), corner(to));
    if from == to {
        let (left, right, top) = (fx + NODE_WIDTH * 0.3, fx + NODE_WIDTH * 0.7, fy);
        return format!(
            "M {right} {top} C {right} {} {left} {} {left} {top}",
            top - 22.0,
            top - 22.0
        );
    }
    let (x1, y1) = (fx + NODE_WIDTH, fy + NODE_HEIGHT / 2.0);
    let (x2, y2) = (tx, ty + NODE_HEIGHT / 2.0);
    let bend = ((x2 - x1).abs() / 2.0).max(40.0);
    format!(
        "M {x1} {y1} C {} {y1} {} {y2} {x2} {y2}",
        x1 + bend,
        x2 - bend
    )
}

fn shortened(name: &str) -> String {
    if name.chars().count() <= NAME_CHARS {
        return name.to_string();
    }
    let cut: String = name.chars().take(NAME_CHARS - 1).collect();
    format!("{cut}…")
}

#[component]
fn WorkflowGraph(workflow: Workflow) -> impl IntoView {
    let columns = workflow
        .nodes
        .iter()
        .map(|n| n.column + 1)
        .max()
        .unwrap_or(1);
    let rows = workflow.nodes.iter().map(|n| n.row + 1).max().unwrap_or(1);
    let width = 2.0 * MARGIN + (columns - 1) as f64 * COLUMN + NODE_WIDTH;
    let height = 2.0 * MARGIN + (rows - 1) as f64 * ROW + NODE_HEIGHT;
    let node = |name: &str| workflow.nodes.iter().find(|n| n.service == name);
    let edges = workflow
        .edges
        .iter()
        .filter_map(|edge| {
            let (from, to) = (node(&edge.from)?, node(&edge.to)?);
            let label = format!("{} → {} through {}", edge.from, edge.to, edge.path);
            Some(view! {
                <path class="workflow-edge" d=edge_path(from, to) marker-end="url(#workflow-arrow)">
                    <title>{label}</title>
                </path>
            })
        })
        .collect_view();
    let nodes = workflow
        .nodes
        .iter()
        .map(|node| {
            let (x, y) = corner(node);
            view! {
                <g class="workflow-node" data-service=node.service.clone()>
                    <title>{node.service.clone()}</title>
                    <rect x=x y=y width=NODE_WIDTH height=NODE_HEIGHT rx=6 />
                    <text x=x + 12.0 y=y + NODE_HEIGHT / 2.0 + 5.0>{shortened(&node.service)}</text>
                </g>
            }
        })
        .collect_view();
    let summary = format!(
        "{} services, {} links between them",
        workflow.nodes.len(),
        workflow.edges.len()
    );
    let links = workflow
        .edges
        .iter()
        .cloned()
        .map(|edge| {
            let (from_href, to_href) = (service_href(&edge.from), service_href(&edge.to));
            view! {
                <li>
                    <A href=from_href>{edge.from}</A>
                    " → "
                    <A href=to_href>{edge.to}</A>
                    " through "<span class="mono">{edge.path}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="panel workflow" aria-labelledby="workflow-title" data-testid="workflow">
            <h2 id="workflow-title">"Workflows"</h2>
            <p class="muted">"What a service writes to its output folder starts the jobs of the services reading that folder."</p>
            <div class="workflow-drawing">
                <svg viewBox=format!("0 0 {width} {height}") width=width height=height role="img" aria-label=summary>
                    <defs>
                        <marker id="workflow-arrow" viewBox="0 0 10 10" refX="10" refY="5"
                            markerWidth="8" markerHeight="8" orient="auto-start-reverse">
                            <path d="M 0 0 L 10 5 L 0 10 z" />
                        </marker>
                    </defs>
                    {edges}
                    {nodes}
                </svg>
            </div>
            <ul class="plain workflow-links">{links}</ul>
        </section>
    }
    .into_any()
}
