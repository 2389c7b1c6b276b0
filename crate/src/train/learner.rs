//! The training loop (fastai's `Learner`): a model, its loaders, a loss, an
//! optimizer, metrics, a scheduler and callbacks. `fit(n)` runs `n` more
//! epochs and returns the whole [`History`]; calling it again continues.
//!
//! One epoch: for each training batch `out = model(x)`, `L = loss(out, y)
//! (+ λ·Σ‖W‖²)`, `L.backward()`, `optimizer.step()`; then the validation
//! loader in eval mode; then the callbacks' `after_epoch`. Around each batch
//! the callbacks see `before_batch`, `after_loss` and `after_batch` (the
//! events: [`crate::train::callbacks`]). The loop's own work beyond that is
//! callbacks too, run first: the divergence check (a NaN or infinite loss
//! stops the run with [`Error::Diverged`] naming the epoch, the batch and the
//! lr), the scheduler step (on the validation loss, else the training loss)
//! and the progress bar and epoch lines.
//!
//! Reproducible: batch order, random transforms and dropout masks are pure
//! functions of the seed and the epoch, so a run resumed from a checkpoint
//! repeats the uninterrupted one.
//!
//! ```no_run
//! use nnlab::prelude::*;
//! # fn main() -> nnlab::Result<()> {
//! let loaders = Mnist::load()?.loaders(64)?;
//! let model = zoo::build("hw1/5_layers")?;
//! let mut learn = Learner::new(model, &loaders).optimizer(Adam::new(1e-3)).metrics([accuracy(), f1_macro()]);
//! let history = learn.fit(2)?;
//! println!("{:.4}", history.last("val_accuracy")?);
//! # Ok(()) }
//! ```

use std::time::Instant;

use candle_core::{DType, Tensor, D};

use crate::data::loader::{Loader, Loaders};
use crate::models::model::{Model, Output};
use crate::train::callbacks::{BatchContext, Callback, EpochContext};
use crate::train::checkpoint;
use crate::train::history::{EpochRecord, History};
use crate::train::interpret::Interpretation;
use crate::train::loop_callbacks::{DivergenceCheck, ProgressReport, SchedulerStep};
use crate::train::loss::{l2_penalty, Loss};
use crate::train::metrics::{accuracy, ConfusionMatrix, Metric};
use crate::train::optim::{Adam, Optimizer};
use crate::train::pool_awake;
use crate::train::schedule::Scheduler;
use crate::{Error, Result};

/// How `fit` reports progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// One line per epoch, plus a live bar within the epoch in a terminal.
    Auto,
    /// One printed line per epoch.
    Lines,
    /// Nothing printed.
    Silent,
}

/// Loss and metrics of a model on one loader.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub loss: f64,
    pub metrics: Vec<(String, f64)>,
    pub confusion: ConfusionMatrix,
}

impl Evaluation {
    /// The value of metric `name` (`accuracy`, `f1_macro`, …).
    pub fn metric(&self, name: &str) -> Result<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let known: Vec<&str> = self.metrics.iter().map(|(n, _)| n.as_str()).collect();
                Error::config(
                    "metric",
                    format!("`{name}` was not computed; computed: {}", known.join(", ")),
                )
            })
    }
}

/// Trains one model; see the module doc.
pub struct Learner {
    model: Model,
    train: Loader,
    val: Option<Loader>,
    optimizer: Box<dyn Optimizer>,
    attached: bool,
    loss: Loss,
    l2: f64,
    metrics: Vec<Box<dyn Metric>>,
    scheduler: Option<Box<dyn Scheduler>>,
    callbacks: Vec<Box<dyn Callback>>,
    history: History,
    progress: Progress,
}

impl Learner {
    /// A learner on `loaders.train`, validating on `loaders.val` (else
    /// `loaders.test`), with Adam(1e-3), cross-entropy (NLL for a model that
    /// ends in log_softmax) and accuracy.
    pub fn new(model: Model, loaders: &Loaders) -> Learner {
        let val = loaders.val.clone().or_else(|| loaders.test.clone());
        Learner::with_loaders(model, loaders.train.clone(), val)
    }

    /// A learner on explicit loaders.
    pub fn with_loaders(model: Model, train: Loader, val: Option<Loader>) -> Learner {
        let loss = match model.output() {
            Output::LogProbs => Loss::nll(),
            Output::Logits => Loss::cross_entropy(),
        };
        let history = History::new(model.name());
        Learner {
            model,
            train,
            val,
            optimizer: Box::new(Adam::new(1e-3)),
            attached: false,
            loss,
            l2: 0.0,
            metrics: vec![accuracy()],
            scheduler: None,
            callbacks: Vec::new(),
            history,
            progress: Progress::Auto,
        }
    }

