//! Everything a notebook cell needs: `use nnlab::prelude::*;`.

pub use crate::data::image_folder::ImageFolder;
pub use crate::data::loader::{Batch, Loader, Loaders, WeightedSampler};
pub use crate::data::sources::{load, Cifar10, Digits, FashionMnist, Mnist, Splits, Svhn};
pub use crate::data::split::{holdout_per_class, split_counts, train_test_split};
pub use crate::data::transforms::{
    ColorJitter, Compose, Grayscale, Normalize, RandomCrop, RandomHorizontalFlip, RandomRotation,
    Resize, Transform,
};
pub use crate::data::Dataset;
pub use crate::display::Show;
pub use crate::models::{
    cnn::Cnn, layer_stack::LayerStack, mlp::Mlp, model::Model, model::Output, summary::Summary, zoo,
};
pub use crate::notebook::{key_result, profile, Profile};
pub use crate::scorecard::Scorecard;
pub use crate::scratch::{self, Layer as ScratchLayer};
pub use crate::train::callbacks::{on_batch, on_epoch, EarlyStopping, KeepBest};
pub use crate::train::grid::{Grid, GridResults, Params};
pub use crate::train::history::History;
pub use crate::train::learner::{Evaluation, Learner, Progress};
pub use crate::train::loss::{l2_penalty, Loss};
pub use crate::train::metrics::{
    accuracy, f1_macro, f1_weighted, precision_macro, recall_macro, ConfusionMatrix,
};
pub use crate::train::optim::{
    optimizer_by_name, Adagrad, Adam, AdamW, Optimizer, OptimizerConfig, RmsProp, Sgd,
};
pub use crate::train::schedule::{CosineLr, ReduceLrOnPlateau, Scheduler, StepLr};
pub use crate::viz::{stack::stack, Figure, Stack};
pub use crate::{device, seed, tune_process, Error, Result};
pub use candle_core::{DType, Tensor};
