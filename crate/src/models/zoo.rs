//! Every architecture of the course, by name, with the torch module names of
//! the original classes (so `named_params()` reads like their `state_dict()`).
//!
//! | name | from | input |
//! | --- | --- | --- |
//! | `hw1/1_layer` … `hw1/7_layers`, `hw1/dropout_bn` | hw1's JSON configs ([`hw1_config`]) | `[784]` |
//! | `hw2/net`, `hw2/net_bn` | hw2's `NeuralNetwork(128, use_bn)` ([`hw2_net`]) | `[3072]` |
//! | `hw3/SimpleMLP`, `hw3/MediumMLP`, `hw3/DeepMLP`, `hw3/BasicCNN`, `hw3/ComplexCNN` | hw3 | `[1, 28, 28]` |
//! | `hw3/CIFAR10CNN` | hw3 | `[3, 32, 32]` |
//! | `hw4/MLPDigits` (sigmoid), `hw4/MLPDigits_tanh`, `hw4/MLPDigits_relu`, `hw4/MLPDigits_12`, `hw4/MLPDigits_dropout` | hw4 ([`mlp_digits`]) | `[64]` |
//! | `hw5/SimpleConvNet_1` … `_4` | hw5 ([`simple_conv_net`]), 4 classes | `[3, 128, 128]` |
//!
//! Names are case-insensitive and the `hwN/` prefix may be left out.
//!
//! Defects of the originals, reproduced as written (the notebooks say so):
//! * hw1's `3_layers` config has **no activation between its first two
//!   linears** (`linear 512, linear 256, relu`): the first two collapse into
//!   one linear map.
//! * hw4's last `MLPDigits_tanh` (hidden 12) actually uses **sigmoid**: it is
//!   `hw4/MLPDigits_12` here.
//! * hw5's `SimpleConvNet_3` registers `bn2` but never calls it: its 128
//!   parameters are counted (and trained by nothing) as in torch.
//!
//! ```
//! let m = nnlab::models::zoo::build("basiccnn").unwrap();
//! assert_eq!(m.name(), "BasicCNN");
//! assert!(nnlab::models::zoo::build("resnet").unwrap_err().to_string().contains("hw3/BasicCNN"));
//! ```

use super::init::ParamInit;
use super::layers::{BatchNorm, Conv2d, Layer, Linear, Pool2d};
use super::mlp::{Mlp, MlpConfig};
use super::model::{Entry, Model};
use crate::{Error, Result};
use candle_core::{DType, Device};

const NAMES: &[&str] = &[
    "hw1/1_layer",
    "hw1/2_layers",
    "hw1/3_layers",
    "hw1/5_layers",
    "hw1/7_layers",
    "hw1/dropout_bn",
    "hw2/net",
    "hw2/net_bn",
    "hw3/SimpleMLP",
    "hw3/MediumMLP",
    "hw3/DeepMLP",
    "hw3/BasicCNN",
    "hw3/ComplexCNN",
    "hw3/CIFAR10CNN",
    "hw4/MLPDigits",
    "hw4/MLPDigits_tanh",
    "hw4/MLPDigits_relu",
    "hw4/MLPDigits_12",
    "hw4/MLPDigits_dropout",
    "hw5/SimpleConvNet_1",
    "hw5/SimpleConvNet_2",
    "hw5/SimpleConvNet_3",
    "hw5/SimpleConvNet_4",
];

/// Every name `build` knows, in course order.
pub fn names() -> Vec<&'static str> {
    NAMES.to_vec()
}

