//! The 2-D test functions of the optimizer playground (hw5 task 2), each with
//! its analytic gradient.
//!
//! | name | f(x, y) | ∇f | minimum |
//! | --- | --- | --- | --- |
//! | `square_sum` | 5x² + y² | (10x, 2y) | (0, 0) |
//! | `complex_sum` | (x−3)² + 8(y−5)⁴ + √x + sin(xy) | (2(x−3) + 1/(2√x) + y·cos(xy), 32(y−5)³ + x·cos(xy)) | local, nearest (5, −2): ≈ (4.257977, 5.407900), found numerically |
//! | `rosenbrock` | (1−x)² + 100(y−x²)² | (−2(1−x) − 400x(y−x²), 200(y−x²)) | (1, 1) |
//! | `himmelblau` | (x²+y−11)² + (x+y²−7)² | (4x(x²+y−11) + 2(x+y²−7), 2(x²+y−11) + 4y(x+y²−7)) | (3, 2) and three more |
//!
//! `complex_sum` is only defined where `√x` is: its value needs `x ≥ 0` and
//! its gradient `x > 0`. Outside, [`Function2d::value`] and
//! [`Function2d::grad`] return [`Error::Domain`] naming the point, never NaN.
//!
//! ```
//! use nnlab::scratch::functions::Function2d;
//! let f: Function2d = "square_sum".parse().unwrap();
//! assert_eq!(f.value([1.0, 2.0]).unwrap(), 9.0);
//! assert_eq!(f.grad([1.0, 2.0]).unwrap(), [10.0, 4.0]);
//! assert!(Function2d::ComplexSum.value([-1.0, 0.0]).is_err());
//! ```

use crate::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// One of the playground functions; `"square_sum".parse()` works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function2d {
    /// f = 5x² + y²
    SquareSum,
    /// f = (x−3)² + 8(y−5)⁴ + √x + sin(xy), defined for x ≥ 0
    ComplexSum,
    /// f = (1−x)² + 100(y−x²)²
    Rosenbrock,
    /// f = (x²+y−11)² + (x+y²−7)²
    Himmelblau,
}

impl Function2d {
    /// Every function, in the order of the table above.
    pub const ALL: [Function2d; 4] = [
        Function2d::SquareSum,
        Function2d::ComplexSum,
        Function2d::Rosenbrock,
        Function2d::Himmelblau,
    ];

