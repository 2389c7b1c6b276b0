//! Pooling over `[N, C, H, W]` whose backward works for any kernel and
//! stride (Candle's works only for kernel == stride), and torch's adaptive
//! average pooling. Every output cell `(i, j)` reads a window of rows
//! `r0(i)..r1(i)` and columns `c0(j)..c1(j)`:
//!
//! - max / avg pooling: `r0 = i·s`, `r1 = i·s + k`, output `(H − k)/s + 1`;
//! - adaptive: `r0 = ⌊i·H/OH⌋`, `r1 = ⌈(i+1)·H/OH⌉`.
//!
//! `max` sends the gradient to the first largest element of each window (as
//! torch does); `avg` spreads it evenly over the window. (Candle 0.11's own
//! max-pool backward scales the gradient by 1/k², a bug this op avoids.) On CUDA, Candle's
//! own pooling is used.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! let x = Tensor::arange(0f32, 16., &Device::Cpu).unwrap().reshape((1, 1, 4, 4)).unwrap();
//! let y = nnlab::ops::max_pool2d(&x, 3, 1).unwrap();
//! assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [10., 11., 14., 15.]);
//! ```

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::storage::{float_dispatch, operand};
use crate::float::Real;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Max,
    Avg,
}

/// Window geometry of one pooling op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Windows {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    /// `Some((k, s))` for fixed windows, `None` for adaptive ones.
    fixed: Option<(usize, usize)>,
}

impl Windows {
    fn rows(&self, i: usize) -> (usize, usize) {
        match self.fixed {
            Some((k, s)) => (i * s, i * s + k),
            None => (i * self.h / self.oh, ((i + 1) * self.h).div_ceil(self.oh)),
        }
    }

    fn cols(&self, j: usize) -> (usize, usize) {
        match self.fixed {
            Some((k, s)) => (j * s, j * s + k),
            None => (j * self.w / self.ow, ((j + 1) * self.w).div_ceil(self.ow)),
        }
    }
}

/// `y[n,c,i,j] = max_{p,q<k} x[n,c,i·s+p,j·s+q]`, output `(H−k)/s+1`.
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let win = fixed("max_pool2d", x, kernel, stride)?;
    if !x.device().is_cpu() {
        return pool_by_gather(x, &win, Kind::Max);
    }
    Ok(x.contiguous()?.apply_op1(Pool {
        win,
        kind: Kind::Max,
    })?)
}

/// `y[n,c,i,j] = mean_{p,q<k} x[n,c,i·s+p,j·s+q]`, output `(H−k)/s+1`.
pub fn avg_pool2d(x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let win = fixed("avg_pool2d", x, kernel, stride)?;
    if !x.device().is_cpu() {
        return pool_by_gather(x, &win, Kind::Avg);
    }
    Ok(x.contiguous()?.apply_op1(Pool {
        win,
        kind: Kind::Avg,
    })?)
}

/// torch's `adaptive_avg_pool2d`: output cell `(i, j)` averages rows
/// `⌊i·H/OH⌋ .. ⌈(i+1)·H/OH⌉` and the same for columns.
pub fn adaptive_avg_pool2d(x: &Tensor, out: (usize, usize)) -> Result<Tensor> {
    let (n, c, h, w) = dims("adaptive_avg_pool2d", x)?;
    let (oh, ow) = out;
    if oh == 0 || ow == 0 {
        return Err(Error::shape(
            "adaptive_avg_pool2d",
            format!("output size {oh}×{ow}: both must be positive"),
        ));
    }
    if !x.device().is_cpu() {
        return adaptive_by_slices(x, out);
    }
    let win = Windows {
        n,
        c,
        h,
        w,
        oh,
        ow,
        fixed: None,
    };
    Ok(x.contiguous()?.apply_op1(Pool {
        win,
        kind: Kind::Avg,
    })?)
}

