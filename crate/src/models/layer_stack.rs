//! The builder vocabulary [`Mlp`](super::mlp::Mlp) and [`Cnn`](super::cnn::Cnn)
//! share: the layers that act on features — `linear`, the activations,
//! `dropout`, `batch_norm`, `layer_norm` — as one enum ([`LayerSpec`], also
//! hw1's JSON layer config) and one trait ([`LayerStack`]) whose default
//! methods append them. Each builder implements only `layer`; `Cnn` adds its
//! convolutions, pools, `flatten` and `log_softmax`.
//!
//! ```
//! use nnlab::models::{cnn::Cnn, layer_stack::LayerStack, mlp::Mlp};
//! let mlp = Mlp::new(64, 10).linear(32).relu().dropout(0.1).build().unwrap();
//! let cnn = Cnn::new(&[64]).linear(32).relu().dropout(0.1).linear(10).build("same").unwrap();
//! assert_eq!(mlp.num_params(), cnn.num_params());
//! ```

use serde::{Deserialize, Serialize};

/// One entry of `layers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerSpec {
    Linear { size: usize },
    Relu,
    Sigmoid,
    Tanh,
    LeakyRelu { slope: f64 },
    Dropout { rate: f64 },
    BatchNorm,
    LayerNorm,
}

impl LayerSpec {
    /// The layer's name in errors and in hw1's config (`linear`, `relu`, …).
    pub fn label(&self) -> &'static str {
        match self {
            LayerSpec::Linear { .. } => "linear",
            LayerSpec::Relu => "relu",
            LayerSpec::Sigmoid => "sigmoid",
            LayerSpec::Tanh => "tanh",
            LayerSpec::LeakyRelu { .. } => "leaky_relu",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::BatchNorm => "batch_norm",
            LayerSpec::LayerNorm => "layer_norm",
        }
    }
}

/// The shared builder methods: each appends one [`LayerSpec`].
pub trait LayerStack: Sized {
    /// Appends `spec`.
    fn layer(self, spec: LayerSpec) -> Self;

    /// `nn.Linear(prev, size)`; the input width is inferred.
    fn linear(self, size: usize) -> Self {
        self.layer(LayerSpec::Linear { size })
    }
    fn relu(self) -> Self {
        self.layer(LayerSpec::Relu)
    }
    fn sigmoid(self) -> Self {
        self.layer(LayerSpec::Sigmoid)
    }
    fn tanh(self) -> Self {
        self.layer(LayerSpec::Tanh)
    }
    /// `nn.LeakyReLU(slope)`.
    fn leaky_relu(self, slope: f64) -> Self {
        self.layer(LayerSpec::LeakyRelu { slope })
    }
    /// `nn.Dropout(rate)`, `0 ≤ rate < 1`.
    fn dropout(self, rate: f64) -> Self {
        self.layer(LayerSpec::Dropout { rate })
    }
    /// BatchNorm of the current features: 1d on `[N]`, 2d on `[C, H, W]` (Cnn).
    fn batch_norm(self) -> Self {
        self.layer(LayerSpec::BatchNorm)
    }
    /// LayerNorm over the last dimension.
    fn layer_norm(self) -> Self {
        self.layer(LayerSpec::LayerNorm)
    }
}
