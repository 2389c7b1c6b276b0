//! AdamW — torch.optim.AdamW: Adam with decoupled weight decay, the
//! parameter shrinks before the Adam step: `θ ← θ·(1 − lr·wd)`, then Adam
//! on the raw gradient (see [`super::Adam`] for the rest of the rule).
//! Defaults: lr 1e-3, betas (0.9, 0.999), ε 1e-8, weight_decay 1e-2, amsgrad off.
//!
//! ```
//! use nnlab::train::optim::{AdamW, Optimizer};
//! assert_eq!(AdamW::new(1e-3).name(), "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)");
//! ```

use super::adam::AdamCfg;
use super::{impl_optimizer, Ctx, Real, Rule, Slots};
use crate::Result;
use candle_core::Tensor;

/// torch.optim.AdamW. Buffers: `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` (amsgrad).
pub struct AdamW {
    lr: f64,
    cfg: AdamCfg,
    slots: Slots,
}

impl Default for AdamW {
    /// torch's default learning rate 1e-3.
    fn default() -> Self {
        AdamW::new(1e-3)
    }
}

impl AdamW {
    pub fn new(lr: f64) -> Self {
        let cfg = AdamCfg {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
            amsgrad: false,
            decoupled: true,
        };
        AdamW {
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
    /// Decoupled decay: `θ ← θ·(1 − lr·wd)` each step (default 1e-2).
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.cfg.weight_decay = wd;
        self
    }
    /// AMSGrad: divide by the running maximum of v.
    pub fn amsgrad(mut self, yes: bool) -> Self {
        self.cfg.amsgrad = yes;
        self
    }
    fn describe(&self) -> String {
        self.cfg.describe("AdamW", self.lr, true)
    }
}

impl Rule for AdamW {
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        self.cfg.buffers()
    }
    fn validate(&self, lr: f64) -> Result<()> {
        self.cfg.validate("AdamW", lr)
    }
    #[inline(always)]
    fn host<T: Real>(&self, k: Ctx, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]) {
        self.cfg.host(k, p, g, bufs)
    }
    fn tensor(&self, k: Ctx, p: &Tensor, g: &Tensor, bufs: &mut [Tensor]) -> Result<Tensor> {
        self.cfg.tensor(k, p, g, bufs)
    }
}

impl_optimizer!(AdamW);
