//! Learning-rate schedulers with torch.optim.lr_scheduler's semantics,
//! stepped once at the end of every epoch: `lr = sched.step(lr, metric)?`
//! gives the learning rate of the next epoch.
//!
//! - [`ReduceLrOnPlateau`]: after more than `patience` epochs without a
//!   `threshold` improvement of the metric, `lr ← max(lr·factor, min_lr)`
//!   (skipped when that changes lr by `eps` or less), then `cooldown` epochs
//!   in which bad epochs are not counted.
//! - [`StepLr`]: `lr ← lr·γ` every `step_size` epochs.
//! - [`CosineLr`]: `CosineAnnealingLR`'s recursive form (torch's `get_lr`),
//!   `lrₜ = η_min + (lrₜ₋₁ − η_min)·(1 + cos(πt/T))/(1 + cos(π(t−1)/T))`,
//!   which for an untouched lr equals `η_min + ½(lr₀ − η_min)(1 + cos(πt/T))`
//!   and goes back up after `T` epochs (period `2T`).
//!
//! ```
//! use nnlab::train::schedule::{Scheduler, StepLr};
//! let mut s = StepLr::new(2, 0.5);
//! let mut lr = 0.1;
//! let lrs: Vec<f64> = (0..4).map(|_| { lr = s.step(lr, None).unwrap(); lr }).collect();
//! assert_eq!(lrs, [0.1, 0.05, 0.05, 0.025]);
//! ```

use crate::train::history::minimize;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::f64::consts::PI;

/// An epoch-level learning-rate schedule, object-safe (`Box<dyn Scheduler>`).
pub trait Scheduler: Send {
    /// `StepLR(step_size=5, gamma=0.1)`.
    fn name(&self) -> String;
    /// End of an epoch with learning rate `lr` (and the monitored metric,
    /// required by [`ReduceLrOnPlateau`]) → the learning rate of the next epoch.
    fn step(&mut self, lr: f64, metric: Option<f64>) -> Result<f64>;
    /// The history column `step`'s metric comes from, when the scheduler
    /// chose one; `None`: the learner's loss (validation, else training).
    fn monitor(&self) -> Option<&str> {
        None
    }
    /// The counters, as JSON (`{"kind": "StepLR", "last_epoch": 3, ...}`).
    fn state(&self) -> Value;
    /// Restores what [`Scheduler::state`] returned, for a scheduler of the same kind.
    fn load_state(&mut self, s: &Value) -> Result<()>;
}

/// A scheduler's counters as a checkpoint stores them (serde, tagged by
/// torch's class name): `{"kind": "StepLR", "last_epoch": 3}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind")]
enum SchedulerState {
    #[serde(rename = "ReduceLROnPlateau")]
    Plateau {
        best: Option<f64>,
        num_bad_epochs: u64,
        cooldown_counter: u64,
        last_epoch: u64,
    },
    #[serde(rename = "StepLR")]
    Step { last_epoch: u64 },
    #[serde(rename = "CosineAnnealingLR")]
    Cosine {
        base_lr: Option<f64>,
        last_epoch: u64,
    },
}

impl SchedulerState {
    /// torch's class name, the `kind` tag.
    fn kind(&self) -> &'static str {
        match self {
            SchedulerState::Plateau { .. } => "ReduceLROnPlateau",
            SchedulerState::Step { .. } => "StepLR",
            SchedulerState::Cosine { .. } => "CosineAnnealingLR",
        }
    }

    fn to_value(&self) -> Value {
        // Numbers and a tag only: serializing cannot fail (a non-finite best becomes null).
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a saved state; the error names the field and what was expected.
    fn read(s: &Value) -> Result<SchedulerState> {
        SchedulerState::deserialize(s).map_err(|e| Error::config("scheduler state", e.to_string()))
    }

    /// The error for a state of another scheduler.
    fn wrong_kind(&self, expected: &str) -> Error {
        Error::config(
            "scheduler state kind",
            format!("\"{}\", expected \"{expected}\"", self.kind()),
        )
    }
}

