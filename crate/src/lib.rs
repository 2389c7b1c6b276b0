//! # nnlab — a neural-network course in Rust
//!
//! Datasets, models, training, hand-written teaching layers and notebook
//! display on top of Candle. The data flows one way:
//!
//! ```text
//! source files ─► data::Dataset ─► data::Loader ─► models::Model
//!              ─► train::Learner ─► History ─► viz (plotly) / table (polars)
//! ```
//!
//! Notebook cells use the [`prelude`]: `use nnlab::prelude::*;`.

pub mod atomic;
pub mod data;
pub mod device;
pub mod display;
pub mod error;
mod float;
pub mod json;
pub mod models;
pub mod notebook;
pub mod ops;
pub mod prelude;
pub mod scorecard;
pub mod scratch;
pub mod simd;
pub mod table;
pub mod train;
pub mod viz;

pub use device::{device, seed, tune_process};
pub use error::{Error, Result};

/// A unit test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
#[cfg(test)]
pub(crate) type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;
