//! A folder of images, one subfolder per class, read into a [`Dataset`]
//! (torchvision's `ImageFolder`).
//!
//! ```text
//! root/glioma_tumor/gg (1).jpg     class 0  (class names sorted, as torchvision)
//! root/no_tumor/image(3).JPG       class 2
//! ```
//!
//! Files ending in `jpg`, `jpeg`, `png` or `bmp` (any letter case) are read,
//! walking each class folder recursively (sub-folders in sorted order, then
//! files in sorted order, like `os.walk` + `sorted`); hidden files (`.name`)
//! and other files are ignored. Images are decoded in parallel (rayon),
//! converted to RGB (or to one channel with [`ImageFolder::grayscale`], PIL's
//! `L = (19595 R + 38470 G + 7471 B + 2^15) >> 16`), and resized to `H × W`
//! with a bilinear (triangle) filter, PIL/torchvision's default. An image
//! over [`MAX_PIXELS`] (or [`ImageFolder::max_pixels`]) is refused from its
//! header before it is decoded; a `folder:PATH` spec's splits must hold the
//! same classes ([`check_same_classes`]).
//!
//! The decoded pixels are cached in `<cache dir>/folder-<md5>.safetensors`, where the
//! md5 covers the folder path, every file's relative path, size and mtime, the
//! resize, the channel mode and `skip_bad`: a second load of an unchanged
//! folder reads that file. The cache dir is `$NNLAB_DATA_DIR/.cache`, else
//! `$HOME/.cache/nnlab/folders`. A cache file that does not parse is ignored
//! and rebuilt; it is written to a temp file and renamed, never half-written.
//! Cache layout: a safetensors file, `labels` (U32, `[N]`) and `pixels` (U8,
//! `[N, C, H, W]`), with the metadata `format` (`nnlab-image-folder/2`),
//! `name`, `source`, `max_value`, `classes` and `skipped` (JSON). A cache in
//! the first format (`folder-<md5>.bin`, `NNLABIF1`) is rebuilt in this one
//! and removed, with one printed line saying so.
//!
//! A course dataset is found by name in the data directory or the mirror
//! ([`ImageFolder::course`], see [`crate::data::sources::course_folder`]).
//!
//! ```no_run
//! use nnlab::data::image_folder::ImageFolder;
//! let train = ImageFolder::course("brain-tumor-mri/Training")?.resize(128, 128).load()?;
//! assert_eq!(train.shape, [3, 128, 128]);
//! # Ok::<(), nnlab::Error>(())
//! ```

use crate::data::Dataset;
use crate::{Error, Result};
use image::imageops::FilterType;
use md5::{Digest, Md5};
use rayon::prelude::*;
use safetensors::tensor::{SafeTensors, TensorView};
use safetensors::Dtype as StDtype;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The `format` metadata of a cache file in this layout.
const CACHE_FORMAT: &str = "nnlab-image-folder/2";

/// The most pixels one image may have by default: 2^25 ≈ 33.5 million
/// (e.g. 8192 × 4096; 100 MB as RGB). The course's largest images (Brain
/// Tumor MRI) are under 1 million. See [`ImageFolder::max_pixels`].
pub const MAX_PIXELS: u64 = 1 << 25;
const EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "bmp"];

/// Builder for reading a class-per-subfolder image folder.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    path: PathBuf,
    size: Option<(usize, usize)>,
    grayscale: bool,
    skip_bad: bool,
    max_pixels: u64,
    cache: bool,
    cache_dir: Option<PathBuf>,
}

/// A file that could not be decoded and was left out (`skip_bad(true)`).
#[derive(Clone, Debug, PartialEq)]
pub struct SkippedFile {
    pub path: PathBuf,
    pub reason: String,
}

/// What [`ImageFolder::load_report`] returns: the dataset and how it was made.
#[derive(Clone, Debug)]
pub struct FolderLoad {
    pub dataset: Dataset,
    /// Undecodable files left out (only with `skip_bad(true)`).
    pub skipped: Vec<SkippedFile>,
    /// True when the pixels came from the cache file.
    pub from_cache: bool,
    /// The cache file used or written (None with `cache(false)`).
    pub cache_path: Option<PathBuf>,
}

