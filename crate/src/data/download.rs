//! Getting dataset files into the data folder: `root/<dataset>/<file>`.
//!
//! The source is `$NNLAB_DATA_MIRROR` when set — a local folder laid out as
//! `<mirror>/<dataset>/<file>` or an `http(s)://` base URL
//! `<base>/<dataset>/<file>` — otherwise the official URL(s) of the dataset.
//! The bytes stream into a temp file in the target folder while their md5 is
//! computed; only a complete, checksum-verified file is renamed into place.
//! On any error the temp file is removed and nothing is left behind.
//!
//! Hostile sources: a download is cut with an error as soon as it passes the
//! official file's size ([`official_size`]); a folder mirror's file must be a
//! regular file (a FIFO, `/dev/zero` or another device is refused before it
//! is opened); the temp file is `.NAME.part-PID`, and those left by processes
//! that no longer run (killed by a signal) are removed by the next download
//! of that file ([`remove_stale_parts`]).
//!
//! ```no_run
//! use std::path::Path;
//! let p = nnlab::data::download::fetch("mnist", "t10k-labels-idx1-ubyte.gz",
//!     Some("ec29112dd5afa0611ce80d1b7f02629c"), Path::new("data")).unwrap();
//! assert!(p.ends_with("mnist/t10k-labels-idx1-ubyte.gz"));
//! ```

use crate::{Error, Result};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Where files come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Mirror {
    /// `<folder>/<dataset>/<file>`.
    Folder(PathBuf),
    /// `<base>/<dataset>/<file>`.
    Url(String),
    /// The dataset's official URLs, tried in order.
    Official,
}

impl Mirror {
    /// `$NNLAB_DATA_MIRROR` (a URL when it starts with `http://` or `https://`), else [`Mirror::Official`].
    pub fn from_env() -> Mirror {
        match std::env::var("NNLAB_DATA_MIRROR") {
            Ok(m) if m.starts_with("http://") || m.starts_with("https://") => Mirror::Url(m),
            Ok(m) if !m.trim().is_empty() => Mirror::Folder(PathBuf::from(m)),
            _ => Mirror::Official,
        }
    }
}

/// The official base URLs of a dataset (the file name is appended).
pub fn official_urls(dataset: &str) -> &'static [&'static str] {
    match dataset {
        "mnist" => &["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
        "fashion-mnist" => &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "cifar10" => &["https://www.cs.toronto.edu/~kriz/"],
        "svhn" => &["http://ufldl.stanford.edu/housenumbers/"],
        "digits" => &["https://raw.githubusercontent.com/scikit-learn/scikit-learn/main/sklearn/datasets/data/"],
        _ => &[],
    }
}

/// The size in bytes of an official file (the files [`crate::data::sources::files`]
/// lists): a download that streams more is cut there with an error.
pub fn official_size(dataset: &str, file: &str) -> Option<u64> {
    Some(match (dataset, file) {
        ("mnist", "train-images-idx3-ubyte.gz") => 9_912_422,
        ("mnist", "train-labels-idx1-ubyte.gz") => 28_881,
        ("mnist", "t10k-images-idx3-ubyte.gz") => 1_648_877,
        ("mnist", "t10k-labels-idx1-ubyte.gz") => 4_542,
        ("fashion-mnist", "train-images-idx3-ubyte.gz") => 26_421_880,
        ("fashion-mnist", "train-labels-idx1-ubyte.gz") => 29_515,
        ("fashion-mnist", "t10k-images-idx3-ubyte.gz") => 4_422_102,
        ("fashion-mnist", "t10k-labels-idx1-ubyte.gz") => 5_148,
        ("cifar10", "cifar-10-binary.tar.gz") => 170_052_171,
        ("svhn", "train_32x32.mat") => 182_040_794,
        ("svhn", "test_32x32.mat") => 64_275_384,
        ("digits", "digits.csv.gz") => 57_523,
        _ => return None,
    })
}

/// `root/dataset/file`, fetched from `$NNLAB_DATA_MIRROR` or the official URL
/// if it is not there (or its md5 is not `md5`).
pub fn fetch(dataset: &str, file: &str, md5: Option<&str>, root: &Path) -> Result<PathBuf> {
    fetch_from(dataset, file, md5, root, &Mirror::from_env())
}

/// [`fetch`] with an explicit source.
pub fn fetch_from(
    dataset: &str,
    file: &str,
    md5: Option<&str>,
    root: &Path,
    mirror: &Mirror,
) -> Result<PathBuf> {
    let dest = root.join(dataset).join(file);
    if dest.is_file() {
        match md5 {
            None => return Ok(dest),
            Some(want) if file_md5(&dest)? == want => return Ok(dest),
            Some(_) => {} // a corrupt copy: fetch it again, the rename replaces it
        }
    }
    let dir = root.join(dataset);
    let created = !dir.exists();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let result = fetch_into(dataset, file, md5, &dest, mirror);
    if result.is_err() && created {
        let _ = std::fs::remove_dir(&dir); // only if still empty
    }
    result
}

fn fetch_into(
    dataset: &str,
    file: &str,
    md5: Option<&str>,
    dest: &Path,
    mirror: &Mirror,
) -> Result<PathBuf> {
    let dest = dest.to_path_buf();
    let hint = format!(
        "Set NNLAB_DATA_MIRROR to a folder or URL holding {dataset}/{file}, or run `nnlab data download {dataset}` with network access, or copy the file to {}",
        dest.display()
    );
    let cap = official_size(dataset, file);
    match mirror {
        Mirror::Folder(m) => {
            let src = m.join(dataset).join(file);
            // the type first: a FIFO would block the open, /dev/zero never ends
            let meta = std::fs::metadata(&src).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::missing(&src, hint.clone()),
                _ => Error::io(&src, e),
            })?;
            crate::data::bounded::check_regular(&src, &meta)?;
            let f = crate::data::bounded::open_regular(&src)?;
            let len = f.metadata().ok().map(|m| m.len());
            let src_s = src.display().to_string();
            save(f, len, cap, &dest, md5, &src_s)
        }
        Mirror::Url(base) => {
            let url = format!("{}/{dataset}/{file}", base.trim_end_matches('/'));
            http(&url, &dest, md5, cap, &hint)
        }
        Mirror::Official => {
            let bases = official_urls(dataset);
            if bases.is_empty() {
                return Err(Error::missing(
                    &dest,
                    format!("no official URL for dataset `{dataset}`. {hint}"),
                ));
            }
            let mut errors = Vec::new();
            for base in bases {
                match http(&format!("{base}{file}"), &dest, md5, cap, &hint) {
                    Ok(p) => return Ok(p),
                    Err(e @ Error::Checksum { .. }) => return Err(e),
                    Err(e) => errors.push(e),
                }
            }
            if errors.len() == 1 {
                return Err(errors.remove(0));
            }
            let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            Err(Error::download(
                format!("{dataset}/{file}"),
                format!("every official URL failed: {}", all.join("; ")),
            ))
        }
    }
}

