//! 2-D convolution `y[n,o,i,j] = b[o] + Σ_{c,p,q} w[o,c,p,q] · x[n,c, i·s+p·d−pad, j·s+q·d−pad]`.
//!
//! On the CPU this is a Candle custom op with its own backward, per sample:
//!
//! ```text
//! forward      cols = im2col(xₙ)            Y ₙ = W · cols          (O×K · K×L)
//! grad input   dcols = Wᵀ · dYₙ             dxₙ = col2im(dcols)     (K×O · O×L)
//! grad weight  dW += dYₙ · colsᵀ                                    (O×L · L×K)
//! ```
//!
//! with `K = C·KH·KW`, `L = OH·OW`; samples are split across threads, each
//! with its own column buffer (and weight-gradient accumulator). The input
//! gradient is skipped when the input is data (no gradient wanted). Candle's
//! own CPU backward computes the input gradient with plain loops and is ~60×
//! slower. On CUDA, Candle's own convolution is used.
//!
//! In f32 with stride 1 and dilation 1 on a CPU with AVX-512, the same three
//! products run as direct kernels without the column matrix
//! ([`super::direct_conv`]: 1.5–2.5× the im2col forward, BENCHMARKS.md);
//! f64 (the gradient checks) always takes the im2col path above.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use nnlab::ops::{conv2d, Conv2dParams};
//! let x = Tensor::ones((1, 1, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
//! let w = Tensor::ones((2, 1, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
//! let y = conv2d(&x, &w, None, Conv2dParams { padding: 1, ..Default::default() }).unwrap();
//! assert_eq!(y.dims(), &[1, 2, 4, 4]);
//! assert_eq!(y.get(0).unwrap().get(0).unwrap().to_vec2::<f32>().unwrap()[0], [4., 6., 6., 4.]);
//! ```

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::direct_conv::{self, DirectConv, WeightGrad};
use super::gemm::{contiguous_data, gemm, gemm_rows, gemm_strided, num_threads, Mat, Real};
use super::im2col::{col2im_add_rows, im2col_rows, Geometry};
use super::reduce::{channel_sum, sum_partials};
use super::relu::{relu_grad, relu_in_place};
use crate::{Error, Result};

/// Stride, zero padding and dilation, the same in both spatial directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: 1,
            padding: 0,
            dilation: 1,
        }
    }
}

/// `x`: `[N, C, H, W]`, `w`: `[O, C, KH, KW]`, `b`: `[O]` → `[N, O, H', W']`
/// with `H' = (H + 2·pad − d·(KH−1) − 1) / s + 1`.
pub fn conv2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv2dParams) -> Result<Tensor> {
    conv2d_then(x, w, b, p, false)
}

/// `relu(conv2d(x, w, b))` as one op: the ReLU is applied to each sample's
/// output while it is in cache, and backward masks `dy` once (`y > 0`)
/// instead of a separate ReLU node with its own output, gradient and
/// gradient-accumulation tensors.
pub fn conv2d_relu(x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv2dParams) -> Result<Tensor> {
    conv2d_then(x, w, b, p, true)
}

fn conv2d_then(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: Conv2dParams,
    relu: bool,
) -> Result<Tensor> {
    let (g, n, o) = checked_geometry(x, w, b, p)?;
    if !x.device().is_cpu() {
        let y = x.conv2d(w, p.padding, p.stride, p.dilation, 1)?;
        let y = match b {
            Some(b) => y.broadcast_add(&b.reshape((1, o, 1, 1))?)?,
            None => y,
        };
        return Ok(if relu { y.relu()? } else { y });
    }
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    let op = Conv2d { g, n, o, relu };
    Ok(match b {
        Some(b) => x.apply_op3(&w, &b.contiguous()?, op)?,
        None => x.apply_op2(&w, op)?,
    })
}