/// hw1's configs exactly as the notebook wrote them (`1_layer`, `2_layers`,
/// `3_layers`, `5_layers`, `7_layers`, `dropout_bn`).
pub fn hw1_config(name: &str) -> Result<&'static str> {
    Ok(match name {
        "1_layer" => r#"{"input_size": 784, "num_classes": 10, "layers": []}"#,
        "2_layers" => r#"{"input_size": 784, "num_classes": 10, "layers": [{"type": "linear", "size": 512}]}"#,
        // sic: no activation between the first two linears (hw1's defect)
        "3_layers" => {
            r#"{"input_size": 784, "num_classes": 10, "layers": [{"type": "linear", "size": 512},
                {"type": "linear", "size": 256}, {"type": "relu"}]}"#
        }
        "5_layers" => {
            r#"{"input_size": 784, "num_classes": 10, "layers": [
                {"type": "linear", "size": 512}, {"type": "relu"},
                {"type": "linear", "size": 512}, {"type": "relu"},
                {"type": "linear", "size": 256}, {"type": "relu"},
                {"type": "linear", "size": 128}, {"type": "relu"}]}"#
        }
        "7_layers" => {
            r#"{"input_size": 784, "num_classes": 10, "layers": [
                {"type": "linear", "size": 512}, {"type": "relu"},
                {"type": "linear", "size": 400}, {"type": "relu"},
                {"type": "linear", "size": 300}, {"type": "relu"},
                {"type": "linear", "size": 256}, {"type": "relu"},
                {"type": "linear", "size": 256}, {"type": "relu"},
                {"type": "linear", "size": 128}, {"type": "relu"}]}"#
        }
        "dropout_bn" => {
            r#"{"input_size": 784, "num_classes": 10, "layers": [{"type": "linear", "size": 512},
                {"type": "dropout", "rate": 0.3}, {"type": "batch_norm"},
                {"type": "linear", "size": 256}, {"type": "relu"}]}"#
        }
        other => {
            return Err(Error::config(
                "hw1 config",
                format!("unknown `{other}`, expected 1_layer, 2_layers, 3_layers, 5_layers, 7_layers or dropout_bn"),
            ))
        }
    })
}

/// Builds a zoo model on `nnlab::device()` in f32.
pub fn build(name: &str) -> Result<Model> {
    build_on(name, &crate::device()?, DType::F32)
}

fn resolve(name: &str) -> Result<&'static str> {
    let want = name.trim().to_ascii_lowercase();
    let hits: Vec<&'static str> = NAMES
        .iter()
        .copied()
        .filter(|n| {
            let n = n.to_ascii_lowercase();
            n == want
                || n.split_once('/')
                    .map(|(_, short)| short == want)
                    .unwrap_or(false)
        })
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        _ => Err(Error::config(
            "zoo",
            format!(
                "unknown model `{name}`, expected one of: {}",
                NAMES.join(", ")
            ),
        )),
    }
}

/// Builds a zoo model on a given device and dtype.
pub fn build_on(name: &str, device: &Device, dtype: DType) -> Result<Model> {
    let canonical = resolve(name)?;
    let (hw, short) = canonical.split_once('/').unwrap_or(("", canonical));
    match hw {
        "hw1" => {
            let cfg = MlpConfig::from_json(hw1_config(short)?)?;
            let mut mlp = Mlp::new(cfg.input_size, cfg.num_classes)
                .device(device)
                .dtype(dtype);
            mlp.config = cfg;
            mlp.build()
        }
        "hw2" => hw2_net_on(128, short == "net_bn", device, dtype),
        "hw3" => hw3(short, device, dtype),
        "hw4" => match short {
            "MLPDigits" => mlp_digits_on("sigmoid", 52, None, device, dtype),
            "MLPDigits_tanh" => mlp_digits_on("tanh", 52, None, device, dtype),
            "MLPDigits_relu" => mlp_digits_on("relu", 52, None, device, dtype),
            "MLPDigits_12" => mlp_digits_on("sigmoid", 12, None, device, dtype),
            _ => mlp_digits_on("tanh", 24, Some(0.25), device, dtype),
        },
        _ => {
            let v = short
                .trim_start_matches("SimpleConvNet_")
                .parse::<usize>()
                .unwrap_or(1);
            simple_conv_net_on(v, 4, device, dtype)
        }
    }
    .map(|m| match (hw, short) {
        ("hw1", "dropout_bn") => m.with_name("3 layers + dropout + batch norm"),
        ("hw1", _) => m,
        _ => m.with_name(short),
    })
}

