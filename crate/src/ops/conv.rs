//! 2-D convolution `y[n,o,i,j] = b[o] + Σ_{c,p,q} w[o,c,p,q] · x[n,c, i·s+p·d−pad, j·s+q·d−pad]`.
//!
//! (Stub: delegates to Candle's conv2d until the fast op lands.)

use crate::Result;
use candle_core::Tensor;

/// Stride, zero padding and dilation, the same in both spatial directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams { stride: 1, padding: 0, dilation: 1 }
    }
}

/// `x`: `[N, C, H, W]`, `w`: `[O, C, KH, KW]`, `b`: `[O]` → `[N, O, H', W']`
/// with `H' = (H + 2·pad − d·(KH−1) − 1) / s + 1`.
pub fn conv2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv2dParams) -> Result<Tensor> {
    let y = x.conv2d(w, p.padding, p.stride, p.dilation, 1)?;
    Ok(match b {
        Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
        None => y,
    })
}
