//! RMSprop — torch.optim.RMSprop (`_single_tensor_rmsprop`):
//!
//! ```text
//! g ← g + wd·θ
//! v ← α·v + (1 − α)·g²
//! ḡ ← lerp(ḡ, g, 1 − α),  a = √(v − ḡ²) + ε       (centered)
//!                          a = √v + ε              (otherwise)
//! b ← μ·b + g / a,  θ ← θ − lr·b                   (momentum μ > 0)
//! θ ← θ − lr · g / a                               (otherwise)
//! ```
//! Defaults: lr 1e-2, α 0.99, ε 1e-8, weight_decay 0, momentum 0, centered off.
//!
//! ```
//! use nnlab::train::optim::{Optimizer, RmsProp};
//! assert_eq!(RmsProp::new(0.01).centered(true).name(), "RMSprop(lr=0.01, alpha=0.99, centered=true)");
//! ```

use super::{impl_optimizer, non_negative, num, unit, Ctx, Real, Rule, Slots};
use crate::Result;
use candle_core::Tensor;

/// torch.optim.RMSprop. Buffers: `square_avg`, `momentum_buffer` (momentum > 0),
/// `grad_avg` (centered).
pub struct RmsProp {
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    slots: Slots,
}

impl Default for RmsProp {
    /// torch's default learning rate 1e-2.
    fn default() -> Self {
        RmsProp::new(1e-2)
    }
}

impl RmsProp {
    pub fn new(lr: f64) -> Self {
        RmsProp {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            slots: Slots::default(),
        }
    }
    /// Smoothing constant α of the squared-gradient average (default 0.99).
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a;
        self
    }
    /// ε added to the root (default 1e-8).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    /// L2 penalty added to the gradient (default 0).
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Momentum μ (default 0).
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
    /// Divide by the estimated variance instead of the raw second moment.
    pub fn centered(mut self, yes: bool) -> Self {
        self.centered = yes;
        self
    }

    fn describe(&self) -> String {
        let mut s = format!("RMSprop(lr={}, alpha={}", num(self.lr), num(self.alpha));
        if self.eps != 1e-8 {
            s += &format!(", eps={}", num(self.eps));
        }
        if self.weight_decay != 0.0 {
            s += &format!(", weight_decay={}", num(self.weight_decay));
        }
        if self.momentum != 0.0 {
            s += &format!(", momentum={}", num(self.momentum));
        }
        if self.centered {
            s += ", centered=true";
        }
        s + ")"
    }
}

impl Rule for RmsProp {
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        let mut b = vec![("square_avg", 0.0)];
        if self.momentum > 0.0 {
            b.push(("momentum_buffer", 0.0));
        }
        if self.centered {
            b.push(("grad_avg", 0.0));
        }
        b
    }

    fn validate(&self, lr: f64) -> Result<()> {
        non_negative("RMSprop lr", lr)?;
        non_negative("RMSprop eps", self.eps)?;
        non_negative("RMSprop momentum", self.momentum)?;
        non_negative("RMSprop weight_decay", self.weight_decay)?;
        unit("RMSprop alpha", self.alpha)
    }

    #[inline(always)]
    fn host<T: Real>(&self, k: Ctx, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]) {
        let (lr, wd, eps, mu) = (
            T::from_f64(k.lr),
            T::from_f64(self.weight_decay),
            T::from_f64(self.eps),
            T::from_f64(self.momentum),
        );
        let (alpha, w, one) = (
            T::from_f64(self.alpha),
            T::from_f64(1.0 - self.alpha),
            T::from_f64(1.0),
        );
        let decay = self.weight_decay != 0.0;
        let (sq, rest) = bufs
            .split_first_mut()
            .expect("RMSprop has a square_avg buffer");
        let (mut mom, mut ga): (Option<&mut [T]>, Option<&mut [T]>) = match rest {
            [m, c] => (Some(&mut **m), Some(&mut **c)),
            [b] => {
                if self.momentum > 0.0 {
                    (Some(&mut **b), None)
                } else {
                    (None, Some(&mut **b))
                }
            }
            _ => (None, None),
        };
        for i in 0..p.len() {
            let g = if decay { g[i] + wd * p[i] } else { g[i] };
            sq[i] = sq[i] * alpha + w * (g * g);
            let avg = match ga.as_deref_mut() {
                Some(ga) => {
                    ga[i] = ga[i].lerp(g, w, one);
                    (sq[i] - ga[i] * ga[i]).sqrt() + eps
                }
                None => sq[i].sqrt() + eps,
            };
            match mom.as_deref_mut() {
                Some(b) => {
                    b[i] = b[i] * mu + g / avg;
                    p[i] += (-lr) * b[i];
                }
                None => p[i] += (-lr) * (g / avg),
            }
        }
    }

    fn tensor(&self, k: Ctx, p: &Tensor, g: &Tensor, bufs: &mut [Tensor]) -> Result<Tensor> {
        let g = if self.weight_decay != 0.0 {
            (p.affine(self.weight_decay, 0.0)? + g)?
        } else {
            g.clone()
        };
        bufs[0] = (bufs[0].affine(self.alpha, 0.0)? + g.sqr()?.affine(1.0 - self.alpha, 0.0)?)?;
        let avg = if self.centered {
            let last = bufs.len() - 1;
            bufs[last] = (&bufs[last] + (&g - &bufs[last])?.affine(1.0 - self.alpha, 0.0)?)?;
            (&bufs[0] - bufs[last].sqr()?)?
                .sqrt()?
                .affine(1.0, self.eps)?
        } else {
            bufs[0].sqrt()?.affine(1.0, self.eps)?
        };
        let d = if self.momentum > 0.0 {
            bufs[1] = (bufs[1].affine(self.momentum, 0.0)? + (g / avg)?)?;
            bufs[1].clone()
        } else {
            (g / avg)?
        };
        Ok((p - d.affine(k.lr, 0.0)?)?)
    }
}

impl_optimizer!(RmsProp);
