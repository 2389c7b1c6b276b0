//! CIFAR-10 in its official binary layout: `cifar-10-batches-bin/` with
//! `data_batch_1.bin` … `data_batch_5.bin` (train, 10,000 records each),
//! `test_batch.bin` (test) and `batches.meta.txt` (the ten class names, one a
//! line), read from the extracted folder or straight from
//! `cifar-10-binary.tar.gz` (tar + gzip, nothing extracted to disk).
//!
//! Each record is 3,073 bytes: 1 label byte (0–9), then 3,072 pixels —
//! 1,024 red, 1,024 green, 1,024 blue, each plane 32×32 row-major — which is
//! already our CHW layout, so a record's pixels are copied as they are.
//!
//! Bounded reading: a batch is read up to [`MEMBER_MAX`] bytes (an official
//! batch of 10,000 records), `batches.meta.txt` up to [`META_MAX`]; an
//! archive's gzip stream up to [`ARCHIVE_MAX`] (the official archive's size
//! plus a margin). Two members with the same file name are an error, never
//! "the last one wins".
//!
//! ```no_run
//! let (train, test) = nnlab::data::cifar::read_path("data/cifar10/cifar-10-binary.tar.gz").unwrap();
//! assert_eq!((train.len(), test.len(), train.shape), (50_000, 10_000, [3, 32, 32]));
//! ```

use crate::data::bounded::{Capped, CAPPED};
use crate::data::Dataset;
use crate::{Error, Result};
use flate2::read::MultiGzDecoder;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bytes in one record: a label and a 3×32×32 image.
pub const RECORD: usize = 1 + 3 * 32 * 32;
/// The folder inside the official archive.
pub const FOLDER: &str = "cifar-10-batches-bin";
/// The class names in label order (as in `batches.meta.txt`).
pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Appends the records of one batch file (`bytes`, read from `path`) to
/// `pixels` and `labels`.
pub fn parse_batch(
    path: &Path,
    bytes: &[u8],
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u32>,
) -> Result<()> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(Error::format(
            path,
            format!(
                "{} bytes, expected a positive multiple of {RECORD} (1 label byte + 3072 pixel bytes per record); {} whole records and {} bytes left over",
                bytes.len(),
                bytes.len() / RECORD,
                bytes.len() % RECORD
            ),
        ));
    }
    pixels.reserve(bytes.len() / RECORD * (RECORD - 1));
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(Error::format(
                path,
                format!("record {i}: label {}, expected 0–9", rec[0]),
            ));
        }
        labels.push(rec[0] as u32);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok(())
}

