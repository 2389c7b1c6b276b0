//! Training: losses, optimizers and schedulers with torch semantics.

pub mod baseline;
pub mod callbacks;
pub mod checkpoint;
pub mod gradients;
pub mod grid;
pub mod history;
pub mod interpret;
pub mod learner;
mod loop_callbacks;
pub mod loss;
pub mod metrics;
pub mod optim;
mod pool_awake;
pub mod schedule;
mod tensor_ids;
