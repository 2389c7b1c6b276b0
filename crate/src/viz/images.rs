//! Images as one mosaic: samples of a [`Dataset`], a normalized [`Batch`]
//! turned back into pixels, the gallery of every misclassified sample (hw4),
//! and the class counts of the splits.
//!
//! The images are tiled into ONE RGB picture, sent as a PNG data URI in a
//! single plotly `image` trace, with the captions as annotations: a
//! 100-image gallery stays a few tens of kilobytes. Each tile has a caption
//! band of `b` pixels above it and a pad of `g` pixels around it, so the
//! mosaic is `cols·(w + 2g)` × `rows·(b + h + 2g)` pixels; the axes keep one
//! screen pixel ratio (`scaleanchor`), so the aspect ratio of the images is
//! kept. A wrong prediction gets a thin red outline (Okabe–Ito vermillion, a
//! layout shape) and its caption reads `true → predicted` in red.
//!
//! Pixels: a dataset byte `p` becomes `round(255·p / max_value)`; a batch
//! value `x` becomes `255·clamp(x·std + mean, 0, 1)` (undoing `Normalize`).
//!
//! ```
//! use nnlab::data::Dataset;
//! let ds = Dataset::new("toy", "memory", vec!["a".into(), "b".into()], [1, 2, 2],
//!                       vec![0, 255, 0, 255, 9, 9, 9, 9], vec![0, 1], 255).unwrap();
//! let fig = nnlab::viz::images::image_grid(&ds, 0..2, 2, Some(&[0, 0])).unwrap();
//! let v: serde_json::Value = serde_json::from_str(&fig.to_json()).unwrap();
//! assert_eq!(v["data"][0]["type"], "image");
//! assert!(v["data"][0]["source"].as_str().unwrap().starts_with("data:image/png;base64,"));
//! assert_eq!(v["layout"]["annotations"][1]["text"], "b → a");
//! ```

use super::style::{self, bare_axis, base_layout, color};
use super::Figure;
use crate::data::loader::Batch;
use crate::data::Dataset;
use crate::train::interpret::Interpretation;
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use candle_core::DType;
use plotly::color::Rgb;
use plotly::common::{Anchor, Font, HoverInfo, Marker, TextPosition};
use plotly::layout::{Annotation, BarMode, Margin, Shape, ShapeLine, ShapeType};
use plotly::traces::image::ZSmooth;
use plotly::{Bar, Image, Plot};

/// One image of the mosaic: `h·w·3` RGB bytes, its caption and whether its
/// prediction is wrong.
struct Tile {
    rgb: Vec<u8>,
    caption: String,
    wrong: bool,
}

/// Width of the whole mosaic on screen at most, in pixels.
const MAX_WIDTH: f64 = 980.0;

/// The geometry of a mosaic, in image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Geometry {
    rows: usize,
    cols: usize,
    h: usize,
    w: usize,
    pad: usize,
    band: usize,
    /// Screen pixels per image pixel.
    scale: f64,
}

impl Geometry {
    fn new(n: usize, cols: usize, h: usize, w: usize) -> Geometry {
        let cols = cols.min(n).max(1);
        let rows = n.div_ceil(cols);
        let side = h.max(w) as f64;
        let mut tile = side.clamp(96.0, 160.0);
        if tile * cols as f64 > MAX_WIDTH {
            tile = MAX_WIDTH / cols as f64;
        }
        let scale = tile / side;
        let pad = ((3.0 / scale).ceil() as usize).max(1);
        let band = ((18.0 / scale).ceil() as usize).max(1);
        Geometry {
            rows,
            cols,
            h,
            w,
            pad,
            band,
            scale,
        }
    }
    fn cell_w(&self) -> usize {
        self.w + 2 * self.pad
    }
    fn cell_h(&self) -> usize {
        self.band + self.h + 2 * self.pad
    }
    fn width(&self) -> usize {
        self.cols * self.cell_w()
    }
    fn height(&self) -> usize {
        self.rows * self.cell_h()
    }
}

/// Paints the tiles into one RGB picture (white background).
fn paint(tiles: &[Tile], g: &Geometry) -> Vec<u8> {
    let (mw, mh) = (g.width(), g.height());
    let mut out = vec![255u8; mw * mh * 3];
    for (i, t) in tiles.iter().enumerate() {
        let (r, c) = (i / g.cols, i % g.cols);
        let (x0, y0) = (c * g.cell_w(), r * g.cell_h() + g.band);
        for y in 0..g.h {
            let dst = ((y0 + g.pad + y) * mw + x0 + g.pad) * 3;
            out[dst..dst + g.w * 3].copy_from_slice(&t.rgb[y * g.w * 3..(y + 1) * g.w * 3]);
        }
    }
    out
}

