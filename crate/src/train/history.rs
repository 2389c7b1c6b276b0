//! What a training run leaves behind: one record per epoch with the train
//! and validation loss, every metric, the learning rate and the seconds it
//! took. Columns are named `train_loss`, `val_loss`, `train_<metric>`,
//! `val_<metric>`, `lr`, `seconds`.
//!
//! One value in one call: [`History::last`] (the last epoch's value of a
//! column) and [`History::best`] (its best value). "Best" has one meaning
//! everywhere in the crate ([`minimize`]): the smallest value of a loss
//! (a column whose name ends in `loss`), the largest of anything else, as
//! fastai's trackers decide from the monitored name.
//!
//! ```
//! use nnlab::train::history::{EpochRecord, History};
//! let mut h = History::new("2 layers");
//! for (epoch, loss, acc) in [(1, 0.3, 0.92), (2, 0.35, 0.91)] {
//!     h.push(EpochRecord { epoch, train_loss: 0.4, val_loss: Some(loss), lr: 1e-3, seconds: 2.0,
//!                          train_metrics: vec![("accuracy".into(), 0.9)], val_metrics: vec![("accuracy".into(), acc)] });
//! }
//! assert_eq!(h.column("val_accuracy")?, vec![0.92, 0.91]);
//! assert_eq!(h.last("val_accuracy")?, 0.91);
//! assert_eq!(h.best("val_loss")?, 0.3);                 // a loss: the smallest
//! assert_eq!(h.best_epoch("val_accuracy")?.epoch, 1);  // a metric: the largest
//! assert!(h.last("val_f1").unwrap_err().to_string().contains("val_accuracy"));
//! # Ok::<(), nnlab::Error>(())
//! ```

use crate::display::{table_bundle, MimeBundle, Show};
use crate::{Error, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// One epoch of training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number (continues across calls of `fit`).
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Loss on the validation loader, when there is one.
    pub val_loss: Option<f64>,
    /// Metrics on the training predictions of the epoch, `(name, value)`.
    pub train_metrics: Vec<(String, f64)>,
    /// Metrics on the validation loader.
    pub val_metrics: Vec<(String, f64)>,
    /// Learning rate used during the epoch.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
}

/// Every epoch of a run, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The run's name (usually the model's).
    pub name: String,
    pub epochs: Vec<EpochRecord>,
    /// The epoch (1-based) whose weights the model holds after training,
    /// when a callback put an earlier epoch's weights back
    /// (`EarlyStopping::restore_best`); `None`: the last epoch's.
    #[serde(default)]
    pub restored_epoch: Option<usize>,
}

impl History {
    pub fn new(name: impl Into<String>) -> Self {
        History {
            name: name.into(),
            epochs: Vec::new(),
            restored_epoch: None,
        }
    }

    pub fn push(&mut self, r: EpochRecord) {
        self.epochs.push(r);
    }

    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// The record of the last epoch, `None` before the first.
    pub fn last_epoch(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }

    /// The last epoch's value of `column`, NaN when no epoch has run or the
    /// last one has no such value (a callback's view, [`crate::train::callbacks::EpochContext::value`]);
    /// an error only for a column that is not in this history.
    pub fn last_or_nan(&self, column: &str) -> Result<f64> {
        Ok(self.column(column)?.last().copied().unwrap_or(f64::NAN))
    }

    /// The last epoch's value of `column` (`val_accuracy`, `train_loss`, …);
    /// an error names the column and the columns there are, or says that no
    /// epoch has run or that the last epoch has no such value.
    pub fn last(&self, column: &str) -> Result<f64> {
        let values = self.column(column)?;
        match values.last() {
            None => Err(self.no_epochs(column)),
            Some(v) if v.is_nan() => Err(Error::config(
                "column",
                format!(
                    "`{column}` has no value at the last epoch of `{}`",
                    self.name
                ),
            )),
            Some(&v) => Ok(v),
        }
    }

    /// The best value of `column` over the epochs: the smallest of a loss,
    /// the largest of anything else ([`minimize`]).
    pub fn best(&self, column: &str) -> Result<f64> {
        let e = self.best_epoch(column)?;
        Ok(value(e, column).unwrap_or(f64::NAN))
    }

