//! Inverted dropout with a seeded mask.
//!
//! ```text
//! train: m ~ Bernoulli(1 − p) / (1 − p) element-wise, y = x ⊙ m,  ∂L/∂x = dy ⊙ m
//! eval:  y = x,                                                     ∂L/∂x = dy
//! ```
//! The masks come from the layer's own generator (stream `scratch.dropout`,
//! or an explicit seed), so a cloned layer draws the same next mask.
//!
//! ```
//! use nnlab::scratch::{Dropout, Layer};
//! let d = Dropout::with_seed(0.3, 7).unwrap();
//! assert_eq!(d.name(), "Dropout(0.3)");
//! ```

use super::{wrong_cache, Cache, Grads, Layer};
use crate::{Error, Result};
use candle_core::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Debug)]
pub struct Dropout {
    pub p: f64,
    pub training: bool,
    rng: StdRng,
}

impl Dropout {
    /// Drop probability `p` in [0, 1), masks from `next_rng("scratch.dropout")`.
    pub fn new(p: f64) -> Result<Self> {
        Self::build(p, crate::device::next_rng("scratch.dropout"))
    }
    /// Same with an explicit seed.
    pub fn with_seed(p: f64, seed: u64) -> Result<Self> {
        Self::build(p, StdRng::seed_from_u64(seed))
    }
    fn build(p: f64, rng: StdRng) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::config(
                "Dropout.p",
                format!("{p}: expected 0 ≤ p < 1"),
            ));
        }
        Ok(Dropout {
            p,
            training: true,
            rng,
        })
    }
}

impl Layer for Dropout {
    fn name(&self) -> String {
        format!("Dropout({})", self.p)
    }
    /// y = x ⊙ m, m ∈ {0, 1/(1−p)}
    fn forward(&mut self, x: &Tensor) -> Result<(Tensor, Cache)> {
        if !self.training || self.p == 0.0 {
            return Ok((x.clone(), Cache::Dropout { mask: None }));
        }
        let keep = 1.0 / (1.0 - self.p);
        let m: Vec<f64> = (0..x.elem_count())
            .map(|_| {
                if self.rng.random::<f64>() < self.p {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        let mask = Tensor::from_vec(m, x.dims(), x.device())?.to_dtype(x.dtype())?;
        Ok(((x * &mask)?, Cache::Dropout { mask: Some(mask) }))
    }
    /// dx = dy ⊙ m
    fn backward(&self, dy: &Tensor, cache: &Cache) -> Result<(Tensor, Grads)> {
        let Cache::Dropout { mask } = cache else {
            return Err(wrong_cache(&self.name(), cache));
        };
        let dx = match mask {
            Some(m) => (dy * m)?,
            None => dy.clone(),
        };
        Ok((dx, vec![]))
    }
    fn set_training(&mut self, train: bool) {
        self.training = train;
    }
}
