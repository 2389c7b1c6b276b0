//! `nnlab bench`: one benchmark case of the side-by-side harness
//! (`bench/run`, issue 4), timed through the real `Loader` → `Learner` path;
//! `bench/torch_cases.py` is the same case in PyTorch.
//!
//! The data is read and decoded before the clock starts; the timed part is
//! `Learner::fit(epochs)` (training only, no validation loader), batch from a
//! shuffled, normalized `Loader`, Adam 1e-3, cross-entropy. One JSON line:
//!
//! ```text
//! $ nnlab bench --case mlp5-mnist --epochs 1 --threads 2 --json
//! {"case":"mlp5-mnist","epochs":1,"samples":60000,"seconds_per_epoch":7.7,"samples_per_s":7792.2,
//!  "peak_rss_mb":180.3,"threads":2,"simd":"avx512","device":"cpu","final_loss":0.21,"params":830090,
//!  "gflop_per_epoch":298.8}
//! ```
//!
//! `gflop_per_epoch = 2 · 3 · mult-adds per sample (torchinfo's count, batch
//! 1) · samples` (forward + backward ≈ 3 forwards). `--case matmul` measures
//! the f32 matrix-product rate of `ops::gemm` (1024³, best of 10) instead: the
//! floor of a case is `gflop_per_epoch / gflops`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args as ClapArgs;
use serde::Serialize;

use nnlab::data::cifar;
use nnlab::data::idx;
use nnlab::data::image_folder::ImageFolder;
use nnlab::data::loader::Loader;
use nnlab::data::Dataset;
use nnlab::models::zoo;
use nnlab::train::learner::Learner;
use nnlab::train::optim::Adam;
use nnlab::{Error, Result};

/// Where a case's training images come from (paths are relative to the mirror).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Source {
    /// `mnist/train-*-idx?-ubyte.gz`, normalized 0.1307 / 0.3081.
    MnistTrain,
    /// The 2,000 images of `cifar10-bin-subset/` (train + test) repeated to
    /// `repeat_to` samples, normalized with their channel statistics.
    CifarSubset { repeat_to: usize },
    /// An image folder resized to 3×128×128, normalized with its channel statistics.
    Folder { path: &'static str },
}

/// One benchmark case: a zoo model on a data source.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Case {
    pub name: &'static str,
    /// `zoo::build` name.
    pub model: &'static str,
    pub source: Source,
    pub batch_size: usize,
}

/// The cases, the same as `bench/torch_cases.py`'s.
pub const CASES: [Case; 4] = [
    Case {
        name: "mlp5-mnist",
        model: "hw1/5_layers",
        source: Source::MnistTrain,
        batch_size: 64,
    },
    Case {
        name: "basiccnn-mnist",
        model: "hw3/BasicCNN",
        source: Source::MnistTrain,
        batch_size: 64,
    },
    Case {
        name: "cifarcnn",
        model: "hw3/CIFAR10CNN",
        source: Source::CifarSubset { repeat_to: 10_000 },
        batch_size: 64,
    },
    Case {
        name: "convnet4-mri",
        model: "hw5/SimpleConvNet_4",
        source: Source::Folder {
            path: "brain-tumor-mri/Training",
        },
        batch_size: 256,
    },
];

/// The matrix-product case (not a training case).
pub const MATMUL: &str = "matmul";

/// The case called `name`; the error lists every known name.
pub fn case(name: &str) -> Result<&'static Case> {
    CASES.iter().find(|c| c.name == name).ok_or_else(|| {
        let known: Vec<&str> = CASES.iter().map(|c| c.name).chain([MATMUL]).collect();
        Error::config(
            "--case",
            format!(
                "`{name}` is not a benchmark case, expected one of {}",
                known.join(", ")
            ),
        )
    })
}

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// mlp5-mnist | basiccnn-mnist | cifarcnn | convnet4-mri | matmul
    #[arg(long)]
    pub case: String,
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Train on the first N samples only.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Threads of rayon's pool, Candle's CPU ops and gemm.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// The data mirror (default `$NNLAB_DATA_MIRROR`).
    #[arg(long)]
    pub mirror: Option<PathBuf>,
    /// Print one JSON line instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured (the JSON line).
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub case: String,
    pub epochs: usize,
    pub samples: usize,
    pub seconds_per_epoch: f64,
    pub samples_per_s: f64,
    pub peak_rss_mb: f64,
    pub threads: usize,
    /// The SIMD level of nnlab's own kernels (`NNLAB_SIMD` caps it).
    pub simd: &'static str,
    /// Where the model trains: `cpu` or `cuda:N` (`NNLAB_DEVICE`).
    pub device: String,
    pub final_loss: f64,
    pub params: usize,
    pub gflop_per_epoch: f64,
}