/// torch's `ReduceLROnPlateau`. Defaults: the learner's loss (validation,
/// else training), factor 0.1, patience 10, threshold 1e-4 (`rel`),
/// cooldown 0, min_lr 0, eps 1e-8.
///
/// torch's `mode` is not a separate setting: it follows from the monitored
/// column by nnlab's one min/max rule, [`minimize`] (a loss is minimized,
/// every metric maximized), the rule of `History::best`, `EarlyStopping` and
/// `KeepBest` too. `.monitor("val_accuracy")` is torch's `mode="max"`.
///
/// Improvement: `min`/`rel`: `m < best·(1 − threshold)`; `min`/`abs`:
/// `m < best − threshold`; `max`/`rel`: `m > best·(1 + threshold)`;
/// `max`/`abs`: `m > best + threshold`.
#[derive(Clone, Debug)]
pub struct ReduceLrOnPlateau {
    monitor: Option<String>,
    factor: f64,
    patience: u64,
    threshold: f64,
    threshold_mode: String,
    cooldown: u64,
    min_lr: f64,
    eps: f64,
    best: Option<f64>,
    num_bad_epochs: u64,
    cooldown_counter: u64,
    last_epoch: u64,
}

impl Default for ReduceLrOnPlateau {
    fn default() -> Self {
        Self::new()
    }
}

impl ReduceLrOnPlateau {
    pub fn new() -> Self {
        ReduceLrOnPlateau {
            monitor: None,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: "rel".into(),
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
            best: None,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
        }
    }
    /// The history column the learner steps this scheduler on (`val_loss`,
    /// `val_accuracy`, `val_f1_macro`, …; default: `val_loss`, else
    /// `train_loss` without a validation set). Lower is better for a loss,
    /// higher for a metric ([`minimize`]), torch's `mode` `min` / `max`.
    pub fn monitor(mut self, column: &str) -> Self {
        self.monitor = Some(column.to_string());
        self
    }
    /// `lr ← lr·factor` on a plateau, factor < 1.
    pub fn factor(mut self, f: f64) -> Self {
        self.factor = f;
        self
    }
    /// Epochs without improvement tolerated before a reduction.
    pub fn patience(mut self, p: usize) -> Self {
        self.patience = p as u64;
        self
    }
    /// The least change that counts as an improvement.
    pub fn threshold(mut self, t: f64) -> Self {
        self.threshold = t;
        self
    }
    /// `"rel"` (threshold relative to the best) or `"abs"`.
    pub fn threshold_mode(mut self, m: &str) -> Self {
        self.threshold_mode = m.to_string();
        self
    }
    /// Epochs after a reduction in which bad epochs are not counted.
    pub fn cooldown(mut self, c: usize) -> Self {
        self.cooldown = c as u64;
        self
    }
    /// The learning rate never goes below this.
    pub fn min_lr(mut self, m: f64) -> Self {
        self.min_lr = m;
        self
    }
    /// A reduction changing lr by `eps` or less is skipped.
    pub fn eps(mut self, e: f64) -> Self {
        self.eps = e;
        self
    }
    /// The best metric so far (None before the first step).
    pub fn best(&self) -> Option<f64> {
        self.best
    }
    /// Epochs since the last improvement (reset by a reduction and in cooldown).
    pub fn num_bad_epochs(&self) -> usize {
        self.num_bad_epochs as usize
    }

    fn validate(&self) -> Result<()> {
        if !matches!(self.threshold_mode.as_str(), "rel" | "abs") {
            return Err(Error::config(
                "ReduceLROnPlateau threshold_mode",
                format!("`{}`, expected rel or abs", self.threshold_mode),
            ));
        }
        if !(self.factor < 1.0 && self.factor >= 0.0) {
            return Err(Error::config(
                "ReduceLROnPlateau factor",
                format!("{}, expected a value in [0, 1)", self.factor),
            ));
        }
        for (n, v) in [
            ("threshold", self.threshold),
            ("min_lr", self.min_lr),
            ("eps", self.eps),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::config(
                    format!("ReduceLROnPlateau {n}"),
                    format!("{v}, expected a finite value ≥ 0"),
                ));
            }
        }
        Ok(())
    }

    /// Whether the monitored value is minimized: the validation or training
    /// loss by default, else by [`minimize`] of the column.
    fn minimizes(&self) -> bool {
        self.monitor.as_deref().is_none_or(minimize)
    }

    fn is_better(&self, a: f64) -> bool {
        // torch starts from the worst value of the mode (±∞).
        let minimizes = self.minimizes();
        let best = self.best.unwrap_or(if minimizes {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        });
        match (minimizes, self.threshold_mode.as_str()) {
            (true, "rel") => a < best * (1.0 - self.threshold),
            (true, _) => a < best - self.threshold,
            (false, "rel") => a > best * (self.threshold + 1.0),
            (false, _) => a > best + self.threshold,
        }
    }
}

