//! Checkpoints (hw1's `save_model`/`load_model`): the model's state dict,
//! the optimizer's state, the epoch, the best metrics and the whole history,
//! in one safetensors file.
//!
//! Format: `<path>` is a safetensors file whose tensors are
//! `model.<state-dict name>` and `optimizer.<param>.<buffer>`, and whose
//! header metadata `nnlab` holds the JSON [`CheckpointInfo`]; `<path>.json`
//! is a copy of that JSON for people and tools to read. Both are written to a
//! temporary file in the same folder and renamed, so a crash never leaves a
//! half-written checkpoint (the copy inside the `.safetensors` is the one
//! that is loaded).
//!
//! ```no_run
//! # use nnlab::prelude::*;
//! # fn main() -> nnlab::Result<()> {
//! # let loaders = Mnist::load()?.loaders(64)?;
//! let mut learn = Learner::new(zoo::build("hw1/3_layers")?, &loaders);
//! learn.fit(2)?;
//! learn.save("runs/3_layers.safetensors")?;
//! let mut again = Learner::new(zoo::build("hw1/3_layers")?, &loaders);
//! again.resume("runs/3_layers.safetensors")?;   // model, optimizer, epoch, history
//! again.fit(1)?;                                // epoch 3, as if never interrupted
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::models::model::Model;
use crate::train::history::History;
use crate::train::optim::Optimizer;
use crate::train::schedule::Scheduler;
use crate::{Error, Result};

/// Format tag stored in every checkpoint.
pub const FORMAT: &str = "nnlab-checkpoint/1";

/// What a checkpoint says about itself (the JSON sidecar).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    pub format: String,
    pub model: String,
    pub optimizer: String,
    /// The learning rate for the next epoch.
    pub lr: f64,
    /// Epochs completed.
    pub epoch: usize,
    /// The best value of every history column so far (min for losses, max otherwise).
    pub best: Vec<(String, f64)>,
    /// The scheduler's state, when there is one.
    #[serde(default)]
    pub scheduler: Option<serde_json::Value>,
    pub history: History,
}

/// A loaded checkpoint: its info, the model state and the optimizer state.
pub struct Checkpoint {
    pub info: CheckpointInfo,
    pub model: HashMap<String, Tensor>,
    pub optimizer: HashMap<String, Tensor>,
}

/// Writes model, optimizer and history to `path` (+ `path.json`) atomically.
pub fn save(
    path: impl AsRef<Path>,
    model: &Model,
    optimizer: &dyn Optimizer,
    scheduler: Option<&dyn Scheduler>,
    history: &History,
) -> Result<()> {
    let path = path.as_ref();
    let mut best = Vec::new();
    for c in history.columns() {
        if c == "epoch" || c == "seconds" || c == "lr" {
            continue;
        }
        let values = history.column(&c)?.into_iter().filter(|v| !v.is_nan());
        let minimize = crate::train::history::minimize(&c);
        let b = values.reduce(|a, b| if minimize { a.min(b) } else { a.max(b) });
        if let Some(b) = b {
            best.push((c, b));
        }
    }
    let info = CheckpointInfo {
        format: FORMAT.into(),
        model: model.name().to_string(),
        optimizer: optimizer.name(),
        lr: optimizer.lr(),
        epoch: history.len(),
        best,
        scheduler: scheduler.map(|s| s.state()),
        history: history.clone(),
    };
    let json = serde_json::to_string_pretty(&info)?;
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    for (k, t) in model.state_dict()? {
        tensors.push((format!("model.{k}"), t.to_device(&Device::Cpu)?));
    }
    for (k, t) in optimizer.state()? {
        tensors.push((format!("optimizer.{k}"), t.to_device(&Device::Cpu)?));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let meta = HashMap::from([("nnlab".to_string(), json.clone())]);
    let bytes =
        safetensors::tensor::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), Some(meta))
            .map_err(|e| Error::format(path, format!("cannot serialize the checkpoint: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    atomic::write(path, &bytes)?;
    atomic::write(&sidecar(path), json.as_bytes())?;
    Ok(())
}

/// Reads a checkpoint written by [`save`], tensors on `device`.
pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Checkpoint> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::missing(
                path,
                "no checkpoint there: write one with `learn.save(path)` or the KeepBest callback",
            )
        } else {
            Error::io(path, e)
        }
    })?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::format(path, format!("not a safetensors file: {e}")))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::format(path, format!("not a safetensors file: {e}")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("nnlab"))
        .ok_or_else(|| {
            Error::format(
                path,
                "a safetensors file without the `nnlab` metadata: not an nnlab checkpoint",
            )
        })?;
    let info: CheckpointInfo = crate::json::parse(json)
        .and_then(serde_json::from_value)
        .map_err(|e| Error::format(path, format!("checkpoint metadata: {e}")))?;
    if info.format != FORMAT {
        return Err(Error::format(
            path,
            format!("format `{}`, expected `{FORMAT}`", info.format),
        ));
    }
    let (mut model, mut optimizer) = (HashMap::new(), HashMap::new());
    for (name, view) in st.tensors() {
        let t = view.load(device)?;
        if let Some(k) = name.strip_prefix("model.") {
            model.insert(k.to_string(), t);
        } else if let Some(k) = name.strip_prefix("optimizer.") {
            optimizer.insert(k.to_string(), t);
        } else {
            return Err(Error::format(
                path,
                format!("tensor `{name}`: expected a `model.` or `optimizer.` prefix"),
            ));
        }
    }
    Ok(Checkpoint {
        info,
        model,
        optimizer,
    })
}

/// `<path>.json`
pub fn sidecar(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}
