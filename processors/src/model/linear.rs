//! Ridge regression on standardised features (the normal equations, solved by Gaussian
//! elimination with partial pivoting), and the small least-squares and logistic fits the
//! ensemble and the calibration use. Pure arithmetic in a fixed order.

use serde::{Deserialize, Serialize};

/// `y = intercept + sum(coef[j] * (x[j] - mean[j]) / scale[j])`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ridge {
    /// Per-feature mean.
    pub mean: Vec<f64>,
    /// Per-feature standard deviation (1 for a constant feature).
    pub scale: Vec<f64>,
    /// Coefficients on the standardised features.
    pub coef: Vec<f64>,
    /// The mean of the targets.
    pub intercept: f64,
}

impl Ridge {
    /// The prediction for one row.
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.intercept
            + self
                .coef
                .iter()
                .zip(&self.mean)
                .zip(&self.scale)
                .zip(x)
                .map(|(((c, m), s), v)| c * (v - m) / s)
                .sum::<f64>()
    }
}

/// Solves `a x = b` (a square); `None` when singular.
pub fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let mut piv = col;
        for r in col + 1..n {
            if a[r][col].abs() > a[piv][col].abs() {
                piv = r;
            }
        }
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot = &top[col];
        for (k, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot[col];
            if f != 0.0 {
                for (x, p) in row[col..].iter_mut().zip(&pivot[col..]) {
                    *x -= f * p;
                }
                b[col + 1 + k] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|c| a[r][c] * x[c]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Some(x)
}

/// Ridge regression with penalty `alpha` per standardised coefficient (times the row count,
/// so the penalty does not fade as the season grows).
pub fn fit_ridge(x: &[Vec<f64>], y: &[f64], alpha: f64) -> Result<Ridge, String> {
    let n = x.len();
    if n == 0 || y.len() != n {
        return Err(format!("ridge: {n} rows and {} targets", y.len()));
    }
    let nf = x[0].len();
    let nn = n as f64;
    let mean: Vec<f64> = (0..nf)
        .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / nn)
        .collect();
    let scale: Vec<f64> = (0..nf)
        .map(|j| {
            let v = x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / nn;
            if v > 1e-12 { v.sqrt() } else { 1.0 }
        })
        .collect();
    let ym = y.iter().sum::<f64>() / nn;
    let mut a = vec![vec![0.0; nf]; nf];
    let mut b = vec![0.0; nf];
    let mut z = vec![0.0; nf];
    for (r, yv) in x.iter().zip(y) {
        for j in 0..nf {
            z[j] = (r[j] - mean[j]) / scale[j];
        }
        for j in 0..nf {
            b[j] += z[j] * (yv - ym);
            for k in 0..nf {
                a[j][k] += z[j] * z[k];
            }
        }
    }
    for (j, row) in a.iter_mut().enumerate() {
        row[j] += alpha * nn;
    }
    let coef = solve(a, b).ok_or("ridge: singular system")?;
    Ok(Ridge {
        mean,
        scale,
        coef,
        intercept: ym,
    })
}

/// Ordinary least squares with an intercept (first coefficient) and a tiny ridge for stability.
pub fn least_squares(x: &[Vec<f64>], y: &[f64]) -> Option<Vec<f64>> {
    let nf = x.first()?.len() + 1;
    let mut a = vec![vec![0.0; nf]; nf];
    let mut b = vec![0.0; nf];
    for (r, yv) in x.iter().zip(y) {
        let z: Vec<f64> = std::iter::once(1.0).chain(r.iter().copied()).collect();
        for j in 0..nf {
            b[j] += z[j] * yv;
            for k in 0..nf {
                a[j][k] += z[j] * z[k];
            }
        }
    }
    for (j, row) in a.iter_mut().enumerate().skip(1) {
        row[j] += 1e-6 * x.len() as f64;
    }
    solve(a, b)
}

/// The logistic function.
pub fn sigmoid(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}

/// Logistic regression `P(y) = sigmoid(a + b z)` by Newton's method (a small ridge on `b`
/// keeps it finite when the classes separate). Returns `(a, b)`.
pub fn fit_logistic(z: &[f64], y: &[bool], start: (f64, f64)) -> (f64, f64) {
    let (mut a, mut b) = start;
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (zi, yi) in z.iter().zip(y) {
            let p = sigmoid(a + b * zi);
            let d = f64::from(u8::from(*yi)) - p;
            let w = p * (1.0 - p);
            ga += d;
            gb += d * zi;
            haa += w;
            hab += w * zi;
            hbb += w * zi * zi;
        }
        gb -= 1e-3 * b;
        hbb += 1e-3;
        haa += 1e-9;
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a += da;
        b += db;
        if da.abs() + db.abs() < 1e-10 {
            break;
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_recovers_a_linear_relationship() {
        let x: Vec<Vec<f64>> = (0..200)
            .map(|i| vec![f64::from(i % 17), f64::from(i % 5)])
            .collect();
        let y: Vec<f64> = x.iter().map(|r| 3.0 + 2.0 * r[0] - 1.5 * r[1]).collect();
        let m = fit_ridge(&x, &y, 0.0).unwrap();
        assert!((m.predict(&[4.0, 2.0]) - 8.0).abs() < 1e-9);
    }

    #[test]
    fn least_squares_has_the_intercept_first() {
        let x: Vec<Vec<f64>> = (0..50).map(|i| vec![f64::from(i)]).collect();
        let y: Vec<f64> = x.iter().map(|r| 1.0 + 0.5 * r[0]).collect();
        let w = least_squares(&x, &y).unwrap();
        assert!(
            (w[0] - 1.0).abs() < 1e-3 && (w[1] - 0.5).abs() < 1e-4,
            "{w:?}"
        );
    }

    #[test]
    fn logistic_recovers_its_parameters() {
        let mut rng = super::super::gbm::SplitMix::new(3);
        let z: Vec<f64> = (0..20000).map(|_| rng.next_f64() * 4.0 - 2.0).collect();
        let y: Vec<bool> = z
            .iter()
            .map(|z| rng.next_f64() < sigmoid(0.3 + 1.2 * z))
            .collect();
        let (a, b) = fit_logistic(&z, &y, (0.0, 1.0));
        assert!((a - 0.3).abs() < 0.06 && (b - 1.2).abs() < 0.08, "{a} {b}");
    }
}
