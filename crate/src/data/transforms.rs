//! Per-sample transforms on an `f32` CHW image in `[0, 1]` (torchvision's
//! `transforms` on tensors), chained with [`Compose`].
//!
//! - `Normalize`: `x_c = (x_c − mean_c) / std_c`
//! - `Resize`: bilinear, `align_corners=False`, no antialias (`F.interpolate`):
//!   source coordinate `s = (d + 0.5)·in/out − 0.5`, clamped at 0
//! - `RandomHorizontalFlip(p)`, `RandomCrop(size, padding)` (zero padding),
//!   `RandomRotation(deg)` (angle ~ U[−deg, deg], counter-clockwise, nearest, fill 0)
//! - `ColorJitter(b, c)`: in random order, `x·β` and `c·x + (1−c)·mean(gray(x))`,
//!   factors ~ U[max(0, 1−v), 1+v], clamped to [0, 1]
//! - `Grayscale(n)`: `0.2989 R + 0.587 G + 0.114 B` (torchvision's tensor weights)
//!
//! ```
//! use nnlab::data::transforms::{Compose, Image, Normalize, Transform};
//! use rand::SeedableRng;
//! let t = Compose::new().then(Normalize::new(&[0.5], &[0.5]));
//! let img = Image::new(1, 1, 2, vec![0.0, 1.0]).unwrap();
//! let out = t.apply(img, &mut rand::rngs::StdRng::seed_from_u64(0)).unwrap();
//! assert_eq!(out.data, vec![-1.0, 1.0]);
//! ```

use crate::{Error, Result};
use rand::rngs::StdRng;
use rand::Rng;

/// One sample: `c × h × w` floats, channel-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Image {
    pub fn new(c: usize, h: usize, w: usize, data: Vec<f32>) -> Result<Image> {
        if data.len() != c * h * w {
            return Err(Error::shape(
                "Image::new",
                format!("{} values for {c}×{h}×{w}", data.len()),
            ));
        }
        Ok(Image { c, h, w, data })
    }
    fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.h + y) * self.w + x]
    }
}

/// A per-sample transform; random ones draw from the `rng` they are given.
pub trait Transform: Send + Sync {
    fn apply(&self, img: Image, rng: &mut StdRng) -> Result<Image>;
    fn name(&self) -> String;
    /// `Some` for [`Normalize`]: lets the loader use a lookup table.
    fn as_normalize(&self) -> Option<&Normalize> {
        None
    }
}

/// Transforms applied one after the other.
#[derive(Default)]
pub struct Compose {
    pub steps: Vec<Box<dyn Transform>>,
}

impl Compose {
    pub fn new() -> Compose {
        Compose { steps: Vec::new() }
    }
    /// Appends a transform.
    pub fn then(mut self, t: impl Transform + 'static) -> Self {
        self.steps.push(Box::new(t));
        self
    }
    pub fn push(&mut self, t: Box<dyn Transform>) {
        self.steps.push(t);
    }
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
    /// The Normalize when the chain is exactly one Normalize.
    pub fn only_normalize(&self) -> Option<&Normalize> {
        match self.steps.as_slice() {
            [one] => one.as_normalize(),
            _ => None,
        }
    }
}

