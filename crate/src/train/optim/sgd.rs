//! Stochastic gradient descent with momentum, dampening, Nesterov and L2
//! weight decay — torch.optim.SGD (`_single_tensor_sgd`):
//!
//! ```text
//! g ← g + wd·θ
//! b ← g on the first step, else μ·b + (1 − τ)·g      (when μ ≠ 0)
//! g ← g + μ·b if nesterov, else b                     (when μ ≠ 0)
//! θ ← θ − lr·g
//! ```
//! Defaults: momentum μ = 0, dampening τ = 0, weight_decay = 0, nesterov off.
//!
//! ```
//! use nnlab::train::optim::{Optimizer, Sgd};
//! let opt = Sgd::new(0.1).momentum(0.9).nesterov(true);
//! assert_eq!(opt.name(), "SGD(lr=0.1, momentum=0.9, nesterov=true)");
//! ```

use super::{impl_optimizer, non_negative, num, Ctx, Real, Rule, Slots};
use crate::{Error, Result};
use candle_core::Tensor;

/// torch.optim.SGD. Buffer: `momentum_buffer` (when momentum ≠ 0).
pub struct Sgd {
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    slots: Slots,
}

impl Sgd {
    /// Plain SGD, `θ ← θ − lr·g`.
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            slots: Slots::default(),
        }
    }
    /// Momentum factor μ (default 0).
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
    /// Dampening τ of the momentum (default 0).
    pub fn dampening(mut self, d: f64) -> Self {
        self.dampening = d;
        self
    }
    /// Nesterov momentum (needs momentum > 0 and dampening 0).
    pub fn nesterov(mut self, yes: bool) -> Self {
        self.nesterov = yes;
        self
    }
    /// L2 penalty added to the gradient: `g + wd·θ` (default 0).
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }

    fn describe(&self) -> String {
        let mut s = format!("SGD(lr={}", num(self.lr));
        if self.momentum != 0.0 {
            s += &format!(", momentum={}", num(self.momentum));
        }
        if self.dampening != 0.0 {
            s += &format!(", dampening={}", num(self.dampening));
        }
        if self.nesterov {
            s += ", nesterov=true";
        }
        if self.weight_decay != 0.0 {
            s += &format!(", weight_decay={}", num(self.weight_decay));
        }
        s + ")"
    }
}

impl Rule for Sgd {
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        if self.momentum != 0.0 {
            vec![("momentum_buffer", 0.0)]
        } else {
            vec![]
        }
    }

    fn validate(&self, lr: f64) -> Result<()> {
        non_negative("SGD lr", lr)?;
        non_negative("SGD momentum", self.momentum)?;
        non_negative("SGD weight_decay", self.weight_decay)?;
        if !self.dampening.is_finite() {
            return Err(Error::config(
                "SGD dampening",
                format!("{}, expected a finite value", self.dampening),
            ));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::config(
                "SGD nesterov",
                format!(
                    "needs momentum > 0 and dampening 0, got momentum {} and dampening {}",
                    self.momentum, self.dampening
                ),
            ));
        }
        Ok(())
    }

    #[inline(always)]
    fn host<T: Real>(&self, k: Ctx, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]) {
        let (lr, wd, mu) = (
            T::from_f64(k.lr),
            T::from_f64(self.weight_decay),
            T::from_f64(self.momentum),
        );
        let damp = T::from_f64(1.0 - self.dampening);
        let decay = self.weight_decay != 0.0;
        match bufs {
            [] => {
                for (p, &g) in p.iter_mut().zip(g) {
                    let d = if decay { g + wd * *p } else { g };
                    *p = *p - lr * d;
                }
            }
            [buf, ..] => {
                let first = k.step == 1;
                for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
                    let d = if decay { g + wd * *p } else { g };
                    *b = if first { d } else { mu * *b + damp * d };
                    let d = if self.nesterov { d + mu * *b } else { *b };
                    *p = *p - lr * d;
                }
            }
        }
    }

    fn tensor(&self, k: Ctx, p: &Tensor, g: &Tensor, bufs: &mut [Tensor]) -> Result<Tensor> {
        let mut d = if self.weight_decay != 0.0 {
            (p.affine(self.weight_decay, 0.0)? + g)?
        } else {
            g.clone()
        };
        if let [buf, ..] = bufs {
            *buf = if k.step == 1 {
                d.clone()
            } else {
                (buf.affine(self.momentum, 0.0)? + d.affine(1.0 - self.dampening, 0.0)?)?
            };
            d = if self.nesterov {
                (d + buf.affine(self.momentum, 0.0)?)?
            } else {
                buf.clone()
            };
        }
        Ok((p - d.affine(k.lr, 0.0)?)?)
    }
}

impl_optimizer!(Sgd);
