//! SVHN cropped digits (`train_32x32.mat`, `test_32x32.mat`): a MATLAB v5
//! `.mat` reader for the two variables the files hold.
//!
//! Format (MATLAB "MAT-File Format", level 5):
//!
//! ```text
//! header   128 bytes: 116 text ("MATLAB 5.0 MAT-file ..."), 8 subsystem offset,
//!          version u16 = 0x0100, endian indicator "IM" (little) or "MI" (big)
//! element  tag (type u32, nbytes u32) + data, padded to 8 bytes; a "small"
//!          element packs nbytes:u16 | type:u16 into 4 bytes with ≤ 4 data bytes
//! miCOMPRESSED (15)  zlib stream holding one element (not padded)
//! miMATRIX (14)      array flags (miUINT32: class in the low byte), dimensions
//!                    (miINT32), name (miINT8), real part (any numeric type)
//! ```
//!
//! `X` is uint8 `32×32×3×N` in column-major (Fortran) order, so pixel
//! `(row r, col c, channel ch, sample n)` is at `r + 32c + 1024ch + 3072n`;
//! it becomes our CHW `n·3072 + ch·1024 + r·32 + c`. `y` is `N×1` (double in
//! the official files, any numeric type accepted) with labels 1–10 where 10
//! means the digit 0 (torchvision maps it to 0 too).
//!
//! Hostile files: a file over [`MAX_FILE`] bytes, a compressed element that
//! claims or expands past [`MAX_ELEMENT`] bytes (reading stops at the size
//! its tag says), H or W = 0, and dimensions whose product overflows are
//! errors naming the file, never a panic.
//!
//! ```no_run
//! let ds = nnlab::data::svhn::read("data/svhn/test_32x32.mat", "svhn/test").unwrap();
//! assert_eq!((ds.len(), ds.shape), (26_032, [3, 32, 32]));
//! ```

use crate::data::Dataset;
use crate::{Error, Result};
use flate2::read::ZlibDecoder;
use rayon::prelude::*;
use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// The largest `.mat` file read: 256 MiB (the official `train_32x32.mat`
/// is 182 MB, `test_32x32.mat` 64 MB).
pub const MAX_FILE: u64 = 256 << 20;
/// The largest element a compressed element may expand to: 256 MiB (the
/// official train set's `X` is 73,257 × 3,072 = 225 MB).
pub const MAX_ELEMENT: u64 = 256 << 20;

/// Reads an SVHN `.mat` file into a [`Dataset`] named `name` (classes "0".."9").
/// A file over [`MAX_FILE`] bytes is an error before it is read.
pub fn read(path: impl AsRef<Path>, name: &str) -> Result<Dataset> {
    let path = path.as_ref();
    let mut f = crate::data::bounded::open_regular(path)?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0).min(MAX_FILE) as usize;
    let bytes = crate::data::bounded::read_at_most_hinted(
        path,
        &mut f,
        MAX_FILE,
        false,
        "the size of the official train_32x32.mat and a margin",
        len + 1,
    )?;
    parse(path, &bytes, name)
}

/// Decompresses the zlib stream of a compressed element at byte `pos`: up
/// to the size the tag of the element inside says (padded to 8 bytes), and
/// at most [`MAX_ELEMENT`] bytes.
fn inflate(path: &Path, data: &[u8], pos: usize, endian: Endian) -> Result<Vec<u8>> {
    let bad = |e: std::io::Error, got: usize| {
        let kind = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            "truncated"
        } else {
            "corrupt"
        };
        Error::format(
            path,
            format!("compressed element at byte {pos}: {kind} zlib stream after {got} bytes: {e}"),
        )
    };
    let mut z = ZlibDecoder::new(data);
    let mut tag = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match z.read(&mut tag[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(bad(e, got)),
        }
    }
    if got < 8 {
        return Err(Error::format(
            path,
            format!("compressed element at byte {pos}: truncated: {got} bytes, expected at least an 8-byte element tag"),
        ));
    }
    let first = u32_at(&tag, endian);
    let body = if first >> 16 != 0 {
        0
    } else {
        u32_at(&tag[4..], endian) as u64
    };
    if body > MAX_ELEMENT {
        return Err(Error::format(
            path,
            format!("compressed element at byte {pos}: its tag claims {body} bytes, expected at most {MAX_ELEMENT} (the official X is 225 MB)"),
        ));
    }
    let limit = body.div_ceil(8) * 8;
    let mut inner = tag.to_vec();
    inner.reserve(limit.min(data.len() as u64 * 1032) as usize);
    (&mut z)
        .take(limit)
        .read_to_end(&mut inner)
        .map_err(|e| bad(e, inner.len()))?;
    // One more byte: a stream that ends here has its checksum verified; one
    // that goes on is left unread (the element ends at its tag's size).
    let mut more = [0u8; 1];
    loop {
        match z.read(&mut more) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(bad(e, inner.len())),
            Ok(_) => break,
        }
    }
    Ok(inner)
}

