//! A student's own 2-D optimizer (hw5 task 2): the [`Step2d`] trait a
//! notebook cell implements, [`run`] (its trajectory on a playground
//! function) and [`check`] (its steps against the reference
//! [`Optimizer2d`], torch.optim's rules).
//!
//! A student's optimizer is a plain struct holding its hyperparameters and
//! its state (velocity, sums of squares, moments, step counter); `step`
//! takes the point p = xₜ and the gradient g = ∇f(xₜ) and returns xₜ₊₁.
//! `reference` says which reference optimizer it must agree with.
//!
//! [`check`] feeds the student's optimizer and the reference the same
//! 40 gradients (per coordinate from 10⁻³ to 10², growing in x and falling
//! in y, signs changing: small gradients on a small state are where ε inside
//! or outside the root differs), each step from the reference's point, and
//! compares the returned points: a step agrees when
//! |got − expected| ≤ 10⁻⁹·|expected − p| + 4ε_f64·max(|p|, |expected|).
//! The verdict names the first mismatch (optimizer, step, coordinate,
//! expected, got, the step's input) and says when the student's point is the
//! course notebook's rule instead (ε under the root; Adam's uncorrected
//! moments). A `todo!()` is "not implemented", a panic or NaN "failed";
//! nothing panics.
//!
//! ```
//! use nnlab::scratch::optim2d::Optimizer2d;
//! use nnlab::scratch::step2d::{check, run, Step2d};
//! use nnlab::scratch::functions::Function2d;
//! struct MySgd { lr: f64 }
//! impl Step2d for MySgd {
//!     fn reference(&self) -> Optimizer2d { Optimizer2d::sgd(self.lr) }
//!     fn step(&mut self, p: [f64; 2], g: [f64; 2]) -> [f64; 2] {
//!         [p[0] - self.lr * g[0], p[1] - self.lr * g[1]]
//!     }
//! }
//! assert!(check(&mut MySgd { lr: 0.1 }).is_passed());
//! let t = run(&mut MySgd { lr: 0.05 }, Function2d::SquareSum, [5.0, 5.0], 10).unwrap();
//! assert_eq!(t, Optimizer2d::sgd(0.05).run(Function2d::SquareSum, [5.0, 5.0], 10).unwrap());
//! ```

use super::functions::Function2d;
use super::optim2d::{Kind, Optimizer2d, Trajectory};
use super::verdict::{catch, Verdict};
use crate::{Error, Result};

/// An optimizer written in a notebook cell. Object-safe: checks and runs
/// take `&mut dyn Step2d`.
pub trait Step2d {
    /// The reference optimizer (kind and hyperparameters) this one must
    /// agree with; also its label in tables and charts.
    fn reference(&self) -> Optimizer2d;
    /// One step: from the point `p` with the gradient `g` = ∇f(p), the next
    /// point. Called for t = 1, 2, … in order; the state lives in `self`.
    fn step(&mut self, p: [f64; 2], g: [f64; 2]) -> [f64; 2];
}

/// Steps in [`check`].
pub const CHECK_STEPS: usize = 40;

/// Where [`check`] starts (the course's start on the second function).
pub const CHECK_START: [f64; 2] = [5.0, -2.0];

/// The gradient [`check`] feeds at step `t` (1-based): |gₓ| grows from 10⁻³
/// to 10² over 20 steps, |g_y| falls from 10² to 10⁻³, twice; signs change
/// every 3 steps in x and every 4 in y.
pub fn check_gradient(t: usize) -> [f64; 2] {
    let k = ((t - 1) % 20) as f64 / 19.0;
    let sx = if ((t - 1) / 3).is_multiple_of(2) {
        1.0
    } else {
        -1.0
    };
    let sy = if ((t - 1) / 4).is_multiple_of(2) {
        -1.0
    } else {
        1.0
    };
    [
        sx * 10f64.powf(-3.0 + 5.0 * k),
        sy * 10f64.powf(2.0 - 5.0 * k),
    ]
}

fn close(got: f64, expected: f64, p: f64) -> bool {
    let tol = 1e-9 * (expected - p).abs() + 4.0 * f64::EPSILON * p.abs().max(expected.abs());
    (got - expected).abs() <= tol
}