/// The same windows with narrow + mean (any device, slower).
fn adaptive_by_slices(x: &Tensor, (oh, ow): (usize, usize)) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let mut rows = Vec::with_capacity(oh);
    for i in 0..oh {
        let (h0, h1) = (i * h / oh, ((i + 1) * h).div_ceil(oh));
        let mut cols = Vec::with_capacity(ow);
        for j in 0..ow {
            let (w0, w1) = (j * w / ow, ((j + 1) * w).div_ceil(ow));
            cols.push(
                x.narrow(2, h0, h1 - h0)?
                    .narrow(3, w0, w1 - w0)?
                    .mean_keepdim(2)?
                    .mean_keepdim(3)?,
            );
        }
        rows.push(Tensor::cat(&cols, 3)?);
    }
    Ok(Tensor::cat(&rows, 2)?)
}

/// Fixed-window pooling from Candle ops that every device has (used off the
/// CPU, e.g. on CUDA): the k² window offsets (p, q) are gathered with
/// `index_select` (rows i·s+p, columns j·s+q), stacked, and reduced with max
/// or mean. Autograd then gives the right gradient for any kernel and stride
/// (Candle's own max-pool backward scales it by 1/k², and its avg-pool
/// backward needs kernel = stride). On ties, max sends the gradient to every
/// maximum (torch: to the first one).
fn pool_by_gather(x: &Tensor, win: &Windows, kind: Kind) -> Result<Tensor> {
    let (k, s) = win
        .fixed
        .ok_or_else(|| Error::shape("pooling", "expected a fixed window"))?;
    let dev = x.device();
    let index = |count: usize, offset: usize| -> Result<Tensor> {
        let v: Vec<u32> = (0..count).map(|i| (i * s + offset) as u32).collect();
        Ok(Tensor::new(v.as_slice(), dev)?)
    };
    let mut parts = Vec::with_capacity(k * k);
    for p in 0..k {
        let rows = x.index_select(&index(win.oh, p)?, 2)?;
        for q in 0..k {
            parts.push(rows.index_select(&index(win.ow, q)?, 3)?);
        }
    }
    let stacked = Tensor::stack(&parts, 4)?;
    Ok(match kind {
        Kind::Max => stacked.max(4)?,
        Kind::Avg => stacked.mean(4)?,
    })
}

fn dims(op: &str, x: &Tensor) -> Result<(usize, usize, usize, usize)> {
    x.dims4().map_err(|_| {
        Error::shape(
            op,
            format!("input of shape {:?}: expected [N, C, H, W]", x.dims()),
        )
    })
}

fn fixed(op: &str, x: &Tensor, k: usize, s: usize) -> Result<Windows> {
    let (n, c, h, w) = dims(op, x)?;
    let (oh, ow) = fixed_output(op, (h, w), k, s)?;
    Ok(Windows {
        n,
        c,
        h,
        w,
        oh,
        ow,
        fixed: Some((k, s)),
    })
}

/// The output size `((H − k)/s + 1, (W − k)/s + 1)` of a `k × k` window
/// moved by `s`, or an error when it is empty or does not fit.
pub(super) fn fixed_output(
    op: &str,
    (h, w): (usize, usize),
    k: usize,
    s: usize,
) -> Result<(usize, usize)> {
    if k == 0 || s == 0 {
        return Err(Error::shape(
            op,
            format!("kernel {k}, stride {s}: both must be positive"),
        ));
    }
    if k > h || k > w {
        return Err(Error::shape(
            op,
            format!("a {k}×{k} window does not fit a {h}×{w} input"),
        ));
    }
    Ok(((h - k) / s + 1, (w - k) / s + 1))
}

/// Position (in the plane) of the first largest value of a window; NaN wins.
fn argmax<T: Real>(
    plane: &[T],
    w: usize,
    (r0, r1): (usize, usize),
    (c0, c1): (usize, usize),
) -> usize {
    let mut best = r0 * w + c0;
    for r in r0..r1 {
        for c in c0..c1 {
            let v = plane[r * w + c];
            if v.is_nan() {
                return r * w + c;
            }
            if v > plane[best] {
                best = r * w + c;
            }
        }
    }
    best
}

/// Index (0..4) of the first largest of four values; a NaN wins (as [`argmax`]).
#[inline]
fn first_max4<T: Real>(v: &[T; 4]) -> usize {
    let mut best = 0;
    for (k, &x) in v.iter().enumerate() {
        if x.is_nan() {
            return k;
        }
        if x > v[best] {
            best = k;
        }
    }
    best
}

