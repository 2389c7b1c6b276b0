//! The parameters an optimizer updates ([`Slots`]): each with its step count
//! and buffers, host vectors for f32/f64 on the CPU (updated in place by the
//! fused step) and tensors otherwise (CUDA, f16, bf16), and one step over all
//! of them. Saving and restoring the buffers is in `state.rs`.

use super::fused_step::HostStep;
use super::rule::{Ctx, Rule};
use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use std::cell::RefCell;
use std::collections::HashMap;

/// The buffers of one parameter: host vectors (the fused CPU step) or tensors.
pub(super) enum Bufs {
    F32(Vec<Vec<f32>>),
    F64(Vec<Vec<f64>>),
    Tensor(Vec<Tensor>),
}

/// One attached parameter, its step count and its buffers.
pub(super) struct Slot {
    pub(super) name: String,
    pub(super) var: Var,
    pub(super) step: u64,
    pub(super) bufs: Bufs,
}

/// The parameters of an optimizer and their state.
#[derive(Default)]
pub(crate) struct Slots {
    pub(super) slots: Vec<Slot>,
    /// State loaded before `attach`, applied when the parameters arrive.
    pub(super) pending: Option<HashMap<String, Tensor>>,
    /// Tests: take the tensor-op path even on the CPU.
    pub(crate) force_tensor: bool,
}

impl Slots {
    pub(crate) fn attach<R: Rule>(
        &mut self,
        rule: &R,
        lr: f64,
        params: Vec<(String, Var)>,
    ) -> Result<()> {
        rule.validate(lr)?;
        let buffers = rule.buffers();
        let mut slots = Vec::with_capacity(params.len());
        for (name, var) in params {
            if slots.iter().any(|s: &Slot| s.name == name) {
                return Err(Error::config(
                    name,
                    "parameter attached twice, expected unique names",
                ));
            }
            let (dtype, dims, dev) = (var.dtype(), var.dims().to_vec(), var.device().clone());
            let n = var.elem_count();
            let host = dev.is_cpu() && !self.force_tensor;
            let bufs = match dtype {
                DType::F64 if host => Bufs::F64(buffers.iter().map(|&(_, v)| vec![v; n]).collect()),
                DType::F32 if host => {
                    Bufs::F32(buffers.iter().map(|&(_, v)| vec![v as f32; n]).collect())
                }
                DType::F64 | DType::F32 | DType::F16 | DType::BF16 => Bufs::Tensor(
                    buffers
                        .iter()
                        .map(|&(_, v)| Tensor::zeros(dims.as_slice(), dtype, &dev)?.affine(0.0, v))
                        .collect::<candle_core::Result<_>>()?,
                ),
                other => {
                    return Err(Error::config(
                        name,
                        format!("parameter of dtype {other:?}, expected a float dtype"),
                    ))
                }
            };
            slots.push(Slot {
                name,
                var,
                step: 0,
                bufs,
            });
        }
        self.slots = slots;
        if let Some(pending) = self.pending.take() {
            self.load_state(rule, &pending)?;
        }
        Ok(())
    }

    pub(crate) fn step<R: Rule>(&mut self, rule: &R, lr: f64, grads: &GradStore) -> Result<()> {
        rule.validate(lr)?;
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            if g.dims() != slot.var.dims() {
                return Err(Error::shape(
                    format!("optimizer step, {}", slot.name),
                    format!(
                        "gradient {:?}, expected the parameter's shape {:?}",
                        g.dims(),
                        slot.var.dims()
                    ),
                ));
            }
            let k = Ctx {
                step: slot.step + 1,
                lr,
            };
            match &mut slot.bufs {
                Bufs::Tensor(bufs) => {
                    let p = slot.var.as_tensor().detach();
                    let new = rule.tensor(k, &p, &g.detach(), bufs)?;
                    slot.var.set(&new)?;
                }
                host => {
                    let g = g.detach().contiguous()?;
                    let op = HostStep {
                        rule,
                        k,
                        bufs: RefCell::new(host),
                    };
                    slot.var.as_tensor().inplace_op2(&g, &op)?;
                }
            }
            slot.step += 1;
        }
        Ok(())
    }
}
