//! Optimizers with torch.optim's update rules, defaults and weight decay:
//! [`Sgd`] (plain, momentum, Nesterov), [`Adagrad`], [`RmsProp`], [`Adam`]
//! (with AMSGrad) and [`AdamW`]. One file per optimizer; this file holds the
//! object-safe [`Optimizer`] trait (a `Box<dyn Optimizer>` is one too),
//! [`OptimizerConfig`] (an optimizer as a configuration value),
//! [`optimizer_by_name`] and the machinery they share (per-parameter state,
//! state save/restore, the fused CPU path).
//!
//! An optimizer is built without parameters; the Learner attaches them:
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use nnlab::train::optim::{Adam, Optimizer};
//! let w = Var::new(&[1.0f64, -2.0], &Device::Cpu).unwrap();
//! let mut opt = Adam::new(0.1);
//! opt.attach(vec![("w".into(), w.clone())]).unwrap();
//! let loss = w.as_tensor().sqr().unwrap().sum_all().unwrap();   // ‖w‖²
//! opt.step(&loss.backward().unwrap()).unwrap();
//! let w1 = w.as_tensor().to_vec1::<f64>().unwrap();   // Adam's first step ≈ lr·sign(g)
//! assert!((w1[0] - 0.9).abs() < 1e-8 && (w1[1] + 1.9).abs() < 1e-8);
//! assert_eq!(opt.name(), "Adam(lr=0.1, betas=(0.9, 0.999), eps=1e-8)");
//! ```
//!
//! How a step runs: a parameter on the CPU in f32 or f64 is updated in place
//! by one fused loop over (param, grad, buffers) — no temporary tensors; its
//! buffers live in host vectors. Anything else (CUDA, f16, bf16) goes through
//! Candle tensor ops (`affine` where it fuses a scale and a shift) and
//! `Var::set`. Both compute in the parameter's dtype.
//!
//! State (`state()` / `load_state()`): `"<param>.<buffer>"` tensors of the
//! parameter's shape (`layers.0.weight.exp_avg`) and a per-parameter step
//! count `"<param>.step"` (f64 scalar), so a restored optimizer continues
//! exactly where the saved one stopped.

mod adagrad;
mod adam;
mod adamw;
mod rmsprop;
mod sgd;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamw::AdamW;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Device, Layout, Tensor, Var};
use rayon::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// A torch.optim-style optimizer, object-safe (`Box<dyn Optimizer>`).
pub trait Optimizer: Send {
    /// The optimizer and its hyperparameters: `Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-8)`.
    fn name(&self) -> String;
    /// Takes the parameters to update (names as in the model's state dict).
    fn attach(&mut self, params: Vec<(String, Var)>) -> Result<()>;
    /// One update from the gradients; a parameter without a gradient is
    /// skipped (torch: `grad is None`), its step count unchanged.
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    fn lr(&self) -> f64;
    fn set_lr(&mut self, lr: f64);
    /// Deep copies of every buffer, `"<param>.<buffer>"`, and `"<param>.step"`.
    fn state(&self) -> Result<Vec<(String, Tensor)>>;
    /// Restores what [`Optimizer::state`] returned (names and shapes checked).
    /// Before `attach` the state is kept and applied when parameters arrive.
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()>;
    /// A new optimizer of the same kind with the same hyperparameters (and
    /// the current learning rate), before `attach`: no parameters, no state.
    fn fresh(&self) -> Box<dyn Optimizer>;
}

/// A boxed optimizer is an optimizer: `Learner::optimizer(optimizer_by_name("adam", 1e-3)?)`.
impl Optimizer for Box<dyn Optimizer> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn attach(&mut self, params: Vec<(String, Var)>) -> Result<()> {
        (**self).attach(params)
    }
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        (**self).step(grads)
    }
    fn lr(&self) -> f64 {
        (**self).lr()
    }
    fn set_lr(&mut self, lr: f64) {
        (**self).set_lr(lr)
    }
    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        (**self).state()
    }
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        (**self).load_state(state)
    }
    fn fresh(&self) -> Box<dyn Optimizer> {
        (**self).fresh()
    }
}

/// An optimizer as a configuration value: its kind and hyperparameters,
/// without parameters or state. It clones freely, so it can sit in a
/// description of a run (a struct, a list of runs) and make a fresh optimizer
/// for every training of that run with [`OptimizerConfig::build`].
///
/// ```
/// use nnlab::train::optim::{Adam, Optimizer, OptimizerConfig, Sgd};
/// let configs: Vec<OptimizerConfig> = vec![Adam::new(1e-3).into(), Sgd::new(1e-2).momentum(0.9).into()];
/// let again = configs[1].clone();
/// assert_eq!(again.build().name(), "SGD(lr=0.01, momentum=0.9)");
/// assert_eq!(configs[0].to_string(), "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-8)");
/// ```
pub struct OptimizerConfig {
    template: Box<dyn Optimizer>,
}