    /// The CLI name: `square_sum`, `complex_sum`, `rosenbrock`, `himmelblau`.
    pub fn name(self) -> &'static str {
        match self {
            Function2d::SquareSum => "square_sum",
            Function2d::ComplexSum => "complex_sum",
            Function2d::Rosenbrock => "rosenbrock",
            Function2d::Himmelblau => "himmelblau",
        }
    }

    /// The formula as text.
    pub fn formula(self) -> &'static str {
        match self {
            Function2d::SquareSum => "5x² + y²",
            Function2d::ComplexSum => "(x−3)² + 8(y−5)⁴ + √x + sin(xy)",
            Function2d::Rosenbrock => "(1−x)² + 100(y−x²)²",
            Function2d::Himmelblau => "(x²+y−11)² + (x+y²−7)²",
        }
    }

    /// The minimum the charts and tables measure distances to: the global one
    /// of `square_sum` (0, 0) and `rosenbrock` (1, 1), Himmelblau's (3, 2)
    /// (one of its four), and for `complex_sum` the local minimum nearest the
    /// course's start (5, −2), ≈ (4.257977, 5.407900) with f ≈ 3.007307,
    /// which has no closed form and is found numerically
    /// ([`complex_sum_minimum`]).
    pub fn minimum(self) -> [f64; 2] {
        match self {
            Function2d::SquareSum => [0.0, 0.0],
            Function2d::ComplexSum => complex_sum_minimum(),
            Function2d::Rosenbrock => [1.0, 1.0],
            Function2d::Himmelblau => [3.0, 2.0],
        }
    }

    /// Why `p` is outside the domain of the value (`None` when inside).
    pub fn outside_value_domain(self, [x, y]: [f64; 2]) -> Option<String> {
        if !x.is_finite() || !y.is_finite() {
            return Some("is not finite".into());
        }
        match self {
            Function2d::ComplexSum if x < 0.0 => Some("needs x ≥ 0 (√x)".into()),
            _ => None,
        }
    }

    /// Why `p` is outside the domain of the gradient (`None` when inside):
    /// `complex_sum`'s ∂f/∂x has 1/(2√x), so it needs x > 0.
    pub fn outside_grad_domain(self, [x, y]: [f64; 2]) -> Option<String> {
        if !x.is_finite() || !y.is_finite() {
            return Some("is not finite".into());
        }
        match self {
            Function2d::ComplexSum if x <= 0.0 => {
                Some("needs x > 0 (the gradient of √x is 1/(2√x))".into())
            }
            _ => None,
        }
    }

    /// f(p), or [`Error::Domain`] naming the point.
    pub fn value(self, p: [f64; 2]) -> Result<f64> {
        if let Some(why) = self.outside_value_domain(p) {
            return Err(self.domain_error(p, &why));
        }
        let [x, y] = p;
        Ok(match self {
            Function2d::SquareSum => 5.0 * x * x + y * y,
            Function2d::ComplexSum => {
                (x - 3.0).powi(2) + 8.0 * (y - 5.0).powi(4) + x.sqrt() + (x * y).sin()
            }
            Function2d::Rosenbrock => (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2),
            Function2d::Himmelblau => (x * x + y - 11.0).powi(2) + (x + y * y - 7.0).powi(2),
        })
    }

    /// ∇f(p) (formulas in the module table), or [`Error::Domain`].
    pub fn grad(self, p: [f64; 2]) -> Result<[f64; 2]> {
        if let Some(why) = self.outside_grad_domain(p) {
            return Err(self.domain_error(p, &why));
        }
        let [x, y] = p;
        Ok(match self {
            Function2d::SquareSum => [10.0 * x, 2.0 * y],
            Function2d::ComplexSum => [
                2.0 * (x - 3.0) + 0.5 / x.sqrt() + y * (x * y).cos(),
                32.0 * (y - 5.0).powi(3) + x * (x * y).cos(),
            ],
            Function2d::Rosenbrock => [
                -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
                200.0 * (y - x * x),
            ],
            Function2d::Himmelblau => {
                let a = x * x + y - 11.0;
                let b = x + y * y - 7.0;
                [4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b]
            }
        })
    }

    /// Central finite differences `(f(p + h·eᵢ) − f(p − h·eᵢ)) / 2h`.
    pub fn grad_fd(self, [x, y]: [f64; 2], h: f64) -> Result<[f64; 2]> {
        let gx = (self.value([x + h, y])? - self.value([x - h, y])?) / (2.0 * h);
        let gy = (self.value([x, y + h])? - self.value([x, y - h])?) / (2.0 * h);
        Ok([gx, gy])
    }

    /// The analytic gradient against central differences (h = 1e-6) at each
    /// point: columns `x, y, dfdx, dfdx_fd, dfdy, dfdy_fd, rel_error` with
    /// rel_error = max |g − g_fd| / max(|g|, |g_fd|, 1e-12) over both parts.
    pub fn gradient_check(self, points: &[[f64; 2]]) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::{Column, DataFrame};
        let mut rows: [Vec<f64>; 7] = Default::default();
        for &p in points {
            let g = self.grad(p)?;
            let fd = self.grad_fd(p, 1e-6)?;
            let rel = (0..2)
                .map(|i| (g[i] - fd[i]).abs() / g[i].abs().max(fd[i].abs()).max(1e-12))
                .fold(0.0, f64::max);
            for (col, v) in rows
                .iter_mut()
                .zip([p[0], p[1], g[0], fd[0], g[1], fd[1], rel])
            {
                col.push(v);
            }
        }
        let names = ["x", "y", "dfdx", "dfdx_fd", "dfdy", "dfdy_fd", "rel_error"];
        let cols = names
            .iter()
            .zip(rows)
            .map(|(n, v)| Column::new((*n).into(), v))
            .collect();
        Ok(DataFrame::new(points.len(), cols)?)
    }

    fn domain_error(self, [x, y]: [f64; 2], why: &str) -> Error {
        Error::Domain {
            what: format!("{} at point ({x}, {y}): {why}", self.name()),
        }
    }
}

