//! `tipoff-gbm`: a small histogram gradient-boosting regressor (squared loss, depth-wise trees
//! on quantile bins), written here so that the artifact is ours byte for byte: no threads, no
//! hash maps, sums in row order, a seeded generator for row subsampling. Same rows and
//! parameters, same trees.

use serde::{Deserialize, Serialize};

/// Tree-growing parameters (a subset of [`super::TrainConfig`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GbmParams {
    /// Number of trees.
    pub trees: usize,
    /// Shrinkage applied to every leaf.
    pub learning_rate: f64,
    /// Maximum depth of a tree (a depth-d tree has at most 2^d leaves).
    pub max_depth: usize,
    /// Fewest rows in a leaf.
    pub min_leaf: usize,
    /// L2 penalty on leaf values (adds to the row count in the leaf mean).
    pub lambda: f64,
    /// Most bins per feature.
    pub max_bins: usize,
    /// Share of rows each tree sees (1.0 = all, no randomness).
    pub subsample: f64,
    /// Seed of the row subsampling.
    pub seed: u64,
}

/// One node: a split (`feature`, `threshold`, children) or a leaf (`value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Split feature, or -1 for a leaf.
    pub feature: i32,
    /// Rows with `x[feature] <= threshold` go left.
    pub threshold: f64,
    /// Index of the left child.
    pub left: u32,
    /// Index of the right child.
    pub right: u32,
    /// Leaf value (already shrunk).
    pub value: f64,
}

/// A regression tree, nodes in creation order, root first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, x: &[f64]) -> f64 {
        let mut i = 0usize;
        // A tree is at most `max_depth` deep; the bound guards a corrupt artifact.
        for _ in 0..=self.nodes.len() {
            let Some(n) = self.nodes.get(i) else {
                return 0.0;
            };
            if n.feature < 0 {
                return n.value;
            }
            let v = x.get(n.feature as usize).copied().unwrap_or(f64::NAN);
            i = if v <= n.threshold {
                n.left as usize
            } else {
                n.right as usize
            };
        }
        0.0
    }
}

/// The boosted trees on top of a constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbm {
    /// The starting value (mean of the targets).
    pub base: f64,
    /// The trees.
    pub trees: Vec<Tree>,
}

impl Gbm {
    /// The prediction for one row.
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.base + self.trees.iter().map(|t| t.predict(x)).sum::<f64>()
    }
}

/// SplitMix64: a tiny, well-mixed, seedable generator (enough for row subsampling).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Per feature, the upper edges of its bins (a value goes to the first bin whose edge is >= it).
fn bin_edges(x: &[Vec<f64>], feature: usize, max_bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = x.iter().map(|r| r[feature]).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    if v.len() <= max_bins {
        // Split between distinct values: the midpoints.
        return v.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    }
    let mut edges: Vec<f64> = (1..max_bins)
        .map(|k| {
            let i = k * v.len() / max_bins;
            (v[i - 1] + v[i]) / 2.0
        })
        .collect();
    edges.dedup();
    edges
}

fn bin_of(edges: &[f64], v: f64) -> u8 {
    // The number of edges strictly below v = the bin index (edges <= 255).
    edges.partition_point(|e| *e < v) as u8
}

struct Split {
    gain: f64,
    feature: usize,
    bin: usize,
}

/// Fits boosted trees to `y` on rows `x` (each of the same length).
pub fn fit(x: &[Vec<f64>], y: &[f64], p: &GbmParams) -> Result<Gbm, String> {
    let n = x.len();
    if n == 0 || y.len() != n {
        return Err(format!("gbm: {n} rows and {} targets", y.len()));
    }
    let nf = x[0].len();
    if x.iter().any(|r| r.len() != nf) {
        return Err("gbm: rows of different lengths".into());
    }
    let max_bins = p.max_bins.clamp(2, 256);
    let edges: Vec<Vec<f64>> = (0..nf).map(|f| bin_edges(x, f, max_bins)).collect();
    // Row-major bins.
    let bins: Vec<Vec<u8>> = x
        .iter()
        .map(|r| (0..nf).map(|f| bin_of(&edges[f], r[f])).collect())
        .collect();
    let base = y.iter().sum::<f64>() / n as f64;
    let mut pred = vec![base; n];
    let mut rng = SplitMix::new(p.seed);
    let mut trees = Vec::with_capacity(p.trees);
    for _ in 0..p.trees {
        let resid: Vec<f64> = y.iter().zip(&pred).map(|(y, f)| y - f).collect();
        let rows: Vec<u32> = if p.subsample < 1.0 {
            (0..n as u32)
                .filter(|_| rng.next_f64() < p.subsample)
                .collect()
        } else {
            (0..n as u32).collect()
        };
        let tree = grow(&rows, &bins, &edges, &resid, p);
        for (i, r) in x.iter().enumerate() {
            pred[i] += tree.predict(r);
        }
        trees.push(tree);
    }
    Ok(Gbm { base, trees })
}

