//! Which services feed which: what one service writes to its output folder in the platform's
//! store lands in another's input folder and starts its jobs. Laid out in columns, each
//! service right of every service that feeds it, for the dashboard's workflow view.

use serde::{Deserialize, Serialize};

use crate::service::{Service, StorageIo};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// A service in the view, at its place in the grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub service: String,
    pub column: usize,
    pub row: usize,
}

/// `from` writes to `path` (`bucket/folder`), which starts jobs of `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub path: String,
}

impl Workflow {
    /// The services that feed or are fed by another (or themselves: a loop), laid out; a
    /// service on its own is left out.
    pub fn of(services: &[Service]) -> Self {
        let mut edges = Vec::new();
        for from in services {
            for output in &from.output {
                for to in services {
                    if to.input.iter().any(|input| feeds(output, input)) {
                        edges.push(Edge {
                            from: from.name.clone(),
                            to: to.name.clone(),
                            path: output.path.trim_matches('/').to_string(),
                        });
                    }
                }
            }
        }
        edges.sort_by(|a, b| (&a.from, &a.to, &a.path).cmp(&(&b.from, &b.to, &b.path)));
        edges.dedup();
        let mut names: Vec<&str> = edges
            .iter()
            .flat_map(|e| [e.from.as_str(), e.to.as_str()])
            .collect();
        names.sort_unstable();
        names.dedup();
        let columns = columns(&names, &edges);
        let mut rows = vec![0; names.len()];
        let nodes = names
            .iter()
            .zip(columns)
            .map(|(name, column)| {
                let row = rows[column];
                rows[column] += 1;
                Node {
                    service: name.to_string(),
                    column,
                    row,
                }
            })
            .collect();
        Self { nodes, edges }
    }
}

/// Whether objects written under `output` are under `input`: same bucket of the platform's
/// store, the output folder at or below the input folder.
fn feeds(output: &StorageIo, input: &StorageIo) -> bool {
    let ((out_bucket, out_folder), (in_bucket, in_folder)) =
        (output.bucket_and_folder(), input.bucket_and_folder());
    output.in_platform_store()
        && input.in_platform_store()
        && out_bucket == in_bucket
        && (in_folder.is_empty()
            || out_folder == in_folder
            || out_folder.starts_with(&format!("{in_folder}/")))
}

/// Each name's column: one more than the furthest column of what feeds it (the longest path
/// from a service nothing feeds). Loops stop growing after as many rounds as there are names.
fn columns(names: &[&str], edges: &[Edge]) -> Vec<usize> {
    let index = |name: &str| names.binary_search(&name).unwrap_or_default();
    let mut columns = vec![0; names.len()];
    for _ in 0..names.len() {
        let mut moved = false;
        for edge in edges.iter().filter(|e| e.from != e.to) {
            let (from, to) = (index(&edge.from), index(&edge.to));
            if columns[to] <= columns[from] && columns[from] + 1 < names.len() {
                columns[to] = columns[from] + 1;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    columns
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::PLATFORM_STORE;

    fn io(path: &str) -> StorageIo {
        StorageIo {
            storage_provider: PLATFORM_STORE.into(),
            path: path.into(),
            ..StorageIo::default()
        }
    }

    fn service(name: &str, inputs: &[&str], outputs: &[&str]) -> Service {
        Service {
            name: name.into(),
            input: inputs.iter().map(|p| io(p)).collect(),
            output: outputs.iter().map(|p| io(p)).collect(),
            ..Service::default()
        }
    }

    fn place(workflow: &Workflow, name: &str) -> (usize, usize) {
        let node = workflow.nodes.iter().find(|n| n.service == name).unwrap();
        (node.column, node.row)
    }

    #[test]
    fn an_output_feeds_inputs_at_or_above_its_folder_in_the_same_bucket() {
        assert!(feeds(&io("b/out"), &io("b/out")));
        assert!(feeds(&io("b/out/sub"), &io("b/out")));
        assert!(feeds(&io("b/out"), &io("b")));
        assert!(feeds(&io("/b/out/"), &io("b/out")));
        assert!(
            !feeds(&io("b/output"), &io("b/out")),
            "a folder, not a prefix"
        );
        assert!(
            !feeds(&io("b/out"), &io("b/out/sub")),
            "the input is narrower"
        );
        assert!(!feeds(&io("c/out"), &io("b/out")));
        let mut elsewhere = io("b/out");
        elsewhere.storage_provider = "s3.aws".into();
        assert!(!feeds(&elsewhere, &io("b/out")), "another store");
    }

    #[test]
    fn services_sit_right_of_everything_that_feeds_them() {
        // a → b → c, and a → c directly: c goes right of b.
        let services = [
            service("c", &["x/two", "x/one"], &["x/done"]),
            service("a", &["x/in"], &["x/one"]),
            service("b", &["x/one"], &["x/two"]),
            service("alone", &["y/in"], &["y/out"]),
        ];
        let workflow = Workflow::of(&services);
        assert_eq!(place(&workflow, "a"), (0, 0));
        assert_eq!(place(&workflow, "b"), (1, 0));
        assert_eq!(place(&workflow, "c"), (2, 0));
        assert!(workflow.nodes.iter().all(|n| n.service != "alone"));
        let edges: Vec<_> = workflow
            .edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str(), e.path.as_str()))
            .collect();
        assert_eq!(
            edges,
            [
                ("a", "b", "x/one"),
                ("a", "c", "x/one"),
                ("b", "c", "x/two")
            ]
        );
    }

    #[test]
    fn loops_are_shown_and_laid_out_in_bounded_time() {
        let services = [
            service("p", &["l/a"], &["l/b"]),
            service("q", &["l/b"], &["l/a"]),
            service("self", &["s/in"], &["s/in/again"]),
        ];
        let workflow = Workflow::of(&services);
        assert_eq!(workflow.nodes.len(), 3);
        assert!(workflow.nodes.iter().all(|n| n.column < 3));
        assert!(
            workflow
                .edges
                .iter()
                .any(|e| e.from == "self" && e.to == "self")
        );
        // Services in one column get rows of their own.
        let mut places: Vec<_> = workflow.nodes.iter().map(|n| (n.column, n.row)).collect();
        places.sort_unstable();
        places.dedup();
        assert_eq!(places.len(), 3);
    }
}