/// Registers modules and records the order `forward` calls them in.
struct Net {
    init: ParamInit,
    entries: Vec<Entry>,
    order: Vec<usize>,
}

impl Net {
    fn new(device: &Device, dtype: DType) -> Net {
        Net {
            init: ParamInit::new(device, dtype),
            entries: Vec::new(),
            order: Vec::new(),
        }
    }
    /// Registers a module and calls it next.
    fn add(&mut self, e: Entry) -> usize {
        let i = self.reg(e);
        self.order.push(i);
        i
    }
    /// Registers a module without calling it.
    fn reg(&mut self, e: Entry) -> usize {
        self.entries.push(e);
        self.entries.len() - 1
    }
    fn call(&mut self, i: usize) {
        self.order.push(i);
    }
    fn linear(&mut self, i: usize, o: usize) -> Result<Layer> {
        Ok(Layer::Linear(Linear::new(i, o, &mut self.init)?))
    }
    fn conv(&mut self, i: usize, o: usize, k: usize, pad: usize) -> Result<Layer> {
        Ok(Layer::Conv2d(Conv2d::new(i, o, k, 1, pad, &mut self.init)?))
    }
    fn bn2(&mut self, c: usize) -> Result<Layer> {
        Ok(Layer::BatchNorm2d(BatchNorm::new(c, 2, &mut self.init)?))
    }
    fn finish(self, name: &str, input: Vec<usize>, flatten: bool) -> Result<Model> {
        let device = self.init.device.clone();
        let dtype = self.init.dtype;
        Model::from_parts(
            name,
            name,
            input,
            flatten,
            self.entries,
            Some(self.order),
            &device,
            dtype,
        )
    }
}

/// hw2's `NeuralNetwork(dim_hidden, use_bn)`: `layer_in` (`W: [3072, h]`,
/// kaiming normal), `activation` (ReLU), `bn_layer` (BatchNorm1d, only with
/// `use_bn`), `layer_out` (`W: [h, 10]`); input flattened to 3·32·32.
pub fn hw2_net(dim_hidden: usize, use_bn: bool) -> Result<Model> {
    hw2_net_on(dim_hidden, use_bn, &crate::device()?, DType::F32)
}

pub fn hw2_net_on(dim_hidden: usize, use_bn: bool, device: &Device, dtype: DType) -> Result<Model> {
    if dim_hidden == 0 {
        return Err(Error::config(
            "dim_hidden",
            "0, expected a positive integer",
        ));
    }
    let mut n = Net::new(device, dtype);
    let l_in = Layer::Linear(Linear::in_out(3 * 32 * 32, dim_hidden, &mut n.init)?);
    n.add(Entry::module("layer_in", l_in).named_type("FullyConnectedLayer"));
    n.add(Entry::module("activation", Layer::ReLU).named_type("ReluLayer"));
    if use_bn {
        let bn = Layer::BatchNorm1d(BatchNorm::new(dim_hidden, 1, &mut n.init)?);
        n.add(Entry::module("bn_layer", bn));
    }
    let l_out = Layer::Linear(Linear::in_out(dim_hidden, 10, &mut n.init)?);
    n.add(Entry::module("layer_out", l_out).named_type("FullyConnectedLayer"));
    n.finish("NeuralNetwork", vec![3 * 32 * 32], true)
}

