//! A layer-spec builder for convolutional (and any sequential) networks, with
//! the shapes inferred from the input: no `in_channels`/`in_features` to
//! repeat, and a mismatch is an error naming the layer before anything runs.
//!
//! Shape rules (per sample): `Conv2d`: `[C,H,W] → [O, (H+2p−k)/s+1, ...]`;
//! pooling: `[C, (H−k)/s+1, ...]`; `Flatten`: `[C·H·W]`; `Linear` needs a
//! flat input. Modules are named `layers.0`, `layers.1`, ... (an
//! `nn.Sequential` called `layers`).
//!
//! ```
//! use nnlab::models::cnn::Cnn;
//! use nnlab::models::layer_stack::LayerStack;
//! let m = Cnn::new(&[1, 28, 28])
//!     .conv2d(16, 3, 1, 1).relu().max_pool(2, 2)
//!     .flatten().linear(10)
//!     .build("tiny").unwrap();
//! assert_eq!(m.num_params(), 16 * 9 + 16 + 16 * 14 * 14 * 10 + 10);
//! let e = nnlab::models::cnn::Cnn::new(&[1, 28, 28]).conv2d(8, 3, 1, 0).linear(10).build("bad").unwrap_err();
//! assert!(e.to_string().contains("layer 1 (linear)"));
//! ```

use super::init::ParamInit;
use super::layer_stack::{LayerSpec, LayerStack};
use super::layers::{BatchNorm, Conv2d, Layer, LayerNorm, Linear, Pool2d};
use super::model::{Entry, Model};
use crate::{Error, Result};
use candle_core::{DType, Device};

/// One step of the builder.
#[derive(Clone, Debug, PartialEq)]
pub enum CnnSpec {
    Conv2d {
        out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    MaxPool {
        kernel: usize,
        stride: usize,
    },
    AvgPool {
        kernel: usize,
        stride: usize,
    },
    AdaptiveAvgPool {
        out: (usize, usize),
    },
    Flatten,
    LogSoftmax,
    /// A layer of the shared vocabulary (linear, activations, dropout, norms).
    Layer(LayerSpec),
}

impl CnnSpec {
    fn label(&self) -> &'static str {
        match self {
            CnnSpec::Conv2d { .. } => "conv2d",
            CnnSpec::MaxPool { .. } => "max_pool",
            CnnSpec::AvgPool { .. } => "avg_pool",
            CnnSpec::AdaptiveAvgPool { .. } => "adaptive_avg_pool",
            CnnSpec::Flatten => "flatten",
            CnnSpec::LogSoftmax => "log_softmax",
            CnnSpec::Layer(l) => l.label(),
        }
    }
}

/// The builder: see the module doc.
#[derive(Clone, Debug)]
pub struct Cnn {
    input_shape: Vec<usize>,
    specs: Vec<CnnSpec>,
    device: Option<Device>,
    dtype: DType,
}

impl Cnn {
    /// Starts from a per-sample input shape, `[C, H, W]` (or `[N]` for an MLP).
    pub fn new(input_shape: &[usize]) -> Cnn {
        Cnn {
            input_shape: input_shape.to_vec(),
            specs: Vec::new(),
            device: None,
            dtype: DType::F32,
        }
    }
    fn push(mut self, s: CnnSpec) -> Cnn {
        self.specs.push(s);
        self
    }
    /// `nn.Conv2d(C, out, kernel, stride, padding)`.
    pub fn conv2d(self, out: usize, kernel: usize, stride: usize, padding: usize) -> Cnn {
        self.push(CnnSpec::Conv2d {
            out,
            kernel,
            stride,
            padding,
        })
    }
    /// `nn.MaxPool2d(kernel, stride)`.
    pub fn max_pool(self, kernel: usize, stride: usize) -> Cnn {
        self.push(CnnSpec::MaxPool { kernel, stride })
    }
    /// `nn.AvgPool2d(kernel, stride)`.
    pub fn avg_pool(self, kernel: usize, stride: usize) -> Cnn {
        self.push(CnnSpec::AvgPool { kernel, stride })
    }
    /// `nn.AdaptiveAvgPool2d((h, w))`.
    pub fn adaptive_avg_pool(self, out_hw: (usize, usize)) -> Cnn {
        self.push(CnnSpec::AdaptiveAvgPool { out: out_hw })
    }
    /// The same as [`LayerStack::batch_norm`] (the name says what a conv input gets).
    pub fn batch_norm2d(self) -> Cnn {
        self.layer(LayerSpec::BatchNorm)
    }
    pub fn flatten(self) -> Cnn {
        self.push(CnnSpec::Flatten)
    }
    /// Ends with `log_softmax(dim=1)`: the model's output becomes LogProbs.
    pub fn log_softmax(self) -> Cnn {
        self.push(CnnSpec::LogSoftmax)
    }
    pub fn device(mut self, d: &Device) -> Cnn {
        self.device = Some(d.clone());
        self
    }
    pub fn dtype(mut self, dtype: DType) -> Cnn {
        self.dtype = dtype;
        self
    }
    /// The steps so far.
    pub fn specs(&self) -> &[CnnSpec] {
        &self.specs
    }