    /// The record of the epoch where `column` is best (the first such epoch):
    /// the smallest loss, the largest of anything else ([`minimize`]).
    pub fn best_epoch(&self, column: &str) -> Result<&EpochRecord> {
        let values = self.column(column)?;
        let lower = minimize(column);
        let mut best: Option<usize> = None;
        for (i, &v) in values.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            if best.is_none_or(|b| if lower { v < values[b] } else { v > values[b] }) {
                best = Some(i);
            }
        }
        best.map(|i| &self.epochs[i])
            .ok_or_else(|| self.no_epochs(column))
    }

    /// Mean wall-clock seconds of an epoch (0 before the first).
    pub fn seconds_per_epoch(&self) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        self.epochs.iter().map(|e| e.seconds).sum::<f64>() / self.len() as f64
    }

    /// The value of `column` at the epoch whose weights the model holds:
    /// the restored epoch ([`History::restored_epoch`]) or else the last.
    /// This is what evaluating the trained model reproduces.
    pub fn kept(&self, column: &str) -> Result<f64> {
        match self.restored_epoch {
            None => self.last(column),
            Some(e) => {
                let values = self.column(column)?;
                match values.get(e.wrapping_sub(1)) {
                    Some(v) if !v.is_nan() => Ok(*v),
                    _ => Err(Error::config(
                        "column",
                        format!(
                            "`{column}` has no value at epoch {e} (the restored one) of `{}`, which has {} epochs",
                            self.name,
                            self.len()
                        ),
                    )),
                }
            }
        }
    }

    /// The run whose trained model is best by `column` — ranked by
    /// [`History::kept`], the value at the epoch whose weights each model
    /// holds (the last epoch, or the best one when early stopping restored
    /// it); the smallest loss, the largest of anything else; the first of
    /// equal ones: `History::best_run(&runs, "val_accuracy")?`. Runs without
    /// a value there are passed over.
    pub fn best_run<'a>(runs: &'a [History], column: &str) -> Result<&'a History> {
        let lower = minimize(column);
        let mut best: Option<(&History, f64)> = None;
        for h in runs {
            let Ok(v) = h.kept(column) else { continue };
            if best.is_none_or(|(_, b)| if lower { v < b } else { v > b }) {
                best = Some((h, v));
            }
        }
        match (best, runs.first()) {
            (Some((h, _)), _) => Ok(h),
            (None, None) => Err(Error::config("runs", "expected at least one history")),
            // every run lacks it: the first run's error names the columns there are
            (None, Some(first)) => first.kept(column).map(|_| first),
        }
    }

    fn no_epochs(&self, column: &str) -> Error {
        Error::config(
            "column",
            format!(
                "`{column}` has no values yet: `{}` has not trained an epoch",
                self.name
            ),
        )
    }

    /// Column names in order: epoch, train_loss, val_loss, train_*, val_*, lr, seconds.
    pub fn columns(&self) -> Vec<String> {
        let mut cols = vec!["epoch".to_string(), "train_loss".into()];
        if self.epochs.iter().any(|e| e.val_loss.is_some()) {
            cols.push("val_loss".into());
        }
        if let Some(e) = self.epochs.first() {
            cols.extend(e.train_metrics.iter().map(|(n, _)| format!("train_{n}")));
            cols.extend(e.val_metrics.iter().map(|(n, _)| format!("val_{n}")));
        }
        cols.push("lr".into());
        cols.push("seconds".into());
        cols
    }

    /// The values of one column, one per epoch (NaN where an epoch lacks it).
    pub fn column(&self, name: &str) -> Result<Vec<f64>> {
        if !self.columns().iter().any(|c| c == name) {
            return Err(Error::config(
                "column",
                format!(
                    "`{name}` is not in this history; expected one of {}",
                    self.columns().join(", ")
                ),
            ));
        }
        Ok(self
            .epochs
            .iter()
            .map(|e| value(e, name).unwrap_or(f64::NAN))
            .collect())
    }

    /// One row per epoch, one column per quantity.
    pub fn to_dataframe(&self) -> Result<DataFrame> {
        let mut cols: Vec<Column> = Vec::new();
        for name in self.columns() {
            if name == "epoch" {
                let v: Vec<u32> = self.epochs.iter().map(|e| e.epoch as u32).collect();
                cols.push(Column::new("epoch".into(), v));
            } else {
                cols.push(Column::new(name.as_str().into(), self.column(&name)?));
            }
        }
        Ok(DataFrame::new(self.epochs.len(), cols)?)
    }

    /// One row per run: `run`, `epochs`, the value of every loss and metric
    /// column at the epoch whose weights the run's model holds
    /// ([`History::kept`]: the last epoch, or the restored best one), and
    /// `seconds_per_epoch` (mean). When a run was restored to an earlier
    /// epoch, a `kept_epoch` column says which epoch the values are from.
    /// Columns absent from a run are null there.
    pub fn compare(runs: &[History]) -> Result<DataFrame> {
        if runs.is_empty() {
            return Err(Error::config("runs", "expected at least one history"));
        }
        let mut names: Vec<String> = Vec::new();
        for h in runs {
            for c in h.columns() {
                if !matches!(c.as_str(), "epoch" | "lr" | "seconds") && !names.contains(&c) {
                    names.push(c);
                }
            }
        }
        let mut cols = vec![
            Column::new(
                "run".into(),
                runs.iter().map(|h| h.name.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "epochs".into(),
                runs.iter().map(|h| h.len() as u32).collect::<Vec<_>>(),
            ),
        ];
        if runs.iter().any(|h| h.restored_epoch.is_some()) {
            cols.push(Column::new(
                "kept_epoch".into(),
                runs.iter()
                    .map(|h| h.restored_epoch.unwrap_or(h.len()) as u32)
                    .collect::<Vec<_>>(),
            ));
        }
        for name in &names {
            let v: Vec<Option<f64>> = runs.iter().map(|h| h.kept(name).ok()).collect();
            cols.push(Column::new(name.as_str().into(), v));
        }
        let secs: Vec<Option<f64>> = runs
            .iter()
            .map(|h| (!h.is_empty()).then(|| h.seconds_per_epoch()))
            .collect();
        cols.push(Column::new("seconds_per_epoch".into(), secs));
        Ok(DataFrame::new(runs.len(), cols)?)
    }

    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    pub fn from_json(text: &str) -> Result<Self> {
        Ok(serde_json::from_str(text)?)
    }
}

