//! Adam (and AMSGrad) — torch.optim.Adam (`_single_tensor_adam`), weight
//! decay as an L2 term added to the gradient:
//!
//! ```text
//! g ← g + wd·θ                      (AdamW instead: θ ← θ·(1 − lr·wd))
//! m ← lerp(m, g, 1 − β₁)
//! v ← β₂·v + (1 − β₂)·g²
//! v̂ ← max(v̂, v)                     (amsgrad; the denominator uses v̂)
//! θ ← θ − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
//! ```
//! Defaults: lr 1e-3, betas (0.9, 0.999), ε 1e-8, weight_decay 0, amsgrad off.
//!
//! ```
//! use nnlab::train::optim::{Adam, Optimizer};
//! assert_eq!(Adam::new(1e-3).amsgrad(true).name(), "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-8, amsgrad=true)");
//! ```

use super::{impl_optimizer, non_negative, num, unit, Ctx, Real, Rule, Slots};
use crate::Result;
use candle_core::Tensor;

/// Adam's hyperparameters (AdamW is the same rule with `decoupled` set).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamCfg {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
    /// AdamW: weight decay applied to θ, not added to g.
    pub decoupled: bool,
}

impl AdamCfg {
    pub(crate) fn buffers(&self) -> Vec<(&'static str, f64)> {
        let mut b = vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)];
        if self.amsgrad {
            b.push(("max_exp_avg_sq", 0.0));
        }
        b
    }

    pub(crate) fn validate(&self, what: &str, lr: f64) -> Result<()> {
        non_negative(&format!("{what} lr"), lr)?;
        non_negative(&format!("{what} eps"), self.eps)?;
        unit(&format!("{what} beta1"), self.beta1)?;
        unit(&format!("{what} beta2"), self.beta2)?;
        non_negative(&format!("{what} weight_decay"), self.weight_decay)
    }

    pub(crate) fn describe(&self, what: &str, lr: f64, show_wd: bool) -> String {
        let mut s = format!(
            "{what}(lr={}, betas=({}, {}), eps={}",
            num(lr),
            num(self.beta1),
            num(self.beta2),
            num(self.eps)
        );
        if show_wd || self.weight_decay != 0.0 {
            s += &format!(", weight_decay={}", num(self.weight_decay));
        }
        if self.amsgrad {
            s += ", amsgrad=true";
        }
        s + ")"
    }

    #[inline(always)]
    pub(crate) fn host<T: Real>(&self, k: Ctx, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]) {
        let bc1 = 1.0 - self.beta1.powi(k.step as i32);
        let bc2 = 1.0 - self.beta2.powi(k.step as i32);
        let neg_step = T::from_f64(-(k.lr / bc1));
        let eps = T::from_f64(self.eps);
        let (w1, b2, w2, one) = (
            T::from_f64(1.0 - self.beta1),
            T::from_f64(self.beta2),
            T::from_f64(1.0 - self.beta2),
            T::from_f64(1.0),
        );
        let l2 = !self.decoupled && self.weight_decay != 0.0;
        let (wd, shrink) = (
            T::from_f64(self.weight_decay),
            T::from_f64(1.0 - k.lr * self.weight_decay),
        );
        let shrinks = self.decoupled && self.weight_decay != 0.0;
        let [m, v, rest @ ..] = bufs else { return };
        let bc2s = T::from_f64(bc2.sqrt());
        match rest {
            [vmax, ..] => {
                for ((((p, &g), m), v), vmax) in p
                    .iter_mut()
                    .zip(g)
                    .zip(m.iter_mut())
                    .zip(v.iter_mut())
                    .zip(vmax.iter_mut())
                {
                    let g = if l2 { g + wd * *p } else { g };
                    if shrinks {
                        *p = *p * shrink;
                    }
                    *m = m.lerp(g, w1, one);
                    *v = *v * b2 + w2 * (g * g);
                    *vmax = vmax.max(*v);
                    *p += neg_step * (*m / (vmax.sqrt() / bc2s + eps));
                }
            }
            [] => {
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    let g = if l2 { g + wd * *p } else { g };
                    if shrinks {
                        *p = *p * shrink;
                    }
                    *m = m.lerp(g, w1, one);
                    *v = *v * b2 + w2 * (g * g);
                    *p += neg_step * (*m / (v.sqrt() / bc2s + eps));
                }
            }
        }
    }

    pub(crate) fn tensor(
        &self,
        k: Ctx,
        p: &Tensor,
        g: &Tensor,
        bufs: &mut [Tensor],
    ) -> Result<Tensor> {
        let bc1 = 1.0 - self.beta1.powi(k.step as i32);
        let bc2 = 1.0 - self.beta2.powi(k.step as i32);
        let (p, g) = if self.weight_decay == 0.0 {
            (p.clone(), g.clone())
        } else if self.decoupled {
            (p.affine(1.0 - k.lr * self.weight_decay, 0.0)?, g.clone())
        } else {
            (p.clone(), (p.affine(self.weight_decay, 0.0)? + g)?)
        };
        bufs[0] = (&bufs[0] + (&g - &bufs[0])?.affine(1.0 - self.beta1, 0.0)?)?;
        bufs[1] = (bufs[1].affine(self.beta2, 0.0)? + g.sqr()?.affine(1.0 - self.beta2, 0.0)?)?;
        let v = if self.amsgrad {
            bufs[2] = bufs[2].maximum(&bufs[1])?;
            &bufs[2]
        } else {
            &bufs[1]
        };
        let denom = v.sqrt()?.affine(1.0 / bc2.sqrt(), self.eps)?;
        Ok((p - (&bufs[0] / denom)?.affine(k.lr / bc1, 0.0)?)?)
    }
}

