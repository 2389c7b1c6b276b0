//! Batch normalisation in training mode over `x: [N, C, ...]`, one custom op
//! with its own backward. With `M = N·(H·W…)` values per channel `c`:
//!
//! ```text
//! μ = Σx/M   σ² = Σ(x−μ)²/M   r = 1/√(σ² + ε)   x̂ = (x−μ)·r   y = γ·x̂ + β
//! dβ = Σdy   dγ = Σdy·x̂   dx = γ·r/M · (M·dy − dβ − x̂·dγ)
//! ```
//!
//! The sums are kept in f64. The batch statistics `(μ, σ²)` come back with
//! `y` for the running averages. Written with Candle's ops the same layer is
//! eight passes forward (two strided reductions among them) and about twenty
//! backward, each a fresh tensor. On CUDA the caller uses Candle's ops.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! let x = Tensor::new(&[[1f32], [3.]], &Device::Cpu).unwrap(); // N = 2, C = 1
//! let (g, b) = (Tensor::new(&[2f32], &Device::Cpu).unwrap(), Tensor::new(&[0.5f32], &Device::Cpu).unwrap());
//! let (y, mean, var) = nnlab::ops::batch_norm_train(&x, &g, &b, 0.0).unwrap();
//! assert_eq!((mean, var), (vec![2.0], vec![1.0]));
//! assert_eq!(y.to_vec2::<f32>().unwrap(), [[-1.5], [2.5]]);
//! ```

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::storage::{float_dispatch, operand};
use crate::float::Real;
use crate::{Error, Result};

/// `(y, batch mean, biased batch variance)` for `x: [N, C, ...]`, weight
/// `γ: [C]`, bias `β: [C]`. CPU only (f32, f64).
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, Vec<f64>, Vec<f64>)> {
    let dims = x.dims();
    if dims.len() < 2 {
        return Err(Error::shape(
            "batch_norm",
            format!("input {dims:?}, expected [N, C, ...]"),
        ));
    }
    let (n, c) = (dims[0], dims[1]);
    let l = dims[2..].iter().product::<usize>();
    for (what, t) in [("weight", gamma), ("bias", beta)] {
        if t.dims() != [c] {
            return Err(Error::shape(
                "batch_norm",
                format!(
                    "{what} of shape {:?}, expected [{c}] for input {dims:?}",
                    t.dims()
                ),
            ));
        }
    }
    if n * l < 2 {
        return Err(Error::shape(
            "batch_norm",
            format!("expected more than 1 value per channel when training, got input {dims:?}"),
        ));
    }
    let op = BatchNorm {
        n,
        c,
        l,
        eps,
        stats: Arc::new(Mutex::new(None)),
    };
    let y = x
        .contiguous()?
        .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op.clone())?;
    let stats = op
        .stats
        .lock()
        .map_err(|_| Error::shape("batch_norm", "statistics lock poisoned".to_string()))?
        .clone();
    let Some(s) = stats else {
        return Err(Error::shape(
            "batch_norm",
            "the op computed no statistics (not a CPU tensor?)".to_string(),
        ));
    };
    Ok((y, s.mean, s.var))
}

#[derive(Clone, Debug)]
struct Stats {
    mean: Vec<f64>,
    /// biased variance `Σ(x−μ)²/M`
    var: Vec<f64>,
}

/// The op; `stats` is filled by the forward pass and read by the backward.
#[derive(Clone, Debug)]
struct BatchNorm {
    n: usize,
    c: usize,
    l: usize,
    eps: f64,
    stats: Arc<Mutex<Option<Stats>>>,
}

/// The op's name in operand errors.
const OP: &str = "batch_norm";

