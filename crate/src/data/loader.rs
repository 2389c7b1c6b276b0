//! Batches of a [`Dataset`] as tensors (torch's `DataLoader`).
//!
//! `x = pixel / max_value` (torchvision's `ToTensor`), then the transforms,
//! stacked into `x: f32 [B, C, H, W]` and `y: u32 [B]` on the loader's device.
//! The order of an epoch (a permutation with `shuffle`, or draws with
//! replacement from a [`WeightedSampler`], `P(i) = w_i / Σw`) and every
//! random transform are a pure function of `(seed, epoch)`: sample `k` of an
//! epoch gets its own generator seeded from `(seed, epoch, k)`, so a resumed
//! run sees the same batches. The next batch is prepared on a background
//! thread (a `sync_channel(2)`) while the caller trains. Without transforms,
//! or with a single `Normalize`, pixels go through a 256-entry table per channel.
//!
//! ```
//! use nnlab::data::{loader::Loader, transforms::{Compose, Normalize}, Dataset};
//! let ds = Dataset::new("t", "m", vec!["a".into()], [1, 1, 2], vec![0, 255, 255, 0, 0, 0], vec![0; 3], 255)?;
//! let loader = Loader::new(ds, 2).shuffle(1).transform(Compose::new().then(Normalize::new(&[0.5], &[0.5])));
//! let batches: Vec<_> = loader.iter_epoch(0).collect::<Result<_, _>>()?;
//! assert_eq!(batches[0].x.dims(), &[2, 1, 1, 2]);
//! assert_eq!(batches[1].x.dims(), &[1, 1, 1, 2]);
//! # Ok::<(), nnlab::Error>(())
//! ```

