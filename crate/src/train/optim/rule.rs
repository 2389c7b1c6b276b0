//! An update rule ([`Rule`]): the buffers a torch.optim optimizer keeps per
//! parameter and the two ways to apply one step, in place on host slices
//! (the fused CPU path, `fused_step.rs`) and with Candle tensor ops; and
//! `impl_optimizer!`, which makes a rule with `lr` and `slots` fields an
//! [`Optimizer`](super::Optimizer).

use super::Real;
use crate::Result;
use candle_core::Tensor;

/// Where one step of one parameter stands.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    /// The step count including this step (1 on the first step).
    pub step: u64,
    pub lr: f64,
}

/// An update rule: its buffers and the two ways to apply it.
pub(crate) trait Rule: Sync {
    /// Buffer names, in order, with their initial value.
    fn buffers(&self) -> Vec<(&'static str, f64)>;
    /// Errors on invalid hyperparameters (torch's `ValueError`s).
    fn validate(&self, lr: f64) -> Result<()>;
    /// In place on host slices of one parameter.
    fn host<T: Real>(&self, k: Ctx, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]);
    /// With tensor ops: returns the new parameter, replaces the buffers.
    fn tensor(&self, k: Ctx, p: &Tensor, g: &Tensor, bufs: &mut [Tensor]) -> Result<Tensor>;
}

/// Implements [`Optimizer`] for a type with fields `lr: f64`, `slots: Slots`,
/// that implements [`Rule`] and has `fn describe(&self) -> String`.
macro_rules! impl_optimizer {
    ($t:ty) => {
        impl $t {
            /// Benchmarks and tests: the tensor-op path (used for CUDA,
            /// f16, bf16) even for f32/f64 on the CPU.
            #[doc(hidden)]
            pub fn tensor_path(mut self) -> Self {
                self.slots.force_tensor = true;
                self
            }
        }
        impl $crate::train::optim::Optimizer for $t {
            fn name(&self) -> String {
                self.describe()
            }
            fn attach(&mut self, params: Vec<(String, candle_core::Var)>) -> $crate::Result<()> {
                let mut slots = std::mem::take(&mut self.slots);
                let r = slots.attach(self, self.lr, params);
                self.slots = slots;
                r
            }
            fn step(&mut self, grads: &candle_core::backprop::GradStore) -> $crate::Result<()> {
                let mut slots = std::mem::take(&mut self.slots);
                let r = slots.step(self, self.lr, grads);
                self.slots = slots;
                r
            }
            fn lr(&self) -> f64 {
                self.lr
            }
            fn set_lr(&mut self, lr: f64) {
                self.lr = lr;
            }
            fn state(&self) -> $crate::Result<Vec<(String, candle_core::Tensor)>> {
                self.slots.state(self)
            }
            fn load_state(
                &mut self,
                state: &std::collections::HashMap<String, candle_core::Tensor>,
            ) -> $crate::Result<()> {
                let mut slots = std::mem::take(&mut self.slots);
                let r = slots.load_state(self, state);
                self.slots = slots;
                r
            }
            fn fresh(&self) -> Box<dyn $crate::train::optim::Optimizer> {
                let slots = Slots {
                    force_tensor: self.slots.force_tensor,
                    ..Slots::default()
                };
                Box::new(Self { slots, ..*self })
            }
        }
    };
}
pub(crate) use impl_optimizer;
