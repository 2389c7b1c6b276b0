//! scikit-learn's digits: `digits.csv.gz`, 1,797 rows of 65 comma-separated
//! integers without a header — 64 pixels of an 8×8 image in row-major order
//! (values 0–16), then the label 0–9. The same data as
//! `sklearn.datasets.load_digits()`.
//!
//! ```no_run
//! let ds = nnlab::data::digits::read("data/digits/digits.csv.gz").unwrap();
//! assert_eq!((ds.len(), ds.shape, ds.max_value), (1797, [1, 8, 8], 16));
//! ```

use crate::data::{bounded, Dataset};
use crate::{Error, Result};
use std::path::Path;

/// The largest pixel value of the format.
pub const MAX_VALUE: u8 = 16;

/// The most CSV bytes read: 1 MiB, four times the official `digits.csv`
/// (264,712 bytes uncompressed).
pub const MAX_TEXT: u64 = 1 << 20;

/// Reads `digits.csv.gz` (or an uncompressed `.csv`; gzip is told by its
/// magic bytes) into a [`Dataset`]. Reading stops after [`MAX_TEXT`] bytes
/// (uncompressed) with an error.
pub fn read(path: impl AsRef<Path>) -> Result<Dataset> {
    let path = path.as_ref();
    let (mut r, gz) = bounded::open(path)?;
    let bytes = bounded::read_at_most(
        path,
        &mut r,
        MAX_TEXT,
        gz,
        "4× the official digits.csv of 264,712 bytes",
    )?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::format(
            path,
            format!(
                "not UTF-8 text at byte {}, expected a CSV of integers",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    parse(path, &text)
}

/// Parses the CSV text; `path` only names the source in errors.
pub fn parse(path: &Path, text: &str) -> Result<Dataset> {
    let mut pixels = Vec::with_capacity(1797 * 64);
    let mut labels = Vec::with_capacity(1797);
    for (row, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = |what: String| Error::format(path, format!("line {}: {what}", row + 1));
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 65 {
            return Err(at(format!(
                "{} fields, expected 65 (64 pixels and a label)",
                fields.len()
            )));
        }
        for (col, f) in fields[..64].iter().enumerate() {
            let v = parse_number(f)
                .filter(|v| *v <= MAX_VALUE as u32)
                .ok_or_else(|| {
                    at(format!(
                        "pixel {col} is `{f}`, expected an integer 0–{MAX_VALUE}"
                    ))
                })?;
            pixels.push(v as u8);
        }
        let label = parse_number(fields[64])
            .filter(|v| *v <= 9)
            .ok_or_else(|| {
                at(format!(
                    "label is `{}`, expected an integer 0–9",
                    fields[64]
                ))
            })?;
        labels.push(label);
    }
    if labels.is_empty() {
        return Err(Error::format(
            path,
            "no rows, expected 1,797 rows of 65 integers",
        ));
    }
    let classes = (0..10).map(|d| d.to_string()).collect();
    Dataset::new(
        "digits",
        path.display().to_string(),
        classes,
        [1, 8, 8],
        pixels,
        labels,
        MAX_VALUE,
    )
}

/// Accepts `7` and `7.0` (scikit-learn writes integers, other tools floats).
fn parse_number(s: &str) -> Option<u32> {
    if let Ok(v) = s.parse::<u32>() {
        return Some(v);
    }
    let f = s.parse::<f64>().ok()?;
    (f >= 0.0 && f.fract() == 0.0 && f <= u32::MAX as f64).then_some(f as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str) -> String {
        let mut v: Vec<String> = (0..64).map(|i| (i % 17).to_string()).collect();
        v.push(label.into());
        v.join(",")
    }

    #[test]
    fn parses_rows() -> crate::TestResult {
        let text = format!("{}\n{}\n", row("3"), row("9.0"));
        let ds = parse(Path::new("t.csv"), &text)?;
        assert_eq!(ds.labels, vec![3, 9]);
        assert_eq!(ds.image(0)[16], 16);
        assert_eq!(ds.image(1)[17], 0);
        Ok(())
    }

    #[test]
    fn bad_rows_name_line_and_field() {
        let e = parse(Path::new("t.csv"), &format!("{}\n1,2,3\n", row("1")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.csv") && e.contains("line 2") && e.contains("3 fields"),
            "{e}"
        );
        let e = parse(Path::new("t.csv"), &row("12"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("label is `12`"), "{e}");
        let bad = row("1").replacen("0,", "17,", 1);
        let e = parse(Path::new("t.csv"), &bad).unwrap_err().to_string();
        assert!(e.contains("pixel 0 is `17`"), "{e}");
    }

    fn gz(text: &str) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    /// Issue 17: a gzip bomb stops at MAX_TEXT; two gzip members are one file.
    #[test]
    fn bounded_and_multi_member() -> crate::TestResult {
        let d = tempfile::tempdir()?;
        let p = d.path().join("digits.csv.gz");
        let rows = (0..30_000).map(|_| row("1")).collect::<Vec<_>>().join("\n");
        std::fs::write(&p, gz(&rows))?;
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains("digits.csv.gz")
                && e.contains(&format!("more than {MAX_TEXT} bytes (uncompressed)")),
            "{e}"
        );
        let mut two = gz(&(row("3") + "\n"));
        two.extend(gz(&row("4")));
        std::fs::write(&p, two)?;
        assert_eq!(read(&p)?.labels, vec![3, 4]);
        Ok(())
    }
}
