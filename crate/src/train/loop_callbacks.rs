//! The callbacks every `fit` runs before the user's (see `callbacks.rs` for
//! the events):
//!
//! - [`DivergenceCheck`] (after_loss): a NaN or infinite loss stops the run
//!   with [`Error::Diverged`] naming the epoch, the batch and the lr.
//! - [`SchedulerStep`] (after_epoch): the scheduler steps on its monitored
//!   column (`ReduceLrOnPlateau::monitor`), by default the validation loss
//!   (else the training loss), `lr ← scheduler.step(lr, metric)`, and
//!   the optimizer takes the next epoch's learning rate.
//! - [`ProgressReport`]: a live bar within the epoch in a terminal
//!   (`Progress::Auto`), one line per epoch unless `Progress::Silent`.

use std::io::IsTerminal;
use std::time::Instant;

use crate::train::callbacks::{BatchContext, Callback, EpochContext};
use crate::train::learner::{epoch_line, Progress};
use crate::{Error, Result};

/// Stops the run at the first non-finite batch loss.
pub(crate) struct DivergenceCheck;

impl Callback for DivergenceCheck {
    fn name(&self) -> String {
        "DivergenceCheck".into()
    }

    fn after_loss(&mut self, ctx: &mut BatchContext) -> Result<()> {
        match ctx.loss {
            Some(loss) if !loss.is_finite() => Err(Error::Diverged {
                epoch: ctx.epoch,
                batch: ctx.batch,
                lr: ctx.optimizer.lr(),
                loss,
            }),
            _ => Ok(()),
        }
    }
}

/// Steps the learner's scheduler, if it has one, at the end of each epoch.
pub(crate) struct SchedulerStep;

impl Callback for SchedulerStep {
    fn name(&self) -> String {
        "SchedulerStep".into()
    }

    fn after_epoch(&mut self, ctx: &mut EpochContext) -> Result<()> {
        let Some(scheduler) = ctx.scheduler.as_deref_mut() else {
            return Ok(());
        };
        let Some(record) = ctx.history.epochs.last() else {
            return Ok(());
        };
        // the history and the scheduler are separate borrows of `ctx`
        let metric = match scheduler.monitor() {
            Some(column) => ctx.history.last_or_nan(column)?,
            None => record.val_loss.unwrap_or(record.train_loss),
        };
        ctx.optimizer
            .set_lr(scheduler.step(record.lr, Some(metric))?);
        Ok(())
    }
}

/// The progress bar within an epoch (on a terminal) and the epoch line.
pub(crate) struct ProgressReport {
    bar: bool,
    lines: bool,
    live: Option<ProgressBar>,
}

impl ProgressReport {
    pub(crate) fn new(progress: Progress) -> ProgressReport {
        ProgressReport {
            bar: progress == Progress::Auto && std::io::stdout().is_terminal(),
            lines: progress != Progress::Silent,
            live: None,
        }
    }
}

impl Callback for ProgressReport {
    fn name(&self) -> String {
        "ProgressReport".into()
    }

    fn before_batch(&mut self, ctx: &mut BatchContext) -> Result<()> {
        if self.bar && ctx.batch == 1 {
            self.live = Some(ProgressBar::new(ctx.epoch, ctx.epochs, ctx.batches));
        }
        Ok(())
    }

    fn after_batch(&mut self, ctx: &mut BatchContext) -> Result<()> {
        if let Some(bar) = &self.live {
            bar.update(ctx.batch, ctx.running_loss);
        }
        if ctx.batch == ctx.batches {
            if let Some(bar) = self.live.take() {
                bar.finish();
            }
        }
        Ok(())
    }

    fn after_epoch(&mut self, ctx: &mut EpochContext) -> Result<()> {
        if let Some(bar) = self.live.take() {
            bar.finish();
        }
        if let (true, Some(record)) = (self.lines, ctx.history.epochs.last()) {
            println!("{}", epoch_line(record, ctx.epochs));
        }
        Ok(())
    }
}

/// A one-line terminal bar redrawn in place (`\r`), only used on a TTY.
struct ProgressBar {
    epoch: usize,
    total: usize,
    batches: usize,
    start: Instant,
}

impl ProgressBar {
    fn new(epoch: usize, total: usize, batches: usize) -> ProgressBar {
        ProgressBar {
            epoch,
            total,
            batches,
            start: Instant::now(),
        }
    }

    fn update(&self, done: usize, loss: f64) {
        use std::io::Write;
        if !done.is_multiple_of(8) && done != self.batches {
            return;
        }
        let width = 30;
        let filled = (done * width) / self.batches.max(1);
        let secs = self.start.elapsed().as_secs_f64();
        let eta = secs / done as f64 * (self.batches - done) as f64;
        print!(
            "\repoch {}/{} [{}{}] {}/{} loss {:.4} {:.0}s<{:.0}s ",
            self.epoch,
            self.total,
            "#".repeat(filled),
            "-".repeat(width - filled),
            done,
            self.batches,
            loss,
            secs,
            eta
        );
        let _ = std::io::stdout().flush();
    }

    fn finish(self) {
        print!("\r{}\r", " ".repeat(90));
    }
}
