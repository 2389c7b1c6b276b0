//! Splitting a dataset: random or stratified fractions (scikit-learn's
//! `train_test_split`), fixed counts (hw3's 50k/10k/rest), hw5's
//! deterministic per-class hold-out, and seeded subsets for quick runs.
//!
//! Stratified: `n_test = ⌈f·n⌉` samples are shared out between the classes
//! in proportion to their sizes (floors first, the remainder to the largest
//! fractional parts, as scikit-learn's `_approximate_mode`), then each
//! class's samples are drawn at random.
//!
//! ```
//! use nnlab::data::{Dataset, split::train_test_split};
//! let ds = Dataset::new("toy", "memory", vec!["a".into(), "b".into()], [1, 1, 1],
//!                       vec![0; 10], vec![0, 0, 0, 0, 0, 0, 1, 1, 1, 1], 255).unwrap();
//! let (train, test) = train_test_split(&ds, 0.5, 1, true).unwrap();
//! assert_eq!((train.class_counts(), test.class_counts()), (vec![3, 2], vec![3, 2]));
//! ```

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::data::Dataset;
use crate::{Error, Result};

fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

fn check_fraction(f: f64, field: &str) -> Result<()> {
    if !(f > 0.0 && f < 1.0) {
        return Err(Error::config(field, format!("{f}: expected a fraction strictly between 0 and 1")));
    }
    Ok(())
}

/// Indices of each class, in dataset order.
fn by_class(ds: &Dataset) -> Vec<Vec<usize>> {
    let mut classes = vec![Vec::new(); ds.num_classes()];
    for (i, &l) in ds.labels.iter().enumerate() {
        classes[l as usize].push(i);
    }
    classes
}

/// Shares `total` between groups of sizes `sizes` in proportion (largest remainder).
fn apportion(sizes: &[usize], total: usize) -> Vec<usize> {
    let n: usize = sizes.iter().sum();
    if n == 0 {
        return vec![0; sizes.len()];
    }
    let exact: Vec<f64> = sizes.iter().map(|&s| s as f64 * total as f64 / n as f64).collect();
    let mut out: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut left = total - out.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        if out[i] < sizes[i] {
            out[i] += 1;
            left -= 1;
        }
    }
    out
}

