//! `Model`: every architecture of the course as one sequence of layers with
//! PyTorch's state-dict names.
//!
//! A model holds its layers in torch's registration order (which fixes the
//! state-dict order, `layers.0.weight`, `layers.0.bias`, ...) and the order
//! `forward` runs them in (usually the same; hw4's single `dropout` module
//! runs twice, hw5's `SimpleConvNet_3` registers a `bn2` it never uses).
//! `forward_t(x, train)` takes `[B, C, H, W]` (or `[B, features]`); an MLP
//! whose torch `forward` starts with `x.view(B, -1)` flattens first.
//!
//! Checkpoints: `state_dict()` (deep copies, BatchNorm buffers included,
//! `num_batches_tracked` as an i64 scalar like torch) and
//! `save_safetensors(path)` / `load_safetensors(path)`, written to a temp
//! file beside `path`, then renamed.
//!
//! ```
//! let model = nnlab::models::zoo::build("hw3/SimpleMLP").unwrap();
//! let x = candle_core::Tensor::zeros((2, 1, 28, 28), candle_core::DType::F32, model.device()).unwrap();
//! assert_eq!(model.forward(&x).unwrap().dims(), &[2, 10]);
//! assert_eq!(model.num_params(), 203_530);
//! ```

use super::layers::Layer;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;
use std::path::Path;

/// What the last layer produces, which decides the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Output {
    /// Raw scores → cross-entropy.
    Logits,
    /// `log_softmax` already applied (hw4) → NLL loss.
    LogProbs,
}

/// One registered layer: its state-dict path (`features.0`, `fc1`), the
/// layer, and the torch class name shown by `summary` (`Linear`, or a custom
/// one like hw2's `FullyConnectedLayer`). `module = false` marks a functional
/// call (`F.sigmoid`) that torch does not register: no name, no summary row.
pub struct Entry {
    pub path: String,
    pub layer: Layer,
    pub type_name: String,
    pub module: bool,
}

impl Entry {
    /// A registered module at `path`, shown with its own torch class name.
    pub fn module(path: impl Into<String>, layer: Layer) -> Entry {
        let type_name = layer.type_name().to_string();
        Entry {
            path: path.into(),
            layer,
            type_name,
            module: true,
        }
    }
    /// A functional call (`F.relu(x)`), not a registered module.
    pub fn functional(layer: Layer) -> Entry {
        let type_name = layer.type_name().to_string();
        Entry {
            path: String::new(),
            layer,
            type_name,
            module: false,
        }
    }
    /// Shows the row under another torch class name.
    pub fn named_type(mut self, type_name: impl Into<String>) -> Entry {
        self.type_name = type_name.into();
        self
    }
}

/// A network: see the module doc.
pub struct Model {
    name: String,
    class_name: String,
    input_shape: Vec<usize>,
    flatten_input: bool,
    entries: Vec<Entry>,
    order: Vec<usize>,
    output: Output,
    device: Device,
    dtype: DType,
}

