//! The 2-D test functions of the optimizer playground (hw5 task 2), each with
//! its analytic gradient.
//!
//! | name | f(x, y) | ∇f | minimum |
//! | --- | --- | --- | --- |
//! | `square_sum` | 5x² + y² | (10x, 2y) | (0, 0) |
//! | `complex_sum` | (x−3)² + 8(y−5)⁴ + √x + sin(xy) | (2(x−3) + 1/(2√x) + y·cos(xy), 32(y−5)³ + x·cos(xy)) | local, x > 0 |
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

    /// A global minimum (for `complex_sum`, the local one nearest the
    /// course's start (5, −2) is not known in closed form: `None`).
    pub fn minimum(self) -> Option<[f64; 2]> {
        match self {
            Function2d::SquareSum => Some([0.0, 0.0]),
            Function2d::ComplexSum => None,
            Function2d::Rosenbrock => Some([1.0, 1.0]),
            Function2d::Himmelblau => Some([3.0, 2.0]),
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
            for (col, v) in rows.iter_mut().zip([p[0], p[1], g[0], fd[0], g[1], fd[1], rel]) {
                col.push(v);
            }
        }
        let names = ["x", "y", "dfdx", "dfdx_fd", "dfdy", "dfdy_fd", "rel_error"];
        let cols = names.iter().zip(rows).map(|(n, v)| Column::new((*n).into(), v)).collect();
        Ok(DataFrame::new(points.len(), cols)?)
    }

    fn domain_error(self, [x, y]: [f64; 2], why: &str) -> Error {
        Error::Domain {
            what: format!("{} at point ({x}, {y}): {why}", self.name()),
        }
    }
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
    fn gradient_check_table_agrees_and_reports_domain_errors() {
        let f = super::Function2d::ComplexSum;
        let df = f.gradient_check(&[[5.0, -2.0], [1.0, 4.0]]).unwrap();
        assert_eq!(df.height(), 2);
        let rel = df.column("rel_error").unwrap().f64().unwrap();
        assert!(rel.into_no_null_iter().all(|e| e < 1e-6), "{df}");
        let e = f.gradient_check(&[[-1.0, 0.0]]).unwrap_err().to_string();
        assert!(e.contains("complex_sum") && e.contains("x > 0"), "{e}");
    }
    use super::*;

    #[test]
    fn analytic_gradients_match_finite_differences() {
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
                let g = f.grad(p).unwrap();
                let n = f.grad_fd(p, 1e-5).unwrap();
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
    }

    #[test]
    fn minima_have_zero_gradient() {
        for f in Function2d::ALL {
            if let Some(m) = f.minimum() {
                assert_eq!(f.grad(m).unwrap(), [0.0, 0.0], "{f}");
                assert_eq!(f.value(m).unwrap(), 0.0, "{f}");
            }
        }
        // Himmelblau's other minimum
        let v = Function2d::Himmelblau.value([-2.805118, 3.131312]).unwrap();
        assert!(v < 1e-10, "{v}");
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