impl OptimizerConfig {
    /// The configuration of `optimizer` (its parameters and state, if any, are left behind).
    pub fn new(optimizer: impl Optimizer + 'static) -> OptimizerConfig {
        OptimizerConfig {
            template: optimizer.fresh(),
        }
    }

    /// A fresh optimizer with these hyperparameters, ready for `Learner::optimizer`.
    pub fn build(&self) -> Box<dyn Optimizer> {
        self.template.fresh()
    }

    /// `Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-8)`.
    pub fn name(&self) -> String {
        self.template.name()
    }
}

impl Clone for OptimizerConfig {
    fn clone(&self) -> Self {
        OptimizerConfig {
            template: self.template.fresh(),
        }
    }
}

impl std::fmt::Debug for OptimizerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OptimizerConfig({})", self.name())
    }
}

impl std::fmt::Display for OptimizerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl<T: Optimizer + 'static> From<T> for OptimizerConfig {
    fn from(optimizer: T) -> OptimizerConfig {
        OptimizerConfig::new(optimizer)
    }
}

/// The optimizer called `name` with learning rate `lr` and torch's defaults:
/// `sgd`, `momentum` (SGD with momentum 0.9), `adagrad`, `rmsprop`, `adam`, `adamw`.
pub fn optimizer_by_name(name: &str, lr: f64) -> Result<Box<dyn Optimizer>> {
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "sgd" => Box::new(Sgd::new(lr)),
        "momentum" => Box::new(Sgd::new(lr).momentum(0.9)),
        "adagrad" => Box::new(Adagrad::new(lr)),
        "rmsprop" => Box::new(RmsProp::new(lr)),
        "adam" => Box::new(Adam::new(lr)),
        "adamw" => Box::new(AdamW::new(lr)),
        _ => {
            return Err(Error::config(
                "optimizer",
                format!("unknown optimizer `{name}`, expected one of sgd, momentum, adagrad, rmsprop, adam, adamw"),
            ))
        }
    })
}

/// A number the way Python prints it: `0`, `0.9`, `1e-8`.
pub(crate) fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{}", x as i64)
    } else {
        format!("{x:?}")
    }
}

/// Checks that a hyperparameter is finite and ≥ 0 (torch's `Invalid ... value`).
pub(crate) fn non_negative(field: &str, x: f64) -> Result<()> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            field,
            format!("{x}, expected a finite value ≥ 0"),
        ))
    }
}

/// Checks that a hyperparameter is in `[0, 1)` (betas, alpha).
pub(crate) fn unit(field: &str, x: f64) -> Result<()> {
    if (0.0..1.0).contains(&x) {
        Ok(())
    } else {
        Err(Error::config(
            field,
            format!("{x}, expected a value in [0, 1)"),
        ))
    }
}

/// The float types the fused CPU path computes in (the crate's one float trait).
pub(crate) use crate::float::Real;

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

enum Bufs {
    F32(Vec<Vec<f32>>),
    F64(Vec<Vec<f64>>),
    Tensor(Vec<Tensor>),
}

struct Slot {
    name: String,
    var: Var,
    step: u64,
    bufs: Bufs,
}

/// The parameters of an optimizer and their state.
#[derive(Default)]
pub(crate) struct Slots {
    slots: Vec<Slot>,
    pending: Option<HashMap<String, Tensor>>,
    /// Tests: take the tensor-op path even on the CPU.
    pub(crate) force_tensor: bool,
}

/// The fused CPU step: mutates the parameter's storage in place.
struct HostStep<'a, R: Rule> {
    rule: &'a R,
    k: Ctx,
    bufs: RefCell<&'a mut Bufs>,
}

impl<R: Rule> candle_core::InplaceOp2 for HostStep<'_, R> {
    fn name(&self) -> &'static str {
        "nnlab-optimizer-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (Some((a, b)), Some((c, d))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("optimizer step: parameter and gradient must be contiguous")
        };
        let mut bufs = self.bufs.borrow_mut();
        match (s1, s2, &mut **bufs) {
            (CpuStorage::F64(p), CpuStorage::F64(g), Bufs::F64(bs)) => {
                host_step(self.rule, self.k, &mut p[a..b], &g[c..d], bs)
            }
            (CpuStorage::F32(p), CpuStorage::F32(g), Bufs::F32(bs)) => {
                host_step(self.rule, self.k, &mut p[a..b], &g[c..d], bs)
            }
            _ => candle_core::bail!("optimizer step: parameter, gradient and state dtypes differ"),
        }
        Ok(())
    }
}

