//! An optimizer's state, saved and restored: `"<param>.<buffer>"` tensors of
//! the parameter's shape (`layers.0.weight.exp_avg`) and a per-parameter step
//! count `"<param>.step"` (f64 scalar), so a restored optimizer continues
//! exactly where the saved one stopped. Names, shapes and the step count are
//! checked; an entry that belongs to no attached parameter is an error.

use super::rule::Rule;
use super::slots::{Bufs, Slots};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

impl Slots {
    pub(crate) fn state<R: Rule>(&self, rule: &R) -> Result<Vec<(String, Tensor)>> {
        let names = rule.buffers();
        let mut out = Vec::with_capacity(self.slots.len() * (names.len() + 1));
        for s in &self.slots {
            let dims = s.var.dims();
            for (i, (b, _)) in names.iter().enumerate() {
                let t = match &s.bufs {
                    Bufs::F64(v) => Tensor::from_slice(&v[i], dims, &Device::Cpu)?,
                    Bufs::F32(v) => Tensor::from_slice(&v[i], dims, &Device::Cpu)?,
                    Bufs::Tensor(v) => v[i].copy()?,
                };
                out.push((format!("{}.{b}", s.name), t));
            }
            out.push((
                format!("{}.step", s.name),
                Tensor::new(s.step as f64, &Device::Cpu)?,
            ));
        }
        Ok(out)
    }

    pub(crate) fn load_state<R: Rule>(
        &mut self,
        rule: &R,
        state: &HashMap<String, Tensor>,
    ) -> Result<()> {
        if self.slots.is_empty() {
            self.pending = Some(state.clone());
            return Ok(());
        }
        let names = rule.buffers();
        let mut known = 0;
        let mut new = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            let get = |b: &str| {
                let key = format!("{}.{b}", s.name);
                state.get(&key).ok_or_else(|| {
                    Error::config(format!("optimizer state `{key}`"), "missing; expected the state of an optimizer of the same kind and parameters")
                })
            };
            let st = get("step")?;
            let st = st.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
            let step = match st.as_slice() {
                [x] if *x >= 0.0 && x.fract() == 0.0 => *x as u64,
                _ => {
                    return Err(Error::config(
                        format!("optimizer state `{}.step`", s.name),
                        format!("{st:?}, expected one whole number ≥ 0"),
                    ))
                }
            };
            let mut tensors = Vec::with_capacity(names.len());
            for (b, _) in &names {
                let t = get(b)?;
                if t.dims() != s.var.dims() {
                    return Err(Error::shape(
                        format!("optimizer state `{}.{b}`", s.name),
                        format!(
                            "{:?}, expected the parameter's shape {:?}",
                            t.dims(),
                            s.var.dims()
                        ),
                    ));
                }
                tensors.push(t.to_dtype(s.var.dtype())?);
            }
            known += names.len() + 1;
            let bufs = match &s.bufs {
                Bufs::F64(_) => Bufs::F64(
                    tensors
                        .iter()
                        .map(|t| t.flatten_all()?.to_vec1::<f64>())
                        .collect::<candle_core::Result<_>>()?,
                ),
                Bufs::F32(_) => Bufs::F32(
                    tensors
                        .iter()
                        .map(|t| t.flatten_all()?.to_vec1::<f32>())
                        .collect::<candle_core::Result<_>>()?,
                ),
                Bufs::Tensor(_) => Bufs::Tensor(
                    tensors
                        .iter()
                        .map(|t| t.to_device(s.var.device())?.copy())
                        .collect::<candle_core::Result<_>>()?,
                ),
            };
            new.push((step, bufs));
        }
        if known != state.len() {
            let mut extra: Vec<&String> = state
                .keys()
                .filter(|k| {
                    !self.slots.iter().any(|s| {
                        k.strip_prefix(s.name.as_str())
                            .and_then(|r| r.strip_prefix('.'))
                            .is_some_and(|b| b == "step" || names.iter().any(|(n, _)| *n == b))
                    })
                })
                .collect();
            extra.sort();
            return Err(Error::config("optimizer state", format!("unexpected entries {extra:?}; expected only the buffers of the attached parameters")));
        }
        for (s, (step, bufs)) in self.slots.iter_mut().zip(new) {
            s.step = step;
            s.bufs = bufs;
        }
        Ok(())
    }
}
