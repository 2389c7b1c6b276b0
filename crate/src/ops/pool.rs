//! Pooling over `[N, C, H, W]`: max, average, adaptive average.
//!
//! (Stub: delegates to Candle until the pooling with any-stride backward lands.)

use crate::Result;
use candle_core::Tensor;

/// `y[n,c,i,j] = max_{p,q<k} x[n,c,i·s+p,j·s+q]`, output `(H−k)/s+1`.
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    Ok(x.max_pool2d_with_stride(kernel, stride)?)
}

/// `y[n,c,i,j] = mean_{p,q<k} x[n,c,i·s+p,j·s+q]`, output `(H−k)/s+1`.
pub fn avg_pool2d(x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    Ok(x.avg_pool2d_with_stride(kernel, stride)?)
}

/// torch's `adaptive_avg_pool2d`: output cell `(i, j)` averages rows
/// `⌊i·H/OH⌋ .. ⌈(i+1)·H/OH⌉` and the same for columns.
pub fn adaptive_avg_pool2d(x: &Tensor, out: (usize, usize)) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (oh, ow) = out;
    let mut rows = Vec::with_capacity(oh);
    for i in 0..oh {
        let (h0, h1) = (i * h / oh, ((i + 1) * h).div_ceil(oh));
        let mut cols = Vec::with_capacity(ow);
        for j in 0..ow {
            let (w0, w1) = (j * w / ow, ((j + 1) * w).div_ceil(ow));
            cols.push(x.narrow(2, h0, h1 - h0)?.narrow(3, w0, w1 - w0)?.mean_keepdim(2)?.mean_keepdim(3)?);
        }
        rows.push(Tensor::cat(&cols, 3)?);
    }
    Ok(Tensor::cat(&rows, 2)?)
}
