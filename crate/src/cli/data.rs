//! `nnlab data info SPEC [--root DIR] [--json]` and `nnlab data download NAME`.
//!
//! `info --json` prints one object:
//! `{"dataset":…,"classes":[…],"shape":[C,H,W],"splits":{"train":{"count":N,"per_class":[…]},…},"pixel_mean":…,"pixel_std":…}`
//! with the mean and standard deviation of `pixel / max` over the training split
//! (every channel together; `channel_mean`/`channel_std` per channel).

use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;

use crate::data::sources::{self, Splits};
use crate::Result;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Classes, shape and per-class counts of every split.
    Info {
        /// mnist | fashion-mnist | cifar10 | cifar10:PATH | svhn | digits | folder:PATH
        spec: String,
        /// Data directory (default `$NNLAB_DATA_DIR` or `<repo>/data`).
        #[arg(long)]
        root: Option<PathBuf>,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Fetches a dataset's files (mirror or official URL, md5-checked).
    Download {
        name: String,
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

pub fn run(a: Args) -> Result<()> {
    match a.command {
        DataCommand::Info { spec, root, json } => {
            let s = sources::load(&spec, root.as_deref())?;
            if json {
                println!("{}", serde_json::to_string(&info_json(&s))?);
            } else {
                print!("{}", info_text(&s));
            }
            Ok(())
        }
        DataCommand::Download { name, root } => {
            let s = sources::load(&name, root.as_deref())?;
            let root = root.unwrap_or_else(sources::data_root);
            println!("{}: {} in {}", s.name, counts_line(&s), root.join(&s.name).display());
            Ok(())
        }
    }
}

fn counts_line(s: &Splits) -> String {
    s.all().iter().map(|(n, d)| format!("{n} {}", d.len())).collect::<Vec<_>>().join(", ")
}

/// The `--json` object.
pub fn info_json(s: &Splits) -> serde_json::Value {
    let mut splits = serde_json::Map::new();
    for (name, d) in s.all() {
        splits.insert(name, json!({"count": d.len(), "per_class": d.class_counts()}));
    }
    let (mean, std) = s.train.channel_stats();
    let (all_mean, all_std) = pooled(&mean, &std);
    json!({
        "dataset": s.name,
        "classes": s.train.classes,
        "shape": s.train.shape,
        "splits": splits,
        "pixel_mean": all_mean,
        "pixel_std": all_std,
        "channel_mean": mean,
        "channel_std": std,
        "source": s.train.source,
    })
}

/// Mean and std over all channels together from per-channel ones (equal pixel counts).
fn pooled(mean: &[f64], std: &[f64]) -> (f64, f64) {
    let c = mean.len().max(1) as f64;
    let m = mean.iter().sum::<f64>() / c;
    let second = mean.iter().zip(std).map(|(a, b)| b * b + a * a).sum::<f64>() / c;
    (m, (second - m * m).max(0.0).sqrt())
}

fn info_text(s: &Splits) -> String {
    let (mean, std) = s.train.channel_stats();
    let mut out = format!(
        "{}  shape {:?}  {} classes  (from {})\npixel mean {:?}  std {:?}\n",
        s.name,
        s.train.shape,
        s.train.classes.len(),
        s.train.source,
        mean.iter().map(|v| format!("{v:.4}")).collect::<Vec<_>>(),
        std.iter().map(|v| format!("{v:.4}")).collect::<Vec<_>>()
    );
    let splits = s.all();
    out.push_str(&format!("{:<14}", "class"));
    for (n, d) in &splits {
        out.push_str(&format!("{:>16}", format!("{n} ({})", d.len())));
    }
    out.push('\n');
    for (i, c) in s.train.classes.iter().enumerate() {
        out.push_str(&format!("{:<14}", c));
        for (_, d) in &splits {
            out.push_str(&format!("{:>16}", d.class_counts().get(i).copied().unwrap_or(0)));
        }
        out.push('\n');
    }
    out
}