/// GET `url` into `dest`.
fn http(
    url: &str,
    dest: &Path,
    md5: Option<&str>,
    cap: Option<u64>,
    hint: &str,
) -> Result<PathBuf> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .timeout_recv_response(Some(std::time::Duration::from_secs(60)))
        .timeout_per_read(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let resp = agent.get(url).header("Accept-Encoding", "identity").call();
    let mut resp = match resp {
        Ok(r) => r,
        Err(ureq::Error::StatusCode(404)) => {
            return Err(Error::download(url, format!("HTTP 404 Not Found. {hint}")));
        }
        Err(ureq::Error::StatusCode(s)) => {
            return Err(Error::download(url, format!("HTTP status {s}")))
        }
        Err(e) => return Err(Error::download(url, format!("{e}. {hint}"))),
    };
    let len = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(l), Some(c)) = (len, cap) {
        if l > c {
            return Err(Error::download(
                url,
                format!("Content-Length {l} bytes, expected at most {c} (the official file's size); nothing downloaded"),
            ));
        }
    }
    let reader = resp.body_mut().as_reader();
    save(reader, len, cap, dest, md5, url)
}

/// The temp file of a download of `name` by process `pid`: `.NAME.part-PID`.
fn part_name(name: &str, pid: u32) -> String {
    format!(".{name}.part-{pid}")
}

/// Whether process `pid` is running (`kill(pid, 0)`: only ESRCH says it is not).
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes the `.NAME.part-PID` files beside `dest` that processes no longer
/// running left (a download killed by SIGINT/SIGTERM runs no destructor);
/// returns the files removed. A running process's file is left alone.
pub fn remove_stale_parts(dest: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
        return vec![];
    };
    let prefix = format!(".{}.part-", name.to_string_lossy());
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut removed = Vec::new();
    for ent in rd.flatten() {
        let n = ent.file_name().to_string_lossy().into_owned();
        let Some(pid) = n.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !alive(pid) && std::fs::remove_file(ent.path()).is_ok() {
            removed.push(ent.path());
        }
    }
    removed
}

/// Streams `src` into a temp file beside `dest`, checks length and md5, renames.
/// More than `cap` bytes (the official size) is an error as soon as the
/// stream passes it.
fn save(
    mut src: impl Read,
    len: Option<u64>,
    cap: Option<u64>,
    dest: &Path,
    md5: Option<&str>,
    from: &str,
) -> Result<PathBuf> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_parts(dest);
    let tmp = dest.with_file_name(part_name(&name, std::process::id()));
    let guard = TempGuard(tmp.clone());
    let mut out = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::download(
                    from,
                    format!("transfer cut after {total} bytes{}: {e}", of(len)),
                ));
            }
        };
        if let Some(c) = cap.filter(|&c| total + n as u64 > c) {
            return Err(Error::download(
                from,
                format!("more than {c} bytes, the official file's size: stopped after {} bytes, nothing kept", total + n as u64),
            ));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
        total += n as u64;
    }
    if let Some(l) = len.filter(|&l| l != total) {
        return Err(Error::download(
            from,
            format!("short body: {total} bytes, expected {l} (Content-Length)"),
        ));
    }
    out.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(out);
    let actual = hex(&hasher.finalize());
    if let Some(want) = md5 {
        if !actual.eq_ignore_ascii_case(want) {
            return Err(Error::Checksum {
                path: PathBuf::from(from),
                expected: want.to_string(),
                actual,
            });
        }
    }
    std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))?;
    std::mem::forget(guard);
    Ok(dest.to_path_buf())
}

fn of(len: Option<u64>) -> String {
    len.map(|l| format!(" of {l}")).unwrap_or_default()
}

/// Removes the temp file unless the download completed.
struct TempGuard(PathBuf);
impl Drop for TempGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The md5 of a file, lowercase hex.
pub fn file_md5(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
