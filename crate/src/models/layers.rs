//! The layers a course model is made of, candle-nn style: each one a plain
//! struct of tensors (`candle_core::Var` parameters) with PyTorch's
//! state-dict names (`weight`, `bias`, `running_mean`, ...).
//!
//! | layer | forward |
//! | --- | --- |
//! | `Linear` | `y = x·Wᵀ + b` (`W: [out, in]`; hw2's layout `W: [in, out]`, `y = x·W + b`) |
//! | `Conv2d` | [`crate::ops::conv2d`] |
//! | `MaxPool2d` / `AvgPool2d` | [`crate::ops::max_pool2d`] / [`crate::ops::avg_pool2d`] |
//! | `AdaptiveAvgPool2d` | [`crate::ops::adaptive_avg_pool2d`] |
//! | `BatchNorm1d/2d` | `y = (x − μ)/√(σ² + ε)·γ + β`; train: batch μ, biased σ², running stats `r ← (1−m)·r + m·s` with the *unbiased* σ²; eval: running stats |
//! | `LayerNorm` | the same over the last dimension, always with its own statistics |
//! | `Dropout(p)` | train: `x·mask/(1−p)`, `mask ~ Bernoulli(1−p)` from the seeded stream `"dropout"`; eval: `x` |
//! | `Flatten` | `[B, ...] → [B, Π ...]` |
//! | activations | `ReLU`, `Sigmoid`, `Tanh`, `LeakyReLU(slope)`, `LogSoftmax` over dim 1 |
//!
//! ```
//! use nnlab::models::{init::ParamInit, layers::{Layer, Linear}};
//! let mut init = ParamInit::new(&candle_core::Device::Cpu, candle_core::DType::F32);
//! let fc = Layer::Linear(Linear::new(784, 10, &mut init).unwrap());
//! assert_eq!(fc.out_shape(&[784]).unwrap(), vec![10]);
//! assert_eq!(fc.num_params(), 7850);
//! ```

use super::init::ParamInit;
use crate::ops::{self, Conv2dParams};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::ops::LinearLayout;

/// A fully connected layer.
pub struct Linear {
    pub weight: Var,
    pub bias: Option<Var>,
    pub in_features: usize,
    pub out_features: usize,
    pub layout: LinearLayout,
}

impl Linear {
    /// torch's `nn.Linear(in, out)` with its default init `U(±1/√in)`.
    pub fn new(in_features: usize, out_features: usize, init: &mut ParamInit) -> Result<Linear> {
        let weight = init.kaiming_uniform(&[out_features, in_features], in_features)?;
        let bias = Some(init.kaiming_uniform(&[out_features], in_features)?);
        Ok(Linear {
            weight,
            bias,
            in_features,
            out_features,
            layout: LinearLayout::OutIn,
        })
    }

