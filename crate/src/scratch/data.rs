//! The scratch network's data: a dataset as features `[N, C·H·W]`, each
//! `pixel / max_value` in `[0, 1]`, split into train and validation by
//! [`train_test_split`] (stratified, scikit-learn's rule and seed handling:
//! `⌈val_frac·n⌉` validation samples, the class proportions kept).
//!
//! ```no_run
//! let ds = nnlab::data::digits::read("data/digits/digits.csv.gz").unwrap();
//! let s = nnlab::scratch::data::stratified_split(&ds, 0.3, 42, candle_core::DType::F32).unwrap();
//! assert_eq!(s.train_labels.len() + s.val_labels.len(), 1797);
//! ```

use crate::data::split::train_test_split;
use crate::data::Dataset;
use crate::Result;
use candle_core::{DType, Device, Tensor};

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
    let (tr, va) = train_test_split(ds, val_frac, seed, true)?;
    Ok(Split {
        train_x: features(&tr, dtype)?,
        train_labels: tr.labels,
        val_x: features(&va, dtype)?,
        val_labels: va.labels,
    })
}
