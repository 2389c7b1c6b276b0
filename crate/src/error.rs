//! One error type for the whole library.
//!
//! Every message names the file, field or value at fault and what was
//! expected, e.g. `data/mnist/train-images-idx3-ubyte.gz: wrong magic number
//! 0x00000801, expected 0x00000803 (IDX images)`. The library returns
//! [`Result`] and never panics on user input.

use std::path::{Path, PathBuf};

/// `Result<T, nnlab::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error while reading or writing `path`.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file whose content is not what its format requires.
    #[error("{}: {what}", path.display())]
    Format { path: PathBuf, what: String },
    /// A file or folder that is not there; `hint` says how to get it.
    #[error("{}: not found. {hint}", path.display())]
    Missing { path: PathBuf, hint: String },
    /// Downloaded or local file whose md5 is not the published one.
    #[error("{}: md5 {actual}, expected {expected}", path.display())]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// A download that failed (HTTP status, connection cut, ...).
    #[error("download {url}: {what}")]
    Download { url: String, what: String },
    /// A bad argument or configuration value: `field` names it
    /// (`layers[2].size`, `batch_size`, `--lr`).
    #[error("{field}: {what}")]
    Config { field: String, what: String },
    /// Tensor shapes that do not fit, `at` names the layer or operation.
    #[error("shape mismatch at {at}: {what}")]
    Shape { at: String, what: String },
    /// A loss that became NaN or infinite during training.
    #[error("training diverged: loss {loss} at epoch {epoch}, batch {batch} (lr {lr})")]
    Diverged {
        epoch: usize,
        batch: usize,
        loss: f64,
        lr: f64,
    },
    /// A point outside the domain of a function (`√x` needs `x ≥ 0`).
    #[error("{what}")]
    Domain { what: String },
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
    pub fn format(path: impl AsRef<Path>, what: impl Into<String>) -> Self {
        Error::Format {
            path: path.as_ref().to_path_buf(),
            what: what.into(),
        }
    }
    pub fn missing(path: impl AsRef<Path>, hint: impl Into<String>) -> Self {
        Error::Missing {
            path: path.as_ref().to_path_buf(),
            hint: hint.into(),
        }
    }
    pub fn config(field: impl Into<String>, what: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            what: what.into(),
        }
    }
    pub fn shape(at: impl Into<String>, what: impl Into<String>) -> Self {
        Error::Shape {
            at: at.into(),
            what: what.into(),
        }
    }
    pub fn download(url: impl Into<String>, what: impl Into<String>) -> Self {
        Error::Download {
            url: url.into(),
            what: what.into(),
        }
    }
}