/// What the course notebook's rule differs in, for a verdict.
fn course_note(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Adagrad | Kind::RmsProp => Some(
            "это правило оригинала: ε под корнем, g/√(s + ε); в torch.optim ε вне корня, g/(√s + ε) / \
             the original's rule, eps inside the root",
        ),
        Kind::Adam => Some(
            "это adam() оригинала: шаг по моментам без поправки смещения; нужно m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ) / \
             the original's adam(), moments not bias-corrected",
        ),
        Kind::Sgd | Kind::Momentum => None,
    }
}

/// The student's reference optimizer, validated; a panic or bad value is
/// the error message.
fn reference_of(opt: &mut dyn Step2d) -> std::result::Result<Optimizer2d, String> {
    let spec = catch(|| opt.reference())
        .map_err(|p| format!("паника / panic в reference(): {}", p.message))?;
    spec.validate()
        .map_err(|e| format!("гиперпараметры / hyperparameters: {e}"))?;
    Ok(spec)
}

/// Compares `opt` step by step with its reference on [`CHECK_STEPS`]
/// gradients from [`check_gradient`]. Pass a fresh optimizer (zero state).
pub fn check(opt: &mut dyn Step2d) -> Verdict {
    let spec = match reference_of(opt) {
        Ok(s) => s,
        Err(e) => return Verdict::failed("оптимизатор / optimizer", e),
    };
    let what = spec.label();
    let course = spec.course();
    let (mut a1, mut a2, mut c1, mut c2) = ([0.0; 2], [0.0; 2], [0.0; 2], [0.0; 2]);
    let mut course_agrees = course_note(spec.kind).is_some();
    let mut p = CHECK_START;
    let mut worst: f64 = 0.0;
    for t in 1..=CHECK_STEPS {
        let g = check_gradient(t);
        let mut expected = p;
        let mut by_course = p;
        for i in 0..2 {
            expected[i] = spec.update(t, p[i], g[i], &mut a1[i], &mut a2[i]);
            by_course[i] = course.update(t, p[i], g[i], &mut c1[i], &mut c2[i]);
        }
        let got = match catch(|| opt.step(p, g)) {
            Ok(v) => v,
            Err(panic) if panic.not_implemented => {
                return Verdict::not_implemented(what, panic.message)
            }
            Err(panic) => {
                return Verdict::failed(
                    what,
                    format!(
                        "паника / panic в step на шаге {t} (p = {p:?}, g = {g:?}): {}",
                        panic.message
                    ),
                )
            }
        };
        let course_now = (0..2).all(|i| close(got[i], by_course[i], p[i]));
        for i in 0..2 {
            if !close(got[i], expected[i], p[i]) {
                let mut detail = format!(
                    "шаг / step {t}, координата / coordinate {}: ожидалось / expected {}, получено / got {} (вход / input: p = ({}, {}), g = ({}, {}))",
                    ["x", "y"][i], expected[i], got[i], p[0], p[1], g[0], g[1]
                );
                if !got[i].is_finite() {
                    detail.push_str("; не число / not finite");
                } else if course_agrees && course_now {
                    if let Some(note) = course_note(spec.kind) {
                        detail.push_str("; ");
                        detail.push_str(note);
                    }
                }
                return Verdict::failed(what, detail);
            }
            let step = (expected[i] - p[i]).abs();
            if step > 0.0 {
                worst = worst.max((got[i] - expected[i]).abs() / step);
            }
        }
        course_agrees &= course_now;
        p = expected;
    }
    Verdict::passed(
        what,
        format!(
            "{CHECK_STEPS} шагов совпадают с эталоном nnlab (правила torch.optim), наибольшее отклонение {worst:.1e} длины шага / \
             {CHECK_STEPS} steps agree with the reference"
        ),
    )
}

