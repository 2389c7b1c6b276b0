//! Tables: results as polars DataFrames, and their files.

pub mod csv;
pub mod html;

pub use csv::write_csv;
