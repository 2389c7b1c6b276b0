//! Fully connected layer (hw2's `FullyConnectedLayer`), torch layout:
//! `weight [out, in]`, `bias [out]`.
//!
//! ```text
//! forward:  y = x·Wᵀ + b                x [N, in] → y [N, out]
//! backward: ∂L/∂x = dy·W                [N, out]·[out, in] = [N, in]
//!           ∂L/∂W = dyᵀ·x               [out, N]·[N, in]  = [out, in]
//!           ∂L/∂b = Σₙ dy[n, :]         [out]
//! ```
//! Init as hw2: W ~ N(0, 2/in) (He), b = 0.
//!
//! ```
//! use nnlab::scratch::{Layer, Linear};
//! let fc = Linear::new(64, 10, candle_core::DType::F32).unwrap();
//! assert_eq!(fc.weight.dims(), &[10, 64]);
//! ```

use super::{expect_params, same_shape, wrong_cache, Cache, Grads, Layer};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand_distr::{Distribution, Normal};

#[derive(Clone, Debug)]
pub struct Linear {
    /// `[out, in]`
    pub weight: Tensor,
    /// `[out]`
    pub bias: Tensor,
}

impl Linear {
    /// He-initialised layer on the CPU, drawn from the `scratch.linear` stream.
    pub fn new(in_features: usize, out_features: usize, dtype: DType) -> Result<Self> {
        if in_features == 0 || out_features == 0 {
            return Err(Error::config(
                "Linear",
                format!("{in_features}→{out_features}: sizes must be positive"),
            ));
        }
        let mut rng = crate::device::next_rng("scratch.linear");
        let normal = Normal::new(0.0, (2.0 / in_features as f64).sqrt())
            .map_err(|e| Error::config("Linear", e.to_string()))?;
        let w: Vec<f64> = (0..in_features * out_features)
            .map(|_| normal.sample(&mut rng))
            .collect();
        let weight =
            Tensor::from_vec(w, (out_features, in_features), &Device::Cpu)?.to_dtype(dtype)?;
        let bias = Tensor::zeros(out_features, dtype, &Device::Cpu)?;
        Ok(Linear { weight, bias })
    }

    /// From given tensors: `weight [out, in]`, `bias [out]`.
    pub fn from_tensors(weight: Tensor, bias: Tensor) -> Result<Self> {
        let (out, _) = weight.dims2().map_err(|_| {
            Error::shape(
                "Linear.weight",
                format!("{:?}, expected [out, in]", weight.dims()),
            )
        })?;
        if bias.dims() != [out] {
            return Err(Error::shape(
                "Linear.bias",
                format!("{:?}, expected [{out}]", bias.dims()),
            ));
        }
        Ok(Linear { weight, bias })
    }
}

impl Layer for Linear {
    fn name(&self) -> String {
        let (o, i) = self.weight.dims2().unwrap_or((0, 0));
        format!("Linear({i}→{o})")
    }

    /// y = x·Wᵀ + b
    fn forward(&mut self, x: &Tensor) -> Result<(Tensor, Cache)> {
        let (_, i) = self.weight.dims2()?;
        if x.rank() != 2 || x.dim(1)? != i {
            return Err(Error::shape(
                self.name(),
                format!("input {:?}, expected [N, {i}]", x.dims()),
            ));
        }
        let y = x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?;
        Ok((y, Cache::Linear { x: x.clone() }))
    }

    /// dx = dy·W, dW = dyᵀ·x, db = Σₙ dy
    fn backward(&self, dy: &Tensor, cache: &Cache) -> Result<(Tensor, Grads)> {
        let Cache::Linear { x } = cache else {
            return Err(wrong_cache(&self.name(), cache));
        };
        let dx = dy.matmul(&self.weight)?;
        let dw = dy.t()?.matmul(x)?;
        let db = dy.sum(0)?;
        Ok((dx, vec![dw, db]))
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
}