fn leaf(sum: f64, count: usize, p: &GbmParams) -> Node {
    Node {
        feature: -1,
        threshold: 0.0,
        left: 0,
        right: 0,
        value: p.learning_rate * sum / (count as f64 + p.lambda),
    }
}

fn grow(rows: &[u32], bins: &[Vec<u8>], edges: &[Vec<f64>], g: &[f64], p: &GbmParams) -> Tree {
    let mut nodes: Vec<Node> = Vec::new();
    // (node index, rows, depth)
    let sum: f64 = rows.iter().map(|&i| g[i as usize]).sum();
    nodes.push(leaf(sum, rows.len(), p));
    let mut stack: Vec<(usize, Vec<u32>, usize)> = vec![(0, rows.to_vec(), 0)];
    while let Some((at, rows, depth)) = stack.pop() {
        if depth >= p.max_depth || rows.len() < 2 * p.min_leaf {
            continue;
        }
        let Some(split) = best_split(&rows, bins, edges, g, p) else {
            continue;
        };
        let (left, right): (Vec<u32>, Vec<u32>) = rows
            .iter()
            .partition(|&&i| (bins[i as usize][split.feature] as usize) <= split.bin);
        let sl: f64 = left.iter().map(|&i| g[i as usize]).sum();
        let sr: f64 = right.iter().map(|&i| g[i as usize]).sum();
        let (li, ri) = (nodes.len(), nodes.len() + 1);
        nodes.push(leaf(sl, left.len(), p));
        nodes.push(leaf(sr, right.len(), p));
        nodes[at] = Node {
            feature: split.feature as i32,
            threshold: edges[split.feature][split.bin],
            left: li as u32,
            right: ri as u32,
            value: 0.0,
        };
        // Right first so the left subtree is grown first (order only affects node numbering).
        stack.push((ri, right, depth + 1));
        stack.push((li, left, depth + 1));
    }
    Tree { nodes }
}

fn best_split(
    rows: &[u32],
    bins: &[Vec<u8>],
    edges: &[Vec<f64>],
    g: &[f64],
    p: &GbmParams,
) -> Option<Split> {
    let total: f64 = rows.iter().map(|&i| g[i as usize]).sum();
    let n = rows.len();
    let parent = total * total / (n as f64 + p.lambda);
    let mut best: Option<Split> = None;
    for (f, e) in edges.iter().enumerate() {
        let nb = e.len() + 1;
        if nb < 2 {
            continue;
        }
        let mut hs = vec![0.0f64; nb];
        let mut hc = vec![0usize; nb];
        for &i in rows {
            let b = bins[i as usize][f] as usize;
            hs[b] += g[i as usize];
            hc[b] += 1;
        }
        let (mut sl, mut cl) = (0.0, 0usize);
        for b in 0..nb - 1 {
            sl += hs[b];
            cl += hc[b];
            let cr = n - cl;
            if cl < p.min_leaf {
                continue;
            }
            if cr < p.min_leaf {
                break;
            }
            let sr = total - sl;
            let gain = sl * sl / (cl as f64 + p.lambda) + sr * sr / (cr as f64 + p.lambda) - parent;
            // Strictly greater: ties keep the first feature and bin, so the choice is stable.
            if gain > 1e-9 && best.as_ref().is_none_or(|s| gain > s.gain) {
                best = Some(Split {
                    gain,
                    feature: f,
                    bin: b,
                });
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> GbmParams {
        GbmParams {
            trees: 60,
            learning_rate: 0.2,
            max_depth: 3,
            min_leaf: 5,
            lambda: 1.0,
            max_bins: 32,
            subsample: 0.8,
            seed: 7,
        }
    }

    #[test]
    fn learns_a_step_and_an_interaction() {
        let mut rng = SplitMix::new(1);
        let x: Vec<Vec<f64>> = (0..2000)
            .map(|_| vec![rng.next_f64(), rng.next_f64(), rng.next_f64()])
            .collect();
        let f = |r: &[f64]| {
            if r[0] > 0.5 {
                10.0
            } else {
                0.0
            }
        } + if r[1] > 0.3 && r[2] < 0.5 { 4.0 } else { 0.0 };
        let y: Vec<f64> = x.iter().map(|r| f(r)).collect();
        let m = fit(&x, &y, &params()).unwrap();
        let mae: f64 = x
            .iter()
            .zip(&y)
            .map(|(r, y)| (m.predict(r) - y).abs())
            .sum::<f64>()
            / 2000.0;
        assert!(mae < 0.3, "mae {mae}");
    }

    #[test]
    fn bins_split_between_distinct_values() {
        let x = vec![vec![1.0], vec![2.0], vec![2.0], vec![4.0]];
        assert_eq!(bin_edges(&x, 0, 8), vec![1.5, 3.0]);
        assert_eq!(bin_of(&[1.5, 3.0], 2.0), 1);
        assert_eq!(bin_of(&[1.5, 3.0], 1.5), 0);
        assert_eq!(bin_of(&[1.5, 3.0], 9.0), 2);
    }
}