/// The global minimum of `complex_sum` (x > 0), found numerically once and
/// cached. Outside the box x ∈ (0, 10], y ∈ [3, 7] the function exceeds
/// min((x−3)², 8(y−5)⁴) − 1 ≥ 48 (√x ≥ 0, sin ≥ −1), while inside it drops
/// below 1, so the minimum is in the box: a grid search with step 0.005
/// (2 000 × 800 points) finds the best cell, and Newton's method with the
/// analytic Hessian polishes it until |∇f| < 10⁻¹². Result ≈ (3.2622,
/// 5.2497), f ≈ 0.91772, the Hessian positive definite there. (A second,
/// local minimum at ≈ (4.2580, 5.4079), f ≈ 3.0073, is the one plain
/// gradient descent from the course's start (5, −2) falls into.)
pub fn complex_sum_minimum() -> [f64; 2] {
    static MIN: std::sync::OnceLock<[f64; 2]> = std::sync::OnceLock::new();
    *MIN.get_or_init(|| {
        let f = Function2d::ComplexSum;
        let norm = |g: [f64; 2]| g[0].hypot(g[1]);
        let mut p = [5.0, 5.0];
        let mut best = f64::INFINITY;
        for i in 1..=2000 {
            for j in 0..=800 {
                let q = [i as f64 * 0.005, 3.0 + j as f64 * 0.005];
                if let Ok(v) = f.value(q) {
                    if v < best {
                        best = v;
                        p = q;
                    }
                }
            }
        }
        for _ in 0..50 {
            let (Ok(g), [[a, b], [_, c]]) = (f.grad(p), complex_sum_hessian(p)) else {
                break;
            };
            if norm(g) < 1e-12 {
                break;
            }
            let det = a * c - b * b;
            p = [
                p[0] - (c * g[0] - b * g[1]) / det,
                p[1] - (a * g[1] - b * g[0]) / det,
            ];
        }
        p
    })
}

/// The Hessian of `complex_sum` at `(x, y)`, x > 0:
/// ∂²f/∂x² = 2 − x^(−3/2)/4 − y²·sin(xy), ∂²f/∂x∂y = cos(xy) − xy·sin(xy),
/// ∂²f/∂y² = 96(y−5)² − x²·sin(xy).
pub fn complex_sum_hessian([x, y]: [f64; 2]) -> [[f64; 2]; 2] {
    let (s, c) = (x * y).sin_cos();
    let hxx = 2.0 - 0.25 * x.powf(-1.5) - y * y * s;
    let hxy = c - x * y * s;
    let hyy = 96.0 * (y - 5.0).powi(2) - x * x * s;
    [[hxx, hxy], [hxy, hyy]]
}