/// `(train, test)` with `⌈test_fraction·n⌉` test samples, stratified by class or not.
pub fn train_test_split(ds: &Dataset, test_fraction: f64, seed: u64, stratify: bool) -> Result<(Dataset, Dataset)> {
    check_fraction(test_fraction, "test_fraction")?;
    let n = ds.len();
    let n_test = (test_fraction * n as f64).ceil() as usize;
    if n_test == 0 || n_test >= n {
        return Err(Error::config("test_fraction", format!("{test_fraction} of {n} samples leaves an empty side")));
    }
    let mut r = rng(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    if stratify {
        let classes = by_class(ds);
        let sizes: Vec<usize> = classes.iter().map(|c| c.len()).collect();
        let shares = apportion(&sizes, n_test);
        for (mut idx, k) in classes.into_iter().zip(shares) {
            idx.shuffle(&mut r);
            test.extend_from_slice(&idx[..k]);
            train.extend_from_slice(&idx[k..]);
        }
        train.shuffle(&mut r);
        test.shuffle(&mut r);
    } else {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.shuffle(&mut r);
        test = idx[..n_test].to_vec();
        train = idx[n_test..].to_vec();
    }
    Ok((ds.select(&train)?.renamed("train"), ds.select(&test)?.renamed("test")))
}

/// Consecutive parts of a seeded shuffle with the given sizes (hw3's
/// `random_split([50000, 10000, rest])`); the sizes may not exceed the dataset.
pub fn split_counts(ds: &Dataset, counts: &[usize], seed: u64) -> Result<Vec<Dataset>> {
    let total: usize = counts.iter().sum();
    if total > ds.len() {
        return Err(Error::config("counts", format!("{counts:?} add up to {total}, more than the {} samples of {}", ds.len(), ds.name)));
    }
    let mut idx: Vec<usize> = (0..ds.len()).collect();
    idx.shuffle(&mut rng(seed));
    let mut out = Vec::new();
    let mut at = 0;
    for (i, &c) in counts.iter().enumerate() {
        out.push(ds.select(&idx[at..at + c])?.renamed(&format!("part{i}")));
        at += c;
    }
    Ok(out)
}

/// hw5's validation split: `⌊fraction·n_c⌋` samples of each class drawn
/// with `seed` from the class's samples in dataset (sorted file) order — the
/// same every run, no files moved → `(train, val)`.
pub fn holdout_per_class(ds: &Dataset, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
    check_fraction(fraction, "fraction")?;
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (c, mut idx) in by_class(ds).into_iter().enumerate() {
        let k = (fraction * idx.len() as f64).floor() as usize;
        idx.shuffle(&mut rng(seed ^ c as u64));
        val.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    Ok((ds.select(&train)?.renamed("train"), ds.select(&val)?.renamed("val")))
}

impl Dataset {
    /// `n` samples drawn without replacement by a seeded shuffle (all when `n ≥ len`).
    pub fn subset(&self, n: usize, seed: u64) -> Result<Dataset> {
        if n >= self.len() {
            return Ok(self.clone());
        }
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.shuffle(&mut rng(seed));
        idx.truncate(n);
        idx.sort_unstable();
        self.select(&idx)
    }

    /// The same data under `<name>/<part>`.
    pub fn renamed(mut self, part: &str) -> Dataset {
        let base = self.name.split('/').next().unwrap_or("").to_string();
        self.name = format!("{base}/{part}");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(counts: &[usize]) -> Dataset {
        let labels: Vec<u32> = counts.iter().enumerate().flat_map(|(c, &n)| std::iter::repeat_n(c as u32, n)).collect();
        let classes = (0..counts.len()).map(|c| c.to_string()).collect();
        let pixels = (0..labels.len()).map(|i| (i % 251) as u8).collect();
        Dataset::new("toy", "memory", classes, [1, 1, 1], pixels, labels, 255).unwrap()
    }

    #[test]
    fn stratified_counts_match_scikit_learn() {
        // python: from sklearn.datasets import load_digits; from sklearn.model_selection import train_test_split
        //   import numpy as np; X, y = load_digits(return_X_y=True)
        //   _, _, _, yt = train_test_split(X, y, test_size=0.3, stratify=y, random_state=20231110)
        //   np.bincount(yt) → [54 55 53 55 54 55 54 54 52 54]
        let digits = ds(&[178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
        let (train, test) = train_test_split(&digits, 0.3, 20231110, true).unwrap();
        assert_eq!(test.len(), 540);
        assert_eq!(test.class_counts(), vec![54, 55, 53, 55, 54, 55, 54, 54, 52, 54]);
        assert_eq!(train.len() + test.len(), 1797);
        // disjoint, and together every sample
        let mut all: Vec<u8> = train.pixels.iter().chain(&test.pixels).cloned().collect();
        let mut orig = digits.pixels.clone();
        all.sort();
        orig.sort();
        assert_eq!(all, orig);
    }

    #[test]
    fn counts_holdout_and_subsets() {
        let d = ds(&[10, 5]);
        let parts = split_counts(&d, &[8, 4, 3], 1).unwrap();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 3]);
        let e = split_counts(&d, &[10, 6], 1).unwrap_err().to_string();
        assert!(e.contains("16") && e.contains("15 samples"), "{e}");
        let (tr, va) = holdout_per_class(&d, 0.3, 42).unwrap();
        assert_eq!((tr.class_counts(), va.class_counts()), (vec![7, 4], vec![3, 1]));
        assert_eq!(holdout_per_class(&d, 0.3, 42).unwrap().1, va);
        assert_eq!(d.subset(6, 2).unwrap().len(), 6);
        assert_eq!(d.subset(6, 2).unwrap(), d.subset(6, 2).unwrap());
        let e = train_test_split(&d, 1.5, 0, false).unwrap_err().to_string();
        assert!(e.contains("between 0 and 1"), "{e}");
    }
}
