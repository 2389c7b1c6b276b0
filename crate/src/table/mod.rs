//! Tables: results as polars DataFrames, and their files.

pub mod csv;

pub use csv::write_csv;