impl Scheduler for ReduceLrOnPlateau {
    fn name(&self) -> String {
        use crate::train::optim::num;
        let mode = if self.minimizes() { "min" } else { "max" };
        let mut s = match &self.monitor {
            Some(column) => format!("ReduceLROnPlateau({column}, mode={mode}"),
            None => format!("ReduceLROnPlateau(mode={mode}"),
        };
        s += &format!(", factor={}, patience={}", num(self.factor), self.patience);
        if self.threshold != 1e-4 || self.threshold_mode != "rel" {
            s += &format!(
                ", threshold={}, threshold_mode={}",
                num(self.threshold),
                self.threshold_mode
            );
        }
        if self.cooldown != 0 {
            s += &format!(", cooldown={}", self.cooldown);
        }
        if self.min_lr != 0.0 {
            s += &format!(", min_lr={}", num(self.min_lr));
        }
        if self.eps != 1e-8 {
            s += &format!(", eps={}", num(self.eps));
        }
        s + ")"
    }

    fn monitor(&self) -> Option<&str> {
        self.monitor.as_deref()
    }

    fn step(&mut self, lr: f64, metric: Option<f64>) -> Result<f64> {
        self.validate()?;
        let Some(current) = metric else {
            return Err(Error::config(
                "ReduceLROnPlateau metric",
                "missing, expected the monitored value (e.g. the validation loss) every epoch",
            ));
        };
        self.last_epoch += 1;
        if self.is_better(current) {
            self.best = Some(current);
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        let mut lr = lr;
        if self.num_bad_epochs > self.patience {
            let new = (lr * self.factor).max(self.min_lr);
            if lr - new > self.eps {
                lr = new;
            }
            self.cooldown_counter = self.cooldown;
            self.num_bad_epochs = 0;
        }
        Ok(lr)
    }

    fn state(&self) -> Value {
        SchedulerState::Plateau {
            best: self.best,
            num_bad_epochs: self.num_bad_epochs,
            cooldown_counter: self.cooldown_counter,
            last_epoch: self.last_epoch,
        }
        .to_value()
    }

    fn load_state(&mut self, s: &Value) -> Result<()> {
        match SchedulerState::read(s)? {
            SchedulerState::Plateau {
                best,
                num_bad_epochs,
                cooldown_counter,
                last_epoch,
            } => {
                self.best = best;
                self.num_bad_epochs = num_bad_epochs;
                self.cooldown_counter = cooldown_counter;
                self.last_epoch = last_epoch;
                Ok(())
            }
            other => Err(other.wrong_kind("ReduceLROnPlateau")),
        }
    }
}

/// torch's `StepLR`: `lr ← lr·γ` at every epoch count divisible by `step_size`.
#[derive(Clone, Debug)]
pub struct StepLr {
    step_size: usize,
    gamma: f64,
    last_epoch: u64,
}

impl StepLr {
    pub fn new(step_size: usize, gamma: f64) -> Self {
        StepLr {
            step_size,
            gamma,
            last_epoch: 0,
        }
    }
}

impl Scheduler for StepLr {
    fn name(&self) -> String {
        format!(
            "StepLR(step_size={}, gamma={})",
            self.step_size,
            crate::train::optim::num(self.gamma)
        )
    }

    fn step(&mut self, lr: f64, _metric: Option<f64>) -> Result<f64> {
        if self.step_size == 0 {
            return Err(Error::config("StepLR step_size", "0, expected at least 1"));
        }
        self.last_epoch += 1;
        Ok(if self.last_epoch.is_multiple_of(self.step_size as u64) {
            lr * self.gamma
        } else {
            lr
        })
    }

