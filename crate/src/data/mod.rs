//! Datasets: readers for every format of the course into one in-memory
//! [`Dataset`], downloads with md5 checks, splits, transforms and loaders.
//!
//! `source files → Dataset → Loader (split, shuffle, transforms, batch → Tensor)`

pub mod bounded;
pub mod cifar;
pub mod dataset;
pub mod digits;
pub mod download;
pub mod idx;
pub mod image_folder;
pub mod loader;
pub mod sources;
pub mod split;
pub mod svhn;
pub mod transforms;

pub use dataset::Dataset;
