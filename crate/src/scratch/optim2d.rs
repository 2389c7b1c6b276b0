//! Hand-written optimizers on a 2-D function (hw5 task 2): SGD, Momentum,
//! Adagrad, RMSprop, Adam, producing a [`Trajectory`] (every point from the
//! start, the value and the gradient norm at each).
//!
//! Default rules are torch.optim's (`Rule::Torch`), g = ∇f(pₜ), t = 1, 2, …:
//!
//! | optimizer | state update | step |
//! | --- | --- | --- |
//! | SGD | — | p ← p − lr·g |
//! | Momentum (torch SGD momentum, dampening 0) | b ← μ·b + g (b₁ = g) | p ← p − lr·b |
//! | Adagrad | s ← s + g² | p ← p − lr·g / (√s + ε) |
//! | RMSprop | s ← α·s + (1−α)·g² | p ← p − lr·g / (√s + ε) |
//! | Adam | m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g² | p ← p − (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε) |
//!
//! Defaults (torch's): Adagrad ε = 1e-10; RMSprop α = 0.99, ε = 1e-8;
//! Adam β = (0.9, 0.999), ε = 1e-8; Momentum μ = 0.9 (the course's value:
//! torch's SGD has μ = 0, which is plain SGD).
//!
//! `Rule::Course` reproduces the course notebook instead: Adagrad and RMSprop
//! divide by √(s + ε) (ε inside the root), and Adam steps with the
//! *uncorrected* moments, p ← p − lr·m / (√v + ε) (the notebook computes the
//! bias-corrected `scaled_m`/`scaled_v` and never uses them, so its first steps
//! are ~10× too short). Its Momentum `v ← μv − lr·g, p ← p + v` is torch's rule
//! scaled by −lr, the same trajectory; SGD is identical.
//!
//! ```
//! use nnlab::scratch::{functions::Function2d, optim2d::Optimizer2d};
//! let t = Optimizer2d::adam(0.1).run(Function2d::SquareSum, [5.0, 5.0], 100).unwrap();
//! assert_eq!(t.points.len(), 101); // the start and 100 steps
//! assert!(t.values[100] < t.values[0]);
//! ```

use super::functions::Function2d;
use crate::{Error, Result};
use polars::prelude::*;
use std::str::FromStr;

/// Which update rules: torch.optim's (default) or the course notebook's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Rule {
    /// torch.optim: eps outside the square root, Adam bias-corrected.
    #[default]
    Torch,
    /// The course notebook: eps inside the square root, Adam uncorrected.
    Course,
}

/// The optimizer kinds, by CLI name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sgd,
    Momentum,
    Adagrad,
    RmsProp,
    Adam,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Sgd,
        Kind::Momentum,
        Kind::Adagrad,
        Kind::RmsProp,
        Kind::Adam,
    ];

    /// `sgd`, `momentum`, `adagrad`, `rmsprop`, `adam`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sgd => "sgd",
            Kind::Momentum => "momentum",
            Kind::Adagrad => "adagrad",
            Kind::RmsProp => "rmsprop",
            Kind::Adam => "adam",
        }
    }
}

impl FromStr for Kind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                Error::config(
                    "optimizer",
                    format!("`{s}`: expected sgd, momentum, adagrad, rmsprop or adam"),
                )
            })
    }
}

/// An optimizer with its hyperparameters; fields unused by a kind are ignored
/// (`momentum` only for Momentum, `alpha` only for RMSprop, betas only for Adam).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimizer2d {
    pub kind: Kind,
    pub lr: f64,
    /// μ of Momentum.
    pub momentum: f64,
    /// α of RMSprop (torch's name; the course calls it μ).
    pub alpha: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub rule: Rule,
}

impl Optimizer2d {
    /// `kind` with learning rate `lr` and torch's defaults for the rest.
    pub fn new(kind: Kind, lr: f64) -> Self {
        let eps = if kind == Kind::Adagrad { 1e-10 } else { 1e-8 };
        Optimizer2d {
            kind,
            lr,
            momentum: 0.9,
            alpha: 0.99,
            beta1: 0.9,
            beta2: 0.999,
            eps,
            rule: Rule::Torch,
        }
    }
    pub fn sgd(lr: f64) -> Self {
        Self::new(Kind::Sgd, lr)
    }
    pub fn momentum(lr: f64, momentum: f64) -> Self {
        Optimizer2d {
            momentum,
            ..Self::new(Kind::Momentum, lr)
        }
    }
    pub fn adagrad(lr: f64) -> Self {
        Self::new(Kind::Adagrad, lr)
    }
    pub fn rmsprop(lr: f64) -> Self {
        Self::new(Kind::RmsProp, lr)
    }
    pub fn adam(lr: f64) -> Self {
        Self::new(Kind::Adam, lr)
    }
    /// The same optimizer with ε = `eps`.
    pub fn eps(self, eps: f64) -> Self {
        Optimizer2d { eps, ..self }
    }
    /// The same optimizer with RMSprop's decay α (the course's μ).
    pub fn alpha(self, alpha: f64) -> Self {
        Optimizer2d { alpha, ..self }
    }
    /// The same optimizer with Adam's decays (β₁ for m, β₂ for v; the course
    /// calls them β and μ).
    pub fn betas(self, beta1: f64, beta2: f64) -> Self {
        Optimizer2d {
            beta1,
            beta2,
            ..self
        }
    }
    /// A short label: `Adam(lr=0.1)`, with `, course` for the course's rules.
    pub fn label(&self) -> String {
        let rule = if self.rule == Rule::Course {
            ", course"
        } else {
            ""
        };
        format!("{}(lr={}{rule})", self.kind.name(), self.lr)
    }

