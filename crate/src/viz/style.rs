//! The look shared by every chart: a color-blind-safe palette (Okabe & Ito,
//! 2008), a white base layout, axis helpers and the faded variant of a color
//! used for validation curves.
//!
//! Labels are Russian, like the course's prose: the epoch axis is «эпоха»,
//! [`column_title`] names history columns («Точность (accuracy), валидация»).
//!
//! Colors are picked in order, `color(i) = PALETTE[i mod 8]`; the order puts
//! the most distinct hues first and yellow (weak on white) last. A faded color
//! is the same hue at opacity `α`: `#0072B2` at 0.5 → `rgba(0,114,178,0.5)`.
//!
//! ```
//! use nnlab::viz::style;
//! assert_eq!(style::color(0), "#0072B2");
//! assert_eq!(style::color(8), style::color(0));
//! assert_eq!(style::faded("#0072B2", 0.5), "rgba(0,114,178,0.5)");
//! let layout = style::base_layout("Функция потерь").x_axis(style::epoch_axis(10));
//! assert!(serde_json::to_string(&layout).unwrap().contains("\"dtick\":1.0"));
//! ```

use plotly::common::Anchor;
use plotly::common::{Font, Title};
use plotly::layout::{Annotation, Axis, AxisType, Layout, Margin};

/// Okabe–Ito: blue, orange, bluish green, vermillion, reddish purple, sky
/// blue, black, yellow.
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442",
];

/// The color marking something wrong (a misclassified image): Okabe–Ito vermillion.
pub const WRONG: &str = "#D55E00";
/// The color marking something right: Okabe–Ito bluish green.
pub const RIGHT: &str = "#009E73";
/// Text color.
pub const TEXT: &str = "#2a3f5f";
/// Grid lines (plotly_white's).
pub const GRID: &str = "#EBF0F8";
/// Opacity of validation curves next to their solid training curve.
pub const VAL_ALPHA: f64 = 0.55;

/// The `i`-th palette color, cycling after 8.
pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// `color` (`#RRGGBB`) at opacity `alpha` as `rgba(r,g,b,alpha)`; a color in
/// another notation is returned unchanged.
pub fn faded(color: &str, alpha: f64) -> String {
    let hex = color.trim_start_matches('#');
    if color.starts_with('#') && hex.len() == 6 {
        if let Ok(v) = u32::from_str_radix(hex, 16) {
            let (r, g, b) = (v >> 16, (v >> 8) & 0xff, v & 0xff);
            return format!("rgba({r},{g},{b},{alpha})");
        }
    }
    color.to_string()
}

/// White background, readable font, tight margins, legend on the right; the
/// title on top.
pub fn base_layout(title: &str) -> Layout {
    Layout::new()
        .title(Title::with_text(title))
        .font(Font::new().family("Arial, sans-serif").size(13).color(TEXT))
        .paper_background_color("#ffffff")
        .plot_background_color("#ffffff")
        .margin(Margin::new().left(60).right(20).top(60).bottom(55))
        .x_axis(axis(""))
        .y_axis(axis(""))
}

/// An axis titled `title` (units in brackets: `"time [s]"`), light grid.
pub fn axis(title: &str) -> Axis {
    let a = Axis::new()
        .show_grid(true)
        .grid_color(GRID)
        .zero_line(false)
        .show_line(true)
        .line_color("#bbbbbb")
        .auto_margin(true);
    if title.is_empty() {
        a
    } else {
        a.title(Title::with_text(title))
    }
}

/// A logarithmic axis titled `title`.
pub fn log_axis(title: &str) -> Axis {
    axis(title)
        .type_(AxisType::Log)
        .exponent_format(plotly::common::ExponentFormat::Power)
}

/// The epoch axis: title «эпоха», one tick per epoch up to 20 epochs, then
/// integer ticks chosen by plotly.
pub fn epoch_axis(epochs: usize) -> Axis {
    let a = axis("эпоха").tick_format("d");
    if epochs <= 20 {
        a.dtick(1.0).tick0(1.0)
    } else {
        a
    }
}

