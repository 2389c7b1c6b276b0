//! Everything a notebook cell needs: `use nnlab::prelude::*;`.

pub use crate::data::sources::{load, Cifar10, Digits, FashionMnist, Mnist, Splits, Svhn};
pub use crate::data::Dataset;
pub use crate::{device, seed, Error, Result};
