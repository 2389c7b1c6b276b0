//! A tiny seeded stratified split for the scratch network (until
//! `data::split` lands): per class, shuffle the indices with
//! `device::rng("scratch.split", seed)` and send the first ⌊val_frac·n_c⌉ to
//! validation. Features are `pixel / max_value` in `[0, 1]`, `[N, C·H·W]`.
//!
//! ```no_run
//! let ds = nnlab::data::digits::read("data/digits/digits.csv.gz").unwrap();
//! let s = nnlab::scratch::data::stratified_split(&ds, 0.3, 42, candle_core::DType::F32).unwrap();
//! assert_eq!(s.train_labels.len() + s.val_labels.len(), 1797);
//! ```

use crate::data::Dataset;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::seq::SliceRandom;

/// Train and validation features `[N, D]` with their labels.
#[derive(Clone, Debug)]
pub struct Split {
    pub train_x: Tensor,
    pub train_labels: Vec<u32>,
    pub val_x: Tensor,
    pub val_labels: Vec<u32>,
}

/// Features `[N, D]` of `ds`, each pixel divided by `max_value`.
pub fn features(ds: &Dataset, dtype: DType) -> Result<Tensor> {
    let scale = 1.0 / ds.max_value.max(1) as f32;
    let v: Vec<f32> = ds.pixels.iter().map(|&p| p as f32 * scale).collect();
    Ok(Tensor::from_vec(v, (ds.len(), ds.sample_len()), &Device::Cpu)?.to_dtype(dtype)?)
}

/// Stratified split: `val_frac` of every class goes to validation.
pub fn stratified_split(ds: &Dataset, val_frac: f64, seed: u64, dtype: DType) -> Result<Split> {
    if !(0.0..1.0).contains(&val_frac) {
        return Err(Error::config(
            "val_frac",
            format!("{val_frac}: expected 0 ≤ val_frac < 1"),
        ));
    }
    let mut rng = crate::device::rng("scratch.split", seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for c in 0..ds.num_classes() as u32 {
        let mut idx: Vec<usize> = (0..ds.len()).filter(|&i| ds.labels[i] == c).collect();
        idx.shuffle(&mut rng);
        let nv = (val_frac * idx.len() as f64).round() as usize;
        val.extend_from_slice(&idx[..nv]);
        train.extend_from_slice(&idx[nv..]);
    }
    train.shuffle(&mut rng);
    val.shuffle(&mut rng);
    let (tr, va) = (ds.select(&train)?, ds.select(&val)?);
    Ok(Split {
        train_x: features(&tr, dtype)?,
        train_labels: tr.labels,
        val_x: features(&va, dtype)?,
        val_labels: va.labels,
    })
}