/// torch.optim.Adam, and AdamW with [`Adam::decoupled_weight_decay`] (see
/// [`AdamW`](super::AdamW)). Buffers: `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` (amsgrad).
pub struct Adam {
    lr: f64,
    cfg: AdamCfg,
    slots: Slots,
}

impl Default for Adam {
    /// torch's default learning rate 1e-3.
    fn default() -> Self {
        Adam::new(1e-3)
    }
}

impl Adam {
    pub fn new(lr: f64) -> Self {
        let cfg = AdamCfg {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled: false,
        };
        Adam {
            lr,
            cfg,
            slots: Slots::default(),
        }
    }
    /// (β₁, β₂), default (0.9, 0.999).
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        (self.cfg.beta1, self.cfg.beta2) = (beta1, beta2);
        self
    }
    /// ε added to the root (default 1e-8).
    pub fn eps(mut self, eps: f64) -> Self {
        self.cfg.eps = eps;
        self
    }
    /// Weight decay `wd` (default 0; AdamW's 1e-2): an L2 penalty added to
    /// the gradient, `g + wd·θ`, or, after [`Adam::decoupled_weight_decay`],
    /// the parameter shrunk before the step, `θ ← θ·(1 − lr·wd)`.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.cfg.weight_decay = wd;
        self
    }
    /// AdamW (torch's `Adam(decoupled_weight_decay=True)`): weight decay `wd`
    /// applied to θ, `θ ← θ·(1 − lr·wd)`, then Adam on the raw gradient.
    /// The optimizer is then named `AdamW(...)`, as torch.optim.AdamW.
    pub fn decoupled_weight_decay(mut self, wd: f64) -> Self {
        self.cfg.weight_decay = wd;
        self.cfg.decoupled = true;
        self
    }
    /// `Adam`, or `AdamW` when the weight decay is decoupled.
    fn kind(&self) -> &'static str {
        if self.cfg.decoupled {
            "AdamW"
        } else {
            "Adam"
        }
    }
    /// AMSGrad: divide by the running maximum of v.
    pub fn amsgrad(mut self, yes: bool) -> Self {
        self.cfg.amsgrad = yes;
        self
    }
    fn describe(&self) -> String {
        // AdamW always shows its weight decay, as torch prints it.
        self.cfg.describe(self.kind(), self.lr, self.cfg.decoupled)
    }
}

impl Rule for Adam {
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        self.cfg.buffers()
    }
    fn validate(&self, lr: f64) -> Result<()> {
        self.cfg.validate(self.kind(), lr)
    }
    #[inline(always)]
    fn host<T: Real>(&self, k: Ctx, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]) {
        self.cfg.host(k, p, g, bufs)
    }
    fn tensor(&self, k: Ctx, p: &Tensor, g: &Tensor, bufs: &mut [Tensor]) -> Result<Tensor> {
        self.cfg.tensor(k, p, g, bufs)
    }
}

impl_optimizer!(Adam);
