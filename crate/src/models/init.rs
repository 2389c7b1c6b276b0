//! PyTorch's default parameter initialisation, drawn from a seeded stream.
//!
//! * `nn.Linear(in, out)` / `nn.Conv2d(c, o, k)`: the weight is
//!   `kaiming_uniform_(a = √5)`, i.e. `U(−b, b)` with
//!   `b = gain·√(3/fan_in) = √(2/(1+5))·√(3/fan_in) = 1/√fan_in`; the bias is
//!   `U(−1/√fan_in, 1/√fan_in)` too (`fan_in = in` or `c·k·k`).
//! * BatchNorm / LayerNorm: weight 1, bias 0, running mean 0, running var 1.
//! * hw2's `FullyConnectedLayer`: `W = randn(in, out)·√(2/in)`, `b = 0`
//!   (kaiming normal, fan in).
//!
//! Every model draws from one generator `crate::device::next_rng("init")`, so
//! after `nnlab::seed(s)` the same sequence of builds gives the same weights.
//!
//! ```
//! use nnlab::models::init::ParamInit;
//! let mut init = ParamInit::new(&candle_core::Device::Cpu, candle_core::DType::F32);
//! let w = init.uniform(&[10, 784], 1.0 / 784f64.sqrt()).unwrap();
//! assert_eq!(w.dims(), &[10, 784]);
//! ```

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// The most parameters one model may have: 2^28 ≈ 268 million values
/// (1 GiB in f32; 4 GiB with its gradient and Adam's two moments, plus the
/// 2 GiB f64 draw at creation: what a course machine of 24 GiB can hold
/// beside its data; the course's largest model has under 10 million).
/// Checked before anything is allocated:
/// by [`ParamInit`] for every tensor and the running total, and by the
/// config parsers for every layer (`MlpConfig::validate`), so a config with
/// a 10⁶ × 10⁶ layer is an error naming the layer and the count, not an
/// abort allocating 8 TB.
pub const MAX_PARAMS: usize = 1 << 28;

/// Where new parameters are created (device, dtype) and the generator they
/// are drawn from.
pub struct ParamInit {
    pub device: Device,
    pub dtype: DType,
    rng: StdRng,
    /// Values created so far (checked against [`MAX_PARAMS`]).
    created: usize,
}

/// The number of values of `shape`, or an error when the product overflows
/// or is over [`MAX_PARAMS`].
pub fn param_count(shape: &[usize]) -> Result<usize> {
    match shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
        Some(n) if n <= MAX_PARAMS => Ok(n),
        n => Err(Error::config(
            "parameters",
            format!(
                "a parameter of shape {shape:?} holds {}, more than the ceiling of {MAX_PARAMS} (nnlab::models::init::MAX_PARAMS)",
                n.map(|n| format!("{n} values")).unwrap_or_else(|| "more values than usize counts".into())
            ),
        )),
    }
}

impl ParamInit {
    /// A new generator from the stream `"init"` (see the module doc).
    pub fn new(device: &Device, dtype: DType) -> ParamInit {
        ParamInit {
            device: device.clone(),
            dtype,
            rng: crate::device::next_rng("init"),
            created: 0,
        }
    }

    /// The same with an explicit generator (tests).
    pub fn with_rng(device: &Device, dtype: DType, rng: StdRng) -> ParamInit {
        ParamInit {
            device: device.clone(),
            dtype,
            rng,
            created: 0,
        }
    }

    fn var(&self, data: Vec<f64>, shape: &[usize]) -> Result<Var> {
        let t = Tensor::from_vec(data, shape, &Device::Cpu)?
            .to_dtype(self.dtype)?
            .to_device(&self.device)?;
        Ok(Var::from_tensor(&t)?)
    }

    /// Counts `shape` in: its size, or an error when it or the running
    /// total goes over [`MAX_PARAMS`] (nothing is allocated then).
    fn reserve(&mut self, shape: &[usize]) -> Result<usize> {
        let n = param_count(shape)?;
        match self.created.checked_add(n) {
            Some(total) if total <= MAX_PARAMS => {
                self.created = total;
                Ok(n)
            }
            _ => Err(Error::config(
                "parameters",
                format!(
                    "{} values so far and a parameter of shape {shape:?} ({n}): more than the ceiling of {MAX_PARAMS} (nnlab::models::init::MAX_PARAMS)",
                    self.created
                ),
            )),
        }
    }

