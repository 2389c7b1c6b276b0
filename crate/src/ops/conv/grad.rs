//! The two gradient ops of the convolution, without a backward of their
//! own (they are what the forward op's backward, [`super::forward`], and the public
//! [`conv2d_input_grad`](super::conv2d_input_grad) /
//! [`conv2d_weight_grad`](super::conv2d_weight_grad) run), per sample `n`:
//!
//! ```text
//! grad input   dcols = Wᵀ · dy[n]     dx[n] = col2im(dcols)    (K×O · O×L)
//! grad weight  dWᵀ  += im2col(x[n]) · dy[n]ᵀ                   (K×L · L×O)
//! ```
//!
//! In f32 where [`super::kernel_choice`] picks them, the direct kernels
//! instead: the input gradient is the forward of `dy` padded by
//! `K−1−pad` with the flipped kernel, the weight gradient accumulates per
//! thread; per-thread partial weight gradients are added in thread order.

use rayon::prelude::*;

use candle_core::{CpuStorage, CustomOp2, Layout, Shape};

use super::direct::WeightGrad;
use super::im2col::{col2im_add_rows, im2col_rows, Geometry};
use super::kernel_choice::{direct_forward, direct_grad_input};
use super::tiling::{chunks, for_each_sample, tile_rows, tiles};
use crate::float::Real;
use crate::ops::gemm::{gemm, gemm_strided, num_threads, Mat};
use crate::ops::reduce::sum_partials;
use crate::ops::storage::{float_dispatch, operand};

/// The op's name in operand errors.
const OP: &str = "conv2d";

/// `(dy, w) → dx`, no backward of its own.
#[derive(Clone, Copy, Debug)]
pub(super) struct Conv2dGradInput {
    pub(super) g: Geometry,
    pub(super) n: usize,
    pub(super) o: usize,
}

/// `(x, dy) → dW`, no backward of its own.
#[derive(Clone, Copy, Debug)]
pub(super) struct Conv2dGradWeight {
    pub(super) g: Geometry,
    pub(super) n: usize,
    pub(super) o: usize,
}

impl Conv2dGradInput {
    fn run_f32(&self, dy: &[f32], w: &[f32]) -> Vec<f32> {
        let g = &self.g;
        let Some(dc) = direct_grad_input(g, self.o) else {
            return self.run(dy, w);
        };
        let (xs, ys) = (g.c * g.h * g.w, self.o * g.l());
        let packed = dc.pack_flipped(w, g.c);
        let mut dx = Vec::with_capacity(self.n * xs);
        for_each_sample(
            self.n,
            &mut dx.spare_capacity_mut()[..self.n * xs],
            xs,
            dc.scratch_len(),
            |s, dxn, scratch: &mut [f32], _| {
                dc.forward(
                    &dy[s * ys..(s + 1) * ys],
                    scratch,
                    &packed,
                    None,
                    false,
                    dxn,
                );
            },
        );
        // SAFETY: `forward` wrote all `xs` elements of every sample
        unsafe { dx.set_len(self.n * xs) };
        dx
    }

    fn run<T: Real>(&self, dy: &[T], w: &[T]) -> Vec<T> {
        let g = &self.g;
        let (k, l, o) = (g.k(), g.l(), self.o);
        let (xs, ys) = (g.c * g.h * g.w, o * l);
        let mut dx = vec![T::ZERO; self.n * xs];
        let tile = tile_rows(g);
        let scratch = if g.is_pointwise() { 0 } else { k * tile * g.ow };
        for_each_sample(self.n, &mut dx, xs, scratch, |s, dxn, dcols, inner| {
            let dyn_ = &dy[s * ys..(s + 1) * ys];
            if g.is_pointwise() {
                gemm(
                    k,
                    l,
                    o,
                    dxn,
                    false,
                    Mat::transposed(w, k),
                    Mat::rows(dyn_, l),
                    inner,
                );
                return;
            }
            // written before the adds (no zero-page copy-on-write faults)
            dxn.fill(T::ZERO);
            for rows in tiles(g.oh, tile) {
                let (at, t) = (rows.start * g.ow, rows.len() * g.ow);
                let dy_tile = Mat {
                    data: &dyn_[at..],
                    rs: l,
                    cs: 1,
                };
                gemm(k, t, o, dcols, false, Mat::transposed(w, k), dy_tile, inner);
                col2im_add_rows(g, dcols, rows, dxn);
            }
        });
        dx
    }
}

