//! Writing a DataFrame as CSV (header, comma-separated) atomically: to a
//! temporary file beside the target, then renamed, so a failed write never
//! leaves a half-written file in place. Missing parent folders are created.

use crate::{atomic, Error, Result};
use polars::prelude::*;
use std::path::Path;

/// Writes `df` to `path` as CSV with a header, creating its folder if needed.
pub fn write_csv(df: &mut DataFrame, path: &Path) -> Result<()> {
    if path.file_name().is_none() {
        return Err(Error::config(
            "path",
            format!("{}: expected a file name", path.display()),
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    atomic::write_with(path, |file| {
        CsvWriter::new(file)
            .include_header(true)
            .finish(df)
            .map_err(|e| Error::format(path, format!("could not write CSV: {e}")))
    })
}