    /// The same optimizer with the course's rules (see the module doc).
    pub fn course(self) -> Self {
        Optimizer2d {
            rule: Rule::Course,
            ..self
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let check = |name: &str, v: f64, ok: bool, what: &str| {
            if v.is_finite() && ok {
                Ok(())
            } else {
                Err(Error::config(name, format!("{v}: expected {what}")))
            }
        };
        check("lr", self.lr, self.lr > 0.0, "a positive number")?;
        check(
            "momentum",
            self.momentum,
            (0.0..1.0).contains(&self.momentum),
            "0 ≤ momentum < 1",
        )?;
        check(
            "alpha",
            self.alpha,
            (0.0..1.0).contains(&self.alpha),
            "0 ≤ alpha < 1",
        )?;
        check(
            "beta1",
            self.beta1,
            (0.0..1.0).contains(&self.beta1),
            "0 ≤ beta1 < 1",
        )?;
        check(
            "beta2",
            self.beta2,
            (0.0..1.0).contains(&self.beta2),
            "0 ≤ beta2 < 1",
        )?;
        check("eps", self.eps, self.eps >= 0.0, "eps ≥ 0")
    }

    /// Runs `steps` updates from `start` on `f`. Leaving the domain of `f`
    /// is [`Error::Domain`] naming the step and the point.
    pub fn run(&self, f: Function2d, start: [f64; 2], steps: usize) -> Result<Trajectory> {
        self.validate()?;
        let at = |t: usize, e: Error| match e {
            Error::Domain { what } => Error::Domain {
                what: format!(
                    "{} {} step {t}: {what}",
                    self.kind.name(),
                    rule_name(self.rule)
                ),
            },
            e => e,
        };
        let mut p = start;
        let mut points = vec![p];
        let mut values = vec![f.value(p).map_err(|e| at(0, e))?];
        let mut g = f.grad(p).map_err(|e| at(0, e))?;
        let mut grad_norms = vec![norm(g)];
        // state: b (momentum) / s (adagrad, rmsprop) / m, v (adam)
        let mut s1 = [0.0f64; 2];
        let mut s2 = [0.0f64; 2];
        for t in 1..=steps {
            for i in 0..2 {
                p[i] = self.update(t, p[i], g[i], &mut s1[i], &mut s2[i]);
            }
            points.push(p);
            values.push(f.value(p).map_err(|e| at(t, e))?);
            // the gradient at the last point is reported too (its norm)
            g = f.grad(p).map_err(|e| at(t, e))?;
            grad_norms.push(norm(g));
        }
        Ok(Trajectory {
            function: f,
            optimizer: *self,
            points,
            values,
            grad_norms,
        })
    }

    /// One coordinate of step `t` (1-based); the formulas of the module table,
    /// written in torch's operation order so that f64 results agree bit-for-bit
    /// or nearly so.
    pub(crate) fn update(&self, t: usize, p: f64, g: f64, s1: &mut f64, s2: &mut f64) -> f64 {
        let lr = self.lr;
        let course = self.rule == Rule::Course;
        match self.kind {
            Kind::Sgd => p - lr * g,
            Kind::Momentum => {
                *s1 = if t == 1 { g } else { self.momentum * *s1 + g };
                p - lr * *s1
            }
            Kind::Adagrad => {
                *s1 += g * g;
                let denom = if course {
                    (*s1 + self.eps).sqrt()
                } else {
                    s1.sqrt() + self.eps
                };
                p - lr * (g / denom)
            }
            Kind::RmsProp => {
                *s1 = self.alpha * *s1 + (1.0 - self.alpha) * g * g;
                let denom = if course {
                    (*s1 + self.eps).sqrt()
                } else {
                    s1.sqrt() + self.eps
                };
                p - lr * (g / denom)
            }
            Kind::Adam => {
                // torch: exp_avg.lerp_(grad, 1 - beta1)
                *s1 += (1.0 - self.beta1) * (g - *s1);
                *s2 = self.beta2 * *s2 + (1.0 - self.beta2) * g * g;
                if course {
                    p - lr * (*s1 / (s2.sqrt() + self.eps))
                } else {
                    let bc1 = 1.0 - self.beta1.powi(t as i32);
                    let bc2 = 1.0 - self.beta2.powi(t as i32);
                    let step_size = lr / bc1;
                    let denom = s2.sqrt() / bc2.sqrt() + self.eps;
                    p - step_size * (*s1 / denom)
                }
            }
        }
    }
}

fn rule_name(r: Rule) -> &'static str {
    match r {
        Rule::Torch => "(torch rule)",
        Rule::Course => "(course rule)",
    }
}

