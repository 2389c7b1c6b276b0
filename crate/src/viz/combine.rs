//! Several plotly figures, notes and text tables combined into ONE plotly
//! figure, stacked top to bottom: how a [`crate::viz::Stack`] holding figures
//! reaches JupyterLab, which draws one `application/vnd.plotly.v1+json` per
//! output and runs no script.
//!
//! Each part keeps its own pixel height and margins: the combined figure is
//! `title band + Σ heightᵢ` pixels tall and part `i` is drawn where it would
//! stand in a column of separate figures. Working on the JSON, a part's
//!
//! - axes are renumbered after the parts above it (`x`, `x2` → `x5`, `x6`),
//!   every reference to them follows (traces, `anchor`, `overlaying`,
//!   `scaleanchor`, `matches`, annotations, shapes), and their domains are
//!   mapped into the part's band;
//! - paper coordinates (annotations, shapes, legend, controls) are mapped the
//!   same way; its title becomes an annotation at the top of its band;
//! - traces get a legend of their own (`legend2`, …) beside the band, and
//!   legend groups a part prefix, so clicking one part's legend never hides
//!   another part's traces;
//! - animation frames have their trace indices shifted; frames of two parts
//!   with the same name are merged (one slider drives both).
//!
//! Notes and tables become left-aligned text annotations (tables as their
//! monospace text rendering), in bands sized to their lines.
//!
//! ```text
//! ┌ stack title ─────────────────┐
//! │ part 1 title                 │  band 1: part 1's height (px)
//! │ [x, y] [x2, y2]     legend   │
//! │ part 2 title                 │  band 2
//! │ [x3, y3]            legend2  │
//! │ note text …                  │  band 3: lines × 17 px
//! └──────────────────────────────┘
//! ```

use serde_json::{json, Map, Value};

/// One part of a combined figure.
#[derive(Clone, Debug)]
pub enum Part {
    /// A plotly figure's JSON (`{"data", "layout", "frames"?}`).
    Figure(Value),
    /// Text in the figure's font (line breaks kept).
    Note(String),
    /// Text in a monospace font (a table's text rendering), with a caption.
    Preformatted { caption: String, text: String },
}

/// Pixel height of the band above the parts holding the stack's title.
const TITLE_BAND: f64 = 50.0;
/// Pixel height of one line of a note.
const LINE: f64 = 17.0;
/// plotly.js's defaults where a figure's layout says nothing.
const DEFAULT_HEIGHT: f64 = 450.0;
const DEFAULT_MARGIN: [f64; 4] = [80.0, 80.0, 100.0, 80.0]; // l, r, t, b

