//! Writing a DataFrame as CSV (header, comma-separated) atomically: to a
//! temporary file beside the target, then renamed, so a failed write never
//! leaves a half-written file in place.

use crate::{Error, Result};
use polars::prelude::*;
use std::path::Path;

/// Writes `df` to `path` as CSV with a header.
pub fn write_csv(df: &mut DataFrame, path: &Path) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| Error::config("path", format!("{}: expected a file name", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let written = CsvWriter::new(file).include_header(true).finish(df);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::format(path, format!("could not write CSV: {e}")));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}
