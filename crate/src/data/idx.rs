//! The IDX format of MNIST and Fashion-MNIST (`train-images-idx3-ubyte.gz`, ...).
//!
//! A file is a big-endian header then raw `u8` data, gzip-compressed or not
//! (detected by the gzip magic `1f 8b`, not by the file name):
//!
//! ```text
//! images: 0x00000803  count  rows  cols   then count × rows × cols pixels (row-major)
//! labels: 0x00000801  count               then count label bytes
//! ```
//!
//! The magic is `00 00 <type 0x08 = u8> <number of dimensions>`; each
//! dimension is a big-endian `u32`. A gzip stream of several members is
//! read whole; reading stops at the size the dimensions promise (see
//! [`crate::data::bounded`]): a stream that expands further, a zero image
//! side or more than [`MAX_DATA`] bytes is an error naming the file.
//!
//! ```no_run
//! let classes = (0..10).map(|d| d.to_string()).collect();
//! let ds = nnlab::data::idx::read("mnist/train", "data/mnist/train-images-idx3-ubyte.gz",
//!                                 "data/mnist/train-labels-idx1-ubyte.gz", classes).unwrap();
//! assert_eq!((ds.len(), ds.shape), (60_000, [1, 28, 28]));
//! ```

use crate::data::{bounded, Dataset};
use crate::{Error, Result};
use std::path::Path;

/// Magic number of an IDX file of `u8` images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of `u8` labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// The images of an IDX file: `count × rows × cols` bytes, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Reads an images file (`...-images-idx3-ubyte[.gz]`).
pub fn read_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    let (dims, pixels) = read_idx(path, IMAGES_MAGIC, "IDX images")?;
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels,
    })
}

/// Reads a labels file (`...-labels-idx1-ubyte[.gz]`): one byte per sample.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    Ok(read_idx(path.as_ref(), LABELS_MAGIC, "IDX labels")?.1)
}

/// Reads an images file and its labels file into a [`Dataset`] of shape
/// `[1, rows, cols]`, `max_value` 255; the counts must agree.
pub fn read(
    name: &str,
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
    classes: Vec<String>,
) -> Result<Dataset> {
    let (images, labels) = (images.as_ref(), labels.as_ref());
    let (img, lab) = rayon::join(|| read_images(images), || read_labels(labels));
    let (img, lab) = (img?, lab?);
    if img.count != lab.len() {
        return Err(Error::format(
            labels,
            format!(
                "{} labels, expected {} (the image count of {})",
                lab.len(),
                img.count,
                images.display()
            ),
        ));
    }
    let labels_u32: Vec<u32> = lab.iter().map(|&l| l as u32).collect();
    if let Some((i, &l)) = lab
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes.len())
    {
        return Err(Error::format(
            labels,
            format!(
                "label {l} at index {i}, expected 0..{} ({} classes)",
                classes.len() - 1,
                classes.len()
            ),
        ));
    }
    Dataset::new(
        name,
        images.display().to_string(),
        classes,
        [1, img.rows, img.cols],
        img.pixels,
        labels_u32,
        255,
    )
}

/// Reads the file, checks the magic, returns the dimensions and the data.
/// The data is read up to the size the dimensions promise and no further
/// (one byte more tells that there is more): a gzip stream that expands past
/// it is an error, whatever its size.
fn read_idx(path: &Path, magic: u32, what: &str) -> Result<(Vec<usize>, Vec<u8>)> {
    let file_len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    let (mut src, gz) = bounded::open(path)?;
    let mut head = [0u8; 4];
    let got = bounded::read_full(path, &mut src, &mut head, gz)?;
    let ndims = check_magic(path, &head, got, magic, what)?;
    let mut dims_raw = vec![0u8; 4 * ndims];
    let got = bounded::read_full(path, &mut src, &mut dims_raw, gz)?;
    if got < dims_raw.len() {
        return Err(truncated(path, 4 + got, 4 + dims_raw.len(), "header"));
    }
    let dims = parse_dims(&dims_raw);
    let expected = data_len(path, &dims)?;
    let head_len = 4 + dims_raw.len();
    if !gz && file_len != (head_len + expected) as u64 {
        // an uncompressed file says its size before a byte of data is read
        let data = file_len.saturating_sub(head_len as u64) as usize;
        return finish(path, dims, vec![], expected, data);
    }
    // deflate expands at most ~1032×: a lying header cannot make us reserve more
    let capacity = if gz {
        expected.min((file_len as usize).saturating_mul(1032))
    } else {
        expected
    };
    let data = bounded::read_at_most_hinted(
        path,
        &mut src,
        expected as u64,
        gz,
        &format!("the {expected} bytes of dimensions {dims:?}"),
        capacity.saturating_add(1),
    )
    .map_err(|e| match e {
        Error::Format { path, what } if what.starts_with("truncated") => Error::format(
            path,
            format!("{what}; expected {expected} bytes of data for dimensions {dims:?}"),
        ),
        other => other,
    })?;
    let n = data.len();
    finish(path, dims, data, expected, n)
}

