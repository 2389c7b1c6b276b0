//! Training: losses, optimizers and schedulers with torch semantics.

pub mod loss;
pub mod optim;
pub mod schedule;
pub mod metrics;
pub mod history;
pub mod interpret;
pub mod grid;
pub mod learner;
pub mod baseline;
pub mod callbacks;
pub mod checkpoint;
pub mod gradients;
