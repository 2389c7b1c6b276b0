//! Callbacks: small objects the [`Learner`](crate::train::learner::Learner)
//! calls at the end of every epoch (fastai style). They can read the history,
//! the model and the optimizer, and ask training to stop.
//!
//! - [`EarlyStopping`]: stop when `monitor` has not improved by more than
//!   `min_delta` for `patience` epochs (Keras' rule); optionally put the best
//!   weights back at the end.
//! - [`KeepBest`]: write a checkpoint each time `monitor` improves.
//! - [`on_epoch`]: any closure.
//!
//! ```no_run
//! # use nnlab::prelude::*;
//! # fn main() -> nnlab::Result<()> {
//! # let loaders = Mnist::load()?.loaders(64)?;
//! let mut learn = Learner::new(zoo::build("hw1/3_layers")?, &loaders)
//!     .callback(EarlyStopping::new("val_loss").patience(3).restore_best(true))
//!     .callback(on_epoch(|ctx| { println!("lr now {}", ctx.optimizer.lr()); Ok(()) }));
//! learn.fit(42)?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::Tensor;

use crate::models::model::Model;
use crate::train::checkpoint;
use crate::train::history::History;
use crate::train::optim::Optimizer;
use crate::train::schedule::Scheduler;
use crate::Result;

/// What a callback sees at the end of an epoch.
pub struct EpochContext<'a> {
    /// Every epoch so far; the last record is the one that just ended.
    pub history: &'a History,
    pub model: &'a Model,
    pub optimizer: &'a dyn Optimizer,
    pub scheduler: Option<&'a dyn Scheduler>,
    /// Set to `Some(reason)` to stop training after this epoch.
    pub stop: Option<String>,
}

impl EpochContext<'_> {
    /// The value of a history column (`val_loss`, `val_accuracy`, …) at the last epoch.
    pub fn value(&self, column: &str) -> Result<f64> {
        let v = self.history.column(column)?;
        Ok(*v.last().unwrap_or(&f64::NAN))
    }
}

/// A thing called at the end of each epoch and once when `fit` returns.
pub trait Callback: Send {
    fn name(&self) -> String;
    fn on_epoch_end(&mut self, ctx: &mut EpochContext) -> Result<()>;
    fn on_fit_end(&mut self, _model: &Model, _history: &mut History) -> Result<()> {
        Ok(())
    }
}

/// Whether `column` is better when smaller: losses are, metrics are not.
pub use crate::train::history::minimize;

/// Tracks the best value of a monitored column.
#[derive(Clone, Debug)]
struct Best {
    monitor: String,
    minimize: bool,
    min_delta: f64,
    value: Option<f64>,
    epoch: usize,
}

impl Best {
    fn new(monitor: &str) -> Best {
        Best {
            monitor: monitor.to_string(),
            minimize: minimize(monitor),
            min_delta: 0.0,
            value: None,
            epoch: 0,
        }
    }

    /// True when `v` beats the best so far by more than `min_delta`.
    fn improves(&self, v: f64) -> bool {
        match self.value {
            None => v.is_finite(),
            Some(b) if self.minimize => v < b - self.min_delta,
            Some(b) => v > b + self.min_delta,
        }
    }
}

/// Stops training when `monitor` stops improving.
pub struct EarlyStopping {
    best: Best,
    patience: usize,
    wait: usize,
    restore_best: bool,
    best_state: Option<HashMap<String, Tensor>>,
}

impl EarlyStopping {
    /// Monitors a history column, e.g. `val_loss` (minimized) or `val_f1_macro` (maximized).
    pub fn new(monitor: &str) -> EarlyStopping {
        EarlyStopping {
            best: Best::new(monitor),
            patience: 5,
            wait: 0,
            restore_best: false,
            best_state: None,
        }
    }

    /// Epochs without improvement before stopping (default 5).
    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = epochs;
        self
    }

    /// The smallest change that counts as an improvement (default 0).
    pub fn min_delta(mut self, delta: f64) -> Self {
        self.best.min_delta = delta.abs();
        self
    }

    /// Put the best epoch's weights back into the model when training ends.
    pub fn restore_best(mut self, yes: bool) -> Self {
        self.restore_best = yes;
        self
    }

    /// The epoch (1-based) with the best value so far.
    pub fn best_epoch(&self) -> usize {
        self.best.epoch
    }
}

impl Callback for EarlyStopping {
    fn name(&self) -> String {
        format!(
            "EarlyStopping({}, patience={}, min_delta={})",
            self.best.monitor, self.patience, self.best.min_delta
        )
    }

    fn on_epoch_end(&mut self, ctx: &mut EpochContext) -> Result<()> {
        let v = ctx.value(&self.best.monitor)?;
        if self.best.improves(v) {
            self.best.value = Some(v);
            self.best.epoch = ctx.history.len();
            self.wait = 0;
            if self.restore_best {
                self.best_state = Some(ctx.model.state_dict()?.into_iter().collect());
            }
        } else {
            self.wait += 1;
            if self.wait >= self.patience {
                ctx.stop = Some(format!(
                    "{} has not improved for {} epochs (best {:.4} at epoch {})",
                    self.best.monitor,
                    self.wait,
                    self.best.value.unwrap_or(f64::NAN),
                    self.best.epoch
                ));
            }
        }
        Ok(())
    }

    fn on_fit_end(&mut self, model: &Model, history: &mut History) -> Result<()> {
        if let Some(state) = &self.best_state {
            model.load_state_dict(state)?;
            history.restored_epoch = Some(self.best.epoch);
        }
        Ok(())
    }
}

/// Saves a checkpoint (model, optimizer, history) each time `monitor` improves.
pub struct KeepBest {
    best: Best,
    path: PathBuf,
}

impl KeepBest {
    /// Writes `path` (safetensors) and `path.json` (the sidecar).
    pub fn new(monitor: &str, path: impl Into<PathBuf>) -> KeepBest {
        KeepBest {
            best: Best::new(monitor),
            path: path.into(),
        }
    }
}

impl Callback for KeepBest {
    fn name(&self) -> String {
        format!("KeepBest({}, {})", self.best.monitor, self.path.display())
    }

    fn on_epoch_end(&mut self, ctx: &mut EpochContext) -> Result<()> {
        let v = ctx.value(&self.best.monitor)?;
        if self.best.improves(v) {
            self.best.value = Some(v);
            self.best.epoch = ctx.history.len();
            checkpoint::save(
                &self.path,
                ctx.model,
                ctx.optimizer,
                ctx.scheduler,
                ctx.history,
            )?;
        }
        Ok(())
    }
}

/// A closure called at the end of every epoch.
pub struct OnEpoch(Box<dyn FnMut(&mut EpochContext) -> Result<()> + Send>);

/// Wraps a closure as a callback: `on_epoch(|ctx| { …; Ok(()) })`.
pub fn on_epoch(f: impl FnMut(&mut EpochContext) -> Result<()> + Send + 'static) -> OnEpoch {
    OnEpoch(Box::new(f))
}

impl Callback for OnEpoch {
    fn name(&self) -> String {
        "on_epoch(closure)".into()
    }

    fn on_epoch_end(&mut self, ctx: &mut EpochContext) -> Result<()> {
        (self.0)(ctx)
    }
}
