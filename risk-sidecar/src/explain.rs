//! Explanations: exact TreeSHAP (Lundberg et al., "Consistent Individualized Feature
//! Attribution for Tree Ensembles", algorithm 2) over LightGBM's own tree dump
//! (`trees.json` beside the model). Contributions are in log-odds, like LightGBM's
//! `pred_contrib`, which the tests check them against.
//!
//! A row is the classifier's input (`model::ModelRow`): the request's features, then
//! the anomaly score when the model takes it as a feature.

use std::path::Path;

use serde::Deserialize;

pub const TREES_FILE: &str = "trees.json";

#[derive(Debug, thiserror::Error)]
#[error("failed to read the tree dump {path}: {problem}")]
pub struct ExplainError {
    path: String,
    problem: String,
}

/// A tree flattened into arrays; children index into the same arrays.
struct Tree {
    nodes: Vec<Node>,
    /// The cover-weighted mean of the leaves, computed once.
    expected: f64,
}

struct Node {
    /// `None` for a leaf.
    split: Option<Split>,
    value: f64,
    /// Training rows that reached the node: the "cover" TreeSHAP weighs paths by.
    count: f64,
}

struct Split {
    feature: usize,
    threshold: f64,
    default_left: bool,
    missing: Missing,
    left: usize,
    right: usize,
}

#[derive(Clone, Copy, Deserialize)]
enum Missing {
    None,
    Zero,
    NaN,
}

#[derive(Deserialize)]
struct DumpTree {
    tree_structure: DumpNode,
}

#[derive(Deserialize)]
struct DumpNode {
    split_feature: Option<usize>,
    threshold: Option<f64>,
    decision_type: Option<String>,
    default_left: Option<bool>,
    missing_type: Option<Missing>,
    internal_count: Option<f64>,
    left_child: Option<Box<DumpNode>>,
    right_child: Option<Box<DumpNode>>,
    leaf_value: Option<f64>,
    leaf_count: Option<f64>,
}

pub struct TreeExplainer {
    trees: Vec<Tree>,
    /// The classifier's input width; every split's feature is below it.
    n_inputs: usize,
}

#[derive(Clone, Copy)]
struct PathElement {
    feature: Option<usize>,
    zero: f64,
    one: f64,
    weight: f64,
}

// === impl TreeExplainer ===

impl TreeExplainer {
    /// `Ok(None)` when the model directory has no tree dump (no explanations then).
    /// `n_inputs` is the classifier's input width (`ModelCard::n_inputs`).
    pub fn load(dir: &Path, n_inputs: usize) -> Result<Option<TreeExplainer>, ExplainError> {
        let path = dir.join(TREES_FILE);
        let err = |problem: String| ExplainError {
            path: path.display().to_string(),
            problem,
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        let dump: Vec<DumpTree> = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        let trees = dump
            .into_iter()
            .map(|t| flatten(t.tree_structure, n_inputs))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        Ok(Some(TreeExplainer { trees, n_inputs }))
    }

    /// Each input's contribution to the log-odds, and the expected value last
    /// (`n_inputs + 1` entries summing to the model's raw score). A row shorter than the
    /// classifier's input reads the missing columns as unknown (NaN).
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        let n = self.n_inputs;
        let mut phi = vec![0.0; n + 1];
        // One stack of path segments for every tree: no allocation per node.
        let mut stack = Vec::with_capacity(512);
        for tree in &self.trees {
            phi[n] += tree.expected;
            stack.clear();
            tree.recurse(row, 0, &mut stack, 0, 1.0, 1.0, None, &mut phi);
        }
        phi
    }

    /// The features that raised the score most, largest first, at most `n`.
    pub fn top_raising(&self, row: &[f32], n: usize) -> Vec<(usize, f64)> {
        let phi = self.contributions(row);
        let mut ranked: Vec<(usize, f64)> = phi[..self.n_inputs]
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, c)| *c > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(n);
        ranked
    }
}

// === impl Tree ===

impl Tree {
    fn expected_value(&self, node: usize) -> f64 {
        let n = &self.nodes[node];
        match &n.split {
            None => n.value,
            Some(s) => {
                let (l, r) = (&self.nodes[s.left], &self.nodes[s.right]);
                let sum = self.expected_value(s.left) * l.count + self.expected_value(s.right) * r.count;
                sum / n.count.max(f64::MIN_POSITIVE)
            }
        }
    }

    /// LightGBM's numerical decision, missing values included.
    fn goes_left(s: &Split, value: f32) -> bool {
        let mut v = f64::from(value);
        if v.is_nan() && !matches!(s.missing, Missing::NaN) {
            v = 0.0;
        }
        let missing = match s.missing {
            Missing::Zero => v.abs() <= 1e-35,
            Missing::NaN => v.is_nan(),
            Missing::None => false,
        };
        if missing { s.default_left } else { v <= s.threshold }
    }