/// Whether a smaller value of `column` is better: true for a loss (a name
/// ending in `loss`), false for every metric. The one rule behind
/// [`History::best`], the grid's `_best` columns and the callbacks' monitors.
pub fn minimize(column: &str) -> bool {
    column.ends_with("loss")
}

fn value(e: &EpochRecord, name: &str) -> Option<f64> {
    match name {
        "epoch" => Some(e.epoch as f64),
        "train_loss" => Some(e.train_loss),
        "val_loss" => e.val_loss,
        "lr" => Some(e.lr),
        "seconds" => Some(e.seconds),
        _ => {
            let find =
                |m: &[(String, f64)], n: &str| m.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
            if let Some(n) = name.strip_prefix("train_") {
                find(&e.train_metrics, n)
            } else if let Some(n) = name.strip_prefix("val_") {
                find(&e.val_metrics, n)
            } else {
                None
            }
        }
    }
}

impl Show for History {
    fn bundle(&self) -> MimeBundle {
        table_bundle(self.to_dataframe(), 60, &self.headline())
    }
    fn headline(&self) -> String {
        let name = if self.name.is_empty() {
            "history"
        } else {
            self.name.as_str()
        };
        format!("{name}: {} epochs", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(epoch: usize, loss: f64, acc: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: loss,
            val_loss: Some(loss + 0.1),
            train_metrics: vec![("accuracy".into(), acc - 0.01)],
            val_metrics: vec![("accuracy".into(), acc)],
            lr: 0.01,
            seconds: 1.5,
        }
    }

    #[test]
    fn compare_takes_the_last_epoch_of_each_run() -> crate::TestResult {
        let mut a = History::new("a");
        a.push(rec(1, 0.5, 0.8));
        a.push(rec(2, 0.3, 0.9));
        let mut b = History::new("b");
        b.push(rec(1, 0.4, 0.85));
        let df = History::compare(&[a.clone(), b.clone()])?;
        assert_eq!(df.shape(), (2, 7));
        assert!(df.column("kept_epoch").is_err());
        // a run restored to epoch 1 shows epoch 1's values and says so
        let mut restored = a.clone();
        restored.restored_epoch = Some(1);
        let df2 = History::compare(&[restored, b.clone()])?;
        assert_eq!(df2.shape(), (2, 8));
        let kept = df2.column("kept_epoch")?.u32()?.clone();
        assert_eq!((kept.get(0), kept.get(1)), (Some(1), Some(1)));
        assert_eq!(df2.column("val_accuracy")?.f64()?.get(0), Some(0.8));
        assert_eq!(df.column("epochs")?.u32()?.get(0), Some(2));
        assert!(
            (df.column("val_loss")?
                .f64()?
                .get(0)
                .ok_or("empty or null column")?
                - 0.4)
                .abs()
                < 1e-12
        );
        assert_eq!(df.column("val_accuracy")?.f64()?.get(1), Some(0.85));
        assert!(History::compare(&[]).is_err());
        Ok(())
    }

    #[test]
    fn columns_best_and_frame() -> crate::TestResult {
        let mut h = History::new("m");
        for (i, (l, a)) in [(0.5, 0.8), (0.3, 0.9), (0.35, 0.88)]
            .into_iter()
            .enumerate()
        {
            h.push(rec(i + 1, l, a));
        }
        assert_eq!(
            h.columns(),
            [
                "epoch",
                "train_loss",
                "val_loss",
                "train_accuracy",
                "val_accuracy",
                "lr",
                "seconds"
            ]
        );
        assert_eq!(h.best_epoch("val_loss")?.epoch, 2);
        assert_eq!(h.best_epoch("val_accuracy")?.epoch, 2);
        assert_eq!(h.best("val_loss")?, 0.3 + 0.1);
        assert_eq!(h.best("val_accuracy")?, 0.9);
        assert_eq!(h.last("val_accuracy")?, 0.88);
        assert_eq!(h.last_epoch().ok_or("None from h.last_epoch()")?.epoch, 3);
        assert!((h.seconds_per_epoch() - 1.5).abs() < 1e-12);
        let df = h.to_dataframe()?;
        assert_eq!(df.shape(), (3, 7));
        let e = h.column("val_f1").unwrap_err().to_string();
        assert!(e.contains("`val_f1`") && e.contains("val_accuracy"), "{e}");
        let e = h.last("val_f1").unwrap_err().to_string();
        assert!(
            e.contains("`val_f1`") && e.contains("train_loss, val_loss"),
            "{e}"
        );
        let back = History::from_json(&h.to_json()?)?;
        assert_eq!(back, h);
        Ok(())
    }

    #[test]
    fn last_and_best_explain_what_is_missing() {
        let empty = History::new("fresh");
        let e = empty.last("train_loss").unwrap_err().to_string();
        assert!(
            e.contains("`train_loss`") && e.contains("`fresh` has not trained"),
            "{e}"
        );
        assert!(empty.best("train_loss").is_err());
        assert_eq!(empty.seconds_per_epoch(), 0.0);
        let mut no_val = History::new("no val");
        no_val.push(EpochRecord {
            val_loss: None,
            val_metrics: vec![],
            ..rec(1, 0.5, 0.8)
        });
        let e = no_val.last("val_loss").unwrap_err().to_string();
        assert!(
            e.contains("`val_loss`") && e.contains("train_accuracy"),
            "{e}"
        );
    }

    #[test]
    fn best_run_compares_last_values_the_way_the_column_says() -> crate::TestResult {
        let mut a = History::new("a");
        a.push(rec(1, 0.5, 0.8));
        a.push(rec(2, 0.3, 0.85));
        let mut b = History::new("b");
        b.push(rec(1, 0.2, 0.9));
        let mut c = History::new("c"); // ties with b on accuracy: the first one wins
        c.push(rec(1, 0.25, 0.9));
        let runs = [a, b, c];
        assert_eq!(History::best_run(&runs, "val_accuracy")?.name, "b");
        assert_eq!(History::best_run(&runs, "val_loss")?.name, "b");
        assert_eq!(History::best_run(&runs[..1], "train_loss")?.name, "a");
        let e = History::best_run(&runs, "val_f1").unwrap_err().to_string();
        assert!(e.contains("`val_f1`") && e.contains("val_accuracy"), "{e}");
        assert!(History::best_run(&[], "val_loss").is_err());
        assert!(minimize("val_loss") && !minimize("val_f1_macro"));
        Ok(())
    }

    #[test]
    fn best_run_ranks_a_restored_run_by_the_epoch_its_model_holds() -> crate::TestResult {
        // `early` peaked at 0.95 and its best weights were put back; `late`
        // ends higher than `early`'s last epoch but below its kept one.
        let mut early = History::new("early");
        early.push(rec(1, 0.2, 0.95));
        early.push(rec(2, 0.4, 0.80));
        let mut late = History::new("late");
        late.push(rec(1, 0.3, 0.85));
        let runs = [early.clone(), late.clone()];
        assert_eq!(History::best_run(&runs, "val_accuracy")?.name, "late");
        early.restored_epoch = Some(1);
        assert_eq!(early.kept("val_accuracy")?, 0.95);
        assert_eq!(late.kept("val_accuracy")?, 0.85);
        let runs = [early.clone(), late];
        assert_eq!(History::best_run(&runs, "val_accuracy")?.name, "early");
        assert_eq!(History::best_run(&runs, "val_loss")?.name, "early");
        early.restored_epoch = Some(7);
        let e = early.kept("val_loss").unwrap_err().to_string();
        assert!(e.contains("epoch 7") && e.contains("2 epochs"), "{e}");
        // an old JSON without the field reads as "the last epoch"
        let json = r#"{"name":"old","epochs":[]}"#;
        assert_eq!(History::from_json(json)?.restored_epoch, None);
        Ok(())
    }
}
