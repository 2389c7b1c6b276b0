//! Everything a notebook cell needs: `use nnlab::prelude::*;`.

pub use crate::data::Dataset;
pub use crate::{device, seed, Error, Result};
pub use crate::models::{cnn::Cnn, mlp::Mlp, model::Model, model::Output, summary::Summary, zoo};
