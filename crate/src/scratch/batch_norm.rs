//! BatchNorm1d over features `[N, C]`, as torch's `nn.BatchNorm1d`
//! (momentum 0.1, ε = 1e-5, γ = 1, β = 0 at start).
//!
//! ```text
//! train: μ = mean_n x, σ² = mean_n (x − μ)²  (biased), x̂ = (x − μ)/√(σ² + ε), y = γ x̂ + β
//!        running_mean ← 0.9·running_mean + 0.1·μ
//!        running_var  ← 0.9·running_var  + 0.1·σ²·N/(N−1)  (unbiased, as torch)
//! eval:  x̂ = (x − running_mean)/√(running_var + ε), y = γ x̂ + β
//! backward (train), with s = 1/√(σ²+ε):
//!        ∂L/∂x = (γ s / N) · (N·dy − Σₙ dy − x̂ · Σₙ (dy ⊙ x̂))     [N, C]
//! backward (eval): ∂L/∂x = γ s ⊙ dy
//!        ∂L/∂γ = Σₙ dy ⊙ x̂  [C],  ∂L/∂β = Σₙ dy  [C]
//! ```
//!
//! ```
//! use nnlab::scratch::{BatchNorm1d, Layer};
//! let bn = BatchNorm1d::new(16, candle_core::DType::F32).unwrap();
//! assert_eq!(bn.params()[0].0, "weight");
//! ```

use super::{expect_params, same_shape, wrong_cache, Cache, Grads, Layer};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};

#[derive(Clone, Debug)]
pub struct BatchNorm1d {
    /// γ `[C]`
    pub weight: Tensor,
    /// β `[C]`
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub momentum: f64,
    pub eps: f64,
    pub training: bool,
}

impl BatchNorm1d {
    /// γ = 1, β = 0, running mean 0 and variance 1, train mode.
    pub fn new(features: usize, dtype: DType) -> Result<Self> {
        if features == 0 {
            return Err(Error::config(
                "BatchNorm1d",
                "0 features: expected at least 1",
            ));
        }
        let ones = Tensor::ones(features, dtype, &Device::Cpu)?;
        let zeros = Tensor::zeros(features, dtype, &Device::Cpu)?;
        Ok(BatchNorm1d {
            weight: ones.clone(),
            bias: zeros.clone(),
            running_mean: zeros,
            running_var: ones,
            momentum: 0.1,
            eps: 1e-5,
            training: true,
        })
    }
}

impl Layer for BatchNorm1d {
    fn name(&self) -> String {
        format!("BatchNorm1d({})", self.weight.dim(0).unwrap_or(0))
    }

    fn forward(&mut self, x: &Tensor) -> Result<(Tensor, Cache)> {
        let c = self.weight.dim(0)?;
        if x.rank() != 2 || x.dim(1)? != c {
            return Err(Error::shape(
                self.name(),
                format!("input {:?}, expected [N, {c}]", x.dims()),
            ));
        }
        let n = x.dim(0)?;
        let (x_hat, inv_std) = if self.training {
            if n < 2 {
                return Err(Error::shape(
                    self.name(),
                    "a batch of 1 in train mode: expected N ≥ 2 (as torch)",
                ));
            }
            let mean = x.mean_keepdim(0)?;
            let xc = x.broadcast_sub(&mean)?;
            let var = xc.sqr()?.mean_keepdim(0)?;
            let inv_std = (var.clone() + self.eps)?.sqrt()?.recip()?;
            let m = self.momentum;
            let rd = self.running_mean.dtype();
            let unbiased =
                (var.squeeze(0)?.detach() * (n as f64 / (n as f64 - 1.0)))?.to_dtype(rd)?;
            let mean_d = mean.squeeze(0)?.detach().to_dtype(rd)?;
            self.running_mean = ((&self.running_mean * (1.0 - m))? + (mean_d * m)?)?;
            self.running_var = ((&self.running_var * (1.0 - m))? + (unbiased * m)?)?;
            (xc.broadcast_mul(&inv_std)?, inv_std)
        } else {
            let rv = self.running_var.to_dtype(x.dtype())?;
            let inv_std = (rv + self.eps)?.sqrt()?.recip()?.unsqueeze(0)?;
            (
                x.broadcast_sub(&self.running_mean.to_dtype(x.dtype())?)?
                    .broadcast_mul(&inv_std)?,
                inv_std,
            )
        };
        let y = x_hat
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)?;
        Ok((
            y,
            Cache::BatchNorm {
                x_hat,
                inv_std,
                train: self.training,
            },
        ))
    }

    fn backward(&self, dy: &Tensor, cache: &Cache) -> Result<(Tensor, Grads)> {
        let Cache::BatchNorm {
            x_hat,
            inv_std,
            train,
        } = cache
        else {
            return Err(wrong_cache(&self.name(), cache));
        };
        let dgamma = (dy * x_hat)?.sum(0)?;
        let dbeta = dy.sum(0)?;
        let g_s = inv_std.broadcast_mul(&self.weight.unsqueeze(0)?)?; // γ·s [1, C]
        let dx = if *train {
            let n = dy.dim(0)? as f64;
            // (γ s / N)(N dy − Σ dy − x̂ Σ(dy ⊙ x̂))
            let inner = ((dy * n)?.broadcast_sub(&dbeta.unsqueeze(0)?)?
                - x_hat.broadcast_mul(&dgamma.unsqueeze(0)?)?)?;
            (inner.broadcast_mul(&g_s)? / n)?
        } else {
            dy.broadcast_mul(&g_s)?
        };
        Ok((dx, vec![dgamma, dbeta]))
    }

    fn params(&self) -> Vec<(&'static str, Tensor)> {
        vec![("weight", self.weight.clone()), ("bias", self.bias.clone())]
    }

    fn set_params(&mut self, params: Vec<Tensor>) -> Result<()> {
        expect_params(&self.name(), &params, 2)?;
        same_shape(&self.name(), "weight", &params[0], &self.weight)?;
        same_shape(&self.name(), "bias", &params[1], &self.bias)?;
        self.weight = params[0].clone();
        self.bias = params[1].clone();
        Ok(())
    }

    fn set_training(&mut self, train: bool) {
        self.training = train;
    }
}