/// The geometry of `conv2d(x, w, b)` with `(N, O)`, or an error naming the
/// operand whose shape does not fit.
pub(super) fn checked_geometry(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: Conv2dParams,
) -> Result<(Geometry, usize, usize)> {
    let (n, c, h, wd) = x.dims4().map_err(|_| {
        Error::shape(
            "conv2d",
            format!("input of shape {:?}: expected [N, C, H, W]", x.dims()),
        )
    })?;
    let (o, wc, kh, kw) = w.dims4().map_err(|_| {
        Error::shape(
            "conv2d",
            format!("weight of shape {:?}: expected [O, C, KH, KW]", w.dims()),
        )
    })?;
    if wc != c {
        return Err(Error::shape(
            "conv2d",
            format!(
                "input has {c} channels, the weight expects {wc} (weight {:?})",
                w.dims()
            ),
        ));
    }
    if c == 0 {
        return Err(Error::shape(
            "conv2d",
            format!(
                "input of shape {:?} has 0 channels, expected at least 1",
                x.dims()
            ),
        ));
    }
    let g = Geometry::new(c, h, wd, kh, kw, p.stride, p.padding, p.dilation).ok_or_else(|| {
        Error::shape(
            "conv2d",
            format!("a {kh}×{kw} kernel (dilation {}) does not fit a {h}×{wd} input with padding {} (stride {})", p.dilation, p.padding, p.stride),
        )
    })?;
    if let Some(b) = b {
        if b.dims() != [o] {
            return Err(Error::shape(
                "conv2d",
                format!(
                    "bias of shape {:?}: expected [{o}] (one per output channel)",
                    b.dims()
                ),
            ));
        }
    }
    Ok((g, n, o))
}

/// The input gradient of [`conv2d`] for an output gradient `dy`
/// (`[N, O, H', W']`), computed by the same CPU kernels as its backward:
/// `dx[n, c, ·] = Σ_o Wᵀ·dy` scattered back (`[N, C, H, W]` for the given
/// input size `hw`). For benchmarks and hand-written backward passes.
pub fn conv2d_input_grad(
    dy: &Tensor,
    w: &Tensor,
    hw: (usize, usize),
    p: Conv2dParams,
) -> Result<Tensor> {
    let (n, o, oh, ow) = dims4("output gradient", dy)?;
    let (wo, c, kh, kw) = dims4("weight", w)?;
    let g = grad_geometry(c, hw, (kh, kw), p, (oh, ow))?;
    if wo != o {
        return Err(Error::shape(
            "conv2d_input_grad",
            format!("output gradient has {o} channels, the weight {wo}"),
        ));
    }
    cpu_only(dy)?;
    Ok(dy
        .contiguous()?
        .apply_op2_no_bwd(&w.contiguous()?, &Conv2dGradInput { g, n, o })?)
}

/// The weight gradient of [`conv2d`] for an output gradient `dy`:
/// `dW = Σ_n dyₙ · colsₙᵀ` (`[O, C, KH, KW]` for the given `kernel` size),
/// by the same CPU kernels as its backward.
pub fn conv2d_weight_grad(
    x: &Tensor,
    dy: &Tensor,
    kernel: (usize, usize),
    p: Conv2dParams,
) -> Result<Tensor> {
    let (n, c, h, wd) = dims4("input", x)?;
    let (dn, o, oh, ow) = dims4("output gradient", dy)?;
    if dn != n {
        return Err(Error::shape(
            "conv2d_weight_grad",
            format!("input has {n} samples, the output gradient {dn}"),
        ));
    }
    let g = grad_geometry(c, (h, wd), kernel, p, (oh, ow))?;
    cpu_only(x)?;
    Ok(x.contiguous()?
        .apply_op2_no_bwd(&dy.contiguous()?, &Conv2dGradWeight { g, n, o })?)
}

fn dims4(what: &str, t: &Tensor) -> Result<(usize, usize, usize, usize)> {
    t.dims4().map_err(|_| {
        Error::shape(
            "conv2d gradient",
            format!("{what} of shape {:?}: expected 4 dimensions", t.dims()),
        )
    })
}

fn cpu_only(t: &Tensor) -> Result<()> {
    if t.device().is_cpu() {
        Ok(())
    } else {
        Err(Error::shape(
            "conv2d gradient",
            "these kernels run on the CPU (on CUDA, use backward())",
        ))
    }
}

/// The geometry of a convolution whose output must be `out`.
fn grad_geometry(
    c: usize,
    (h, w): (usize, usize),
    (kh, kw): (usize, usize),
    p: Conv2dParams,
    out: (usize, usize),
) -> Result<Geometry> {
    let g = Geometry::new(c, h, w, kh, kw, p.stride, p.padding, p.dilation);
    match g {
        Some(g) if (g.oh, g.ow) == out => Ok(g),
        _ => Err(Error::shape(
            "conv2d gradient",
            format!(
                "a {kh}×{kw} kernel on a {h}×{w} input ({p:?}) does not give the output gradient's {}×{}",
                out.0, out.1
            ),
        )),
    }
}

