//! Training with a one-thread rayon pool (a one-core machine, or
//! `RAYON_NUM_THREADS=1`) and a random transform, on synthetic 8×8 images.
//!
//! `Learner::fit` runs its loop on a rayon worker, and the loader's batch
//! thread applies random transforms as parallel work queued in the same pool.
//! If the loop's worker blocked while waiting for a batch, nothing would run
//! that work: the fit would hang. This file is its own test process, so it
//! can size the global pool to one thread before anything uses it.

use std::sync::mpsc::channel;
use std::time::Duration;

use nnlab::data::loader::Loader;
use nnlab::data::transforms::{Compose, RandomHorizontalFlip};
use nnlab::data::Dataset;
use nnlab::models::zoo;
use nnlab::train::learner::Learner;
use nnlab::train::optim::Adam;

/// A test's result: any error fails the test with its message.
type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn a_one_thread_pool_trains_with_random_transforms_without_hanging() -> TestResult {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()?;
    assert_eq!(rayon::current_num_threads(), 1);
    // 300 images of 8×8: class k has a bright row k (mod 8), flipped at random.
    let n = 300;
    let pixels: Vec<u8> = (0..n)
        .flat_map(|i| {
            (0..64).map(move |p| {
                if p / 8 == i % 8 {
                    255
                } else {
                    (p * 3 % 40) as u8
                }
            })
        })
        .collect();
    let labels: Vec<u32> = (0..n).map(|i| (i % 8) as u32).collect();
    let classes = (0..10).map(|k| k.to_string()).collect();
    let ds = Dataset::new("rows", "train", classes, [1, 8, 8], pixels, labels, 255)?;
    let train = Loader::new(ds, 32)
        .shuffle(1)
        .transform(Compose::new().then(RandomHorizontalFlip(0.5)));
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let run = || -> nnlab::Result<Vec<f64>> {
            nnlab::seed(1);
            let mut learn = Learner::with_loaders(zoo::mlp_digits("relu", 32, None)?, train, None)
                .optimizer(Adam::new(1e-2))
                .silent();
            let h = learn.fit(3)?;
            Ok(h.epochs.iter().map(|r| r.train_loss).collect())
        };
        let _ = tx.send(run());
    });
    let losses = rx
        .recv_timeout(Duration::from_secs(120))
        .map_err(|_| "fit did not finish in 120 s with a one-thread pool: the loop's worker waits for a batch nothing builds")??;
    assert_eq!(losses.len(), 3);
    // The rows are easy to tell apart: the loss falls.
    assert!(losses[2] < losses[0], "{losses:?}");
    Ok(())
}