/// Reads a CIFAR-10 source: a `.tar.gz` archive, a `cifar-10-batches-bin`
/// folder, a folder holding one, or a folder holding the archive.
/// Returns `(train, test)`.
pub fn read_path(path: impl AsRef<Path>) -> Result<(Dataset, Dataset)> {
    let path = path.as_ref();
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_file() {
        return read_archive(path);
    }
    if path.join(FOLDER).is_dir() {
        return read_dir(path.join(FOLDER));
    }
    if path.join("test_batch.bin").is_file() || path.join("data_batch_1.bin").is_file() {
        return read_dir(path);
    }
    let mut archives: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".tar.gz") || n.ends_with(".tgz"))
        })
        .collect();
    archives.sort();
    if let Some(official) = archives
        .iter()
        .find(|p| p.ends_with("cifar-10-binary.tar.gz"))
    {
        return read_archive(official);
    }
    match archives.len() {
        1 => read_archive(&archives[0]),
        0 => Err(Error::missing(
            path.join(FOLDER),
            "expected a cifar-10-batches-bin/ folder (data_batch_1..5.bin, test_batch.bin) or cifar-10-binary.tar.gz here",
        )),
        _ => Err(Error::format(
            path,
            format!(
                "{} archives ({}), expected one CIFAR-10 .tar.gz",
                archives.len(),
                archives.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// Records in one official batch file.
pub const BATCH_RECORDS: usize = 10_000;
/// The most bytes a member is read up to: an official batch
/// (10,000 records); `batches.meta.txt` is held to [`META_MAX`].
pub const MEMBER_MAX: u64 = (BATCH_RECORDS * RECORD) as u64;
/// The most bytes of `batches.meta.txt` (the official one is 61).
pub const META_MAX: u64 = 4096;
/// The most bytes the gzip stream of an archive is read up to: the six
/// official batches plus 1 MiB for tar headers, padding,
/// `batches.meta.txt` and `readme.html` (the official archive expands to
/// ≈ 184.4 MB).
pub const ARCHIVE_MAX: u64 = 6 * MEMBER_MAX + (1 << 20);

/// The ceiling of a member or file named `name`.
fn limit_of(name: &str) -> u64 {
    if name == "batches.meta.txt" {
        META_MAX
    } else {
        MEMBER_MAX
    }
}

/// Reads an extracted `cifar-10-batches-bin/` folder.
pub fn read_dir(dir: impl AsRef<Path>) -> Result<(Dataset, Dataset)> {
    let dir = dir.as_ref();
    let mut files = BTreeMap::new();
    for name in batch_names().chain(["batches.meta.txt".to_string()]) {
        let p = dir.join(&name);
        if std::fs::symlink_metadata(&p).is_ok() {
            let (mut r, gz) = crate::data::bounded::open(&p)?;
            let limit = limit_of(&name);
            let len = std::fs::metadata(&p)
                .map(|m| m.len())
                .unwrap_or(0)
                .min(limit) as usize;
            let bytes = crate::data::bounded::read_at_most_hinted(
                &p,
                &mut r,
                limit,
                gz,
                "the size of an official CIFAR-10 batch",
                len + 1,
            )?;
            files.insert(name, (p.clone(), bytes));
        }
    }
    assemble(dir, &dir.display().to_string(), files)
}

/// Reads the batches straight out of a `.tar.gz` (the official
/// `cifar-10-binary.tar.gz` or a copy in the same layout).
pub fn read_archive(path: impl AsRef<Path>) -> Result<(Dataset, Dataset)> {
    let path = path.as_ref();
    let file = crate::data::bounded::open_regular(path)?;
    let gz = MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file));
    let mut tar = tar::Archive::new(Capped::new(
        gz,
        ARCHIVE_MAX,
        "six official CIFAR-10 batches and the archive's other members",
    ));
    let bad = |e: std::io::Error| {
        let e = e.to_string();
        if e.contains(CAPPED) {
            Error::format(path, e)
        } else if e.contains("corrupt") || e.contains("invalid gzip header") {
            Error::format(
                path,
                format!("not a readable tar.gz archive: corrupt gzip stream: {e}"),
            )
        } else {
            Error::format(path, format!("not a readable tar.gz archive: {e}"))
        }
    };
    let wanted: Vec<String> = batch_names()
        .chain(["batches.meta.txt".to_string()])
        .collect();
    let mut files: BTreeMap<String, (PathBuf, Vec<u8>)> = BTreeMap::new();
    for entry in tar.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let inner = entry.path().map_err(bad)?.into_owned();
        let Some(name) = inner
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if !wanted.contains(&name) || !entry.header().entry_type().is_file() {
            continue;
        }
        let label = PathBuf::from(format!("{} (in {})", inner.display(), path.display()));
        if let Some((first, _)) = files.get(&name) {
            return Err(Error::format(
                path,
                format!(
                    "two members named {name}: {} and {}, expected one",
                    first.display(),
                    inner.display()
                ),
            ));
        }
        let limit = limit_of(&name);
        if entry.size() > limit {
            return Err(Error::format(
                &label,
                format!(
                    "{} bytes, expected at most {limit} (an official CIFAR-10 {}); not read",
                    entry.size(),
                    if limit == META_MAX {
                        "batches.meta.txt"
                    } else {
                        "batch of 10,000 records"
                    }
                ),
            ));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.take(limit).read_to_end(&mut bytes).map_err(bad)?;
        files.insert(name, (label, bytes));
    }
    assemble(path, &path.display().to_string(), files)
}

fn batch_names() -> impl Iterator<Item = String> {
    (1..=5)
        .map(|i| format!("data_batch_{i}.bin"))
        .chain(["test_batch.bin".to_string()])
}

/// Builds train (data_batch_1.. in order, consecutive) and test from the files found.
fn assemble(
    at: &Path,
    source: &str,
    files: BTreeMap<String, (PathBuf, Vec<u8>)>,
) -> Result<(Dataset, Dataset)> {
    let classes = match files.get("batches.meta.txt") {
        Some((p, bytes)) => parse_meta(p, bytes)?,
        None => CLASSES.iter().map(|s| s.to_string()).collect(),
    };
    let n_train = (1..=5)
        .take_while(|i| files.contains_key(&format!("data_batch_{i}.bin")))
        .count();
    if n_train == 0 {
        return Err(Error::missing(
            at.join(FOLDER).join("data_batch_1.bin"),
            "CIFAR-10 needs data_batch_1.bin … data_batch_5.bin",
        ));
    }
    if let Some(extra) =
        (n_train + 1..=5).find(|i| files.contains_key(&format!("data_batch_{i}.bin")))
    {
        return Err(Error::missing(
            at.join(FOLDER)
                .join(format!("data_batch_{}.bin", n_train + 1)),
            format!("data_batch_{extra}.bin is there but the batches before it are not"),
        ));
    }
    let (mut px, mut lab) = (Vec::new(), Vec::new());
    for i in 1..=n_train {
        let (p, bytes) = &files[&format!("data_batch_{i}.bin")];
        parse_batch(p, bytes, &mut px, &mut lab)?;
    }
    let train = Dataset::new(
        "cifar10/train",
        source,
        classes.clone(),
        [3, 32, 32],
        px,
        lab,
        255,
    )?;
    let (p, bytes) = files.get("test_batch.bin").ok_or_else(|| {
        Error::missing(
            at.join(FOLDER).join("test_batch.bin"),
            "CIFAR-10 needs test_batch.bin",
        )
    })?;
    let (mut px, mut lab) = (Vec::new(), Vec::new());
    parse_batch(p, bytes, &mut px, &mut lab)?;
    let test = Dataset::new("cifar10/test", source, classes, [3, 32, 32], px, lab, 255)?;
    Ok((train, test))
}

fn parse_meta(path: &Path, bytes: &[u8]) -> Result<Vec<String>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::format(path, format!("not UTF-8 text: {e}")))?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if names.len() != 10 {
        return Err(Error::format(
            path,
            format!("{} class names, expected 10 (one a line)", names.len()),
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// `n` records: label i % 10, pixel j of record i = (i + j) % 256.
    fn batch(n: usize, first: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for i in first..first + n {
            v.push((i % 10) as u8);
            v.extend((0..3072).map(|j| ((i + j) % 256) as u8));
        }
        v
    }

    fn write_dir(dir: &Path, batches: &[usize]) {
        std::fs::create_dir_all(dir).unwrap();
        for &b in batches {
            std::fs::write(
                dir.join(format!("data_batch_{b}.bin")),
                batch(3, 3 * (b - 1)),
            )
            .unwrap();
        }
        std::fs::write(dir.join("test_batch.bin"), batch(2, 100)).unwrap();
        std::fs::write(dir.join("batches.meta.txt"), CLASSES.join("\n") + "\n\n").unwrap();
    }

    #[test]
    fn reads_folder_and_archive_alike() -> crate::TestResult {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join(FOLDER);
        write_dir(&dir, &[1, 2]);
        let (train, test) = read_path(tmp.path())?;
        assert_eq!((train.len(), test.len(), train.shape), (6, 2, [3, 32, 32]));
        assert_eq!(train.labels, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(train.image(4)[0..3], [4, 5, 6]);
        assert_eq!(train.image(4)[3071], ((4 + 3071) % 256) as u8);
        assert_eq!(test.labels, vec![0, 1]);
        assert_eq!(train.classes[9], "truck");

        let tgz = tmp.path().join("c.tar.gz");
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            std::fs::File::create(&tgz)?,
            flate2::Compression::fast(),
        ));
        b.append_dir_all(FOLDER, &dir)?;
        b.into_inner()?.finish()?.flush()?;
        let (train2, test2) = read_path(&tgz)?;
        assert_eq!((train2.pixels, test2.labels), (train.pixels, test.labels));
        assert!(train2.source.ends_with("c.tar.gz"));
        Ok(())
    }

    /// A tar.gz of `members` (name, declared size, bytes written).
    fn tgz(path: &Path, members: &mut [(&str, u64, &mut dyn std::io::Read)]) {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            std::fs::File::create(path).unwrap(),
            flate2::Compression::fast(),
        ));
        for (name, size, data) in members.iter_mut() {
            let mut h = tar::Header::new_gnu();
            h.set_path(name).unwrap();
            h.set_size(*size);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap().flush().unwrap();
    }

    /// Issue 17: two members with one file name are an error naming both,
    /// not "the last one wins".
    #[test]
    fn duplicate_members_are_an_error() -> crate::TestResult {
        let tmp = tempfile::tempdir()?;
        let p = tmp.path().join("dup.tar.gz");
        let (a, b, t) = (batch(1, 0), batch(1, 5), batch(1, 9));
        tgz(
            &p,
            &mut [
                (
                    "cifar-10-batches-bin/data_batch_1.bin",
                    a.len() as u64,
                    &mut &a[..],
                ),
                ("other/data_batch_1.bin", b.len() as u64, &mut &b[..]),
                (
                    "cifar-10-batches-bin/test_batch.bin",
                    t.len() as u64,
                    &mut &t[..],
                ),
            ],
        );
        let e = read_archive(&p).unwrap_err().to_string();
        assert!(
            e.contains("dup.tar.gz")
                && e.contains("two members named data_batch_1.bin")
                && e.contains("other/data_batch_1.bin"),
            "{e}"
        );
        Ok(())
    }

    /// Issue 17: a member larger than an official batch is refused from its
    /// header, and a stream past the official archive's size stops there.
    #[test]
    fn oversized_member_and_archive_stop_at_the_official_size() -> crate::TestResult {
        let tmp = tempfile::tempdir()?;
        let p = tmp.path().join("big.tar.gz");
        let n = MEMBER_MAX + 1;
        tgz(
            &p,
            &mut [("data_batch_1.bin", n, &mut std::io::repeat(0).take(n))],
        );
        let e = read_archive(&p).unwrap_err().to_string();
        assert!(
            e.contains("data_batch_1.bin (in")
                && e.contains(&format!("{n} bytes, expected at most {MEMBER_MAX}")),
            "{e}"
        );
        let n = ARCHIVE_MAX + 1;
        tgz(
            &p,
            &mut [("readme.html", n, &mut std::io::repeat(0).take(n))],
        );
        let e = read_archive(&p).unwrap_err().to_string();
        assert!(
            e.contains("big.tar.gz")
                && e.contains(&format!("more than {ARCHIVE_MAX} bytes (uncompressed)")),
            "{e}"
        );
        let dir = tmp.path().join("d");
        write_dir(&dir, &[1]);
        std::fs::write(
            dir.join("batches.meta.txt"),
            vec![b'a'; META_MAX as usize + 1],
        )?;
        let e = read_dir(&dir).unwrap_err().to_string();
        assert!(
            e.contains("batches.meta.txt") && e.contains(&format!("more than {META_MAX} bytes")),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn bad_records() -> crate::TestResult {
        let tmp = tempfile::tempdir()?;
        let p = tmp.path().join("data_batch_1.bin");
        let (mut px, mut lab) = (Vec::new(), Vec::new());
        let e = parse_batch(&p, &batch(2, 0)[..5000], &mut px, &mut lab)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data_batch_1.bin")
                && e.contains("5000 bytes")
                && e.contains("multiple of 3073"),
            "{e}"
        );
        let mut b = batch(2, 0);
        b[RECORD] = 10;
        let e = parse_batch(&p, &b, &mut px, &mut lab)
            .unwrap_err()
            .to_string();
        assert!(e.contains("record 1: label 10, expected 0–9"), "{e}");
        Ok(())
    }

    #[test]
    fn missing_pieces() -> crate::TestResult {
        let tmp = tempfile::tempdir()?;
        let e = read_path(tmp.path()).unwrap_err().to_string();
        assert!(
            e.contains("not found") && e.contains("cifar-10-binary.tar.gz"),
            "{e}"
        );
        let dir = tmp.path().join(FOLDER);
        write_dir(&dir, &[1, 3]);
        let e = read_path(tmp.path()).unwrap_err().to_string();
        assert!(
            e.contains("data_batch_2.bin") && e.contains("data_batch_3.bin is there"),
            "{e}"
        );
        std::fs::remove_file(dir.join("data_batch_3.bin"))?;
        std::fs::remove_file(dir.join("test_batch.bin"))?;
        let e = read_path(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("test_batch.bin"), "{e}");
        std::fs::write(dir.join("batches.meta.txt"), "a\nb\n")?;
        let e = read_dir(&dir).unwrap_err().to_string();
        assert!(
            e.contains("batches.meta.txt") && e.contains("2 class names, expected 10"),
            "{e}"
        );
        let junk = tmp.path().join("junk.tar.gz");
        std::fs::write(&junk, b"\x1f\x8b\x08\x00junk")?;
        let e = read_archive(&junk).unwrap_err().to_string();
        assert!(
            e.contains("junk.tar.gz") && e.contains("not a readable tar.gz"),
            "{e}"
        );
        std::fs::write(&junk, b"not gzip")?;
        let e = read_archive(&junk).unwrap_err().to_string();
        assert!(
            e.contains("junk.tar.gz") && e.contains("not a readable tar.gz"),
            "{e}"
        );
        Ok(())
    }
}