/// Elements per block of a parameter's update when it is split over threads.
const STEP_BLOCK: usize = 1 << 15;

/// `rule.host` on one parameter, in blocks of [`STEP_BLOCK`] elements on
/// the thread pool when it has more than two, each compiled for AVX-512
/// where the CPU has it (the rules are elementwise: every block is updated
/// exactly as the whole would be; the f32 arithmetic is the same, only
/// wider). An MLP5 epoch spent 9 % of its time in a one-thread SSE Adam.
fn host_step<T: Real, R: Rule>(rule: &R, k: Ctx, p: &mut [T], g: &[T], bufs: &mut [Vec<T>]) {
    if p.len() <= 2 * STEP_BLOCK {
        let mut b: Vec<&mut [T]> = bufs.iter_mut().map(|v| &mut v[..]).collect();
        return host_block(rule, k, p, g, &mut b);
    }
    let mut blocks: Vec<Vec<&mut [T]>> = (0..p.len().div_ceil(STEP_BLOCK))
        .map(|_| Vec::with_capacity(bufs.len()))
        .collect();
    for buf in bufs.iter_mut() {
        for (i, c) in buf.chunks_mut(STEP_BLOCK).enumerate() {
            blocks[i].push(c);
        }
    }
    p.par_chunks_mut(STEP_BLOCK)
        .zip(g.par_chunks(STEP_BLOCK))
        .zip(blocks.into_par_iter())
        .for_each(|((p, g), mut b)| host_block(rule, k, p, g, &mut b));
}

fn host_block<T: Real, R: Rule>(rule: &R, k: Ctx, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above).
        return unsafe { host_block_avx512(rule, k, p, g, bufs) };
    }
    rule.host(k, p, g, bufs)
}