/// An axis with neither ticks nor grid (images).
pub fn bare_axis() -> Axis {
    Axis::new()
        .show_grid(false)
        .zero_line(false)
        .show_tick_labels(false)
        .show_line(false)
        .ticks(plotly::layout::TicksDirection::Outside)
        .tick_length(0)
}

/// Whether positive `values` span at least a decade (max/min ≥ 10), so a
/// log axis reads better.
pub fn spans_decades(values: &[f64]) -> bool {
    let pos: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if pos.is_empty() || pos.iter().any(|&v| v <= 0.0) {
        return false;
    }
    let (lo, hi) = pos.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    hi / lo >= 10.0
}

/// The most subplots a figure holds (plotly's layout has 8 axis pairs).
pub const MAX_PANELS: usize = 8;

/// Places axis pair `index` (1-based, ≤ [`MAX_PANELS`]) in `layout`: axis 1
/// is `xaxis`/`yaxis`, axis k is `xaxis{k}`/`yaxis{k}`. Each axis is anchored
/// to its partner (`x2` ↔ `y2`).
pub fn with_axes(layout: Layout, index: usize, x: Axis, y: Axis) -> Layout {
    let (xa, ya) = axis_refs(index);
    let x = if index > 1 { x.anchor(ya.as_str()) } else { x };
    let y = if index > 1 { y.anchor(xa.as_str()) } else { y };
    match index {
        1 => layout.x_axis(x).y_axis(y),
        2 => layout.x_axis2(x).y_axis2(y),
        3 => layout.x_axis3(x).y_axis3(y),
        4 => layout.x_axis4(x).y_axis4(y),
        5 => layout.x_axis5(x).y_axis5(y),
        6 => layout.x_axis6(x).y_axis6(y),
        7 => layout.x_axis7(x).y_axis7(y),
        _ => layout.x_axis8(x).y_axis8(y),
    }
}

/// The trace-side names of axis pair `index`: `("x", "y")`, `("x2", "y2")`, …
pub fn axis_refs(index: usize) -> (String, String) {
    if index <= 1 {
        ("x".into(), "y".into())
    } else {
        (format!("x{index}"), format!("y{index}"))
    }
}

/// Domains `([x0, x1], [y0, y1])` of a `rows × cols` grid of panels in paper
/// coordinates, row-major from the top left, with gaps between panels.
pub fn grid_domains(rows: usize, cols: usize) -> Vec<([f64; 2], [f64; 2])> {
    let (hgap, vgap) = (0.08, if rows > 1 { 0.14 } else { 0.0 });
    let (rows, cols) = (rows.max(1), cols.max(1));
    let w = (1.0 - hgap * (cols - 1) as f64) / cols as f64;
    let h = (1.0 - vgap * (rows - 1) as f64) / rows as f64;
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            let x0 = c as f64 * (w + hgap);
            let y1 = 1.0 - r as f64 * (h + vgap);
            out.push(([x0, x0 + w], [y1 - h, y1]));
        }
    }
    out
}

/// A panel title: bold-ish text centered above a panel whose domain is
/// `x_domain` × `y_domain` (paper coordinates).
pub fn panel_title(text: &str, x_domain: [f64; 2], y_domain: [f64; 2]) -> Annotation {
    Annotation::new()
        .text(format!("<b>{text}</b>"))
        .x_ref("paper")
        .y_ref("paper")
        .x((x_domain[0] + x_domain[1]) / 2.0)
        .y(y_domain[1])
        .x_anchor(Anchor::Center)
        .y_anchor(Anchor::Bottom)
        .y_shift(4.0)
        .show_arrow(false)
        .font(Font::new().size(14).color(TEXT))
}