use crate::data::transforms::{Compose, Image, Transform};
use crate::data::Dataset;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::sync::mpsc::{sync_channel, Receiver, RecvError, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

/// One batch: inputs, labels and the dataset indices they came from.
#[derive(Debug)]
pub struct Batch {
    /// `f32 [B, C, H, W]` on the loader's device.
    pub x: Tensor,
    /// `u32 [B]`.
    pub y: Tensor,
    pub indices: Vec<usize>,
}

/// Draws `num_samples` indices with replacement, `P(i) = weights[i] / Σ weights`
/// (torch's `WeightedRandomSampler`).
#[derive(Clone, Debug)]
pub struct WeightedSampler {
    pub weights: Vec<f64>,
    /// None: as many as the dataset has.
    pub num_samples: Option<usize>,
}

impl WeightedSampler {
    pub fn new(weights: Vec<f64>) -> WeightedSampler {
        WeightedSampler {
            weights,
            num_samples: None,
        }
    }
    pub fn num_samples(mut self, n: usize) -> Self {
        self.num_samples = Some(n);
        self
    }
    /// Each sample weighted `1 / count(its class)`: classes drawn equally often.
    pub fn balanced(ds: &Dataset) -> WeightedSampler {
        let counts = ds.class_counts();
        WeightedSampler::new(
            ds.labels
                .iter()
                .map(|&l| 1.0 / counts[l as usize] as f64)
                .collect(),
        )
    }
    fn draw(&self, n: usize, rng: &mut StdRng) -> Result<Vec<usize>> {
        let mut cum = Vec::with_capacity(self.weights.len());
        let mut total = 0.0;
        for (i, &w) in self.weights.iter().enumerate() {
            if !(w >= 0.0 && w.is_finite()) {
                return Err(Error::config(
                    format!("WeightedSampler.weights[{i}]"),
                    format!("{w}: expected a finite weight ≥ 0"),
                ));
            }
            total += w;
            cum.push(total);
        }
        if !(total > 0.0) {
            return Err(Error::config(
                "WeightedSampler.weights",
                "all weights are 0: expected a positive sum",
            ));
        }
        Ok((0..n)
            .map(|_| {
                let u = rng.random::<f64>() * total;
                cum.partition_point(|&c| c <= u).min(cum.len() - 1)
            })
            .collect())
    }
}

/// Batches over a dataset; see the module doc. Cheap to clone (the dataset
/// and the transforms are shared).
#[derive(Clone)]
pub struct Loader {
    dataset: Arc<Dataset>,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
    transform: Option<Arc<Compose>>,
    device: Device,
    sampler: Option<WeightedSampler>,
}

/// Train, validation and test loaders of one experiment.
#[derive(Clone)]
pub struct Loaders {
    pub train: Loader,
    pub val: Option<Loader>,
    pub test: Option<Loader>,
}

fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ c.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Loaders {
    /// The test loader; an error when there is none.
    pub fn test_loader(&self) -> Result<&Loader> {
        self.test
            .as_ref()
            .ok_or_else(|| Error::config("test", "these loaders have no test loader"))
    }

    /// The usual course setup: the training set shuffled with `seed` and
    /// normalized with its own per-channel mean/std (0.1307/0.3081 for
    /// MNIST), the test set (when there is one) normalized the same way and
    /// evaluated in batches of 1,000.
    pub fn standard(
        train: Dataset,
        test: Option<Dataset>,
        batch_size: usize,
        seed: u64,
    ) -> Result<Loaders> {
        if train.is_empty() {
            return Err(crate::Error::config(
                "train",
                format!(
                    "`{}` ({}) holds no sample, expected at least one to take the normalisation statistics from",
                    train.name, train.source
                ),
            ));
        }
        if let Some(t) = &test {
            if t.classes != train.classes {
                return Err(crate::Error::config(
                    "test",
                    format!(
                        "`{}` ({}) has classes [{}], expected the classes of `{}` ({}): [{}]",
                        t.name,
                        t.source,
                        t.classes.join(", "),
                        train.name,
                        train.source,
                        train.classes.join(", ")
                    ),
                ));
            }
        }
        let (mean, std) = train.channel_stats();
        let mean: Vec<f32> = mean.iter().map(|&v| v as f32).collect();
        let std: Vec<f32> = std.iter().map(|&v| v as f32).collect();
        let train = Loader::new(train, batch_size)
            .shuffle(seed)
            .normalize(&mean, &std)?;
        let test = match test {
            Some(t) => Some(Loader::new(t, 1000).normalize(&mean, &std)?),
            None => None,
        };
        Ok(Loaders {
            train,
            val: None,
            test,
        })
    }
}

impl Loader {
    /// Shorthand for `.transform(Compose::new().then(Normalize::new(mean, std)))`;
    /// one value applies to every channel.
    pub fn normalize(self, mean: &[f32], std: &[f32]) -> Result<Loader> {
        let c = self.dataset().shape[0];
        let expand = |v: &[f32]| {
            if v.len() == 1 {
                vec![v[0]; c]
            } else {
                v.to_vec()
            }
        };
        let n = crate::data::transforms::Normalize::new(&expand(mean), &expand(std));
        n.check(c)?;
        Ok(self.transform(crate::data::transforms::Compose::new().then(n)))
    }
    /// Batches of `batch_size` in dataset order on the CPU; `x = pixel / max_value`.
    /// The seed starts as `nnlab::device::base_seed()`.
    pub fn new(dataset: Dataset, batch_size: usize) -> Loader {
        Loader {
            dataset: Arc::new(dataset),
            batch_size,
            shuffle: false,
            seed: crate::device::base_seed(),
            drop_last: false,
            transform: None,
            device: Device::Cpu,
            sampler: None,
        }
    }
    /// A new permutation each epoch, from `(seed, epoch)`.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle = true;
        self.seed = seed;
        self
    }
    /// The seed of random transforms and the sampler, without shuffling.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Leave out the last, smaller batch.
    pub fn drop_last(mut self, yes: bool) -> Self {
        self.drop_last = yes;
        self
    }
    pub fn transform(mut self, t: Compose) -> Self {
        self.transform = if t.is_empty() {
            None
        } else {
            Some(Arc::new(t))
        };
        self
    }
    pub fn device(mut self, d: &Device) -> Self {
        self.device = d.clone();
        self
    }
    /// Draw samples with replacement instead of a permutation.
    pub fn sampler(mut self, s: WeightedSampler) -> Self {
        self.sampler = Some(s);
        self
    }
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
    /// Samples per epoch: the sampler's `num_samples`, else the dataset length.
    pub fn num_samples(&self) -> usize {
        self.sampler
            .as_ref()
            .and_then(|s| s.num_samples)
            .unwrap_or(self.dataset.len())
    }
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.num_samples(), self.batch_size.max(1));
        if self.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }
    /// Samples of each class in the dataset.
    pub fn class_counts(&self) -> Vec<usize> {
        self.dataset.class_counts()
    }
    /// hw5's `weights = sum(counts) / counts`, one per class (for a weighted loss).
    pub fn class_weights(&self) -> Result<Vec<f32>> {
        let counts = self.class_counts();
        let total: usize = counts.iter().sum();
        if let Some(c) = counts.iter().position(|&c| c == 0) {
            return Err(Error::config(
                "class_weights",
                format!(
                    "class `{}` has no sample in {}: its weight would be infinite",
                    self.dataset.classes[c], self.dataset.name
                ),
            ));
        }
        Ok(counts.iter().map(|&c| total as f32 / c as f32).collect())
    }
    /// The dataset indices of epoch `epoch`, in order.
    pub fn epoch_indices(&self, epoch: usize) -> Result<Vec<usize>> {
        let n = self.dataset.len();
        if let Some(s) = &self.sampler {
            if s.weights.len() != n {
                return Err(Error::config(
                    "WeightedSampler.weights",
                    format!("{} weights for {n} samples", s.weights.len()),
                ));
            }
            return s.draw(
                self.num_samples(),
                &mut StdRng::seed_from_u64(mix(self.seed, epoch as u64, 0x5a3)),
            );
        }
        let mut idx: Vec<usize> = (0..n).collect();
        if self.shuffle {
            idx.shuffle(&mut StdRng::seed_from_u64(mix(
                self.seed,
                epoch as u64,
                0x5b1,
            )));
        }
        Ok(idx)
    }

    /// The batches of epoch `epoch`, prepared one ahead on a background thread.
    pub fn iter_epoch(&self, epoch: usize) -> LoaderIter {
        let (tx, rx) = sync_channel(2);
        let start = || -> Result<(Vec<usize>, Option<Vec<Vec<f32>>>)> {
            if self.batch_size == 0 {
                return Err(Error::config("batch_size", "0: expected ≥ 1"));
            }
            let idx = self.epoch_indices(epoch)?;
            Ok((idx, self.lookup_tables()?))
        };
        let (order, lut) = match start() {
            Ok(v) => v,
            Err(e) => {
                let _ = tx.send(Err(e));
                return LoaderIter { rx, remaining: 1 };
            }
        };
        let keep = if self.drop_last {
            order.len() / self.batch_size * self.batch_size
        } else {
            order.len()
        };
        let batches: Vec<Vec<usize>> = order[..keep]
            .chunks(self.batch_size)
            .map(|c| c.to_vec())
            .collect();
        let remaining = batches.len();
        let (ds, tf, dev, seed, bs) = (
            self.dataset.clone(),
            self.transform.clone(),
            self.device.clone(),
            self.seed,
            self.batch_size,
        );
        std::thread::spawn(move || {
            for (b, indices) in batches.into_iter().enumerate() {
                let first = (b * bs) as u64;
                let batch = build(&ds, indices, lut.as_deref(), tf.as_deref(), &dev, |k| {
                    StdRng::seed_from_u64(mix(seed, epoch as u64, 0x7f00_0000 + first + k as u64))
                });
                let failed = batch.is_err();
                if tx.send(batch).is_err() || failed {
                    return; // the caller dropped the iterator, or the epoch ends with an error
                }
            }
        });
        LoaderIter { rx, remaining }
    }

    /// One table of 256 values per channel when the fast path applies.
    fn lookup_tables(&self) -> Result<Option<Vec<Vec<f32>>>> {
        let c = self.dataset.shape[0];
        let norm = match &self.transform {
            None => None,
            Some(t) => match t.only_normalize() {
                Some(n) => Some(n),
                None => return Ok(None),
            },
        };
        if let Some(n) = norm {
            n.check(c)?;
        }
        let max = self.dataset.max_value.max(1) as f32;
        Ok(Some(
            (0..c)
                .map(|ch| {
                    (0..256)
                        .map(|p| {
                            let x = p as f32 / max;
                            match norm {
                                Some(n) => (x - n.mean[ch]) / n.std[ch],
                                None => x,
                            }
                        })
                        .collect()
                })
                .collect(),
        ))
    }
}

