//! Reading dataset bytes with a ceiling: every reader stops at the size its
//! header or the official file promises (plus a small margin) and says so,
//! instead of decompressing whatever a file expands to.
//!
//! ```text
//! gzip (RFC 1952)  one or more members, each  1f 8b 08 … deflate … crc32 isize
//! ```
//!
//! [`open`] detects gzip by its magic `1f 8b` (not by the file name) and
//! decodes every member ([`flate2::read::MultiGzDecoder`], like `gzip -d`
//! and Python's `gzip`); [`read_at_most`] reads at most `limit + 1` bytes
//! and errs when there are more. A stream that ends early is called
//! *truncated*, one that does not decode (bad header, bad deflate data, bad
//! CRC) *corrupt* ([`stream_error`]).
//!
//! ```
//! use nnlab::data::bounded::{open, read_at_most};
//! let dir = tempfile::tempdir().unwrap();
//! let p = dir.path().join("a.bin");
//! std::fs::write(&p, vec![7u8; 100]).unwrap();
//! let (mut r, gz) = open(&p).unwrap();
//! assert!(!gz);
//! let e = read_at_most(&p, &mut r, 10, false, "the header's 10 bytes").unwrap_err().to_string();
//! assert!(e.contains("more than 10 bytes") && e.contains("stopped reading"), "{e}");
//! ```

use crate::{Error, Result};
use flate2::read::MultiGzDecoder;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Opens a regular file as a byte stream, gunzipped when it starts with the
/// gzip magic: `(reader, was gzip)`. A FIFO, device or folder is refused
/// before it is read (a FIFO would block, `/dev/zero` never ends).
pub fn open(path: &Path) -> Result<(Box<dyn Read + Send>, bool)> {
    let file = open_regular(path)?;
    let mut r = BufReader::with_capacity(1 << 16, file);
    let head = r.fill_buf().map_err(|e| Error::io(path, e))?;
    let gz = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    Ok(if gz {
        (Box::new(MultiGzDecoder::new(r)), true)
    } else {
        (Box::new(r), false)
    })
}

/// Opens `path` for reading when it is a regular file (symbolic links
/// followed); anything else is an [`Error::Format`] naming its type. The
/// file is opened non-blocking so that a FIFO swapped in after the check
/// cannot hang the open, and its type is checked again on the open handle.
pub fn open_regular(path: &Path) -> Result<std::fs::File> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::missing(path, "expected a regular file"),
        _ => Error::io(path, e),
    })?;
    check_regular(path, &meta)?;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    check_regular(path, &meta)?;
    Ok(file)
}

/// An error naming what `path` is when it is not a regular file.
pub fn check_regular(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    let kind = if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(Error::format(
        path,
        format!("{kind}, expected a regular file"),
    ))
}

/// Reads the rest of `r` when it holds at most `limit` bytes; more is an
/// error saying the limit and `what` promised it, and reading stops there
/// (at most `limit + 1` bytes are ever held). `gz` says whether `r`
/// decompresses (for the wording of [`stream_error`]).
pub fn read_at_most(
    path: &Path,
    r: &mut dyn Read,
    limit: u64,
    gz: bool,
    what: &str,
) -> Result<Vec<u8>> {
    read_at_most_hinted(path, r, limit, gz, what, 1 << 16)
}

/// [`read_at_most`] into a buffer of `capacity` bytes to start with (the
/// expected size when it is known and trusted, e.g. a file's length): one
/// allocation instead of a doubling series.
pub fn read_at_most_hinted(
    path: &Path,
    r: &mut dyn Read,
    limit: u64,
    gz: bool,
    what: &str,
    capacity: usize,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity((capacity as u64).min(limit.saturating_add(1)) as usize);
    r.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| stream_error(path, &e, gz, out.len()))?;
    if out.len() as u64 > limit {
        return Err(Error::format(
            path,
            format!(
                "more than {limit} bytes{}, expected at most {limit} ({what}); stopped reading there",
                if gz { " (uncompressed)" } else { "" }
            ),
        ));
    }
    Ok(out)
}

/// Fills `buf` unless the stream ends first; returns the bytes read.
pub fn read_full(path: &Path, r: &mut dyn Read, buf: &mut [u8], gz: bool) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(stream_error(path, &e, gz, n)),
        }
    }
    Ok(n)
}

/// The error for a failed read after `got` bytes: a gzip stream that ends
/// early is *truncated*, one that does not decode is *corrupt*.
pub fn stream_error(path: &Path, e: &std::io::Error, gz: bool, got: usize) -> Error {
    if !gz {
        return Error::format(path, format!("read failed after {got} bytes: {e}"));
    }
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::format(
            path,
            format!("truncated: the gzip stream ends after {got} bytes (uncompressed) without its trailer ({e})"),
        )
    } else {
        Error::format(
            path,
            format!("corrupt gzip stream after {got} bytes (uncompressed): {e}"),
        )
    }
}