/// What `--case matmul` measured.
#[derive(Clone, Debug, Serialize)]
pub struct MatmulResult {
    pub case: String,
    pub size: usize,
    pub seconds: f64,
    pub gflops: f64,
    pub threads: usize,
}

/// The training set of `case` from `mirror`, decoded, cut to its first `limit` samples.
pub fn load_data(case: &Case, mirror: &Path, limit: Option<usize>) -> Result<Dataset> {
    let ds = match case.source {
        Source::MnistTrain => {
            let m = mirror.join("mnist");
            let classes = (0..10).map(|d| d.to_string()).collect();
            idx::read(
                "mnist/train",
                m.join("train-images-idx3-ubyte.gz"),
                m.join("train-labels-idx1-ubyte.gz"),
                classes,
            )?
        }
        Source::CifarSubset { repeat_to } => {
            let (train, test) = cifar::read_path(mirror.join("cifar10-bin-subset"))?;
            let n = train.len() + test.len();
            let order: Vec<usize> = (0..repeat_to).map(|i| i % n).collect();
            let mut both = train;
            both.pixels.extend_from_slice(&test.pixels);
            both.labels.extend_from_slice(&test.labels);
            both.name = "cifar10-subset".into();
            both.select(&order)?
        }
        Source::Folder { path } => ImageFolder::new(mirror.join(path))
            .resize(128, 128)
            .load()?,
    };
    match limit {
        Some(0) => Err(Error::config(
            "--limit",
            "0, expected a positive number of samples",
        )),
        Some(n) if n < ds.len() => ds.select(&(0..n).collect::<Vec<_>>()),
        _ => Ok(ds),
    }
}

/// The shuffled (seed 0), normalized training loader of `case` over `ds`.
pub fn loader(case: &Case, ds: Dataset) -> Result<Loader> {
    let (mean, std): (Vec<f32>, Vec<f32>) = match case.source {
        Source::MnistTrain => (vec![0.1307], vec![0.3081]),
        _ => {
            let (m, s) = ds.channel_stats();
            (
                m.iter().map(|&v| v as f32).collect(),
                s.iter().map(|&v| v as f32).collect(),
            )
        }
    };
    Loader::new(ds, case.batch_size)
        .shuffle(0)
        .normalize(&mean, &std)
}

/// Trains `case`'s model `epochs` epochs over `ds` (seed 0) and measures it.
pub fn train(case: &Case, ds: Dataset, epochs: usize) -> Result<BenchResult> {
    if epochs == 0 {
        return Err(Error::config("--epochs", "0, expected at least 1"));
    }
    nnlab::device::seed(0);
    let samples = ds.len();
    let train = loader(case, ds)?;
    let model = zoo::build(case.model)?;
    let device = nnlab::device::name(model.device());
    let summary = model.summary()?;
    let mut learn = Learner::with_loaders(model, train, None)
        .optimizer(Adam::new(1e-3))
        .silent();
    let t = Instant::now();
    let history = learn.fit(epochs)?;
    let secs = t.elapsed().as_secs_f64();
    let final_loss = history
        .epochs
        .last()
        .map(|r| r.train_loss)
        .unwrap_or(f64::NAN);
    Ok(BenchResult {
        case: case.name.into(),
        epochs,
        samples,
        seconds_per_epoch: secs / epochs as f64,
        samples_per_s: (samples * epochs) as f64 / secs,
        peak_rss_mb: peak_rss_mb(),
        threads: nnlab::ops::gemm::num_threads(),
        simd: nnlab::simd::level().name(),
        device,
        final_loss,
        params: summary.total_params,
        gflop_per_epoch: 6.0 * summary.total_mult_adds as f64 * samples as f64 / 1e9,
    })
}