fn build(
    ds: &Dataset,
    indices: Vec<usize>,
    lut: Option<&[Vec<f32>]>,
    tf: Option<&Compose>,
    dev: &Device,
    rng_of: impl Fn(usize) -> StdRng + Sync,
) -> Result<Batch> {
    let [c, h, w] = ds.shape;
    let b = indices.len();
    let labels: Vec<u32> = indices.iter().map(|&i| ds.labels[i]).collect();
    let (x, shape) = match (lut, tf) {
        (Some(lut), _) => {
            let n = c * h * w;
            let mut x = vec![0f32; b * n];
            for (k, &i) in indices.iter().enumerate() {
                let src = ds.image(i);
                let dst = &mut x[k * n..(k + 1) * n];
                for ch in 0..c {
                    let t = &lut[ch];
                    let plane = ch * h * w..(ch + 1) * h * w;
                    for (d, &p) in dst[plane.clone()].iter_mut().zip(&src[plane]) {
                        *d = t[p as usize];
                    }
                }
            }
            (x, (b, c, h, w))
        }
        (None, Some(tf)) => {
            let max = ds.max_value.max(1) as f32;
            let imgs: Vec<Image> = indices
                .par_iter()
                .enumerate()
                .map(|(k, &i)| {
                    let img = Image {
                        c,
                        h,
                        w,
                        data: ds.image(i).iter().map(|&p| p as f32 / max).collect(),
                    };
                    tf.apply(img, &mut rng_of(k))
                })
                .collect::<Result<_>>()?;
            let (oc, oh, ow) = imgs.first().map(|m| (m.c, m.h, m.w)).unwrap_or((c, h, w));
            if let Some((k, m)) = imgs
                .iter()
                .enumerate()
                .find(|(_, m)| (m.c, m.h, m.w) != (oc, oh, ow))
            {
                return Err(Error::shape(
                    tf.name(),
                    format!(
                        "sample {} became {}×{}×{} but sample {} is {oc}×{oh}×{ow}",
                        indices[k], m.c, m.h, m.w, indices[0]
                    ),
                ));
            }
            let mut x = Vec::with_capacity(b * oc * oh * ow);
            imgs.into_iter().for_each(|m| x.extend_from_slice(&m.data));
            (x, (b, oc, oh, ow))
        }
        (None, None) => return Err(Error::config("Loader", "no lookup table and no transform")),
    };
    Ok(Batch {
        x: Tensor::from_vec(x, shape, dev)?,
        y: Tensor::from_vec(labels, b, dev)?,
        indices,
    })
}