fn hw3(short: &str, device: &Device, dtype: DType) -> Result<Model> {
    let mut n = Net::new(device, dtype);
    let mlp = |n: &mut Net, sizes: &[usize]| -> Result<()> {
        n.add(Entry::module("flatten", Layer::Flatten));
        let mut k = 0;
        for (j, w) in sizes.windows(2).enumerate() {
            let l = n.linear(w[0], w[1])?;
            n.add(Entry::module(format!("layers.{k}"), l));
            k += 1;
            if j + 2 < sizes.len() {
                n.add(Entry::module(format!("layers.{k}"), Layer::ReLU));
                k += 1;
            }
        }
        Ok(())
    };
    let (input, classifier_in, hidden) = match short {
        "SimpleMLP" => {
            mlp(&mut n, &[784, 256, 10])?;
            return n.finish(short, vec![1, 28, 28], false);
        }
        "MediumMLP" => {
            mlp(&mut n, &[784, 512, 256, 10])?;
            return n.finish(short, vec![1, 28, 28], false);
        }
        "DeepMLP" => {
            mlp(&mut n, &[784, 1024, 512, 256, 128, 10])?;
            return n.finish(short, vec![1, 28, 28], false);
        }
        "BasicCNN" => {
            let f = |i: usize| format!("features.{i}");
            let c = n.conv(1, 16, 3, 1)?;
            n.add(Entry::module(f(0), c));
            n.add(Entry::module(f(1), Layer::ReLU));
            n.add(Entry::module(
                f(2),
                Layer::MaxPool2d(Pool2d {
                    kernel: 2,
                    stride: 2,
                }),
            ));
            let c = n.conv(16, 32, 3, 1)?;
            n.add(Entry::module(f(3), c));
            n.add(Entry::module(f(4), Layer::ReLU));
            n.add(Entry::module(
                f(5),
                Layer::MaxPool2d(Pool2d {
                    kernel: 2,
                    stride: 2,
                }),
            ));
            (vec![1, 28, 28], 7 * 7 * 32, 128)
        }
        _ => {
            // ComplexCNN and CIFAR10CNN: the same features, 1 or 3 channels
            let cin = if short == "CIFAR10CNN" { 3 } else { 1 };
            let f = |i: usize| format!("features.{i}");
            let mut k = 0;
            for (a, b, pool) in [
                (cin, 32, false),
                (32, 32, true),
                (32, 64, false),
                (64, 64, true),
            ] {
                let c = n.conv(a, b, 3, 1)?;
                n.add(Entry::module(f(k), c));
                n.add(Entry::module(f(k + 1), Layer::ReLU));
                k += 2;
                if pool {
                    n.add(Entry::module(
                        f(k),
                        Layer::MaxPool2d(Pool2d {
                            kernel: 2,
                            stride: 2,
                        }),
                    ));
                    k += 1;
                }
            }
            if cin == 3 {
                (vec![3, 32, 32], 8 * 8 * 64, 256)
            } else {
                (vec![1, 28, 28], 7 * 7 * 64, 256)
            }
        }
    };
    n.add(Entry::module("classifier.0", Layer::Flatten));
    let l = n.linear(classifier_in, hidden)?;
    n.add(Entry::module("classifier.1", l));
    n.add(Entry::module("classifier.2", Layer::ReLU));
    let l = n.linear(hidden, 10)?;
    n.add(Entry::module("classifier.3", l));
    n.finish(short, input, false)
}

/// hw4's `MLPDigits` family: `fc1: 64→h`, activation, `fc2: h→h`, activation,
/// `fc3: h→10`, `log_softmax` (output LogProbs → NLL loss). `activation` is
/// `sigmoid`, `tanh` or `relu` (torch's functional `F.*`, not modules);
/// `dropout: Some(p)` adds hw4's single `nn.Dropout(p)` after each hidden
/// activation (`MLPDigits_dropout`: tanh, 24, 0.25).
pub fn mlp_digits(activation: &str, hidden: usize, dropout: Option<f64>) -> Result<Model> {
    mlp_digits_on(activation, hidden, dropout, &crate::device()?, DType::F32)
}

