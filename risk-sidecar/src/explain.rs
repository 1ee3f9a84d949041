//! Explanations: exact path-dependent TreeSHAP (the values of Lundberg et al.,
//! "Consistent Individualized Feature Attribution for Tree Ensembles") over LightGBM's own
//! tree dump (`trees.json` beside the model). Contributions are in log-odds, like
//! LightGBM's `pred_contrib`, which the tests check them against.
//!
//! Computed per leaf in the integral form of the Shapley weights (as in Linear TreeSHAP,
//! Yu et al., 2022): with the leaf's path reduced to its d distinct features, each with the
//! share of training rows that follows the path (`zero`) and whether this row does
//! (`one`), feature j gets `value · (one_j − zero_j) · ∫₀¹ Π_{k≠j} ((1−y)·zero_k + y·one_k) dy`.
//! The integrand is a polynomial of degree d − 1, so ⌈d/2⌉ Gauss–Legendre nodes integrate
//! it exactly. Algorithm 2's unwinding did O(d²) dependent divisions a leaf and cost half
//! a millisecond an explanation on the shipped model; this is a few products a node.
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
    /// Gauss–Legendre nodes and weights on [0, 1], indexed by how many: a path has at most
    /// `n_inputs` distinct features, so needs at most ⌈n_inputs / 2⌉.
    quadrature: Vec<Vec<(f64, f64)>>,
}

/// One distinct feature of the path to a node.
#[derive(Clone, Copy)]
struct Factor {
    feature: usize,
    /// The share of training rows (by cover) that takes this path's branches on it.
    zero: f64,
    /// 1 when the row takes them all, else 0.
    one: f64,
}

/// Buffers for one explanation, reused by every leaf.
struct Scratch {
    factors: Vec<f64>,
    after: Vec<f64>,
    sums: Vec<f64>,
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
        let quadrature = (0..=n_inputs.div_ceil(2)).map(gauss_legendre).collect();
        Ok(Some(TreeExplainer {
            trees,
            n_inputs,
            quadrature,
        }))
    }

    /// Each input's contribution to the log-odds, and the expected value last
    /// (`n_inputs + 1` entries summing to the model's raw score). A row shorter than the
    /// classifier's input reads the missing columns as unknown (NaN).
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        let n = self.n_inputs;
        let mut phi = vec![0.0; n + 1];
        // One path and one set of buffers for every tree: no allocation per node.
        let mut path = Vec::with_capacity(n);
        let mut scratch = Scratch {
            factors: vec![0.0; n],
            after: vec![0.0; n],
            sums: vec![0.0; n],
        };
        for tree in &self.trees {
            phi[n] += tree.expected;
            path.clear();
            tree.walk(row, 0, &mut path, &self.quadrature, &mut scratch, &mut phi);
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

    /// Every leaf under `node`, `path` holding the distinct features of the way there.
    fn walk(
        &self,
        row: &[f32],
        node: usize,
        path: &mut Vec<Factor>,
        quadrature: &[Vec<(f64, f64)>],
        scratch: &mut Scratch,
        phi: &mut [f64],
    ) {
        let n = &self.nodes[node];
        let Some(s) = &n.split else {
            leaf(path, n.value, quadrature, scratch, phi);
            return;
        };
        let value = row.get(s.feature).copied().unwrap_or(f32::NAN);
        let left_is_hot = Self::goes_left(s, value);
        let cover = n.count.max(f64::MIN_POSITIVE);
        for (child, hot) in [(s.left, left_is_hot), (s.right, !left_is_hot)] {
            let share = self.nodes[child].count / cover;
            let one = if hot { 1.0 } else { 0.0 };
            // A feature split on again along the path: one factor, its shares multiplied.
            match path.iter().position(|f| f.feature == s.feature) {
                Some(k) => {
                    let saved = path[k];
                    path[k].zero *= share;
                    path[k].one *= one;
                    self.walk(row, child, path, quadrature, scratch, phi);
                    path[k] = saved;
                }
                None => {
                    path.push(Factor {
                        feature: s.feature,
                        zero: share,
                        one,
                    });
                    self.walk(row, child, path, quadrature, scratch, phi);
                    path.pop();
                }
            }
        }
    }
}

