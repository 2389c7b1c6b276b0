//! Batches of a [`Dataset`] as tensors: `x` f32 `[B, C, H, W]` on the
//! loader's device and `y` u32 `[B]`.
//!
//! `x = (p / max_value − mean[c]) / std[c]` for pixel `p` of channel `c`
//! (without `normalize`, just `p / max_value`, torchvision's `ToTensor`),
//! through a 256-entry lookup table per channel. The order of an epoch is a
//! pure function of `(seed, epoch)` so a resumed run sees the same batches;
//! the next batch is assembled on a background thread while the caller trains.
//!
//! ```
//! use nnlab::data::{Dataset, loader::Loader};
//! let ds = Dataset::new("toy", "memory", vec!["a".into(), "b".into()], [1, 1, 2],
//!                       vec![0, 255, 255, 0, 0, 0], vec![0, 1, 1], 255).unwrap();
//! let loader = Loader::new(ds, 2).shuffle(1);
//! let sizes: Vec<usize> = loader.iter_epoch(0).map(|b| b.unwrap().indices.len()).collect();
//! assert_eq!(sizes, [2, 1]);
//! ```

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::data::Dataset;
use crate::{Error, Result};

/// One batch: inputs, labels, and the positions of its samples in the dataset.
#[derive(Debug)]
pub struct Batch {
    pub x: Tensor,
    pub y: Tensor,
    pub indices: Vec<usize>,
}

/// Batches over a dataset; cheap to clone (the dataset is shared).
#[derive(Clone, Debug)]
pub struct Loader {
    data: Arc<Dataset>,
    batch_size: usize,
    shuffle: Option<u64>,
    drop_last: bool,
    mean_std: Option<(Vec<f32>, Vec<f32>)>,
    device: Device,
}

/// The loaders of one experiment.
#[derive(Clone, Debug)]
pub struct Loaders {
    pub train: Loader,
    pub val: Option<Loader>,
    pub test: Option<Loader>,
}

impl Loaders {
    /// The usual course setup: the training set shuffled with `seed` and
    /// normalized with its own per-channel mean/std (0.1307/0.3081 for
    /// MNIST), the test set (when there is one) normalized the same way,
    /// evaluated in batches of 1,000.
    pub fn standard(train: Dataset, test: Option<Dataset>, batch_size: usize, seed: u64) -> Result<Loaders> {
        let (mean, std) = train.channel_stats();
        let (mean, std): (Vec<f32>, Vec<f32>) = (mean.iter().map(|&v| v as f32).collect(), std.iter().map(|&v| v as f32).collect());
        let train = Loader::new(train, batch_size).shuffle(seed).normalize(&mean, &std)?;
        let test = match test {
            Some(t) => Some(Loader::new(t, 1000).normalize(&mean, &std)?),
            None => None,
        };
        Ok(Loaders { train, val: None, test })
    }
}

impl Loader {
    /// Batches of `batch_size` in dataset order, on the CPU, scaled to `[0, 1]`.
    pub fn new(dataset: Dataset, batch_size: usize) -> Loader {
        Loader {
            data: Arc::new(dataset),
            batch_size: batch_size.max(1),
            shuffle: None,
            drop_last: false,
            mean_std: None,
            device: Device::Cpu,
        }
    }

    /// A new order every epoch, drawn from `seed` and the epoch number.
    pub fn shuffle(mut self, seed: u64) -> Loader {
        self.shuffle = Some(seed);
        self
    }

    /// Leave out a last batch smaller than `batch_size`.
    pub fn drop_last(mut self, yes: bool) -> Loader {
        self.drop_last = yes;
        self
    }

    /// Per-channel `(x − mean) / std` after scaling to `[0, 1]`
    /// (torchvision's `Normalize`); one value applies to every channel.
    pub fn normalize(mut self, mean: &[f32], std: &[f32]) -> Result<Loader> {
        let c = self.data.shape[0];
        let expand = |v: &[f32], what: &str| -> Result<Vec<f32>> {
            match v.len() {
                1 => Ok(vec![v[0]; c]),
                n if n == c => Ok(v.to_vec()),
                n => Err(Error::config(what, format!("{n} values for {c} channels of {}", self.data.name))),
            }
        };
        let (m, s) = (expand(mean, "normalize.mean")?, expand(std, "normalize.std")?);
        if let Some(bad) = s.iter().find(|v| !(**v > 0.0)) {
            return Err(Error::config("normalize.std", format!("{bad}: every std must be positive")));
        }
        self.mean_std = Some((m, s));
        Ok(self)
    }

    /// The device batches are created on.
    pub fn device(mut self, device: &Device) -> Loader {
        self.device = device.clone();
        self
    }