/// The same loop with AVX-512 enabled (the rules' `host` is inlined here).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn host_block_avx512<T: Real, R: Rule>(
    rule: &R,
    k: Ctx,
    p: &mut [T],
    g: &[T],
    bufs: &mut [&mut [T]],
) {
    rule.host(k, p, g, bufs)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn params(dtype: DType) -> Vec<(String, Var)> {
        let w: Vec<f64> = (0..12).map(|i| (i as f64 * 0.7).sin()).collect();
        let w = Tensor::from_vec(w, (3, 4), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let b = Tensor::new(&[0.1f64, -0.2, 0.3], &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        // more than two blocks of the threaded host step, the last one ragged
        let n = 2 * STEP_BLOCK + 4465;
        let big: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        let big = Tensor::from_vec(big, n, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        vec![
            ("w".into(), Var::from_tensor(&w).unwrap()),
            ("b".into(), Var::from_tensor(&b).unwrap()),
            ("big".into(), Var::from_tensor(&big).unwrap()),
        ]
    }

    fn train(opt: &mut dyn Optimizer, dtype: DType) -> Vec<f64> {
        let ps = params(dtype);
        opt.attach(ps.clone()).unwrap();
        let x = Tensor::new(
            &[[0.5f64, -1.0, 2.0, 0.25], [1.5, 0.5, -0.5, 1.0]],
            &Device::Cpu,
        )
        .unwrap()
        .to_dtype(dtype)
        .unwrap();
        for _ in 0..30 {
            let y = x
                .matmul(&ps[0].1.as_tensor().t().unwrap())
                .unwrap()
                .broadcast_add(ps[1].1.as_tensor())
                .unwrap();
            let loss = y
                .tanh()
                .unwrap()
                .affine(1.0, -0.3)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            let big = ps[2]
                .1
                .as_tensor()
                .tanh()
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            let loss = (loss + big.affine(0.01, 0.0).unwrap()).unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        ps.iter()
            .flat_map(|(_, v)| {
                v.as_tensor()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()
            })
            .collect()
    }

    /// A fresh optimizer (and a config's `build`, and a clone of a config)
    /// starts like the original did, whatever the original has done since;
    /// a boxed optimizer steps like the unboxed one.
    #[test]
    fn fresh_optimizers_and_configs_start_from_scratch() {
        let makes: [Box<dyn Optimizer>; 5] = [
            Box::new(Sgd::new(0.05).momentum(0.9).nesterov(true)),
            Box::new(Adagrad::new(0.1).lr_decay(0.01)),
            Box::new(RmsProp::new(0.01).centered(true)),
            Box::new(Adam::new(0.01).amsgrad(true)),
            Box::new(AdamW::new(0.01).weight_decay(0.1)),
        ];
        for mut used in makes {
            let config = OptimizerConfig::new(used.fresh());
            let first = train(&mut used.fresh(), DType::F64);
            let again = train(&mut used, DType::F64); // `used` is now trained, has state
            assert_eq!(first, again, "{}", used.name());
            let from_used = train(&mut used.fresh(), DType::F64);
            assert_eq!(first, from_used, "{}: fresh() kept state", used.name());
            assert!(used.fresh().state().unwrap().is_empty());
            let mut built = config.clone().build();
            assert_eq!(built.name(), used.name());
            assert_eq!(train(&mut built, DType::F64), first, "{}", config);
            assert_eq!(
                format!("{config:?}"),
                format!("OptimizerConfig({})", used.name())
            );
        }
        let mut tensor = Adam::new(0.01).tensor_path().fresh();
        assert_eq!(
            train(&mut tensor, DType::F32),
            train(&mut Adam::new(0.01).tensor_path(), DType::F32)
        );
    }

    /// The tensor-op path (CUDA, f16, bf16) computes what the fused CPU path
    /// does, also for a parameter the CPU path updates in blocks on threads.
    #[test]
    fn tensor_path_equals_fused_path() {
        type Make = fn(bool) -> Box<dyn Optimizer>;
        fn pick<O: Optimizer + 'static>(o: O, t: fn(O) -> O, tensor: bool) -> Box<dyn Optimizer> {
            Box::new(if tensor { t(o) } else { o })
        }
        let makes: [(&str, Make); 9] = [
            ("sgd", |t| {
                pick(Sgd::new(0.05).weight_decay(0.1), Sgd::tensor_path, t)
            }),
            ("momentum", |t| {
                pick(
                    Sgd::new(0.05).momentum(0.9).dampening(0.2),
                    Sgd::tensor_path,
                    t,
                )
            }),
            ("nesterov", |t| {
                pick(
                    Sgd::new(0.05).momentum(0.9).nesterov(true),
                    Sgd::tensor_path,
                    t,
                )
            }),
            ("adagrad", |t| {
                pick(
                    Adagrad::new(0.1)
                        .lr_decay(0.1)
                        .weight_decay(0.1)
                        .initial_accumulator_value(0.5),
                    Adagrad::tensor_path,
                    t,
                )
            }),
            ("rmsprop", |t| {
                pick(
                    RmsProp::new(0.01).weight_decay(0.1),
                    RmsProp::tensor_path,
                    t,
                )
            }),
            ("rmsprop-cm", |t| {
                pick(
                    RmsProp::new(0.01).centered(true).momentum(0.5),
                    RmsProp::tensor_path,
                    t,
                )
            }),
            ("adam", |t| {
                pick(Adam::new(0.01).weight_decay(0.1), Adam::tensor_path, t)
            }),
            ("amsgrad", |t| {
                pick(
                    Adam::new(0.01).betas(0.5, 0.9).amsgrad(true),
                    Adam::tensor_path,
                    t,
                )
            }),
            ("adamw", |t| {
                pick(
                    AdamW::new(0.01).weight_decay(0.5).amsgrad(true),
                    AdamW::tensor_path,
                    t,
                )
            }),
        ];
        for (name, make) in makes {
            let fused = train(make(false).as_mut(), DType::F64);
            let tensor = train(make(true).as_mut(), DType::F64);
            let start = params(DType::F64)[0]
                .1
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            assert!(
                (fused[0] - start[0]).abs() > 1e-3,
                "{name}: parameters did not move"
            );
            for (i, (a, b)) in fused.iter().zip(&tensor).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                    "{name}[{i}]: fused {a}, tensor ops {b}"
                );
            }
            // f32 on both paths, and bf16 (tensor path only) close to f64.
            let f32s = train(make(true).as_mut(), DType::F32);
            let bf16 = train(make(false).as_mut(), DType::BF16);
            for (i, ((a, b), c)) in fused.iter().zip(&f32s).zip(&bf16).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                    "{name}[{i}]: f64 {a}, f32 tensor ops {b}"
                );
                assert!(
                    (a - c).abs() <= 0.1 * a.abs().max(1.0),
                    "{name}[{i}]: f64 {a}, bf16 {c}"
                );
            }
        }
    }

    #[test]
    fn python_numbers() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(1e-8), "1e-8");
        assert_eq!(num(0.999), "0.999");
        assert_eq!(num(10.0), "10");
    }
}
