//! Splitting a [`Dataset`] into train / validation / test parts.
//!
//! - [`train_test_split`]: scikit-learn's `train_test_split(test_size=f,
//!   stratify=y)`: `n_test = ⌈f·n⌉`; with `stratify`, per-class counts by
//!   sklearn's `_approximate_mode` (floor of `n_c/n · n_draws`, the leftover
//!   draws to the largest remainders, ties broken at random).
//! - [`split_counts`]: `torch.utils.data.random_split(ds, [50000, 10000, ...])`.
//! - [`holdout_per_class`]: hw5's per-class validation folder: in each class
//!   `⌊f·n_c⌋` samples drawn at random without replacement (hw5's
//!   `sample_without_replacement(n_c, k, random_state=42)`).
//!
//! ```
//! use nnlab::data::{split::train_test_split, Dataset};
//! let ds = Dataset::new("t", "m", vec!["a".into(), "b".into()], [1, 1, 1],
//!                       vec![0; 10], vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 1], 255).unwrap();
//! let (train, test) = train_test_split(&ds, 0.4, 0, true).unwrap();
//! assert_eq!((train.class_counts(), test.class_counts()), (vec![3, 3], vec![2, 2]));
//! ```

use crate::data::Dataset;
use crate::{Error, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

fn check_fraction(field: &str, f: f64) -> Result<()> {
    if !(f > 0.0 && f < 1.0) {
        return Err(Error::config(
            field,
            format!("{f}: expected a fraction in (0, 1)"),
        ));
    }
    Ok(())
}

/// sklearn's `_approximate_mode(class_counts, n_draws, rng)`.
pub fn approximate_mode(class_counts: &[usize], n_draws: usize, rng: &mut StdRng) -> Vec<usize> {
    let total: usize = class_counts.iter().sum();
    let continuous: Vec<f64> = class_counts
        .iter()
        .map(|&c| c as f64 / total as f64 * n_draws as f64)
        .collect();
    let mut floored: Vec<usize> = continuous.iter().map(|v| v.floor() as usize).collect();
    let mut need = n_draws.saturating_sub(floored.iter().sum());
    let remainder: Vec<f64> = continuous
        .iter()
        .zip(&floored)
        .map(|(c, f)| c - *f as f64)
        .collect();
    let mut values = remainder.clone();
    values.sort_by(|a, b| b.total_cmp(a));
    values.dedup();
    for v in values {
        if need == 0 {
            break;
        }
        let mut inds: Vec<usize> = (0..remainder.len())
            .filter(|&i| remainder[i] == v)
            .collect();
        inds.shuffle(rng);
        let now = inds.len().min(need);
        for &i in &inds[..now] {
            floored[i] += 1;
        }
        need -= now;
    }
    floored
}

/// `(train, test)` with `n_test = ⌈test_fraction·n⌉`, shuffled with `seed`;
/// `stratify` keeps the class proportions as scikit-learn does.
pub fn train_test_split(
    ds: &Dataset,
    test_fraction: f64,
    seed: u64,
    stratify: bool,
) -> Result<(Dataset, Dataset)> {
    check_fraction("train_test_split.test_fraction", test_fraction)?;
    let n = ds.len();
    let n_test = (test_fraction * n as f64).ceil() as usize;
    let n_train = n.saturating_sub(n_test);
    if n_test == 0 || n_train == 0 {
        return Err(Error::config(
            "train_test_split.test_fraction",
            format!("{test_fraction} of {n} samples leaves {n_train} train and {n_test} test samples; both must be ≥ 1"),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    if !stratify {
        let mut perm: Vec<usize> = (0..n).collect();
        perm.shuffle(&mut rng);
        return Ok((ds.select(&perm[n_test..])?, ds.select(&perm[..n_test])?));
    }
    let counts = ds.class_counts();
    let present = counts.iter().filter(|&&c| c > 0).count();
    if let Some((c, _)) = counts.iter().enumerate().find(|(_, &c)| c == 1) {
        return Err(Error::config(
            "train_test_split.stratify",
            format!(
                "class `{}` has only 1 member; every class needs at least 2",
                ds.classes[c]
            ),
        ));
    }
    if n_train < present || n_test < present {
        return Err(Error::config(
            "train_test_split.test_fraction",
            format!("{n_train} train / {n_test} test samples for {present} classes: each part needs one per class"),
        ));
    }
    let n_i = approximate_mode(&counts, n_train, &mut rng);
    let rest: Vec<usize> = counts.iter().zip(&n_i).map(|(c, a)| c - a).collect();
    let t_i = approximate_mode(&rest, n_test, &mut rng);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); counts.len()];
    for (i, &l) in ds.labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let (mut train, mut test) = (Vec::with_capacity(n_train), Vec::with_capacity(n_test));
    for (c, mut idx) in by_class.into_iter().enumerate() {
        idx.shuffle(&mut rng);
        train.extend_from_slice(&idx[..n_i[c]]);
        test.extend_from_slice(&idx[n_i[c]..n_i[c] + t_i[c]]);
    }
    train.shuffle(&mut rng);
    test.shuffle(&mut rng);
    Ok((ds.select(&train)?, ds.select(&test)?))
}

/// Random parts of the given sizes (`random_split`); when the counts sum to
/// less than the dataset, the rest is one more, last part.
pub fn split_counts(ds: &Dataset, counts: &[usize], seed: u64) -> Result<Vec<Dataset>> {
    let total: usize = counts.iter().sum();
    if total > ds.len() || counts.contains(&0) {
        return Err(Error::config(
            "split_counts.counts",
            format!(
                "{counts:?} (sum {total}) for {} samples: each count ≥ 1, sum ≤ the dataset",
                ds.len()
            ),
        ));
    }
    let mut perm: Vec<usize> = (0..ds.len()).collect();
    perm.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut out = Vec::new();
    let mut at = 0;
    for &c in counts {
        out.push(ds.select(&perm[at..at + c])?);
        at += c;
    }
    if at < ds.len() {
        out.push(ds.select(&perm[at..])?);
    }
    Ok(out)
}

/// `(train, val)`: in each class `⌊fraction·n_c⌋` samples drawn at random
/// without replacement with `seed` go to validation — hw5's
/// `int(num_images * VAL_FRAC)` counts (826 → 247 at 0.3) and its
/// `sample_without_replacement(num_images, num_val, random_state=42)`. The
/// draw is nnlab's own (the same counts and the same seed give the same
/// split here, not numpy's indices). Both parts keep the dataset's order.
pub fn holdout_per_class(ds: &Dataset, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
    check_fraction("holdout_per_class.fraction", fraction)?;
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); ds.num_classes()];
    for (i, &l) in ds.labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for mut idx in by_class {
        let k = (fraction * idx.len() as f64) as usize;
        idx.shuffle(&mut rng);
        val.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    Ok((ds.select(&train)?, ds.select(&val)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(counts: &[usize]) -> Dataset {
        let labels: Vec<u32> = counts
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(c as u32, n))
            .collect();
        let pixels = (0..labels.len()).map(|i| i as u8).collect();
        let classes = (0..counts.len()).map(|c| format!("c{c}")).collect();
        Dataset::new("toy", "mem", classes, [1, 1, 1], pixels, labels, 255).unwrap()
    }

    // from sklearn.datasets import load_digits; from sklearn.model_selection import train_test_split
    // X, y = load_digits(return_X_y=True)
    // a, b, ya, yb = train_test_split(X, y, test_size=0.3, stratify=y, random_state=rs)  # rs = 0, 1, 42
    // np.bincount(ya), np.bincount(yb)   # the same for every rs
    const DIGITS_TRAIN: [usize; 10] = [124, 127, 124, 128, 127, 127, 127, 125, 122, 126];
    const DIGITS_TEST: [usize; 10] = [54, 55, 53, 55, 54, 55, 54, 54, 52, 54];

    #[test]
    fn stratified_counts_match_sklearn_on_digits() -> crate::TestResult {
        // Per-class counts of load_digits (README of the data mirror).
        let ds = toy(&[178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
        for seed in [0, 1, 42] {
            let (tr, te) = train_test_split(&ds, 0.3, seed, true)?;
            assert_eq!(tr.class_counts(), DIGITS_TRAIN);
            assert_eq!(te.class_counts(), DIGITS_TEST);
            let mut all: Vec<u8> = tr.pixels.iter().chain(&te.pixels).copied().collect();
            let mut want = ds.pixels.clone();
            all.sort_unstable();
            want.sort_unstable();
            assert_eq!(all, want); // a partition: every sample once
        }
        let (a, _) = train_test_split(&ds, 0.3, 5, true)?;
        let (b, _) = train_test_split(&ds, 0.3, 5, true)?;
        assert_eq!(a, b);
        Ok(())
    }

    #[test]
    fn plain_split_counts_and_errors() -> crate::TestResult {
        let ds = toy(&[5, 6]);
        let (tr, te) = train_test_split(&ds, 0.25, 3, false)?;
        assert_eq!((tr.len(), te.len()), (8, 3)); // ceil(2.75) = 3
        for f in [0.0, 1.0, -0.5, f64::NAN] {
            let e = train_test_split(&ds, f, 0, false).unwrap_err().to_string();
            assert!(e.contains("test_fraction") && e.contains("(0, 1)"), "{e}");
        }
        let e = train_test_split(&toy(&[5, 1]), 0.3, 0, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`c1` has only 1 member"), "{e}");
        Ok(())
    }

    #[test]
    fn split_counts_like_random_split() -> crate::TestResult {
        let ds = toy(&[30, 30]);
        let parts = split_counts(&ds, &[40, 15], 1)?;
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![40, 15, 5]
        );
        let mut all: Vec<u8> = parts.iter().flat_map(|p| p.pixels.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, ds.pixels);
        let e = split_counts(&ds, &[50, 11], 1).unwrap_err().to_string();
        assert!(e.contains("sum 61") && e.contains("60 samples"), "{e}");
        Ok(())
    }

    #[test]
    fn holdout_draws_hw5s_counts_at_random_per_class() -> crate::TestResult {
        // hw5: Training counts 826/822/395/827 at 0.3 -> val 247/246/118/248.
        let ds = toy(&[826, 822, 395, 827]);
        let (tr, va) = holdout_per_class(&ds, 0.3, 42)?;
        assert_eq!(va.class_counts(), vec![247, 246, 118, 248]);
        assert_eq!(tr.class_counts(), vec![579, 576, 277, 579]);
        // The two parts are disjoint and cover the dataset (pixel i is sample i mod 256).
        let small = toy(&[40, 30]);
        let (tr, va) = holdout_per_class(&small, 0.5, 42)?;
        let mut all: Vec<u8> = tr.pixels.iter().chain(&va.pixels).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..70).collect::<Vec<u8>>());
        // Random, not the tail of each class: the validation part of class 0
        // is not samples 20..40, and another seed draws another part.
        assert_ne!(va.pixels[..20], (20..40).collect::<Vec<u8>>()[..]);
        assert_eq!(va, holdout_per_class(&small, 0.5, 42)?.1);
        assert_ne!(va, holdout_per_class(&small, 0.5, 7)?.1);
        assert!(holdout_per_class(&small, 1.5, 42)
            .unwrap_err()
            .to_string()
            .contains("fraction"));
        Ok(())
    }

    #[test]
    fn subset_draws_distinct_samples() -> crate::TestResult {
        let ds = toy(&[50, 50]);
        let s = ds.subset(10, 4)?;
        assert_eq!(s.len(), 10);
        let mut px = s.pixels.clone();
        px.dedup();
        assert_eq!(px.len(), 10);
        assert_eq!(s, ds.subset(10, 4)?);
        assert!(ds.subset(101, 0).unwrap_err().to_string().contains("101"));
        Ok(())
    }
}
