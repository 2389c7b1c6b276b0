//! The pipeline on the real data mirror (`NNLAB_DATA_MIRROR`): image folders,
//! the decoded cache, and a loader epoch. Skipped with a notice when unset.

use nnlab::data::image_folder::ImageFolder;
use nnlab::data::loader::Loader;
use nnlab::data::transforms::{Compose, Normalize};
use std::path::PathBuf;

/// A test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
type TestResult = Result<(), Box<dyn std::error::Error>>;

fn mirror() -> Option<PathBuf> {
    match std::env::var_os("NNLAB_DATA_MIRROR") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!("NNLAB_DATA_MIRROR is not set: real-data pipeline test skipped");
            None
        }
    }
}

#[test]
fn mri_folders_counts_cache_and_loader_epoch() -> TestResult {
    let Some(m) = mirror() else { return Ok(()) };
    let cache = tempfile::tempdir()?;
    let root = m.join("brain-tumor-mri");
    let f = ImageFolder::new(&root)
        .resize(128, 128)
        .cache_dir(cache.path());
    let splits = f.load_splits()?;
    let names: Vec<&str> = splits.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["Testing", "Training"]);
    let (test, train) = (&splits[0].1, &splits[1].1);
    assert_eq!(
        train.classes,
        vec![
            "glioma_tumor",
            "meningioma_tumor",
            "no_tumor",
            "pituitary_tumor"
        ]
    );
    assert_eq!(train.class_counts(), vec![826, 822, 395, 827]);
    assert_eq!(test.class_counts(), vec![100, 115, 105, 74]);
    assert_eq!(train.shape, [3, 128, 128]);
    // The second load comes from the cache and equals the first.
    let again = ImageFolder::new(root.join("Training"))
        .resize(128, 128)
        .cache_dir(cache.path())
        .load_report()?;
    assert!(again.from_cache);
    assert_eq!(&again.dataset, train);

    // One shuffled epoch over Testing: every sample exactly once, shapes and dtypes.
    let loader = Loader::new(test.clone(), 64)
        .shuffle(7)
        .transform(Compose::new().then(Normalize::new(&[0.5; 3], &[0.25; 3])));
    let mut seen = vec![0usize; test.len()];
    let mut n_batches = 0;
    for b in loader.iter_epoch(0) {
        let b = b?;
        let bs = b.indices.len();
        assert_eq!(b.x.dims(), &[bs, 3, 128, 128]);
        assert_eq!(b.x.dtype(), candle_core::DType::F32);
        assert_eq!(
            (b.y.dims(), b.y.dtype()),
            (&[bs][..], candle_core::DType::U32)
        );
        let y = b.y.to_vec1::<u32>()?;
        for (k, &i) in b.indices.iter().enumerate() {
            seen[i] += 1;
            assert_eq!(y[k], test.labels[i]);
        }
        n_batches += 1;
    }
    assert_eq!(n_batches, 7); // ceil(394 / 64)
    assert!(seen.iter().all(|&s| s == 1));
    Ok(())
}

#[test]
fn cifar10_jpg_counts() -> TestResult {
    let Some(m) = mirror() else { return Ok(()) };
    let splits = ImageFolder::new(m.join("cifar10-jpg"))
        .cache(false)
        .load_splits()?;
    assert_eq!(
        splits.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        vec!["test", "train"]
    );
    for (_, ds) in &splits {
        assert_eq!(ds.classes[0], "airplane");
        assert_eq!(ds.classes[9], "truck");
        assert_eq!(ds.class_counts(), vec![100; 10]);
        assert_eq!(ds.shape, [3, 32, 32]);
    }
    let gray = ImageFolder::new(m.join("cifar10-jpg/test"))
        .grayscale(true)
        .cache(false)
        .load()?;
    assert_eq!(gray.shape, [1, 32, 32]);
    Ok(())
}