/// The trajectory of `opt` on `f` from `start`: `steps` calls of
/// [`Step2d::step`] (as [`Optimizer2d::run`], labelled with the reference).
/// A `todo!()`, a panic, a non-finite point or a step out of the domain of
/// `f` is an error naming the optimizer and the step.
pub fn run(
    opt: &mut dyn Step2d,
    f: Function2d,
    start: [f64; 2],
    steps: usize,
) -> Result<Trajectory> {
    let spec = reference_of(opt).map_err(|e| Error::config("optimizer", e))?;
    let field = format!("{}.step", spec.label());
    let at = |t: usize, e: Error| match e {
        Error::Domain { what } => Error::Domain {
            what: format!("{} step {t}: {what}", spec.label()),
        },
        e => e,
    };
    let mut p = start;
    let mut points = vec![p];
    let mut values = vec![f.value(p).map_err(|e| at(0, e))?];
    let mut g = f.grad(p).map_err(|e| at(0, e))?;
    let mut grad_norms = vec![g[0].hypot(g[1])];
    for t in 1..=steps {
        p = catch(|| opt.step(p, g)).map_err(|panic| {
            if panic.not_implemented {
                Error::config(
                    &field,
                    format!("не реализовано / not implemented: {}", panic.message),
                )
            } else {
                Error::config(
                    &field,
                    format!("паника / panic на шаге {t}: {}", panic.message),
                )
            }
        })?;
        if !(p[0].is_finite() && p[1].is_finite()) {
            return Err(Error::config(
                &field,
                format!(
                    "шаг {t} вернул ({}, {}): ожидались конечные числа",
                    p[0], p[1]
                ),
            ));
        }
        points.push(p);
        values.push(f.value(p).map_err(|e| at(t, e))?);
        g = f.grad(p).map_err(|e| at(t, e))?;
        grad_norms.push(g[0].hypot(g[1]));
    }
    Ok(Trajectory {
        function: f,
        optimizer: spec,
        points,
        values,
        grad_norms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::verdict::Outcome;

    /// Torch's rules written the way a student would (not in torch's
    /// operation order), with the original's defects behind flags.
    struct Student {
        spec: Optimizer2d,
        eps_inside: bool,
        uncorrected: bool,
        s1: [f64; 2],
        s2: [f64; 2],
        t: i32,
    }

    impl Student {
        fn new(spec: Optimizer2d) -> Student {
            Student {
                spec,
                eps_inside: false,
                uncorrected: false,
                s1: [0.0; 2],
                s2: [0.0; 2],
                t: 0,
            }
        }
    }

    impl Step2d for Student {
        fn reference(&self) -> Optimizer2d {
            self.spec
        }
        fn step(&mut self, p: [f64; 2], g: [f64; 2]) -> [f64; 2] {
            let o = self.spec;
            self.t += 1;
            let mut next = p;
            for i in 0..2 {
                next[i] = match o.kind {
                    Kind::Sgd => p[i] - o.lr * g[i],
                    Kind::Momentum => {
                        // the course's form: v ← μv − lr·g, p ← p + v
                        self.s1[i] = o.momentum * self.s1[i] - o.lr * g[i];
                        p[i] + self.s1[i]
                    }
                    Kind::Adagrad | Kind::RmsProp => {
                        self.s1[i] = if o.kind == Kind::Adagrad {
                            self.s1[i] + g[i] * g[i]
                        } else {
                            o.alpha * self.s1[i] + (1.0 - o.alpha) * g[i].powi(2)
                        };
                        let d = if self.eps_inside {
                            (self.s1[i] + o.eps).sqrt()
                        } else {
                            self.s1[i].sqrt() + o.eps
                        };
                        p[i] - o.lr * g[i] / d
                    }
                    Kind::Adam => {
                        self.s1[i] = o.beta1 * self.s1[i] + (1.0 - o.beta1) * g[i];
                        self.s2[i] = o.beta2 * self.s2[i] + (1.0 - o.beta2) * g[i] * g[i];
                        let (m, v) = if self.uncorrected {
                            (self.s1[i], self.s2[i])
                        } else {
                            (
                                self.s1[i] / (1.0 - o.beta1.powi(self.t)),
                                self.s2[i] / (1.0 - o.beta2.powi(self.t)),
                            )
                        };
                        p[i] - o.lr * m / (v.sqrt() + o.eps)
                    }
                };
            }
            next
        }
    }

    fn specs() -> Vec<Optimizer2d> {
        vec![
            Optimizer2d::sgd(0.01),
            Optimizer2d::momentum(0.01, 0.9),
            Optimizer2d::adagrad(0.1).eps(1e-6),
            Optimizer2d::rmsprop(0.1).alpha(0.9).eps(1e-6),
            Optimizer2d::adam(0.1).betas(0.9, 0.9).eps(1e-6),
            Optimizer2d::adagrad(0.5),
            Optimizer2d::rmsprop(0.01),
            Optimizer2d::adam(1e-3),
        ]
    }

    #[test]
    fn a_correct_student_passes_every_optimizer() {
        for spec in specs() {
            let v = check(&mut Student::new(spec));
            assert!(v.is_passed(), "{v}");
        }
    }

    #[test]
    fn the_originals_defects_fail_and_are_named() {
        for spec in specs() {
            let inside = Student {
                eps_inside: true,
                ..Student::new(spec)
            };
            let uncorrected = Student {
                uncorrected: true,
                ..Student::new(spec)
            };
            for (mut s, defect) in [
                (inside, matches!(spec.kind, Kind::Adagrad | Kind::RmsProp)),
                (uncorrected, spec.kind == Kind::Adam),
            ] {
                let v = check(&mut s);
                if defect {
                    assert_eq!(v.outcome, Outcome::Failed, "{v}");
                    assert!(
                        v.detail.contains("шаг / step 1,") && v.detail.contains("оригинала"),
                        "{v}"
                    );
                } else {
                    assert!(v.is_passed(), "{v}");
                }
            }
        }
    }

    struct Todo;
    impl Step2d for Todo {
        fn reference(&self) -> Optimizer2d {
            Optimizer2d::adam(0.1)
        }
        fn step(&mut self, _p: [f64; 2], _g: [f64; 2]) -> [f64; 2] {
            todo!("напишите шаг Adam")
        }
    }

    struct Wrong(usize, f64);
    impl Step2d for Wrong {
        fn reference(&self) -> Optimizer2d {
            Optimizer2d::sgd(0.1)
        }
        fn step(&mut self, p: [f64; 2], g: [f64; 2]) -> [f64; 2] {
            self.0 += 1;
            if self.0 == 3 {
                return [p[0] - 0.1 * g[0], self.1];
            }
            let v: Vec<f64> = vec![];
            if self.0 == 5 {
                return [v[self.0], 0.0];
            }
            [p[0] - 0.1 * g[0], p[1] - 0.1 * g[1]]
        }
    }

    #[test]
    fn todo_nan_wrong_and_panics_are_verdicts() {
        let v = check(&mut Todo);
        assert_eq!(
            v.to_string(),
            "✘ adam(lr=0.1): не реализовано / not implemented: напишите шаг Adam"
        );
        let v = check(&mut Wrong(0, f64::NAN));
        assert!(
            v.detail
                .starts_with("шаг / step 3, координата / coordinate y:")
                && v.detail.contains("got NaN"),
            "{v}"
        );
        assert!(v.detail.contains("не число"), "{v}");
        let v = check(&mut Wrong(0, 7.0));
        assert!(
            v.detail.contains("got 7 (") && !v.detail.contains("оригинала"),
            "{v}"
        );
        let v = check(&mut Wrong(3, 0.0));
        assert!(
            v.detail.contains("паника / panic в step на шаге 2")
                && v.detail.contains("index out of bounds"),
            "{v}"
        );
        let e = run(&mut Todo, Function2d::SquareSum, [5.0, 5.0], 3)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "adam(lr=0.1).step: не реализовано / not implemented: напишите шаг Adam"
        );
        let e = run(
            &mut Wrong(0, f64::INFINITY),
            Function2d::SquareSum,
            [5.0, 5.0],
            5,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("шаг 3 вернул") && e.contains("inf"), "{e}");
    }

    #[test]
    fn a_student_run_is_the_reference_run() -> crate::TestResult {
        for spec in specs() {
            for (f, start) in [
                (Function2d::SquareSum, [5.0, 5.0]),
                (Function2d::Himmelblau, [0.0, 0.0]),
            ] {
                let mine = run(&mut Student::new(spec), f, start, 100)?;
                let reference = spec.run(f, start, 100)?;
                assert_eq!(mine.optimizer, spec);
                for (a, b) in mine.points.iter().zip(&reference.points) {
                    assert!(
                        (a[0] - b[0]).abs() < 1e-9 && (a[1] - b[1]).abs() < 1e-9,
                        "{}: {a:?} vs {b:?}",
                        spec.label()
                    );
                }
            }
        }
        Ok(())
    }
}