/// The batches of one epoch (see [`Loader::iter_epoch`]).
pub struct LoaderIter {
    rx: Receiver<Result<Batch>>,
    remaining: usize,
}

impl LoaderIter {
    /// The next message of the batch thread. Off rayon's pool this is a
    /// plain blocking `recv`. On one of its workers (where
    /// [`crate::train::learner::Learner::fit`] runs its loop) the wait lends
    /// the worker to the pool: the batch thread's random transforms run as
    /// parallel work queued there, and a worker blocked in `recv` would leave
    /// them to the others; with a one-thread pool they would never run.
    fn receive(&self) -> std::result::Result<Result<Batch>, RecvError> {
        if rayon::current_thread_index().is_none() {
            return self.rx.recv();
        }
        loop {
            match self.rx.try_recv() {
                Ok(b) => return Ok(b),
                Err(TryRecvError::Disconnected) => return Err(RecvError),
                Err(TryRecvError::Empty) => {}
            }
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                // nothing queued in the pool: wait a little for the batch
                match self.rx.recv_timeout(Duration::from_micros(200)) {
                    Ok(b) => return Ok(b),
                    Err(RecvTimeoutError::Disconnected) => return Err(RecvError),
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
        }
    }
}

impl Iterator for LoaderIter {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Result<Batch>> {
        if self.remaining == 0 {
            return None;
        }
        match self.receive() {
            Ok(Ok(b)) => {
                self.remaining -= 1;
                Some(Ok(b))
            }
            Ok(Err(e)) => {
                self.remaining = 0;
                Some(Err(e))
            }
            Err(_) => {
                self.remaining = 0;
                Some(Err(Error::config(
                    "Loader",
                    "the batch thread stopped before the end of the epoch",
                )))
            }
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::transforms::{Normalize, RandomCrop, RandomHorizontalFlip};

    fn toy(n: usize) -> Dataset {
        let pixels = (0..n * 4).map(|i| (i * 7 % 256) as u8).collect();
        let labels = (0..n).map(|i| (i % 3) as u32).collect();
        Dataset::new(
            "toy",
            "mem",
            vec!["a".into(), "b".into(), "c".into()],
            [1, 2, 2],
            pixels,
            labels,
            255,
        )
        .unwrap()
    }

    fn epoch(l: &Loader, e: usize) -> Vec<Batch> {
        l.iter_epoch(e).collect::<Result<Vec<_>>>().unwrap()
    }

    #[test]
    fn standard_loaders_normalize_with_the_training_statistics() -> crate::TestResult {
        let pixels: Vec<u8> = (0..6 * 4).map(|i| (i * 11 % 256) as u8).collect();
        let ds = Dataset::new(
            "toy",
            "memory",
            vec!["a".into(), "b".into()],
            [1, 2, 2],
            pixels,
            vec![0, 1, 0, 1, 0, 1],
            255,
        )?;
        let l = Loaders::standard(ds.clone(), Some(ds), 4, 1)?;
        let x: Vec<f32> = l
            .train
            .iter_epoch(0)
            .flat_map(|b| {
                b.unwrap()
                    .x
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            })
            .collect();
        let mean = x.iter().sum::<f32>() / x.len() as f32;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / x.len() as f32;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
            "{mean} {var}"
        );
        assert_eq!(l.test.ok_or("None from l.test")?.num_samples(), 6);
        Ok(())
    }

