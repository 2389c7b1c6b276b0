//! Adagrad — torch.optim.Adagrad (`_single_tensor_adagrad`):
//!
//! ```text
//! g ← g + wd·θ
//! clr = lr / (1 + (t − 1)·lr_decay)
//! s ← s + g²
//! θ ← θ − clr · g / (√s + ε)
//! ```
//! Defaults: lr 1e-2, lr_decay 0, weight_decay 0, initial_accumulator_value 0, ε 1e-10.
//!
//! ```
//! use nnlab::train::optim::{Adagrad, Optimizer};
//! assert_eq!(Adagrad::new(0.01).lr_decay(0.1).name(), "Adagrad(lr=0.01, lr_decay=0.1)");
//! ```

use super::{impl_optimizer, non_negative, num, Ctx, Real, Rule, Slots};
use crate::Result;
use candle_core::Tensor;

/// torch.optim.Adagrad. Buffer: `sum`.
pub struct Adagrad {
    lr: f64,
    lr_decay: f64,
    weight_decay: f64,
    initial_accumulator_value: f64,
    eps: f64,
    slots: Slots,
}

impl Default for Adagrad {
    /// torch's default learning rate 1e-2.
    fn default() -> Self {
        Adagrad::new(1e-2)
    }
}

impl Adagrad {
    pub fn new(lr: f64) -> Self {
        Adagrad {
            lr,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            slots: Slots::default(),
        }
    }
    /// `clr = lr / (1 + (t − 1)·lr_decay)` (default 0).
    pub fn lr_decay(mut self, d: f64) -> Self {
        self.lr_decay = d;
        self
    }
    /// L2 penalty added to the gradient (default 0).
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Starting value of the sum of squares (default 0).
    pub fn initial_accumulator_value(mut self, v: f64) -> Self {
        self.initial_accumulator_value = v;
        self
    }
    /// ε added to √s (default 1e-10).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    fn describe(&self) -> String {
        let mut s = format!("Adagrad(lr={}", num(self.lr));
        for (n, v, d) in [
            ("lr_decay", self.lr_decay, 0.0),
            ("weight_decay", self.weight_decay, 0.0),
            (
                "initial_accumulator_value",
                self.initial_accumulator_value,
                0.0,
            ),
            ("eps", self.eps, 1e-10),
        ] {
            if v != d {
                s += &format!(", {n}={}", num(v));
            }
        }
        s + ")"
    }
}

impl Rule for Adagrad {
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        vec![("sum", self.initial_accumulator_value)]
    }

    fn validate(&self, lr: f64) -> Result<()> {
        non_negative("Adagrad lr", lr)?;
        non_negative("Adagrad lr_decay", self.lr_decay)?;
        non_negative("Adagrad weight_decay", self.weight_decay)?;
        non_negative(
            "Adagrad initial_accumulator_value",
            self.initial_accumulator_value,
        )?;
        non_negative("Adagrad eps", self.eps)
    }

    #[inline(always)]
    fn host<T: Real>(&self, k: Ctx, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]) {
        let clr = T::from_f64(k.lr / (1.0 + (k.step - 1) as f64 * self.lr_decay));
        let (wd, eps, decay) = (
            T::from_f64(self.weight_decay),
            T::from_f64(self.eps),
            self.weight_decay != 0.0,
        );
        for ((p, &g), s) in p.iter_mut().zip(g).zip(bufs[0].iter_mut()) {
            let g = if decay { g + wd * *p } else { g };
            *s += g * g;
            *p += (-clr) * (g / (s.sqrt() + eps));
        }
    }

    fn tensor(&self, k: Ctx, p: &Tensor, g: &Tensor, bufs: &mut [Tensor]) -> Result<Tensor> {
        let clr = k.lr / (1.0 + (k.step - 1) as f64 * self.lr_decay);
        let g = if self.weight_decay != 0.0 {
            (p.affine(self.weight_decay, 0.0)? + g)?
        } else {
            g.clone()
        };
        bufs[0] = (&bufs[0] + g.sqr()?)?;
        let std = bufs[0].sqrt()?.affine(1.0, self.eps)?;
        Ok((p - (g / std)?.affine(clr, 0.0)?)?)
    }
}

impl_optimizer!(Adagrad);
