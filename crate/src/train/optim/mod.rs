//! Optimizers with torch.optim's update rules, defaults and weight decay:
//! [`Sgd`] (plain, momentum, Nesterov), [`Adagrad`], [`RmsProp`], [`Adam`]
//! (with AMSGrad) and [`AdamW`]. One file per optimizer; this file holds the
//! object-safe [`Optimizer`] trait (a `Box<dyn Optimizer>` is one too),
//! [`OptimizerConfig`] (an optimizer as a configuration value) and
//! [`optimizer_by_name`]. The machinery they share: `rule.rs` (an update
//! rule and the macro that makes it an optimizer), `slots.rs` (the attached
//! parameters and their buffers), `state.rs` (state save/restore) and
//! `fused_step.rs` (the fused CPU path).
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
mod fused_step;
mod rmsprop;
mod rule;
mod sgd;
mod slots;
mod state;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamw::AdamW;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

pub(crate) use rule::{impl_optimizer, Ctx, Rule};
pub(crate) use slots::Slots;

use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
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

#[cfg(test)]
mod tests {
    use super::fused_step::STEP_BLOCK;
    use super::*;
    use candle_core::{DType, Device};

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
    fn fresh_optimizers_and_configs_start_from_scratch() -> crate::TestResult {
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
            assert!(used.fresh().state()?.is_empty());
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
        Ok(())
    }

    /// The tensor-op path (CUDA, f16, bf16) computes what the fused CPU path
    /// does, also for a parameter the CPU path updates in blocks on threads.
    #[test]
    fn tensor_path_equals_fused_path() -> crate::TestResult {
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
                    Adam::tensor_path,
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
                .flatten_all()?
                .to_vec1::<f64>()?;
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
        Ok(())
    }

    #[test]
    fn python_numbers() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(1e-8), "1e-8");
        assert_eq!(num(0.999), "0.999");
        assert_eq!(num(10.0), "10");
    }
}