impl CustomOp2 for Conv2dGradInput {
    fn name(&self) -> &'static str {
        "nnlab-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let shape = Shape::from((self.n, self.g.c, self.g.h, self.g.w));
        let out = float_dispatch!(
            "conv2d backward",
            s1,
            f32 => f32::storage(self.run_f32(
                operand(s1, l1, OP, "output gradient")?,
                operand(s2, l2, OP, "weight")?,
            )),
            f64 => f64::storage(self.run::<f64>(
                operand(s1, l1, OP, "output gradient")?,
                operand(s2, l2, OP, "weight")?,
            )),
        );
        Ok((out, shape))
    }
}

impl Conv2dGradWeight {
    fn run_f32(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let g = &self.g;
        let Some(dc) = direct_forward(g) else {
            return self.run(x, dy);
        };
        let (k, o) = (g.k(), self.o);
        let (xs, ys) = (g.c * g.h * g.w, o * g.l());
        let partial: Vec<Vec<f32>> = chunks(self.n)
            .par_iter()
            .map(|&(a, b)| {
                let mut acc = WeightGrad::new(o, k);
                let mut scratch = vec![0f32; dc.scratch_len()];
                for s in a..b {
                    let xp = dc.padded(&x[s * xs..(s + 1) * xs], &mut scratch);
                    dc.add_weight_grad(xp, &dy[s * ys..(s + 1) * ys], &mut acc);
                }
                acc.into_rows()
            })
            .collect();
        sum_partials(partial, o * k)
    }

    fn run<T: Real>(&self, x: &[T], dy: &[T]) -> Vec<T> {
        let g = &self.g;
        let (k, l, o) = (g.k(), g.l(), self.o);
        let (xs, ys) = (g.c * g.h * g.w, o * l);
        let parts = chunks(self.n);
        let inner = if parts.len() < num_threads() {
            num_threads()
        } else {
            1
        };
        let partial: Vec<Vec<T>> = parts
            .par_iter()
            .map(|&(a, b)| {
                let mut dw = vec![T::ZERO; o * k];
                let tile = tile_rows(g);
                let mut cols = if g.is_pointwise() {
                    Vec::new()
                } else {
                    vec![T::ZERO; k * tile * g.ow]
                };
                let mut first = true;
                for s in a..b {
                    let xn = &x[s * xs..(s + 1) * xs];
                    let dyn_ = &dy[s * ys..(s + 1) * ys];
                    if g.is_pointwise() {
                        gemm(
                            o,
                            k,
                            l,
                            &mut dw,
                            !first,
                            Mat::rows(dyn_, l),
                            Mat::transposed(xn, l),
                            inner,
                        );
                        first = false;
                        continue;
                    }
                    for rows in tiles(g.oh, tile) {
                        let (at, t) = (rows.start * g.ow, rows.len() * g.ow);
                        im2col_rows(g, xn, rows, &mut cols);
                        // dWᵀ (K×O) += cols (K×T) · dYᵀ (T×O), written straight into dW's
                        // layout: the large operand is read row by row (2–3× faster
                        // than packing colsᵀ, measured)
                        let dy_t = Mat {
                            data: &dyn_[at..],
                            rs: 1,
                            cs: l,
                        };
                        gemm_strided(
                            k,
                            o,
                            t,
                            &mut dw,
                            1,
                            k,
                            !first,
                            Mat::rows(&cols, t),
                            dy_t,
                            inner,
                        );
                        first = false;
                    }
                }
                dw
            })
            .collect();
        sum_partials(partial, o * k)
    }
}

impl CustomOp2 for Conv2dGradWeight {
    fn name(&self) -> &'static str {
        "nnlab-conv2d-grad-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let shape = Shape::from((self.o, self.g.c, self.g.kh, self.g.kw));
        let out = float_dispatch!(
            "conv2d backward",
            s1,
            f32 => f32::storage(self.run_f32(
                operand(s1, l1, OP, "input")?,
                operand(s2, l2, OP, "output gradient")?,
            )),
            f64 => f64::storage(self.run::<f64>(
                operand(s1, l1, OP, "input")?,
                operand(s2, l2, OP, "output gradient")?,
            )),
        );
        Ok((out, shape))
    }
}
