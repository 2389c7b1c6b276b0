//! The course datasets by name, fetched on first use (see [`download`]) into
//! the data directory `$NNLAB_DATA_DIR` or `<repo>/data`:
//!
//! | spec | files (official names) | splits |
//! | --- | --- | --- |
//! | `mnist`, `fashion-mnist` | `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` | train, test |
//! | `cifar10` | `cifar-10-binary.tar.gz` (or an extracted `cifar-10-batches-bin/`) | train, test |
//! | `cifar10:PATH` | a folder in the `cifar-10-batches-bin` layout, e.g. the shared subset | train, test |
//! | `svhn` | `train_32x32.mat`, `test_32x32.mat` | train, test |
//! | `digits` | `digits.csv.gz` (scikit-learn) | train |
//! | `folder:PATH` | an image folder; its class-folder subfolders (`Training`, `Testing`) are the splits | … |
//!
//! ```no_run
//! use nnlab::prelude::*;
//! let mnist = Mnist::load().unwrap();
//! assert_eq!(mnist.train.len(), 60_000);
//! let loaders = mnist.loaders(64).unwrap();
//! ```

use std::path::{Path, PathBuf};

use crate::data::download::fetch;
use crate::data::loader::Loaders;
use crate::data::{cifar, digits, idx, svhn, Dataset};
use crate::{Error, Result};

/// The splits of one dataset.
#[derive(Clone, Debug)]
pub struct Splits {
    pub name: String,
    pub train: Dataset,
    pub test: Option<Dataset>,
    /// Further named splits (an image folder's other subfolders).
    pub others: Vec<(String, Dataset)>,
}

impl Splits {
    /// Shuffled training loader and test loader, normalized with the
    /// training set's per-channel statistics ([`Loaders::standard`]); a
    /// dataset without a test split (digits) is split 70/30, stratified, seed 20231110 (hw4).
    pub fn loaders(&self, batch_size: usize) -> Result<Loaders> {
        self.loaders_with(batch_size, None, crate::device::base_seed())
    }

    /// [`loaders`](Self::loaders) with the training set cut to `limit` samples (seeded).
    pub fn loaders_with(&self, batch_size: usize, limit: Option<usize>, seed: u64) -> Result<Loaders> {
        let (train, test) = match &self.test {
            Some(t) => (self.train.clone(), t.clone()),
            None => crate::data::split::train_test_split(&self.train, 0.3, 20231110, true)?,
        };
        let train = match limit {
            Some(n) => train.subset(n, seed)?,
            None => train,
        };
        Loaders::standard(train, Some(test), batch_size, seed)
    }

    /// Every split by name: `train`, `test`, then the others.
    pub fn all(&self) -> Vec<(String, &Dataset)> {
        let mut v = vec![("train".to_string(), &self.train)];
        if let Some(t) = &self.test {
            v.push(("test".into(), t));
        }
        v.extend(self.others.iter().map(|(n, d)| (n.clone(), d)));
        v
    }
}

