//! AdamW — torch.optim.AdamW: Adam with decoupled weight decay, the
//! parameter shrinks before the Adam step: `θ ← θ·(1 − lr·wd)`, then Adam
//! on the raw gradient (see [`super::Adam`] for the rest of the rule). Not a
//! copy of Adam: `AdamW::new(lr)` is `Adam::new(lr).decoupled_weight_decay(1e-2)`.
//! Defaults: lr 1e-3, betas (0.9, 0.999), ε 1e-8, weight_decay 1e-2, amsgrad off.
//!
//! ```
//! use nnlab::train::optim::{Adam, AdamW, Optimizer};
//! assert_eq!(AdamW::new(1e-3).name(), "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)");
//! assert_eq!(AdamW::new(1e-3).name(), Adam::new(1e-3).decoupled_weight_decay(0.01).name());
//! ```

use super::Adam;

/// torch.optim.AdamW: makes an [`Adam`] with decoupled weight decay 1e-2;
/// `betas`, `eps`, `weight_decay` and `amsgrad` are Adam's builders.
pub struct AdamW;

impl AdamW {
    /// `Adam::new(lr).decoupled_weight_decay(1e-2)`, torch.optim.AdamW's defaults.
    #[allow(clippy::new_ret_no_self)] // AdamW is a switch on Adam, not a second optimizer type
    pub fn new(lr: f64) -> Adam {
        Adam::new(lr).decoupled_weight_decay(1e-2)
    }
}