/// Checks that `present` data bytes (the length of `data` once it was
/// read) are the `expected` ones.
fn finish(
    path: &Path,
    dims: Vec<usize>,
    data: Vec<u8>,
    expected: usize,
    present: usize,
) -> Result<(Vec<usize>, Vec<u8>)> {
    let head = 4 + 4 * dims.len();
    if present < expected {
        return Err(truncated(
            path,
            head + present,
            head + expected,
            &format!("dimensions {dims:?}"),
        ));
    }
    if present > expected {
        return Err(Error::format(
            path,
            format!(
                "{present} bytes after the header, expected {expected} for dimensions {dims:?}"
            ),
        ));
    }
    Ok((dims, data))
}

fn truncated(path: &Path, present: usize, expected: usize, for_what: &str) -> Error {
    Error::format(
        path,
        format!(
            "truncated: {present} bytes (uncompressed), expected {expected} for the {for_what}"
        ),
    )
}

/// Checks the 4-byte magic; returns the number of dimensions.
fn check_magic(path: &Path, head: &[u8], len: usize, magic: u32, what: &str) -> Result<usize> {
    if len < 4 {
        return Err(truncated(path, len, 4, "magic number"));
    }
    let found = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if found != magic {
        return Err(Error::format(
            path,
            format!("wrong magic number 0x{found:08x}, expected 0x{magic:08x} ({what})"),
        ));
    }
    Ok((magic & 0xff) as usize)
}

fn parse_dims(raw: &[u8]) -> Vec<usize> {
    raw.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect()
}

/// The most data bytes an IDX file may hold: 4 GiB, 85× MNIST's 47 MB of
/// training images.
pub const MAX_DATA: usize = 1 << 32;

