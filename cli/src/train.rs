//! `nnlab train`: trains a zoo model or a JSON-config MLP on a course
//! dataset and reports the history (and, with `--json`, the history as one
//! JSON object with the final model's `test_accuracy` and `test_f1_macro`).
//!
//! ```text
//! nnlab train --dataset mnist --model zoo:hw1/5_layers --epochs 1 --json
//! ```

use std::path::PathBuf;

use clap::Args as ClapArgs;

use nnlab::data::sources;
use nnlab::models::{mlp::Mlp, model::Model, zoo};
use nnlab::train::learner::{Learner, Progress};
use nnlab::train::metrics::{accuracy, f1_macro};
use nnlab::train::optim::optimizer_by_name;
use nnlab::{Error, Result};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// mnist | fashion-mnist | cifar10 | svhn | digits | folder:PATH
    #[arg(long)]
    pub dataset: String,
    /// zoo:NAME (see `nnlab summary`) or config:PATH (hw1's JSON layer config)
    #[arg(long)]
    pub model: String,
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// sgd | momentum | adagrad | rmsprop | adam | adamw
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Train on the first N samples of a seeded shuffle of the training set.
    #[arg(long)]
    pub limit_train: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Data directory (default `$NNLAB_DATA_DIR` or `<repo>/data`).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Write a checkpoint of the final model here.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Print the history as JSON on the last line.
    #[arg(long)]
    pub json: bool,
}

/// Builds `zoo:NAME` or `config:PATH`.
pub fn build_model(spec: &str) -> Result<Model> {
    if let Some(name) = spec.strip_prefix("zoo:") {
        zoo::build(name)
    } else if let Some(path) = spec.strip_prefix("config:") {
        Mlp::from_file(path)
    } else {
        Err(Error::config(
            "--model",
            format!("`{spec}`: expected zoo:NAME or config:PATH"),
        ))
    }
}

pub fn run(a: Args) -> Result<()> {
    nnlab::device::seed(a.seed);
    let splits = sources::load(&a.dataset, a.root.as_deref())?;
    let loaders = splits.loaders_with(a.batch_size, a.limit_train, a.seed)?;
    let model = build_model(&a.model)?;
    let per_sample: usize = model.input_shape().iter().product();
    let data_shape = loaders.train.dataset().shape;
    if per_sample != data_shape.iter().product::<usize>() {
        return Err(Error::shape(
            model.name(),
            format!(
                "the model takes inputs of shape {:?}, {} gives {:?}: pick a model made for this dataset",
                model.input_shape(),
                a.dataset,
                data_shape
            ),
        ));
    }
    let opt = optimizer_by_name(&a.optimizer, a.lr)?;
    let progress = if a.json {
        Progress::Silent
    } else {
        Progress::Auto
    };
    let mut learn = Learner::new(model, &loaders)
        .optimizer(opt)
        .metrics([accuracy(), f1_macro()])
        .progress(progress);
    let history = learn.fit(a.epochs)?;
    let test = loaders.test.as_ref().or(loaders.val.as_ref());
    let eval = match test {
        Some(t) => Some(learn.evaluate(t)?),
        None => None,
    };
    if let Some(p) = &a.save {
        learn.save(p)?;
    }
    if a.json {
        let mut v = serde_json::to_value(&history)?;
        if let (Some(ev), Some(obj)) = (&eval, v.as_object_mut()) {
            obj.insert("test_loss".into(), ev.loss.into());
            obj.insert("test_accuracy".into(), ev.metric("accuracy")?.into());
            obj.insert("test_f1_macro".into(), ev.metric("f1_macro")?.into());
        }
        println!("{}", serde_json::to_string(&v)?);
    } else if let Some(ev) = &eval {
        println!(
            "test: loss {:.4}  accuracy {:.4}  f1_macro {:.4}",
            ev.loss,
            ev.metric("accuracy")?,
            ev.metric("f1_macro")?
        );
    }
    Ok(())
}