    fn state(&self) -> Value {
        SchedulerState::Step {
            last_epoch: self.last_epoch,
        }
        .to_value()
    }

    fn load_state(&mut self, s: &Value) -> Result<()> {
        match SchedulerState::read(s)? {
            SchedulerState::Step { last_epoch } => {
                self.last_epoch = last_epoch;
                Ok(())
            }
            other => Err(other.wrong_kind("StepLR")),
        }
    }
}

/// torch's `CosineAnnealingLR(T_max, eta_min)`, recursive form; the initial
/// learning rate `lr₀` is the one passed to the first `step`.
#[derive(Clone, Debug)]
pub struct CosineLr {
    t_max: usize,
    eta_min: f64,
    base_lr: Option<f64>,
    last_epoch: u64,
}

impl CosineLr {
    pub fn new(t_max: usize, eta_min: f64) -> Self {
        CosineLr {
            t_max,
            eta_min,
            base_lr: None,
            last_epoch: 0,
        }
    }
}

impl Scheduler for CosineLr {
    fn name(&self) -> String {
        format!(
            "CosineAnnealingLR(T_max={}, eta_min={})",
            self.t_max,
            crate::train::optim::num(self.eta_min)
        )
    }

    fn step(&mut self, lr: f64, _metric: Option<f64>) -> Result<f64> {
        if self.t_max == 0 {
            return Err(Error::config(
                "CosineAnnealingLR t_max",
                "0, expected at least 1",
            ));
        }
        let base = *self.base_lr.get_or_insert(lr);
        self.last_epoch += 1;
        let (t, tm, eta) = (self.last_epoch as f64, self.t_max as f64, self.eta_min);
        let k = self.last_epoch as i64;
        Ok(
            if (k - 1 - self.t_max as i64).rem_euclid(2 * self.t_max as i64) == 0 {
                lr + (base - eta) * (1.0 - (PI / tm).cos()) / 2.0
            } else {
                (1.0 + (PI * t / tm).cos()) / (1.0 + (PI * (t - 1.0) / tm).cos()) * (lr - eta) + eta
            },
        )
    }

    fn state(&self) -> Value {
        SchedulerState::Cosine {
            base_lr: self.base_lr,
            last_epoch: self.last_epoch,
        }
        .to_value()
    }