    #[test]
    fn shuffled_epoch_sees_every_sample_once_and_is_reproducible() -> crate::TestResult {
        let l = Loader::new(toy(10), 4).shuffle(3);
        let b = epoch(&l, 0);
        assert_eq!(
            b.iter().map(|b| b.indices.len()).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        let mut all: Vec<usize> = b.iter().flat_map(|b| b.indices.clone()).collect();
        assert_ne!(all, (0..10).collect::<Vec<_>>());
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(epoch(&l, 0)[0].indices, b[0].indices);
        assert_ne!(l.epoch_indices(1)?, l.epoch_indices(0)?);
        // x = p / 255 and y = label, sample by sample.
        let x = b[0].x.flatten_all()?.to_vec1::<f32>()?;
        let y = b[0].y.to_vec1::<u32>()?;
        let ds = l.dataset();
        for (k, &i) in b[0].indices.iter().enumerate() {
            assert_eq!(y[k], ds.labels[i]);
            assert_eq!(x[k * 4], ds.image(i)[0] as f32 / 255.0);
        }
        let d = Loader::new(toy(10), 4).drop_last(true);
        assert_eq!((d.num_batches(), epoch(&d, 0).len()), (2, 2));
        Ok(())
    }

    #[test]
    fn lookup_table_equals_the_transform_path() -> crate::TestResult {
        let norm = || Compose::new().then(Normalize::new(&[0.1307], &[0.3081]));
        let fast = Loader::new(toy(9), 5).transform(norm());
        // A Compose of Normalize + a no-op flip takes the general path.
        let slow = Loader::new(toy(9), 5).transform(norm().then(RandomHorizontalFlip(0.0)));
        for (a, b) in epoch(&fast, 0).iter().zip(epoch(&slow, 0).iter()) {
            let (a, b) = (
                a.x.flatten_all()?.to_vec1::<f32>()?,
                b.x.flatten_all()?.to_vec1::<f32>()?,
            );
            assert_eq!(a, b);
        }
        let e = Loader::new(toy(2), 1)
            .transform(Compose::new().then(Normalize::new(&[0.5; 3], &[0.5; 3])));
        let err = e
            .iter_epoch(0)
            .next()
            .ok_or("None from e.iter_epoch(0).next()")?
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("3 means") && err.contains("1 channels"),
            "{err}"
        );
        let err = Loader::new(toy(2), 0)
            .iter_epoch(0)
            .next()
            .ok_or("no batch")?
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch_size"), "{err}");
        Ok(())
    }