    /// The optimizer (`Adam::new(1e-3)`, `Sgd::new(0.1).momentum(0.9)`, a
    /// boxed one from `optimizer_by_name`, `config.build()` of an [`OptimizerConfig`]).
    ///
    /// [`OptimizerConfig`]: crate::train::optim::OptimizerConfig
    pub fn optimizer(mut self, opt: impl Optimizer + 'static) -> Learner {
        self.optimizer = Box::new(opt);
        self.attached = false;
        self
    }

    /// The loss (`Loss::cross_entropy().label_smoothing(0.1)`, …).
    pub fn loss(mut self, loss: Loss) -> Learner {
        self.loss = loss;
        self
    }

    /// Adds `λ·Σ‖W‖²` over the weights to the training loss (hw2's L2).
    pub fn l2(mut self, lambda: f64) -> Learner {
        self.l2 = lambda;
        self
    }

    /// The metrics computed on train and validation predictions each epoch.
    pub fn metrics(mut self, metrics: impl IntoIterator<Item = Box<dyn Metric>>) -> Learner {
        self.metrics = metrics.into_iter().collect();
        self
    }

    /// A learning-rate scheduler stepped at the end of every epoch.
    pub fn scheduler(mut self, s: impl Scheduler + 'static) -> Learner {
        self.scheduler = Some(Box::new(s));
        self
    }

    /// Adds a callback (early stopping, keep-best checkpoint, a closure).
    pub fn callback(mut self, cb: impl Callback + 'static) -> Learner {
        self.callbacks.push(Box::new(cb));
        self
    }

    /// How progress is printed.
    pub fn progress(mut self, p: Progress) -> Learner {
        self.progress = p;
        self
    }

