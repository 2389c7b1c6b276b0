//! Softmax + cross-entropy (mean over the batch) and L2 regularization.
//!
//! ```text
//! p = softmax(z) = e^(z − max z) / Σ e^(z − max z)        z [N, K]
//! CE = −(1/N) Σₙ log p[n, yₙ]                             scalar
//! ∂CE/∂z = (p − onehot(y)) / N                            [N, K]
//! L2 = (λ/2) Σ_W ‖W‖²  over the Linear weights (not biases), ∂L2/∂W = λW
//! ```
//! (λW is what torch's `weight_decay = λ` adds to a gradient.)
//!
//! ```
//! use nnlab::scratch::softmax_ce::cross_entropy;
//! use candle_core::{Device, Tensor};
//! let z = Tensor::new(&[[0.0f64, 0.0]], &Device::Cpu).unwrap();
//! let (loss, _) = cross_entropy(&z, &[1]).unwrap();
//! assert!((loss.to_scalar::<f64>().unwrap() - 2f64.ln()).abs() < 1e-12);
//! ```

use crate::{Error, Result};
use candle_core::{Tensor, D};

/// What the backward of the loss needs.
#[derive(Clone, Debug)]
pub struct CeCache {
    /// softmax probabilities `[N, K]`
    pub probs: Tensor,
    /// one-hot labels `[N, K]`
    pub onehot: Tensor,
}

/// Row-wise softmax, shifted by the row maximum for stability.
pub fn softmax(z: &Tensor) -> Result<Tensor> {
    let e = z
        .broadcast_sub(&z.max_keepdim(D::Minus1)?.detach())?
        .exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// One-hot `[N, K]` of `labels` in the dtype of `like`.
pub fn onehot(labels: &[u32], k: usize, like: &Tensor) -> Result<Tensor> {
    let mut v = vec![0.0f64; labels.len() * k];
    for (n, &l) in labels.iter().enumerate() {
        if l as usize >= k {
            return Err(Error::config(
                format!("labels[{n}]"),
                format!("{l}, expected 0..{k}"),
            ));
        }
        v[n * k + l as usize] = 1.0;
    }
    Ok(Tensor::from_vec(v, (labels.len(), k), like.device())?.to_dtype(like.dtype())?)
}

/// CE = −(1/N) Σₙ log softmax(z)[n, yₙ], as a scalar tensor, and its cache.
pub fn cross_entropy(z: &Tensor, labels: &[u32]) -> Result<(Tensor, CeCache)> {
    let (n, k) = z.dims2().map_err(|_| {
        Error::shape(
            "cross_entropy",
            format!("logits {:?}, expected [N, K]", z.dims()),
        )
    })?;
    if n != labels.len() || n == 0 {
        return Err(Error::shape(
            "cross_entropy",
            format!(
                "{n} rows of logits and {} labels, expected equal and > 0",
                labels.len()
            ),
        ));
    }
    let oh = onehot(labels, k, z)?;
    let shifted = z.broadcast_sub(&z.max_keepdim(1)?.detach())?;
    let log_p = shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(1)?.log()?)?;
    let loss = ((log_p.clone() * &oh)?.sum_all()? * (-1.0 / n as f64))?;
    Ok((
        loss,
        CeCache {
            probs: log_p.exp()?,
            onehot: oh,
        },
    ))
}

/// ∂CE/∂z = (p − onehot) / N
pub fn cross_entropy_backward(cache: &CeCache) -> Result<Tensor> {
    let n = cache.probs.dim(0)? as f64;
    Ok(((&cache.probs - &cache.onehot)? / n)?)
}

/// (λ/2) Σ ‖W‖² as a scalar tensor (dtype of the first weight; 0 when empty).
pub fn l2_penalty(weights: &[Tensor], lambda: f64) -> Result<Tensor> {
    let Some(first) = weights.first() else {
        return Ok(Tensor::new(0f64, &candle_core::Device::Cpu)?);
    };
    let mut s = first.sqr()?.sum_all()?;
    for w in &weights[1..] {
        s = (s + w.sqr()?.sum_all()?)?;
    }
    Ok((s * (lambda / 2.0))?)
}

/// ∂L2/∂W = λW
pub fn l2_grad(w: &Tensor, lambda: f64) -> Result<Tensor> {
    Ok((w * lambda)?)
}
