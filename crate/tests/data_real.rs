//! Real datasets through `$NNLAB_DATA_MIRROR` (the shared data folder), loaded
//! into a temporary data root so the mirror copy + md5 path runs too.
//! Counts are from shared/data/README.md. Skips with a notice when the
//! variable is unset.

use nnlab::data::sources::load;
use std::path::PathBuf;

/// A test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
type TestResult = Result<(), Box<dyn std::error::Error>>;

fn mirror() -> Option<PathBuf> {
    match std::env::var_os("NNLAB_DATA_MIRROR") {
        Some(m) if !m.is_empty() => Some(PathBuf::from(m)),
        _ => {
            eprintln!("NNLAB_DATA_MIRROR is not set: skipping the real-data test");
            None
        }
    }
}

#[test]
fn mnist_counts() -> TestResult {
    let Some(_) = mirror() else { return Ok(()) };
    let root = tempfile::tempdir()?;
    let s = load("mnist", Some(root.path()))?;
    assert_eq!(
        s.train.class_counts(),
        vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    let test = s.test.ok_or("None from s.test")?;
    assert_eq!(
        test.class_counts(),
        vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert_eq!(
        (s.train.len(), test.len(), s.train.shape),
        (60_000, 10_000, [1, 28, 28])
    );
    assert!(root
        .path()
        .join("mnist/train-images-idx3-ubyte.gz")
        .is_file());
    // second load: files present, md5 checked, no copy
    assert_eq!(
        load("mnist", Some(root.path()))?.train.labels,
        s.train.labels
    );
    Ok(())
}

#[test]
fn fashion_mnist_counts() -> TestResult {
    let Some(_) = mirror() else { return Ok(()) };
    let root = tempfile::tempdir()?;
    let s = load("fashion-mnist", Some(root.path()))?;
    assert_eq!(s.train.class_counts(), vec![6000; 10]);
    assert_eq!(
        s.test.ok_or("None from s.test")?.class_counts(),
        vec![1000; 10]
    );
    assert_eq!(s.train.classes[0], "T-shirt/top");
    Ok(())
}

#[test]
fn digits_count() -> TestResult {
    let Some(_) = mirror() else { return Ok(()) };
    let root = tempfile::tempdir()?;
    let s = load("digits", Some(root.path()))?;
    assert_eq!(s.train.len(), 1797);
    assert_eq!(
        s.train.class_counts(),
        vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    );
    assert!(s.test.is_none());
    Ok(())
}

#[test]
fn cifar10_subset() -> TestResult {
    let Some(m) = mirror() else { return Ok(()) };
    let s = load(
        &format!("cifar10:{}", m.join("cifar10-bin-subset").display()),
        None,
    )?;
    assert_eq!(s.train.class_counts(), vec![100; 10]);
    let test = s.test.ok_or("None from s.test")?;
    assert_eq!(test.class_counts(), vec![100; 10]);
    assert_eq!(
        (s.train.shape, s.train.classes[1].as_str()),
        ([3, 32, 32], "automobile")
    );
    // the subset is not the official archive: asking for plain cifar10 from this mirror fails clearly
    let root = tempfile::tempdir()?;
    let e = load("cifar10", Some(root.path())).unwrap_err().to_string();
    assert!(
        e.contains("cifar-10-binary.tar.gz") && e.contains("NNLAB_DATA_MIRROR"),
        "{e}"
    );
    Ok(())
}

/// Course datasets by name: the folder is found in the mirror (the data
/// directory has no copy), with the same content as the explicit path.
#[test]
fn course_datasets_by_name() -> TestResult {
    let Some(m) = mirror() else { return Ok(()) };
    let by_name = nnlab::data::sources::Cifar10::subset()?;
    let by_path = load(
        &format!("cifar10:{}", m.join("cifar10-bin-subset").display()),
        None,
    )?;
    assert_eq!(by_name.train.labels, by_path.train.labels);
    assert_eq!(by_name.test_set()?.len(), 1000);
    let cache = tempfile::tempdir()?;
    let test = nnlab::data::image_folder::ImageFolder::course("brain-tumor-mri/Testing")?
        .resize(16, 16)
        .cache_dir(cache.path())
        .load()?;
    assert_eq!(test.class_counts(), vec![100, 115, 105, 74]);
    assert_eq!(test.classes[0], "glioma_tumor");
    let e = nnlab::data::image_folder::ImageFolder::course("brain-tumor-mri/Validation")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("brain-tumor-mri/Validation") && e.contains("kaggle.com"),
        "{e}"
    );
    Ok(())
}
