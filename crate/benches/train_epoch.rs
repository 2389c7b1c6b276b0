//! One epoch of MNIST training (60,000 images, batch 64, Adam 1e-3,
//! normalize 0.1307/0.3081) through the Learner, for hw1's 5-layer MLP and
//! hw3's BasicCNN: seconds per epoch and test accuracy after it.
//! `NNLAB_DATA_MIRROR=../shared/data cargo bench -p nnlab --bench train_epoch [-- CASE…]`
//! The PyTorch side: `bench/torch_train_epoch.py`.

use std::path::PathBuf;
use std::time::Instant;

use nnlab::data::idx;
use nnlab::data::loader::{Loader, Loaders};
use nnlab::models::zoo;
use nnlab::train::learner::Learner;
use nnlab::train::optim::Adam;

fn main() -> nnlab::Result<()> {
    nnlab::tune_process();
    let mirror = PathBuf::from(
        std::env::var("NNLAB_DATA_MIRROR").unwrap_or_else(|_| "../shared/data".into()),
    );
    let classes: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let m = mirror.join("mnist");
    let t = Instant::now();
    let train = idx::read(
        "mnist/train",
        m.join("train-images-idx3-ubyte.gz"),
        m.join("train-labels-idx1-ubyte.gz"),
        classes.clone(),
    )?;
    let test = idx::read(
        "mnist/test",
        m.join("t10k-images-idx3-ubyte.gz"),
        m.join("t10k-labels-idx1-ubyte.gz"),
        classes,
    )?;
    println!(
        "read MNIST train+test .gz: {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let loaders = Loaders {
        train: Loader::new(train, 64)
            .shuffle(0)
            .normalize(&[0.1307], &[0.3081])?,
        val: None,
        test: Some(Loader::new(test, 1000).normalize(&[0.1307], &[0.3081])?),
    };
    let t = Instant::now();
    let n = loaders.train.iter_epoch(0).count();
    println!(
        "loader epoch (938 batches of 64, normalized): {:.3} s for {n} batches",
        t.elapsed().as_secs_f64()
    );
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let cases = if args.is_empty() {
        vec!["hw1/5_layers".to_string(), "hw3/BasicCNN".to_string()]
    } else {
        args
    };
    for case in cases {
        nnlab::seed(0);
        let model = zoo::build(&case)?;
        let mut learn = Learner::with_loaders(model, loaders.train.clone(), None)
            .optimizer(Adam::new(1e-3))
            .silent();
        let t = Instant::now();
        learn.fit(1)?;
        let secs = t.elapsed().as_secs_f64();
        let ev = learn.evaluate(loaders.test.as_ref().unwrap())?;
        println!(
            "{case}: {secs:.2} s/epoch, test accuracy {:.4}, {} threads",
            ev.metric("accuracy")?,
            rayon::current_num_threads()
        );
    }
    Ok(())
}