/// A leaf's contributions (see the module's note): for each quadrature node the product
/// of every factor but one, from the products before and after it.
fn leaf(path: &[Factor], value: f64, quadrature: &[Vec<(f64, f64)>], scratch: &mut Scratch, phi: &mut [f64]) {
    let d = path.len();
    if d == 0 {
        return;
    }
    let Scratch { factors, after, sums } = scratch;
    sums[..d].fill(0.0);
    for &(y, weight) in &quadrature[d.div_ceil(2)] {
        let mut product = weight;
        for k in (0..d).rev() {
            after[k] = product;
            factors[k] = (1.0 - y) * path[k].zero + y * path[k].one;
            product *= factors[k];
        }
        let mut before = 1.0;
        for k in 0..d {
            sums[k] += before * after[k];
            before *= factors[k];
        }
    }
    for (f, sum) in path.iter().zip(&sums[..d]) {
        phi[f.feature] += value * (f.one - f.zero) * sum;
    }
}

/// `m` Gauss–Legendre nodes and weights mapped to [0, 1] (Newton's method on the Legendre
/// polynomial from the usual first guess); exact for polynomials of degree below 2m.
fn gauss_legendre(m: usize) -> Vec<(f64, f64)> {
    (0..m)
        .map(|i| {
            let mut t = (std::f64::consts::PI * (i as f64 + 0.75) / (m as f64 + 0.5)).cos();
            let mut derivative = 1.0;
            for _ in 0..100 {
                let (mut before, mut p) = (1.0, t);
                for k in 2..=m {
                    let next = ((2 * k - 1) as f64 * t * p - (k - 1) as f64 * before) / k as f64;
                    before = p;
                    p = next;
                }
                derivative = m as f64 * (t * p - before) / (t * t - 1.0);
                let step = p / derivative;
                t -= step;
                if step.abs() < 1e-16 {
                    break;
                }
            }
            let weight = 2.0 / ((1.0 - t * t) * derivative * derivative);
            ((t + 1.0) / 2.0, weight / 2.0)
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_polynomials_below_degree_2m_exactly() {
        for m in 1..=20 {
            let nodes = gauss_legendre(m);
            assert_eq!(nodes.len(), m);
            for k in 0..2 * m {
                let got: f64 = nodes.iter().map(|(y, w)| w * y.powi(k as i32)).sum();
                let want = 1.0 / (k + 1) as f64;
                assert!((got - want).abs() < 1e-13, "m {m}, y^{k}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn a_leaf_gives_each_feature_its_shapley_share() {
        // Three distinct features; brute force over every subset with the Shapley weights.
        let path = [
            Factor {
                feature: 0,
                zero: 0.3,
                one: 1.0,
            },
            Factor {
                feature: 1,
                zero: 0.6,
                one: 0.0,
            },
            Factor {
                feature: 2,
                zero: 0.2,
                one: 1.0,
            },
        ];
        let quadrature: Vec<_> = (0..=2).map(gauss_legendre).collect();
        let mut scratch = Scratch {
            factors: vec![0.0; 3],
            after: vec![0.0; 3],
            sums: vec![0.0; 3],
        };
        let mut phi = [0.0; 3];
        leaf(&path, 2.5, &quadrature, &mut scratch, &mut phi);
        let fact = |n: usize| (1..=n).product::<usize>() as f64;
        for j in 0..3 {
            let mut want = 0.0;
            for set in 0u32..8 {
                if set & (1 << j) != 0 {
                    continue;
                }
                let size = set.count_ones() as usize;
                let weight = fact(size) * fact(3 - size - 1) / fact(3);
                let others: f64 = (0..3)
                    .filter(|&k| k != j)
                    .map(|k| if set & (1 << k) != 0 { path[k].one } else { path[k].zero })
                    .product();
                want += weight * others * (path[j].one - path[j].zero) * 2.5;
            }
            assert!((phi[j] - want).abs() < 1e-12, "feature {j}: {} vs {want}", phi[j]);
        }
    }
}