    #[test]
    fn random_transforms_are_a_function_of_seed_and_epoch() -> crate::TestResult {
        let mk = || {
            Loader::new(toy(8), 3)
                .shuffle(1)
                .transform(Compose::new().then(RandomCrop::new(2, 1)))
        };
        let (a, b) = (mk(), mk());
        let xs = |l: &Loader, e| {
            epoch(l, e)
                .iter()
                .map(|b| b.x.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(xs(&a, 2), xs(&b, 2));
        assert_ne!(xs(&a, 2), xs(&a, 3));
        Ok(())
    }

    #[test]
    fn weighted_sampler_and_class_weights() -> crate::TestResult {
        // 90 samples of class 0, 10 of class 1.
        let labels: Vec<u32> = (0..100).map(|i| (i >= 90) as u32).collect();
        let ds = Dataset::new(
            "imb",
            "mem",
            vec!["a".into(), "b".into()],
            [1, 1, 1],
            vec![0; 100],
            labels,
            255,
        )?;
        let l = Loader::new(ds.clone(), 100)
            .seed(5)
            .sampler(WeightedSampler::balanced(&ds).num_samples(4000));
        assert_eq!((l.num_samples(), l.num_batches()), (4000, 40));
        let idx = l.epoch_indices(0)?;
        let ones = idx.iter().filter(|&&i| i >= 90).count();
        assert!((1800..2200).contains(&ones), "{ones}");
        assert_eq!(idx, l.epoch_indices(0)?);
        assert_eq!(l.class_weights()?, vec![100.0 / 90.0, 10.0]);
        let z = Loader::new(ds, 1).sampler(WeightedSampler::new(vec![0.0; 100]));
        assert!(z
            .iter_epoch(0)
            .next()
            .ok_or("no batch")?
            .unwrap_err()
            .to_string()
            .contains("positive sum"));
        Ok(())
    }

    /// Issue 17: an empty training set reported `Normalize.std: 0`; a test
    /// set with other classes was relabelled silently (or failed after an
    /// epoch with `class 4 out of range`).
    #[test]
    fn standard_checks_an_empty_train_set_and_the_test_classes() -> crate::TestResult {
        let e = Loaders::standard(toy(0), Some(toy(2)), 4, 1)
            .err()
            .ok_or("expected an error, got Ok")?
            .to_string();
        assert!(
            e.starts_with("train:") && e.contains("`toy` (mem) holds no sample"),
            "{e}"
        );
        let mut other = toy(2);
        other.classes = vec!["a".into(), "b".into(), "c".into(), "d".into()];
        other.name = "other".into();
        let e = Loaders::standard(toy(4), Some(other), 4, 1)
            .err()
            .ok_or("expected an error, got Ok")?
            .to_string();
        assert!(e.starts_with("test:") && e.contains("`other` (mem) has classes [a, b, c, d], expected the classes of `toy` (mem): [a, b, c]"), "{e}");
        assert!(Loaders::standard(toy(4), Some(toy(2)), 4, 1).is_ok());
        Ok(())
    }
}
