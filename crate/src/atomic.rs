//! Writing a file so that a failure never leaves it half-written: the bytes
//! go to a temporary file beside the target (`.<name>.tmp-<pid>-<n>`), which
//! replaces the target by a rename only once it is complete and synced; on
//! any error the temporary file is removed and the target is untouched.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let p = dir.path().join("a.txt");
//! nnlab::atomic::write(&p, b"hello").unwrap();
//! assert_eq!(std::fs::read(&p).unwrap(), b"hello");
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temporary file for `path`, unique within the process.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Creates the temporary file, lets `fill` write it, syncs it and renames it over `path`.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    // Errors name the target the caller asked for (`--save runs/x`), the
    // temporary file only as a detail.
    let at_tmp = |e: std::io::Error| {
        Error::io(
            path,
            std::io::Error::new(
                e.kind(),
                format!("{e} (writing the temporary file {})", tmp.display()),
            ),
        )
    };
    let result = File::create(&tmp).map_err(at_tmp).and_then(|mut f| {
        fill(&mut f)?;
        f.sync_all().map_err(at_tmp)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    write_with(path, |f| f.write_all(bytes).map_err(|e| Error::io(path, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() -> crate::TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("x.bin");
        write(&p, b"old")?;
        let e = write_with(&p, |_| Err(Error::config("test", "fails mid-write"))).unwrap_err();
        assert!(e.to_string().contains("fails mid-write"));
        assert_eq!(std::fs::read(&p)?, b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path())?
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.bin")]);
        Ok(())
    }

    /// Issue 17: a failed save named the temporary file, not the target.
    #[test]
    fn errors_name_the_target() -> crate::TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("no-such-folder").join("model.safetensors");
        let e = write(&p, b"x").unwrap_err();
        match &e {
            Error::Io { path, .. } => assert_eq!(path, &p),
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("temporary file"), "{e}");
        Ok(())
    }
}
