//! Classification losses with torch's definitions: cross-entropy on logits
//! (`nn.CrossEntropyLoss`) and NLL on log-probabilities (`nn.NLLLoss`, for
//! nets ending in `log_softmax`), with class weights, label smoothing and
//! mean/sum reduction; and the L2 penalty of hw2's "CrossEntropy + L2".
//!
//! With `ℓ = log_softmax(z)` (or the output itself for NLL), target `y`,
//! class weights `w` (all 1 by default), `C` classes, smoothing `ε`:
//!
//! ```text
//! per-sample  Lᵢ = (1 − ε)·w_{yᵢ}·(−ℓᵢ,yᵢ) + ε/C · Σ_c w_c·(−ℓᵢ,c)
//! mean        Σᵢ Lᵢ / Σᵢ w_{yᵢ}          (torch's weighted mean; = mean when unweighted)
//! sum         Σᵢ Lᵢ
//! ```
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use nnlab::train::loss::Loss;
//! let logits = Tensor::new(&[[2.0f32, 0.0], [0.0, 2.0]], &Device::Cpu).unwrap();
//! let y = Tensor::new(&[0u32, 0], &Device::Cpu).unwrap();
//! let l = Loss::cross_entropy().forward(&logits, &y).unwrap().to_scalar::<f32>().unwrap();
//! assert!((l - 1.1269).abs() < 1e-4); // (0.1269 + 2.1269) / 2
//! ```

use crate::{Error, Result};
use candle_core::{DType, Tensor, Var};

/// What the model output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    Logits,
    LogProbs,
}

/// A classification loss: cross-entropy or NLL, with options.
#[derive(Clone, Debug, PartialEq)]
pub struct Loss {
    input: Input,
    weights: Option<Vec<f32>>,
    label_smoothing: f64,
    sum: bool,
}

impl Loss {
    /// `nn.CrossEntropyLoss()`: log_softmax of the logits, then NLL.
    pub fn cross_entropy() -> Loss {
        Loss {
            input: Input::Logits,
            weights: None,
            label_smoothing: 0.0,
            sum: false,
        }
    }
    /// `nn.NLLLoss()`: the output already holds log-probabilities.
    pub fn nll() -> Loss {
        Loss {
            input: Input::LogProbs,
            ..Loss::cross_entropy()
        }
    }
    /// Class weights `w_c` (torch's `weight=`), one per class.
    pub fn weights(mut self, w: &[f32]) -> Loss {
        self.weights = Some(w.to_vec());
        self
    }
    /// Label smoothing ε in [0, 1] (torch's `label_smoothing=`).
    pub fn label_smoothing(mut self, eps: f64) -> Loss {
        self.label_smoothing = eps;
        self
    }
    /// Sum over the batch instead of the (weighted) mean.
    pub fn sum(mut self) -> Loss {
        self.sum = true;
        self
    }

    /// `CrossEntropyLoss(weight=[1, 2], label_smoothing=0.1, reduction=sum)`.
    pub fn name(&self) -> String {
        let mut opts = Vec::new();
        if let Some(w) = &self.weights {
            opts.push(format!("weight={w:?}"));
        }
        if self.label_smoothing != 0.0 {
            opts.push(format!(
                "label_smoothing={}",
                crate::train::optim::num(self.label_smoothing)
            ));
        }
        if self.sum {
            opts.push("reduction=sum".to_string());
        }
        let kind = match self.input {
            Input::Logits => "CrossEntropyLoss",
            Input::LogProbs => "NLLLoss",
        };
        format!("{kind}({})", opts.join(", "))
    }

    /// The reduced loss, a scalar (differentiable wrt `output`).
    /// `output`: `[B, C]` logits (or log-probabilities for NLL); `target`: `[B]` class indices.
    pub fn forward(&self, output: &Tensor, target: &Tensor) -> Result<Tensor> {
        let (per, wy) = self.terms(output, target)?;
        let total = per.sum_all()?;
        if self.sum {
            return Ok(total);
        }
        let denom = match wy {
            Some(wy) => wy.sum_all()?,
            None => Tensor::new(per.dim(0)? as f64, output.device())?.to_dtype(output.dtype())?,
        };
        Ok(total.div(&denom)?)
    }

    /// The unreduced loss `Lᵢ`, shape `[B]` (torch's `reduction='none'`,
    /// class weights applied), e.g. for top losses.
    pub fn per_sample(&self, output: &Tensor, target: &Tensor) -> Result<Tensor> {
        Ok(self.terms(output, target)?.0)
    }