impl Transform for Compose {
    fn apply(&self, mut img: Image, rng: &mut StdRng) -> Result<Image> {
        for s in &self.steps {
            img = s.apply(img, rng)?;
        }
        Ok(img)
    }
    fn name(&self) -> String {
        format!(
            "Compose([{}])",
            self.steps
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// `x_c = (x_c − mean_c) / std_c`.
#[derive(Clone, Debug)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalize {
    pub fn new(mean: &[f32], std: &[f32]) -> Normalize {
        Normalize {
            mean: mean.to_vec(),
            std: std.to_vec(),
        }
    }
    /// Checks the channel count and that every std is positive.
    pub fn check(&self, c: usize) -> Result<()> {
        if self.mean.len() != c || self.std.len() != c {
            return Err(Error::shape(
                self.name(),
                format!(
                    "{} means and {} stds for an image of {c} channels",
                    self.mean.len(),
                    self.std.len()
                ),
            ));
        }
        if let Some(s) = self.std.iter().find(|s| !(**s > 0.0)) {
            return Err(Error::config("Normalize.std", format!("{s}: expected > 0")));
        }
        Ok(())
    }
}

impl Transform for Normalize {
    fn apply(&self, mut img: Image, _: &mut StdRng) -> Result<Image> {
        self.check(img.c)?;
        let hw = img.h * img.w;
        for (c, plane) in img.data.chunks_mut(hw.max(1)).enumerate() {
            let (m, s) = (self.mean[c], self.std[c]);
            plane.iter_mut().for_each(|v| *v = (*v - m) / s);
        }
        Ok(img)
    }
    fn name(&self) -> String {
        format!("Normalize(mean={:?}, std={:?})", self.mean, self.std)
    }
    fn as_normalize(&self) -> Option<&Normalize> {
        Some(self)
    }
}

/// Bilinear resize to `h × w`, `align_corners=False`, no antialias.
#[derive(Clone, Debug)]
pub struct Resize {
    pub h: usize,
    pub w: usize,
}

impl Resize {
    pub fn new(h: usize, w: usize) -> Resize {
        Resize { h, w }
    }
}

/// Source index pair and weight of the second for each output coordinate.
fn bilinear_taps(out: usize, inp: usize) -> Vec<(usize, usize, f32)> {
    let scale = inp as f32 / out as f32;
    (0..out)
        .map(|d| {
            let s = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (s as usize).min(inp - 1);
            let i1 = (i0 + 1).min(inp - 1);
            (i0, i1, s - i0 as f32)
        })
        .collect()
}

impl Transform for Resize {
    fn apply(&self, img: Image, _: &mut StdRng) -> Result<Image> {
        if self.h == 0 || self.w == 0 || img.h == 0 || img.w == 0 {
            return Err(Error::config(
                "Resize",
                format!(
                    "{}×{} from {}×{}: sizes must be positive",
                    self.h, self.w, img.h, img.w
                ),
            ));
        }
        let (ty, tx) = (bilinear_taps(self.h, img.h), bilinear_taps(self.w, img.w));
        let mut data = Vec::with_capacity(img.c * self.h * self.w);
        for c in 0..img.c {
            for &(y0, y1, ly) in &ty {
                for &(x0, x1, lx) in &tx {
                    let top = img.at(c, y0, x0) * (1.0 - lx) + img.at(c, y0, x1) * lx;
                    let bot = img.at(c, y1, x0) * (1.0 - lx) + img.at(c, y1, x1) * lx;
                    data.push(top * (1.0 - ly) + bot * ly);
                }
            }
        }
        Ok(Image {
            c: img.c,
            h: self.h,
            w: self.w,
            data,
        })
    }
    fn name(&self) -> String {
        format!("Resize(({}, {}))", self.h, self.w)
    }
}

/// Mirrors left-right with probability `p`.
#[derive(Clone, Debug)]
pub struct RandomHorizontalFlip(pub f64);

impl Transform for RandomHorizontalFlip {
    fn apply(&self, mut img: Image, rng: &mut StdRng) -> Result<Image> {
        if rng.random::<f64>() < self.0 {
            let w = img.w.max(1);
            img.data.chunks_mut(w).for_each(|row| row.reverse());
        }
        Ok(img)
    }
    fn name(&self) -> String {
        format!("RandomHorizontalFlip(p={})", self.0)
    }
}

/// Pads `padding` zeros on every side, then cuts a random `size × size` window.
#[derive(Clone, Debug)]
pub struct RandomCrop {
    pub size: usize,
    pub padding: usize,
}

impl RandomCrop {
    pub fn new(size: usize, padding: usize) -> RandomCrop {
        RandomCrop { size, padding }
    }
}

impl Transform for RandomCrop {
    fn apply(&self, img: Image, rng: &mut StdRng) -> Result<Image> {
        let (p, s) = (self.padding, self.size);
        let (ph, pw) = (img.h + 2 * p, img.w + 2 * p);
        if s == 0 || s > ph || s > pw {
            return Err(Error::config(
                "RandomCrop.size",
                format!(
                    "{s}: expected 1..={} for a {}×{} image padded by {p}",
                    ph.min(pw),
                    img.h,
                    img.w
                ),
            ));
        }
        let top = rng.random_range(0..=ph - s);
        let left = rng.random_range(0..=pw - s);
        let mut data = vec![0.0; img.c * s * s];
        for c in 0..img.c {
            for y in 0..s {
                let sy = (top + y) as isize - p as isize;
                if sy < 0 || sy >= img.h as isize {
                    continue;
                }
                for x in 0..s {
                    let sx = (left + x) as isize - p as isize;
                    if sx >= 0 && sx < img.w as isize {
                        data[(c * s + y) * s + x] = img.at(c, sy as usize, sx as usize);
                    }
                }
            }
        }
        Ok(Image {
            c: img.c,
            h: s,
            w: s,
            data,
        })
    }
    fn name(&self) -> String {
        format!("RandomCrop(size={}, padding={})", self.size, self.padding)
    }
}

/// Rotation by an angle ~ U[−degrees, degrees] (counter-clockwise), nearest, fill 0.
#[derive(Clone, Debug)]
pub struct RandomRotation(pub f32);

/// Rotates `img` by `angle` degrees counter-clockwise about its centre (torchvision's `F.rotate`).
pub fn rotate(img: &Image, angle: f32) -> Image {
    let (s, c) = angle.to_radians().sin_cos();
    let (cx, cy) = ((img.w as f32 - 1.0) * 0.5, (img.h as f32 - 1.0) * 0.5);
    let mut data = vec![0.0; img.data.len()];
    for y in 0..img.h {
        for x in 0..img.w {
            let (xc, yc) = (x as f32 - cx, y as f32 - cy);
            let sx = (c * xc - s * yc + cx).round_ties_even();
            let sy = (s * xc + c * yc + cy).round_ties_even();
            if sx >= 0.0 && sy >= 0.0 && (sx as usize) < img.w && (sy as usize) < img.h {
                for ch in 0..img.c {
                    data[(ch * img.h + y) * img.w + x] = img.at(ch, sy as usize, sx as usize);
                }
            }
        }
    }
    Image { data, ..*img }
}

impl Transform for RandomRotation {
    fn apply(&self, img: Image, rng: &mut StdRng) -> Result<Image> {
        if !(self.0 >= 0.0) {
            return Err(Error::config(
                "RandomRotation.degrees",
                format!("{}: expected ≥ 0", self.0),
            ));
        }
        let angle = rng.random_range(-self.0..=self.0);
        Ok(rotate(&img, angle))
    }
    fn name(&self) -> String {
        format!("RandomRotation(degrees=[{}, {}])", -self.0, self.0)
    }
}

/// Random brightness and contrast (torchvision's `ColorJitter(brightness, contrast)`).
#[derive(Clone, Debug)]
pub struct ColorJitter {
    pub brightness: f32,
    pub contrast: f32,
}

impl ColorJitter {
    pub fn new(brightness: f32, contrast: f32) -> ColorJitter {
        ColorJitter {
            brightness,
            contrast,
        }
    }
}

/// `clamp(x·f, 0, 1)`.
pub fn adjust_brightness(img: &mut Image, f: f32) {
    img.data
        .iter_mut()
        .for_each(|v| *v = (*v * f).clamp(0.0, 1.0));
}

/// `clamp(f·x + (1−f)·mean(gray(x)), 0, 1)`.
pub fn adjust_contrast(img: &mut Image, f: f32) {
    let mean = if img.c == 3 {
        let g = gray(img);
        g.iter().sum::<f32>() / g.len().max(1) as f32
    } else {
        img.data.iter().sum::<f32>() / img.data.len().max(1) as f32
    };
    img.data
        .iter_mut()
        .for_each(|v| *v = (f * *v + (1.0 - f) * mean).clamp(0.0, 1.0));
}

fn gray(img: &Image) -> Vec<f32> {
    let hw = img.h * img.w;
    (0..hw)
        .map(|i| 0.2989 * img.data[i] + 0.587 * img.data[hw + i] + 0.114 * img.data[2 * hw + i])
        .collect()
}

impl Transform for ColorJitter {
    fn apply(&self, mut img: Image, rng: &mut StdRng) -> Result<Image> {
        if !(self.brightness >= 0.0 && self.contrast >= 0.0) {
            return Err(Error::config(
                "ColorJitter",
                format!(
                    "brightness {}, contrast {}: expected ≥ 0",
                    self.brightness, self.contrast
                ),
            ));
        }
        let brightness_first = rng.random::<bool>();
        let factor = |v: f32, rng: &mut StdRng| rng.random_range((1.0 - v).max(0.0)..=1.0 + v);
        for step in 0..2 {
            if (step == 0) == brightness_first {
                if self.brightness > 0.0 {
                    let f = factor(self.brightness, rng);
                    adjust_brightness(&mut img, f);
                }
            } else if self.contrast > 0.0 {
                let f = factor(self.contrast, rng);
                adjust_contrast(&mut img, f);
            }
        }
        Ok(img)
    }
    fn name(&self) -> String {
        format!(
            "ColorJitter(brightness={}, contrast={})",
            self.brightness, self.contrast
        )
    }
}

/// `0.2989 R + 0.587 G + 0.114 B`, repeated to `out_channels` (1 or 3).
#[derive(Clone, Debug)]
pub struct Grayscale(pub usize);

impl Transform for Grayscale {
    fn apply(&self, img: Image, _: &mut StdRng) -> Result<Image> {
        if self.0 != 1 && self.0 != 3 {
            return Err(Error::config(
                "Grayscale.out_channels",
                format!("{}: expected 1 or 3", self.0),
            ));
        }
        let g = match img.c {
            1 => img.data.clone(),
            3 => gray(&img),
            c => {
                return Err(Error::shape(
                    self.name(),
                    format!("{c} channels, expected 1 or 3"),
                ))
            }
        };
        Ok(Image {
            c: self.0,
            h: img.h,
            w: img.w,
            data: g.repeat(self.0),
        })
    }
    fn name(&self) -> String {
        format!("Grayscale(num_output_channels={})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }
    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() < 1e-6, "at {i}: {x} vs {y}");
        }
    }

    // import torch, torch.nn.functional as F
    // x = torch.arange(12, dtype=torch.float32).reshape(1,1,3,4)/11
    // F.interpolate(x, size=(2,3), mode='bilinear', align_corners=False).flatten().tolist()
    // F.interpolate(x, size=(5,6), mode='bilinear', align_corners=False).flatten().tolist()
    // y = torch.tensor([[0.0,0.5],[1.0,0.25]]).reshape(1,2,2); ((y-0.1307)/0.3081).flatten().tolist()
    const DOWN: [f32; 6] = [
        0.10606060922145844,
        0.22727274894714355,
        0.3484848737716675,
        0.6515151858329773,
        0.7727273106575012,
        0.8939393758773804,
    ];
    const UP: [f32; 30] = [
        0.0,
        0.04545454680919647,
        0.10606061667203903,
        0.1666666716337204,
        0.22727273404598236,
        0.27272728085517883,
        0.1454545557498932,
        0.19090911746025085,
        0.2515151798725128,
        0.3121212422847748,
        0.37272727489471436,
        0.418181836605072,
        0.3636363744735718,
        0.40909093618392944,
        0.4696969985961914,
        0.5303030610084534,
        0.5909091234207153,
        0.6363636255264282,
        0.5818182229995728,
        0.6272727847099304,
        0.6878789067268372,
        0.7484849095344543,
        0.8090909719467163,
        0.854545533657074,
        0.7272727489471436,
        0.7727273106575012,
        0.8333333134651184,
        0.8939393758773804,
        0.9545454978942871,
        1.0,
    ];
    const NORM: [f32; 4] = [
        -0.4242129623889923,
        1.1986368894577026,
        2.821486711502075,
        0.38721194863319397,
    ];

    #[test]
    fn resize_matches_torch_interpolate() -> crate::TestResult {
        let x = Image::new(1, 3, 4, (0..12).map(|v| v as f32 / 11.0).collect())?;
        close(&Resize::new(2, 3).apply(x.clone(), &mut rng())?.data, &DOWN);
        close(&Resize::new(5, 6).apply(x, &mut rng())?.data, &UP);
        Ok(())
    }

    #[test]
    fn normalize_matches_torch_and_checks_channels() -> crate::TestResult {
        let t = Compose::new().then(Normalize::new(&[0.1307], &[0.3081]));
        let out = t.apply(Image::new(1, 2, 2, vec![0.0, 0.5, 1.0, 0.25])?, &mut rng())?;
        close(&out.data, &NORM);
        assert!(t.only_normalize().is_some());
        let e = t
            .apply(Image::new(3, 1, 1, vec![0.0; 3])?, &mut rng())
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 means") && e.contains("3 channels"), "{e}");
        Ok(())
    }

    #[test]
    fn flip_crop_rotate_exact() -> crate::TestResult {
        let img = Image::new(1, 2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
        assert_eq!(
            RandomHorizontalFlip(1.0)
                .apply(img.clone(), &mut rng())?
                .data,
            vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]
        );
        assert_eq!(
            RandomHorizontalFlip(0.0)
                .apply(img.clone(), &mut rng())?
                .data,
            img.data
        );
        // No padding, full size: the identity.
        assert_eq!(
            RandomCrop::new(2, 0)
                .apply(Image::new(1, 2, 2, vec![1., 2., 3., 4.])?, &mut rng())?
                .data,
            vec![1., 2., 3., 4.]
        );
        // A 1×1 image padded by 1, crop 3: the pixel in the middle of zeros.
        let c = RandomCrop::new(3, 1).apply(Image::new(1, 1, 1, vec![9.0])?, &mut rng())?;
        assert_eq!(c.data, vec![0., 0., 0., 0., 9., 0., 0., 0., 0.]);
        // Every crop of a padded 2×2 keeps the pixel values and zeros only.
        let c =
            RandomCrop::new(2, 2).apply(Image::new(1, 2, 2, vec![1., 2., 3., 4.])?, &mut rng())?;
        assert!(c.data.iter().all(|v| [0., 1., 2., 3., 4.].contains(v)));
        // 90° counter-clockwise of [[1,2],[3,4]] is [[2,4],[1,3]].
        let sq = Image::new(1, 2, 2, vec![1., 2., 3., 4.])?;
        assert_eq!(rotate(&sq, 90.0).data, vec![2., 4., 1., 3.]);
        assert_eq!(rotate(&sq, 0.0).data, sq.data);
        // 45° on a 3×3, torchvision's F.rotate grid rebuilt by hand in torch:
        // theta = [[cos a, -sin a, 0], [sin a, cos a, 0]]; base grid = pixel centres − centre;
        // grid = base @ theta.T / (w/2, h/2); F.grid_sample(img, grid, 'nearest', 'zeros', align_corners=False)
        let r = rotate(
            &Image::new(1, 3, 3, (1..=9).map(|v| v as f32).collect())?,
            45.0,
        );
        assert_eq!(r.data, vec![2.0, 3.0, 6.0, 1.0, 5.0, 9.0, 4.0, 7.0, 8.0]);
        // 30° on a 4×4: corners fall outside and become 0.
        let r = rotate(&Image::new(1, 4, 4, vec![1.0; 16])?, 30.0);
        assert_eq!(r.data[0], 0.0);
        let e = RandomCrop::new(5, 0)
            .apply(sq, &mut rng())
            .unwrap_err()
            .to_string();
        assert!(e.contains("RandomCrop.size") && e.contains("5"), "{e}");
        Ok(())
    }

    #[test]
    fn jitter_and_grayscale_formulas() -> crate::TestResult {
        let mut img = Image::new(1, 1, 2, vec![0.2, 0.8])?;
        adjust_brightness(&mut img, 1.5);
        close(&img.data, &[0.3, 1.0]);
        let mut img = Image::new(1, 1, 2, vec![0.2, 0.8])?;
        adjust_contrast(&mut img, 0.5); // mean 0.5: 0.5·x + 0.25
        close(&img.data, &[0.35, 0.65]);
        let rgb = Image::new(3, 1, 1, vec![1.0, 0.5, 0.0])?;
        let g = Grayscale(3).apply(rgb, &mut rng())?;
        close(&g.data, &[0.5924, 0.5924, 0.5924]);
        // Zero jitter is the identity; factors stay within [1−v, 1+v].
        let x = Image::new(1, 1, 2, vec![0.2, 0.4])?;
        assert_eq!(ColorJitter::new(0.0, 0.0).apply(x.clone(), &mut rng())?, x);
        let y = ColorJitter::new(0.5, 0.0).apply(x, &mut rng())?;
        let f = y.data[0] / 0.2;
        assert!((0.5..=1.5).contains(&f) && (y.data[1] / 0.4 - f).abs() < 1e-5);
        Ok(())
    }
}