/// Parses the bytes of an SVHN `.mat` file; `path` only names it in errors.
pub fn parse(path: &Path, bytes: &[u8], name: &str) -> Result<Dataset> {
    let endian = header(path, bytes)?;
    let mut x: Option<Array> = None;
    let mut y: Option<Array> = None;
    let mut pos = 128;
    while pos + 8 <= bytes.len() {
        let (ty, data, next) = element(path, bytes, pos, endian, "top level")?;
        pos = next;
        let arr = match ty {
            MI_MATRIX => parse_matrix(path, Cow::Borrowed(data), endian)?,
            MI_COMPRESSED => {
                let mut inner = inflate(path, data, pos, endian)?;
                let (ity, idata, _) = element(path, &inner, 0, endian, "compressed element")?;
                if ity != MI_MATRIX {
                    continue;
                }
                let (start, len) = (
                    idata.as_ptr() as usize - inner.as_ptr() as usize,
                    idata.len(),
                );
                inner.truncate(start + len);
                inner.drain(..start);
                parse_matrix(path, Cow::Owned(inner), endian)?
            }
            _ => continue,
        };
        if let Some(a) = arr {
            if a.name == "X" {
                x = Some(a);
            } else {
                y = Some(a);
            }
        }
    }
    let missing = |v: &str| {
        Error::format(
            path,
            format!("no variable `{v}`, expected `X` (32×32×3×N uint8) and `y` (N×1 labels 1–10)"),
        )
    };
    let x = x.ok_or_else(|| missing("X"))?;
    let y = y.ok_or_else(|| missing("y"))?;

    let mut dims = x.dims.clone();
    if dims.len() == 3 {
        dims.push(1); // MATLAB drops a trailing singleton: one sample
    }
    if dims.len() != 4 || dims[2] != 3 {
        return Err(Error::format(
            path,
            format!(
                "variable X has dimensions {:?}, expected [H, W, 3, N]",
                x.dims
            ),
        ));
    }
    let (h, w, c, n) = (dims[0], dims[1], dims[2], dims[3]);
    if h == 0 || w == 0 {
        return Err(Error::format(
            path,
            format!(
                "variable X has dimensions {:?}, expected [H, W, 3, N] with H and W at least 1",
                x.dims
            ),
        ));
    }
    let too_large = |v: &str, d: &[usize]| {
        Error::format(path, format!("variable {v} has dimensions {d:?} whose product overflows, expected the size of its data"))
    };
    let ylen = y
        .dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| too_large("y", &y.dims))?;
    if y.dims.len() != 2 || !y.dims.contains(&1) && ylen != 1 {
        return Err(Error::format(
            path,
            format!("variable y has dimensions {:?}, expected [N, 1]", y.dims),
        ));
    }
    if ylen != n {
        return Err(Error::format(
            path,
            format!(
                "variable X holds {n} samples (dimensions {:?}) but y holds {ylen} labels",
                x.dims
            ),
        ));
    }
    let sample = h
        .checked_mul(w)
        .and_then(|p| p.checked_mul(c))
        .ok_or_else(|| too_large("X", &x.dims))?;
    let total = n
        .checked_mul(sample)
        .ok_or_else(|| too_large("X", &x.dims))?;
    let raw = x.as_u8(path)?;
    if raw.len() != total {
        return Err(Error::format(
            path,
            format!(
                "variable X: {} values, expected {total} for dimensions {:?}",
                raw.len(),
                x.dims
            ),
        ));
    }
    // Fortran (r, c, ch, n) → CHW per sample: transpose every H×W plane.
    let mut pixels = vec![0u8; n * sample];
    pixels
        .par_chunks_mut(sample)
        .zip(raw.par_chunks(sample))
        .for_each(|(out, src)| {
            for ch in 0..c {
                let (o, s) = (
                    &mut out[ch * h * w..(ch + 1) * h * w],
                    &src[ch * h * w..(ch + 1) * h * w],
                );
                for col in 0..w {
                    for r in 0..h {
                        o[r * w + col] = s[col * h + r];
                    }
                }
            }
        });
    let values = y.as_f64(path)?;
    let mut labels = Vec::with_capacity(n);
    for (i, &v) in values.iter().enumerate() {
        if v.fract() != 0.0 || !(0.0..=10.0).contains(&v) {
            return Err(Error::format(
                path,
                format!("y[{i}] = {v}, expected an integer label 1–10 (10 means digit 0)"),
            ));
        }
        labels.push(v as u32 % 10);
    }
    let classes = (0..10).map(|d| d.to_string()).collect();
    Dataset::new(
        name,
        path.display().to_string(),
        classes,
        [c, h, w],
        pixels,
        labels,
        255,
    )
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Endian {
    Little,
    Big,
}