    /// `U(−bound, bound)` of `shape`.
    pub fn uniform(&mut self, shape: &[usize], bound: f64) -> Result<Var> {
        let n = self.reserve(shape)?;
        let data = (0..n)
            .map(|_| self.rng.random_range(-1.0..1.0f64) * bound)
            .collect();
        self.var(data, shape)
    }

    /// `N(0, 1)·std` of `shape`.
    pub fn normal(&mut self, shape: &[usize], std: f64) -> Result<Var> {
        let n = self.reserve(shape)?;
        let data = (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut self.rng);
                z * std
            })
            .collect::<Vec<f64>>();
        self.var(data, shape)
    }

    /// A constant of `shape`.
    pub fn constant(&self, shape: &[usize], value: f64) -> Result<Var> {
        let n = param_count(shape)?;
        self.var(vec![value; n], shape)
    }

    /// torch's default for Linear/Conv weights and biases: `U(±1/√fan_in)`.
    pub fn kaiming_uniform(&mut self, shape: &[usize], fan_in: usize) -> Result<Var> {
        let bound = if fan_in == 0 {
            0.0
        } else {
            1.0 / (fan_in as f64).sqrt()
        };
        self.uniform(shape, bound)
    }

    /// `kaiming_normal_` with fan in: `N(0, 2/fan_in)`.
    pub fn kaiming_normal(&mut self, shape: &[usize], fan_in: usize) -> Result<Var> {
        let std = if fan_in == 0 {
            0.0
        } else {
            (2.0 / fan_in as f64).sqrt()
        };
        self.normal(shape, std)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn kaiming_uniform_bound_and_spread() -> crate::TestResult {
        let mut init = ParamInit::with_rng(&Device::Cpu, DType::F64, StdRng::seed_from_u64(1));
        let w = init.kaiming_uniform(&[64, 100], 100)?;
        let v: Vec<f64> = w.as_tensor().flatten_all()?.to_vec1()?;
        let max = v.iter().fold(0f64, |m, x| m.max(x.abs()));
        assert!(max <= 0.1 && max > 0.099, "max |w| = {max}");
        // variance of U(-b, b) is b²/3
        let var = v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64;
        assert!((var - 0.01 / 3.0).abs() < 0.0005, "var {var}");
        Ok(())
    }

    #[test]
    fn same_rng_same_weights() -> crate::TestResult {
        let a = ParamInit::with_rng(&Device::Cpu, DType::F32, StdRng::seed_from_u64(7))
            .normal(&[5], 1.0)?;
        let b = ParamInit::with_rng(&Device::Cpu, DType::F32, StdRng::seed_from_u64(7))
            .normal(&[5], 1.0)?;
        let (a, b): (Vec<f32>, Vec<f32>) = (a.as_tensor().to_vec1()?, b.as_tensor().to_vec1()?);
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
        Ok(())
    }

    /// Issue 17: a huge or overflowing shape is an error before allocating.
    #[test]
    fn shapes_over_the_ceiling_are_refused() {
        let mut init = ParamInit::with_rng(&Device::Cpu, DType::F32, StdRng::seed_from_u64(1));
        let e = init
            .uniform(&[1_000_000, 1_000_000], 0.1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[1000000, 1000000]")
                && e.contains("1000000000000 values")
                && e.contains("ceiling"),
            "{e}"
        );
        let e = init.normal(&[usize::MAX, 2], 1.0).unwrap_err().to_string();
        assert!(e.contains("more values than usize counts"), "{e}");
        assert!(init.constant(&[usize::MAX, 3], 1.0).is_err());
        init.created = MAX_PARAMS - 1;
        let e = init.uniform(&[2], 1.0).unwrap_err().to_string();
        assert!(e.contains("so far"), "{e}");
    }
}