/// The Russian name of a metric or results column: `loss` → `loss`,
/// `accuracy` → `точность (accuracy)`, `f1_macro` → `macro-F1`, `seconds` →
/// `время, с`; another name with `_` read as a space.
pub fn metric_name(metric: &str) -> String {
    match metric {
        "loss" => "loss".into(),
        "accuracy" | "acc" => "точность (accuracy)".into(),
        "f1_macro" | "macro_f1" => "macro-F1".into(),
        "f1" => "F1".into(),
        "seconds" => "время, с".into(),
        "epochs" => "эпох".into(),
        other => other.replace('_', " "),
    }
}

/// A Russian title for a history or results column: `val_accuracy` →
/// `Точность (accuracy), валидация`, `train_f1_macro` → `Macro-F1, обучение`,
/// `val_loss_best` → `Loss, валидация, лучшее`, `seconds` → `Время, с`.
pub fn column_title(column: &str) -> String {
    let (rest, when) = if let Some(r) = column.strip_suffix("_final") {
        (r, ", в конце")
    } else if let Some(r) = column.strip_suffix("_best") {
        (r, ", лучшее")
    } else {
        (column, "")
    };
    let (rest, split) = if let Some(r) = rest.strip_prefix("train_") {
        (r, ", обучение")
    } else if let Some(r) = rest.strip_prefix("val_") {
        (r, ", валидация")
    } else if let Some(r) = rest.strip_prefix("test_") {
        (r, ", тест")
    } else {
        (rest, "")
    };
    let name = metric_name(rest);
    let mut c = name.chars();
    let name = match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    };
    format!("{name}{split}{when}")
}

/// A short number for labels: `0.001`, `0.25`, `64`, `1e-5`.
pub fn short_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if !(1e-4..1e6).contains(&a) {
        return format!("{x:e}");
    }
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_faded_and_numbers() {
        assert_eq!(PALETTE.len(), 8);
        assert_eq!(color(3), "#D55E00");
        assert_eq!(color(11), "#D55E00");
        assert_eq!(faded("#E69F00", 0.3), "rgba(230,159,0,0.3)");
        assert_eq!(faded("red", 0.3), "red");
        assert!(spans_decades(&[1e-3, 1e-2, 0.1]));
        assert!(spans_decades(&[1e-3, 5e-3, 1e-2, 5e-2]));
        assert!(!spans_decades(&[0.05, 0.1, 0.2, 0.3]));
        assert!(!spans_decades(&[0.0, 1.0, 1000.0]));
        assert_eq!(
            column_title("val_accuracy"),
            "Точность (accuracy), валидация"
        );
        assert_eq!(column_title("train_f1_macro"), "Macro-F1, обучение");
        assert_eq!(column_title("val_loss_best"), "Loss, валидация, лучшее");
        assert_eq!(column_title("test_top_k"), "Top k, тест");
        assert_eq!(column_title("seconds"), "Время, с");
        assert_eq!(metric_name("accuracy"), "точность (accuracy)");
        assert_eq!(metric_name("loss"), "loss");
        let d = grid_domains(2, 2);
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].0[0], 0.0);
        assert!((d[3].0[1] - 1.0).abs() < 1e-12 && d[3].1[0].abs() < 1e-12);
        assert!(d[0].0[1] < d[1].0[0] && d[2].1[1] < d[0].1[0]);
        assert_eq!(short_number(0.001), "0.001");
        assert_eq!(short_number(64.0), "64");
        assert_eq!(short_number(1e-5), "1e-5");
        assert_eq!(short_number(0.25), "0.25");
    }

    #[test]
    fn layout_json() -> crate::TestResult {
        let l = base_layout("T")
            .x_axis(epoch_axis(5))
            .y_axis(log_axis("loss"));
        let v: serde_json::Value = serde_json::to_value(&l)?;
        assert_eq!(v["title"]["text"], "T");
        assert_eq!(v["xaxis"]["dtick"], 1.0);
        assert_eq!(v["xaxis"]["title"]["text"], "эпоха");
        assert_eq!(v["yaxis"]["type"], "log");
        assert_eq!(v["plot_bgcolor"], "#ffffff");
        let v: serde_json::Value = serde_json::to_value(epoch_axis(50))?;
        assert!(v.get("dtick").is_none());
        Ok(())
    }
}