impl BatchNorm {
    /// The `N` runs of channel `ch`, each `l` long.
    fn runs<'a, T>(&self, t: &'a [T], ch: usize) -> impl Iterator<Item = &'a [T]> + 'a {
        let (c, l) = (self.c, self.l);
        (0..self.n).map(move |s| &t[(s * c + ch) * l..(s * c + ch + 1) * l])
    }

    fn forward<T: Real>(&self, x: &[T], gamma: &[T], beta: &[T]) -> Vec<T> {
        let m = (self.n * self.l) as f64;
        let stats: Vec<(f64, f64)> = (0..self.c)
            .into_par_iter()
            .map(|ch| {
                let mean = self
                    .runs(x, ch)
                    .map(|r| r.iter().map(|v| v.to_f64()).sum::<f64>())
                    .sum::<f64>()
                    / m;
                let var = self
                    .runs(x, ch)
                    .map(|r| r.iter().map(|v| (v.to_f64() - mean).powi(2)).sum::<f64>())
                    .sum::<f64>()
                    / m;
                (mean, var)
            })
            .collect();
        let mut y = vec![T::ZERO; x.len()];
        let (c, l) = (self.c, self.l);
        y.par_chunks_mut(c * l)
            .zip(x.par_chunks(c * l))
            .for_each(|(ys, xs)| {
                for ch in 0..c {
                    let (mean, var) = stats[ch];
                    let r = 1.0 / (var + self.eps).sqrt();
                    // y = a·x + b with a = γ·r, b = β − γ·r·μ
                    let a = gamma[ch].to_f64() * r;
                    let b = beta[ch].to_f64() - a * mean;
                    let (a, b) = (T::from_f64(a), T::from_f64(b));
                    for (o, &v) in ys[ch * l..(ch + 1) * l]
                        .iter_mut()
                        .zip(&xs[ch * l..(ch + 1) * l])
                    {
                        *o = a * v + b;
                    }
                }
            });
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(Stats {
            mean: stats.iter().map(|s| s.0).collect(),
            var: stats.iter().map(|s| s.1).collect(),
        });
        y
    }

    /// `(dx, dγ, dβ)`.
    fn backward<T: Real>(
        &self,
        x: &[T],
        gamma: &[T],
        dy: &[T],
        stats: &Stats,
    ) -> (Vec<T>, Vec<T>, Vec<T>) {
        let m = (self.n * self.l) as f64;
        let r: Vec<f64> = stats
            .var
            .iter()
            .map(|v| 1.0 / (v + self.eps).sqrt())
            .collect();
        // per channel: (Σdy, Σdy·x̂)
        let sums: Vec<(f64, f64)> = (0..self.c)
            .into_par_iter()
            .map(|ch| {
                let (mean, r) = (stats.mean[ch], r[ch]);
                let mut s = (0.0, 0.0);
                for (xr, gr) in self.runs(x, ch).zip(self.runs(dy, ch)) {
                    for (&v, &g) in xr.iter().zip(gr) {
                        let g = g.to_f64();
                        s.0 += g;
                        s.1 += g * (v.to_f64() - mean) * r;
                    }
                }
                s
            })
            .collect();
        let (c, l) = (self.c, self.l);
        let mut dx = vec![T::ZERO; x.len()];
        dx.par_chunks_mut(c * l)
            .zip(x.par_chunks(c * l).zip(dy.par_chunks(c * l)))
            .for_each(|(dxs, (xs, dys))| {
                for ch in 0..c {
                    let (db, dg) = sums[ch];
                    // dx = k·dy − k/M·dβ − k/M·dγ·r·(x−μ), k = γ·r
                    let k = gamma[ch].to_f64() * r[ch];
                    let a = T::from_f64(k);
                    let slope = T::from_f64(-k / m * dg * r[ch]);
                    let b = T::from_f64(-k / m * db + k / m * dg * r[ch] * stats.mean[ch]);
                    let range = ch * l..(ch + 1) * l;
                    for ((o, &v), &g) in dxs[range.clone()]
                        .iter_mut()
                        .zip(&xs[range.clone()])
                        .zip(&dys[range])
                    {
                        *o = a * g + slope * v + b;
                    }
                }
            });
        let dgamma = sums.iter().map(|s| T::from_f64(s.1)).collect();
        let dbeta = sums.iter().map(|s| T::from_f64(s.0)).collect();
        (dx, dgamma, dbeta)
    }
}