/// Forward pooling: `x → y`.
#[derive(Clone, Copy, Debug)]
struct Pool {
    win: Windows,
    kind: Kind,
}

impl Pool {
    fn run<T: Real>(&self, x: &[T]) -> Vec<T> {
        let win = self.win;
        let (hw, ohw) = (win.h * win.w, win.oh * win.ow);
        let mut y = vec![T::ZERO; win.n * win.c * ohw];
        if self.kind == Kind::Max && win.fixed == Some((2, 2)) {
            // The common MaxPool2d(2): four loads a cell, no window bookkeeping.
            y.par_chunks_mut(ohw)
                .zip(x.par_chunks(hw))
                .for_each(|(out, plane)| {
                    for i in 0..win.oh {
                        let (r0, r1) = (&plane[2 * i * win.w..], &plane[(2 * i + 1) * win.w..]);
                        for j in 0..win.ow {
                            let k = 2 * j;
                            let v = [r0[k], r0[k + 1], r1[k], r1[k + 1]];
                            out[i * win.ow + j] = v[first_max4(&v)];
                        }
                    }
                });
            return y;
        }
        y.par_chunks_mut(ohw)
            .zip(x.par_chunks(hw))
            .for_each(|(out, plane)| {
                for i in 0..win.oh {
                    let rows = win.rows(i);
                    for j in 0..win.ow {
                        let cols = win.cols(j);
                        out[i * win.ow + j] = match self.kind {
                            Kind::Max => plane[argmax(plane, win.w, rows, cols)],
                            Kind::Avg => {
                                let mut s = T::ZERO;
                                for r in rows.0..rows.1 {
                                    for c in cols.0..cols.1 {
                                        s += plane[r * win.w + c];
                                    }
                                }
                                s * T::from_f64(
                                    1.0 / ((rows.1 - rows.0) * (cols.1 - cols.0)) as f64,
                                )
                            }
                        };
                    }
                }
            });
        y
    }
}

impl CustomOp1 for Pool {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Max => "nnlab-max-pool2d",
            Kind::Avg => "nnlab-avg-pool2d",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let shape = Shape::from((self.win.n, self.win.c, self.win.oh, self.win.ow));
        let out = float_dispatch!("pooling", s, |T| T::storage(
            self.run::<T>(operand(s, l, "pooling", "input")?)
        ));
        Ok((out, shape))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dy = dy.contiguous()?;
        Ok(Some(x.apply_op2_no_bwd(
            &dy,
            &PoolGrad {
                win: self.win,
                kind: self.kind,
            },
        )?))
    }
}

/// Backward pooling: `(x, dy) → dx`.
#[derive(Clone, Copy, Debug)]
struct PoolGrad {
    win: Windows,
    kind: Kind,
}

impl PoolGrad {
    fn run<T: Real>(&self, x: &[T], dy: &[T]) -> Vec<T> {
        let win = self.win;
        let (hw, ohw) = (win.h * win.w, win.oh * win.ow);
        let mut dx = vec![T::ZERO; win.n * win.c * hw];
        if self.kind == Kind::Max && win.fixed == Some((2, 2)) {
            dx.par_chunks_mut(hw)
                .zip(x.par_chunks(hw))
                .zip(dy.par_chunks(ohw))
                .for_each(|((out, plane), g)| {
                    // written before the scatter adds: a read first would map the
                    // shared zero page and every write would then copy it (with a
                    // TLB shootdown on every other core)
                    out.fill(T::ZERO);
                    for i in 0..win.oh {
                        let (a, b) = (2 * i * win.w, (2 * i + 1) * win.w);
                        for j in 0..win.ow {
                            let k = 2 * j;
                            let v = [
                                plane[a + k],
                                plane[a + k + 1],
                                plane[b + k],
                                plane[b + k + 1],
                            ];
                            let at = [a + k, a + k + 1, b + k, b + k + 1][first_max4(&v)];
                            out[at] += g[i * win.ow + j];
                        }
                    }
                });
            return dx;
        }
        dx.par_chunks_mut(hw)
            .zip(x.par_chunks(hw))
            .zip(dy.par_chunks(ohw))
            .for_each(|((out, plane), g)| {
                out.fill(T::ZERO); // see above
                for i in 0..win.oh {
                    let rows = win.rows(i);
                    for j in 0..win.ow {
                        let cols = win.cols(j);
                        let gij = g[i * win.ow + j];
                        match self.kind {
                            Kind::Max => out[argmax(plane, win.w, rows, cols)] += gij,
                            Kind::Avg => {
                                let share = gij
                                    * T::from_f64(
                                        1.0 / ((rows.1 - rows.0) * (cols.1 - cols.0)) as f64,
                                    );
                                for r in rows.0..rows.1 {
                                    for c in cols.0..cols.1 {
                                        out[r * win.w + c] += share;
                                    }
                                }
                            }
                        }
                    }
                }
            });
        dx
    }
}

