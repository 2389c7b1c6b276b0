//! The forward op of [`conv2d`](super::conv2d) /
//! [`conv2d_relu`](super::conv2d_relu) on the CPU, per sample `n`:
//!
//! ```text
//! y[n] = relu?( b ⊗ 1 + W · im2col(x[n]) )      W: O×K, im2col(x[n]): K×L
//! ```
//!
//! with `K = C·KH·KW`, `L = OH·OW`: im2col + gemm a band of output rows at
//! a time ([`super::tiling`]), or in f32 the direct kernels where
//! [`super::kernel_choice`] picks them. The bias is the product's initial
//! value (one pass, its gradient one channel sum of `dy`); the ReLU is
//! applied while the sample's output is in cache, and the backward masks
//! `dy` once by `y > 0`.

use candle_core::{CpuStorage, DType, Layout, Shape, Tensor};

use super::direct_backward::{cpu_f32, DirectBackward, InputGrad};
use super::grad::{Conv2dGradInput, Conv2dGradWeight};
use super::im2col::{im2col_rows, Geometry};
use super::kernel_choice::{direct_forward, direct_grad_input};
use super::tiling::{for_each_sample, tile_rows, tiles};
use crate::float::Real;
use crate::ops::bias_op::{impl_bias_op, BiasOp};
use crate::ops::gemm::{gemm, gemm_rows, Mat};
use crate::ops::reduce::{channel_sum, channel_sum_of_rows, row_sum};
use crate::ops::relu::{relu_grad, relu_grad_into, relu_in_place};
use crate::ops::storage::{float_dispatch, operand};

/// The op's name in errors.
const OP: &str = "conv2d";

/// The gradients of the input, the weight and the bias, where wanted.
type Grads = (Option<Tensor>, Option<Tensor>, Option<Tensor>);

/// The input, the weight and the bias (if any) as `&[T]`, read in that order.
fn operands<'a, T: Real>(
    s1: &'a CpuStorage,
    l1: &Layout,
    s2: &'a CpuStorage,
    l2: &Layout,
    b: Option<(&'a CpuStorage, &Layout)>,
) -> candle_core::Result<(&'a [T], &'a [T], Option<&'a [T]>)> {
    let x = operand(s1, l1, OP, "input")?;
    let w = operand(s2, l2, OP, "weight")?;
    let b = match b {
        Some((s3, l3)) => Some(operand(s3, l3, OP, "bias")?),
        None => None,
    };
    Ok((x, w, b))
}

/// The forward op: `(x, w) → y`, or `(x, w, b) → y` with the bias added
/// in the same pass (no separate broadcast add, and its gradient is one
/// channel sum of `dy` instead of Candle's strided reduction).
#[derive(Clone, Copy, Debug)]
pub(super) struct Conv2d {
    pub(super) g: Geometry,
    pub(super) n: usize,
    pub(super) o: usize,
    /// `y = relu(conv)`: see [`conv2d_relu`](super::conv2d_relu)
    pub(super) relu: bool,
}

impl Conv2d {
    fn run_f32(&self, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
        let Some(dc) = direct_forward(&self.g) else {
            return self.run(x, w, b);
        };
        let (xs, ys) = (self.g.c * self.g.h * self.g.w, self.o * self.g.l());
        let packed = dc.pack(w, self.o);
        // every element is written by the kernel: no zero fill first (a
        // memset of the whole output when the allocator reuses memory)
        let mut y = Vec::with_capacity(self.n * ys);
        for_each_sample(
            self.n,
            &mut y.spare_capacity_mut()[..self.n * ys],
            ys,
            dc.scratch_len(),
            |s, yn, scratch: &mut [f32], _| {
                dc.forward(&x[s * xs..(s + 1) * xs], scratch, &packed, b, self.relu, yn);
            },
        );
        // SAFETY: `forward` wrote all `ys` elements of every sample
        unsafe { y.set_len(self.n * ys) };
        y
    }

    fn run<T: Real>(&self, x: &[T], w: &[T], b: Option<&[T]>) -> Vec<T> {
        let g = &self.g;
        let (k, l, o) = (g.k(), g.l(), self.o);
        let (xs, ys) = (g.c * g.h * g.w, o * l);
        let mut y = vec![T::ZERO; self.n * ys];
        let tile = tile_rows(g);
        let scratch = if g.is_pointwise() { 0 } else { k * tile * g.ow };
        for_each_sample(self.n, &mut y, ys, scratch, |s, yn, cols, inner| {
            let xn = &x[s * xs..(s + 1) * xs];
            if let Some(b) = b {
                for (row, &bo) in yn.chunks_mut(l).zip(b) {
                    row.fill(bo);
                }
            }
            if g.is_pointwise() {
                gemm(
                    o,
                    l,
                    k,
                    yn,
                    b.is_some(),
                    Mat::rows(w, k),
                    Mat::rows(xn, l),
                    inner,
                );
                if self.relu {
                    relu_in_place(yn);
                }
                return;
            }
            for rows in tiles(g.oh, tile) {
                let (at, t) = (rows.start * g.ow, rows.len() * g.ow);
                im2col_rows(g, xn, rows, cols);
                gemm_rows(
                    o,
                    t,
                    k,
                    &mut yn[at..],
                    l,
                    b.is_some(),
                    Mat::rows(w, k),
                    Mat::rows(cols, t),
                    inner,
                );
            }
            if self.relu {
                relu_in_place(yn);
            }
        });
        y
    }