/// `$NNLAB_DATA_DIR`, else `data/` in the repository (the folder of the
/// workspace `Cargo.toml`, searched upwards from the current directory).
pub fn data_root() -> PathBuf {
    if let Ok(d) = std::env::var("NNLAB_DATA_DIR") {
        if !d.trim().is_empty() {
            return PathBuf::from(d);
        }
    }
    let start = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    for dir in start.ancestors() {
        let toml = dir.join("Cargo.toml");
        if std::fs::read_to_string(&toml).map(|t| t.contains("[workspace]")).unwrap_or(false) {
            return dir.join("data");
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("data")
}

/// Loads a dataset by spec (see the module table), fetching what is missing into `root`.
pub fn load(spec: &str, root: Option<&Path>) -> Result<Splits> {
    let root = root.map(Path::to_path_buf).unwrap_or_else(data_root);
    let spec = spec.trim();
    match spec {
        "mnist" => Mnist::load_from(&root),
        "fashion-mnist" | "fashion_mnist" | "fashionmnist" => FashionMnist::load_from(&root),
        "cifar10" | "cifar-10" => Cifar10::load_from(&root),
        "svhn" => Svhn::load_from(&root),
        "digits" => Digits::load_from(&root),
        _ => {
            if let Some(p) = spec.strip_prefix("cifar10:") {
                let (train, test) = cifar::read_path(p)?;
                return Ok(Splits { name: "cifar10".into(), train, test: Some(test), others: vec![] });
            }
            if let Some(p) = spec.strip_prefix("folder:") {
                return folder(Path::new(p));
            }
            Err(Error::config(
                "dataset",
                format!("`{spec}`: expected mnist, fashion-mnist, cifar10, cifar10:PATH, svhn, digits or folder:PATH"),
            ))
        }
    }
}

/// An image folder at its own size: class subfolders, or split subfolders of class subfolders.
fn folder(path: &Path) -> Result<Splits> {
    let splits: Vec<(String, Dataset)> = Err(Error::config("folder", format!("{}: image folders are not wired yet", path.display())))?;
    let mut it = splits.into_iter();
    let (first_name, first) = it.next().ok_or_else(|| Error::format(path, "no class folders in it"))?;
    let mut rest: Vec<(String, Dataset)> = it.collect();
    let test_at = rest.iter().position(|(n, _)| {
        let n = n.to_ascii_lowercase();
        n == "test" || n == "testing"
    });
    let test = test_at.map(|i| rest.remove(i).1);
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "folder".into());
    let _ = first_name;
    Ok(Splits { name, train: first, test, others: rest })
}

const MNIST_URL: &str = "https://ossci-datasets.s3.amazonaws.com/mnist";
const FASHION_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com";
const CIFAR_URL: &str = "https://www.cs.toronto.edu/~kriz";
const SVHN_URL: &str = "http://ufldl.stanford.edu/housenumbers";
/// md5 of scikit-learn's `digits.csv.gz` (unchanged since scikit-learn 0.x).
const DIGITS_MD5: &str = "9b335364a7bfd63947c7480a5bd51f2d";
const DIGITS_URL: &str = "https://raw.githubusercontent.com/scikit-learn/scikit-learn/main/sklearn/datasets/data";

/// `(file, md5)` of the four IDX files in the order train images, train labels, test images, test labels.
type IdxFiles = [(&'static str, &'static str); 4];

const MNIST_FILES: IdxFiles = [
    ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
];

const FASHION_FILES: IdxFiles = [
    ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
];

/// torchvision's Fashion-MNIST class names.
pub const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

fn idx_splits(name: &str, root: &Path, url: &str, files: &IdxFiles, classes: Vec<String>) -> Result<Splits> {
    let p: Vec<PathBuf> = files.iter().map(|(f, md5)| fetch(name, f, Some(md5), root, url)).collect::<Result<_>>()?;
    let train = idx::read(&format!("{name}/train"), &p[0], &p[1], classes.clone())?;
    let test = idx::read(&format!("{name}/test"), &p[2], &p[3], classes)?;
    Ok(Splits { name: name.into(), train, test: Some(test), others: vec![] })
}

/// MNIST (LeCun et al.), 60,000 + 10,000 handwritten digits, 1×28×28.
pub struct Mnist;
impl Mnist {
    pub fn load() -> Result<Splits> {
        Self::load_from(&data_root())
    }
    pub fn load_from(root: &Path) -> Result<Splits> {
        idx_splits("mnist", root, MNIST_URL, &MNIST_FILES, (0..10).map(|d| d.to_string()).collect())
    }
}

/// Fashion-MNIST (Zalando), 60,000 + 10,000 clothing images, 1×28×28.
pub struct FashionMnist;
impl FashionMnist {
    pub fn load() -> Result<Splits> {
        Self::load_from(&data_root())
    }
    pub fn load_from(root: &Path) -> Result<Splits> {
        idx_splits("fashion-mnist", root, FASHION_URL, &FASHION_FILES, FASHION_CLASSES.iter().map(|s| s.to_string()).collect())
    }
}

/// CIFAR-10, 50,000 + 10,000 colour images, 3×32×32.
pub struct Cifar10;
impl Cifar10 {
    pub fn load() -> Result<Splits> {
        Self::load_from(&data_root())
    }
    /// An extracted `cifar10/cifar-10-batches-bin/` under `root` is used as
    /// it is; otherwise the official archive is fetched and read in place.
    pub fn load_from(root: &Path) -> Result<Splits> {
        let extracted = root.join("cifar10").join(cifar::FOLDER);
        let (train, test) = if extracted.is_dir() {
            cifar::read_dir(&extracted)?
        } else {
            let p = fetch("cifar10", "cifar-10-binary.tar.gz", Some("c32a1d4ab5d03f1284b67883e8d87530"), root, CIFAR_URL)?;
            cifar::read_archive(&p)?
        };
        Ok(Splits { name: "cifar10".into(), train, test: Some(test), others: vec![] })
    }
}

/// SVHN (Netzer et al.), cropped 32×32 house-number digits from `.mat` files.
pub struct Svhn;
impl Svhn {
    pub fn load() -> Result<Splits> {
        Self::load_from(&data_root())
    }
    pub fn load_from(root: &Path) -> Result<Splits> {
        let train = fetch("svhn", "train_32x32.mat", Some("e26dedcc434d2e4c54c9b2d4a06d8373"), root, SVHN_URL)?;
        let test = fetch("svhn", "test_32x32.mat", Some("eb5a983be6a315427106f1b164d9cef3"), root, SVHN_URL)?;
        Ok(Splits {
            name: "svhn".into(),
            train: svhn::read(&train, "svhn/train")?,
            test: Some(svhn::read(&test, "svhn/test")?),
            others: vec![],
        })
    }
}

/// scikit-learn's digits: 1,797 8×8 images, pixel values 0–16, one split.
pub struct Digits;
impl Digits {
    pub fn load() -> Result<Splits> {
        Self::load_from(&data_root())
    }
    pub fn load_from(root: &Path) -> Result<Splits> {
        let p = fetch("digits", "digits.csv.gz", Some(DIGITS_MD5), root, DIGITS_URL)?;
        Ok(Splits { name: "digits".into(), train: digits::read(&p)?, test: None, others: vec![] })
    }
}