/// One image file of the folder: class index, path, and the metadata hashed
/// into the cache key.
struct Entry {
    class: u32,
    path: PathBuf,
    rel: String,
    size: u64,
    mtime_ns: u128,
}

impl ImageFolder {
    pub fn new(path: impl AsRef<Path>) -> ImageFolder {
        ImageFolder {
            path: path.as_ref().to_path_buf(),
            size: None,
            grayscale: false,
            skip_bad: false,
            max_pixels: MAX_PIXELS,
            cache: true,
            cache_dir: None,
        }
    }

    /// A course image folder by name, or a folder inside one
    /// (`brain-tumor-mri/Training`), from `<data dir>/<path>` or
    /// `<mirror>/<path>`; when it is in neither, the error names the
    /// dataset, the folders tried, its source page and where to put it
    /// ([`crate::data::sources::course_folder`]).
    pub fn course(path: &str) -> Result<ImageFolder> {
        Ok(ImageFolder::new(crate::data::sources::course_folder(path)?))
    }

    /// Resize every image to `h × w` (bilinear). Without it all images must have one size.
    pub fn resize(mut self, h: usize, w: usize) -> Self {
        self.size = Some((h, w));
        self
    }

    /// One channel (`L` of PIL) instead of RGB.
    pub fn grayscale(mut self, yes: bool) -> Self {
        self.grayscale = yes;
        self
    }

    /// Leave undecodable files out (listed in [`FolderLoad::skipped`]) instead of failing.
    pub fn skip_bad(mut self, yes: bool) -> Self {
        self.skip_bad = yes;
        self
    }

    /// The most pixels (width × height) one image may have before it is
    /// decoded ([`MAX_PIXELS`] by default); checked from the file's header,
    /// so a small file that expands to gigabytes is never decoded.
    pub fn max_pixels(mut self, n: u64) -> Self {
        self.max_pixels = n;
        self
    }

    /// Use (read and write) the decoded cache; on by default.
    pub fn cache(mut self, yes: bool) -> Self {
        self.cache = yes;
        self
    }

    /// Where cache files go instead of the default (see the module doc).
    pub fn cache_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cache_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The default cache folder: `$NNLAB_DATA_DIR/.cache` or `$HOME/.cache/nnlab/folders`.
    pub fn default_cache_dir() -> PathBuf {
        match std::env::var_os("NNLAB_DATA_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d).join(".cache"),
            _ => {
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(std::env::temp_dir);
                home.join(".cache").join("nnlab").join("folders")
            }
        }
    }

    /// Reads the folder (or its cache) into a dataset.
    pub fn load(&self) -> Result<Dataset> {
        self.load_report().map(|r| r.dataset)
    }

    /// Each subfolder of `path` that holds class folders (e.g. `Training`,
    /// `Testing`), loaded with these settings, sorted by name.
    pub fn load_splits(&self) -> Result<Vec<(String, Dataset)>> {
        let mut out = Vec::new();
        for (name, dir) in sorted_subdirs(&self.path)? {
            if sorted_subdirs(&dir)?.is_empty() {
                continue;
            }
            let ds = ImageFolder {
                path: dir,
                ..self.clone()
            }
            .load()?;
            out.push((name, ds));
        }
        if out.is_empty() {
            return Err(Error::missing(
                &self.path,
                "expected split folders (e.g. Training/, Testing/) each holding one subfolder per class",
            ));
        }
        Ok(out)
    }

