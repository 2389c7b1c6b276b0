//! Everything a notebook cell needs: `use nnlab::prelude::*;`.

pub use crate::data::Dataset;
pub use crate::scratch::{self, Layer as ScratchLayer};
pub use crate::{device, seed, Error, Result};