/// `t` (`h × w`) resized to `h2 × w2` (triangle filter).
fn shrink(t: &Tile, h: usize, w: usize, h2: usize, w2: usize) -> Tile {
    let rgb = match image::RgbImage::from_raw(w as u32, h as u32, t.rgb.clone()) {
        Some(img) => image::imageops::resize(
            &img,
            w2 as u32,
            h2 as u32,
            image::imageops::FilterType::Triangle,
        )
        .into_raw(),
        None => vec![255; h2 * w2 * 3],
    };
    Tile {
        rgb,
        caption: t.caption.clone(),
        wrong: t.wrong,
    }
}

/// `data:image/png;base64,…` of an RGB picture.
fn png_data_uri(rgb: &[u8], width: usize, height: usize) -> Result<String> {
    use image::ImageEncoder;
    let mut buf = Vec::new();
    image::codecs::png::PngEncoder::new(&mut buf)
        .write_image(
            rgb,
            width as u32,
            height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| {
            Error::config(
                "image mosaic",
                format!("PNG encoding of {width}×{height} failed: {e}"),
            )
        })?;
    Ok(format!("data:image/png;base64,{}", STANDARD.encode(&buf)))
}

/// The mosaic figure of `tiles` (each `h × w`), `cols` a row; `outline`
/// draws a red frame around each wrong tile.
fn mosaic(
    tiles: &[Tile],
    h: usize,
    w: usize,
    cols: usize,
    outline: bool,
    title: &str,
    description: String,
) -> Result<Figure> {
    let g = Geometry::new(tiles.len(), cols, h, w);
    // Shown smaller than their pixels (many large images): shrink the tiles
    // to their screen size first, so the PNG holds no pixel nobody sees.
    let shrunk;
    let (tiles, g) = if g.scale < 1.0 {
        let (h2, w2) = (
            ((h as f64 * g.scale).round() as usize).max(1),
            ((w as f64 * g.scale).round() as usize).max(1),
        );
        shrunk = tiles
            .iter()
            .map(|t| shrink(t, h, w, h2, w2))
            .collect::<Vec<_>>();
        (&shrunk[..], Geometry::new(tiles.len(), cols, h2, w2))
    } else {
        (tiles, g)
    };
    let (mw, mh) = (g.width(), g.height());
    let uri = png_data_uri(&paint(tiles, &g), mw, mh)?;
    let trace = Image::new(Vec::<Vec<Rgb>>::new())
        .source(uri)
        .z_smooth(ZSmooth::False)
        .hover_info(HoverInfo::Skip)
        .name("изображения");
    let font = 11;
    let annotations: Vec<Annotation> = tiles
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (r, c) = (i / g.cols, i % g.cols);
            Annotation::new()
                .text(t.caption.clone())
                .x(c as f64 * g.cell_w() as f64 + g.cell_w() as f64 / 2.0 - 0.5)
                .y(r as f64 * g.cell_h() as f64 + g.band as f64 - 0.5)
                .x_ref("x")
                .y_ref("y")
                .x_anchor(Anchor::Center)
                .y_anchor(Anchor::Bottom)
                .show_arrow(false)
                .font(Font::new().size(font).color(if t.wrong {
                    style::WRONG
                } else {
                    style::TEXT
                }))
        })
        .collect();
    // The outline runs through the middle of the pad around the image.
    let half = g.pad as f64 / 2.0;
    let shapes: Vec<Shape> = tiles
        .iter()
        .enumerate()
        .filter(|(_, t)| outline && t.wrong)
        .map(|(i, _)| {
            let (r, c) = (i / g.cols, i % g.cols);
            let x0 = (c * g.cell_w()) as f64 - 0.5 + half;
            let y0 = (r * g.cell_h() + g.band) as f64 - 0.5 + half;
            Shape::new()
                .shape_type(ShapeType::Rect)
                .x_ref("x")
                .y_ref("y")
                .x0(x0)
                .x1(x0 + (g.w + g.pad) as f64)
                .y0(y0)
                .y1(y0 + (g.h + g.pad) as f64)
                .line(ShapeLine::new().color(style::WRONG).width(2.0))
        })
        .collect();
    let x = bare_axis()
        .range(vec![-0.5, mw as f64 - 0.5])
        .fixed_range(true);
    let y = bare_axis()
        .range(vec![mh as f64 - 0.5, -0.5])
        .fixed_range(true)
        .scale_anchor("x");
    let (top, side) = (50usize, 10usize);
    let layout = base_layout(title)
        .x_axis(x)
        .y_axis(y)
        .annotations(annotations)
        .shapes(shapes)
        .margin(Margin::new().left(side).right(side).top(top).bottom(side))
        .width((mw as f64 * g.scale).round() as usize + 2 * side)
        .height((mh as f64 * g.scale).round() as usize + top + side);
    let mut plot = Plot::new();
    plot.add_trace(trace);
    plot.set_layout(layout);
    Ok(Figure::new(plot, description))
}