impl fmt::Display for Function2d {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Function2d {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Function2d::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                Error::config(
                    "function",
                    format!("`{s}`: expected square_sum, complex_sum, rosenbrock or himmelblau"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gradient_check_table_agrees_and_reports_domain_errors() -> crate::TestResult {
        let f = super::Function2d::ComplexSum;
        let df = f.gradient_check(&[[5.0, -2.0], [1.0, 4.0]])?;
        assert_eq!(df.height(), 2);
        let rel = df.column("rel_error")?.f64()?;
        assert!(rel.into_no_null_iter().all(|e| e < 1e-6), "{df}");
        let e = f.gradient_check(&[[-1.0, 0.0]]).unwrap_err().to_string();
        assert!(e.contains("complex_sum") && e.contains("x > 0"), "{e}");
        Ok(())
    }
    use super::*;

    #[test]
    fn analytic_gradients_match_finite_differences() -> crate::TestResult {
        let points = [
            [5.0, 5.0],
            [5.0, -2.0],
            [0.7, 1.3],
            [-1.2, 1.0],
            [3.0, 2.0],
            [2.5, 4.5],
            [0.3, -0.8],
        ];
        for f in Function2d::ALL {
            for p in points {
                if f.outside_grad_domain([p[0] - 1e-4, p[1]]).is_some() {
                    continue;
                }
                let g = f.grad(p)?;
                let n = f.grad_fd(p, 1e-5)?;
                for i in 0..2 {
                    // |error| ≤ 1e-6·max(1, |g|): relative where g is large, absolute near a minimum
                    let tol = 1e-6 * g[i].abs().max(1.0);
                    assert!(
                        (g[i] - n[i]).abs() < tol,
                        "{f} at {p:?}: analytic {g:?} vs fd {n:?}"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn minima_have_zero_gradient() -> crate::TestResult {
        for f in [
            Function2d::SquareSum,
            Function2d::Rosenbrock,
            Function2d::Himmelblau,
        ] {
            let m = f.minimum();
            assert_eq!(f.grad(m)?, [0.0, 0.0], "{f}");
            assert_eq!(f.value(m)?, 0.0, "{f}");
        }
        // Himmelblau's other minimum
        let v = Function2d::Himmelblau.value([-2.805118, 3.131312])?;
        assert!(v < 1e-10, "{v}");
        Ok(())
    }

    #[test]
    fn complex_sum_minimum_is_the_global_minimum_below_the_course_runs() -> crate::TestResult {
        use crate::scratch::optim2d::Optimizer2d;
        let f = Function2d::ComplexSum;
        let m = f.minimum();
        assert!(
            (m[0] - 3.26222).abs() < 1e-4 && (m[1] - 5.24965).abs() < 1e-4,
            "{m:?}"
        );
        let g = f.grad(m)?;
        assert!(g[0].hypot(g[1]) < 1e-10, "gradient {g:?} at {m:?}");
        let [[a, b], [_, c]] = complex_sum_hessian(m);
        assert!(
            a > 0.0 && a * c - b * b > 0.0,
            "Hessian not positive definite: {a} {b} {c}"
        );
        // The Hessian agrees with central differences of the gradient.
        let h = 1e-6;
        let gx = f.grad([m[0] + h, m[1]])?;
        let gx0 = f.grad([m[0] - h, m[1]])?;
        assert!(((gx[0] - gx0[0]) / (2.0 * h) - a).abs() < 1e-4);
        assert!(((gx[1] - gx0[1]) / (2.0 * h) - b).abs() < 1e-4);
        let fm = f.value(m)?;
        assert!((fm - 0.917716).abs() < 1e-5, "{fm}");
        // Below the other local minimum, and below every point of a fine grid.
        assert!(fm < f.value([4.2579766, 5.4078997])?);
        for i in 1..=400 {
            for j in 0..=400 {
                let q = [i as f64 * 0.025, 3.0 + j as f64 * 0.01];
                assert!(fm <= f.value(q)?, "{q:?}");
            }
        }
        // Below every point of the course's five runs (06: 100 steps from (5, −2)),
        // with torch's rules and with the original's.
        let runs = [
            Optimizer2d::sgd(0.0002),
            Optimizer2d::momentum(0.0002, 0.7),
            Optimizer2d::adagrad(0.1).eps(1e-6),
            Optimizer2d::rmsprop(0.1).alpha(0.9).eps(1e-6),
            Optimizer2d::adam(0.1).betas(0.9, 0.9).eps(1e-6),
        ];
        for o in runs.into_iter().flat_map(|o| [o, o.course()]) {
            let t = o.run(f, [5.0, -2.0], 100)?;
            let lowest = t.values.iter().copied().fold(f64::INFINITY, f64::min);
            assert!(
                fm < lowest,
                "{}: reaches {lowest} < f(minimum) {fm}",
                o.label()
            );
        }
        Ok(())
    }

    #[test]
    fn domain_is_an_error_not_nan() {
        let f = Function2d::ComplexSum;
        let e = f.value([-0.5, 1.0]).unwrap_err().to_string();
        assert!(
            e.contains("complex_sum") && e.contains("(-0.5, 1)") && e.contains("x ≥ 0"),
            "{e}"
        );
        assert!(f.value([0.0, 1.0]).is_ok());
        let e = f.grad([0.0, 1.0]).unwrap_err().to_string();
        assert!(e.contains("x > 0"), "{e}");
        assert!(Function2d::SquareSum.value([f64::NAN, 0.0]).is_err());
        let e = "booth".parse::<Function2d>().unwrap_err().to_string();
        assert!(e.contains("function") && e.contains("booth"), "{e}");
    }
}
