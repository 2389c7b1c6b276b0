//! The in-memory dataset every reader produces.
//!
//! `pixels` holds `len() × C × H × W` bytes, one sample after another, each
//! sample channel-major (CHW, like a torch tensor); `labels[i]` is the class
//! index of sample `i` into `classes`. Pixel values run `0..=max_value`
//! (255 for images, 16 for scikit-learn digits), so `x = p / max_value`
//! maps them to `[0, 1]` as torchvision's `ToTensor` does.
//!
//! ```
//! use nnlab::data::Dataset;
//! let ds = Dataset::new("toy", "memory", vec!["a".into(), "b".into()], [1, 2, 2],
//!                       vec![0, 255, 0, 255, 9, 9, 9, 9], vec![0, 1], 255).unwrap();
//! assert_eq!(ds.len(), 2);
//! assert_eq!(ds.image(1), &[9, 9, 9, 9]);
//! ```

use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// What it is, e.g. `mnist/train`.
    pub name: String,
    /// Where it came from: a file, a folder, a URL.
    pub source: String,
    /// Class names, index = label.
    pub classes: Vec<String>,
    /// `[C, H, W]` of one sample.
    pub shape: [usize; 3],
    /// `len × C × H × W` bytes, CHW per sample.
    pub pixels: Vec<u8>,
    /// One class index per sample.
    pub labels: Vec<u32>,
    /// The largest pixel value of the format (255, or 16 for digits).
    pub max_value: u8,
}

impl Dataset {
    /// Checks that pixels and labels agree with the shape and the classes.
    pub fn new(
        name: impl Into<String>,
        source: impl Into<String>,
        classes: Vec<String>,
        shape: [usize; 3],
        pixels: Vec<u8>,
        labels: Vec<u32>,
        max_value: u8,
    ) -> Result<Self> {
        let name = name.into();
        let sample = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .unwrap_or(0);
        if sample == 0 {
            return Err(Error::config(
                format!("{name}.shape"),
                format!(
                    "{shape:?}: every dimension must be positive, the product at most {}",
                    usize::MAX
                ),
            ));
        }
        if labels.len().checked_mul(sample) != Some(pixels.len()) {
            return Err(Error::config(
                format!("{name}.pixels"),
                format!(
                    "{} bytes for {} labels of shape {shape:?}: expected {}",
                    pixels.len(),
                    labels.len(),
                    labels.len() as u128 * sample as u128
                ),
            ));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= classes.len())
        {
            return Err(Error::config(
                format!("{name}.labels[{i}]"),
                format!(
                    "label {l}, expected 0..{} ({} classes)",
                    classes.len(),
                    classes.len()
                ),
            ));
        }
        Ok(Dataset {
            name,
            source: source.into(),
            classes,
            shape,
            pixels,
            labels,
            max_value,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes in one sample, `C × H × W`.
    pub fn sample_len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// The pixels of sample `i` (CHW).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.sample_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Number of samples of each class, in class order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes.len()];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }

    /// Per-channel mean and standard deviation of `pixel / max_value` over
    /// every sample (what torchvision's `Normalize` is usually given).
    pub fn channel_stats(&self) -> (Vec<f64>, Vec<f64>) {
        self.channel_histograms()
            .iter()
            .map(|h| self.histogram_stats(h))
            .unzip()
    }

    /// Mean and standard deviation of `pixel / max_value` over every pixel of
    /// every channel together.
    pub fn pixel_stats(&self) -> (f64, f64) {
        let mut all = [0u64; 256];
        for h in self.channel_histograms() {
            for (a, k) in all.iter_mut().zip(h) {
                *a += k;
            }
        }
        self.histogram_stats(&all)
    }

    /// How often each byte value occurs, one histogram per channel.
    fn channel_histograms(&self) -> Vec<[u64; 256]> {
        let [c, h, w] = self.shape;
        let plane = h * w;
        let mut hist = vec![[0u64; 256]; c];
        for img in self.pixels.chunks_exact(c * plane) {
            for (ch, hc) in hist.iter_mut().enumerate() {
                for &p in &img[ch * plane..(ch + 1) * plane] {
                    hc[p as usize] += 1;
                }
            }
        }
        hist
    }

    /// `(mean, std)` of `p / max_value` for a histogram of byte values `p`.
    fn histogram_stats(&self, hist: &[u64; 256]) -> (f64, f64) {
        let scale = 1.0 / self.max_value.max(1) as f64;
        let n = hist.iter().sum::<u64>().max(1) as f64;
        let mean = hist
            .iter()
            .enumerate()
            .map(|(p, &k)| p as f64 * scale * k as f64)
            .sum::<f64>()
            / n;
        let var = hist
            .iter()
            .enumerate()
            .map(|(p, &k)| (p as f64 * scale - mean).powi(2) * k as f64)
            .sum::<f64>()
            / n;
        (mean, var.sqrt())
    }

    /// A new dataset with the samples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Result<Dataset> {
        let n = self.sample_len();
        let mut pixels = Vec::with_capacity(indices.len() * n);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            if i >= self.len() {
                return Err(Error::config(
                    format!("{}.select", self.name),
                    format!("index {i}, expected < {}", self.len()),
                ));
            }
            pixels.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Ok(Dataset {
            pixels,
            labels,
            ..self.clone_meta()
        })
    }

    /// `n` distinct samples drawn at random with `seed`, kept in dataset order.
    pub fn subset(&self, n: usize, seed: u64) -> Result<Dataset> {
        if n > self.len() {
            return Err(Error::config(
                format!("{}.subset", self.name),
                format!("{n} samples asked, the dataset has {}", self.len()),
            ));
        }
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        let mut idx = rand::seq::index::sample(&mut rng, self.len(), n).into_vec();
        idx.sort_unstable();
        self.select(&idx)
    }

    /// Everything but the samples.
    fn clone_meta(&self) -> Dataset {
        Dataset {
            name: self.name.clone(),
            source: self.source.clone(),
            classes: self.classes.clone(),
            shape: self.shape,
            pixels: Vec::new(),
            labels: Vec::new(),
            max_value: self.max_value,
        }
    }
}