    pub fn dataset(&self) -> &Dataset {
        &self.data
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Samples one epoch visits.
    pub fn num_samples(&self) -> usize {
        if self.drop_last {
            self.data.len() / self.batch_size * self.batch_size
        } else {
            self.data.len()
        }
    }

    /// Batches in one epoch.
    pub fn num_batches(&self) -> usize {
        self.num_samples().div_ceil(self.batch_size)
    }

    /// The sample order of `epoch`.
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.data.len()).collect();
        if let Some(seed) = self.shuffle {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            idx.shuffle(&mut rng);
        }
        idx.truncate(self.num_samples());
        idx
    }

    /// The batches of `epoch`, prepared one ahead on a background thread.
    pub fn iter_epoch(&self, epoch: usize) -> LoaderIter {
        let order = self.order(epoch);
        let (tx, rx) = sync_channel(2);
        let me = self.clone();
        std::thread::spawn(move || {
            let table = me.table();
            for chunk in order.chunks(me.batch_size) {
                if tx.send(me.batch(chunk, &table)).is_err() {
                    return; // the consumer stopped early
                }
            }
        });
        LoaderIter { rx }
    }

    /// `table[c][p]` = the input value of pixel value `p` in channel `c`.
    fn table(&self) -> Vec<[f32; 256]> {
        let c = self.data.shape[0];
        let scale = 1.0 / self.data.max_value.max(1) as f32;
        (0..c)
            .map(|ch| {
                let mut t = [0f32; 256];
                for (p, v) in t.iter_mut().enumerate() {
                    let x = p as f32 * scale;
                    *v = match &self.mean_std {
                        Some((m, s)) => (x - m[ch]) / s[ch],
                        None => x,
                    };
                }
                t
            })
            .collect()
    }

    fn batch(&self, indices: &[usize], table: &[[f32; 256]]) -> Result<Batch> {
        let [c, h, w] = self.data.shape;
        let plane = h * w;
        let mut x = Vec::with_capacity(indices.len() * c * plane);
        let mut y = Vec::with_capacity(indices.len());
        for &i in indices {
            let img = self.data.image(i);
            for (ch, t) in table.iter().enumerate() {
                x.extend(img[ch * plane..(ch + 1) * plane].iter().map(|&p| t[p as usize]));
            }
            y.push(self.data.labels[i]);
        }
        let b = indices.len();
        Ok(Batch {
            x: Tensor::from_vec(x, (b, c, h, w), &self.device)?,
            y: Tensor::from_vec(y, b, &self.device)?,
            indices: indices.to_vec(),
        })
    }

    /// Number of samples of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        self.data.class_counts()
    }
}

/// The batches of one epoch (see [`Loader::iter_epoch`]).
pub struct LoaderIter {
    rx: Receiver<Result<Batch>>,
}

impl Iterator for LoaderIter {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Result<Batch>> {
        self.rx.recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Dataset {
        let pixels: Vec<u8> = (0..n * 2 * 2).map(|i| (i % 256) as u8).collect();
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        Dataset::new("toy", "memory", vec!["a".into(), "b".into(), "c".into()], [1, 2, 2], pixels, labels, 255).unwrap()
    }

    #[test]
    fn every_sample_once_per_epoch_in_a_seeded_order() {
        let l = Loader::new(toy(10), 4).shuffle(3);
        let mut seen: Vec<usize> = l.iter_epoch(0).flat_map(|b| b.unwrap().indices).collect();
        assert_ne!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(l.order(0), seen);
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(l.order(1), l.clone().order(1));
        assert_ne!(l.order(0), l.order(1));
        assert_eq!(l.num_batches(), 3);
        let dropped = l.clone().drop_last(true);
        assert_eq!(dropped.num_batches(), 2);
        assert_eq!(dropped.iter_epoch(0).count(), 2);
    }

    #[test]
    fn standard_loaders_normalize_with_the_training_statistics() {
        let l = Loaders::standard(toy(6), Some(toy(2)), 4, 1).unwrap();
        let x: Vec<f32> = l.train.iter_epoch(0).flat_map(|b| b.unwrap().x.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect();
        let mean = x.iter().sum::<f32>() / x.len() as f32;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / x.len() as f32;
        assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4, "{mean} {var}");
        assert_eq!(l.test.unwrap().num_samples(), 2);
    }

    #[test]
    fn values_are_scaled_and_normalized_per_channel() {
        let l = Loader::new(toy(3), 2).normalize(&[0.5], &[0.25]).unwrap();
        let b = l.iter_epoch(0).next().unwrap().unwrap();
        assert_eq!(b.x.dims(), &[2, 1, 2, 2]);
        let x = b.x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (i, v) in x.iter().enumerate() {
            assert!((v - ((i as f32 / 255.0) - 0.5) / 0.25).abs() < 1e-6);
        }
        assert_eq!(b.y.to_vec1::<u32>().unwrap(), [0, 1]);
        let e = Loader::new(toy(3), 2).normalize(&[0.5, 0.5], &[1.0, 1.0]).unwrap_err().to_string();
        assert!(e.contains("2 values for 1 channels"), "{e}");
        let e = Loader::new(toy(3), 2).normalize(&[0.5], &[0.0]).unwrap_err().to_string();
        assert!(e.contains("positive"), "{e}");
    }
}