    /// Prints nothing while fitting.
    pub fn silent(self) -> Learner {
        self.progress(Progress::Silent)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn optimizer_ref(&self) -> &dyn Optimizer {
        self.optimizer.as_ref()
    }

    /// The learning rate of the next epoch.
    pub fn lr(&self) -> f64 {
        self.optimizer.lr()
    }

    /// Epochs trained so far.
    pub fn epochs_done(&self) -> usize {
        self.history.len()
    }

    /// Consumes the learner, giving the trained model back.
    pub fn into_model(self) -> Model {
        self.model
    }

    /// Writes a checkpoint: model, optimizer state, epoch, best metrics, history.
    pub fn save(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.attach()?;
        checkpoint::save(
            path,
            &self.model,
            self.optimizer.as_ref(),
            self.scheduler.as_deref(),
            &self.history,
        )
    }

    /// Loads a checkpoint into this learner (same architecture and optimizer
    /// kind): the next `fit` continues from the epoch after the saved one.
    pub fn resume(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        self.attach()?;
        let ck = checkpoint::load(path, self.model.device())?;
        if ck.info.model != self.model.name() {
            return Err(Error::format(
                path,
                format!(
                    "checkpoint of model `{}`, this learner trains `{}`",
                    ck.info.model,
                    self.model.name()
                ),
            ));
        }
        self.model.load_state_dict(&ck.model)?;
        self.optimizer.load_state(&ck.optimizer)?;
        self.optimizer.set_lr(ck.info.lr);
        match (self.scheduler.as_mut(), &ck.info.scheduler) {
            (Some(s), Some(state)) => s.load_state(state)?,
            (None, Some(_)) => {
                return Err(Error::config(
                    "scheduler",
                    format!(
                    "{} was saved with a scheduler: set the same one on this learner before resume",
                    path.display()
                ),
                ))
            }
            _ => {}
        }
        self.history = ck.info.history;
        Ok(())
    }

    fn attach(&mut self) -> Result<()> {
        if !self.attached {
            self.optimizer.attach(self.model.named_params())?;
            self.attached = true;
        }
        Ok(())
    }

    /// Trains `epochs` more epochs; returns the history of every epoch so far.
    /// Stops early when a callback asks to (early stopping). The loop and its
    /// events are in the module doc of [`crate::train::callbacks`].
    ///
    /// The loop runs on one of rayon's worker threads (`rayon::scope`), the
    /// calling thread waiting for it: each parallel op of a step (the
    /// products, the fused optimizer step) then starts from inside the pool
    /// instead of handing its work over from outside and sleeping until it
    /// is done: two thread switches fewer per op.
    /// The numbers are the same bits: no op's split depends on the thread
    /// that starts it. While it waits for the loader's next batch, the
    /// worker runs the pool's queued work (the batch thread's random
    /// transforms are such work), so a one-thread pool does not hang.
    /// Meanwhile a second worker stays awake polling the pool for the ops'
    /// work instead of sleeping between ops (`train/pool_awake.rs`), and the
    /// backward keeps the weights' gradients out of Candle's zero-fill + add
    /// ([`crate::ops::captured_grads`]).
    pub fn fit(&mut self, epochs: usize) -> Result<History> {
        pool_awake::run(|| self.fit_in_pool(epochs))
    }

    fn fit_in_pool(&mut self, epochs: usize) -> Result<History> {
        // a model built in another notebook cell: this cell's tensor ids above its own
        super::tensor_ids::issue_past(&self.model)?;
        self.attach()?;
        let first = self.history.len();
        let last = first + epochs;
        // training goes on from the weights the model holds now
        self.history.restored_epoch = None;
        // The loop's own callbacks run before the user's, in this order.
        let mut builtins: Vec<Box<dyn Callback>> = vec![
            Box::new(DivergenceCheck),
            Box::new(SchedulerStep),
            Box::new(ProgressReport::new(self.progress)),
        ];
        let mut stopped = None;
        for e in first..last {
            let record = self.run_epoch(e, last, &mut builtins)?;
            self.history.push(record);
            let mut ctx = EpochContext {
                history: &self.history,
                model: &self.model,
                optimizer: self.optimizer.as_mut(),
                // (the cast shortens the boxed scheduler's `'static` bound to the context's)
                scheduler: match self.scheduler.as_mut() {
                    Some(s) => Some(s.as_mut() as &mut dyn Scheduler),
                    None => None,
                },
                epochs: last,
                stop: None,
            };
            for cb in builtins.iter_mut().chain(self.callbacks.iter_mut()) {
                cb.after_epoch(&mut ctx)?;
            }
            if let Some(why) = ctx.stop {
                stopped = Some(why);
                break;
            }
        }
        for cb in builtins.iter_mut().chain(self.callbacks.iter_mut()) {
            cb.after_fit(&self.model, &mut self.history)?;
        }
        if let (Some(why), true) = (stopped, self.progress != Progress::Silent) {
            println!("stopped after epoch {}: {why}", self.history.len());
        }
        Ok(self.history.clone())
    }

    /// One epoch: the training batches with their events, then validation.
    fn run_epoch(
        &mut self,
        e: usize,
        last: usize,
        builtins: &mut [Box<dyn Callback>],
    ) -> Result<EpochRecord> {
        let start = Instant::now();
        // Dropout masks of epoch e do not depend on what ran before it.
        crate::device::set_stream_position((e as u64 + 1) << 32);
        let lr = self.optimizer.lr();
        let classes = self.train.dataset().classes.len();
        let mut cm = ConfusionMatrix::new(classes);
        let (mut loss_sum, mut seen) = (0.0f64, 0usize);
        let params = if self.l2 > 0.0 {
            self.model.named_params()
        } else {
            Vec::new()
        };
        let batches = self.train.num_batches();
        let callbacks = &mut self.callbacks;
        for (b, batch) in self.train.iter_epoch(e).enumerate() {
            let batch = batch?;
            pool_awake::arm();
            let mut ctx = BatchContext {
                epoch: e + 1,
                epochs: last,
                batch: b + 1,
                batches,
                loss: None,
                running_loss: if seen == 0 {
                    0.0
                } else {
                    loss_sum / seen as f64
                },
                samples: batch.indices.len(),
                model: &self.model,
                optimizer: self.optimizer.as_mut(),
            };
            for cb in builtins.iter_mut().chain(callbacks.iter_mut()) {
                cb.before_batch(&mut ctx)?;
            }
            let x = batch.x.to_device(self.model.device())?;
            let y = batch.y.to_device(self.model.device())?;
            let out = self.model.forward_t(&x, true)?;
            let mut loss = self.loss.forward(&out, &y)?;
            if self.l2 > 0.0 {
                loss = (loss + l2_penalty(&params, self.l2)?)?;
            }
            let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            ctx.loss = Some(value);
            for cb in builtins.iter_mut().chain(callbacks.iter_mut()) {
                cb.after_loss(&mut ctx)?;
            }
            let grads = crate::ops::captured_grads::backward(&loss)?;
            ctx.optimizer.step(&grads)?;
            let n = batch.indices.len();
            loss_sum += value * n as f64;
            seen += n;
            cm.add(&argmax(&out)?, &y.to_vec1::<u32>()?)?;
            ctx.running_loss = loss_sum / seen as f64;
            for cb in builtins.iter_mut().chain(callbacks.iter_mut()) {
                cb.after_batch(&mut ctx)?;
            }
        }
        if seen == 0 {
            return Err(Error::config(
                "train loader",
                "it yielded no batch (empty dataset, or drop_last with fewer samples than a batch)",
            ));
        }
        let train_loss = loss_sum / seen as f64;
        let train_metrics = self
            .metrics
            .iter()
            .map(|m| (m.name(), m.compute(&cm)))
            .collect();
        let (val_loss, val_metrics) = match &self.val {
            Some(v) => {
                let ev = self.evaluate(v)?;
                (Some(ev.loss), ev.metrics)
            }
            None => (None, Vec::new()),
        };
        Ok(EpochRecord {
            epoch: e + 1,
            train_loss,
            val_loss,
            train_metrics,
            val_metrics,
            lr,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Loss and metrics on `loader` in eval mode (no gradients).
    pub fn evaluate(&self, loader: &Loader) -> Result<Evaluation> {
        let mut cm = ConfusionMatrix::new(loader.dataset().classes.len());
        let (mut loss_sum, mut seen) = (0.0f64, 0usize);
        for batch in loader.iter_epoch(0) {
            let batch = batch?;
            let x = batch.x.to_device(self.model.device())?;
            let y = batch.y.to_device(self.model.device())?;
            let out = self.model.forward_t(&x, false)?.detach();
            let n = batch.indices.len();
            // The mean of the reduced loss, weighted by batch size (torch's usual
            // `total += loss.item() * len(x)`), so class weights count as in training.
            let l = self
                .loss
                .forward(&out, &y)?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
            loss_sum += l * n as f64;
            seen += n;
            cm.add(&argmax(&out)?, &y.to_vec1::<u32>()?)?;
        }
        if seen == 0 {
            return Err(Error::config(
                "loader",
                "it yielded no batch: nothing to evaluate",
            ));
        }
        let metrics = self
            .metrics
            .iter()
            .map(|m| (m.name(), m.compute(&cm)))
            .collect();
        Ok(Evaluation {
            loss: loss_sum / seen as f64,
            metrics,
            confusion: cm,
        })
    }

    /// Predicted class of every sample of `loader`, in the loader's order.
    pub fn predict(&self, loader: &Loader) -> Result<Vec<u32>> {
        Ok(self.interpret(loader)?.predictions)
    }

    /// Predictions, targets and per-sample losses in dataset order, for
    /// `most_confused`, `top_losses` and the misclassified gallery.
    pub fn interpret(&self, loader: &Loader) -> Result<Interpretation> {
        let n = loader.dataset().len();
        let mut preds = vec![0u32; n];
        let mut targets = vec![0u32; n];
        let mut losses = vec![f64::NAN; n];
        let mut filled = vec![false; n];
        for batch in loader.iter_epoch(0) {
            let batch = batch?;
            let x = batch.x.to_device(self.model.device())?;
            let y = batch.y.to_device(self.model.device())?;
            let out = self.model.forward_t(&x, false)?.detach();
            let l = self
                .loss
                .per_sample(&out, &y)?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?;
            let p = argmax(&out)?;
            let t = y.to_vec1::<u32>()?;
            for (k, &i) in batch.indices.iter().enumerate() {
                preds[i] = p[k];
                targets[i] = t[k];
                losses[i] = l[k];
                filled[i] = true;
            }
        }
        // A loader with a sampler may skip samples: keep those it visited.
        let keep: Vec<usize> = (0..n).filter(|&i| filled[i]).collect();
        Interpretation::new(
            loader.dataset().classes.clone(),
            keep.iter().map(|&i| preds[i]).collect(),
            keep.iter().map(|&i| targets[i]).collect(),
            keep.iter().map(|&i| losses[i]).collect(),
        )
    }
}

/// Index of the largest output of each row.
pub fn argmax(out: &Tensor) -> Result<Vec<u32>> {
    Ok(out
        .argmax(D::Minus1)?
        .to_dtype(DType::U32)?
        .to_vec1::<u32>()?)
}

/// `epoch 3/10  train_loss 0.2143  val_loss 0.1987  val_accuracy 0.9412  lr 1.0e-3  4.2s`
pub fn epoch_line(r: &EpochRecord, total: usize) -> String {
    let mut s = format!(
        "epoch {}/{}  train_loss {:.4}",
        r.epoch, total, r.train_loss
    );
    for (n, v) in &r.train_metrics {
        s.push_str(&format!("  train_{n} {v:.4}"));
    }
    if let Some(v) = r.val_loss {
        s.push_str(&format!("  val_loss {v:.4}"));
    }
    for (n, v) in &r.val_metrics {
        s.push_str(&format!("  val_{n} {v:.4}"));
    }
    s.push_str(&format!("  lr {:.1e}  {:.1}s", r.lr, r.seconds));
    s
}