/// A reader that fails (instead of ending) once more than `limit` bytes
/// went through it: the ceiling of a stream read by a parser that does not
/// take a length (a tar archive inside a gzip stream).
pub struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
    what: &'static str,
}

impl<R: Read> Capped<R> {
    pub fn new(inner: R, limit: u64, what: &'static str) -> Capped<R> {
        Capped {
            inner,
            left: limit,
            limit,
            what,
        }
    }
}

/// The message of the error a [`Capped`] reader returns: the readers that
/// use it look for it to name the limit in their own error.
pub const CAPPED: &str = "stopped reading at the ceiling";

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // one byte past the limit tells "exactly the limit" from "more"
        let want = buf
            .len()
            .min(self.left.saturating_add(1).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "more than {} bytes (uncompressed), expected at most {} ({}); {CAPPED}",
                self.limit, self.limit, self.what
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Issue 17: two gzip members are one stream (gzip -d, Python's gzip).
    #[test]
    fn multi_member_gzip_is_read_whole() -> crate::TestResult {
        let d = tempfile::tempdir()?;
        let p = d.path().join("two.gz");
        let mut two = gz(b"hello, ");
        two.extend(gz(b"world"));
        std::fs::write(&p, two)?;
        let (mut r, is_gz) = open(&p)?;
        assert!(is_gz);
        assert_eq!(read_at_most(&p, &mut r, 12, true, "test")?, b"hello, world");
        Ok(())
    }

    /// Issue 17: a bomb stops at the limit; a cut stream is truncated, a
    /// flipped byte corrupt.
    #[test]
    fn limit_truncated_and_corrupt_are_told_apart() -> crate::TestResult {
        let d = tempfile::tempdir()?;
        let p = d.path().join("x.gz");
        std::fs::write(&p, gz(&vec![0u8; 50_000_000]))?;
        assert!(std::fs::metadata(&p)?.len() < 100_000);
        let (mut r, _) = open(&p)?;
        let e = read_at_most(&p, &mut r, 1000, true, "a test header")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.gz")
                && e.contains("more than 1000 bytes (uncompressed)")
                && e.contains("a test header"),
            "{e}"
        );

        let full = gz(&(0..200_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<u8>>());
        std::fs::write(&p, &full[..full.len() / 2])?;
        let (mut r, _) = open(&p)?;
        let e = read_at_most(&p, &mut r, 1 << 20, true, "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated") && !e.contains("corrupt"), "{e}");

        let mut bad = full.clone();
        let n = bad.len();
        bad[n - 6] ^= 0xff; // the CRC
        std::fs::write(&p, &bad)?;
        let (mut r, _) = open(&p)?;
        let e = read_at_most(&p, &mut r, 1 << 20, true, "t")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("corrupt gzip stream") && !e.contains("truncated"),
            "{e}"
        );
        let mut bad = full;
        for b in &mut bad[20..60] {
            *b = 0xff; // the deflate data
        }
        std::fs::write(&p, &bad)?;
        let (mut r, _) = open(&p)?;
        let e = read_at_most(&p, &mut r, 1 << 20, true, "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("corrupt gzip stream"), "{e}");
        Ok(())
    }

    /// Issue 17: FIFOs and devices are refused before they are read.
    #[test]
    fn special_files_are_refused() -> crate::TestResult {
        let e = open(Path::new("/dev/zero"))
            .err()
            .ok_or("None from open(Path::new(\"/dev/zero\")).err()")?
            .to_string();
        assert!(
            e.contains("/dev/zero") && e.contains("character device"),
            "{e}"
        );
        let d = tempfile::tempdir()?;
        let fifo = d.path().join("pipe");
        let ok = std::process::Command::new("mkfifo").arg(&fifo).status()?;
        assert!(ok.success());
        let e = open(&fifo)
            .err()
            .ok_or("None from open(&fifo).err()")?
            .to_string();
        assert!(e.contains("pipe") && e.contains("FIFO"), "{e}");
        let e = open(d.path())
            .err()
            .ok_or("None from open(d.path()).err()")?
            .to_string();
        assert!(e.contains("a folder"), "{e}");
        Ok(())
    }

    #[test]
    fn capped_reader_fails_past_the_limit() -> crate::TestResult {
        let data = [1u8; 100];
        let mut ok = Vec::new();
        Capped::new(&data[..], 100, "t").read_to_end(&mut ok)?;
        assert_eq!(ok.len(), 100);
        let e = Capped::new(&data[..], 99, "the official size")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(
            e.to_string().contains("more than 99 bytes") && e.to_string().contains(CAPPED),
            "{e}"
        );
        Ok(())
    }
}
