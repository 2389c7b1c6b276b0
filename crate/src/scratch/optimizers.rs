//! Hand-written optimizers on tensors (hw2): SGD, Momentum, RMSprop, Adam,
//! with torch.optim's update rules, for the scratch [`Network`](super::Network).
//!
//! ```text
//! SGD:      p ← p − lr·g
//! Momentum: b ← μ·b + g (b₁ = g),                 p ← p − lr·b
//! RMSprop:  s ← α·s + (1−α)·g²,                   p ← p − lr·g / (√s + ε)
//! Adam:     m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,
//!           m̂ = m/(1−β₁ᵗ),  v̂ = v/(1−β₂ᵗ),        p ← p − lr·m̂ / (√v̂ + ε)
//! ```
//! (hw5's notebook Adam forgot the bias correction m̂, v̂; ours applies it.)
//!
//! ```
//! use nnlab::scratch::optimizers::{Adam, Optimizer};
//! let opt = Adam::new(1e-3);
//! assert_eq!(opt.name(), "adam(lr=0.001)");
//! ```

use crate::{Error, Result};
use candle_core::Tensor;

/// One update of every parameter from its gradient. Object-safe.
pub trait Optimizer: Send {
    fn name(&self) -> String;
    /// New parameters from `params` and their `grads` (same order each call).
    fn step(&mut self, params: &[Tensor], grads: &[Tensor]) -> Result<Vec<Tensor>>;
}

fn check(params: &[Tensor], grads: &[Tensor]) -> Result<()> {
    if params.len() != grads.len() {
        return Err(Error::config(
            "optimizer.step",
            format!("{} parameters and {} gradients", params.len(), grads.len()),
        ));
    }
    Ok(())
}

/// p ← p − lr·g
pub struct Sgd {
    pub lr: f64,
}
impl Sgd {
    pub fn new(lr: f64) -> Self {
        Sgd { lr }
    }
}
impl Optimizer for Sgd {
    fn name(&self) -> String {
        format!("sgd(lr={})", self.lr)
    }
    fn step(&mut self, params: &[Tensor], grads: &[Tensor]) -> Result<Vec<Tensor>> {
        check(params, grads)?;
        params
            .iter()
            .zip(grads)
            .map(|(p, g)| Ok((p - (g * self.lr)?)?))
            .collect()
    }
}

/// b ← μ·b + g, p ← p − lr·b (torch SGD with momentum, dampening 0)
pub struct Momentum {
    pub lr: f64,
    pub momentum: f64,
    bufs: Vec<Tensor>,
}
impl Momentum {
    pub fn new(lr: f64, momentum: f64) -> Self {
        Momentum {
            lr,
            momentum,
            bufs: Vec::new(),
        }
    }
}
impl Optimizer for Momentum {
    fn name(&self) -> String {
        format!("momentum(lr={}, momentum={})", self.lr, self.momentum)
    }
    fn step(&mut self, params: &[Tensor], grads: &[Tensor]) -> Result<Vec<Tensor>> {
        check(params, grads)?;
        if self.bufs.is_empty() {
            self.bufs = grads.to_vec(); // b₁ = g
        } else {
            self.bufs = self
                .bufs
                .iter()
                .zip(grads)
                .map(|(b, g)| (b * self.momentum)? + g)
                .collect::<std::result::Result<_, _>>()?;
        }
        params
            .iter()
            .zip(&self.bufs)
            .map(|(p, b)| Ok((p - (b * self.lr)?)?))
            .collect()
    }
}

/// s ← α·s + (1−α)·g², p ← p − lr·g/(√s + ε)
pub struct RmsProp {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    sq: Vec<Tensor>,
}
impl RmsProp {
    /// torch defaults α = 0.99, ε = 1e-8.
    pub fn new(lr: f64) -> Self {
        RmsProp {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            sq: Vec::new(),
        }
    }
}
impl Optimizer for RmsProp {
    fn name(&self) -> String {
        format!("rmsprop(lr={}, alpha={})", self.lr, self.alpha)
    }
    fn step(&mut self, params: &[Tensor], grads: &[Tensor]) -> Result<Vec<Tensor>> {
        check(params, grads)?;
        if self.sq.is_empty() {
            self.sq = grads
                .iter()
                .map(|g| g.zeros_like())
                .collect::<std::result::Result<_, _>>()?;
        }
        let mut out = Vec::with_capacity(params.len());
        for i in 0..params.len() {
            let g = &grads[i];
            self.sq[i] = ((&self.sq[i] * self.alpha)? + (g.sqr()? * (1.0 - self.alpha))?)?;
            let denom = (self.sq[i].sqrt()? + self.eps)?;
            out.push((&params[i] - (g.div(&denom)? * self.lr)?)?);
        }
        Ok(out)
    }
}

/// Adam with bias correction (torch defaults β = (0.9, 0.999), ε = 1e-8).
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    t: i32,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}
impl Adam {
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }
}
impl Optimizer for Adam {
    fn name(&self) -> String {
        format!("adam(lr={})", self.lr)
    }
    fn step(&mut self, params: &[Tensor], grads: &[Tensor]) -> Result<Vec<Tensor>> {
        check(params, grads)?;
        if self.m.is_empty() {
            self.m = grads
                .iter()
                .map(|g| g.zeros_like())
                .collect::<std::result::Result<_, _>>()?;
            self.v = self.m.clone();
        }
        self.t += 1;
        let bc1 = 1.0 - self.beta1.powi(self.t);
        let bc2 = 1.0 - self.beta2.powi(self.t);
        let mut out = Vec::with_capacity(params.len());
        for i in 0..params.len() {
            let g = &grads[i];
            self.m[i] = ((&self.m[i] * self.beta1)? + (g * (1.0 - self.beta1))?)?;
            self.v[i] = ((&self.v[i] * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let m_hat = (&self.m[i] / bc1)?;
            let v_hat = (&self.v[i] / bc2)?;
            let upd = m_hat.div(&(v_hat.sqrt()? + self.eps)?)?;
            out.push((&params[i] - (upd * self.lr)?)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adam_first_step_is_lr_times_sign() -> crate::TestResult {
        let p = Tensor::new(&[1.0f64, -2.0], &Device::Cpu)?;
        let g = Tensor::new(&[0.5f64, -3.0], &Device::Cpu)?;
        let out = Adam::new(0.1).step(&[p], &[g])?;
        let v = out[0].to_vec1::<f64>()?;
        assert!(
            (v[0] - 0.9).abs() < 1e-7 && (v[1] + 1.9).abs() < 1e-7,
            "{v:?}"
        );
        Ok(())
    }

    #[test]
    fn momentum_accumulates() -> crate::TestResult {
        let p = Tensor::new(&[0.0f64], &Device::Cpu)?;
        let g = Tensor::new(&[1.0f64], &Device::Cpu)?;
        let mut o = Momentum::new(0.1, 0.9);
        let p1 = o.step(&[p], std::slice::from_ref(&g))?;
        let p2 = o.step(&p1, &[g])?;
        // −0.1·1 − 0.1·(0.9 + 1)
        assert!((p2[0].to_vec1::<f64>()?[0] + 0.29).abs() < 1e-12);
        assert!(o.step(&p2, &[]).is_err());
        Ok(())
    }
}
