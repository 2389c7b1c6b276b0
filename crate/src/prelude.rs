//! Everything a notebook cell needs: `use nnlab::prelude::*;`.

pub use crate::data::Dataset;
pub use crate::{device, seed, Error, Result};
pub use crate::train::loss::{l2_penalty, Loss};
pub use crate::train::optim::{optimizer_by_name, Adagrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
pub use crate::train::schedule::{CosineLr, ReduceLrOnPlateau, Scheduler, StepLr};