    fn load_state(&mut self, s: &Value) -> Result<()> {
        match SchedulerState::read(s)? {
            SchedulerState::Cosine {
                base_lr,
                last_epoch,
            } => {
                self.base_lr = base_lr;
                self.last_epoch = last_epoch;
                Ok(())
            }
            other => Err(other.wrong_kind("CosineAnnealingLR")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // The lr after each scheduler.step(), printed by (torch 2.x):
    //
    // import math, torch
    // from torch.optim.lr_scheduler import ReduceLROnPlateau, StepLR, CosineAnnealingLR
    // def run(lr, make, metrics=None, n=None):
    //     opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    //     s = make(opt)
    //     out = []
    //     for i in range(n if metrics is None else len(metrics)):
    //         opt.step()
    //         s.step() if metrics is None else s.step(metrics[i])
    //         out.append(opt.param_groups[0]["lr"])
    //     return out
    // loss = LOSS; acc = ACC; flat = [1.0] * 8        # the constants below
    // run(0.1, lambda o: ReduceLROnPlateau(o), loss)                       # PLATEAU_DEFAULT
    // run(0.1, lambda o: ReduceLROnPlateau(o, mode="max", factor=0.5, patience=2, threshold=0.01,
    //     threshold_mode="abs", cooldown=2, min_lr=0.02), acc)              # PLATEAU_MAX_ABS
    // run(1e-7, lambda o: ReduceLROnPlateau(o, factor=0.5, patience=0), flat)  # PLATEAU_EPS
    // run(0.1, lambda o: StepLR(o, 3, 0.5), n=12)                          # STEP
    // run(0.1, lambda o: CosineAnnealingLR(o, 5, 0.001), n=22)             # COSINE
    // run(0.05, lambda o: CosineAnnealingLR(o, 4), n=16)                   # COSINE_ZERO_MIN
    const LOSS: &[f64] = &[
        1.0, 0.9, 0.85, 0.85, 0.8499, 0.86, 0.84, 0.84, 0.84, 0.84, 0.84, 0.84, 0.84, 0.84, 0.84,
        0.84, 0.84, 0.83, 0.83, 0.83, 0.83, 0.83, 0.83, 0.83, 0.83, 0.83, 0.83, 0.83, 0.83, 0.83,
        0.83, 0.83, 0.83, 0.83, 0.83, 0.83, 0.83, 0.83, 0.83, 0.83,
    ];
    const ACC: &[f64] = &[
        0.5, 0.6, 0.605, 0.61, 0.62, 0.62, 0.625, 0.63, 0.7, 0.7, 0.7, 0.7, 0.71, 0.7, 0.7, 0.7,
        0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7,
    ];
    const PLATEAU_DEFAULT: &[f64] = &[
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.1,
        0.010000000000000002,
        0.010000000000000002,
        0.010000000000000002,
        0.010000000000000002,
        0.010000000000000002,
        0.010000000000000002,
        0.010000000000000002,
        0.010000000000000002,
        0.010000000000000002,
        0.010000000000000002,
        0.010000000000000002,
        0.0010000000000000002,
    ];
    const PLATEAU_MAX_ABS: &[f64] = &[
        0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025,
        0.025, 0.025, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02,
    ];
    const PLATEAU_EPS: &[f64] = &[
        1e-07, 5e-08, 2.5e-08, 1.25e-08, 1.25e-08, 1.25e-08, 1.25e-08, 1.25e-08,
    ];
    const STEP: &[f64] = &[
        0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125, 0.0125, 0.00625,
    ];
    const COSINE: &[f64] = &[
        0.0905463412215599,
        0.06579634122155989,
        0.035203658778440096,
        0.010453658778440105,
        0.001,
        0.010453658778440102,
        0.03520365877844012,
        0.06579634122155993,
        0.09054634122155995,
        0.10000000000000005,
        0.09054634122155998,
        0.06579634122155995,
        0.03520365877844014,
        0.010453658778440116,
        0.001,
        0.010453658778440102,
        0.03520365877844012,
        0.06579634122155995,
        0.09054634122155997,
        0.1000000000000001,
        0.09054634122156001,
        0.06579634122156008,
    ];
    const COSINE_ZERO_MIN: &[f64] = &[
        0.04267766952966369,
        0.025,
        0.0073223304703363135,
        0.0,
        0.007322330470336311,
        0.025000000000000005,
        0.0426776695296637,
        0.05000000000000002,
        0.0426776695296637,
        0.025000000000000015,
        0.007322330470336336,
        0.0,
        0.007322330470336311,
        0.02499999999999995,
        0.04267766952966359,
        0.04999999999999992,
    ];

    fn run(s: &mut dyn Scheduler, lr: f64, metrics: &[f64]) -> Vec<f64> {
        let mut lr = lr;
        metrics
            .iter()
            .map(|&m| {
                lr = s.step(lr, Some(m)).unwrap();
                lr
            })
            .collect()
    }

    fn close(what: &str, got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1e-12),
                "{what}[{i}]: got {g}, torch {w}"
            );
        }
    }

    #[test]
    fn plateau_matches_torch() {
        close(
            "default",
            &run(&mut ReduceLrOnPlateau::new(), 0.1, LOSS),
            PLATEAU_DEFAULT,
        );
        let mut s = ReduceLrOnPlateau::new()
            .monitor("val_accuracy")
            .factor(0.5)
            .patience(2)
            .threshold(0.01)
            .threshold_mode("abs")
            .cooldown(2)
            .min_lr(0.02);
        close("max abs", &run(&mut s, 0.1, ACC), PLATEAU_MAX_ABS);
        assert_eq!(s.best(), Some(0.7)); // 0.71 is not > 0.7 + 0.01 in floating point, as in torch
        close(
            "eps",
            &run(
                &mut ReduceLrOnPlateau::new().factor(0.5).patience(0),
                1e-7,
                &[1.0; 8],
            ),
            PLATEAU_EPS,
        );
    }