    /// `cpu_fwd` of both ops: `b` is the bias operand of the three-input one.
    fn cpu(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let shape = Shape::from((self.n, self.o, self.g.oh, self.g.ow));
        let out = float_dispatch!(
            OP,
            s1,
            f32 => {
                let (x, w, b) = operands(s1, l1, s2, l2, b)?;
                f32::storage(self.run_f32(x, w, b))
            },
            f64 => {
                let (x, w, b) = operands(s1, l1, s2, l2, b)?;
                f64::storage(self.run::<f64>(x, w, b))
            },
        );
        Ok((out, shape))
    }

    /// `(dx, dW, dy)`, `dy` masked by `y > 0` when the op includes the ReLU
    /// (the bias gradient is its channel sum).
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Tensor)> {
        let dy = if self.relu {
            relu_grad(y, dy)?
        } else {
            dy.contiguous()?
        };
        let (g, n, o) = (self.g, self.n, self.o);
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(w, &Conv2dGradInput { g, n, o })?)
        } else {
            None
        };
        let dw = if w.track_op() {
            Some(x.apply_op2_no_bwd(&dy, &Conv2dGradWeight { g, n, o })?)
        } else {
            None
        };
        Ok((dx, dw, dy))
    }

    /// `(dx, dW, db)` on the direct kernels, one sample at a time
    /// ([`super::direct_backward`]): `dy`, masked by `y > 0` with the ReLU,
    /// is made per sample in the cache and read there by the bias sum and
    /// both gradient kernels. The numbers are those of [`Self::backward`]
    /// (the same kernels, sums and order). `None` where either kernel does
    /// not apply (f64, CUDA, strides): the separate ops then.
    fn direct_gradients(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<Option<Grads>> {
        let f32_cpu = [x, w, y, dy]
            .iter()
            .all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
        let Some(dc) = direct_forward(&self.g).filter(|_| f32_cpu) else {
            return Ok(None);
        };
        let (need_dx, need_dw) = (x.track_op(), w.track_op());
        let need_db = b.is_some_and(|b| b.track_op());
        // the input-gradient kernel only when the input gradient is wanted
        let dc_in = if need_dx {
            match direct_grad_input(&self.g, self.o) {
                None => return Ok(None),
                d => d,
            }
        } else {
            None
        };
        let (g, n, o) = (&self.g, self.n, self.o);
        let (x, y, dy) = (x.contiguous()?, y.contiguous()?, dy.contiguous()?);
        let (sx, lx) = x.storage_and_layout();
        let (sw, lw) = w.storage_and_layout();
        let (sy, ly) = y.storage_and_layout();
        let (sd, ld) = dy.storage_and_layout();
        let xv = cpu_f32(&sx, lx, OP, "input")?;
        let wv = cpu_f32(&sw, lw, OP, "weight")?;
        let yv = cpu_f32(&sy, ly, OP, "output")?;
        let dyv = cpu_f32(&sd, ld, OP, "output gradient")?;
        let (l, xs) = (g.l(), g.c * g.h * g.w);
        let zs = o * l;
        let run = DirectBackward {
            dc: &dc,
            x: need_dw.then_some(xv),
            dx: dc_in.as_ref().map(|d| InputGrad::new(d, wv, g.c)),
            n,
            xs,
            zs,
            o,
            k: g.k(),
        };
        let relu = self.relu;
        let mut made = run.run(
            |a, e| Vec::with_capacity(if need_db { (e - a) * o } else { 0 }),
            |s, buf, sums: &mut Vec<f32>| {
                let dys = &dyv[s * zs..(s + 1) * zs];
                let given = if relu {
                    relu_grad_into(&yv[s * zs..(s + 1) * zs], dys, buf);
                    None
                } else {
                    Some(dys)
                };
                if need_db {
                    sums.extend(given.unwrap_or(buf).chunks(l).map(row_sum));
                }
                given
            },
        );
        let (dx, dw) = made.tensors(&x, w)?;
        let db = need_db
            .then(|| {
                let sums = channel_sum_of_rows(&made.states.concat(), n, o);
                Tensor::from_vec(sums, o, x.device())
            })
            .transpose()?;
        Ok(Some((dx, dw, db)))
    }
}

impl BiasOp for Conv2d {
    fn cpu_forward(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.cpu(x, w, b)
    }

    fn gradients(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        if let Some(grads) = self.direct_gradients(x, w, b, y, dy)? {
            return Ok(grads);
        }
        let (dx, dw, dy) = self.backward(x, w, y, dy)?;
        let db = match b {
            Some(b) if b.track_op() => Some(channel_sum(&dy, self.n, self.o, self.g.l())?),
            _ => None,
        };
        Ok((dx, dw, db))
    }
}

impl_bias_op!(Conv2d, "nnlab-conv2d", "nnlab-conv2d-bias");