fn norm([a, b]: [f64; 2]) -> f64 {
    a.hypot(b)
}

/// Where an optimizer went: `points[0]` is the start, `points[t]` the point
/// after step t; `values[t] = f(points[t])`, `grad_norms[t] = |∇f(points[t])|`.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    pub function: Function2d,
    pub optimizer: Optimizer2d,
    pub points: Vec<[f64; 2]>,
    pub values: Vec<f64>,
    pub grad_norms: Vec<f64>,
}

impl Trajectory {
    /// Number of steps taken (`points.len() − 1`).
    pub fn steps(&self) -> usize {
        self.points.len() - 1
    }

    /// Euclidean distance of every point to `target` (e.g. the minimum).
    pub fn distances_to(&self, target: [f64; 2]) -> Vec<f64> {
        self.points
            .iter()
            .map(|p| (p[0] - target[0]).hypot(p[1] - target[1]))
            .collect()
    }

    /// Columns `step, x, y, value, grad_norm`.
    pub fn to_dataframe(&self) -> Result<DataFrame> {
        let n = self.points.len();
        let cols = vec![
            Column::new("step".into(), (0..n as u64).collect::<Vec<_>>()),
            Column::new(
                "x".into(),
                self.points.iter().map(|p| p[0]).collect::<Vec<_>>(),
            ),
            Column::new(
                "y".into(),
                self.points.iter().map(|p| p[1]).collect::<Vec<_>>(),
            ),
            Column::new("value".into(), self.values.clone()),
            Column::new("grad_norm".into(), self.grad_norms.clone()),
        ];
        Ok(DataFrame::new(n, cols)?)
    }
}

