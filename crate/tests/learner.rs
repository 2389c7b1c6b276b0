//! The training engine on real data (scikit-learn digits from the mirror):
//! a target accuracy, determinism, resuming from a checkpoint, early
//! stopping, divergence. Skips with a notice when NNLAB_DATA_MIRROR is unset.

use std::path::PathBuf;

use nnlab::data::loader::{Loader, Loaders};
use nnlab::data::split::train_test_split;
use nnlab::data::Dataset;
use nnlab::models::zoo;
use nnlab::train::callbacks::{on_batch, on_epoch, EarlyStopping, KeepBest};
use nnlab::train::history::History;
use nnlab::train::learner::Learner;
use nnlab::train::metrics::{accuracy, f1_macro};
use nnlab::train::optim::{Adam, Sgd};
use nnlab::train::schedule::{ReduceLrOnPlateau, Scheduler};
use nnlab::Error;

/// A test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The seed is process-wide: these tests run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn digits() -> Option<Dataset> {
    let Ok(mirror) = std::env::var("NNLAB_DATA_MIRROR") else {
        eprintln!("NNLAB_DATA_MIRROR is not set: skipping the real-data learner tests");
        return None;
    };
    let path = PathBuf::from(mirror).join("digits/digits.csv.gz");
    Some(nnlab::data::digits::read(&path).expect("digits"))
}

/// hw4's split: stratified 70/30 with seed 20231110.
fn loaders(ds: &Dataset, batch: usize) -> Loaders {
    let (train, val) = train_test_split(ds, 0.3, 20231110, true).unwrap();
    Loaders {
        train: Loader::new(train, batch).shuffle(7),
        val: Some(Loader::new(val, 256)),
        test: None,
    }
}

/// Histories equal except for the wall-clock seconds.
fn same_curves(a: &History, b: &History) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.epochs.iter().zip(&b.epochs) {
        assert_eq!(
            (x.epoch, x.train_loss, x.val_loss, x.lr),
            (y.epoch, y.train_loss, y.val_loss, y.lr)
        );
        assert_eq!(x.train_metrics, y.train_metrics);
        assert_eq!(x.val_metrics, y.val_metrics);
    }
}

#[test]
fn mlp_digits_reaches_the_target_and_is_deterministic() -> TestResult {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(ds) = digits() else { return Ok(()) };
    let l = loaders(&ds, 32);
    let run = || {
        nnlab::seed(3);
        let model = zoo::mlp_digits("relu", 52, None).unwrap();
        let mut learn = Learner::new(model, &l)
            .optimizer(Sgd::new(0.1).momentum(0.9))
            .metrics([accuracy(), f1_macro()])
            .silent();
        learn.fit(30).unwrap()
    };
    let h = run();
    let acc = h.column("val_accuracy")?;
    let best = acc.iter().cloned().fold(0.0, f64::max);
    assert!(
        *acc.last().ok_or("None from acc.last()")? >= 0.95,
        "validation accuracy {acc:?}"
    );
    assert!(best >= 0.95);
    // Same seed, same history.
    same_curves(&h, &run());
    Ok(())
}