    /// True when `path` is laid out in split folders: every subfolder
    /// (`Training/`, `Testing/`) holds subfolders and no image of its own.
    /// False for a plain class-per-subfolder folder.
    pub fn has_split_folders(&self) -> Result<bool> {
        let subdirs = sorted_subdirs(&self.path)?;
        if subdirs.is_empty() {
            return Ok(false);
        }
        for (_, dir) in &subdirs {
            if sorted_subdirs(dir)?.is_empty() || holds_image_file(dir)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Like [`load`](Self::load), also saying what was skipped and whether the cache was used.
    pub fn load_report(&self) -> Result<FolderLoad> {
        if let Some((h, w)) = self.size {
            if h == 0 || w == 0 || h > 1 << 15 || w > 1 << 15 {
                return Err(Error::config(
                    "ImageFolder.resize",
                    format!("{h}×{w}: expected 1..=32768 each"),
                ));
            }
        }
        let (classes, entries) = self.scan()?;
        let cache_path = if self.cache {
            let dir = self
                .cache_dir
                .clone()
                .unwrap_or_else(Self::default_cache_dir);
            Some(dir.join(format!("folder-{}.safetensors", self.key(&entries))))
        } else {
            None
        };
        if let Some(p) = &cache_path {
            if let Some((dataset, skipped)) = read_cache(p, &classes) {
                return Ok(FolderLoad {
                    dataset,
                    skipped,
                    from_cache: true,
                    cache_path,
                });
            }
        }
        let (dataset, skipped) = self.decode_all(classes, &entries)?;
        if let Some(p) = &cache_path {
            // The cache only saves time: a read-only disk must not fail the load.
            if write_cache(p, &dataset, &skipped).is_ok() {
                let legacy = p.with_extension("bin");
                if legacy.is_file() && std::fs::remove_file(&legacy).is_ok() {
                    println!(
                        "image cache: {} (old NNLABIF1 format) rebuilt as {}",
                        legacy.display(),
                        p.display()
                    );
                }
            }
        }
        Ok(FolderLoad {
            dataset,
            skipped,
            from_cache: false,
            cache_path,
        })
    }

    /// Class names (sorted) and every image file, class by class.
    fn scan(&self) -> Result<(Vec<String>, Vec<Entry>)> {
        let classes = sorted_subdirs(&self.path)?;
        if classes.is_empty() {
            return Err(Error::missing(
                &self.path,
                "expected one subfolder per class holding images",
            ));
        }
        let mut entries = Vec::new();
        for (ci, (name, dir)) in classes.iter().enumerate() {
            let before = entries.len();
            walk(&dir.clone(), dir, name, ci as u32, &mut entries)?;
            if entries.len() == before {
                return Err(Error::format(
                    dir,
                    format!("class folder `{name}` holds no image (expected files ending in jpg, jpeg, png or bmp)"),
                ));
            }
        }
        Ok((classes.into_iter().map(|(n, _)| n).collect(), entries))
    }

    fn key(&self, entries: &[Entry]) -> String {
        let mut h = Md5::new();
        let root = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        h.update(format!(
            "nnlab-image-folder v1\n{}\n{:?}\ngray={} skip_bad={}\n",
            root.display(),
            self.size,
            self.grayscale,
            self.skip_bad
        ));
        for e in entries {
            h.update(format!(
                "{}\t{}\t{}\t{}\n",
                e.class, e.rel, e.size, e.mtime_ns
            ));
        }
        if self.max_pixels != MAX_PIXELS {
            // what skip_bad leaves out depends on the limit
            h.update(format!("max_pixels={}\n", self.max_pixels));
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn decode_all(
        &self,
        classes: Vec<String>,
        entries: &[Entry],
    ) -> Result<(Dataset, Vec<SkippedFile>)> {
        let c = if self.grayscale { 1 } else { 3 };
        let decoded: Vec<std::result::Result<(usize, usize, Vec<u8>), String>> = entries
            .par_iter()
            .map(|e| decode(&e.path, self.size, self.grayscale, self.max_pixels))
            .collect();
        let mut skipped = Vec::new();
        let mut shape: Option<[usize; 3]> = self.size.map(|(h, w)| [c, h, w]);
        let mut first: Option<&Path> = None;
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for (e, d) in entries.iter().zip(decoded) {
            match d {
                Ok((h, w, px)) => {
                    let s = *shape.get_or_insert([c, h, w]);
                    let first = *first.get_or_insert(&e.path);
                    if s != [c, h, w] {
                        return Err(Error::format(
                            &e.path,
                            format!(
                                "image is {h}×{w} but {} is {}×{}; call .resize(h, w) to load images of different sizes",
                                first.display(),
                                s[1],
                                s[2]
                            ),
                        ));
                    }
                    if pixels.is_empty() {
                        pixels.reserve(entries.len() * px.len());
                    }
                    pixels.extend_from_slice(&px);
                    labels.push(e.class);
                }
                Err(why) if self.skip_bad => skipped.push(SkippedFile {
                    path: e.path.clone(),
                    reason: why,
                }),
                Err(why) => {
                    return Err(Error::format(
                        &e.path,
                        format!(
                        "cannot decode image ({why}); use .skip_bad(true) to leave such files out"
                    ),
                    ))
                }
            }
        }
        let Some(shape) = shape else {
            return Err(Error::format(&self.path, "no image could be decoded"));
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ds = Dataset::new(
            format!("folder:{name}"),
            self.path.display().to_string(),
            classes,
            shape,
            pixels,
            labels,
            255,
        )?;
        Ok((ds, skipped))
    }
}

/// Non-hidden subfolders of `dir`, sorted by name.
fn sorted_subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::missing(dir, "expected an image folder with one subfolder per class")
        }
        _ => Error::io(dir, e),
    })?;
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(dir, e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        let path = ent.path();
        if !name.starts_with('.') && path.is_dir() {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `dir` itself (not its subfolders) holds an image file.
fn holds_image_file(dir: &Path) -> Result<bool> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(dir, e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && is_image_name(&name) && !ent.path().is_dir() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Checks that a split holds the same classes, in the same order, as the
/// training split: an error naming both folders and the first class that
/// differs (a test split with fewer, more or renamed classes would otherwise
/// be relabelled silently or fail only after an epoch).
pub fn check_same_classes(
    train_dir: &Path,
    train: &[String],
    other_dir: &Path,
    other: &[String],
) -> Result<()> {
    if train == other {
        return Ok(());
    }
    let i = train
        .iter()
        .zip(other)
        .position(|(a, b)| a != b)
        .unwrap_or(train.len().min(other.len()));
    let what = match (train.get(i), other.get(i)) {
        (Some(t), Some(o)) => format!(
            "class {i} is `{o}` here but `{t}` in {}",
            train_dir.display()
        ),
        (Some(t), None) => format!("class `{t}` of {} is missing here", train_dir.display()),
        (None, Some(o)) => format!("class `{o}` is not in {}", train_dir.display()),
        (None, None) => String::new(),
    };
    Err(Error::format(
        other_dir,
        format!(
            "{what}: expected the same class folders as {} ({}), found {}",
            train_dir.display(),
            train.join(", "),
            other.join(", ")
        ),
    ))
}

/// Image files under `dir` in `os.walk` + `sorted` order: this folder's files, then sub-folders.
fn walk(root: &Path, dir: &Path, class_name: &str, class: u32, out: &mut Vec<Entry>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(dir, e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = ent.path();
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            dirs.push((name, path));
        } else if is_image_name(&name) {
            files.push((name, path, meta));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    dirs.sort();
    for (_, path, meta) in files {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        out.push(Entry {
            class,
            path,
            rel: format!("{class_name}/{rel}"),
            size: meta.len(),
            mtime_ns,
        });
    }
    for (_, path) in dirs {
        walk(root, &path, class_name, class, out)?;
    }
    Ok(())
}

fn is_image_name(name: &str) -> bool {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => {
            EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e))
        }
        _ => false,
    }
}

/// Decodes one file to CHW bytes: `(h, w, pixels)`, or why it failed. The
/// dimensions are read from the header first: more than `max_pixels` pixels
/// is refused before a pixel is decoded, and the decoder is held to those
/// dimensions.
fn decode(
    path: &Path,
    size: Option<(usize, usize)>,
    gray: bool,
    max_pixels: u64,
) -> std::result::Result<(usize, usize, Vec<u8>), String> {
    let open = || {
        image::ImageReader::open(path)
            .map_err(|e| e.to_string())?
            .with_guessed_format()
            .map_err(|e| e.to_string())
    };
    let (w0, h0) = open()?.into_dimensions().map_err(|e| e.to_string())?;
    let pixels = w0 as u64 * h0 as u64;
    if pixels > max_pixels {
        return Err(format!(
            "{w0}×{h0} = {pixels} pixels, more than the limit of {max_pixels} per image (ImageFolder::max_pixels); not decoded"
        ));
    }
    let mut reader = open()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w0);
    limits.max_image_height = Some(h0);
    // the largest decoded form, 16-bit RGBA, and the decoder's own buffers
    limits.max_alloc = Some(pixels * 8 + (64 << 20));
    reader.limits(limits);
    let img = reader.decode().map_err(|e| e.to_string())?;
    if gray {
        let mut g = match img {
            image::DynamicImage::ImageLuma8(g) => g,
            other => pil_luma(&other.to_rgb8()),
        };
        if let Some((h, w)) = size {
            if (g.height() as usize, g.width() as usize) != (h, w) {
                g = image::imageops::resize(&g, w as u32, h as u32, FilterType::Triangle);
            }
        }
        let (h, w) = (g.height() as usize, g.width() as usize);
        Ok((h, w, g.into_raw()))
    } else {
        let mut rgb = img.to_rgb8();
        if let Some((h, w)) = size {
            if (rgb.height() as usize, rgb.width() as usize) != (h, w) {
                rgb = image::imageops::resize(&rgb, w as u32, h as u32, FilterType::Triangle);
            }
        }
        let (h, w) = (rgb.height() as usize, rgb.width() as usize);
        let raw = rgb.into_raw();
        let hw = h * w;
        let mut chw = vec![0u8; 3 * hw];
        for (i, px) in raw.chunks_exact(3).enumerate() {
            chw[i] = px[0];
            chw[hw + i] = px[1];
            chw[2 * hw + i] = px[2];
        }
        Ok((h, w, chw))
    }
}

/// PIL's `convert("L")`: `(19595 R + 38470 G + 7471 B + 0x8000) >> 16`.
fn pil_luma(rgb: &image::RgbImage) -> image::GrayImage {
    let (w, h) = rgb.dimensions();
    let data = rgb
        .as_raw()
        .chunks_exact(3)
        .map(|p| {
            ((19595 * p[0] as u32 + 38470 * p[1] as u32 + 7471 * p[2] as u32 + 0x8000) >> 16) as u8
        })
        .collect();
    image::GrayImage::from_raw(w, h, data).unwrap_or_else(|| image::GrayImage::new(w, h))
}

fn write_cache(path: &Path, ds: &Dataset, skipped: &[SkippedFile]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let skipped: Vec<(String, String)> = skipped
        .iter()
        .map(|s| (s.path.display().to_string(), s.reason.clone()))
        .collect();
    let metadata = HashMap::from([
        ("format".to_string(), CACHE_FORMAT.to_string()),
        ("name".to_string(), ds.name.clone()),
        ("source".to_string(), ds.source.clone()),
        ("max_value".to_string(), ds.max_value.to_string()),
        ("classes".to_string(), serde_json::to_string(&ds.classes)?),
        ("skipped".to_string(), serde_json::to_string(&skipped)?),
    ]);
    let labels: Vec<u8> = ds.labels.iter().flat_map(|l| l.to_le_bytes()).collect();
    let [c, h, w] = ds.shape;
    let bad = |e: safetensors::SafeTensorError| Error::format(path, e.to_string());
    let tensors = [
        (
            "labels",
            TensorView::new(StDtype::U32, vec![ds.len()], &labels).map_err(bad)?,
        ),
        (
            "pixels",
            TensorView::new(StDtype::U8, vec![ds.len(), c, h, w], &ds.pixels).map_err(bad)?,
        ),
    ];
    // safetensors writes a sibling temp file and renames it: never half-written.
    safetensors::serialize_to_file(tensors, Some(metadata), path).map_err(bad)
}

/// Reads a cache file written by an [`ImageFolder`] load (layout in the
/// module doc) whose classes must be `classes`: the dataset, or None when the
/// file is absent or not a valid cache (what a load then rebuilds). Every
/// length in it is checked against the file's size before anything is
/// allocated; for tools and the fuzz harness.
pub fn read_cache_file(path: &Path, classes: &[String]) -> Option<Dataset> {
    read_cache(path, classes).map(|(ds, _)| ds)
}

/// The cached dataset, or None when the file is absent or not a valid cache.
/// safetensors checks the header and every offset against the file's size.
fn read_cache(path: &Path, classes: &[String]) -> Option<(Dataset, Vec<SkippedFile>)> {
    let mut f = crate::data::bounded::open_regular(path).ok()?;
    let mut buf = Vec::with_capacity(usize::try_from(f.metadata().ok()?.len()).ok()?);
    f.read_to_end(&mut buf).ok()?;
    let (_, header) = SafeTensors::read_metadata(&buf).ok()?;
    let meta = header.metadata().as_ref()?;
    let st = SafeTensors::deserialize(&buf).ok()?;
    let field = |k: &str| meta.get(k).map(String::as_str);
    if field("format")? != CACHE_FORMAT {
        return None;
    }
    let cls: Vec<String> = serde_json::from_str(field("classes")?).ok()?;
    if cls != classes {
        return None;
    }
    let (labels, pixels) = (st.tensor("labels").ok()?, st.tensor("pixels").ok()?);
    let &[n, c, h, w] = pixels.shape() else {
        return None;
    };
    if labels.dtype() != StDtype::U32 || pixels.dtype() != StDtype::U8 || labels.shape() != [n] {
        return None;
    }
    let labels = labels
        .data()
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let skipped: Vec<(String, String)> = serde_json::from_str(field("skipped")?).ok()?;
    let ds = Dataset::new(
        field("name")?,
        field("source")?,
        cls,
        [c, h, w],
        pixels.data().to_vec(),
        labels,
        field("max_value")?.parse().ok()?,
    )
    .ok()?;
    let skipped = skipped
        .into_iter()
        .map(|(p, r)| SkippedFile {
            path: PathBuf::from(p),
            reason: r,
        })
        .collect();
    Some((ds, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save_rgb(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)));
        img.save(path).unwrap();
    }

    /// root/{b_cls, a_cls}: pngs with spaces/brackets, an upper-case BMP, a grayscale PNG, hidden + text files.
    fn make_folder() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a_cls");
        let b = t.path().join("b_cls");
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        save_rgb(&a.join("gg (40).png"), 4, 2, |x, y| {
            [(x * 10) as u8, (y * 100) as u8, 7]
        });
        save_rgb(&a.join("sub").join("z.png"), 4, 2, |_, _| [1, 2, 3]);
        save_rgb(&b.join("IMG[1].BMP"), 4, 2, |_, _| [200, 100, 50]);
        image::GrayImage::from_fn(4, 2, |x, _| image::Luma([x as u8 * 50]))
            .save(b.join("gray.png"))
            .unwrap();
        std::fs::write(a.join(".hidden.png"), b"junk").unwrap();
        std::fs::write(a.join("notes.txt"), b"junk").unwrap();
        t
    }