    /// hw2's `FullyConnectedLayer(in, out)`: `W = randn(in, out)·√(2/in)`, `b = 0`.
    pub fn in_out(in_features: usize, out_features: usize, init: &mut ParamInit) -> Result<Linear> {
        let weight = init.kaiming_normal(&[in_features, out_features], in_features)?;
        let bias = Some(init.constant(&[out_features], 0.0)?);
        Ok(Linear {
            weight,
            bias,
            in_features,
            out_features,
            layout: LinearLayout::InOut,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::linear(
            x,
            self.weight.as_tensor(),
            self.bias.as_ref().map(|b| b.as_tensor()),
            self.layout,
        )
    }
}

/// A 2-D convolution, `weight: [out, in, k, k]`, `bias: [out]`.
pub struct Conv2d {
    pub weight: Var,
    pub bias: Option<Var>,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Conv2d {
    /// torch's `nn.Conv2d(in, out, kernel, stride, padding)` with its default
    /// init `U(±1/√(in·k·k))`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        init: &mut ParamInit,
    ) -> Result<Conv2d> {
        let fan_in = in_channels * kernel * kernel;
        let weight = init.kaiming_uniform(&[out_channels, in_channels, kernel, kernel], fan_in)?;
        let bias = Some(init.kaiming_uniform(&[out_channels], fan_in)?);
        Ok(Conv2d {
            weight,
            bias,
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
        })
    }

    /// Its stride and padding as the ops take them (no dilation).
    pub fn params(&self) -> Conv2dParams {
        Conv2dParams {
            stride: self.stride,
            padding: self.padding,
            dilation: 1,
        }
    }
}

/// Max or average pooling with a square window, no padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    pub kernel: usize,
    pub stride: usize,
}

/// BatchNorm1d (`[B, C]`) or BatchNorm2d (`[B, C, H, W]`).
pub struct BatchNorm {
    pub weight: Var,
    pub bias: Var,
    pub running_mean: Var,
    pub running_var: Var,
    num_batches_tracked: AtomicU64,
    pub num_features: usize,
    pub eps: f64,
    pub momentum: f64,
    /// 1 for BatchNorm1d, 2 for BatchNorm2d.
    pub spatial_dims: usize,
}

impl BatchNorm {
    /// torch's defaults: `eps = 1e-5`, `momentum = 0.1`, weight 1, bias 0,
    /// running mean 0, running var 1.
    pub fn new(
        num_features: usize,
        spatial_dims: usize,
        init: &mut ParamInit,
    ) -> Result<BatchNorm> {
        Ok(BatchNorm {
            weight: init.constant(&[num_features], 1.0)?,
            bias: init.constant(&[num_features], 0.0)?,
            running_mean: init.constant(&[num_features], 0.0)?,
            running_var: init.constant(&[num_features], 1.0)?,
            num_batches_tracked: AtomicU64::new(0),
            num_features,
            eps: 1e-5,
            momentum: 0.1,
            spatial_dims,
        })
    }

