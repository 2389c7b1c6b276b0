//! Getting a dataset file into the data directory: `<root>/<dataset>/<file>`.
//!
//! Source: `$NNLAB_DATA_MIRROR` when set — a local folder or an `http(s)://`
//! base URL laid out as `<mirror>/<dataset>/<file>` — else the official URL.
//! The bytes are streamed into a temporary file in the destination folder
//! while their md5 is computed, checked against the expected md5 (when the
//! file is an official one), and only then renamed into place: a checksum
//! error, an HTTP error or a cut connection leaves nothing behind.
//!
//! ```no_run
//! let root = nnlab::data::sources::data_root();
//! let path = nnlab::data::download::fetch("mnist", "t10k-labels-idx1-ubyte.gz",
//!     Some("ec29112dd5afa0611ce80d1b7f02629c"), &root, "https://ossci-datasets.s3.amazonaws.com/mnist/").unwrap();
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::{Error, Result};

/// Lowercase hex md5 of a file.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a missing file comes from: the mirror (`$NNLAB_DATA_MIRROR`) or `official_base`.
pub fn source_of(dataset: &str, file: &str, official_base: &str) -> String {
    match std::env::var("NNLAB_DATA_MIRROR") {
        Ok(m) if !m.trim().is_empty() => {
            let m = m.trim().trim_end_matches('/');
            format!("{m}/{dataset}/{file}")
        }
        _ => format!("{}/{file}", official_base.trim_end_matches('/')),
    }
}

/// `<root>/<dataset>/<file>`, fetched first when it is not there (or its md5 is wrong).
pub fn fetch(dataset: &str, file: &str, md5: Option<&str>, root: &Path, official_base: &str) -> Result<PathBuf> {
    let dest = root.join(dataset).join(file);
    if dest.is_file() {
        match md5 {
            Some(want) if md5_file(&dest)? != want => {} // damaged: fetch again
            _ => return Ok(dest),
        }
    }
    let src = source_of(dataset, file, official_base);
    fetch_from(&src, &dest, md5)?;
    Ok(dest)
}

/// Copies `src` (a path or an http(s) URL) to `dest` through a temporary file, checking `md5`.
pub fn fetch_from(src: &str, dest: &Path, md5: Option<&str>) -> Result<()> {
    let dir = dest.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let name = dest.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.part-{}", std::process::id()));
    let result = copy_checked(src, &tmp, md5).and_then(|_| std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn copy_checked(src: &str, tmp: &Path, md5: Option<&str>) -> Result<()> {
    let mut out = File::create(tmp).map_err(|e| Error::io(tmp, e))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total: u64 = 0;
    let is_url = src.starts_with("http://") || src.starts_with("https://");
    let (mut reader, expected_len): (Box<dyn Read>, Option<u64>) = if is_url {
        let resp = ureq::get(src).call().map_err(|e| match e {
            ureq::Error::StatusCode(code) => Error::download(src, format!("HTTP status {code}: the file is not there")),
            other => Error::download(src, other.to_string()),
        })?;
        let (_, body) = resp.into_parts();
        let len = body.content_length();
        (Box::new(body.into_reader()), len)
    } else {
        let path = Path::new(src);
        let f = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::missing(path, "the mirror ($NNLAB_DATA_MIRROR) has no such file: put it there as <mirror>/<dataset>/<official file name>, or unset NNLAB_DATA_MIRROR to download from the official URL (`nnlab data download NAME`)")
            } else {
                Error::io(path, e)
            }
        })?;
        (Box::new(f), None)
    };
    loop {
        let n = reader.read(&mut buf).map_err(|e| Error::download(src, format!("transfer cut after {total} bytes: {e}")))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| Error::io(tmp, e))?;
        total += n as u64;
    }
    out.sync_all().map_err(|e| Error::io(tmp, e))?;
    if let Some(len) = expected_len {
        if total != len {
            return Err(Error::download(src, format!("{total} bytes received, Content-Length said {len}")));
        }
    }
    if let Some(want) = md5 {
        let got = hex(&h.finalize());
        if got != want {
            return Err(Error::Checksum { path: PathBuf::from(src), expected: want.to_string(), actual: got });
        }
    }
    Ok(())
}