    #[test]
    fn reads_classes_files_and_pixels_in_order() -> crate::TestResult {
        let t = make_folder();
        let cache = tempfile::tempdir()?;
        let r = ImageFolder::new(t.path())
            .cache_dir(cache.path())
            .load_report()?;
        let ds = &r.dataset;
        assert_eq!(ds.classes, vec!["a_cls", "b_cls"]);
        assert_eq!(ds.labels, vec![0, 0, 1, 1]);
        assert_eq!(ds.shape, [3, 2, 4]);
        // "gg (40).png": R = 10x, G = 100y, B = 7, CHW.
        assert_eq!(
            ds.image(0),
            &[
                0, 10, 20, 30, 0, 10, 20, 30, 0, 0, 0, 0, 100, 100, 100, 100, 7, 7, 7, 7, 7, 7, 7,
                7
            ]
        );
        assert_eq!(ds.image(1)[..8], [1; 8]); // sub/z.png after the files of a_cls
        assert_eq!(ds.image(2)[..8], [200; 8]); // "IMG[1].BMP" sorts before "gray.png"
        assert_eq!(ds.image(3)[8..12], [0, 50, 100, 150]); // grayscale source -> RGB replicate
        assert!(!r.from_cache);
        let again = ImageFolder::new(t.path())
            .cache_dir(cache.path())
            .load_report()?;
        assert!(again.from_cache);
        assert_eq!(&again.dataset, ds);
        Ok(())
    }