fn u32_at(b: &[u8], e: Endian) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    match e {
        Endian::Little => u32::from_le_bytes(a),
        Endian::Big => u32::from_be_bytes(a),
    }
}

/// Checks the 128-byte header; returns the byte order.
fn header(path: &Path, bytes: &[u8]) -> Result<Endian> {
    let not = |why: String| Error::format(path, format!("not a MATLAB v5 .mat file: {why}"));
    if bytes.len() < 128 {
        return Err(not(format!(
            "{} bytes, expected at least the 128-byte header",
            bytes.len()
        )));
    }
    let endian = match &bytes[126..128] {
        b"IM" => Endian::Little,
        b"MI" => Endian::Big,
        other => {
            let text: String = bytes[..20]
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() || b == b' ' {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            return Err(not(format!(
                "endian indicator {other:?} at byte 126, expected \"IM\" or \"MI\" (file starts with \"{text}\")"
            )));
        }
    };
    let version = match endian {
        Endian::Little => u16::from_le_bytes([bytes[124], bytes[125]]),
        Endian::Big => u16::from_be_bytes([bytes[124], bytes[125]]),
    };
    if version == 0x0200 {
        return Err(not(
            "it is a MATLAB v7.3 (HDF5) file; save it with `-v7` (or scipy.io.savemat)".into(),
        ));
    }
    if version != 0x0100 {
        return Err(not(format!("version 0x{version:04x}, expected 0x0100")));
    }
    Ok(endian)
}

/// Reads the element at `pos`: (type, data, position of the next element).
fn element<'a>(
    path: &Path,
    b: &'a [u8],
    pos: usize,
    e: Endian,
    at: &str,
) -> Result<(u32, &'a [u8], usize)> {
    let cut = |need: usize| {
        Error::format(
            path,
            format!(
                "truncated {at}: element at byte {pos} needs {need} bytes, {} present",
                b.len() - pos
            ),
        )
    };
    if pos + 8 > b.len() {
        return Err(cut(8));
    }
    let first = u32_at(&b[pos..], e);
    if first >> 16 != 0 {
        // small data element: nbytes in the upper half, data in the next 4 bytes
        let (ty, n) = (first & 0xffff, (first >> 16) as usize);
        if n > 4 {
            return Err(Error::format(
                path,
                format!("{at}: small element at byte {pos} claims {n} bytes, at most 4"),
            ));
        }
        return Ok((ty, &b[pos + 4..pos + 4 + n], pos + 8));
    }
    let n = u32_at(&b[pos + 4..], e) as usize;
    let end = pos + 8 + n;
    if end > b.len() {
        return Err(cut(8 + n));
    }
    let next = if first == MI_COMPRESSED {
        end
    } else {
        end.div_ceil(8) * 8
    };
    Ok((first, &b[pos + 8..end], next.min(b.len())))
}

/// A numeric array: name, dimensions, storage type of the real part, its bytes.
struct Array<'a> {
    name: String,
    dims: Vec<usize>,
    ty: u32,
    endian: Endian,
    data: Cow<'a, [u8]>,
    start: usize,
    len: usize,
}