    /// Creates the layers, checking every shape on the way.
    pub fn build(self, name: &str) -> Result<Model> {
        let device = match &self.device {
            Some(d) => d.clone(),
            None => crate::device()?,
        };
        if self.input_shape.is_empty() || self.input_shape.contains(&0) {
            return Err(Error::config(
                "input_shape",
                format!(
                    "{:?}, expected [C, H, W] of positive sizes",
                    self.input_shape
                ),
            ));
        }
        let mut init = ParamInit::new(&device, self.dtype);
        let mut shape = self.input_shape.clone();
        let mut entries = Vec::new();
        for (i, spec) in self.specs.iter().enumerate() {
            let at = || format!("{name}: layer {i} ({})", spec.label());
            let need = |cond: bool, what: &str| -> Result<()> {
                if cond {
                    Ok(())
                } else {
                    Err(Error::shape(
                        at(),
                        format!("input {shape:?}, expected {what}"),
                    ))
                }
            };
            let positive = |v: usize, field: &str| -> Result<()> {
                if v == 0 {
                    Err(Error::config(
                        format!("{name}: layer {i} ({}).{field}", spec.label()),
                        "0, expected a positive integer",
                    ))
                } else {
                    Ok(())
                }
            };
            let layer = match spec {
                CnnSpec::Conv2d {
                    out,
                    kernel,
                    stride,
                    padding,
                } => {
                    need(shape.len() == 3, "[C, H, W] for a convolution")?;
                    positive(*out, "out")?;
                    positive(*kernel, "kernel")?;
                    positive(*stride, "stride")?;
                    Layer::Conv2d(Conv2d::new(
                        shape[0], *out, *kernel, *stride, *padding, &mut init,
                    )?)
                }
                CnnSpec::MaxPool { kernel, stride } | CnnSpec::AvgPool { kernel, stride } => {
                    positive(*kernel, "kernel")?;
                    positive(*stride, "stride")?;
                    let p = Pool2d {
                        kernel: *kernel,
                        stride: *stride,
                    };
                    if matches!(spec, CnnSpec::MaxPool { .. }) {
                        Layer::MaxPool2d(p)
                    } else {
                        Layer::AvgPool2d(p)
                    }
                }
                CnnSpec::AdaptiveAvgPool { out } => {
                    positive(out.0, "out.0")?;
                    positive(out.1, "out.1")?;
                    Layer::AdaptiveAvgPool2d(*out)
                }
                CnnSpec::Flatten => Layer::Flatten,
                CnnSpec::Layer(LayerSpec::BatchNorm) => match shape.len() {
                    3 => Layer::BatchNorm2d(BatchNorm::new(shape[0], 2, &mut init)?),
                    1 => Layer::BatchNorm1d(BatchNorm::new(shape[0], 1, &mut init)?),
                    _ => {
                        return Err(Error::shape(
                            at(),
                            format!("input {shape:?}, expected [C, H, W] or [N]"),
                        ))
                    }
                },
                CnnSpec::Layer(LayerSpec::LayerNorm) => {
                    Layer::LayerNorm(LayerNorm::new(shape[shape.len() - 1], &mut init)?)
                }
                CnnSpec::Layer(LayerSpec::Dropout { rate }) => {
                    if !(*rate >= 0.0 && *rate < 1.0) {
                        return Err(Error::config(
                            format!("{name}: layer {i} (dropout).p"),
                            format!("{rate}, expected a probability 0 ≤ p < 1"),
                        ));
                    }
                    Layer::Dropout(*rate)
                }
                CnnSpec::Layer(LayerSpec::Linear { size }) => {
                    need(
                        shape.len() == 1,
                        "a flat [N] input: add .flatten() before .linear()",
                    )?;
                    positive(*size, "out")?;
                    Layer::Linear(Linear::new(shape[0], *size, &mut init)?)
                }
                CnnSpec::Layer(LayerSpec::Relu) => Layer::ReLU,
                CnnSpec::Layer(LayerSpec::Sigmoid) => Layer::Sigmoid,
                CnnSpec::Layer(LayerSpec::Tanh) => Layer::Tanh,
                CnnSpec::Layer(LayerSpec::LeakyRelu { slope }) => Layer::LeakyReLU(*slope),
                CnnSpec::LogSoftmax => Layer::LogSoftmax,
            };
            shape = layer.out_shape(&shape).map_err(|e| match e {
                Error::Shape { at: l, what } => Error::shape(at(), format!("{l}: {what}")),
                other => other,
            })?;
            entries.push(Entry::module(format!("layers.{i}"), layer));
        }
        Model::from_parts(
            name,
            name,
            self.input_shape.clone(),
            false,
            entries,
            None,
            &device,
            self.dtype,
        )
    }
}