/// A figure that says there is nothing to show.
fn empty_gallery(title: &str, message: &str) -> Figure {
    let mut plot = Plot::new();
    let note = Annotation::new()
        .text(message)
        .x_ref("paper")
        .y_ref("paper")
        .x(0.5)
        .y(0.5)
        .show_arrow(false)
        .font(Font::new().size(14).color(style::TEXT));
    plot.set_layout(
        base_layout(title)
            .x_axis(bare_axis())
            .y_axis(bare_axis())
            .annotations(vec![note])
            .height(200),
    );
    Figure::new(plot, format!("{title}: {message}"))
}

/// The RGB bytes (`h·w·3`) of CHW `values` mapped to 0..=255 by `to_byte`.
fn to_rgb(chw: &[f32], c: usize, h: usize, w: usize) -> Vec<u8> {
    let mut out = vec![0u8; h * w * 3];
    for i in 0..h * w {
        for k in 0..3 {
            let ch = if c == 1 { 0 } else { k };
            out[i * 3 + k] = (chw[ch * h * w + i] * 255.0).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

fn check_channels(c: usize, what: &str) -> Result<()> {
    if c == 1 || c == 3 {
        Ok(())
    } else {
        Err(Error::shape(
            what,
            format!("{c} channels, expected 1 (grayscale) or 3 (RGB)"),
        ))
    }
}

fn caption(classes: &[String], truth: u32, pred: Option<u32>) -> (String, bool) {
    let name = |k: u32| {
        classes
            .get(k as usize)
            .cloned()
            .unwrap_or_else(|| k.to_string())
    };
    match pred {
        None => (name(truth), false),
        Some(p) if p == truth => (format!("{} ✓", name(truth)), false),
        Some(p) => (format!("{} → {}", name(truth), name(p)), true),
    }
}

fn check_predictions(predictions: Option<&[u32]>, n: usize, classes: usize) -> Result<()> {
    if let Some(p) = predictions {
        if p.len() != n {
            return Err(Error::config(
                "predictions",
                format!(
                    "{} predictions for {n} images, expected one per image",
                    p.len()
                ),
            ));
        }
        if let Some((i, &k)) = p.iter().enumerate().find(|(_, &k)| k as usize >= classes) {
            return Err(Error::config(
                format!("predictions[{i}]"),
                format!("class {k}, expected 0..{classes}"),
            ));
        }
    }
    Ok(())
}

/// Samples `indices` of `ds` — a range (`0..32`), a list (`[3, 14, 15]`, a
/// `Vec<usize>`) or any iterator of indices (`(0..16).map(|i| i * step)`) —
/// `cols` a row, captioned with their class; `predictions[i]` (the predicted
/// class of the i-th sample shown) adds `true → predicted` in red with a red
/// outline where it is wrong, `true ✓` where it is right. Grayscale and RGB
/// datasets.
pub fn image_grid(
    ds: &Dataset,
    indices: impl IntoIterator<Item = usize>,
    cols: usize,
    predictions: Option<&[u32]>,
) -> Result<Figure> {
    let indices: Vec<usize> = indices.into_iter().collect();
    let indices = indices.as_slice();
    let (tiles, wrong) = dataset_tiles(ds, indices, cols, predictions)?;
    let [c, h, w] = ds.shape;
    let mut desc = format!("Изображения `{}`: {} ({c}×{h}×{w})", ds.name, indices.len());
    if predictions.is_some() {
        desc += &format!(", ошибок {wrong}");
    }
    mosaic(&tiles, h, w, cols, true, &ds.name, desc)
}

/// The tiles of samples `indices` and how many of them are mispredicted.
fn dataset_tiles(
    ds: &Dataset,
    indices: &[usize],
    cols: usize,
    predictions: Option<&[u32]>,
) -> Result<(Vec<Tile>, usize)> {
    if indices.is_empty() {
        return Err(Error::config(
            "indices",
            "no images to show: expected at least one index",
        ));
    }
    if cols == 0 {
        return Err(Error::config("cols", "0 columns, expected at least 1"));
    }
    let [c, h, w] = ds.shape;
    check_channels(c, &ds.name)?;
    if let Some(&i) = indices.iter().find(|&&i| i >= ds.len()) {
        return Err(Error::config(
            "indices",
            format!(
                "index {i} is past the end of `{}` ({} samples)",
                ds.name,
                ds.len()
            ),
        ));
    }
    check_predictions(predictions, indices.len(), ds.num_classes())?;
    let scale = 1.0 / ds.max_value.max(1) as f32;
    let mut wrong = 0;
    let tiles: Vec<Tile> = indices
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let chw: Vec<f32> = ds.image(i).iter().map(|&p| p as f32 * scale).collect();
            let (caption, is_wrong) = caption(&ds.classes, ds.labels[i], predictions.map(|p| p[k]));
            wrong += is_wrong as usize;
            Tile {
                rgb: to_rgb(&chw, c, h, w),
                caption,
                wrong: is_wrong,
            }
        })
        .collect();
    Ok((tiles, wrong))
}

/// The images of a batch (`x` normalized `[B, C, H, W]`, `y` labels), turned
/// back into pixels with the `mean`/`std` of its `Normalize` (one value, or one
/// per channel; `&[0.0]`/`&[1.0]` for none), captioned with `classes`.
pub fn batch_grid(
    batch: &Batch,
    classes: &[String],
    mean: &[f32],
    std: &[f32],
    predictions: Option<&[u32]>,
) -> Result<Figure> {
    let dims = batch.x.dims().to_vec();
    let [b, c, h, w] = dims[..] else {
        return Err(Error::shape(
            "batch_grid",
            format!("batch x has shape {dims:?}, expected [B, C, H, W]"),
        ));
    };
    if b == 0 {
        return Err(Error::config(
            "batch",
            "an empty batch, expected at least one image",
        ));
    }
    check_channels(c, "batch_grid")?;
    for (name, v) in [("mean", mean), ("std", std)] {
        if v.len() != 1 && v.len() != c {
            return Err(Error::config(
                name,
                format!("{} values for {c} channels, expected 1 or {c}", v.len()),
            ));
        }
    }
    if let Some(s) = std.iter().find(|s| **s == 0.0 || !s.is_finite()) {
        return Err(Error::config(
            "std",
            format!("{s}, expected a positive number"),
        ));
    }
    let x = batch
        .x
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let y = batch
        .y
        .to_dtype(DType::U32)?
        .flatten_all()?
        .to_vec1::<u32>()?;
    if y.len() != b {
        return Err(Error::shape(
            "batch_grid",
            format!("{} labels for {b} images", y.len()),
        ));
    }
    if let Some((i, &k)) = y
        .iter()
        .enumerate()
        .find(|(_, &k)| k as usize >= classes.len())
    {
        return Err(Error::config(
            format!("batch.y[{i}]"),
            format!(
                "class {k}, expected 0..{} (the classes given)",
                classes.len()
            ),
        ));
    }
    check_predictions(predictions, b, classes.len())?;
    let n = c * h * w;
    let at = |v: &[f32], ch: usize| if v.len() == 1 { v[0] } else { v[ch] };
    let mut wrong = 0;
    let tiles: Vec<Tile> = (0..b)
        .map(|i| {
            let chw: Vec<f32> = x[i * n..(i + 1) * n]
                .iter()
                .enumerate()
                .map(|(j, &v)| {
                    let ch = j / (h * w);
                    (v * at(std, ch) + at(mean, ch)).clamp(0.0, 1.0)
                })
                .collect();
            let (caption, is_wrong) = caption(classes, y[i], predictions.map(|p| p[i]));
            wrong += is_wrong as usize;
            Tile {
                rgb: to_rgb(&chw, c, h, w),
                caption,
                wrong: is_wrong,
            }
        })
        .collect();
    let cols = ((b as f64).sqrt().ceil() as usize).clamp(1, 8);
    let mut desc = format!("Батч: изображений {b} ({c}×{h}×{w})");
    if predictions.is_some() {
        desc += &format!(", ошибок {wrong}");
    }
    mosaic(&tiles, h, w, cols, true, "Батч", desc)
}

/// Every misclassified sample of `ds` (hw4's gallery), 10 a row, captioned
/// `true → predicted`; `interp` must come from the same samples in the same
/// order (its targets are checked against the labels).
pub fn misclassified(ds: &Dataset, interp: &Interpretation) -> Result<Figure> {
    if interp.targets.len() != ds.len() {
        return Err(Error::config(
            "interpretation",
            format!(
                "{} predictions for `{}` with {} samples, expected one per sample in order",
                interp.targets.len(),
                ds.name,
                ds.len()
            ),
        ));
    }
    if let Some(i) = (0..ds.len()).find(|&i| interp.targets[i] != ds.labels[i]) {
        return Err(Error::config(
            "interpretation",
            format!("target of sample {i} is {}, but `{}` labels it {}: not the same samples in the same order", interp.targets[i], ds.name, ds.labels[i]),
        ));
    }
    let idx = interp.misclassified();
    let title = format!("Ошибки классификации: {} из {}", idx.len(), ds.len());
    if idx.is_empty() {
        return Ok(empty_gallery(&title, "все объекты классифицированы верно"));
    }
    let preds: Vec<u32> = idx.iter().map(|&i| interp.predictions[i]).collect();
    let (tiles, _) = dataset_tiles(ds, &idx, 10, Some(&preds))?;
    let desc = format!(
        "Ошибки классификации `{}`: {} из {} объектов",
        ds.name,
        idx.len(),
        ds.len()
    );
    // Every tile is wrong here: red captions, no outlines.
    mosaic(&tiles, ds.shape[1], ds.shape[2], 10, false, &title, desc)
}

/// Samples per class of each split (`&[("train", &train), ("test", &test)]`),
/// grouped bars; every split must have the same classes.
pub fn class_distribution(splits: &[(&str, &Dataset)]) -> Result<Figure> {
    let Some((first_name, first)) = splits.first() else {
        return Err(Error::config("splits", "no datasets to count"));
    };
    let mut plot = Plot::new();
    let mut totals = Vec::new();
    for (i, (name, ds)) in splits.iter().enumerate() {
        if ds.classes != first.classes {
            return Err(Error::config(
                format!("split `{name}`"),
                format!(
                    "classes {:?} differ from those of `{first_name}` {:?}",
                    ds.classes, first.classes
                ),
            ));
        }
        let counts: Vec<f64> = ds.class_counts().into_iter().map(|c| c as f64).collect();
        totals.push(format!("{name} {}", ds.len()));
        plot.add_trace(
            Bar::new(ds.classes.clone(), counts.clone())
                .name(*name)
                .marker(Marker::new().color(color(i)))
                .text_array(counts.iter().map(|c| c.to_string()).collect())
                .text_position(TextPosition::Outside),
        );
    }
    plot.set_layout(
        base_layout("Объектов по классам")
            .bar_mode(BarMode::Group)
            .x_axis(
                style::axis("класс")
                    .type_(plotly::layout::AxisType::Category)
                    .tick_angle(if first.classes.len() > 10 { -45.0 } else { 0.0 }),
            )
            .y_axis(style::axis("объектов"))
            .height(420),
    );
    Ok(Figure::new(
        plot,
        format!(
            "Объектов по классам (классов {}): {}",
            first.classes.len(),
            totals.join(", ")
        ),
    ))
}

impl Dataset {
    /// [`image_grid`] of the first `n` samples, `cols` a row.
    pub fn show_images(&self, n: usize, cols: usize) -> Result<Figure> {
        image_grid(self, 0..n.min(self.len()), cols, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_and_paint() {
        // 8×8 digits: 96 screen pixels a tile → 12 screen px per image px.
        let g = Geometry::new(5, 3, 8, 8);
        assert_eq!((g.rows, g.cols, g.pad, g.band), (2, 3, 1, 2));
        assert_eq!((g.width(), g.height()), (30, 24));
        let tile = |v: u8, wrong| Tile {
            rgb: vec![v; 8 * 8 * 3],
            caption: String::new(),
            wrong,
        };
        let tiles = vec![
            tile(0, false),
            tile(100, true),
            tile(200, false),
            tile(50, false),
            tile(60, false),
        ];
        let img = paint(&tiles, &g);
        let px = |x: usize, y: usize| &img[(y * 30 + x) * 3..(y * 30 + x) * 3 + 3];
        assert_eq!(px(1, 3), &[0, 0, 0]); // first tile's top-left pixel (band 2 + pad 1)
        assert_eq!(px(0, 3), &[255, 255, 255]); // its pad is white
        assert_eq!(px(10, 3), &[255, 255, 255]); // pads stay white (outlines are shapes)
        assert_eq!(px(11, 3), &[100, 100, 100]);
        assert_eq!(px(21, 12 + 3), &[255, 255, 255]); // sixth cell is empty
                                                      // Many large images are shrunk to fit the width.
        let g = Geometry::new(100, 10, 128, 128);
        assert!(
            g.width() as f64 * g.scale <= MAX_WIDTH + 1e-9 + 2.0 * 10.0 * g.pad as f64 * g.scale
        );
    }
}
