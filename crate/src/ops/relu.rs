//! `relu(x) = max(x, 0)` with its own backward `dx = dy · [¬(y ≤ 0)]`, each one
//! pass over contiguous memory split across threads. Candle's ReLU backward
//! takes five passes and four temporary tensors (`x ≥ 0` as u8, its f32
//! copy, the product, zeros to add into) and lets the gradient through at
//! `x = 0`; torch (`threshold_backward`) does not, nor does this op. NaN
//! stays NaN, as in torch. On CUDA, Candle's own `relu` is used.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! let x = Tensor::new(&[-1f32, 0., 2.], &Device::Cpu).unwrap();
//! assert_eq!(nnlab::ops::relu(&x).unwrap().to_vec1::<f32>().unwrap(), [0., 0., 2.]);
//! ```

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::storage::{float_dispatch, operand};
use crate::float::Real;
use crate::Result;

/// Elements per parallel task: small tensors stay on one thread.
const GRAIN: usize = 1 << 15;

/// `max(x, 0)` elementwise, any shape.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return Ok(x.relu()?);
    }
    Ok(x.contiguous()?.apply_op1(Relu)?)
}

#[derive(Clone, Copy, Debug)]
struct Relu;

fn forward<T: Real>(x: &[T]) -> Vec<T> {
    let mut y = vec![T::ZERO; x.len()];
    y.par_chunks_mut(GRAIN)
        .zip(x.par_chunks(GRAIN))
        .for_each(|(y, x)| {
            for (o, &v) in y.iter_mut().zip(x) {
                // `v <= 0` is false for NaN, which therefore passes through
                *o = if v <= T::ZERO { T::ZERO } else { v };
            }
        });
    y
}

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "nnlab-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = float_dispatch!("relu", s, |T| T::storage(forward::<T>(operand(
            s, l, "relu", "input"
        )?)));
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(relu_grad(y, dy)?))
    }
}

/// `max(v, 0)` in place (NaN stays), for ops that end with a ReLU.
pub(crate) fn relu_in_place<T: Real>(v: &mut [T]) {
    for x in v {
        // a select, not a conditional store: the loop vectorises
        *x = if *x <= T::ZERO { T::ZERO } else { *x };
    }
}

/// The ReLU gradient from the ReLU's output: `dy · [¬(y ≤ 0)]`, one pass.
pub(crate) fn relu_grad(y: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
    y.contiguous()?
        .apply_op2_no_bwd(&dy.contiguous()?, &ReluGrad)
}

/// `(y, dy) → dy · [¬(y ≤ 0)]`.
#[derive(Clone, Copy, Debug)]
struct ReluGrad;

fn backward<T: Real>(y: &[T], dy: &[T]) -> Vec<T> {
    let mut dx = vec![T::ZERO; y.len()];
    dx.par_chunks_mut(GRAIN)
        .zip(y.par_chunks(GRAIN).zip(dy.par_chunks(GRAIN)))
        .for_each(|(dx, (y, dy))| relu_grad_into(y, dy, dx));
    dx
}

/// `dx = dy · [¬(y ≤ 0)]` for slices of one length, as torch's
/// `threshold_backward`: `y <= 0 ? 0 : dy` (NaN lets `dy` through).
pub(crate) fn relu_grad_into<T: Real>(y: &[T], dy: &[T], dx: &mut [T]) {
    assert!(
        y.len() == dx.len() && dy.len() == dx.len(),
        "relu backward: lengths"
    );
    for ((o, &v), &g) in dx.iter_mut().zip(y).zip(dy) {
        *o = if v <= T::ZERO { T::ZERO } else { g };
    }
}

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "nnlab-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = float_dispatch!("relu backward", s1, |T| T::storage(backward::<T>(
            operand(s1, l1, "relu", "output")?,
            operand(s2, l2, "relu", "output gradient")?,
        )));
        Ok((out, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{max_diff, rand};
    use candle_core::{DType, Device, Var};

    #[test]
    fn forward_and_gradient_match_candle_away_from_zero() -> crate::TestResult {
        for (i, shape) in [vec![7], vec![3, 5], vec![2, 3, 40, 41], vec![1, 70_000]]
            .into_iter()
            .enumerate()
        {
            let x = Var::from_tensor(&rand(&shape, i as u64))?;
            let w = rand(&shape, 50 + i as u64);
            let ours = relu(x.as_tensor())?;
            let theirs = x.as_tensor().relu()?;
            assert_eq!(max_diff(&ours, &theirs), 0.0);
            let g1 = (ours * &w)?.sum_all()?.backward()?;
            let g2 = (theirs * &w)?.sum_all()?.backward()?;
            assert_eq!(
                max_diff(
                    g1.get(&x).ok_or("None from g1.get(&x)")?,
                    g2.get(&x).ok_or("None from g2.get(&x)")?
                ),
                0.0
            );
        }
        Ok(())
    }

    // torch: x = torch.tensor([-1., 0., 2., float('nan')], requires_grad=True)
    //        y = torch.relu(x); y.backward(torch.ones(4))
    //        y → [0, 0, 2, nan], x.grad → [0, 0, 1, 1]
    #[test]
    fn zero_and_nan_as_torch() -> crate::TestResult {
        let x = Var::new(&[-1f32, 0., 2., f32::NAN], &Device::Cpu)?;
        let y = relu(x.as_tensor())?;
        let v = y.to_vec1::<f32>()?;
        assert_eq!(&v[..3], &[0., 0., 2.]);
        assert!(v[3].is_nan());
        let g = y.sum_all()?.backward()?;
        let gx = g.get(&x).ok_or("None from g.get(&x)")?.to_vec1::<f32>()?;
        assert_eq!(gx, [0., 0., 1., 1.]);
        assert_eq!(
            relu(&Tensor::zeros((2, 0), DType::F32, &Device::Cpu)?)?.dims(),
            &[2, 0]
        );
        Ok(())
    }
}