impl CustomOp2 for PoolGrad {
    fn name(&self) -> &'static str {
        "nnlab-pool2d-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let shape = Shape::from((self.win.n, self.win.c, self.win.h, self.win.w));
        let out = float_dispatch!("pooling backward", s1, |T| T::storage(self.run::<T>(
            operand(s1, l1, "pooling", "input")?,
            operand(s2, l2, "pooling", "input")?,
        )));
        Ok((out, shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    use crate::ops::test_util::{max_diff, rand};

    #[test]
    fn equal_candles_pooling_where_kernel_equals_stride() -> crate::TestResult {
        let x = Var::from_tensor(&rand(&[2, 3, 8, 6], 1))?;
        let r = rand(&[2, 3, 4, 3], 2);
        for kind in [Kind::Max, Kind::Avg] {
            let (ours, theirs) = match kind {
                Kind::Max => (max_pool2d(&x, 2, 2)?, x.max_pool2d(2)?),
                Kind::Avg => (avg_pool2d(&x, 2, 2)?, x.avg_pool2d(2)?),
            };
            assert!(max_diff(&ours, &theirs) < 1e-12, "{kind:?}");
            if kind == Kind::Max {
                // Candle 0.11's max-pool backward multiplies the gradient by the
                // fraction of maxima in the window (1/k² for a unique max) instead
                // of dividing by their count: ours is checked against finite
                // differences below.
                continue;
            }
            let g1 = (ours * &r)?.sum_all()?.backward()?;
            let g2 = (theirs * &r)?.sum_all()?.backward()?;
            assert!(
                max_diff(
                    g1.get(&x).ok_or("None from g1.get(&x)")?,
                    g2.get(&x).ok_or("None from g2.get(&x)")?
                ) < 1e-12,
                "{kind:?}"
            );
        }
        Ok(())
    }

    /// The path used off the CPU (gathered windows + autograd) gives the
    /// custom op's values and gradients, for overlapping and odd windows too.
    #[test]
    fn gather_path_for_other_devices_equals_the_cpu_op() -> crate::TestResult {
        let x = Var::from_tensor(&rand(&[2, 3, 7, 9], 5))?;
        for (k, s) in [(2, 2), (3, 2), (3, 1), (2, 3)] {
            let win = fixed("test", &x, k, s)?;
            for kind in [Kind::Max, Kind::Avg] {
                let ours = pool_by_gather(&x, &win, kind)?;
                let cpu = match kind {
                    Kind::Max => max_pool2d(&x, k, s)?,
                    Kind::Avg => avg_pool2d(&x, k, s)?,
                };
                assert_eq!(ours.dims(), cpu.dims());
                assert!(max_diff(&ours, &cpu) < 1e-12, "{kind:?} {k}/{s}");
                let r = rand(cpu.dims(), 6);
                let g1 = (ours * &r)?.sum_all()?.backward()?;
                let g2 = (cpu * &r)?.sum_all()?.backward()?;
                let d = max_diff(
                    g1.get(&x).ok_or("None from g1.get(&x)")?,
                    g2.get(&x).ok_or("None from g2.get(&x)")?,
                );
                assert!(d < 1e-12, "{kind:?} {k}/{s}: gradient differs by {d}");
            }
        }
        Ok(())
    }

    #[test]
    fn overlapping_and_adaptive_windows_match_finite_differences() -> crate::TestResult {
        let x = rand(&[2, 2, 7, 9], 3);
        type Op = Box<dyn Fn(&Tensor) -> Tensor>;
        let ops: Vec<(&str, Op)> = vec![
            (
                "max 3/2",
                Box::new(|t: &Tensor| max_pool2d(t, 3, 2).unwrap()),
            ),
            (
                "max 2/2",
                Box::new(|t: &Tensor| max_pool2d(t, 2, 2).unwrap()),
            ),
            (
                "avg 3/2",
                Box::new(|t: &Tensor| avg_pool2d(t, 3, 2).unwrap()),
            ),
            (
                "avg 3/1",
                Box::new(|t: &Tensor| avg_pool2d(t, 3, 1).unwrap()),
            ),
            (
                "adaptive 3×4",
                Box::new(|t: &Tensor| adaptive_avg_pool2d(t, (3, 4)).unwrap()),
            ),
            (
                "adaptive 1×1",
                Box::new(|t: &Tensor| adaptive_avg_pool2d(t, (1, 1)).unwrap()),
            ),
        ];
        for (name, f) in ops {
            let v = Var::from_tensor(&x)?;
            let y = f(&v);
            let r = rand(y.dims(), 4);
            let g = (&y * &r)?.sum_all()?.backward()?;
            let g = g
                .get(&v)
                .ok_or("no gradient for the variable")?
                .flatten_all()?
                .to_vec1::<f64>()?;
            let base = x.flatten_all()?.to_vec1::<f64>()?;
            let eps = 1e-6;
            for idx in 0..base.len() {
                let at = |d: f64| {
                    let mut m = base.clone();
                    m[idx] += d;
                    let t = Tensor::from_vec(m, x.dims(), &Device::Cpu).unwrap();
                    (f(&t) * &r)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f64>()
                        .unwrap()
                };
                let fd = (at(eps) - at(-eps)) / (2.0 * eps);
                assert!(
                    (fd - g[idx]).abs() < 1e-7,
                    "{name} index {idx}: {fd} vs {}",
                    g[idx]
                );
            }
        }
        Ok(())
    }

    #[test]
    fn ties_send_the_gradient_to_the_first_maximum_as_torch_does() -> crate::TestResult {
        // torch: x = torch.ones(1,1,4,4, requires_grad=True); F.max_pool2d(x, 2).sum().backward()
        // → x.grad has 1 at (0,0), (0,2), (2,0), (2,2), 0 elsewhere; the same for kernel 3, stride 1 at (0,0),(0,1),(1,0),(1,1).
        let x = Var::from_tensor(&Tensor::ones(
            (1, 1, 4, 4),
            candle_core::DType::F64,
            &Device::Cpu,
        )?)?;
        for (k, s, want) in [
            (
                2,
                2,
                [
                    1., 0., 1., 0., 0., 0., 0., 0., 1., 0., 1., 0., 0., 0., 0., 0.,
                ],
            ),
            (
                3,
                1,
                [
                    1., 1., 0., 0., 1., 1., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.,
                ],
            ),
        ] {
            let g = max_pool2d(&x, k, s)?.sum_all()?.backward()?;
            assert_eq!(
                g.get(&x)
                    .ok_or("no gradient for the variable")?
                    .flatten_all()?
                    .to_vec1::<f64>()?,
                want,
                "k {k} s {s}"
            );
        }
        Ok(())
    }

    #[test]
    fn adaptive_equals_the_slice_definition() -> crate::TestResult {
        let x = rand(&[2, 3, 10, 7], 5);
        for out in [(1, 1), (3, 3), (4, 2), (10, 7), (6, 5)] {
            let a = adaptive_avg_pool2d(&x, out)?;
            let b = adaptive_by_slices(&x, out)?;
            assert!(max_diff(&a, &b) < 1e-12, "{out:?}");
        }
        Ok(())
    }

    #[test]
    fn windows_that_do_not_fit_are_errors() {
        let x = rand(&[1, 1, 3, 3], 1);
        let e = max_pool2d(&x, 4, 1).unwrap_err().to_string();
        assert!(e.contains("does not fit") && e.contains("3×3"), "{e}");
        let e = avg_pool2d(&x, 2, 0).unwrap_err().to_string();
        assert!(e.contains("stride 0"), "{e}");
        let e = adaptive_avg_pool2d(&rand(&[3, 3], 1), (1, 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[N, C, H, W]"), "{e}");
    }
}