    /// `(Lᵢ, w_{yᵢ})` after checking shapes, targets and options.
    fn terms(&self, output: &Tensor, target: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        let at = self.name();
        let (b, c) = match output.dims() {
            &[b, c] => (b, c),
            d => {
                return Err(Error::shape(
                    at,
                    format!("output {d:?}, expected [batch, classes]"),
                ))
            }
        };
        if target.dims() != [b] {
            return Err(Error::shape(
                at,
                format!(
                    "target {:?} for output [{b}, {c}], expected [{b}]",
                    target.dims()
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.label_smoothing) {
            return Err(Error::config(
                "label_smoothing",
                format!("{}, expected a value in [0, 1]", self.label_smoothing),
            ));
        }
        if !matches!(
            output.dtype(),
            DType::F16 | DType::BF16 | DType::F32 | DType::F64
        ) {
            return Err(Error::config(
                at,
                format!(
                    "output of dtype {:?}, expected a float dtype",
                    output.dtype()
                ),
            ));
        }
        let ys: Vec<i64> = match target.dtype() {
            DType::U8 | DType::U32 | DType::I64 | DType::I32 | DType::I16 => {
                target.to_dtype(DType::I64)?.to_vec1::<i64>()?
            }
            d => {
                return Err(Error::config(
                    at,
                    format!("target of dtype {d:?}, expected integer class indices"),
                ))
            }
        };
        if let Some((i, y)) = ys
            .iter()
            .enumerate()
            .find(|(_, &y)| y < 0 || y as usize >= c)
        {
            return Err(Error::config(
                format!("target[{i}]"),
                format!("class {y} out of range, expected 0..{c} ({c} classes)"),
            ));
        }
        if let Some(w) = &self.weights {
            if w.len() != c {
                return Err(Error::shape(
                    at,
                    format!("{} class weights for {c} classes, expected {c}", w.len()),
                ));
            }
        }
        let (dev, dt) = (output.device(), output.dtype());
        let logp = match self.input {
            Input::Logits => candle_nn::ops::log_softmax(output, 1)?,
            Input::LogProbs => output.clone(),
        };
        let idx = Tensor::from_vec(
            ys.iter().map(|&y| y as u32).collect::<Vec<_>>(),
            (b, 1),
            dev,
        )?;
        let nll = logp.gather(&idx, 1)?.squeeze(1)?.neg()?;
        let eps = self.label_smoothing;
        let (per, wy) = match &self.weights {
            Some(w) => {
                let wy: Vec<f32> = ys.iter().map(|&y| w[y as usize]).collect();
                let wy = Tensor::from_vec(wy, b, dev)?.to_dtype(dt)?;
                let mut per = (&nll * &wy)?;
                if eps > 0.0 {
                    let wc = Tensor::from_vec(w.clone(), (1, c), dev)?.to_dtype(dt)?;
                    let smooth = logp.broadcast_mul(&wc)?.sum(1)?;
                    per = (per.affine(1.0 - eps, 0.0)? - smooth.affine(eps / c as f64, 0.0)?)?;
                }
                (per, Some(wy))
            }
            None => {
                let per = if eps > 0.0 {
                    (nll.affine(1.0 - eps, 0.0)? - logp.sum(1)?.affine(eps / c as f64, 0.0)?)?
                } else {
                    nll
                };
                (per, None)
            }
        };
        Ok((per, wy))
    }
}

/// `λ · Σ ‖W‖²` over the weight matrices and convolution kernels (parameters
/// of rank ≥ 2); biases and BatchNorm's scale and shift (rank 1) are left
/// out, as weight-only L2 regularization is usually defined (hw2's
/// "CrossEntropy + L2"; its notebook gives no formula). Its gradient is
/// `2λ·W`. A scalar in the dtype and device of the first parameter;
/// [`l2_penalty_all`] includes biases.
pub fn l2_penalty(params: &[(String, Var)], lambda: f64) -> Result<Tensor> {
    penalty(params, lambda, false)
}

/// `λ · Σ ‖θ‖²` over every parameter, biases included (= torch's
/// `weight_decay = 2λ` in SGD).
pub fn l2_penalty_all(params: &[(String, Var)], lambda: f64) -> Result<Tensor> {
    penalty(params, lambda, true)
}

fn penalty(params: &[(String, Var)], lambda: f64, all: bool) -> Result<Tensor> {
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(Error::config(
            "l2 lambda",
            format!("{lambda}, expected a finite value ≥ 0"),
        ));
    }
    let Some((_, first)) = params.first() else {
        return Err(Error::config(
            "l2_penalty params",
            "no parameters, expected at least one",
        ));
    };
    let mut total = Tensor::zeros((), first.dtype(), first.device())?;
    for (_, p) in params.iter().filter(|(_, p)| all || p.rank() >= 2) {
        total = (total + p.as_tensor().sqr()?.sum_all()?.to_dtype(first.dtype())?)?;
    }
    Ok(total.affine(lambda, 0.0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn names() {
        assert_eq!(Loss::cross_entropy().name(), "CrossEntropyLoss()");
        assert_eq!(
            Loss::nll()
                .weights(&[1.0, 2.0])
                .label_smoothing(0.1)
                .sum()
                .name(),
            "NLLLoss(weight=[1.0, 2.0], label_smoothing=0.1, reduction=sum)"
        );
    }

    #[test]
    fn l2_weights_only_or_all() -> crate::TestResult {
        let w = Var::new(&[[1.0f64, 2.0], [3.0, 4.0]], &Device::Cpu)?;
        let b = Var::new(&[10.0f64], &Device::Cpu)?;
        let ps = vec![
            ("l.weight".to_string(), w.clone()),
            ("l.bias".to_string(), b),
        ];
        assert_eq!(l2_penalty(&ps, 0.5)?.to_scalar::<f64>()?, 15.0);
        assert_eq!(l2_penalty_all(&ps, 0.5)?.to_scalar::<f64>()?, 65.0);
        let g = l2_penalty(&ps, 0.5)?.backward()?;
        assert_eq!(
            g.get(w.as_tensor())
                .ok_or("None from g.get(w.as_tensor())")?
                .to_vec2::<f64>()?,
            [[1.0, 2.0], [3.0, 4.0]]
        ); // 2λW
        assert!(l2_penalty(&ps, -1.0)
            .unwrap_err()
            .to_string()
            .contains("-1"));
        assert!(l2_penalty(&[], 1.0).is_err());
        Ok(())
    }
}