impl LayerStack for Cnn {
    fn layer(self, spec: LayerSpec) -> Cnn {
        self.push(CnnSpec::Layer(spec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(c: Cnn) -> Cnn {
        c.device(&Device::Cpu)
    }

    #[test]
    fn infers_shapes_like_basic_cnn() -> crate::TestResult {
        let m = cpu(Cnn::new(&[1, 28, 28]))
            .conv2d(16, 3, 1, 1)
            .relu()
            .max_pool(2, 2)
            .conv2d(32, 3, 1, 1)
            .relu()
            .max_pool(2, 2)
            .flatten()
            .linear(128)
            .relu()
            .linear(10)
            .build("BasicCNN")?;
        // torch: sum(p.numel() for p in BasicCNN().parameters()) == 206922
        assert_eq!(m.num_params(), 206_922);
        assert_eq!(m.out_shapes()?[6], vec![32 * 7 * 7]);
        let names: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[0], "layers.0.weight");
        assert_eq!(names[3], "layers.3.bias");
        assert_eq!(names[4], "layers.7.weight");
        Ok(())
    }

    #[test]
    fn shape_errors_name_the_layer() {
        let e = cpu(Cnn::new(&[1, 8, 8]))
            .conv2d(4, 9, 1, 0)
            .build("k")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("k: layer 0 (conv2d)") && e.contains("[1, 8, 8]") && e.contains("kernel 9"),
            "{e}"
        );
        let e = cpu(Cnn::new(&[1, 8, 8]))
            .conv2d(4, 3, 1, 0)
            .linear(10)
            .build("l")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("layer 1 (linear)") && e.contains("[4, 6, 6]") && e.contains(".flatten()"),
            "{e}"
        );
        let e = cpu(Cnn::new(&[1, 8, 8]))
            .flatten()
            .conv2d(4, 3, 1, 0)
            .build("f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer 1 (conv2d)") && e.contains("[64]"), "{e}");
        let e = cpu(Cnn::new(&[1, 4, 4]))
            .max_pool(5, 5)
            .build("p")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("layer 0 (max_pool)") && e.contains("kernel 5"),
            "{e}"
        );
        let e = cpu(Cnn::new(&[1, 4, 4]))
            .conv2d(0, 3, 1, 0)
            .build("z")
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer 0 (conv2d).out: 0"), "{e}");
    }

    #[test]
    fn adaptive_pool_and_log_softmax() -> crate::TestResult {
        let m = cpu(Cnn::new(&[3, 17, 23]))
            .conv2d(8, 3, 2, 1)
            .batch_norm2d()
            .adaptive_avg_pool((1, 1))
            .flatten()
            .linear(4)
            .log_softmax()
            .build("gap")?;
        assert_eq!(m.output(), crate::models::model::Output::LogProbs);
        let x = candle_core::Tensor::ones((2, 3, 17, 23), DType::F32, &Device::Cpu)?;
        let y = m.forward(&x)?;
        assert_eq!(y.dims(), &[2, 4]);
        let p: Vec<f32> = y.exp()?.sum(1)?.to_vec1()?;
        assert!(p.iter().all(|s| (s - 1.0).abs() < 1e-5));
        Ok(())
    }
}
