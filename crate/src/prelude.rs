//! Everything a notebook cell needs: `use nnlab::prelude::*;`.

pub use crate::data::Dataset;
pub use crate::{device, seed, Error, Result};
pub use crate::data::image_folder::ImageFolder;
pub use crate::data::loader::{Batch, Loader, Loaders, WeightedSampler};
pub use crate::data::split::{holdout_per_class, split_counts, train_test_split};
pub use crate::data::transforms::{
    ColorJitter, Compose, Grayscale, Normalize, RandomCrop, RandomHorizontalFlip, RandomRotation, Resize, Transform,
};