impl Model {
    /// Assembles a model. `order` lists the entries in the order `forward`
    /// runs them (`None`: registration order); `flatten_input` reshapes the
    /// input to `[B, Π input_shape]` first (torch's `x.view(x.size(0), -1)`).
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        name: impl Into<String>,
        class_name: impl Into<String>,
        input_shape: Vec<usize>,
        flatten_input: bool,
        entries: Vec<Entry>,
        order: Option<Vec<usize>>,
        device: &Device,
        dtype: DType,
    ) -> Result<Model> {
        let name = name.into();
        let order = order.unwrap_or_else(|| (0..entries.len()).collect());
        if let Some(&bad) = order.iter().find(|&&i| i >= entries.len()) {
            return Err(Error::config(
                format!("{name}: forward order"),
                format!("entry {bad} does not exist ({} entries)", entries.len()),
            ));
        }
        let output = match order.last().map(|&i| &entries[i].layer) {
            Some(Layer::LogSoftmax) => Output::LogProbs,
            _ => Output::Logits,
        };
        let model = Model {
            name,
            class_name: class_name.into(),
            input_shape,
            flatten_input,
            entries,
            order,
            output,
            device: device.clone(),
            dtype,
        };
        model.out_shapes()?; // every layer must fit the one before
        Ok(model)
    }

    /// The display name ("3 layers", "BasicCNN").
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Renames the model.
    pub fn with_name(mut self, name: impl Into<String>) -> Model {
        self.name = name.into();
        self
    }
    /// The torch class this model mirrors (`FullyConnectedModel`, `BasicCNN`).
    pub fn class_name(&self) -> &str {
        &self.class_name
    }
    /// Per-sample input shape: `[784]` or `[C, H, W]`.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }
    pub fn output(&self) -> Output {
        self.output
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// The registered layers, in registration order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    /// Entry indices in the order `forward` runs them.
    pub fn forward_order(&self) -> &[usize] {
        &self.order
    }

    /// Whether the input is flattened before the first layer.
    pub fn flattens_input(&self) -> bool {
        self.flatten_input
    }

    /// Per-sample output shape of each step of `forward_order()`, starting
    /// from `input_shape()` (flattened first when the model flattens).
    pub fn out_shapes(&self) -> Result<Vec<Vec<usize>>> {
        let mut shape = self.first_shape();
        let mut out = Vec::with_capacity(self.order.len());
        for (step, &i) in self.order.iter().enumerate() {
            let e = &self.entries[i];
            shape = e
                .layer
                .out_shape(&shape)
                .map_err(|err| self.at(step, i, err))?;
            out.push(shape.clone());
        }
        Ok(out)
    }

    fn first_shape(&self) -> Vec<usize> {
        if self.flatten_input {
            vec![self.input_shape.iter().product()]
        } else {
            self.input_shape.clone()
        }
    }

    fn at(&self, step: usize, i: usize, err: Error) -> Error {
        let e = &self.entries[i];
        let place = if e.path.is_empty() {
            String::new()
        } else {
            format!(" `{}`", e.path)
        };
        let what = match err {
            Error::Shape { at, what } => format!("{at}: {what}"),
            other => other.to_string(),
        };
        Error::shape(
            format!(
                "{}: layer {step}{place} ({})",
                self.name,
                e.layer.type_name()
            ),
            what,
        )
    }

    /// Runs the network on `x: [B, ...]`; `train` switches BatchNorm (batch
    /// statistics, running-stat updates) and Dropout.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let dims = x.dims();
        if dims.is_empty() {
            return Err(Error::shape(
                &self.name,
                "input is a scalar, expected a batch [B, ...]",
            ));
        }
        let per_sample: usize = dims[1..].iter().product();
        let want: usize = self.input_shape.iter().product();
        let mut h = if self.flatten_input {
            if per_sample != want {
                return Err(Error::shape(
                    &self.name,
                    format!(
                        "input {dims:?} has {per_sample} values per sample, expected {want} ({:?})",
                        self.input_shape
                    ),
                ));
            }
            x.reshape((dims[0], want))?
        } else if dims.len() == 2 && self.input_shape.len() > 1 && per_sample == want {
            x.reshape([&[dims[0]][..], &self.input_shape[..]].concat())?
        } else if dims.len() != self.input_shape.len() + 1
            || (self.input_shape.len() != 3 && dims[1..] != self.input_shape[..])
            || (self.input_shape.len() == 3 && dims[1] != self.input_shape[0])
        {
            return Err(Error::shape(
                &self.name,
                format!("input {dims:?}, expected [B, {}]", join(&self.input_shape)),
            ));
        } else {
            x.clone()
        };
        if h.dtype() != self.dtype {
            h = h.to_dtype(self.dtype)?;
        }
        let mut step = 0;
        while step < self.order.len() {
            let i = self.order[step];
            let e = &self.entries[i];
            let next = |d: usize| self.order.get(step + d).map(|&j| &self.entries[j].layer);
            // Conv2d + ReLU + MaxPool2d (in either order of the last two),
            // Conv2d + MaxPool2d and Linear/Conv2d + ReLU run as one op
            // (ops::conv2d_max_pool, ops::conv2d_relu): the same numbers,
            // one or two tensors and gradient passes fewer
            let (fused, used) = match (next(1), next(2)) {
                (Some(Layer::ReLU), Some(Layer::MaxPool2d(p)))
                | (Some(Layer::MaxPool2d(p)), Some(Layer::ReLU)) => {
                    (e.layer.forward_max_pool(&h, p, true), 3)
                }
                (Some(Layer::MaxPool2d(p)), _) => (e.layer.forward_max_pool(&h, p, false), 2),
                (Some(Layer::ReLU), _) => (e.layer.forward_relu(&h), 2),
                _ => (None, 1),
            };
            // an error inside a fused op is reported by the layer-by-layer
            // run, at the layer it belongs to
            let (out, used) = match fused.filter(|r| r.is_ok()) {
                Some(out) => (out, used),
                None => (e.layer.forward_t(&h, train), 1),
            };
            h = out.map_err(|err| {
                let err = match err {
                    Error::Candle(c) => Error::shape("", format!("input {:?}: {c}", h.dims())),
                    other => other,
                };
                self.at(step, i, err)
            })?;
            step += used;
        }
        Ok(h)
    }

    /// `forward_t(x, false)`: eval mode.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_t(x, false)
    }

    /// Trainable parameters with torch's names, in torch's order.
    pub fn named_params(&self) -> Vec<(String, Var)> {
        let mut v = Vec::new();
        for e in &self.entries {
            for (local, var) in e.layer.params() {
                v.push((join_name(&e.path, local), var));
            }
        }
        v
    }

    /// The parameters and the BatchNorm running statistics themselves (not
    /// copies), with torch's names: every tensor the model keeps between steps.
    pub(crate) fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        for e in &self.entries {
            Self::push_entry_tensors(e, &mut v);
        }
        v
    }

    /// One entry's tensors in torch's order: its parameters, then (for a
    /// BatchNorm) `running_mean` and `running_var`; the tensors themselves.
    fn push_entry_tensors(e: &Entry, v: &mut Vec<(String, Tensor)>) {
        for (local, var) in e.layer.params() {
            v.push((join_name(&e.path, local), var.as_tensor().clone()));
        }
        if let Some(bn) = e.layer.batch_norm() {
            for (local, var) in [
                ("running_mean", &bn.running_mean),
                ("running_var", &bn.running_var),
            ] {
                v.push((join_name(&e.path, local), var.as_tensor().clone()));
            }
        }
    }

    /// Number of trainable scalars (torch: `sum(p.numel() for p in model.parameters())`).
    pub fn num_params(&self) -> usize {
        self.named_params()
            .iter()
            .map(|(_, v)| v.elem_count())
            .sum()
    }

    /// Parameters and BatchNorm buffers (`running_mean`, `running_var`,
    /// `num_batches_tracked` as an i64 scalar), deep copies, torch's order.
    pub fn state_dict(&self) -> Result<Vec<(String, Tensor)>> {
        let mut v = Vec::new();
        for e in &self.entries {
            let start = v.len();
            Self::push_entry_tensors(e, &mut v);
            // the entry's tensors, shared with the model, become copies
            for (_, t) in &mut v[start..] {
                *t = t.copy()?;
            }
            if let Some(bn) = e.layer.batch_norm() {
                let n = Tensor::new(bn.num_batches_tracked() as i64, &self.device)?;
                v.push((join_name(&e.path, "num_batches_tracked"), n));
            }
        }
        Ok(v)
    }

    /// Loads a state dict: every name of `state_dict()` must be there with
    /// the same shape, and no other (torch's `strict=True`); values are
    /// converted to the model's dtype and device.
    pub fn load_state_dict(&self, sd: &HashMap<String, Tensor>) -> Result<()> {
        let mine = self.state_dict()?;
        let missing: Vec<&str> = mine
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !sd.contains_key(*n))
            .collect();
        let known: std::collections::HashSet<&str> = mine.iter().map(|(n, _)| n.as_str()).collect();
        let mut unexpected: Vec<&str> = sd
            .keys()
            .map(|k| k.as_str())
            .filter(|k| !known.contains(k))
            .collect();
        unexpected.sort();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(Error::config(
                format!("state dict of {}", self.name),
                format!(
                    "missing keys [{}], unexpected keys [{}]",
                    missing.join(", "),
                    unexpected.join(", ")
                ),
            ));
        }
        for (name, cur) in &mine {
            let t = &sd[name];
            if t.dims() != cur.dims() {
                return Err(Error::shape(
                    format!("state dict of {}: `{name}`", self.name),
                    format!("shape {:?}, expected {:?}", t.dims(), cur.dims()),
                ));
            }
        }
        for e in &self.entries {
            for (local, var) in e.layer.params() {
                let t = &sd[&join_name(&e.path, local)];
                var.set(&t.to_dtype(var.dtype())?.to_device(&self.device)?)?;
            }
            if let Some(bn) = e.layer.batch_norm() {
                for (local, var) in [
                    ("running_mean", &bn.running_mean),
                    ("running_var", &bn.running_var),
                ] {
                    let t = &sd[&join_name(&e.path, local)];
                    var.set(&t.to_dtype(var.dtype())?.to_device(&self.device)?)?;
                }
                let name = join_name(&e.path, "num_batches_tracked");
                let n = sd[&name]
                    .to_dtype(DType::F64)?
                    .to_device(&Device::Cpu)?
                    .to_vec0::<f64>()?;
                if n < 0.0 {
                    return Err(Error::config(
                        format!("state dict `{name}`"),
                        format!("{n}, expected a count ≥ 0"),
                    ));
                }
                bn.set_num_batches_tracked(n as u64);
            }
        }
        Ok(())
    }

    /// Writes `state_dict()` as safetensors, atomically (temp file, rename).
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let map: HashMap<String, Tensor> = self.state_dict()?.into_iter().collect();
        let bytes = safetensors::tensor::serialize(map.iter().map(|(k, t)| (k.as_str(), t)), None)
            .map_err(|e| Error::format(path, format!("cannot write safetensors: {e}")))?;
        crate::atomic::write(path, &bytes)
    }

    /// Reads a safetensors file written by [`Model::save_safetensors`] (or by
    /// torch's `safetensors.torch.save_file(model.state_dict())`).
    pub fn load_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(Error::missing(
                path,
                "no such checkpoint; write one with save_safetensors",
            ));
        }
        let map = candle_core::safetensors::load(path, &self.device)
            .map_err(|e| Error::format(path, format!("not a safetensors file: {e}")))?;
        self.load_state_dict(&map)
    }

    /// torch's `print(model)` of the registered modules.
    pub fn repr(&self) -> String {
        let mut s = format!("{}(\n", self.class_name);
        for e in self.entries.iter().filter(|e| e.module) {
            s += &format!("  ({}): {}\n", e.path, e.layer.repr());
        }
        s + ")"
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.repr())
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Model({:?}, {} params)", self.name, self.num_params())
    }
}

fn join_name(path: &str, local: &str) -> String {
    if path.is_empty() {
        local.to_string()
    } else {
        format!("{path}.{local}")
    }
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