    /// `r ← (1−m)·r + m·s` for the running mean and variance, from the batch
    /// mean and biased variance (`[C]` tensors) of `n` values per channel;
    /// the variance is made unbiased, as torch does.
    fn update_running(&self, mean: &Tensor, var: &Tensor, n: usize) -> Result<()> {
        let m = self.momentum;
        let unbiased = n as f64 / (n as f64 - 1.0);
        let blend = |r: &Var, s: Tensor| -> Result<()> {
            let s = s.detach().flatten_all()?.to_dtype(r.dtype())?;
            Ok(r.set(&((r.as_tensor() * (1.0 - m))? + (s * m)?)?)?)
        };
        blend(&self.running_mean, mean.clone())?;
        blend(&self.running_var, (var * unbiased)?)?;
        self.num_batches_tracked.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// How many training batches updated the running statistics.
    pub fn num_batches_tracked(&self) -> u64 {
        self.num_batches_tracked.load(Ordering::SeqCst)
    }

    pub fn set_num_batches_tracked(&self, n: u64) {
        self.num_batches_tracked.store(n, Ordering::SeqCst)
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let c = self.num_features;
        let (dims, bshape): (Vec<usize>, Vec<usize>) = match (self.spatial_dims, x.rank()) {
            (1, 2) => (vec![0], vec![1, c]),
            (2, 4) => (vec![0, 2, 3], vec![1, c, 1, 1]),
            _ => {
                return Err(Error::shape(
                    format!("BatchNorm{}d", self.spatial_dims),
                    format!(
                        "input {:?}, expected {}",
                        x.dims(),
                        if self.spatial_dims == 1 {
                            "[B, C]"
                        } else {
                            "[B, C, H, W]"
                        }
                    ),
                ))
            }
        };
        if x.dims()[1] != c {
            return Err(Error::shape(
                format!("BatchNorm{}d({c})", self.spatial_dims),
                format!(
                    "input {:?} has {} channels, expected {c}",
                    x.dims(),
                    x.dims()[1]
                ),
            ));
        }
        let (mean, var) = if train {
            let n: usize = dims.iter().map(|&d| x.dims()[d]).product();
            if n < 2 {
                return Err(Error::shape(
                    format!("BatchNorm{}d({c})", self.spatial_dims),
                    format!(
                        "expected more than 1 value per channel when training, got input {:?}",
                        x.dims()
                    ),
                ));
            }
            if x.device().is_cpu() {
                // one fused op (ops::batch_norm); the statistics come back for the running averages
                let (y, mean, var) = ops::batch_norm_train(
                    x,
                    self.weight.as_tensor(),
                    self.bias.as_tensor(),
                    self.eps,
                )?;
                let dev = x.device();
                self.update_running(&Tensor::new(mean, dev)?, &Tensor::new(var, dev)?, n)?;
                return Ok(y);
            }
            let mean = x.mean_keepdim(dims.as_slice())?;
            let var = x
                .broadcast_sub(&mean)?
                .sqr()?
                .mean_keepdim(dims.as_slice())?;
            self.update_running(&mean, &var, n)?;
            (mean, var)
        } else {
            (
                self.running_mean.as_tensor().reshape(bshape.as_slice())?,
                self.running_var.as_tensor().reshape(bshape.as_slice())?,
            )
        };
        let xhat = x
            .broadcast_sub(&mean)?
            .broadcast_div(&(var + self.eps)?.sqrt()?)?;
        let w = self.weight.as_tensor().reshape(bshape.as_slice())?;
        let b = self.bias.as_tensor().reshape(bshape.as_slice())?;
        Ok(xhat.broadcast_mul(&w)?.broadcast_add(&b)?)
    }
}

/// Layer normalisation over the last dimension (`nn.LayerNorm(size)`).
pub struct LayerNorm {
    pub weight: Var,
    pub bias: Var,
    pub size: usize,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(size: usize, init: &mut ParamInit) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: init.constant(&[size], 1.0)?,
            bias: init.constant(&[size], 0.0)?,
            size,
            eps: 1e-5,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let d = x.rank() - 1;
        let mean = x.mean_keepdim(d)?;
        let centered = x.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(d)?;
        let xhat = centered.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        Ok(xhat
            .broadcast_mul(self.weight.as_tensor())?
            .broadcast_add(self.bias.as_tensor())?)
    }
}

/// One layer of a [`super::model::Model`].
pub enum Layer {
    Linear(Linear),
    Conv2d(Conv2d),
    MaxPool2d(Pool2d),
    AvgPool2d(Pool2d),
    /// Output `(height, width)`.
    AdaptiveAvgPool2d((usize, usize)),
    BatchNorm1d(BatchNorm),
    BatchNorm2d(BatchNorm),
    LayerNorm(LayerNorm),
    /// Drop probability `p`.
    Dropout(f64),
    Flatten,
    ReLU,
    Sigmoid,
    Tanh,
    /// Negative slope.
    LeakyReLU(f64),
    /// `log_softmax` over dim 1.
    LogSoftmax,
}

/// Dropout in train mode: `x·mask/(1−p)`, the mask drawn on the CPU from
/// `crate::device::next_rng("dropout")` (reproducible after `seed`).
pub fn dropout(x: &Tensor, p: f64) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    if p >= 1.0 {
        return Ok(x.zeros_like()?);
    }
    let mut rng = crate::device::next_rng("dropout");
    let n = x.elem_count();
    let scale = 1.0 / (1.0 - p);
    let mask: Vec<f32> = (0..n)
        .map(|_| {
            if rng.random::<f64>() < p {
                0.0
            } else {
                scale as f32
            }
        })
        .collect();
    let mask = Tensor::from_vec(mask, x.dims(), &Device::Cpu)?
        .to_dtype(x.dtype())?
        .to_device(x.device())?;
    Ok((x * mask)?)
}

fn per_sample_dims(shape: &[usize]) -> String {
    format!("{shape:?}")
}

