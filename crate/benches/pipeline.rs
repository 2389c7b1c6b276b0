//! Pipeline timings: a loader epoch over 60,000 synthetic 1×28×28 samples at
//! batch 64 (no transform, Normalize LUT, a random crop), and with
//! `NNLAB_DATA_MIRROR` set, the MRI Training folder (2,870 JPEGs → 128×128)
//! loaded cold (empty cache dir) and from the cache.
//! Run: `cargo bench -p nnlab --bench pipeline`.

use nnlab::data::image_folder::ImageFolder;
use nnlab::data::loader::Loader;
use nnlab::data::transforms::{Compose, Normalize, RandomCrop};
use nnlab::data::Dataset;
use std::time::Instant;

fn epoch(l: &Loader, e: usize) -> f64 {
    let t = Instant::now();
    let mut n = 0;
    for b in l.iter_epoch(e) {
        n += b.expect("batch").indices.len();
    }
    assert_eq!(n, 60_000);
    t.elapsed().as_secs_f64()
}

fn best(l: &Loader) -> f64 {
    (0..5).map(|e| epoch(l, e)).fold(f64::INFINITY, f64::min)
}

fn main() {
    nnlab::tune_process();
    let n = 60_000;
    let pixels: Vec<u8> = (0..n * 784).map(|i| (i * 31 % 251) as u8).collect();
    let labels: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
    let classes = (0..10).map(|c| c.to_string()).collect();
    let ds = Dataset::new(
        "synthetic",
        "bench",
        classes,
        [1, 28, 28],
        pixels,
        labels,
        255,
    )
    .expect("dataset");
    let norm = || Compose::new().then(Normalize::new(&[0.1307], &[0.3081]));
    let l = Loader::new(ds.clone(), 64).shuffle(0);
    println!(
        "epoch 60000x1x28x28 bs64 shuffle, no transform:   {:.3} s (best of 5)",
        best(&l)
    );
    let l = Loader::new(ds.clone(), 64).shuffle(0).transform(norm());
    println!(
        "epoch 60000x1x28x28 bs64 shuffle, Normalize (LUT): {:.3} s (best of 5)",
        best(&l)
    );
    let l = Loader::new(ds, 64)
        .shuffle(0)
        .transform(norm().then(RandomCrop::new(28, 4)));
    println!(
        "epoch 60000x1x28x28 bs64 shuffle, Normalize+RandomCrop(28,4): {:.3} s (best of 5)",
        best(&l)
    );

    if let Some(m) = std::env::var_os("NNLAB_DATA_MIRROR") {
        let dir = std::path::PathBuf::from(m).join("brain-tumor-mri/Training");
        let cache = std::env::temp_dir().join(format!("nnlab-bench-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        let f = ImageFolder::new(&dir).resize(128, 128).cache_dir(&cache);
        let t = Instant::now();
        let r = f.load_report().expect("cold load");
        println!(
            "MRI Training {} JPEGs -> 3x128x128 cold: {:.2} s ({} rayon threads)",
            r.dataset.len(),
            t.elapsed().as_secs_f64(),
            rayon::current_num_threads()
        );
        let t = Instant::now();
        let r2 = f.load_report().expect("cached load");
        assert!(r2.from_cache);
        println!(
            "MRI Training from cache: {:.3} s",
            t.elapsed().as_secs_f64()
        );
        let _ = std::fs::remove_dir_all(&cache);
    } else {
        println!("NNLAB_DATA_MIRROR unset: MRI folder timings skipped");
    }
}