/// One row per run: `optimizer`, final `x`, `y`, `value`, `distance` to
/// [`Function2d::minimum`] (for `complex_sum` the numerically found local
/// minimum nearest (5, −2)) and
/// `steps_to_0.1` (first step within 0.1 of it, null when never).
pub fn compare(runs: &[Trajectory]) -> Result<DataFrame> {
    let Some(first) = runs.first() else {
        return Err(Error::config("runs", "expected at least one trajectory"));
    };
    let target = first.function.minimum();
    let last = |t: &Trajectory| *t.points.last().unwrap_or(&t.points[0]);
    let reach: Vec<Option<u64>> = runs
        .iter()
        .map(|t| {
            t.distances_to(target)
                .iter()
                .position(|d| *d < 0.1)
                .map(|i| i as u64)
        })
        .collect();
    let cols = vec![
        Column::new(
            "optimizer".into(),
            runs.iter().map(|t| t.optimizer.label()).collect::<Vec<_>>(),
        ),
        Column::new(
            "x".into(),
            runs.iter().map(|t| last(t)[0]).collect::<Vec<_>>(),
        ),
        Column::new(
            "y".into(),
            runs.iter().map(|t| last(t)[1]).collect::<Vec<_>>(),
        ),
        Column::new(
            "value".into(),
            runs.iter()
                .map(|t| *t.values.last().unwrap_or(&f64::NAN))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "distance".into(),
            runs.iter()
                .map(|t| *t.distances_to(target).last().unwrap_or(&f64::NAN))
                .collect::<Vec<_>>(),
        ),
        Column::new("steps_to_0.1".into(), reach),
    ];
    Ok(DataFrame::new(runs.len(), cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_names_runs_and_measures_distance() -> crate::TestResult {
        let f = Function2d::SquareSum;
        let runs = vec![
            Optimizer2d::sgd(0.05).run(f, [5.0, 5.0], 100)?,
            Optimizer2d::adam(0.1)
                .betas(0.9, 0.9)
                .eps(1e-6)
                .course()
                .run(f, [5.0, 5.0], 3)?,
        ];
        let df = compare(&runs)?;
        assert_eq!(df.height(), 2);
        let col = df.column("optimizer")?.str()?.clone();
        let names: Vec<&str> = (0..2).map(|i| col.get(i).unwrap()).collect();
        assert_eq!(names, ["sgd(lr=0.05)", "adam(lr=0.1, course)"]);
        // SGD at lr 0.05: y shrinks by 0.9 per step → 5·0.9¹⁰⁰ ≈ 1.3e-4 from the minimum.
        let d = df
            .column("distance")?
            .f64()?
            .get(0)
            .ok_or("empty or null column")?;
        assert!((d - 5.0 * 0.9f64.powi(100)).abs() < 1e-9, "{d}");
        // y < 0.1 first when 5·0.9ᵗ < 0.1 → t = 38 (x is faster: factor 0.5).
        assert_eq!(df.column("steps_to_0.1")?.u64()?.get(0), Some(38));
        assert_eq!(df.column("steps_to_0.1")?.u64()?.get(1), None);
        assert!(compare(&[]).is_err());
        Ok(())
    }

    #[test]
    fn sgd_on_square_sum_is_geometric() -> crate::TestResult {
        // p ← p − lr·(10x, 2y): x shrinks by (1 − 10·lr), y by (1 − 2·lr)
        let t = Optimizer2d::sgd(0.05).run(Function2d::SquareSum, [5.0, 5.0], 10)?;
        assert_eq!(t.points.len(), 11);
        assert_eq!(t.points[0], [5.0, 5.0]);
        assert!((t.points[10][0] - 5.0 * 0.5f64.powi(10)).abs() < 1e-12);
        assert!((t.points[10][1] - 5.0 * 0.9f64.powi(10)).abs() < 1e-12);
        assert_eq!(t.values.len(), 11);
        assert!((t.grad_norms[0] - (50.0f64).hypot(10.0)).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn adam_first_step_is_lr_in_each_coordinate() -> crate::TestResult {
        // with bias correction the first Adam step is lr·sign(g) (up to eps)
        let t = Optimizer2d::adam(0.1).run(Function2d::SquareSum, [5.0, -5.0], 1)?;
        assert!(
            (t.points[1][0] - 4.9).abs() < 1e-8 && (t.points[1][1] + 4.9).abs() < 1e-8,
            "{:?}",
            t.points
        );
        // the course's uncorrected Adam steps lr·(1−β₁)/√(1−β₂) ≈ 0.316·lr
        let c = Optimizer2d::adam(0.1)
            .course()
            .run(Function2d::SquareSum, [5.0, -5.0], 1)?;
        let expect = 0.1 * 0.1 / 0.001f64.sqrt();
        assert!(
            (5.0 - c.points[1][0] - expect).abs() < 1e-6,
            "{:?}",
            c.points
        );
        Ok(())
    }

    #[test]
    fn course_momentum_is_torch_momentum() -> crate::TestResult {
        // the course: v ← μv − lr·g, p ← p + v
        let lr = 0.01;
        let mu = 0.9;
        let f = Function2d::Himmelblau;
        let t = Optimizer2d::momentum(lr, mu).run(f, [0.0, 0.0], 50)?;
        let (mut p, mut v) = ([0.0f64, 0.0], [0.0f64, 0.0]);
        for _ in 0..50 {
            let g = f.grad(p)?;
            for i in 0..2 {
                v[i] = mu * v[i] - lr * g[i];
                p[i] += v[i];
            }
        }
        assert!((t.points[50][0] - p[0]).abs() < 1e-9 && (t.points[50][1] - p[1]).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn leaving_the_domain_names_step_and_point() {
        let e = Optimizer2d::sgd(0.5)
            .run(Function2d::ComplexSum, [0.1, 10.0], 10)
            .unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, Error::Domain { .. }), "{s}");
        assert!(
            s.contains("sgd") && s.contains("step 1") && s.contains("complex_sum at point (-"),
            "{s}"
        );
    }

    #[test]
    fn bad_hyperparameters_are_config_errors() {
        let e = Optimizer2d::sgd(-1.0)
            .run(Function2d::SquareSum, [1.0, 1.0], 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lr") && e.contains("-1"), "{e}");
        let e = Optimizer2d {
            beta2: 1.0,
            ..Optimizer2d::adam(0.1)
        }
        .run(Function2d::SquareSum, [1.0, 1.0], 1);
        assert!(e.unwrap_err().to_string().contains("beta2"));
        assert!("lbfgs"
            .parse::<Kind>()
            .unwrap_err()
            .to_string()
            .contains("lbfgs"));
    }

    #[test]
    fn trajectory_table() -> crate::TestResult {
        let t = Optimizer2d::rmsprop(0.1).run(Function2d::Rosenbrock, [-1.0, 2.0], 20)?;
        let df = t.to_dataframe()?;
        assert_eq!(df.shape(), (21, 5));
        assert_eq!(t.distances_to([1.0, 1.0]).len(), 21);
        Ok(())
    }
}