    #[test]
    fn step_and_cosine_match_torch() {
        close(
            "step",
            &run(&mut StepLr::new(3, 0.5), 0.1, &[0.0; 12]),
            STEP,
        );
        close(
            "cosine",
            &run(&mut CosineLr::new(5, 0.001), 0.1, &[0.0; 22]),
            COSINE,
        );
        close(
            "cosine eta_min 0",
            &run(&mut CosineLr::new(4, 0.0), 0.05, &[0.0; 16]),
            COSINE_ZERO_MIN,
        );
    }

    /// Half the epochs, state → JSON text → a fresh scheduler, the other half:
    /// the same sequence as straight through.
    #[test]
    fn state_round_trips_through_json() -> crate::TestResult {
        type Make = fn() -> Box<dyn Scheduler>;
        let cases: [(Make, f64, &[f64], &[f64]); 4] = [
            (
                || Box::new(ReduceLrOnPlateau::new()),
                0.1,
                LOSS,
                PLATEAU_DEFAULT,
            ),
            (
                || {
                    Box::new(
                        ReduceLrOnPlateau::new()
                            .monitor("val_accuracy")
                            .factor(0.5)
                            .patience(2)
                            .threshold(0.01)
                            .threshold_mode("abs")
                            .cooldown(2)
                            .min_lr(0.02),
                    )
                },
                0.1,
                ACC,
                PLATEAU_MAX_ABS,
            ),
            (|| Box::new(StepLr::new(3, 0.5)), 0.1, &[0.0; 12], STEP),
            (
                || Box::new(CosineLr::new(5, 0.001)),
                0.1,
                &[0.0; 22],
                COSINE,
            ),
        ];
        for (make, lr0, metrics, want) in cases {
            for cut in [0, 1, metrics.len() / 2, metrics.len() - 3] {
                let mut a = make();
                let first = run(a.as_mut(), lr0, &metrics[..cut]);
                let text = serde_json::to_string(&a.state())?;
                let mut b = make();
                b.load_state(&serde_json::from_str(&text)?)?;
                let lr = first.last().copied().unwrap_or(lr0);
                let second = run(b.as_mut(), lr, &metrics[cut..]);
                close(
                    &format!("{} cut at {cut}", a.name()),
                    &[first, second].concat(),
                    want,
                );
            }
        }
        Ok(())
    }

    #[test]
    fn names_and_errors() {
        assert_eq!(
            ReduceLrOnPlateau::new().name(),
            "ReduceLROnPlateau(mode=min, factor=0.1, patience=10)"
        );
        assert_eq!(StepLr::new(5, 0.1).name(), "StepLR(step_size=5, gamma=0.1)");
        assert_eq!(
            CosineLr::new(10, 0.0).name(),
            "CosineAnnealingLR(T_max=10, eta_min=0)"
        );
        let msg = ReduceLrOnPlateau::new()
            .step(0.1, None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("metric") && msg.contains("missing"), "{msg}");
        // torch's mode follows the monitored column by the one min/max rule
        assert_eq!(
            ReduceLrOnPlateau::new()
                .monitor("val_f1_macro")
                .patience(3)
                .name(),
            "ReduceLROnPlateau(val_f1_macro, mode=max, factor=0.1, patience=3)"
        );
        assert_eq!(
            ReduceLrOnPlateau::new().monitor("val_loss").name(),
            "ReduceLROnPlateau(val_loss, mode=min, factor=0.1, patience=10)"
        );
        let msg = ReduceLrOnPlateau::new()
            .factor(1.0)
            .step(0.1, Some(1.0))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("factor") && msg.contains("[0, 1)"), "{msg}");
        assert!(StepLr::new(0, 0.1)
            .step(0.1, None)
            .unwrap_err()
            .to_string()
            .contains("step_size"));
        assert!(CosineLr::new(0, 0.0)
            .step(0.1, None)
            .unwrap_err()
            .to_string()
            .contains("t_max"));
        let msg = StepLr::new(2, 0.1)
            .load_state(&CosineLr::new(3, 0.0).state())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("CosineAnnealingLR") && msg.contains("\"StepLR\""),
            "{msg}"
        );
        let msg = StepLr::new(2, 0.1)
            .load_state(&json!({"kind": "StepLR"}))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("last_epoch"), "{msg}");
    }
}