impl CustomOp3 for BatchNorm {
    fn name(&self) -> &'static str {
        "nnlab-batch-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = float_dispatch!("batch_norm", s1, |T| T::storage(self.forward::<T>(
            operand(s1, l1, OP, "input")?,
            operand(s2, l2, OP, "weight")?,
            operand(s3, l3, OP, "bias")?,
        )));
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let stats = stats.ok_or_else(|| {
            candle_core::Error::Msg(
                "batch_norm backward: no statistics from the forward pass".into(),
            )
        })?;
        let dy = dy.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let (gs, gl) = gamma.storage_and_layout();
        let (ds, dl) = dy.storage_and_layout();
        let (
            candle_core::Storage::Cpu(xs),
            candle_core::Storage::Cpu(gs),
            candle_core::Storage::Cpu(ds),
        ) = (&*xs, &*gs, &*ds)
        else {
            candle_core::bail!("batch_norm backward: CPU tensors expected");
        };
        let dev = x.device();
        let (c, shape) = (self.c, x.shape().clone());
        let (dx, dg, db) = float_dispatch!("batch_norm backward", xs, |T| {
            let (dx, dg, db) = self.backward::<T>(
                operand(xs, xl, OP, "input")?,
                operand(gs, gl, OP, "weight")?,
                operand(ds, dl, OP, "output gradient")?,
                &stats,
            );
            (
                Tensor::from_vec(dx, shape, dev)?,
                Tensor::from_vec(dg, c, dev)?,
                Tensor::from_vec(db, c, dev)?,
            )
        });
        Ok((
            x.track_op().then_some(dx),
            gamma.track_op().then_some(dg),
            _beta.track_op().then_some(db),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{max_diff, rand};
    use candle_core::{DType, Var};

    /// The same layer written with Candle's ops (the reference).
    fn reference(x: &Tensor, g: &Tensor, b: &Tensor, eps: f64) -> Tensor {
        let dims: Vec<usize> = (0..x.rank()).filter(|&d| d != 1).collect();
        let mut bshape = vec![1; x.rank()];
        bshape[1] = x.dims()[1];
        let mean = x.mean_keepdim(dims.as_slice()).unwrap();
        let var = x
            .broadcast_sub(&mean)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_keepdim(dims.as_slice())
            .unwrap();
        let xhat = x
            .broadcast_sub(&mean)
            .unwrap()
            .broadcast_div(&(var + eps).unwrap().sqrt().unwrap())
            .unwrap();
        xhat.broadcast_mul(&g.reshape(bshape.as_slice()).unwrap())
            .unwrap()
            .broadcast_add(&b.reshape(bshape.as_slice()).unwrap())
            .unwrap()
    }

    #[test]
    fn forward_gradients_and_statistics_equal_candles_ops() -> crate::TestResult {
        for (i, shape) in [
            vec![4, 3],
            vec![64, 5],
            vec![2, 3, 4, 5],
            vec![3, 2, 7, 1],
            vec![1, 4, 3, 3],
        ]
        .into_iter()
        .enumerate()
        {
            let c = shape[1];
            let x = Var::from_tensor(&(rand(&shape, i as u64) * 3.0)?.affine(1.0, 0.5)?)?;
            let g = Var::from_tensor(&rand(&[c], 10 + i as u64))?;
            let b = Var::from_tensor(&rand(&[c], 20 + i as u64))?;
            let (ours, mean, var) = batch_norm_train(&x, &g, &b, 1e-5)?;
            let theirs = reference(&x, &g, &b, 1e-5);
            assert!(max_diff(&ours, &theirs) < 1e-12, "case {i}: forward");
            let dims: Vec<usize> = (0..shape.len()).filter(|&d| d != 1).collect();
            let want_mean = x
                .mean_keepdim(dims.as_slice())?
                .flatten_all()?
                .to_vec1::<f64>()?;
            for (a, w) in mean.iter().zip(&want_mean) {
                assert!((a - w).abs() < 1e-12);
            }
            assert_eq!(var.len(), c);
            let r = rand(&shape, 30 + i as u64);
            let g1 = (&ours * &r)?.sum_all()?.backward()?;
            let g2 = (&theirs * &r)?.sum_all()?.backward()?;
            for (what, v) in [("x", &x), ("gamma", &g), ("beta", &b)] {
                let d = max_diff(
                    g1.get(v).ok_or("None from g1.get(v)")?,
                    g2.get(v).ok_or("None from g2.get(v)")?,
                );
                assert!(d < 1e-10, "case {i}: d{what} differs by {d}");
            }
        }
        Ok(())
    }

    #[test]
    fn f32_agrees_with_f64_and_bad_inputs_are_errors() -> crate::TestResult {
        let x = (rand(&[8, 3, 5, 5], 1) * 10.0)?;
        let (g, b) = (rand(&[3], 2), rand(&[3], 3));
        let (y64, ..) = batch_norm_train(&x, &g, &b, 1e-5)?;
        let f = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let (y32, ..) = batch_norm_train(&f(&x), &f(&g), &f(&b), 1e-5)?;
        assert!(max_diff(&y32.to_dtype(DType::F64)?, &y64) < 1e-5);
        let e = batch_norm_train(&rand(&[1, 3], 4), &g, &b, 1e-5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 1 value"), "{e}");
        let e = batch_norm_train(&x, &rand(&[4], 5), &b, 1e-5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("weight") && e.contains("[3]"), "{e}");
        Ok(())
    }
}