/// f32 `C = A·B` with `ops::gemm`, `size³`, best of `reps` after one warm-up.
pub fn matmul(size: usize, reps: usize) -> MatmulResult {
    let a: Vec<f32> = (0..size * size)
        .map(|i| ((i * 7919) % 1000) as f32 * 1e-3)
        .collect();
    let b: Vec<f32> = (0..size * size)
        .map(|i| ((i * 104_729) % 1000) as f32 * 1e-3)
        .collect();
    let mut c = vec![0f32; size * size];
    let threads = nnlab::ops::gemm::num_threads();
    let mut best = f64::INFINITY;
    for _ in 0..reps + 1 {
        let t = Instant::now();
        // square row-major operands of one size: the checked entry cannot fail
        let _ = nnlab::ops::gemm::matmul(
            size,
            size,
            size,
            &mut c,
            size,
            1,
            false,
            nnlab::ops::gemm::Mat::rows(&a, size),
            nnlab::ops::gemm::Mat::rows(&b, size),
            threads,
        );
        best = best.min(t.elapsed().as_secs_f64());
    }
    let flop = 2.0 * (size as f64).powi(3);
    MatmulResult {
        case: MATMUL.into(),
        size,
        seconds: best,
        gflops: flop / best / 1e9,
        threads,
    }
}

/// Peak resident memory of this process in MB (`getrusage(RUSAGE_SELF).ru_maxrss`, KiB on Linux).
pub fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return f64::NAN;
    }
    ru.ru_maxrss as f64 / 1024.0
}

/// Sets rayon's global pool and Candle's CPU threads (`RAYON_NUM_THREADS`,
/// which Candle reads at each matmul) to `n`; fails when the pool already
/// runs with another size.
pub fn set_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::config("--threads", "0, expected at least 1"));
    }
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
    if built.is_err() && rayon::current_num_threads() != n {
        return Err(Error::config(
            "--threads",
            format!(
                "{n}: rayon's pool already runs {} threads",
                rayon::current_num_threads()
            ),
        ));
    }
    Ok(())
}

fn mirror(a: &Args) -> Result<PathBuf> {
    a.mirror
        .clone()
        .or_else(|| {
            std::env::var_os("NNLAB_DATA_MIRROR")
                .filter(|m| !m.is_empty())
                .map(PathBuf::from)
        })
        .ok_or_else(|| {
            Error::config(
                "--mirror",
                "not given and NNLAB_DATA_MIRROR is unset: expected the shared data folder",
            )
        })
}