/// Parses the body of a miMATRIX element; `None` for arrays we do not read
/// (no name, or a name other than X and y).
fn parse_matrix<'a>(path: &Path, body: Cow<'a, [u8]>, e: Endian) -> Result<Option<Array<'a>>> {
    if body.is_empty() {
        return Ok(None);
    }
    let b: &[u8] = &body;
    let (fty, flags, p) = element(path, b, 0, e, "array flags")?;
    if fty != MI_UINT32 || flags.len() < 8 {
        return Err(Error::format(
            path,
            format!(
                "array flags of type {fty} ({} bytes), expected miUINT32 (8 bytes)",
                flags.len()
            ),
        ));
    }
    let class = u32_at(flags, e) & 0xff;
    let complex = u32_at(flags, e) & 0x0800 != 0;
    let (dty, draw, p) = element(path, b, p, e, "dimensions")?;
    if dty != MI_INT32 {
        return Err(Error::format(
            path,
            format!("dimensions of type {dty}, expected miINT32 (5)"),
        ));
    }
    let dims: Vec<usize> = draw
        .chunks_exact(4)
        .map(|c| u32_at(c, e) as usize)
        .collect();
    let (_, nraw, p) = element(path, b, p, e, "array name")?;
    let name = String::from_utf8_lossy(nraw).into_owned();
    if name != "X" && name != "y" {
        return Ok(None);
    }
    if !(6..=15).contains(&class) || complex {
        return Err(Error::format(
            path,
            format!(
                "variable {name} is of MATLAB class {class}{}, expected a real numeric array",
                if complex { " (complex)" } else { "" }
            ),
        ));
    }
    let (ty, data, _) = element(path, b, p, e, &format!("real part of {name}"))?;
    let (start, len) = (data.as_ptr() as usize - b.as_ptr() as usize, data.len());
    Ok(Some(Array {
        name,
        dims,
        ty,
        endian: e,
        data: body,
        start,
        len,
    }))
}