#[test]
fn resuming_from_a_checkpoint_repeats_the_uninterrupted_run() -> TestResult {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(ds) = digits() else { return Ok(()) };
    let l = loaders(&ds, 64);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("run.safetensors");
    let fresh = || {
        nnlab::seed(11);
        Learner::new(zoo::mlp_digits("tanh", 32, Some(0.2)).unwrap(), &l)
            .optimizer(Adam::new(3e-3))
            .silent()
    };
    let straight = fresh().fit(4)?;

    let mut first = fresh();
    first.fit(2)?;
    first.save(&path)?;
    assert!(nnlab::train::checkpoint::sidecar(&path).exists());
    let mut second = fresh(); // new weights, new optimizer state: all replaced by resume
    second.resume(&path)?;
    assert_eq!(second.epochs_done(), 2);
    let resumed = second.fit(2)?;
    same_curves(&straight, &resumed);
    Ok(())
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() -> TestResult {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(ds) = digits() else { return Ok(()) };
    let l = loaders(&ds, 64);
    nnlab::seed(5);
    let dir = tempfile::tempdir()?;
    let best_path = dir.path().join("best.safetensors");
    let mut epochs_seen = 0;
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = counter.clone();
    // lr so high that the validation loss soon stops improving
    let mut learn = Learner::new(zoo::mlp_digits("relu", 52, None)?, &l)
        .optimizer(Sgd::new(0.5).momentum(0.9))
        .callback(
            EarlyStopping::new("val_loss")
                .patience(2)
                .restore_best(true),
        )
        .callback(KeepBest::new("val_loss", &best_path))
        .callback(on_epoch(move |_ctx| {
            c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }))
        .silent();
    let h = learn.fit(60)?;
    epochs_seen += counter.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(epochs_seen, h.len());
    assert!(
        h.len() < 60,
        "early stopping never fired in {} epochs",
        h.len()
    );
    let best = h.best_epoch("val_loss")?.clone();
    // Stopped `patience` epochs after the best one.
    assert_eq!(h.len(), best.epoch + 2);
    // The restored model gives the best epoch's validation loss again.
    let ev = learn.evaluate(l.val.as_ref().ok_or("None from l.val.as_ref()")?)?;
    assert!(
        (ev.loss - best.val_loss.ok_or("None from best.val_loss")?).abs() < 1e-5,
        "{} vs {:?}",
        ev.loss,
        best.val_loss
    );
    // The history says which epoch the model holds, and ranks by it.
    assert_eq!(h.restored_epoch, Some(best.epoch));
    assert_eq!(
        h.kept("val_loss")?,
        best.val_loss.ok_or("None from best.val_loss")?
    );
    assert!(h.kept("val_loss")? < h.last("val_loss")?);
    // The keep-best checkpoint holds that epoch.
    let ck = nnlab::train::checkpoint::load(&best_path, &candle_core::Device::Cpu)?;
    assert_eq!(ck.info.epoch, best.epoch);
    Ok(())
}

/// The plateau scheduler steps on the column it monitors, in the direction
/// of the one min/max rule: `val_accuracy` is maximized (torch's mode="max"),
/// so the run's lr column is what the scheduler gives when replayed by hand
/// on that column, and an unknown column is an error naming it.
#[test]
fn plateau_steps_on_its_monitored_column() -> TestResult {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(ds) = digits() else { return Ok(()) };
    let l = loaders(&ds, 64);
    for column in ["val_accuracy", "val_loss"] {
        nnlab::seed(3);
        let plateau = || {
            ReduceLrOnPlateau::new()
                .monitor(column)
                .patience(0)
                .factor(0.5)
        };
        let mut learn = Learner::new(zoo::mlp_digits("relu", 32, None)?, &l)
            .optimizer(Sgd::new(0.2).momentum(0.9))
            .scheduler(plateau())
            .metrics([accuracy()])
            .silent();
        let h = learn.fit(10)?;
        let (lrs, watched) = (h.column("lr")?, h.column(column)?);
        let mut replay = plateau();
        let mut lr = 0.2;
        for (epoch, (got, m)) in lrs.iter().zip(&watched).enumerate() {
            assert_eq!(*got, lr, "{column}: lr of epoch {}", epoch + 1);
            lr = replay.step(lr, Some(*m))?;
        }
        assert!(
            lrs.iter().any(|&x| x < 0.2),
            "{column}: no reduction in 10 epochs: {lrs:?}"
        );
    }
    let mut learn = Learner::new(zoo::mlp_digits("relu", 32, None)?, &l)
        .scheduler(ReduceLrOnPlateau::new().monitor("val_acuracy"))
        .silent();
    let msg = learn
        .fit(1)
        .err()
        .ok_or("expected an error, got Ok")?
        .to_string();
    assert!(msg.contains("val_acuracy"), "{msg}");
    Ok(())
}

#[test]
fn a_diverging_run_is_an_error_naming_epoch_batch_and_lr() -> TestResult {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(ds) = digits() else { return Ok(()) };
    let l = loaders(&ds, 64);
    nnlab::seed(1);
    let mut learn = Learner::new(zoo::mlp_digits("relu", 52, None)?, &l)
        .optimizer(Sgd::new(1e6))
        .silent();
    match learn.fit(3) {
        Err(e @ Error::Diverged { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("epoch 1") && msg.contains("batch") && msg.contains("lr 1000000"),
                "{msg}"
            );
        }
        other => panic!("expected a divergence error, got {other:?}"),
    }
    Ok(())
}

/// One batch as an `on_batch` callback saw it: (epoch, batch, loss, running
/// mean, samples).
type BatchRow = (usize, usize, Option<f64>, f64, usize);

#[test]
fn a_batch_callback_sees_every_batch_and_the_lr_it_sets_takes_effect() -> TestResult {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(ds) = digits() else { return Ok(()) };
    let l = loaders(&ds, 64);
    let batches = l.train.num_batches();
    let rows = std::sync::Arc::new(std::sync::Mutex::new(Vec::<BatchRow>::new()));
    let log = rows.clone();
    nnlab::seed(5);
    let mut learn = Learner::new(zoo::mlp_digits("relu", 52, None)?, &l)
        .optimizer(Sgd::new(0.1))
        .silent()
        .callback(on_batch(move |ctx| {
            let mut log = log
                .lock()
                .map_err(|e| Error::config("batch log", e.to_string()))?;
            log.push((
                ctx.epoch,
                ctx.batch,
                ctx.loss,
                ctx.running_loss,
                ctx.samples,
            ));
            // From the fourth batch of the second epoch on, no more learning.
            if ctx.epoch == 2 && ctx.batch == 3 {
                ctx.optimizer.set_lr(0.0);
            }
            Ok(())
        }));
    let h = learn.fit(3)?;
    let rows = rows
        .lock()
        .map_err(|e| Error::config("batch log", e.to_string()))?;
    assert_eq!(rows.len(), 3 * batches);
    for (e, record) in h.epochs.iter().enumerate() {
        let epoch: Vec<&BatchRow> = rows.iter().filter(|r| r.0 == e + 1).collect();
        assert_eq!(epoch.len(), batches);
        let (mut sum, mut n) = (0.0, 0usize);
        for (i, &&(_, batch, loss, running, samples)) in epoch.iter().enumerate() {
            assert_eq!(batch, i + 1);
            let loss = loss.ok_or_else(|| Error::config("batch loss", "missing after the step"))?;
            sum += loss * samples as f64;
            n += samples;
            assert!(
                (running - sum / n as f64).abs() < 1e-12,
                "{running} vs {}",
                sum / n as f64
            );
        }
        // The running mean after the last batch is the epoch's training loss.
        assert!((epoch[batches - 1].3 - record.train_loss).abs() < 1e-12);
    }
    // The lr the callback set holds from its batch on: the third epoch ran at
    // lr 0, and the weights (hence the validation loss) stopped moving.
    assert_eq!(h.epochs[2].lr, 0.0);
    assert_eq!(h.epochs[1].val_loss, h.epochs[2].val_loss);
    assert_ne!(h.epochs[0].val_loss, h.epochs[1].val_loss);
    Ok(())
}

/// `fit` runs its loop on a worker of rayon's pool (so each parallel op of
/// a step starts inside the pool), whatever thread calls it, and returns
/// there; a run called from inside the pool gives the same history.
#[test]
fn the_loop_runs_on_a_pool_worker_and_gives_the_same_history_from_any_caller() -> TestResult {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(ds) = digits() else { return Ok(()) };
    let l = loaders(&ds, 64);
    let run = || -> nnlab::Result<(History, Vec<Option<usize>>)> {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        nnlab::seed(3);
        let mut learn = Learner::new(zoo::mlp_digits("relu", 52, None)?, &l)
            .optimizer(Adam::new(1e-3))
            .silent()
            .callback(on_batch(move |_| {
                log.lock()
                    .map_err(|e| Error::config("thread log", e.to_string()))?
                    .push(rayon::current_thread_index());
                Ok(())
            }));
        let h = learn.fit(2)?;
        let seen = seen
            .lock()
            .map_err(|e| Error::config("thread log", e.to_string()))?
            .clone();
        Ok((h, seen))
    };
    assert_eq!(
        rayon::current_thread_index(),
        None,
        "a test runs outside the pool"
    );
    let (outside, threads) = run()?;
    assert_eq!(threads.len(), 2 * l.train.num_batches());
    assert!(threads.iter().all(|t| t.is_some()), "{threads:?}");
    let (inside, _) = rayon::scope(|_| run())?;
    same_curves(&outside, &inside);
    Ok(())
}

// The hw4 baseline. scikit-learn on the same split (seeds 0–19) gives
// accuracy min 0.9389, mean 0.9556, max 0.9722:
//   X, y = digits.csv.gz; Xtr, Xv, ytr, yv = train_test_split(X, y, test_size=0.3,
//       random_state=20231110, stratify=y)
//   RandomForestClassifier(n_estimators=10, max_depth=10, random_state=s).fit(Xtr, ytr).score(Xv, yv)
#[test]
fn random_forest_baseline_scores_like_scikit_learn_on_digits() -> TestResult {
    let Some(ds) = digits() else { return Ok(()) };
    let (train, val) = train_test_split(&ds, 0.3, 20231110, true)?;
    let accs: Vec<f64> = (0..5)
        .map(|seed| {
            nnlab::train::baseline::random_forest(&train, &val, 10, 10, seed)
                .unwrap()
                .accuracy
        })
        .collect();
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    assert!(
        (0.92..=0.99).contains(&mean),
        "mean accuracy {mean} over seeds: {accs:?}"
    );
    let e = nnlab::train::baseline::random_forest(&train, &val, 0, 10, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("trees = 0"), "{e}");
    Ok(())
}