/// The data size the dimensions promise; a zero image side (a dataset of no
/// pixels) or a product over [`MAX_DATA`] is an error naming the file.
fn data_len(path: &Path, dims: &[usize]) -> Result<usize> {
    const NAMES: [&str; 3] = ["count", "rows", "cols"];
    if let Some(i) = dims.iter().skip(1).position(|&d| d == 0) {
        return Err(Error::format(
            path,
            format!(
                "dimensions {dims:?}: {} is 0, expected at least 1",
                NAMES.get(i + 1).unwrap_or(&"a dimension")
            ),
        ));
    }
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_DATA)
        .ok_or_else(|| {
            Error::format(
                path,
                format!("dimensions {dims:?} hold more than {MAX_DATA} bytes, the most an IDX file may hold here"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn classes() -> Vec<String> {
        (0..10).map(|d| d.to_string()).collect()
    }

    /// 3 images of 2×2, pixel value = 10·image + position.
    fn files(dir: &Path, compress: bool) -> (std::path::PathBuf, std::path::PathBuf) {
        let px: Vec<u8> = (0..3)
            .flat_map(|i| (0..4).map(move |p| 10 * i + p))
            .collect();
        let (img, lab) = (
            idx(IMAGES_MAGIC, &[3, 2, 2], &px),
            idx(LABELS_MAGIC, &[3], &[7, 0, 9]),
        );
        let (ip, lp) = (dir.join("img"), dir.join("lab"));
        std::fs::write(&ip, if compress { gz(&img) } else { img }).unwrap();
        std::fs::write(&lp, if compress { gz(&lab) } else { lab }).unwrap();
        (ip, lp)
    }

    #[test]
    fn reads_raw_and_gzip() -> crate::TestResult {
        for compress in [false, true] {
            let dir = tempfile::tempdir()?;
            let (ip, lp) = files(dir.path(), compress);
            let ds = read("toy/train", &ip, &lp, classes())?;
            assert_eq!(ds.shape, [1, 2, 2]);
            assert_eq!(ds.labels, vec![7, 0, 9]);
            assert_eq!(ds.image(2), &[20, 21, 22, 23]);
            assert_eq!(ds.max_value, 255);
        }
        Ok(())
    }

    #[test]
    fn wrong_magic_says_found_and_expected() -> crate::TestResult {
        let dir = tempfile::tempdir()?;
        let (ip, lp) = files(dir.path(), true);
        let e = read_images(&lp).unwrap_err().to_string();
        assert!(
            e.contains("lab") && e.contains("0x00000801") && e.contains("expected 0x00000803"),
            "{e}"
        );
        let e = read_labels(&ip).unwrap_err().to_string();
        assert!(
            e.contains("wrong magic number 0x00000803, expected 0x00000801"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn truncated_files_say_present_and_expected() -> crate::TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("short");
        // raw: header says 3 images of 2×2 = 12 bytes, only 5 present
        std::fs::write(&p, idx(IMAGES_MAGIC, &[3, 2, 2], &[1, 2, 3, 4, 5]))?;
        let e = read_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("short") && e.contains("truncated: 21 bytes") && e.contains("expected 28"),
            "{e}"
        );
        // gzip of a short file: a complete stream with too little data
        std::fs::write(&p, gz(&idx(IMAGES_MAGIC, &[3, 2, 2], &[1, 2, 3, 4, 5])))?;
        let e = read_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("truncated: 21 bytes") && e.contains("expected 28"),
            "{e}"
        );
        // a gzip stream cut in the middle
        let full = gz(&idx(IMAGES_MAGIC, &[300, 20, 20], &vec![7u8; 120_000]));
        std::fs::write(&p, &full[..full.len() / 2])?;
        let e = read_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("truncated") && e.contains("expected 120000"),
            "{e}"
        );
        // header cut
        std::fs::write(&p, [0u8, 0, 8])?;
        let e = read_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("truncated: 3 bytes") && e.contains("expected 4"),
            "{e}"
        );
        std::fs::write(&p, idx(IMAGES_MAGIC, &[3], &[]))?;
        let e = read_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("truncated: 8 bytes") && e.contains("expected 16"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn extra_bytes_are_an_error() -> crate::TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("long");
        std::fs::write(&p, idx(LABELS_MAGIC, &[2], &[1, 2, 3]))?;
        let e = read_labels(&p).unwrap_err().to_string();
        assert!(e.contains("3 bytes after the header, expected 2"), "{e}");
        Ok(())
    }

    #[test]
    fn count_mismatch_and_bad_label() -> crate::TestResult {
        let dir = tempfile::tempdir()?;
        let (ip, _) = files(dir.path(), false);
        let lp = dir.path().join("lab2");
        std::fs::write(&lp, idx(LABELS_MAGIC, &[2], &[1, 2]))?;
        let e = read("t", &ip, &lp, classes()).unwrap_err().to_string();
        assert!(
            e.contains("lab2") && e.contains("2 labels, expected 3"),
            "{e}"
        );
        std::fs::write(&lp, idx(LABELS_MAGIC, &[3], &[1, 12, 2]))?;
        let e = read("t", &ip, &lp, classes()).unwrap_err().to_string();
        assert!(e.contains("label 12 at index 1"), "{e}");
        Ok(())
    }

    /// Issue 17: a small gzip file whose stream expands far past what the
    /// header promises stops at the promised size (+1 byte), whatever it holds.
    #[test]
    fn gzip_expanding_past_the_header_stops_there() -> crate::TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("bomb-idx1-ubyte.gz");
        std::fs::write(&p, gz(&idx(LABELS_MAGIC, &[10], &vec![1u8; 64 << 20])))?;
        assert!(std::fs::metadata(&p)?.len() < 200_000);
        let e = read_labels(&p).unwrap_err().to_string();
        assert!(
            e.contains("bomb-idx1-ubyte.gz")
                && e.contains("more than 10 bytes (uncompressed)")
                && e.contains("stopped reading"),
            "{e}"
        );
        Ok(())
    }

    /// Issue 17: multi-member gzip is valid; a corrupt stream is corrupt, not truncated.
    #[test]
    fn multi_member_gzip_and_corrupt_streams() -> crate::TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("two-members");
        let file = idx(IMAGES_MAGIC, &[2, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut two = gz(&file[..9]);
        two.extend(gz(&file[9..]));
        std::fs::write(&p, &two)?;
        let img = read_images(&p)?;
        assert_eq!(
            (img.count, img.pixels.clone()),
            (2, vec![1, 2, 3, 4, 5, 6, 7, 8])
        );
        let mut bad = gz(&file);
        let n = bad.len();
        bad[n - 5] ^= 0x55; // CRC
        std::fs::write(&p, &bad)?;
        let e = read_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("corrupt gzip stream") && !e.contains("truncated"),
            "{e}"
        );
        Ok(())
    }

    /// Issue 17: a zero image side names the file and the dimension.
    #[test]
    fn zero_rows_name_the_file() -> crate::TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("zero-rows");
        std::fs::write(&p, idx(IMAGES_MAGIC, &[3, 0, 2], &[]))?;
        let e = read_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("zero-rows") && e.contains("rows is 0, expected at least 1"),
            "{e}"
        );
        std::fs::write(&p, idx(IMAGES_MAGIC, &[u32::MAX, u32::MAX, 2], &[]))?;
        let e = read_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("zero-rows") && e.contains("hold more than"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = read_images("/nonexistent/x-idx3-ubyte.gz")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/x-idx3-ubyte.gz"), "{e}");
    }
}
