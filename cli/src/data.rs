//! `nnlab data`: dataset information and downloads.
//!
//! ```text
//! nnlab data info mnist [--root DIR] [--json]   # classes, shape, per-split counts, pixel mean/std
//! nnlab data download cifar10 [--root DIR]      # fetch (or md5-check) the official files
//! ```
//!
//! `pixel_mean`/`pixel_std` are over every pixel of the train split after
//! `x = p / max_value` (population std), the numbers `Normalize` takes.

use nnlab::data::sources::{download, load, Splits};
use nnlab::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Classes, shape, per-split counts and pixel statistics of a dataset.
    Info {
        /// mnist | fashion-mnist | cifar10 | svhn | digits | NAME:PATH
        spec: String,
        /// Data folder (default $NNLAB_DATA_DIR or the repository's data/ folder).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Download (or check the md5 of) a dataset's official files.
    Download {
        /// mnist | fashion-mnist | cifar10 | svhn | digits
        name: String,
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Info { spec, root, json } => {
            let s = load(&spec, root.as_deref())?;
            let info = info_json(&s);
            if json {
                println!("{}", serde_json::to_string(&info)?);
            } else {
                print!("{}", table(&s, &info));
            }
            Ok(())
        }
        Command::Download { name, root } => {
            for p in download(&name, root.as_deref())? {
                println!("{}", p.display());
            }
            Ok(())
        }
    }
}

/// The `--json` object.
pub fn info_json(s: &Splits) -> serde_json::Value {
    let (mean, std) = s.train.pixel_stats();
    let splits: serde_json::Map<String, serde_json::Value> = s
        .all()
        .into_iter()
        .map(|(n, d)| {
            (
                n.to_string(),
                serde_json::json!({"count": d.len(), "per_class": d.class_counts()}),
            )
        })
        .collect();
    serde_json::json!({
        "dataset": s.name,
        "classes": s.train.classes,
        "shape": s.train.shape,
        "splits": splits,
        "pixel_mean": mean,
        "pixel_std": std,
    })
}

fn table(s: &Splits, info: &serde_json::Value) -> String {
    let mut out = format!(
        "dataset  {}\nshape    {:?} (C, H, W), pixels 0–{}\npixels   mean {:.4}, std {:.4} (train, x = p / {})\n\n",
        s.name,
        s.train.shape,
        s.train.max_value,
        info["pixel_mean"].as_f64().unwrap_or(f64::NAN),
        info["pixel_std"].as_f64().unwrap_or(f64::NAN),
        s.train.max_value
    );
    let splits = s.all();
    let w = s
        .train
        .classes
        .iter()
        .map(|c| c.len())
        .max()
        .unwrap_or(5)
        .max(5);
    out += &format!("{:>3}  {:<w$}", "#", "class");
    for (n, _) in &splits {
        out += &format!("  {n:>7}");
    }
    out.push('\n');
    let counts: Vec<Vec<usize>> = splits.iter().map(|(_, d)| d.class_counts()).collect();
    for (i, c) in s.train.classes.iter().enumerate() {
        out += &format!("{i:>3}  {c:<w$}");
        for cc in &counts {
            // a split with fewer classes (load checks image folders; a
            // hand-built Splits may still differ) shows 0, never panics
            out += &format!("  {:>7}", cc.get(i).copied().unwrap_or(0));
        }
        out.push('\n');
    }
    out += &format!("{:>3}  {:<w$}", "", "total");
    for (_, d) in &splits {
        out += &format!("  {:>7}", d.len());
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nnlab::data::Dataset;

    #[test]
    fn stats_and_json_shape() -> crate::TestResult {
        // pixels 0 and 255 in equal numbers: mean 0.5, std 0.5
        let ds = Dataset::new(
            "t",
            "m",
            vec!["a".into(), "b".into()],
            [1, 1, 2],
            vec![0, 255, 255, 0],
            vec![0, 1],
            255,
        )?;
        assert_eq!(ds.pixel_stats(), (0.5, 0.5));
        let s = Splits {
            name: "t".into(),
            train: ds.clone(),
            test: Some(ds),
            others: vec![],
        };
        let j = info_json(&s);
        assert_eq!(j["splits"]["test"]["per_class"], serde_json::json!([1, 1]));
        assert_eq!(j["shape"], serde_json::json!([1, 1, 2]));
        let t = table(&s, &j);
        assert!(
            t.contains("mean 0.5000, std 0.5000") && t.contains("total"),
            "{t}"
        );
        Ok(())
    }

    /// Issue 17: a test split with fewer classes than train printed a table
    /// by indexing its class counts: it panicked.
    #[test]
    fn table_with_fewer_test_classes_does_not_panic() -> crate::TestResult {
        let cls = |n: usize| (0..n).map(|i| format!("c{i}")).collect::<Vec<String>>();
        let train = Dataset::new(
            "t",
            "m",
            cls(3),
            [1, 1, 1],
            vec![0, 1, 2],
            vec![0, 1, 2],
            255,
        )?;
        let test = Dataset::new("u", "m", cls(1), [1, 1, 1], vec![0], vec![0], 255)?;
        let s = Splits {
            name: "t".into(),
            train,
            test: Some(test),
            others: vec![],
        };
        let t = table(&s, &info_json(&s));
        assert!(t.contains("c2") && t.contains("total"), "{t}");
        Ok(())
    }

    /// Issue 17: `nnlab data info folder:PATH` with a Testing folder holding
    /// fewer classes is an error naming both folders and the class.
    #[test]
    fn info_on_a_folder_with_fewer_test_classes_is_an_error() -> crate::TestResult {
        let d = tempfile::tempdir()?;
        for (split, classes) in [("Training", &["a", "b"][..]), ("Testing", &["a"][..])] {
            for c in classes {
                let dir = d.path().join(split).join(c);
                std::fs::create_dir_all(&dir)?;
                // a 1×1 BMP: 14-byte file header, 40-byte info header, one BGR pixel + pad
                let mut bmp = b"BM".to_vec();
                bmp.extend_from_slice(&58u32.to_le_bytes());
                bmp.extend_from_slice(&[0; 4]);
                bmp.extend_from_slice(&54u32.to_le_bytes());
                bmp.extend_from_slice(&40u32.to_le_bytes());
                bmp.extend_from_slice(&1i32.to_le_bytes());
                bmp.extend_from_slice(&1i32.to_le_bytes());
                bmp.extend_from_slice(&1u16.to_le_bytes());
                bmp.extend_from_slice(&24u16.to_le_bytes());
                bmp.extend_from_slice(&[0; 24]);
                bmp.extend_from_slice(&[9, 9, 9, 0]);
                std::fs::write(dir.join("1.bmp"), bmp)?;
            }
        }
        let args = Args {
            command: Command::Info {
                spec: format!("folder:{}", d.path().display()),
                root: None,
                json: false,
            },
        };
        let e = run(args).unwrap_err().to_string();
        assert!(
            e.contains("Testing") && e.contains("Training") && e.contains("class `b`"),
            "{e}"
        );
        Ok(())
    }
}