pub fn run(a: Args) -> Result<()> {
    if a.case != MATMUL {
        case(&a.case)?;
    }
    set_threads(a.threads)?;
    let line = if a.case == MATMUL {
        let r = matmul(1024, 10);
        if !a.json {
            println!(
                "matmul {0}×{0}×{0} f32: {1:.4} s, {2:.1} GFLOP/s, {3} threads",
                r.size, r.seconds, r.gflops, r.threads
            );
            return Ok(());
        }
        serde_json::to_string(&r)?
    } else {
        let c = case(&a.case)?;
        let ds = load_data(c, &mirror(&a)?, a.limit)?;
        let r = train(c, ds, a.epochs)?;
        if !a.json {
            println!(
                "{}: {} samples, {:.3} s/epoch, {:.1} samples/s, final loss {:.4}, peak RSS {:.1} MB, {} threads",
                r.case, r.samples, r.seconds_per_epoch, r.samples_per_s, r.final_loss, r.peak_rss_mb, r.threads
            );
            return Ok(());
        }
        serde_json::to_string(&r)?
    };
    println!("{line}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_table_names_models_and_batches() -> crate::TestResult {
        let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            ["mlp5-mnist", "basiccnn-mnist", "cifarcnn", "convnet4-mri"]
        );
        let batches: Vec<usize> = CASES.iter().map(|c| c.batch_size).collect();
        assert_eq!(batches, [64, 64, 64, 256]);
        // every model builds, takes the input its source gives, and has the
        // parameter count torch reports for the same architecture
        // (sum(p.numel() for p in model.parameters()) in bench/torch_cases.py)
        let expect = [
            ("mlp5-mnist", vec![1, 28, 28], 830_090),
            ("basiccnn-mnist", vec![1, 28, 28], 206_922),
            ("cifarcnn", vec![3, 32, 32], 1_116_970),
            ("convnet4-mri", vec![3, 128, 128], 4_755_748),
        ];
        for (name, shape, params) in expect {
            let c = case(name)?;
            let m = zoo::build(c.model)?;
            let s = m.summary()?;
            let input = m.input_shape().to_vec();
            let input = if input.len() == 1 {
                vec![1, 28, 28]
            } else {
                input
            };
            assert_eq!((input, s.total_params), (shape, params), "{name}");
        }
        assert_eq!(
            case("cifarcnn")?.source,
            Source::CifarSubset { repeat_to: 10_000 }
        );
        Ok(())
    }

    #[test]
    fn unknown_case_names_the_known_ones() {
        let e = case("resnet").unwrap_err().to_string();
        assert_eq!(
            e,
            "--case: `resnet` is not a benchmark case, expected one of mlp5-mnist, basiccnn-mnist, cifarcnn, convnet4-mri, matmul"
        );
        let e = run(Args {
            case: "mlp".into(),
            epochs: 1,
            limit: None,
            threads: 2,
            mirror: None,
            json: true,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("`mlp` is not a benchmark case"), "{e}");
    }

    #[test]
    fn argument_errors() -> crate::TestResult {
        assert!(set_threads(0)
            .unwrap_err()
            .to_string()
            .contains("--threads: 0"));
        let a = Args {
            case: "mlp5-mnist".into(),
            epochs: 1,
            limit: None,
            threads: 2,
            mirror: None,
            json: false,
        };
        if std::env::var_os("NNLAB_DATA_MIRROR").is_none() {
            assert!(mirror(&a)
                .unwrap_err()
                .to_string()
                .contains("NNLAB_DATA_MIRROR is unset"));
        }
        let d = tempfile::tempdir()?;
        let e = load_data(case("mlp5-mnist")?, d.path(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("train-images-idx3-ubyte.gz"), "{e}");
        let ds = Dataset::new(
            "toy",
            "memory",
            vec!["a".into()],
            [1, 28, 28],
            vec![0; 784],
            vec![0],
            255,
        )?;
        let e = train(case("mlp5-mnist")?, ds, 0).unwrap_err().to_string();
        assert_eq!(e, "--epochs: 0, expected at least 1");
        Ok(())
    }

    #[test]
    fn matmul_rate_is_positive() {
        let r = matmul(64, 1);
        assert!(r.gflops > 0.0 && r.seconds > 0.0 && r.size == 64, "{r:?}");
        assert!(peak_rss_mb() > 1.0);
    }

    #[test]
    fn real_mnist_smoke_run() -> crate::TestResult {
        let Some(m) = std::env::var_os("NNLAB_DATA_MIRROR") else {
            eprintln!("NNLAB_DATA_MIRROR unset: real-data bench smoke run skipped");
            return Ok(());
        };
        let c = case("mlp5-mnist")?;
        let ds = load_data(c, Path::new(&m), Some(256))?;
        assert_eq!(ds.len(), 256);
        let e = load_data(c, Path::new(&m), Some(0))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--limit: 0, expected a positive number of samples");
        let r = train(c, ds, 1)?;
        assert_eq!((r.samples, r.epochs, r.params), (256, 1, 830_090));
        // a fresh 10-class model starts near ln 10 = 2.30; 4 Adam steps lower it
        assert!(r.final_loss > 1.0 && r.final_loss < 2.4, "{r:?}");
        assert!(
            (r.gflop_per_epoch - 6.0 * 830_090.0 * 256.0 / 1e9).abs() < 0.01,
            "{r:?}"
        );
        Ok(())
    }
}
