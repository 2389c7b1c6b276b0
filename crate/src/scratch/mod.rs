//! The teaching half: layers with hand-written forward and backward
//! (micrograd / CS231n style), gradient checking, hand-written optimizers,
//! and optimizers on 2-D functions.
//!
//! Every layer implements [`Layer`]: `forward(x) -> (y, Cache)` keeps what
//! the backward needs, `backward(dy, &cache) -> (dx, grads)` applies the
//! chain rule by hand, with `grads[i]` the gradient of `params()[i]`. No
//! autograd is involved in this path (plain tensors record no graph); the
//! [`gradcheck`] module compares it with finite differences and with
//! Candle's autograd.
//!
//! ```
//! use nnlab::scratch::{Layer, Linear, Relu};
//! use candle_core::{DType, Device, Tensor};
//! let mut fc = Linear::new(3, 2, DType::F64).unwrap();
//! let x = Tensor::ones((4, 3), DType::F64, &Device::Cpu).unwrap();
//! let (y, cache) = fc.forward(&x).unwrap();
//! let (dx, grads) = fc.backward(&y.ones_like().unwrap(), &cache).unwrap();
//! assert_eq!((dx.dims(), grads[0].dims()), (&[4, 3][..], &[2, 3][..]));
//! let _ = Relu;
//! ```

pub mod activations;
pub mod batch_norm;
pub mod check;
pub mod data;
pub mod dropout;
pub mod functions;
pub mod gradcheck;
pub mod linear;
pub mod network;
pub mod optim2d;
pub mod optimizers;
pub mod softmax_ce;
pub mod step2d;
pub mod verdict;

pub use activations::{Relu, Sigmoid, Tanh};
pub use batch_norm::BatchNorm1d;
pub use dropout::Dropout;
pub use linear::Linear;
pub use network::Network;

use crate::{Error, Result};
use candle_core::Tensor;

/// Gradients of a layer's parameters, in the order of [`Layer::params`].
pub type Grads = Vec<Tensor>;

/// What a forward pass keeps for its backward pass.
#[derive(Clone, Debug)]
pub enum Cache {
    /// Linear: the input x `[N, in]`.
    Linear { x: Tensor },
    /// ReLU: the input x.
    Relu { x: Tensor },
    /// Sigmoid: the output y = σ(x).
    Sigmoid { y: Tensor },
    /// Tanh: the output y = tanh(x).
    Tanh { y: Tensor },
    /// BatchNorm1d: x̂ `[N, C]`, 1/√(σ²+ε) `[1, C]`, and whether batch
    /// statistics were used (train) or the running ones (eval).
    BatchNorm {
        x_hat: Tensor,
        inv_std: Tensor,
        train: bool,
    },
    /// Dropout: the mask already scaled by 1/(1−p), `None` in eval mode.
    Dropout { mask: Option<Tensor> },
}

/// A layer with a hand-written backward. Object-safe: a network is a
/// `Vec<Box<dyn Layer>>`. A layer is `Clone` (derive it): [`LayerClone`]
/// gives every `Layer + Clone` its boxed copy, so a layer written in a
/// notebook cell needs no `Box` of its own.
pub trait Layer: Send + Sync + LayerClone {
    /// `Linear(64→32)`, `ReLU`, …
    fn name(&self) -> String;
    /// y = f(x) and what the backward needs.
    fn forward(&mut self, x: &Tensor) -> Result<(Tensor, Cache)>;
    /// dx = ∂L/∂x and ∂L/∂θ for every parameter, from dy = ∂L/∂y.
    fn backward(&self, dy: &Tensor, cache: &Cache) -> Result<(Tensor, Grads)>;
    /// Parameters with their torch names (`weight`, `bias`).
    fn params(&self) -> Vec<(&'static str, Tensor)> {
        Vec::new()
    }
    /// Replaces the parameters (same order and shapes as `params()`).
    fn set_params(&mut self, params: Vec<Tensor>) -> Result<()> {
        expect_params(&self.name(), &params, 0)
    }
    /// Train mode (batch statistics, dropout on) or eval mode.
    fn set_training(&mut self, _train: bool) {}
}

/// A boxed copy of a layer (same parameters, buffers and random state);
/// implemented for every `Layer + Clone`.
pub trait LayerClone {
    fn boxed_clone(&self) -> Box<dyn Layer>;
}

impl<T: Layer + Clone + 'static> LayerClone for T {
    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

impl Clone for Box<dyn Layer> {
    fn clone(&self) -> Self {
        self.boxed_clone()
    }
}

pub(crate) fn expect_params(layer: &str, params: &[Tensor], n: usize) -> Result<()> {
    if params.len() == n {
        Ok(())
    } else {
        Err(Error::config(
            format!("{layer}.set_params"),
            format!("{} tensors, expected {n}", params.len()),
        ))
    }
}

pub(crate) fn same_shape(layer: &str, what: &str, new: &Tensor, old: &Tensor) -> Result<()> {
    if new.dims() == old.dims() {
        Ok(())
    } else {
        Err(Error::shape(
            format!("{layer}.{what}"),
            format!("{:?}, expected {:?}", new.dims(), old.dims()),
        ))
    }
}

pub(crate) fn wrong_cache(layer: &str, cache: &Cache) -> Error {
    let kind = format!("{cache:?}");
    let kind = kind.split([' ', '{']).next().unwrap_or("?").to_string();
    Error::config(
        format!("{layer}.backward"),
        format!("got a {kind} cache, expected the cache of this layer's forward"),
    )
}