    /// The parent's path is the last `parent_len` elements of `stack`; this node's path
    /// is built after it and dropped on return.
    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &self,
        row: &[f32],
        node: usize,
        stack: &mut Vec<PathElement>,
        parent_len: usize,
        zero: f64,
        one: f64,
        feature: Option<usize>,
        phi: &mut [f64],
    ) {
        let base = stack.len();
        stack.extend_from_within(base - parent_len..base);
        extend(stack, base, zero, one, feature);
        let n = &self.nodes[node];
        match &n.split {
            None => {
                let path = &stack[base..];
                for i in 1..path.len() {
                    let el = path[i];
                    if let Some(f) = el.feature {
                        phi[f] += unwound_sum(path, i) * (el.one - el.zero) * n.value;
                    }
                }
            }
            Some(s) => {
                let value = row.get(s.feature).copied().unwrap_or(f32::NAN);
                let (hot, cold) = if Self::goes_left(s, value) {
                    (s.left, s.right)
                } else {
                    (s.right, s.left)
                };
                let cover = n.count.max(f64::MIN_POSITIVE);
                let (mut in_zero, mut in_one) = (1.0, 1.0);
                if let Some(k) = stack[base..].iter().position(|e| e.feature == Some(s.feature)) {
                    in_zero = stack[base + k].zero;
                    in_one = stack[base + k].one;
                    unwind(stack, base, k);
                }
                let len = stack.len() - base;
                let hot_zero = self.nodes[hot].count / cover * in_zero;
                let cold_zero = self.nodes[cold].count / cover * in_zero;
                self.recurse(row, hot, stack, len, hot_zero, in_one, Some(s.feature), phi);
                self.recurse(row, cold, stack, len, cold_zero, 0.0, Some(s.feature), phi);
            }
        }
        stack.truncate(base);
    }
}

/// Extends the path that starts at `base` (and runs to the end of `stack`).
fn extend(stack: &mut Vec<PathElement>, base: usize, zero: f64, one: f64, feature: Option<usize>) {
    let depth = stack.len() - base;
    stack.push(PathElement {
        feature,
        zero,
        one,
        weight: if depth == 0 { 1.0 } else { 0.0 },
    });
    let path = &mut stack[base..];
    for i in (0..depth).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / (depth + 1) as f64;
        path[i].weight = zero * path[i].weight * (depth - i) as f64 / (depth + 1) as f64;
    }
}

/// Removes element `index` of the path that starts at `base`, undoing its split.
fn unwind(stack: &mut Vec<PathElement>, base: usize, index: usize) {
    let path = &mut stack[base..];
    let depth = path.len() - 1;
    let (one, zero) = (path[index].one, path[index].zero);
    let mut next = path[depth].weight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = path[i].weight;
            path[i].weight = next * (depth + 1) as f64 / ((i + 1) as f64 * one);
            next = tmp - path[i].weight * zero * (depth - i) as f64 / (depth + 1) as f64;
        } else {
            path[i].weight = path[i].weight * (depth + 1) as f64 / (zero * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
    stack.pop();
}

fn unwound_sum(path: &[PathElement], index: usize) -> f64 {
    // The hottest loop of TreeSHAP: divisions hoisted out of it (one and zero are fixed
    // for the call; 1 / (i + 1) comes from a table).
    let depth = path.len() - 1;
    let (one, zero) = (path[index].one, path[index].zero);
    let scale = (depth + 1) as f64;
    let mut next = path[depth].weight;
    let mut total = 0.0;
    if one != 0.0 {
        let per_one = scale / one;
        let zero_share = zero / scale;
        for i in (0..depth).rev() {
            let tmp = next * per_one * reciprocal(i + 1);
            total += tmp;
            next = path[i].weight - tmp * zero_share * (depth - i) as f64;
        }
    } else if zero != 0.0 {
        let per_zero = scale / zero;
        for i in (0..depth).rev() {
            total += path[i].weight * per_zero * reciprocal(depth - i);
        }
    }
    total
}

/// 1 / n for the small n of path lengths, without a division.
fn reciprocal(n: usize) -> f64 {
    const TABLE: [f64; 64] = {
        let mut t = [0.0; 64];
        let mut i = 1;
        while i < 64 {
            t[i] = 1.0 / i as f64;
            i += 1;
        }
        t
    };
    TABLE.get(n).copied().unwrap_or_else(|| 1.0 / n as f64)
}

/// Depth-first into arrays; a node's children are pushed after it.
fn flatten(root: DumpNode, n_inputs: usize) -> Result<Tree, String> {
    let mut nodes = Vec::new();
    push(root, &mut nodes, n_inputs)?;
    let mut tree = Tree { nodes, expected: 0.0 };
    tree.expected = tree.expected_value(0);
    Ok(tree)
}

fn push(n: DumpNode, nodes: &mut Vec<Node>, n_inputs: usize) -> Result<usize, String> {
    let index = nodes.len();
    if let Some(value) = n.leaf_value {
        nodes.push(Node {
            split: None,
            value,
            count: n.leaf_count.unwrap_or(0.0),
        });
        return Ok(index);
    }
    let feature = n.split_feature.ok_or("a split without a feature")?;
    if feature >= n_inputs || n.decision_type.as_deref() != Some("<=") {
        return Err(format!("unsupported split on feature {feature}"));
    }
    nodes.push(Node {
        split: None,
        value: 0.0,
        count: n.internal_count.unwrap_or(0.0),
    });
    let left = push(*n.left_child.ok_or("a split without a left child")?, nodes, n_inputs)?;
    let right = push(*n.right_child.ok_or("a split without a right child")?, nodes, n_inputs)?;
    nodes[index].split = Some(Split {
        feature,
        threshold: n.threshold.ok_or("a split without a threshold")?,
        default_left: n.default_left.unwrap_or(true),
        missing: n.missing_type.unwrap_or(Missing::None),
        left,
        right,
    });
    Ok(index)
}
