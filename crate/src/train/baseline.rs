//! A classical baseline to compare a network with: a random forest
//! (smartcore's `RandomForestClassifier`, Gini impurity, √features per split,
//! bootstrap samples) trained on the raw pixels `x = pixel / max_value`.
//!
//! hw4 trains scikit-learn's `RandomForestClassifier(n_estimators=10,
//! max_depth=10)` on digits and gets 0.93–0.97 accuracy:
//!
//! ```no_run
//! use nnlab::prelude::*;
//! use nnlab::train::baseline::random_forest;
//! let digits = Digits::load()?;
//! let (train, val) = train_test_split(&digits.train, 0.3, 20231110, true)?;
//! let forest = random_forest(&train, &val, 10, 10, 0)?;
//! println!("{forest}");   // random forest (10 trees, depth ≤ 10): accuracy 0.95… in 0.05 s
//! # Ok::<(), nnlab::Error>(())
//! ```

use std::fmt;
use std::time::Instant;

use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

use crate::data::Dataset;
use crate::{Error, Result};

/// What the baseline scored: accuracy on the evaluation set, its predictions
/// and the seconds spent fitting and predicting.
#[derive(Clone, Debug)]
pub struct Baseline {
    pub name: String,
    pub accuracy: f64,
    pub predictions: Vec<u32>,
    pub seconds: f64,
}

impl fmt::Display for Baseline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: accuracy {:.4} in {:.3} s",
            self.name, self.accuracy, self.seconds
        )
    }
}

fn matrix(ds: &Dataset, what: &str) -> Result<DenseMatrix<f64>> {
    if ds.is_empty() {
        return Err(Error::config(what, "the dataset is empty"));
    }
    let scale = 1.0 / f64::from(ds.max_value.max(1));
    let rows: Vec<Vec<f64>> = (0..ds.len())
        .map(|i| ds.image(i).iter().map(|&p| f64::from(p) * scale).collect())
        .collect();
    DenseMatrix::from_2d_vec(&rows)
        .map_err(|e| Error::config(what, format!("cannot build the feature matrix: {e}")))
}

/// Fits `trees` trees of depth ≤ `max_depth` on `train` (seeded) and scores
/// them on `eval`. Both sets must have the same image shape.
pub fn random_forest(
    train: &Dataset,
    eval: &Dataset,
    trees: u16,
    max_depth: u16,
    seed: u64,
) -> Result<Baseline> {
    if train.shape != eval.shape {
        return Err(Error::shape(
            "random_forest",
            format!(
                "train images are {:?}, evaluation images {:?}",
                train.shape, eval.shape
            ),
        ));
    }
    if trees == 0 || max_depth == 0 {
        return Err(Error::config(
            "random_forest",
            format!("trees = {trees}, max_depth = {max_depth}: both must be positive"),
        ));
    }
    let start = Instant::now();
    let x = matrix(train, "train")?;
    let params = RandomForestClassifierParameters::default()
        .with_n_trees(trees)
        .with_max_depth(max_depth)
        .with_seed(seed);
    let forest = RandomForestClassifier::fit(&x, &train.labels, params)
        .map_err(|e| Error::config("random_forest", format!("fit failed: {e}")))?;
    let predictions: Vec<u32> = forest
        .predict(&matrix(eval, "eval")?)
        .map_err(|e| Error::config("random_forest", format!("predict failed: {e}")))?;
    let correct = predictions
        .iter()
        .zip(&eval.labels)
        .filter(|(p, t)| p == t)
        .count();
    Ok(Baseline {
        name: format!("random forest ({trees} trees, depth ≤ {max_depth})"),
        accuracy: correct as f64 / eval.len() as f64,
        predictions,
        seconds: start.elapsed().as_secs_f64(),
    })
}
