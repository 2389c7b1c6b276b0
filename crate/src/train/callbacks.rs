//! Callbacks: small objects the [`Learner`](crate::train::learner::Learner)
//! calls at the events of its loop (fastai style). They can read the model,
//! the history and the optimizer, change the learning rate, and ask training
//! to stop. The events, in order:
//!
//! ```text
//! fit(n):  for each epoch:
//!              for each training batch:
//!                  before_batch                       (BatchContext, no loss yet)
//!                  out = model(x); L = loss(out, y)
//!                  after_loss                         (the batch's loss; before backward)
//!                  L.backward(); optimizer.step()
//!                  after_batch                        (the loss and the epoch's running mean)
//!              validation; the epoch's record pushed to the history
//!              after_epoch                            (EpochContext; may set `stop`)
//!          after_fit                                  (the model and the history, once)
//! ```
//!
//! Every `fit` runs the loop's own callbacks first (`loop_callbacks.rs`): the
//! divergence check (after_loss), the scheduler step and the progress bar and
//! epoch line; then the ones added with `Learner::callback`, in that order.
//!
//! - [`EarlyStopping`]: stop when `monitor` has not improved by more than
//!   `min_delta` for `patience` epochs (Keras' rule); optionally put the best
//!   weights back at the end.
//! - [`KeepBest`]: write a checkpoint each time `monitor` improves.
//! - [`on_epoch`], [`on_batch`]: any closure, after each epoch or each batch.
//!
//! ```no_run
//! # use nnlab::prelude::*;
//! # fn main() -> nnlab::Result<()> {
//! # let loaders = Mnist::load()?.loaders(64)?;
//! let mut learn = Learner::new(zoo::build("hw1/3_layers")?, &loaders)
//!     .callback(EarlyStopping::new("val_loss").patience(3).restore_best(true))
//!     .callback(on_batch(|ctx| { if ctx.batch % 100 == 0 { println!("{:.4}", ctx.running_loss); } Ok(()) }))
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
    /// The optimizer: read its state, or set the next epoch's learning rate.
    pub optimizer: &'a mut dyn Optimizer,
    pub scheduler: Option<&'a mut dyn Scheduler>,
    /// The last epoch (1-based) this `fit` will run.
    pub epochs: usize,
    /// Set to `Some(reason)` to stop training after this epoch.
    pub stop: Option<String>,
}

impl EpochContext<'_> {
    /// The value of a history column (`val_loss`, `val_accuracy`, …) at the last epoch.
    pub fn value(&self, column: &str) -> Result<f64> {
        self.history.last_or_nan(column)
    }
}

/// What a callback sees around one training batch.
pub struct BatchContext<'a> {
    /// The epoch (1-based, as in the history) and the last one of this `fit`.
    pub epoch: usize,
    pub epochs: usize,
    /// The batch (1-based) and the number of batches in the epoch.
    pub batch: usize,
    pub batches: usize,
    /// This batch's loss (mean over its samples, with the L2 term);
    /// `None` in `before_batch`.
    pub loss: Option<f64>,
    /// The epoch's mean training loss over the batches done, weighted by
    /// batch size (the epoch's `train_loss` after its last batch); 0 before
    /// the first `after_batch`.
    pub running_loss: f64,
    /// Samples in this batch.
    pub samples: usize,
    pub model: &'a Model,
    /// The optimizer: a callback may change the learning rate per batch.
    pub optimizer: &'a mut dyn Optimizer,
}

/// Something called at the events of the training loop (see the module
/// doc); every event does nothing unless the callback overrides it.
pub trait Callback: Send {
    fn name(&self) -> String;
    /// Before a training batch's forward pass.
    fn before_batch(&mut self, _ctx: &mut BatchContext) -> Result<()> {
        Ok(())
    }
    /// After the batch's loss is computed, before the backward pass.
    fn after_loss(&mut self, _ctx: &mut BatchContext) -> Result<()> {
        Ok(())
    }
    /// After the optimizer's step on the batch.
    fn after_batch(&mut self, _ctx: &mut BatchContext) -> Result<()> {
        Ok(())
    }
    /// After an epoch's training and validation; its record is in the history.
    fn after_epoch(&mut self, _ctx: &mut EpochContext) -> Result<()> {
        Ok(())
    }
    /// Once when `fit` returns (also after a stop).
    fn after_fit(&mut self, _model: &Model, _history: &mut History) -> Result<()> {
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

    fn after_epoch(&mut self, ctx: &mut EpochContext) -> Result<()> {
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

    fn after_fit(&mut self, model: &Model, history: &mut History) -> Result<()> {
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

    fn after_epoch(&mut self, ctx: &mut EpochContext) -> Result<()> {
        let v = ctx.value(&self.best.monitor)?;
        if self.best.improves(v) {
            self.best.value = Some(v);
            self.best.epoch = ctx.history.len();
            checkpoint::save(
                &self.path,
                ctx.model,
                &*ctx.optimizer,
                ctx.scheduler.as_deref(),
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

    fn after_epoch(&mut self, ctx: &mut EpochContext) -> Result<()> {
        (self.0)(ctx)
    }
}

/// A closure called after every training batch.
pub struct OnBatch(Box<dyn FnMut(&mut BatchContext) -> Result<()> + Send>);

/// Wraps a closure as a callback: `on_batch(|ctx| { …; Ok(()) })`, called
/// after each batch's optimizer step.
pub fn on_batch(f: impl FnMut(&mut BatchContext) -> Result<()> + Send + 'static) -> OnBatch {
    OnBatch(Box::new(f))
}

impl Callback for OnBatch {
    fn name(&self) -> String {
        "on_batch(closure)".into()
    }

    fn after_batch(&mut self, ctx: &mut BatchContext) -> Result<()> {
        (self.0)(ctx)
    }
}
