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
//! In f32 with stride 1 and dilation 1 on a CPU with AVX2 + FMA, the same three
//! products run as direct kernels without the column matrix
//! ([`direct`]: 1.5–2.5× the im2col forward, BENCHMARKS.md);
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
//!
//! The files of this folder, one idea each:
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | the public functions and their shape checks |
//! | `forward.rs` | the forward op (`(x, w[, b]) → y`, bias and ReLU fused) and its backward |
//! | `grad.rs` | the two gradient ops, `(dy, w) → dx` and `(x, dy) → dW` |
//! | `direct_backward.rs` | the backward on the direct kernels one sample at a time: `dz` made once in the cache, both gradients from it |
//! | [`fused_pool`] | conv + (ReLU +) max pooling as one op ([`conv2d_max_pool`]) |
//! | `kernel_choice.rs` | which kernel runs: direct (AVX2 or AVX-512, f32, stride 1) or im2col + gemm |
//! | `tiling.rs` | samples split across threads, output rows in cache-sized bands |
//! | [`direct`] | the direct kernels (AVX-512 and AVX2 + FMA) |
//! | [`winograd`] | Winograd F(2×2, 3×3): a 3×3 layer's forward and input gradient with 16 products per 2×2 outputs instead of 36 (`winograd/avx2.rs`, `winograd/avx512.rs`: its transforms) |
//! | `im2col.rs` | im2col / col2im, the column matrix of the gemm path |

use candle_core::Tensor;

use crate::ops::bias_op::apply;
use crate::{Error, Result};
use forward::Conv2d;
use grad::{Conv2dGradInput, Conv2dGradWeight};
use im2col::Geometry;

pub mod direct;
mod direct_backward;
mod forward;
pub mod fused_pool;
mod grad;
mod im2col;
mod kernel_choice;
mod tiling;
pub mod winograd;

#[cfg(test)]
mod tests;

pub use fused_pool::conv2d_max_pool;

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
        return candle_conv2d(x, w, b, p, relu);
    }
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    let op = Conv2d { g, n, o, relu };
    Ok(apply(&x, &w, b, op)?)
}

/// The convolution off nnlab's CPU kernels (CUDA): Candle's `conv2d`, the
/// bias broadcast, the ReLU. A kernel that is not contiguous from offset 0
/// (a slice of a larger weight, such as `w.narrow(1, 2, 3)`) is copied to a
/// fresh tensor first; the copy passes the gradient through to `w`. Candle
/// read such a kernel from the wrong place before candle#3736; 0.11.1, the
/// version Cargo.lock holds, has that fix (its own convolution agrees in the
/// test and on an H200), and the copy keeps any other 0.11 build right.
fn candle_conv2d(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: Conv2dParams,
    relu: bool,
) -> Result<Tensor> {
    let w = if w.is_contiguous() && w.layout().start_offset() == 0 {
        w.clone()
    } else {
        w.force_contiguous()?
    };
    let y = x.conv2d(&w, p.padding, p.stride, p.dilation, 1)?;
    let y = match b {
        Some(b) => y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?)?,
        None => y,
    };
    Ok(if relu { y.relu()? } else { y })
}

/// The geometry of `conv2d(x, w, b)` with `(N, O)`, or an error naming the
/// operand whose shape does not fit.
fn checked_geometry(
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