/// The forward op: `(x, w) → y`, or `(x, w, b) → y` with the bias added
/// in the same pass (no separate broadcast add, and its gradient is one
/// channel sum of `dy` instead of Candle's strided reduction).
#[derive(Clone, Copy, Debug)]
struct Conv2d {
    g: Geometry,
    n: usize,
    o: usize,
    /// `y = relu(conv)`: see [`conv2d_relu`]
    relu: bool,
}

/// `(dy, w) → dx`, no backward of its own.
#[derive(Clone, Copy, Debug)]
struct Conv2dGradInput {
    g: Geometry,
    n: usize,
    o: usize,
}

/// `(x, dy) → dW`, no backward of its own.
#[derive(Clone, Copy, Debug)]
struct Conv2dGradWeight {
    g: Geometry,
    n: usize,
    o: usize,
}

pub(super) fn contiguous<'a, T: Real>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [T]> {
    contiguous_data(s, l, "conv2d", what)
}

/// Elements of a column tile: `K × T` f32 values that stay in the L2 cache
/// next to the product's own packed copy (256 KiB).
const TILE_ELEMS: usize = 64 * 1024;

/// Output rows per column tile: the im2col matrix of a whole sample
/// (`K × L`, 1.2 MB for a 32-channel 3×3 conv on 32×32) is built and
/// multiplied a band of output rows at a time, so the product reads it from
/// cache instead of memory.
fn tile_rows(g: &Geometry) -> usize {
    (TILE_ELEMS / (g.k() * g.ow).max(1)).clamp(1, g.oh.max(1))
}

/// `0..n` in bands of `t`.
fn tiles(n: usize, t: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..n).step_by(t.max(1)).map(move |a| a..(a + t).min(n))
}

/// Splits `n` samples into one contiguous range per thread.
pub(super) fn chunks(n: usize) -> Vec<(usize, usize)> {
    let t = num_threads().min(n).max(1);
    (0..t)
        .map(|i| (i * n / t, (i + 1) * n / t))
        .filter(|(a, b)| a < b)
        .collect()
}

/// The direct kernel for this convolution's forward and weight gradient
/// (f32, stride 1, dilation 1, an AVX-512 CPU), if it applies.
pub(super) fn direct_forward(g: &Geometry) -> Option<DirectConv> {
    if !direct_conv::available() || g.stride != 1 || g.dilation != 1 {
        return None;
    }
    DirectConv::new(g.c, g.h, g.w, g.kh, g.kw, g.padding, g.padding)
}

/// The direct kernel for the input gradient: the forward of `dy` padded by
/// `K−1−pad` with the flipped kernel (needs `pad ≤ K−1`).
pub(super) fn direct_grad_input(g: &Geometry, o: usize) -> Option<DirectConv> {
    if !direct_conv::available()
        || g.stride != 1
        || g.dilation != 1
        || g.padding >= g.kh
        || g.padding >= g.kw
    {
        return None;
    }
    let dc = DirectConv::new(
        o,
        g.oh,
        g.ow,
        g.kh,
        g.kw,
        g.kh - 1 - g.padding,
        g.kw - 1 - g.padding,
    )?;
    (dc.oh == g.h && dc.ow == g.w).then_some(dc)
}

/// Calls `f(sample, out, scratch, threads)` for each of `n` samples, where
/// `out` is the sample's `per` elements of `buf`. Samples go in one block
/// per thread, each block with its own `scratch_len` buffer; with fewer
/// samples than threads, `threads` tells the matrix product to split instead.
fn for_each_sample<T: Real, U: Send>(
    n: usize,
    buf: &mut [U],
    per: usize,
    scratch_len: usize,
    f: impl Fn(usize, &mut [U], &mut [T], usize) + Sync,
) {
    let parts = chunks(n);
    let inner = if parts.len() < num_threads() {
        num_threads()
    } else {
        1
    };
    let mut outs = Vec::with_capacity(parts.len());
    let mut rest = buf;
    for (a, b) in &parts {
        let (head, tail) = rest.split_at_mut((b - a) * per);
        outs.push(head);
        rest = tail;
    }
    parts.par_iter().zip(outs).for_each(|(&(a, b), out)| {
        let mut scratch = vec![T::ZERO; scratch_len];
        for s in a..b {
            f(
                s,
                &mut out[(s - a) * per..(s - a + 1) * per],
                &mut scratch,
                inner,
            );
        }
    });
}