/// A part's box in pixels: height, margins, optional fixed width.
struct Geometry {
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    width: Option<f64>,
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn geometry(part: &Part) -> Geometry {
    match part {
        Part::Figure(fig) => {
            let layout = &fig["layout"];
            let margin = &layout["margin"];
            Geometry {
                height: num(layout, "height").unwrap_or(DEFAULT_HEIGHT),
                left: num(margin, "l").unwrap_or(DEFAULT_MARGIN[0]),
                right: num(margin, "r").unwrap_or(DEFAULT_MARGIN[1]),
                top: num(margin, "t").unwrap_or(DEFAULT_MARGIN[2]),
                bottom: num(margin, "b").unwrap_or(DEFAULT_MARGIN[3]),
                width: num(layout, "width"),
            }
        }
        Part::Note(text) => text_geometry(text.lines().count().max(1)),
        Part::Preformatted { text, .. } => text_geometry(text.lines().count() + 1),
    }
}

fn text_geometry(lines: usize) -> Geometry {
    Geometry {
        height: lines as f64 * LINE + 16.0,
        left: 0.0,
        right: 0.0,
        top: 8.0,
        bottom: 8.0,
        width: None,
    }
}

/// Maps a part's paper coordinates into its band of the combined figure.
#[derive(Clone, Copy, Debug)]
struct Band {
    y0: f64,
    y1: f64,
    x_scale: f64,
}

impl Band {
    fn y(&self, y: f64) -> f64 {
        self.y0 + y * (self.y1 - self.y0)
    }
    fn x(&self, x: f64) -> f64 {
        x * self.x_scale
    }
}

/// Renames a part's axis references (`x`, `x2`, `y3 domain`) by `offset`;
/// `paper`, `free`, `pixel` and anything else stay.
fn rename_ref(r: &str, offset: usize) -> String {
    let (id, rest) = match r.split_once(' ') {
        Some((id, rest)) => (id, format!(" {rest}")),
        None => (r, String::new()),
    };
    let mut chars = id.chars();
    let letter = chars.next();
    let digits = chars.as_str();
    match letter {
        Some(l @ ('x' | 'y'))
            if digits.is_empty() || digits.chars().all(|c| c.is_ascii_digit()) =>
        {
            let n: usize = if digits.is_empty() {
                1
            } else {
                digits.parse().unwrap_or(1)
            };
            let m = n + offset;
            if m == 1 {
                format!("{l}{rest}")
            } else {
                format!("{l}{m}{rest}")
            }
        }
        _ => r.to_string(),
    }
}

/// `xaxis`, `xaxis7` → (`x`, 7); other keys → None.
fn axis_key(key: &str) -> Option<(char, usize)> {
    let rest = key
        .strip_prefix("xaxis")
        .map(|r| ('x', r))
        .or_else(|| key.strip_prefix("yaxis").map(|r| ('y', r)))?;
    let (letter, digits) = rest;
    if digits.is_empty() {
        Some((letter, 1))
    } else if digits.chars().all(|c| c.is_ascii_digit()) {
        digits.parse().ok().map(|n| (letter, n))
    } else {
        None
    }
}

fn axis_name(letter: char, n: usize) -> String {
    if n == 1 {
        format!("{letter}axis")
    } else {
        format!("{letter}axis{n}")
    }
}

/// Trace types drawn on cartesian axes (the others have a `domain`).
fn is_cartesian(trace: &Value) -> bool {
    trace.get("domain").is_none()
        && !matches!(
            trace.get("type").and_then(Value::as_str),
            Some(
                "pie"
                    | "table"
                    | "sunburst"
                    | "treemap"
                    | "icicle"
                    | "funnelarea"
                    | "indicator"
                    | "sankey"
                    | "parcoords"
                    | "parcats"
            )
        )
}

/// The highest axis number a figure uses (1 when it names none).
fn axis_count(fig: &Value) -> usize {
    let mut most = 1;
    if let Some(layout) = fig["layout"].as_object() {
        for key in layout.keys() {
            if let Some((_, n)) = axis_key(key) {
                most = most.max(n);
            }
        }
    }
    for trace in fig["data"].as_array().into_iter().flatten() {
        for key in ["xaxis", "yaxis"] {
            if let Some(r) = trace.get(key).and_then(Value::as_str) {
                let digits = r.get(1..).unwrap_or("");
                if let Some(n) = digits
                    .parse::<usize>()
                    .ok()
                    .or(digits.is_empty().then_some(1))
                {
                    most = most.max(n);
                }
            }
        }
    }
    most
}

/// Maps a `[a, b]` paper interval.
fn map_pair(v: &mut Value, f: impl Fn(f64) -> f64) {
    if let Some(arr) = v.as_array_mut() {
        for x in arr.iter_mut() {
            if let Some(f64v) = x.as_f64() {
                *x = json!(f(f64v));
            }
        }
    }
}

/// Remaps a layout item positioned by `xref`/`yref` (annotation, shape):
/// paper coordinates into the band, axis references renamed.
fn remap_positioned(item: &mut Value, band: Band, offset: usize, xs: &[&str], ys: &[&str]) {
    let Some(obj) = item.as_object_mut() else {
        return;
    };
    for (axis, keys) in [('x', xs), ('y', ys)] {
        let ref_key = format!("{axis}ref");
        let r = obj
            .get(&ref_key)
            .and_then(Value::as_str)
            .unwrap_or(if axis == 'x' { "x" } else { "y" })
            .to_string();
        if r == "paper" {
            for k in keys {
                if let Some(v) = obj.get(*k).and_then(Value::as_f64) {
                    let m = if axis == 'x' { band.x(v) } else { band.y(v) };
                    obj.insert((*k).to_string(), json!(m));
                }
            }
        } else {
            obj.insert(ref_key, json!(rename_ref(&r, offset)));
        }
    }
    for k in ["axref", "ayref"] {
        if let Some(r) = obj.get(k).and_then(Value::as_str).map(str::to_string) {
            obj.insert(k.to_string(), json!(rename_ref(&r, offset)));
        }
    }
}

/// Builds the combined figure: `title` on top, then every part in order.
pub fn combine(title: Option<&str>, parts: &[Part]) -> Value {
    let geoms: Vec<Geometry> = parts.iter().map(geometry).collect();
    let band_top = if title.is_some() { TITLE_BAND } else { 0.0 };
    let total: f64 = band_top + geoms.iter().map(|g| g.height).sum::<f64>();
    let (top, bottom) = match (geoms.first(), geoms.last()) {
        (Some(f), Some(l)) => (band_top + f.top, l.bottom),
        _ => (band_top.max(40.0), 40.0),
    };
    let left = geoms.iter().map(|g| g.left).fold(0.0, f64::max);
    let right = geoms.iter().map(|g| g.right).fold(0.0, f64::max);
    let width = geoms.iter().filter_map(|g| g.width).reduce(f64::max);
    let plot_h = (total - top - bottom).max(1.0);
    let paper_y = |pixel_row: f64| (total - bottom - pixel_row) / plot_h;

    // Layout defaults (font, colors, hover) from the first figure.
    let mut layout = Map::new();
    if let Some(Part::Figure(f)) = parts.iter().find(|p| matches!(p, Part::Figure(_))) {
        if let Some(l) = f["layout"].as_object() {
            for (k, v) in l {
                let positional = axis_key(k).is_some()
                    || k.starts_with("legend")
                    || matches!(
                        k.as_str(),
                        "title"
                            | "annotations"
                            | "shapes"
                            | "images"
                            | "height"
                            | "width"
                            | "margin"
                            | "updatemenus"
                            | "sliders"
                            | "showlegend"
                    );
                if !positional {
                    layout.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if let Some(t) = title {
        layout.insert("title".into(), json!({"text": t}));
    }
    layout.insert("height".into(), json!(total.round()));
    if let Some(w) = width {
        layout.insert("width".into(), json!(w));
    }
    layout.insert(
        "margin".into(),
        json!({"l": left, "r": right, "t": top, "b": bottom}),
    );

    let mut data: Vec<Value> = Vec::new();
    let mut annotations: Vec<Value> = Vec::new();
    let mut shapes: Vec<Value> = Vec::new();
    let mut frames: Vec<Value> = Vec::new();
    let mut controls_taken = false;
    let mut axis_offset = 0usize;
    let mut legends = 0usize;
    let mut row = band_top;
    for (j, (part, g)) in parts.iter().zip(&geoms).enumerate() {
        let y1 = paper_y(row + g.top);
        let y0 = paper_y(row + g.height - g.bottom);
        let x_scale = match (width, g.width) {
            (Some(w), Some(pw)) => {
                ((pw - g.left - g.right) / (w - left - right).max(1.0)).clamp(0.0, 1.0)
            }
            _ => 1.0,
        };
        let band = Band { y0, y1, x_scale };
        match part {
            Part::Note(text) => annotations.push(text_annotation(text, band, false)),
            Part::Preformatted { caption, text } => {
                let body = format!("<b>{}</b>\n{text}", plotly_escape(caption));
                annotations.push(text_annotation(&body, band, true));
            }
            Part::Figure(fig) => {
                let trace_offset = data.len();
                let axes = axis_count(fig);
                let fl = &fig["layout"];
                // Axes, renumbered, their domains in the band; an axis the
                // traces use but the layout leaves out is created.
                for letter in ['x', 'y'] {
                    for n in 1..=axes {
                        let mut axis = fl
                            .get(axis_name(letter, n))
                            .cloned()
                            .unwrap_or_else(|| json!({}));
                        if let Some(obj) = axis.as_object_mut() {
                            for k in ["anchor", "overlaying", "scaleanchor", "matches"] {
                                if let Some(r) =
                                    obj.get(k).and_then(Value::as_str).map(str::to_string)
                                {
                                    obj.insert(k.into(), json!(rename_ref(&r, axis_offset)));
                                }
                            }
                            if !obj.contains_key("anchor") {
                                let partner = if letter == 'x' { "y" } else { "x" };
                                obj.insert(
                                    "anchor".into(),
                                    json!(rename_ref(partner, axis_offset)),
                                );
                            }
                            let mut domain = obj
                                .get("domain")
                                .cloned()
                                .unwrap_or_else(|| json!([0.0, 1.0]));
                            if letter == 'x' {
                                map_pair(&mut domain, |v| band.x(v));
                            } else {
                                map_pair(&mut domain, |v| band.y(v));
                            }
                            obj.insert("domain".into(), domain);
                            if let Some(p) = obj.get("position").and_then(Value::as_f64) {
                                let m = if letter == 'x' { band.y(p) } else { band.x(p) };
                                obj.insert("position".into(), json!(m));
                            }
                        }
                        layout.insert(axis_name(letter, n + axis_offset), axis);
                    }
                }
                // One legend per part, beside its band.
                let legend_name = if legends == 0 {
                    "legend".to_string()
                } else {
                    format!("legend{}", legends + 1)
                };
                legends += 1;
                let mut legend = fl.get("legend").cloned().unwrap_or_else(|| json!({}));
                if let Some(obj) = legend.as_object_mut() {
                    let y = obj.get("y").and_then(Value::as_f64).unwrap_or(1.0);
                    obj.insert("y".into(), json!(band.y(y)));
                    obj.entry("yanchor").or_insert(json!("top"));
                    if let Some(x) = obj.get("x").and_then(Value::as_f64) {
                        obj.insert("x".into(), json!(band.x(x)));
                    }
                }
                layout.insert(legend_name.clone(), legend);
                let traces = fig["data"].as_array().cloned().unwrap_or_default();
                let hide_legend = fl.get("showlegend").and_then(Value::as_bool) == Some(false);
                let single = traces.len() == 1 && fl.get("showlegend").is_none();
                for mut t in traces {
                    let cartesian = is_cartesian(&t);
                    if let Some(obj) = t.as_object_mut() {
                        if cartesian {
                            for (k, dflt) in [("xaxis", "x"), ("yaxis", "y")] {
                                let r = obj
                                    .get(k)
                                    .and_then(Value::as_str)
                                    .unwrap_or(dflt)
                                    .to_string();
                                obj.insert(k.into(), json!(rename_ref(&r, axis_offset)));
                            }
                        } else {
                            let mut domain =
                                obj.get("domain").cloned().unwrap_or_else(|| json!({}));
                            if let Some(d) = domain.as_object_mut() {
                                let mut dx =
                                    d.get("x").cloned().unwrap_or_else(|| json!([0.0, 1.0]));
                                let mut dy =
                                    d.get("y").cloned().unwrap_or_else(|| json!([0.0, 1.0]));
                                map_pair(&mut dx, |v| band.x(v));
                                map_pair(&mut dy, |v| band.y(v));
                                d.insert("x".into(), dx);
                                d.insert("y".into(), dy);
                            }
                            obj.insert("domain".into(), domain);
                        }
                        obj.insert("legend".into(), json!(legend_name));
                        let group = obj
                            .get("legendgroup")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        obj.insert("legendgroup".into(), json!(format!("part{j}:{group}")));
                        if hide_legend || (single && obj.get("showlegend").is_none()) {
                            obj.insert("showlegend".into(), json!(false));
                        }
                    }
                    data.push(t);
                }
                // The part's title, at the top of its band.
                if let Some(text) = fl["title"]["text"]
                    .as_str()
                    .or_else(|| fl["title"].as_str())
                {
                    annotations.push(json!({
                        "text": text, "xref": "paper", "yref": "paper",
                        "x": band.x(0.5), "y": paper_y(row + g.top * 0.45),
                        "xanchor": "center", "yanchor": "middle", "showarrow": false,
                        "font": {"size": 16}
                    }));
                }
                for a in fl["annotations"].as_array().into_iter().flatten() {
                    let mut a = a.clone();
                    remap_positioned(&mut a, band, axis_offset, &["x"], &["y"]);
                    annotations.push(a);
                }
                for s in fl["shapes"].as_array().into_iter().flatten() {
                    let mut s = s.clone();
                    remap_positioned(&mut s, band, axis_offset, &["x0", "x1"], &["y0", "y1"]);
                    shapes.push(s);
                }
                // Play/Pause and the slider of the first animated part.
                if !controls_taken
                    && (fl.get("updatemenus").is_some() || fl.get("sliders").is_some())
                {
                    controls_taken = true;
                    for key in ["updatemenus", "sliders"] {
                        if let Some(items) = fl.get(key).and_then(Value::as_array) {
                            let moved: Vec<Value> = items
                                .iter()
                                .map(|c| {
                                    let mut c = c.clone();
                                    if let Some(obj) = c.as_object_mut() {
                                        if let Some(y) = obj.get("y").and_then(Value::as_f64) {
                                            obj.insert("y".into(), json!(band.y(y)));
                                        }
                                        if let Some(x) = obj.get("x").and_then(Value::as_f64) {
                                            obj.insert("x".into(), json!(band.x(x)));
                                        }
                                    }
                                    c
                                })
                                .collect();
                            layout.insert(key.into(), Value::Array(moved));
                        }
                    }
                }
                merge_frames(&mut frames, fig, trace_offset);
                axis_offset += axes;
            }
        }
        row += g.height;
    }
    if !annotations.is_empty() {
        layout.insert("annotations".into(), Value::Array(annotations));
    }
    if !shapes.is_empty() {
        layout.insert("shapes".into(), Value::Array(shapes));
    }
    let mut out = json!({"data": data, "layout": Value::Object(layout)});
    if !frames.is_empty() {
        out["frames"] = Value::Array(frames);
    }
    out
}

/// Adds `fig`'s frames, trace indices shifted by `offset`, merging frames
/// of the same name.
fn merge_frames(frames: &mut Vec<Value>, fig: &Value, offset: usize) {
    for f in fig["frames"].as_array().into_iter().flatten() {
        let data = f["data"].as_array().cloned().unwrap_or_default();
        let traces: Vec<Value> = match f["traces"].as_array() {
            Some(t) => t
                .iter()
                .map(|i| json!(i.as_u64().unwrap_or(0) as usize + offset))
                .collect(),
            None => (0..data.len()).map(|i| json!(i + offset)).collect(),
        };
        let name = f.get("name").cloned();
        let same = name
            .as_ref()
            .and_then(|n| frames.iter_mut().find(|g| g.get("name") == Some(n)));
        match same {
            Some(g) => {
                if let Some(d) = g["data"].as_array_mut() {
                    d.extend(data);
                }
                if let Some(t) = g["traces"].as_array_mut() {
                    t.extend(traces);
                }
            }
            None => {
                let mut g = f.clone();
                g["data"] = Value::Array(data);
                g["traces"] = Value::Array(traces);
                frames.push(g);
            }
        }
    }
}

/// Text for plotly's annotation markup: `&`, `<`, `>` as entities, line
/// breaks as `<br>`.
pub fn plotly_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', "<br>")
}

/// A left-aligned text block at the top of `band`; `mono` keeps columns
/// (monospace, spaces made non-breaking).
fn text_annotation(text: &str, band: Band, mono: bool) -> Value {
    let body = if mono {
        // The caption's own markup (<b>) is kept; the rest is escaped.
        let (caption, rest) = text.split_once('\n').unwrap_or((text, ""));
        format!(
            "{caption}<br>{}",
            plotly_escape(rest).replace(' ', "\u{a0}")
        )
    } else {
        plotly_escape(text)
    };
    let mut a = json!({
        "text": body, "xref": "paper", "yref": "paper",
        "x": band.x(0.0), "y": band.y(1.0),
        "xanchor": "left", "yanchor": "top", "align": "left", "showarrow": false
    });
    if mono {
        a["font"] = json!({"family": "Menlo, Consolas, 'DejaVu Sans Mono', monospace", "size": 12});
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(name: &str, axes: usize, height: f64) -> Value {
        let mut layout = json!({
            "title": {"text": format!("title {name}")},
            "height": height,
            "margin": {"l": 60, "r": 20, "t": 60, "b": 55},
            "annotations": [{"text": "panel", "xref": "paper", "yref": "paper", "x": 0.5, "y": 1.0}],
            "legend": {"tracegroupgap": 4}
        });
        let mut data = Vec::new();
        for n in 1..=axes {
            let (xa, ya) = if n == 1 {
                ("x".to_string(), "y".to_string())
            } else {
                (format!("x{n}"), format!("y{n}"))
            };
            data.push(json!({"type": "scatter", "name": format!("{name}{n}"), "x": [1, 2], "y": [0.5, 0.25],
                             "xaxis": xa, "yaxis": ya, "legendgroup": "train"}));
            let dom = if axes == 1 {
                json!([0.0, 1.0])
            } else {
                json!([0.0, 0.46])
            };
            layout[axis_name('x', n)] = json!({"domain": dom});
            layout[axis_name('y', n)] = if n == 1 {
                json!({})
            } else {
                json!({"anchor": xa})
            };
        }
        json!({"data": data, "layout": layout})
    }

    #[test]
    fn refs_and_axis_keys() {
        assert_eq!(rename_ref("x", 0), "x");
        assert_eq!(rename_ref("x", 2), "x3");
        assert_eq!(rename_ref("y2 domain", 3), "y5 domain");
        assert_eq!(rename_ref("paper", 3), "paper");
        assert_eq!(rename_ref("free", 3), "free");
        assert_eq!(axis_key("xaxis"), Some(('x', 1)));
        assert_eq!(axis_key("yaxis12"), Some(('y', 12)));
        assert_eq!(axis_key("xaxisfoo"), None);
        assert_eq!(axis_key("legend"), None);
        assert_eq!(axis_count(&fig("a", 2, 400.0)), 2);
    }

    #[test]
    fn two_figures_and_a_note_in_bands_top_to_bottom() -> crate::TestResult {
        let parts = vec![
            Part::Figure(fig("a", 2, 400.0)),
            Part::Figure(fig("b", 1, 300.0)),
            Part::Note("lr = 1e-3 <done>".into()),
        ];
        let v = combine(Some("both"), &parts);
        let l = &v["layout"];
        assert_eq!(l["title"]["text"], "both");
        assert_eq!(l["height"], json!(50.0 + 400.0 + 300.0 + 17.0 + 16.0));
        let data = v["data"]
            .as_array()
            .ok_or("None from v[\"data\"].as_array()")?;
        assert_eq!(data.len(), 3);
        let refs: Vec<(&str, &str)> = data
            .iter()
            .map(|t| (t["xaxis"].as_str().unwrap(), t["yaxis"].as_str().unwrap()))
            .collect();
        assert_eq!(refs, [("x", "y"), ("x2", "y2"), ("x3", "y3")]);
        assert_eq!(l["yaxis3"]["anchor"], "x3");
        assert_eq!(l["xaxis3"]["anchor"], "y3");
        assert_eq!(l["yaxis2"]["anchor"], "x2");
        // Bands: part a above part b, both inside the paper, not overlapping.
        let dom = |k: &str| {
            let d = l[k]["domain"].as_array().unwrap();
            (d[0].as_f64().unwrap(), d[1].as_f64().unwrap())
        };
        let (a0, a1) = dom("yaxis");
        let (b0, b1) = dom("yaxis3");
        assert!(
            (a1 - 1.0).abs() < 1e-9,
            "part a's plot area starts at the top: {a1}"
        );
        assert!(
            b1 < a0 && b0 >= 0.0 && a0 < a1 && b0 < b1,
            "{a0} {a1} {b0} {b1}"
        );
        assert_eq!(dom("xaxis"), (0.0, 0.46));
        // Legends: one per part; groups prefixed; a lone trace has no legend entry.
        assert_eq!(data[0]["legend"], "legend");
        assert_eq!(data[2]["legend"], "legend2");
        assert_eq!(data[0]["legendgroup"], "part0:train");
        assert_eq!(data[2]["legendgroup"], "part1:train");
        assert_eq!(data[2]["showlegend"], false);
        assert!(data[0].get("showlegend").is_none());
        assert_eq!(l["legend"]["tracegroupgap"], 4);
        // Titles and the note as annotations, escaped.
        let texts: Vec<&str> = l["annotations"]
            .as_array()
            .ok_or("expected a JSON array")?
            .iter()
            .map(|a| a["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            texts,
            [
                "title a",
                "panel",
                "title b",
                "panel",
                "lr = 1e-3 &lt;done&gt;"
            ]
        );
        let panel_b = &l["annotations"][3];
        assert!(
            (panel_b["y"]
                .as_f64()
                .ok_or("None from panel_b[\"y\"].as_f64()")?
                - b1)
                .abs()
                < 1e-9
        );
        Ok(())
    }

    #[test]
    fn frames_are_shifted_and_merged_by_name() -> crate::TestResult {
        let mut a = fig("a", 1, 300.0);
        a["frames"] = json!([{"name": "0", "data": [{"x": [1]}], "traces": [0]},
                             {"name": "1", "data": [{"x": [2]}], "traces": [0]}]);
        a["layout"]["sliders"] = json!([{"y": -0.1, "steps": []}]);
        let mut b = fig("b", 1, 300.0);
        b["frames"] = json!([{"name": "1", "data": [{"x": [3]}]}]);
        let v = combine(None, &[Part::Figure(a), Part::Figure(b)]);
        let frames = v["frames"]
            .as_array()
            .ok_or("None from v[\"frames\"].as_array()")?;
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1]["traces"], json!([0, 1]));
        assert_eq!(
            frames[1]["data"]
                .as_array()
                .ok_or("None from frames[1][\"data\"].as_array()")?
                .len(),
            2
        );
        let slider_y = v["layout"]["sliders"][0]["y"]
            .as_f64()
            .ok_or("None from v[\"layout\"][\"sliders\"][0][\"y\"].as_f64()")?;
        let (y0, _) = {
            let d = v["layout"]["yaxis"]["domain"]
                .as_array()
                .ok_or("None from v[\"layout\"][\"yaxis\"][\"domain\"].as_array()")?;
            (
                d[0].as_f64().ok_or("None from d[0].as_f64()")?,
                d[1].as_f64().ok_or("None from d[1].as_f64()")?,
            )
        };
        assert!(slider_y < y0, "the slider stays below its part's plot");
        Ok(())
    }

    #[test]
    fn preformatted_text_keeps_columns() -> crate::TestResult {
        let v = combine(
            None,
            &[Part::Preformatted {
                caption: "table: 2 rows".into(),
                text: "a  b\n1  <2>".into(),
            }],
        );
        let a = &v["layout"]["annotations"][0];
        assert_eq!(
            a["text"],
            "<b>table: 2 rows</b><br>a\u{a0}\u{a0}b<br>1\u{a0}\u{a0}&lt;2&gt;"
        );
        assert!(a["font"]["family"]
            .as_str()
            .ok_or("None from a[\"font\"][\"family\"].as_str()")?
            .contains("monospace"));
        assert!(v["data"]
            .as_array()
            .ok_or("None from v[\"data\"].as_array()")?
            .is_empty());
        Ok(())
    }
}