pub fn mlp_digits_on(
    activation: &str,
    hidden: usize,
    dropout: Option<f64>,
    device: &Device,
    dtype: DType,
) -> Result<Model> {
    let act = || -> Result<Layer> {
        Ok(match activation.to_ascii_lowercase().as_str() {
            "sigmoid" => Layer::Sigmoid,
            "tanh" => Layer::Tanh,
            "relu" => Layer::ReLU,
            other => {
                return Err(Error::config(
                    "activation",
                    format!("`{other}`, expected sigmoid, tanh or relu"),
                ));
            }
        })
    };
    if hidden == 0 {
        return Err(Error::config("hidden", "0, expected a positive integer"));
    }
    if let Some(p) = dropout {
        if !(p > 0.0 && p < 1.0) {
            return Err(Error::config(
                "dropout",
                format!("{p}, expected a probability 0 < p < 1"),
            ));
        }
    }
    let mut n = Net::new(device, dtype);
    let l = n.linear(64, hidden)?;
    let fc1 = n.reg(Entry::module("fc1", l));
    let l = n.linear(hidden, hidden)?;
    let fc2 = n.reg(Entry::module("fc2", l));
    let l = n.linear(hidden, 10)?;
    let fc3 = n.reg(Entry::module("fc3", l));
    let drop = dropout.map(|p| n.reg(Entry::module("dropout", Layer::Dropout(p))));
    for fc in [fc1, fc2] {
        n.call(fc);
        n.add(Entry::functional(act()?));
        if let Some(d) = drop {
            n.call(d);
        }
    }
    n.call(fc3);
    n.add(Entry::functional(Layer::LogSoftmax));
    let class = match (activation, dropout) {
        (_, Some(_)) => "MLPDigits_dropout".to_string(),
        ("sigmoid", None) => "MLPDigits".to_string(),
        (a, None) => format!("MLPDigits_{a}"),
    };
    n.finish(&class, vec![64], true)
}

/// hw5's `SimpleConvNet_1..4` on 3×128×128 images: `conv1 (3→32, k4)`,
/// `mp1 (3)`, `relu1`, `conv2 (32→64, k4)`, `mp2 (3)`, `relu2`, `flatten`
/// (9216), `fc3 (→512)`, `relu3`, `fc4 (→num_classes)`; variant 2 adds
/// `bn1`/`bn2` after the pools, 3 adds `droupout1..3` (p 0.2, hw5's
/// spelling) and registers an unused `bn2`, 4 has both.
pub fn simple_conv_net(variant: usize, num_classes: usize) -> Result<Model> {
    simple_conv_net_on(variant, num_classes, &crate::device()?, DType::F32)
}

pub fn simple_conv_net_on(
    variant: usize,
    num_classes: usize,
    device: &Device,
    dtype: DType,
) -> Result<Model> {
    if !(1..=4).contains(&variant) {
        return Err(Error::config(
            "variant",
            format!("{variant}, expected 1, 2, 3 or 4"),
        ));
    }
    if num_classes == 0 {
        return Err(Error::config(
            "num_classes",
            "0, expected a positive integer",
        ));
    }
    let bn = variant == 2 || variant == 4;
    let drop = variant >= 3;
    let mut n = Net::new(device, dtype);
    let pool = || {
        Layer::MaxPool2d(Pool2d {
            kernel: 3,
            stride: 3,
        })
    };
    for (s, (a, b)) in [(3usize, 32usize), (32, 64)].into_iter().enumerate() {
        let s = s + 1;
        let c = n.conv(a, b, 4, 0)?;
        n.add(Entry::module(format!("conv{s}"), c));
        n.add(Entry::module(format!("mp{s}"), pool()));
        if bn {
            let l = n.bn2(b)?;
            n.add(Entry::module(format!("bn{s}"), l));
        } else if variant == 3 && s == 2 {
            let l = n.bn2(b)?;
            n.reg(Entry::module("bn2", l)); // registered, never called (hw5's defect)
        }
        if drop {
            n.add(Entry::module(format!("droupout{s}"), Layer::Dropout(0.2)));
        }
        n.add(Entry::module(format!("relu{s}"), Layer::ReLU));
    }
    n.add(Entry::module("flatten", Layer::Flatten));
    let l = n.linear(9216, 512)?;
    n.add(Entry::module("fc3", l));
    if drop {
        n.add(Entry::module("droupout3", Layer::Dropout(0.2)));
    }
    n.add(Entry::module("relu3", Layer::ReLU));
    let l = n.linear(512, num_classes)?;
    n.add(Entry::module("fc4", l));
    n.finish(
        &format!("SimpleConvNet_{variant}"),
        vec![3, 128, 128],
        false,
    )
}