impl Conv2d {
    fn run_f32(&self, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
        let Some(dc) = direct_forward(&self.g) else {
            return self.run(x, w, b);
        };
        let (xs, ys) = (self.g.c * self.g.h * self.g.w, self.o * self.g.l());
        let packed = direct_conv::pack(w, self.o, self.g.k());
        // every element is written by the kernel: no zero fill first (a
        // memset of the whole output when the allocator reuses memory)
        let mut y = Vec::with_capacity(self.n * ys);
        for_each_sample(
            self.n,
            &mut y.spare_capacity_mut()[..self.n * ys],
            ys,
            dc.scratch_len(),
            |s, yn, scratch: &mut [f32], _| {
                let xp = dc.padded(&x[s * xs..(s + 1) * xs], scratch);
                dc.forward(xp, &packed, b, self.relu, yn);
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
}

impl CustomOp2 for Conv2d {
    fn name(&self) -> &'static str {
        "nnlab-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let shape = Shape::from((self.n, self.o, self.g.oh, self.g.ow));
        let out = match s1 {
            CpuStorage::F32(_) => f32::storage(self.run_f32(
                contiguous(s1, l1, "input")?,
                contiguous(s2, l2, "weight")?,
                None,
            )),
            CpuStorage::F64(_) => f64::storage(self.run::<f64>(
                contiguous(s1, l1, "input")?,
                contiguous(s2, l2, "weight")?,
                None,
            )),
            other => candle_core::bail!(
                "conv2d: dtype {:?} is not supported, use f32 or f64",
                other.dtype()
            ),
        };
        Ok((out, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.backward(x, w, y, dy)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for Conv2d {
    fn name(&self) -> &'static str {
        "nnlab-conv2d-bias"
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
        let shape = Shape::from((self.n, self.o, self.g.oh, self.g.ow));
        let out = match s1 {
            CpuStorage::F32(_) => f32::storage(self.run_f32(
                contiguous(s1, l1, "input")?,
                contiguous(s2, l2, "weight")?,
                Some(contiguous(s3, l3, "bias")?),
            )),
            CpuStorage::F64(_) => f64::storage(self.run::<f64>(
                contiguous(s1, l1, "input")?,
                contiguous(s2, l2, "weight")?,
                Some(contiguous(s3, l3, "bias")?),
            )),
            other => candle_core::bail!(
                "conv2d: dtype {:?} is not supported, use f32 or f64",
                other.dtype()
            ),
        };
        Ok((out, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, dy) = self.backward(x, w, y, dy)?;
        let db = if b.track_op() {
            Some(channel_sum(&dy, self.n, self.o, self.g.l())?)
        } else {
            None
        };
        Ok((dx, dw, db))
    }
}

impl Conv2dGradInput {
    fn run_f32(&self, dy: &[f32], w: &[f32]) -> Vec<f32> {
        let g = &self.g;
        let Some(dc) = direct_grad_input(g, self.o) else {
            return self.run(dy, w);
        };
        let (xs, ys) = (g.c * g.h * g.w, self.o * g.l());
        let packed = direct_conv::pack_flipped(w, self.o, g.c, g.kh, g.kw);
        let mut dx = Vec::with_capacity(self.n * xs);
        for_each_sample(
            self.n,
            &mut dx.spare_capacity_mut()[..self.n * xs],
            xs,
            dc.scratch_len(),
            |s, dxn, scratch: &mut [f32], _| {
                let dyp = dc.padded(&dy[s * ys..(s + 1) * ys], scratch);
                dc.forward(dyp, &packed, None, false, dxn);
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
        let out = match s1 {
            CpuStorage::F32(_) => f32::storage(self.run_f32(
                contiguous(s1, l1, "output gradient")?,
                contiguous(s2, l2, "weight")?,
            )),
            CpuStorage::F64(_) => f64::storage(self.run::<f64>(
                contiguous(s1, l1, "output gradient")?,
                contiguous(s2, l2, "weight")?,
            )),
            other => candle_core::bail!(
                "conv2d backward: dtype {:?} is not supported",
                other.dtype()
            ),
        };
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
        let out = match s1 {
            CpuStorage::F32(_) => f32::storage(self.run_f32(
                contiguous(s1, l1, "input")?,
                contiguous(s2, l2, "output gradient")?,
            )),
            CpuStorage::F64(_) => f64::storage(self.run::<f64>(
                contiguous(s1, l1, "input")?,
                contiguous(s2, l2, "output gradient")?,
            )),
            other => candle_core::bail!(
                "conv2d backward: dtype {:?} is not supported",
                other.dtype()
            ),
        };
        Ok((out, shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    use crate::ops::test_util::{grads_of, max_diff, rand, rel_diff};

    /// (N, C, H, W, O, K, stride, padding, dilation)
    const CASES: [(
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
    ); 8] = [
        (2, 3, 7, 6, 4, 3, 1, 1, 1),
        (1, 2, 9, 9, 3, 3, 2, 1, 1),
        (3, 1, 5, 5, 2, 1, 1, 0, 1),
        (2, 2, 11, 10, 3, 7, 1, 3, 1),
        (1, 4, 8, 8, 5, 3, 1, 2, 2),
        (4, 3, 6, 7, 2, 2, 2, 0, 1),
        (1, 1, 4, 4, 1, 3, 1, 0, 1),
        (5, 2, 8, 8, 3, 5, 2, 2, 1),
    ];

    #[test]
    fn forward_and_gradients_equal_candles_own_conv() {
        for (i, &(n, c, h, w, o, k, s, pad, d)) in CASES.iter().enumerate() {
            let x = Var::from_tensor(&rand(&[n, c, h, w], i as u64)).unwrap();
            let wt = Var::from_tensor(&rand(&[o, c, k, k], 100 + i as u64)).unwrap();
            let p = Conv2dParams {
                stride: s,
                padding: pad,
                dilation: d,
            };
            let ours = conv2d(&x, &wt, None, p).unwrap();
            let theirs = x.conv2d(&wt, pad, s, d, 1).unwrap();
            assert_eq!(ours.dims(), theirs.dims(), "case {i}");
            assert!(max_diff(&ours, &theirs) < 1e-12, "case {i}: forward");
            // A loss that weighs every output differently.
            let r = rand(ours.dims(), 200 + i as u64);
            let g1 = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
            // Candle's own backward fails on some odd sizes with stride 2
            // (its input gradient comes out one column short): those cases
            // are covered by the finite differences below.
            let Ok(g2) = (&theirs * &r).unwrap().sum_all().unwrap().backward() else {
                continue;
            };
            for (what, v) in [("input", &x), ("weight", &wt)] {
                let a = g1.get(v).unwrap();
                let b = g2.get(v).unwrap();
                assert!(
                    max_diff(a, b) < 1e-11,
                    "case {i}: {what} gradient differs by {}",
                    max_diff(a, b)
                );
            }
        }
    }

    #[test]
    fn several_row_tiles_equal_candles_conv() {
        // K·OW·OH above TILE_ELEMS: the column matrix is built in 2–3 bands
        for (i, &(n, c, h, o, k, s, pad)) in [
            (2, 8, 40, 3, 3, 1, 1),
            (1, 16, 50, 4, 3, 2, 1),
            (3, 30, 30, 2, 4, 1, 0),
        ]
        .iter()
        .enumerate()
        {
            let g = Geometry::new(c, h, h, k, k, s, pad, 1).unwrap();
            assert!(tile_rows(&g) < g.oh, "case {i} fits one tile");
            let x = Var::from_tensor(&rand(&[n, c, h, h], 400 + i as u64)).unwrap();
            let wt = Var::from_tensor(&rand(&[o, c, k, k], 500 + i as u64)).unwrap();
            let p = Conv2dParams {
                stride: s,
                padding: pad,
                dilation: 1,
            };
            let ours = conv2d(&x, &wt, None, p).unwrap();
            let theirs = x.conv2d(&wt, pad, s, 1, 1).unwrap();
            assert!(max_diff(&ours, &theirs) < 1e-11, "case {i}: forward");
            let r = rand(ours.dims(), 600 + i as u64);
            let g1 = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (&theirs * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (what, v) in [("input", &x), ("weight", &wt)] {
                let d = max_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
                assert!(d < 1e-10, "case {i}: {what} gradient differs by {d}");
            }
        }
    }

    #[test]
    fn fused_relu_equals_a_separate_relu() {
        for (i, &(n, c, h, w, o, k, s, pad, d)) in CASES.iter().enumerate() {
            let x = Var::from_tensor(&rand(&[n, c, h, w], i as u64)).unwrap();
            let wt = Var::from_tensor(&rand(&[o, c, k, k], 100 + i as u64)).unwrap();
            let b = Var::from_tensor(&rand(&[o], 300 + i as u64)).unwrap();
            let p = Conv2dParams {
                stride: s,
                padding: pad,
                dilation: d,
            };
            for bias in [Some(b.as_tensor()), None] {
                let ours = conv2d_relu(&x, &wt, bias, p).unwrap();
                let theirs = crate::ops::relu(&conv2d(&x, &wt, bias, p).unwrap()).unwrap();
                assert_eq!(max_diff(&ours, &theirs), 0.0, "case {i}: forward");
                let r = rand(ours.dims(), 200 + i as u64);
                let g1 = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
                let g2 = (&theirs * &r)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                for (what, v) in [("input", &x), ("weight", &wt), ("bias", &b)] {
                    if what == "bias" && bias.is_none() {
                        continue;
                    }
                    let d = max_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
                    assert!(d < 1e-12, "case {i}: {what} gradient differs by {d}");
                }
            }
        }
    }

    #[test]
    fn fused_bias_equals_a_broadcast_add() {
        for (i, &(n, c, h, w, o, k, s, pad, d)) in CASES.iter().enumerate() {
            let x = Var::from_tensor(&rand(&[n, c, h, w], i as u64)).unwrap();
            let wt = Var::from_tensor(&rand(&[o, c, k, k], 100 + i as u64)).unwrap();
            let b = Var::from_tensor(&rand(&[o], 300 + i as u64)).unwrap();
            let p = Conv2dParams {
                stride: s,
                padding: pad,
                dilation: d,
            };
            let ours = conv2d(&x, &wt, Some(&b), p).unwrap();
            let theirs = conv2d(&x, &wt, None, p)
                .unwrap()
                .broadcast_add(&b.reshape((1, o, 1, 1)).unwrap())
                .unwrap();
            assert!(max_diff(&ours, &theirs) < 1e-12, "case {i}: forward");
            let r = rand(ours.dims(), 200 + i as u64);
            let g1 = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (&theirs * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (what, v) in [("input", &x), ("weight", &wt), ("bias", &b)] {
                let d = max_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
                assert!(d < 1e-11, "case {i}: {what} gradient differs by {d}");
            }
        }
        let e = conv2d(
            &rand(&[1, 2, 5, 5], 1),
            &rand(&[3, 2, 3, 3], 2),
            Some(&rand(&[2], 3)),
            Conv2dParams::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bias") && e.contains("[3]"), "{e}");
    }

    #[test]
    fn gradients_equal_finite_differences() {
        let (n, c, o, k) = (2, 2, 3, 3);
        for (h, w, s, pad) in [(5, 6, 1, 1), (5, 6, 2, 0), (7, 6, 2, 1), (6, 7, 2, 0)] {
            let x = Var::from_tensor(&rand(&[n, c, h, w], 7)).unwrap();
            let wt = Var::from_tensor(&rand(&[o, c, k, k], 8)).unwrap();
            let b = Var::from_tensor(&rand(&[o], 9)).unwrap();
            let p = Conv2dParams {
                stride: s,
                padding: pad,
                dilation: 1,
            };
            let y = conv2d(&x, &wt, Some(&b), p).unwrap();
            let r = rand(y.dims(), 10);
            let loss = |x: &Tensor, wt: &Tensor, b: &Tensor| -> f64 {
                (conv2d(x, wt, Some(b), p).unwrap() * &r)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            };
            let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let eps = 1e-6;
            for (which, v) in [(0, &x), (1, &wt), (2, &b)] {
                let g = grads
                    .get(v)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap();
                let base = v
                    .as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap();
                for idx in (0..base.len()).step_by(3) {
                    let bump = |delta: f64| {
                        let mut m = base.clone();
                        m[idx] += delta;
                        Tensor::from_vec(m, v.dims(), &Device::Cpu).unwrap()
                    };
                    let (plus, minus) = (bump(eps), bump(-eps));
                    let f = |t: &Tensor| match which {
                        0 => loss(t, &wt, &b),
                        1 => loss(&x, t, &b),
                        _ => loss(&x, &wt, t),
                    };
                    let fd = (f(&plus) - f(&minus)) / (2.0 * eps);
                    // relative error, with an absolute floor for near-zero gradients
                    let err = (fd - g[idx]).abs() / (1.0 + g[idx].abs());
                    assert!(
                        err < 1e-7,
                        "stride {s} pad {pad} param {which} index {idx}: {fd} vs {}",
                        g[idx]
                    );
                }
            }
        }
    }

    #[test]
    fn f32_matches_f64_and_data_inputs_get_no_gradient() {
        let x = rand(&[3, 2, 6, 6], 1);
        let wt = Var::from_tensor(&rand(&[4, 2, 3, 3], 2)).unwrap();
        let y64 = conv2d(&x, &wt, None, Conv2dParams::default()).unwrap();
        let y32 = conv2d(
            &x.to_dtype(DType::F32).unwrap(),
            &wt.to_dtype(DType::F32).unwrap(),
            None,
            Conv2dParams::default(),
        )
        .unwrap();
        assert!(max_diff(&y64, &y32.to_dtype(DType::F64).unwrap()) < 1e-5);
        let grads = y64.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(&wt).is_some());
    }

    #[test]
    fn bad_shapes_are_errors() {
        let x = rand(&[1, 3, 4, 4], 1);
        let e = conv2d(&x, &rand(&[2, 2, 3, 3], 2), None, Conv2dParams::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 channels") && e.contains("expects 2"), "{e}");
        let e = conv2d(&x, &rand(&[2, 3, 5, 5], 2), None, Conv2dParams::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not fit"), "{e}");
        let e = conv2d(
            &rand(&[3, 4, 4], 1),
            &rand(&[2, 3, 3, 3], 2),
            None,
            Conv2dParams::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[N, C, H, W]"), "{e}");
    }

    /// Issue 17: zero channels panicked in the direct kernel
    /// (`chunks_exact(0)`); a padding whose arithmetic overflows wrapped.
    #[test]
    fn zero_channels_and_overflowing_padding_are_errors() {
        for dtype in [candle_core::DType::F32, candle_core::DType::F64] {
            let x = candle_core::Tensor::zeros(&[1, 0, 4, 4], dtype, &candle_core::Device::Cpu)
                .unwrap();
            let w = candle_core::Tensor::zeros(&[2, 0, 3, 3], dtype, &candle_core::Device::Cpu)
                .unwrap();
            let e = conv2d(&x, &w, None, Conv2dParams::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("0 channels"), "{e}");
            let e = super::super::conv_pool::conv2d_max_pool(
                &x,
                &w,
                None,
                Conv2dParams::default(),
                (2, 2),
                false,
            )
            .map(|_| ())
            .unwrap_err()
            .to_string();
            assert!(e.contains("0 channels"), "{e}");
        }
        let x = rand(&[1, 1, 4, 4], 1);
        let p = Conv2dParams {
            padding: usize::MAX / 2 + 1,
            ..Default::default()
        };
        let e = conv2d(&x, &rand(&[1, 1, 3, 3], 2), None, p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not fit"), "{e}");
    }

    /// f32 runs the direct kernels where the CPU has AVX-512 (f64 always
    /// runs im2col + gemm): the f32 forward, its backward and the two
    /// gradient functions equal the f64 results to f32 precision, on shapes
    /// with ragged row ends (masked lanes), channel counts that are not
    /// multiples of the register tiles, several samples per weight-gradient
    /// pass, batch 1, 1×1 to 7×7 kernels and a padding the direct input
    /// gradient does not take (k = 3, pad 3: im2col).
    #[test]
    fn f32_direct_kernels_equal_f64() {
        let direct_expected = super::direct_conv::available();
        if std::env::var("NNLAB_CONV").map_or(true, |v| v != "im2col") {
            #[cfg(target_arch = "x86_64")]
            assert_eq!(
                direct_expected,
                std::arch::is_x86_feature_detected!("avx512f"),
                "the direct kernels run exactly where AVX-512F is"
            );
        }
        // (N, C, H, W, O, K, padding, stride)
        for (i, &(n, c, h, w, o, k, pad, s)) in [
            (3, 5, 9, 37, 13, 3, 1, 1),
            (1, 16, 14, 14, 32, 3, 1, 1),
            (4, 3, 19, 7, 8, 4, 0, 1),
            (2, 1, 28, 28, 16, 3, 1, 1),
            (2, 9, 11, 17, 5, 5, 2, 1),
            (1, 4, 12, 12, 6, 7, 3, 1),
            (5, 7, 6, 6, 3, 1, 0, 1),
            (2, 6, 8, 8, 4, 3, 3, 1),
            (2, 4, 9, 9, 6, 3, 1, 2),
            (3, 2, 33, 33, 9, 2, 1, 1),
            // two bands of rows, two channel blocks (32 + 16)
            (2, 3, 40, 40, 48, 3, 1, 1),
            // a two-vector block with 4 padded channels
            (1, 2, 10, 10, 20, 3, 1, 1),
        ]
        .iter()
        .enumerate()
        {
            let x64 = rand(&[n, c, h, w], 700 + i as u64);
            let w64 = rand(&[o, c, k, k], 800 + i as u64);
            let b64 = rand(&[o], 900 + i as u64);
            let p = Conv2dParams {
                stride: s,
                padding: pad,
                dilation: 1,
            };
            let f32_ = |t: &Tensor| Var::from_tensor(&t.to_dtype(DType::F32).unwrap()).unwrap();
            let (x32, w32, b32) = (f32_(&x64), f32_(&w64), f32_(&b64));
            let (x, wt, b) = (
                Var::from_tensor(&x64).unwrap(),
                Var::from_tensor(&w64).unwrap(),
                Var::from_tensor(&b64).unwrap(),
            );
            for relu in [false, true] {
                let run = |x: &Tensor, w: &Tensor, b: &Tensor| {
                    if relu {
                        conv2d_relu(x, w, Some(b), p).unwrap()
                    } else {
                        conv2d(x, w, Some(b), p).unwrap()
                    }
                };
                let y64 = run(&x, &wt, &b);
                let y32 = run(&x32, &w32, &b32);
                let d = rel_diff(&y32, &y64);
                assert!(d < 1e-5, "case {i} relu {relu}: forward differs by {d}");
                let r = rand(y64.dims(), 950 + i as u64);
                let (g64, g32) = (grads_of(&y64, &r), grads_of(&y32, &r));
                for (what, v64, v32) in [
                    ("input", &x, &x32),
                    ("weight", &wt, &w32),
                    ("bias", &b, &b32),
                ] {
                    let d = rel_diff(g32.get(v32).unwrap(), g64.get(v64).unwrap());
                    assert!(
                        d < 1e-5,
                        "case {i} relu {relu}: {what} gradient differs by {d}"
                    );
                }
            }
            let dy = rand(
                &[n, o, (h + 2 * pad - k) / s + 1, (w + 2 * pad - k) / s + 1],
                990 + i as u64,
            );
            let dy32 = dy.to_dtype(DType::F32).unwrap();
            let d = rel_diff(
                &conv2d_input_grad(&dy32, &w32, (h, w), p).unwrap(),
                &conv2d_input_grad(&dy, &w64, (h, w), p).unwrap(),
            );
            assert!(d < 1e-5, "case {i}: conv2d_input_grad differs by {d}");
            let d = rel_diff(
                &conv2d_weight_grad(&x32, &dy32, (k, k), p).unwrap(),
                &conv2d_weight_grad(&x64, &dy, (k, k), p).unwrap(),
            );
            assert!(d < 1e-5, "case {i}: conv2d_weight_grad differs by {d}");
        }
    }

    #[test]
    fn gradient_functions_check_their_shapes() {
        let p = Conv2dParams {
            padding: 1,
            ..Default::default()
        };
        let (x, w, dy) = (
            rand(&[2, 3, 8, 8], 1),
            rand(&[4, 3, 3, 3], 2),
            rand(&[2, 4, 8, 8], 3),
        );
        let e = conv2d_input_grad(&dy, &w, (9, 8), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("9×8 input") && e.contains("8×8"), "{e}");
        let e = conv2d_weight_grad(&x, &dy.narrow(0, 0, 1).unwrap(), (3, 3), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 samples") && e.contains("1"), "{e}");
        let e = conv2d_input_grad(&dy, &rand(&[5, 3, 3, 3], 2), (8, 8), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 channels") && e.contains("weight 5"), "{e}");
        let e = conv2d_weight_grad(&rand(&[2, 3, 8], 1), &dy, (3, 3), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("input of shape [2, 3, 8]"), "{e}");
    }
}
