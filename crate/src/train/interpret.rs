//! Looking at what a model gets wrong (fastai's `ClassificationInterpretation`):
//! the confusion matrix, the most confused (actual, predicted) pairs, the
//! samples with the highest loss, the indices of every misclassified sample.
//!
//! ```
//! use nnlab::train::interpret::Interpretation;
//! let it = Interpretation::new(vec!["a".into(), "b".into()], vec![0, 1, 1], vec![0, 0, 1], vec![0.1, 2.3, 0.2]).unwrap();
//! assert_eq!(it.misclassified(), vec![1]);
//! assert_eq!(it.most_confused(1)[0].count, 1);
//! ```

use crate::display::{MimeBundle, Show};
use crate::table::html::{escape, to_html};
use crate::train::metrics::ConfusionMatrix;
use crate::{Error, Result};
use polars::prelude::df;

/// Predictions, targets and per-sample losses of a whole loader, in sample order.
#[derive(Clone, Debug)]
pub struct Interpretation {
    pub classes: Vec<String>,
    pub predictions: Vec<u32>,
    pub targets: Vec<u32>,
    pub losses: Vec<f64>,
}

/// How often class `actual` was predicted as `predicted`.
#[derive(Clone, Debug, PartialEq)]
pub struct Confusion {
    pub actual: String,
    pub predicted: String,
    pub count: u64,
}

/// One sample with a high loss.
#[derive(Clone, Debug, PartialEq)]
pub struct TopLoss {
    /// Position of the sample in the loader's dataset.
    pub index: usize,
    pub loss: f64,
    pub actual: String,
    pub predicted: String,
}

impl Interpretation {
    pub fn new(
        classes: Vec<String>,
        predictions: Vec<u32>,
        targets: Vec<u32>,
        losses: Vec<f64>,
    ) -> Result<Self> {
        if predictions.len() != targets.len() || losses.len() != targets.len() {
            return Err(Error::config(
                "interpretation",
                format!(
                    "{} predictions, {} targets, {} losses: expected the same number of each",
                    predictions.len(),
                    targets.len(),
                    losses.len()
                ),
            ));
        }
        // Validates the labels once.
        ConfusionMatrix::from_labels(&predictions, &targets, classes.len())?;
        Ok(Interpretation {
            classes,
            predictions,
            targets,
            losses,
        })
    }

    pub fn confusion_matrix(&self) -> ConfusionMatrix {
        ConfusionMatrix::from_labels(&self.predictions, &self.targets, self.classes.len())
            .expect("labels validated in Interpretation::new")
    }

    /// Off-diagonal pairs seen at least `min_count` times, most frequent first.
    pub fn most_confused(&self, min_count: u64) -> Vec<Confusion> {
        let cm = self.confusion_matrix();
        let k = self.classes.len();
        let mut pairs: Vec<Confusion> = (0..k)
            .flat_map(|t| (0..k).map(move |p| (t, p)))
            .filter(|&(t, p)| t != p && cm.get(t, p) >= min_count.max(1))
            .map(|(t, p)| Confusion {
                actual: self.classes[t].clone(),
                predicted: self.classes[p].clone(),
                count: cm.get(t, p),
            })
            .collect();
        pairs.sort_by_key(|p| std::cmp::Reverse(p.count));
        pairs
    }

    /// The `k` samples with the largest loss, largest first.
    pub fn top_losses(&self, k: usize) -> Vec<TopLoss> {
        let mut idx: Vec<usize> = (0..self.losses.len()).collect();
        idx.sort_by(|&a, &b| self.losses[b].total_cmp(&self.losses[a]));
        idx.into_iter()
            .take(k)
            .map(|i| TopLoss {
                index: i,
                loss: self.losses[i],
                actual: self.classes[self.targets[i] as usize].clone(),
                predicted: self.classes[self.predictions[i] as usize].clone(),
            })
            .collect()
    }

    /// Indices of every sample whose prediction is wrong, in order.
    pub fn misclassified(&self) -> Vec<usize> {
        (0..self.targets.len())
            .filter(|&i| self.predictions[i] != self.targets[i])
            .collect()
    }
}

impl Show for Interpretation {
    /// Accuracy, the most confused pairs (top 10) and the top losses (top 10).
    fn bundle(&self) -> MimeBundle {
        let confused = self.most_confused(1);
        let top = self.top_losses(10);
        let confused_df = df!(
            "actual" => confused.iter().take(10).map(|c| c.actual.clone()).collect::<Vec<_>>(),
            "predicted" => confused.iter().take(10).map(|c| c.predicted.clone()).collect::<Vec<_>>(),
            "count" => confused.iter().take(10).map(|c| c.count).collect::<Vec<_>>()
        );
        let top_df = df!(
            "index" => top.iter().map(|t| t.index as u64).collect::<Vec<_>>(),
            "loss" => top.iter().map(|t| t.loss).collect::<Vec<_>>(),
            "actual" => top.iter().map(|t| t.actual.clone()).collect::<Vec<_>>(),
            "predicted" => top.iter().map(|t| t.predicted.clone()).collect::<Vec<_>>()
        );
        let (confused_df, top_df) = match (confused_df, top_df) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                return MimeBundle::text(format!("{}: {e}", self.headline()))
            }
        };
        let html = format!(
            "<div class=\"nnlab-caption\">{}</div>\n<div class=\"nnlab-caption\">Most confused (actual → predicted)</div>\n{}\n<div class=\"nnlab-caption\">Top losses</div>\n{}",
            escape(&self.headline()),
            to_html(&confused_df, 10),
            to_html(&top_df, 10)
        );
        let text = format!(
            "{}\nMost confused:\n{confused_df}\nTop losses:\n{top_df}",
            self.headline()
        );
        MimeBundle::html(html, text)
    }
    fn headline(&self) -> String {
        let n = self.targets.len();
        let right = n - self.misclassified().len();
        let acc = if n == 0 {
            0.0
        } else {
            100.0 * right as f64 / n as f64
        };
        format!(
            "interpretation: {n} samples, {} wrong, accuracy {acc:.2}%",
            n - right
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusions_losses_and_errors() -> crate::TestResult {
        let classes: Vec<String> = ["cat", "dog", "fox"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let it = Interpretation::new(
            classes,
            vec![1, 1, 0, 2, 1, 2],
            vec![0, 0, 0, 2, 2, 1],
            vec![1.5, 0.9, 0.1, 0.2, 3.0, 0.7],
        )?;
        assert_eq!(it.misclassified(), vec![0, 1, 4, 5]);
        let mc = it.most_confused(1);
        assert_eq!(
            (mc[0].actual.as_str(), mc[0].predicted.as_str(), mc[0].count),
            ("cat", "dog", 2)
        );
        assert_eq!(mc.len(), 3);
        assert_eq!(it.most_confused(2).len(), 1);
        let top = it.top_losses(2);
        assert_eq!((top[0].index, top[1].index), (4, 0));
        assert_eq!(top[0].actual, "fox");
        let e = Interpretation::new(vec!["a".into()], vec![0], vec![0, 0], vec![0.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 predictions, 2 targets"), "{e}");
        Ok(())
    }
}