impl Layer {
    /// torch's class name: `Linear`, `Conv2d`, `BatchNorm1d`, ...
    pub fn type_name(&self) -> &'static str {
        match self {
            Layer::Linear(_) => "Linear",
            Layer::Conv2d(_) => "Conv2d",
            Layer::MaxPool2d(_) => "MaxPool2d",
            Layer::AvgPool2d(_) => "AvgPool2d",
            Layer::AdaptiveAvgPool2d(_) => "AdaptiveAvgPool2d",
            Layer::BatchNorm1d(_) => "BatchNorm1d",
            Layer::BatchNorm2d(_) => "BatchNorm2d",
            Layer::LayerNorm(_) => "LayerNorm",
            Layer::Dropout(_) => "Dropout",
            Layer::Flatten => "Flatten",
            Layer::ReLU => "ReLU",
            Layer::Sigmoid => "Sigmoid",
            Layer::Tanh => "Tanh",
            Layer::LeakyReLU(_) => "LeakyReLU",
            Layer::LogSoftmax => "LogSoftmax",
        }
    }

    /// torch's `repr`: `Linear(in_features=784, out_features=10, bias=True)`.
    pub fn repr(&self) -> String {
        let b = |x: bool| if x { "True" } else { "False" };
        match self {
            Layer::Linear(l) => {
                format!(
                    "Linear(in_features={}, out_features={}, bias={})",
                    l.in_features,
                    l.out_features,
                    b(l.bias.is_some())
                )
            }
            Layer::Conv2d(c) => {
                let mut s = format!(
                    "Conv2d({}, {}, kernel_size=({k}, {k}), stride=({s}, {s})",
                    c.in_channels,
                    c.out_channels,
                    k = c.kernel,
                    s = c.stride
                );
                if c.padding > 0 {
                    s += &format!(", padding=({p}, {p})", p = c.padding);
                }
                s + ")"
            }
            Layer::MaxPool2d(p) => {
                format!(
                    "MaxPool2d(kernel_size={}, stride={}, padding=0, dilation=1, ceil_mode=False)",
                    p.kernel, p.stride
                )
            }
            Layer::AvgPool2d(p) => format!(
                "AvgPool2d(kernel_size={}, stride={}, padding=0)",
                p.kernel, p.stride
            ),
            Layer::AdaptiveAvgPool2d((h, w)) => {
                format!("AdaptiveAvgPool2d(output_size=({h}, {w}))")
            }
            Layer::BatchNorm1d(n) | Layer::BatchNorm2d(n) => format!(
                "{}({}, eps={:e}, momentum={}, affine=True, track_running_stats=True)",
                self.type_name(),
                n.num_features,
                n.eps,
                n.momentum
            ),
            Layer::LayerNorm(n) => format!(
                "LayerNorm(({},), eps={:e}, elementwise_affine=True)",
                n.size, n.eps
            ),
            Layer::Dropout(p) => format!("Dropout(p={p}, inplace=False)"),
            Layer::Flatten => "Flatten(start_dim=1, end_dim=-1)".into(),
            Layer::LeakyReLU(s) => format!("LeakyReLU(negative_slope={s})"),
            Layer::LogSoftmax => "LogSoftmax(dim=1)".into(),
            _ => format!("{}()", self.type_name()),
        }
    }

    /// Trainable parameters with their local torch names, in torch order.
    pub fn params(&self) -> Vec<(&'static str, Var)> {
        let mut v = Vec::new();
        match self {
            Layer::Linear(l) => {
                let (wn, bn) = match l.layout {
                    LinearLayout::OutIn => ("weight", "bias"),
                    LinearLayout::InOut => ("W", "b"),
                };
                v.push((wn, l.weight.clone()));
                if let Some(b) = &l.bias {
                    v.push((bn, b.clone()));
                }
            }
            Layer::Conv2d(c) => {
                v.push(("weight", c.weight.clone()));
                if let Some(b) = &c.bias {
                    v.push(("bias", b.clone()));
                }
            }
            Layer::BatchNorm1d(n) | Layer::BatchNorm2d(n) => {
                v.push(("weight", n.weight.clone()));
                v.push(("bias", n.bias.clone()));
            }
            Layer::LayerNorm(n) => {
                v.push(("weight", n.weight.clone()));
                v.push(("bias", n.bias.clone()));
            }
            _ => {}
        }
        v
    }

    /// The BatchNorm of this layer, if it is one.
    pub fn batch_norm(&self) -> Option<&BatchNorm> {
        match self {
            Layer::BatchNorm1d(n) | Layer::BatchNorm2d(n) => Some(n),
            _ => None,
        }
    }

    /// Number of trainable scalars.
    pub fn num_params(&self) -> usize {
        self.params().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The per-sample output shape for a per-sample input shape (no batch
    /// dimension), or `Error::shape` naming the layer and both shapes.
    pub fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let bad = |what: String| {
            Err(Error::shape(
                self.repr(),
                format!("input {}: {what}", per_sample_dims(input)),
            ))
        };
        match self {
            Layer::Linear(l) => {
                if input.len() != 1 || input[0] != l.in_features {
                    return bad(format!("expected [{}] (flatten first?)", l.in_features));
                }
                Ok(vec![l.out_features])
            }
            Layer::Conv2d(c) => {
                if input.len() != 3 || input[0] != c.in_channels {
                    return bad(format!("expected [{}, H, W]", c.in_channels));
                }
                let (h, w) = (input[1] + 2 * c.padding, input[2] + 2 * c.padding);
                if h < c.kernel || w < c.kernel {
                    return bad(format!(
                        "kernel {} larger than the padded input {h}×{w}",
                        c.kernel
                    ));
                }
                Ok(vec![
                    c.out_channels,
                    (h - c.kernel) / c.stride + 1,
                    (w - c.kernel) / c.stride + 1,
                ])
            }
            Layer::MaxPool2d(p) | Layer::AvgPool2d(p) => {
                if input.len() != 3 {
                    return bad("expected [C, H, W]".into());
                }
                if input[1] < p.kernel || input[2] < p.kernel {
                    return bad(format!(
                        "kernel {} larger than the input {}×{}",
                        p.kernel, input[1], input[2]
                    ));
                }
                Ok(vec![
                    input[0],
                    (input[1] - p.kernel) / p.stride + 1,
                    (input[2] - p.kernel) / p.stride + 1,
                ])
            }
            Layer::AdaptiveAvgPool2d((h, w)) => {
                if input.len() != 3 {
                    return bad("expected [C, H, W]".into());
                }
                Ok(vec![input[0], *h, *w])
            }
            Layer::BatchNorm1d(n) => {
                if input.len() != 1 || input[0] != n.num_features {
                    return bad(format!("expected [{}]", n.num_features));
                }
                Ok(input.to_vec())
            }
            Layer::BatchNorm2d(n) => {
                if input.len() != 3 || input[0] != n.num_features {
                    return bad(format!("expected [{}, H, W]", n.num_features));
                }
                Ok(input.to_vec())
            }
            Layer::LayerNorm(n) => {
                if input.last() != Some(&n.size) {
                    return bad(format!("expected the last dimension {}", n.size));
                }
                Ok(input.to_vec())
            }
            Layer::Flatten => Ok(vec![input.iter().product()]),
            Layer::LogSoftmax => {
                if input.is_empty() {
                    return bad("expected at least [N]".into());
                }
                Ok(input.to_vec())
            }
            _ => Ok(input.to_vec()),
        }
    }

    /// Applies the layer to a batch `x: [B, ...]`; `train` switches BatchNorm
    /// and Dropout.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(match self {
            Layer::Linear(l) => l.forward(x)?,
            Layer::Conv2d(c) => ops::conv2d(
                x,
                c.weight.as_tensor(),
                c.bias.as_ref().map(|b| b.as_tensor()),
                c.params(),
            )?,
            Layer::MaxPool2d(p) => ops::max_pool2d(x, p.kernel, p.stride)?,
            Layer::AvgPool2d(p) => ops::avg_pool2d(x, p.kernel, p.stride)?,
            Layer::AdaptiveAvgPool2d(out) => ops::adaptive_avg_pool2d(x, *out)?,
            Layer::BatchNorm1d(n) | Layer::BatchNorm2d(n) => n.forward_t(x, train)?,
            Layer::LayerNorm(n) => n.forward(x)?,
            Layer::Dropout(p) => {
                if train {
                    dropout(x, *p)?
                } else {
                    x.clone()
                }
            }
            Layer::Flatten => x.flatten_from(1)?,
            Layer::ReLU => ops::relu(x)?,
            Layer::Sigmoid => candle_nn::ops::sigmoid(x)?,
            Layer::Tanh => x.tanh()?,
            Layer::LeakyReLU(s) => candle_nn::ops::leaky_relu(x, *s)?,
            Layer::LogSoftmax => candle_nn::ops::log_softmax(x, 1)?,
        })
    }

    /// `relu(layer(x))` in one op, for a Linear or Conv2d followed by a
    /// ReLU (the model's forward fuses such pairs); `None` for other layers.
    pub fn forward_relu(&self, x: &Tensor) -> Option<Result<Tensor>> {
        match self {
            Layer::Linear(l) => Some(ops::linear_relu(
                x,
                l.weight.as_tensor(),
                l.bias.as_ref().map(|b| b.as_tensor()),
                l.layout,
            )),
            Layer::Conv2d(c) => Some(ops::conv2d_relu(
                x,
                c.weight.as_tensor(),
                c.bias.as_ref().map(|b| b.as_tensor()),
                c.params(),
            )),
            _ => None,
        }
    }

    /// `relu(max_pool2d(layer(x)))` (or without the ReLU) in one op, for a
    /// Conv2d followed by a MaxPool2d and maybe a ReLU (the model's forward
    /// fuses them); `None` for other layers.
    pub fn forward_max_pool(
        &self,
        x: &Tensor,
        pool: &Pool2d,
        relu: bool,
    ) -> Option<Result<Tensor>> {
        match self {
            Layer::Conv2d(c) => Some(ops::conv2d_max_pool(
                x,
                c.weight.as_tensor(),
                c.bias.as_ref().map(|b| b.as_tensor()),
                c.params(),
                (pool.kernel, pool.stride),
                relu,
            )),
            _ => None,
        }
    }

    /// The dtype of the parameters, if any.
    pub fn dtype(&self) -> Option<DType> {
        self.params().first().map(|(_, v)| v.dtype())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn init() -> ParamInit {
        ParamInit::with_rng(
            &Device::Cpu,
            DType::F64,
            rand::rngs::StdRng::seed_from_u64(3),
        )
    }

    #[test]
    fn shapes_and_errors() -> crate::TestResult {
        let mut i = init();
        let conv = Layer::Conv2d(Conv2d::new(3, 8, 5, 1, 0, &mut i)?);
        assert_eq!(conv.out_shape(&[3, 32, 32])?, vec![8, 28, 28]);
        let e = conv.out_shape(&[3, 4, 4]).unwrap_err().to_string();
        assert!(
            e.contains("Conv2d(3, 8") && e.contains("[3, 4, 4]") && e.contains("kernel 5"),
            "{e}"
        );
        let e = conv.out_shape(&[1, 32, 32]).unwrap_err().to_string();
        assert!(e.contains("expected [3, H, W]"), "{e}");
        let pool = Layer::MaxPool2d(Pool2d {
            kernel: 3,
            stride: 3,
        });
        assert_eq!(pool.out_shape(&[32, 125, 125])?, vec![32, 41, 41]);
        let fc = Layer::Linear(Linear::new(10, 4, &mut i)?);
        let e = fc.out_shape(&[2, 5]).unwrap_err().to_string();
        assert!(e.contains("flatten first"), "{e}");
        Ok(())
    }

    #[test]
    fn dropout_eval_identity_train_scaled() -> crate::TestResult {
        crate::device::seed(5);
        let x = Tensor::ones((100, 100), DType::F32, &Device::Cpu)?;
        let d = Layer::Dropout(0.3);
        let y = d.forward_t(&x, false)?;
        assert_eq!(y.to_vec2::<f32>()?, x.to_vec2::<f32>()?);
        let y: Vec<f32> = d.forward_t(&x, true)?.flatten_all()?.to_vec1()?;
        let zeros = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
        assert!((zeros - 0.3).abs() < 0.02, "zeroed fraction {zeros}");
        let kept: Vec<&f32> = y.iter().filter(|&&v| v != 0.0).collect();
        assert!(kept.iter().all(|&&v| (v - 1.0 / 0.7).abs() < 1e-6));
        Ok(())
    }

    #[test]
    fn layer_norm_normalises_rows() -> crate::TestResult {
        let mut i = init();
        let ln = Layer::LayerNorm(LayerNorm::new(4, &mut i)?);
        let x = Tensor::new(&[[1f64, 2., 3., 4.], [2., 2., 2., 6.]], &Device::Cpu)?;
        let y = ln.forward_t(&x, true)?.to_vec2::<f64>()?;
        // torch.nn.LayerNorm(4)(x) row 0: [-1.3416, -0.4472, 0.4472, 1.3416]
        let want = [-1.3416355, -0.4472118, 0.4472118, 1.3416355];
        for (a, b) in y[0].iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        Ok(())
    }
}
