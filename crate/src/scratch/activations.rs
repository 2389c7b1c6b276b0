//! Element-wise activations with hand-written backward (no parameters).
//!
//! ```text
//! ReLU:    y = max(x, 0)          ∂L/∂x = dy ⊙ [x > 0]   (the kink x = 0 gets 0, as torch)
//! Sigmoid: y = 1 / (1 + e^(−x))   ∂L/∂x = dy ⊙ y ⊙ (1 − y)
//! Tanh:    y = tanh(x)            ∂L/∂x = dy ⊙ (1 − y²)
//! ```
//! All shapes are kept: x, y, dy, dx `[N, C]` (any shape).
//!
//! ```
//! use nnlab::scratch::{Layer, Relu};
//! use candle_core::{Device, Tensor};
//! let x = Tensor::new(&[-1.0f64, 2.0], &Device::Cpu).unwrap();
//! let (y, c) = Relu.forward(&x).unwrap();
//! let (dx, _) = Relu.backward(&y.ones_like().unwrap(), &c).unwrap();
//! assert_eq!(dx.to_vec1::<f64>().unwrap(), vec![0.0, 1.0]);
//! ```

use super::{wrong_cache, Cache, Grads, Layer};
use crate::Result;
use candle_core::Tensor;

/// y = max(x, 0)
#[derive(Clone, Copy, Debug, Default)]
pub struct Relu;

/// y = 1 / (1 + e^(−x))
#[derive(Clone, Copy, Debug, Default)]
pub struct Sigmoid;

/// y = tanh(x)
#[derive(Clone, Copy, Debug, Default)]
pub struct Tanh;

impl Layer for Relu {
    fn name(&self) -> String {
        "ReLU".into()
    }
    /// y = max(x, 0)
    fn forward(&mut self, x: &Tensor) -> Result<(Tensor, Cache)> {
        Ok((x.relu()?, Cache::Relu { x: x.clone() }))
    }
    /// `dx = dy ⊙ [x > 0]`
    fn backward(&self, dy: &Tensor, cache: &Cache) -> Result<(Tensor, Grads)> {
        let Cache::Relu { x } = cache else {
            return Err(wrong_cache("ReLU", cache));
        };
        let mask = x.gt(0.0)?.to_dtype(dy.dtype())?;
        Ok(((dy * mask)?, vec![]))
    }
}

impl Layer for Sigmoid {
    fn name(&self) -> String {
        "Sigmoid".into()
    }
    /// y = 1 / (1 + e^(−x))
    fn forward(&mut self, x: &Tensor) -> Result<(Tensor, Cache)> {
        let y = (x.neg()?.exp()? + 1.0)?.recip()?;
        Ok((y.clone(), Cache::Sigmoid { y }))
    }
    /// dx = dy ⊙ y ⊙ (1 − y)
    fn backward(&self, dy: &Tensor, cache: &Cache) -> Result<(Tensor, Grads)> {
        let Cache::Sigmoid { y } = cache else {
            return Err(wrong_cache("Sigmoid", cache));
        };
        let dydx = (y * (1.0 - y)?)?;
        Ok(((dy * dydx)?, vec![]))
    }
}

impl Layer for Tanh {
    fn name(&self) -> String {
        "Tanh".into()
    }
    /// y = tanh(x)
    fn forward(&mut self, x: &Tensor) -> Result<(Tensor, Cache)> {
        let y = x.tanh()?;
        Ok((y.clone(), Cache::Tanh { y }))
    }
    /// dx = dy ⊙ (1 − y²)
    fn backward(&self, dy: &Tensor, cache: &Cache) -> Result<(Tensor, Grads)> {
        let Cache::Tanh { y } = cache else {
            return Err(wrong_cache("Tanh", cache));
        };
        let dydx = (1.0 - y.sqr()?)?;
        Ok(((dy * dydx)?, vec![]))
    }
}
