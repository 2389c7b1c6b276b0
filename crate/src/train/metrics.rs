//! Classification metrics from a confusion matrix, with scikit-learn's
//! definitions.
//!
//! `C[t][p]` counts samples of true class `t` predicted as `p`.
//! precision_k = `C[k][k] / Σ_t C[t][k]`, recall_k = `C[k][k] / Σ_p C[k][p]`,
//! F1_k = 2·P·R / (P + R) (0 when P + R = 0, sklearn's `zero_division=0`).
//! Macro F1 averages F1_k over the labels present in the targets or the
//! predictions (sklearn's `labels=None`); weighted F1 weights F1_k by the
//! support `Σ_p C[k][p]`.
//!
//! ```
//! use nnlab::train::metrics::ConfusionMatrix;
//! let cm = ConfusionMatrix::from_labels(&[0, 1, 1, 2], &[0, 1, 2, 2], 3).unwrap();
//! assert_eq!(cm.accuracy(), 0.75);
//! ```

use crate::{Error, Result};

/// Counts of (true class, predicted class) pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfusionMatrix {
    classes: usize,
    /// Row-major `classes × classes`, row = true class, column = prediction.
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix for `classes` classes.
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// The matrix of `predictions` against `targets`.
    pub fn from_labels(predictions: &[u32], targets: &[u32], classes: usize) -> Result<Self> {
        let mut cm = Self::new(classes);
        cm.add(predictions, targets)?;
        Ok(cm)
    }

    /// Adds a batch of predictions.
    pub fn add(&mut self, predictions: &[u32], targets: &[u32]) -> Result<()> {
        if predictions.len() != targets.len() {
            return Err(Error::config(
                "predictions",
                format!(
                    "{} predictions for {} targets, expected as many",
                    predictions.len(),
                    targets.len()
                ),
            ));
        }
        for (i, (&p, &t)) in predictions.iter().zip(targets).enumerate() {
            for (what, v) in [("predictions", p), ("targets", t)] {
                if v as usize >= self.classes {
                    return Err(Error::config(
                        format!("{what}[{i}]"),
                        format!("class {v}, expected 0..{}", self.classes),
                    ));
                }
            }
            self.counts[t as usize * self.classes + p as usize] += 1;
        }
        Ok(())
    }

    pub fn num_classes(&self) -> usize {
        self.classes
    }

    /// `C[t][p]`.
    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.classes + predicted]
    }

    /// Rows of counts (row = true class).
    pub fn rows(&self) -> Vec<Vec<u64>> {
        self.counts
            .chunks(self.classes.max(1))
            .map(|r| r.to_vec())
            .collect()
    }

    /// Each row divided by its sum (recall on the diagonal); empty rows stay 0.
    pub fn normalized(&self) -> Vec<Vec<f64>> {
        self.rows()
            .into_iter()
            .map(|r| {
                let s: u64 = r.iter().sum();
                r.iter()
                    .map(|&c| if s == 0 { 0.0 } else { c as f64 / s as f64 })
                    .collect()
            })
            .collect()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Samples of each true class.
    pub fn support(&self) -> Vec<u64> {
        (0..self.classes)
            .map(|t| (0..self.classes).map(|p| self.get(t, p)).sum())
            .collect()
    }

    fn predicted(&self) -> Vec<u64> {
        (0..self.classes)
            .map(|p| (0..self.classes).map(|t| self.get(t, p)).sum())
            .collect()
    }

    /// `Σ_k C[k][k] / N` (0 for an empty matrix).
    pub fn accuracy(&self) -> f64 {
        let n = self.total();
        if n == 0 {
            return 0.0;
        }
        (0..self.classes).map(|k| self.get(k, k)).sum::<u64>() as f64 / n as f64
    }

    /// Per-class precision `C[k][k] / Σ_t C[t][k]`.
    pub fn precision(&self) -> Vec<f64> {
        let pred = self.predicted();
        (0..self.classes)
            .map(|k| ratio(self.get(k, k), pred[k]))
            .collect()
    }

    /// Per-class recall `C[k][k] / Σ_p C[k][p]`.
    pub fn recall(&self) -> Vec<f64> {
        let sup = self.support();
        (0..self.classes)
            .map(|k| ratio(self.get(k, k), sup[k]))
            .collect()
    }

    /// Per-class F1 = 2·TP / (2·TP + FP + FN).
    pub fn f1(&self) -> Vec<f64> {
        let (sup, pred) = (self.support(), self.predicted());
        (0..self.classes)
            .map(|k| ratio(2 * self.get(k, k), sup[k] + pred[k]))
            .collect()
    }

    /// Classes that occur among the targets or the predictions.
    fn present(&self) -> Vec<usize> {
        let (sup, pred) = (self.support(), self.predicted());
        (0..self.classes)
            .filter(|&k| sup[k] + pred[k] > 0)
            .collect()
    }

    fn macro_of(&self, per_class: Vec<f64>) -> f64 {
        let present = self.present();
        if present.is_empty() {
            return 0.0;
        }
        present.iter().map(|&k| per_class[k]).sum::<f64>() / present.len() as f64
    }

    /// Unweighted mean of per-class F1 over the classes present.
    pub fn f1_macro(&self) -> f64 {
        self.macro_of(self.f1())
    }

    /// Mean of per-class F1 weighted by support.
    pub fn f1_weighted(&self) -> f64 {
        let n = self.total();
        if n == 0 {
            return 0.0;
        }
        let sup = self.support();
        self.f1()
            .iter()
            .zip(&sup)
            .map(|(f, &s)| f * s as f64)
            .sum::<f64>()
            / n as f64
    }

    pub fn precision_macro(&self) -> f64 {
        self.macro_of(self.precision())
    }

    pub fn recall_macro(&self) -> f64 {
        self.macro_of(self.recall())
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// A number computed from the confusion matrix of an epoch.
pub trait Metric: Send + Sync {
    /// Column name in the history, e.g. `accuracy`, `f1_macro`.
    fn name(&self) -> String;
    fn compute(&self, cm: &ConfusionMatrix) -> f64;
}

struct Named(&'static str, fn(&ConfusionMatrix) -> f64);

impl Metric for Named {
    fn name(&self) -> String {
        self.0.to_string()
    }
    fn compute(&self, cm: &ConfusionMatrix) -> f64 {
        (self.1)(cm)
    }
}

/// Fraction of correct predictions.
pub fn accuracy() -> Box<dyn Metric> {
    Box::new(Named("accuracy", ConfusionMatrix::accuracy))
}

/// sklearn's `f1_score(average="macro")`.
pub fn f1_macro() -> Box<dyn Metric> {
    Box::new(Named("f1_macro", ConfusionMatrix::f1_macro))
}

/// sklearn's `f1_score(average="weighted")`.
pub fn f1_weighted() -> Box<dyn Metric> {
    Box::new(Named("f1_weighted", ConfusionMatrix::f1_weighted))
}

/// sklearn's `precision_score(average="macro")`.
pub fn precision_macro() -> Box<dyn Metric> {
    Box::new(Named("precision_macro", ConfusionMatrix::precision_macro))
}

/// sklearn's `recall_score(average="macro")`.
pub fn recall_macro() -> Box<dyn Metric> {
    Box::new(Named("recall_macro", ConfusionMatrix::recall_macro))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values from scikit-learn 1.9.1:
    // from sklearn.metrics import *
    // t = [0,0,0,1,1,2,2,2,2,3,3,1,0,2,3]
    // p = [0,1,0,1,2,2,2,0,2,3,1,1,0,2,0]
    // accuracy_score(t,p), f1_score(t,p,average="macro"), f1_score(t,p,average="weighted"),
    // precision_score(t,p,average=None), recall_score(t,p,average=None),
    // f1_score([0,0,3],[0,3,3],average="macro")  # class 1,2 absent from both
    const T: [u32; 15] = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 1, 0, 2, 3];
    const P: [u32; 15] = [0, 1, 0, 1, 2, 2, 2, 0, 2, 3, 1, 1, 0, 2, 0];

    #[test]
    fn matches_sklearn() -> crate::TestResult {
        let cm = ConfusionMatrix::from_labels(&P, &T, 4)?;
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        close(cm.accuracy(), 0.6666666666666666);
        close(cm.f1_macro(), 0.6345238095238095);
        close(cm.f1_weighted(), 0.6587301587301586);
        for (a, b) in cm.precision().iter().zip([0.6, 0.5, 0.8, 1.0]) {
            close(*a, b);
        }
        for (a, b) in cm
            .recall()
            .iter()
            .zip([0.75, 0.6666666666666666, 0.8, 0.3333333333333333])
        {
            close(*a, b);
        }
        let sparse = ConfusionMatrix::from_labels(&[0, 3, 3], &[0, 0, 3], 4)?;
        close(sparse.f1_macro(), 0.6666666666666666);
        Ok(())
    }

    #[test]
    fn rows_and_normalization() -> crate::TestResult {
        let cm = ConfusionMatrix::from_labels(&P, &T, 4)?;
        assert_eq!(cm.rows()[0], vec![3, 1, 0, 0]);
        assert_eq!(cm.support(), vec![4, 3, 5, 3]);
        assert!((cm.normalized()[0][0] - 0.75).abs() < 1e-15);
        assert_eq!(cm.total(), 15);
        Ok(())
    }

    #[test]
    fn bad_labels_are_errors() {
        let e = ConfusionMatrix::from_labels(&[0, 5], &[0, 1], 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("predictions[1]") && e.contains("class 5"), "{e}");
        let e = ConfusionMatrix::from_labels(&[0], &[0, 1], 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 predictions for 2 targets"), "{e}");
    }
}
