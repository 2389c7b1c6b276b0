//! Tables: results as polars DataFrames.