    #[test]
    fn grayscale_resize_and_pil_luma() -> crate::TestResult {
        let t = make_folder();
        let ds = ImageFolder::new(t.path())
            .grayscale(true)
            .resize(2, 4)
            .cache(false)
            .load()?;
        assert_eq!(ds.shape, [1, 2, 4]);
        // (19595*200 + 38470*100 + 7471*50 + 32768) >> 16 = 124
        assert_eq!(ds.image(2), &[124; 8]);
        let small = ImageFolder::new(t.path())
            .resize(1, 2)
            .cache(false)
            .load()?;
        assert_eq!(small.shape, [3, 1, 2]);
        assert_eq!(small.image(1), &[1, 1, 2, 2, 3, 3]);
        Ok(())
    }

    #[test]
    fn errors_name_the_folder_or_file() -> crate::TestResult {
        let t = make_folder();
        std::fs::create_dir(t.path().join("c_empty"))?;
        let e = ImageFolder::new(t.path())
            .cache(false)
            .load()
            .unwrap_err()
            .to_string();
        assert!(e.contains("c_empty") && e.contains("holds no image"), "{e}");
        std::fs::write(t.path().join("c_empty").join("bad.jpg"), b"not a jpeg")?;
        let e = ImageFolder::new(t.path())
            .cache(false)
            .load()
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.jpg") && e.contains("skip_bad"), "{e}");
        let r = ImageFolder::new(t.path())
            .skip_bad(true)
            .cache(false)
            .load_report()?;
        assert_eq!(r.skipped.len(), 1);
        assert!(r.skipped[0].path.ends_with("c_empty/bad.jpg"));
        assert_eq!(r.dataset.len(), 4);
        // Different sizes without resize.
        std::fs::remove_dir_all(t.path().join("c_empty"))?;
        save_rgb(&t.path().join("b_cls").join("zz.png"), 3, 3, |_, _| {
            [0, 0, 0]
        });
        let e = ImageFolder::new(t.path())
            .cache(false)
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("zz.png") && e.contains("3×3") && e.contains(".resize"),
            "{e}"
        );
        let e = ImageFolder::new(t.path().join("nope"))
            .load()
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope") && e.contains("not found"), "{e}");
        Ok(())
    }

    #[test]
    fn invalid_cache_is_rebuilt_and_changes_invalidate() -> crate::TestResult {
        let t = make_folder();
        let cache = tempfile::tempdir()?;
        let f = ImageFolder::new(t.path()).cache_dir(cache.path());
        let first = f.load_report()?;
        let p = first
            .cache_path
            .clone()
            .ok_or("None from first.cache_path.clone()")?;
        std::fs::write(&p, b"\x10\0\0\0\0\0\0\0{\"garbage\":1}  ")?;
        let r = f.load_report()?;
        assert!(!r.from_cache);
        assert_eq!(r.dataset, first.dataset);
        assert!(f.load_report()?.from_cache);
        // A new file changes the key.
        save_rgb(&t.path().join("b_cls").join("new.png"), 4, 2, |_, _| {
            [9, 9, 9]
        });
        let r = f.load_report()?;
        assert!(!r.from_cache);
        assert_eq!(r.dataset.len(), 5);
        assert_ne!(r.cache_path.ok_or("None from r.cache_path")?, p);
        Ok(())
    }

    #[test]
    fn an_old_format_cache_is_rebuilt_as_safetensors_and_removed() -> Result<()> {
        let t = make_folder();
        let cache = tempfile::tempdir().map_err(|e| Error::io(Path::new("tempdir"), e))?;
        let f = ImageFolder::new(t.path()).cache_dir(cache.path());
        let first = f.load_report()?;
        let p = first
            .cache_path
            .clone()
            .ok_or_else(|| Error::config("cache_path", "missing with the cache on"))?;
        assert_eq!(p.extension().and_then(|e| e.to_str()), Some("safetensors"));
        // The file is a real safetensors file holding the labels and pixels.
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::format(&p, e.to_string()))?;
        let pixels = st
            .tensor("pixels")
            .map_err(|e| Error::format(&p, e.to_string()))?;
        assert_eq!(pixels.data(), first.dataset.pixels.as_slice());
        // An old NNLABIF1 cache of the same folder: rebuilt, then removed.
        let legacy = p.with_extension("bin");
        std::fs::write(&legacy, b"NNLABIF1\x02\0\0\0\0\0\0\0{}")
            .map_err(|e| Error::io(&legacy, e))?;
        std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        let r = f.load_report()?;
        assert!(!r.from_cache && p.is_file() && !legacy.exists());
        assert_eq!(r.dataset, first.dataset);
        assert!(f.load_report()?.from_cache);
        Ok(())
    }

    /// A PNG whose header says `w × h`, with one tiny (wrong-sized) IDAT:
    /// what a decompression bomb's header looks like, in 60 bytes.
    fn png_header_only(path: &Path, w: u32, h: u32) {
        let chunk = |ty: &[u8], data: &[u8]| {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(ty);
            c.extend_from_slice(data);
            let mut crc = flate2::Crc::new();
            crc.update(ty);
            crc.update(data);
            c.extend_from_slice(&crc.sum().to_be_bytes());
            c
        };
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
        let mut f = b"\x89PNG\r\n\x1a\n".to_vec();
        f.extend(chunk(b"IHDR", &ihdr));
        f.extend(chunk(
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        ));
        f.extend(chunk(b"IEND", &[]));
        std::fs::write(path, f).unwrap();
    }

    /// Issue 17: a 389 KB PNG of 20000² pixels loaded with 1.6 GB resident;
    /// now the header is read first and the image refused.
    #[test]
    fn images_over_the_pixel_limit_are_refused_from_the_header() -> crate::TestResult {
        let t = make_folder();
        png_header_only(&t.path().join("b_cls").join("bomb.png"), 20000, 20000);
        let e = ImageFolder::new(t.path())
            .cache(false)
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bomb.png")
                && e.contains("20000×20000 = 400000000 pixels")
                && e.contains(&MAX_PIXELS.to_string()),
            "{e}"
        );
        let r = ImageFolder::new(t.path())
            .cache(false)
            .skip_bad(true)
            .load_report()?;
        assert_eq!(r.skipped.len(), 1);
        assert!(
            r.skipped[0].reason.contains("max_pixels"),
            "{:?}",
            r.skipped
        );
        // a real image over a lower limit
        std::fs::remove_file(t.path().join("b_cls").join("bomb.png"))?;
        let e = ImageFolder::new(t.path())
            .cache(false)
            .max_pixels(7)
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("4×2 = 8 pixels, more than the limit of 7"),
            "{e}"
        );
        assert_eq!(
            ImageFolder::new(t.path())
                .cache(false)
                .max_pixels(8)
                .load()?
                .len(),
            4
        );
        Ok(())
    }

    /// Issue 17: split detection: plain class folders (even with nested
    /// folders) are not splits; Training/Testing of class folders are.
    #[test]
    fn split_folders_are_told_from_class_folders() -> crate::TestResult {
        let t = make_folder(); // a_cls holds images and sub/
        assert!(!ImageFolder::new(t.path()).has_split_folders()?);
        let s = tempfile::tempdir()?;
        for split in ["Training", "Testing"] {
            let d = s.path().join(split).join("k");
            std::fs::create_dir_all(&d)?;
            save_rgb(&d.join("1.png"), 2, 2, |_, _| [5, 5, 5]);
        }
        assert!(ImageFolder::new(s.path()).has_split_folders()?);
        let e = check_same_classes(
            Path::new("/d/Training"),
            &["a".into(), "b".into()],
            Path::new("/d/Testing"),
            &["a".into(), "c".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("/d/Testing: class 1 is `c` here but `b` in /d/Training"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn load_splits_finds_split_folders() -> crate::TestResult {
        let t = tempfile::tempdir()?;
        for split in ["Training", "Testing"] {
            let d = t.path().join(split).join("k");
            std::fs::create_dir_all(&d)?;
            save_rgb(&d.join("1.png"), 2, 2, |_, _| [5, 5, 5]);
        }
        let s = ImageFolder::new(t.path()).cache(false).load_splits()?;
        let names: Vec<_> = s.iter().map(|(n, d)| (n.as_str(), d.len())).collect();
        assert_eq!(names, vec![("Testing", 1), ("Training", 1)]);
        Ok(())
    }
}