impl Array<'_> {
    fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.start + self.len]
    }

    /// The values as bytes: miUINT8 as is, other types when every value is an integer 0–255.
    fn as_u8(&self, path: &Path) -> Result<Cow<'_, [u8]>> {
        if self.ty == MI_UINT8 {
            return Ok(Cow::Borrowed(self.bytes()));
        }
        let v = self.as_f64(path)?;
        let mut out = Vec::with_capacity(v.len());
        for (i, x) in v.into_iter().enumerate() {
            if x.fract() != 0.0 || !(0.0..=255.0).contains(&x) {
                return Err(Error::format(
                    path,
                    format!("variable {}[{i}] = {x}, expected a pixel 0–255", self.name),
                ));
            }
            out.push(x as u8);
        }
        Ok(Cow::Owned(out))
    }

    fn as_f64(&self, path: &Path) -> Result<Vec<f64>> {
        let b = self.bytes();
        let e = self.endian;
        macro_rules! conv {
            ($t:ty, $n:expr) => {
                b.chunks_exact($n)
                    .map(|c| {
                        let a: [u8; $n] = c.try_into().unwrap_or([0; $n]);
                        (match e {
                            Endian::Little => <$t>::from_le_bytes(a),
                            Endian::Big => <$t>::from_be_bytes(a),
                        }) as f64
                    })
                    .collect()
            };
        }
        Ok(match self.ty {
            MI_INT8 => b.iter().map(|&v| v as i8 as f64).collect(),
            MI_UINT8 => b.iter().map(|&v| v as f64).collect(),
            MI_INT16 => conv!(i16, 2),
            MI_UINT16 => conv!(u16, 2),
            MI_INT32 => conv!(i32, 4),
            MI_UINT32 => conv!(u32, 4),
            MI_SINGLE => conv!(f32, 4),
            MI_DOUBLE => conv!(f64, 8),
            MI_INT64 => conv!(i64, 8),
            MI_UINT64 => conv!(u64, 8),
            t => {
                return Err(Error::format(
                    path,
                    format!(
                        "variable {}: data type {t}, expected a numeric MAT type",
                        self.name
                    ),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/svhn")
            .join(name)
    }

    /// (sample, channel, row, col, value) printed by tests/fixtures/svhn/make_fixtures.py:
    /// `X[row, col, channel, sample]` of the array it saved with scipy.io.savemat.
    const PIXELS: [(usize, usize, usize, usize, u8); 6] = [
        (0, 0, 0, 0, 51),
        (0, 0, 0, 1, 48),
        (0, 0, 1, 0, 206),
        (1, 1, 5, 30, 116),
        (2, 2, 31, 7, 104),
        (2, 0, 17, 3, 153),
    ];

    #[test]
    fn reads_scipy_files_compressed_or_not_y_uint8_or_double() -> crate::TestResult {
        let mut first: Option<Dataset> = None;
        for f in [
            "x_y_uint8_z.mat",
            "x_y_double_z.mat",
            "x_y_uint8.mat",
            "x_y_double.mat",
        ] {
            let ds = read(fixture(f), "svhn/test")?;
            assert_eq!(
                (ds.len(), ds.shape, ds.max_value),
                (3, [3, 32, 32], 255),
                "{f}"
            );
            assert_eq!(ds.labels, vec![1, 0, 5], "{f}: labels 1, 10 → 0, 5");
            for (n, c, r, col, v) in PIXELS {
                assert_eq!(
                    ds.image(n)[c * 1024 + r * 32 + col],
                    v,
                    "{f}: sample {n} channel {c} row {r} col {col}"
                );
            }
            if let Some(f0) = &first {
                assert_eq!(f0.pixels, ds.pixels, "{f}");
            }
            first = Some(ds);
        }
        Ok(())
    }

    /// A little-endian level-5 file with uncompressed miMATRIX elements.
    fn mat(vars: &[(&str, u32, &[u32], u32, Vec<u8>)]) -> Vec<u8> {
        let mut f = b"MATLAB 5.0 MAT-file, test".to_vec();
        f.resize(124, b' ');
        f.extend_from_slice(&[0x00, 0x01, b'I', b'M']);
        let el = |ty: u32, data: &[u8]| {
            if data.len() <= 4 && ty != MI_MATRIX {
                // small data element
                let mut v = ((data.len() as u32) << 16 | ty).to_le_bytes().to_vec();
                v.extend_from_slice(data);
                v.resize(8, 0);
                return v;
            }
            let mut v = ty.to_le_bytes().to_vec();
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(data);
            v.resize(v.len().div_ceil(8) * 8, 0);
            v
        };
        for (name, class, dims, ty, data) in vars {
            let mut body = el(MI_UINT32, &[*class as u8, 0, 0, 0, 0, 0, 0, 0]);
            body.extend(el(
                MI_INT32,
                &dims
                    .iter()
                    .flat_map(|d| d.to_le_bytes())
                    .collect::<Vec<_>>(),
            ));
            body.extend(el(MI_INT8, name.as_bytes()));
            body.extend(el(*ty, data));
            f.extend(el(MI_MATRIX, &body));
        }
        f
    }

    fn err(bytes: &[u8]) -> String {
        parse(Path::new("bad.mat"), bytes, "t")
            .unwrap_err()
            .to_string()
    }

    fn x(n: u32) -> (&'static str, u32, Vec<u32>, u32, Vec<u8>) {
        (
            "X",
            9,
            vec![32, 32, 3, n],
            MI_UINT8,
            vec![7; 3072 * n as usize],
        )
    }

    fn run(vars: Vec<(&str, u32, Vec<u32>, u32, Vec<u8>)>) -> Result<Dataset> {
        let v: Vec<(&str, u32, &[u32], u32, Vec<u8>)> = vars
            .iter()
            .map(|(a, b, c, d, e)| (*a, *b, c.as_slice(), *d, e.clone()))
            .collect();
        parse(Path::new("bad.mat"), &mat(&v), "t")
    }

    #[test]
    fn built_files_and_other_label_types() -> crate::TestResult {
        let y16: Vec<u8> = [10u16, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
        let ds = run(vec![x(2), ("y", 11, vec![1, 2], MI_UINT16, y16)])?;
        assert_eq!(ds.labels, vec![0, 3]);
        // X stored as double values, y as a small element (4 bytes of int8)
        let xd: Vec<u8> = (0..3072)
            .flat_map(|i| ((i % 256) as f64).to_le_bytes())
            .collect();
        let ds = run(vec![
            ("X", 6, vec![32, 32, 3], MI_DOUBLE, xd),
            ("y", 6, vec![1, 1], MI_INT8, vec![4]),
        ])?;
        assert_eq!((ds.len(), ds.image(0)[1], ds.image(0)[32]), (1, 32, 1));
        Ok(())
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let e = err(b"hello, this is text");
        assert!(
            e.contains("bad.mat")
                && e.contains("not a MATLAB v5 .mat file")
                && e.contains("19 bytes"),
            "{e}"
        );
        let mut text = vec![b'a'; 200];
        text[..6].copy_from_slice(b"a,b,c\n");
        let e = err(&text);
        assert!(e.contains("endian indicator") && e.contains("a,b,c"), "{e}");
        let mut v73 = mat(&[]);
        v73[124] = 0;
        v73[125] = 2;
        assert!(err(&v73).contains("v7.3 (HDF5)"), "{}", err(&v73));

        let y = |n: usize| ("y", 6u32, vec![n as u32, 1], MI_UINT8, vec![1u8; n]);
        let e = run(vec![y(2)]).unwrap_err().to_string();
        assert!(e.contains("no variable `X`"), "{e}");
        let e = run(vec![x(2)]).unwrap_err().to_string();
        assert!(e.contains("no variable `y`"), "{e}");
        let e = run(vec![("X", 9, vec![32, 96], MI_UINT8, vec![0; 3072]), y(1)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("X has dimensions [32, 96], expected [H, W, 3, N]"),
            "{e}"
        );
        let e = run(vec![x(2), ("y", 6, vec![2, 2], MI_UINT8, vec![1; 4])])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("y has dimensions [2, 2], expected [N, 1]"),
            "{e}"
        );
        let e = run(vec![x(3), y(2)]).unwrap_err().to_string();
        assert!(
            e.contains("X holds 3 samples") && e.contains("y holds 2 labels"),
            "{e}"
        );
        let e = run(vec![x(2), ("y", 6, vec![2, 1], MI_UINT8, vec![1, 11])])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("y[1] = 11, expected an integer label 1–10"),
            "{e}"
        );
        let e = run(vec![
            ("X", 9, vec![32, 32, 3, 2], MI_UINT8, vec![0; 100]),
            y(2),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("X: 100 values, expected 6144"), "{e}");
        let e = run(vec![("X", 4, vec![32, 32, 3, 1], 16, vec![0; 3072]), y(1)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("class 4") && e.contains("expected a real numeric array"),
            "{e}"
        );
        let mut cut = mat(&[("X", 9, &[32, 32, 3, 1], MI_UINT8, vec![0; 3072])]);
        cut.truncate(1000);
        let e = err(&cut);
        assert!(
            e.contains("truncated top level") && e.contains("byte 128"),
            "{e}"
        );
    }

    /// Issue 17: H or W = 0 panicked in `par_chunks_mut` ("chunk size must
    /// not be zero"); a product of dimensions that overflows panicked on a
    /// range. Both are errors naming the file now.
    #[test]
    fn zero_sides_and_overflowing_dimensions_are_errors() {
        let y1 = || ("y", 6u32, vec![1u32, 1], MI_UINT8, vec![1u8]);
        for dims in [vec![0u32, 32, 3, 1], vec![32, 0, 3, 1]] {
            let e = run(vec![("X", 9, dims, MI_UINT8, vec![]), y1()])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("bad.mat") && e.contains("H and W at least 1"),
                "{e}"
            );
        }
        let big = u32::MAX;
        let e = run(vec![
            ("X", 9, vec![big, big, 3, big], MI_UINT8, vec![0; 8]),
            ("y", 6, vec![big, 1], MI_UINT8, vec![1]),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("bad.mat") && e.contains("product overflows"),
            "{e}"
        );
    }

    /// A compressed element (miCOMPRESSED) holding `inner`, zlib level 1.
    fn compressed(inner: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(inner).unwrap();
        let data = z.finish().unwrap();
        let mut v = MI_COMPRESSED.to_le_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend(data);
        v
    }

    /// Issue 17: a compressed element is inflated up to the size its tag
    /// says and no further; a tag claiming more than MAX_ELEMENT is an error.
    #[test]
    fn compressed_elements_stop_at_their_tag() {
        let head = mat(&[]);
        // tag: miMATRIX of 16 bytes, then 50 MB of zeros the reader must not hold
        let mut inner = MI_MATRIX.to_le_bytes().to_vec();
        inner.extend_from_slice(&16u32.to_le_bytes());
        inner.extend(vec![0u8; 50 << 20]);
        let mut f = head.clone();
        f.extend(compressed(&inner));
        let e = err(&f);
        // the 16 zero bytes the tag announces are parsed (and refused); the
        // 50 MB after them are never decompressed
        assert!(
            e.contains("array flags of type 0 (0 bytes)"),
            "the element ends at its tag: {e}"
        );
        let mut inner = MI_MATRIX.to_le_bytes().to_vec();
        inner.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut f = head.clone();
        f.extend(compressed(&inner));
        let e = err(&f);
        assert!(
            e.contains("claims 4294967295 bytes") && e.contains(&MAX_ELEMENT.to_string()),
            "{e}"
        );
        let mut f = head;
        let mut inner = MI_MATRIX.to_le_bytes().to_vec();
        inner.extend_from_slice(&56u32.to_le_bytes());
        inner.extend([1u8; 56]);
        let mut c = compressed(&inner);
        let n = c.len();
        c[n - 2] ^= 0xff; // adler32
        f.extend(c);
        let e = err(&f);
        assert!(e.contains("corrupt zlib stream"), "{e}");
    }
}
