//! Line and bar charts of training runs: learning curves of one
//! [`History`], several runs compared, a grid of panels (hw1's 2×2), grid
//! sweeps over a parameter (learning rate, batch size) and bars.
//!
//! A [`History`] names its columns `train_loss`, `val_loss`,
//! `train_<metric>`, `val_<metric>`, `lr`, `seconds`; the x axis is the
//! 1-based epoch. Training curves are solid, validation curves the same color
//! faded (and dashed when several runs share a chart). Titles, axes,
//! legend entries and each figure's one-line text are Russian (the course's
//! language): «обучение»/«валидация», «эпоха», «Функция потерь».
//!
//! ```
//! use nnlab::train::history::{EpochRecord, History};
//! let mut h = History::new("2 layers");
//! for (e, l) in [0.9, 0.5, 0.4].into_iter().enumerate() {
//!     h.push(EpochRecord { epoch: e + 1, train_loss: l, val_loss: Some(l + 0.1), lr: 1e-3, seconds: 1.0,
//!                          train_metrics: vec![("accuracy".into(), 1.0 - l)],
//!                          val_metrics: vec![("accuracy".into(), 0.95 - l)] });
//! }
//! let fig = h.plot().unwrap();                       // loss | accuracy, train vs validation
//! let v: serde_json::Value = serde_json::from_str(&fig.to_json()).unwrap();
//! assert_eq!(v["data"].as_array().unwrap().len(), 4);
//! let cmp = nnlab::viz::curves::compare(&[h.clone(), h], "accuracy", None).unwrap();
//! assert!(cmp.description().starts_with("Сравнение запусков (2:"));
//! assert_eq!(v["data"][0]["name"], "обучение");
//! ```

use super::style::{
    self, axis, axis_refs, base_layout, color, epoch_axis, faded, grid_domains, panel_title,
    with_axes,
};
use super::Figure;
use crate::train::grid::GridResults;
use crate::train::history::History;
use crate::{Error, Result};
use plotly::common::{DashType, Line, Marker, Mode, TextPosition};
use plotly::layout::Legend;
use plotly::{Bar, Plot, Scatter};
use polars::prelude::DataType;

/// A panel: title, y label, its curves, an optional y range.
type Panel = (String, String, Vec<Curve>, Option<(f64, f64)>);

/// One line of a panel.
struct Curve {
    name: String,
    group: String,
    x: Vec<f64>,
    y: Vec<f64>,
    color: String,
    dash: bool,
}

/// Lines with markers up to 30 points, plain lines beyond.
fn mode_for(points: usize) -> Mode {
    if points <= 30 {
        Mode::LinesMarkers
    } else {
        Mode::Lines
    }
}

/// At most this many points per line: a longer series (04's 10 000
/// full-batch steps) is drawn from evenly spaced points plus its smallest,
/// largest and last values, so a stored chart stays small and its extremes
/// stay where they are.
pub const MAX_POINTS: usize = 500;

/// `(x, y)` thinned to at most [`MAX_POINTS`] points (see there).
fn thin(x: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = x.len().min(y.len());
    if n <= MAX_POINTS {
        return (x[..n].to_vec(), y[..n].to_vec());
    }
    let stride = n.div_ceil(MAX_POINTS - 3);
    let mut keep: Vec<usize> = (0..n).step_by(stride).collect();
    let finite = || (0..n).filter(|&i| y[i].is_finite());
    if let Some(lo) = finite().min_by(|&a, &b| y[a].total_cmp(&y[b])) {
        keep.push(lo);
    }
    if let Some(hi) = finite().max_by(|&a, &b| y[a].total_cmp(&y[b])) {
        keep.push(hi);
    }
    keep.push(n - 1);
    keep.sort_unstable();
    keep.dedup();
    (
        keep.iter().map(|&i| x[i]).collect(),
        keep.iter().map(|&i| y[i]).collect(),
    )
}

/// The title of a loss panel (the axis says `loss`).
const LOSS_TITLE: &str = "Функция потерь";

fn scatter(c: &Curve, panel: usize, show_legend: bool) -> Box<Scatter<f64, f64>> {
    let (xa, ya) = axis_refs(panel);
    let mut line = Line::new().color(c.color.clone()).width(2.0);
    if c.dash {
        line = line.dash(DashType::Dash);
    }
    let (x, y) = thin(&c.x, &c.y);
    Scatter::new(x, y)
        .name(c.name.clone())
        .legend_group(c.group.clone())
        .show_legend(show_legend)
        .mode(mode_for(c.x.len()))
        .line(line)
        .marker(Marker::new().size(5).color(c.color.clone()))
        .x_axis(xa)
        .y_axis(ya)
}

/// Panels side by side or in a grid: each `(title, y_label, curves, y_range)`.
/// A legend entry appears once per legend group (the first time it is drawn).
fn panel_figure(title: &str, panels: Vec<Panel>, epochs: usize, description: String) -> Figure {
    let n = panels.len();
    let cols = if n >= 2 { 2 } else { 1 };
    let rows = n.div_ceil(cols);
    let domains = grid_domains(rows, cols);
    let mut plot = Plot::new();
    let mut layout = base_layout(title)
        .legend(Legend::new().trace_group_gap(4))
        .height(if rows > 1 { 330 * rows + 60 } else { 420 });
    let mut seen = std::collections::HashSet::new();
    let mut annotations = Vec::new();
    for (i, (ptitle, ylabel, curves, yrange)) in panels.into_iter().enumerate() {
        let panel = i + 1;
        for c in &curves {
            let show = seen.insert(c.group.clone() + "\u{0}" + &c.name);
            plot.add_trace(scatter(c, panel, show));
        }
        let (xd, yd) = domains[i];
        let x = epoch_axis(epochs).domain(&xd);
        let mut y = axis(&ylabel).domain(&yd);
        if let Some((lo, hi)) = yrange {
            y = y.range(vec![lo, hi]);
        }
        layout = with_axes(layout, panel, x, y);
        annotations.push(panel_title(&ptitle, xd, yd));
    }
    layout = layout.annotations(annotations);
    plot.set_layout(layout);
    Figure::new(plot, description)
}

fn no_epochs(h: &History) -> Error {
    Error::config("history", format!("run `{}` has no epochs to plot", h.name))
}

fn epochs_of(h: &History) -> Vec<f64> {
    h.epochs.iter().map(|e| e.epoch as f64).collect()
}

/// The metric names of a history (`accuracy`, `f1_macro`), validation ones first.
fn metric_names(h: &History) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(e) = h.epochs.first() {
        for (n, _) in e.val_metrics.iter().chain(&e.train_metrics) {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    names
}

/// The train and validation curves of `metric` ("loss" or a metric name) in
/// `h`, colored `c` (validation faded).
fn pair(
    h: &History,
    metric: &str,
    c: &str,
    label: Option<&str>,
    dash_val: bool,
) -> Result<Vec<Curve>> {
    let cols = h.columns();
    let x = epochs_of(h);
    let mut out = Vec::new();
    for (prefix, group, which) in [
        ("train", "train", "обучение"),
        ("val", "validation", "валидация"),
    ] {
        let col = format!("{prefix}_{metric}");
        if cols.contains(&col) {
            let is_val = prefix == "val";
            out.push(Curve {
                name: match label {
                    Some(l) => format!("{l} ({which})"),
                    None => which.to_string(),
                },
                group: label.unwrap_or(group).to_string(),
                x: x.clone(),
                y: h.column(&col)?,
                color: if is_val {
                    faded(c, style::VAL_ALPHA)
                } else {
                    c.to_string()
                },
                dash: is_val && dash_val,
            });
        }
    }
    if out.is_empty() {
        let mut avail = vec!["loss".to_string()];
        avail.extend(metric_names(h));
        return Err(Error::config(
            "metric",
            format!(
                "`{metric}` is not in run `{}`; expected one of {}",
                h.name,
                avail.join(", ")
            ),
        ));
    }
    Ok(out)
}

fn final_value(h: &History, col: &str) -> Option<f64> {
    h.column(col)
        .ok()
        .and_then(|v| v.last().copied())
        .filter(|v| v.is_finite())
}

/// Loss | main metric side by side, one point per epoch: training in blue,
/// validation in orange. The main metric is the first one recorded (the
/// validation one when there is a validation loader); a history without
/// metrics gives the loss panel alone. Errors on an empty history.
pub fn learning_curves(history: &History) -> Result<Figure> {
    if history.is_empty() {
        return Err(no_epochs(history));
    }
    let x = epochs_of(history);
    let mut loss = vec![Curve {
        name: "обучение".into(),
        group: "train".into(),
        x: x.clone(),
        y: history.column("train_loss")?,
        color: color(0).into(),
        dash: false,
    }];
    if history.columns().iter().any(|c| c == "val_loss") {
        loss.push(Curve {
            name: "валидация".into(),
            group: "validation".into(),
            x: x.clone(),
            y: history.column("val_loss")?,
            color: color(1).into(),
            dash: false,
        });
    }
    let mut panels = vec![(LOSS_TITLE.to_string(), "loss".to_string(), loss, None)];
    let mut summary = Vec::new();
    for c in ["val_loss", "train_loss"] {
        if let Some(v) = final_value(history, c) {
            summary.push(format!("{c} {v:.4}"));
            break;
        }
    }
    if let Some(m) = metric_names(history).first() {
        let mut curves = pair(history, m, color(0), None, false)?;
        for c in &mut curves {
            if c.group == "validation" {
                c.color = color(1).into();
            }
        }
        let title = style::column_title(m);
        panels.push((title.clone(), style::metric_name(m), curves, None));
        for c in [format!("val_{m}"), format!("train_{m}")] {
            if let Some(v) = final_value(history, &c) {
                summary.push(format!("{c} {v:.4}"));
                break;
            }
        }
    }
    let desc = format!(
        "Кривые обучения `{}`: эпох {}, в конце {}",
        history.name,
        history.len(),
        summary.join(", ")
    );
    Ok(panel_figure(
        &format!("{} — кривые обучения", history.name),
        panels,
        history.len(),
        desc,
    ))
}

impl History {
    /// [`learning_curves`] of this run: loss | main metric, train vs validation.
    pub fn plot(&self) -> Result<Figure> {
        learning_curves(self)
    }
}

fn check_runs(runs: &[History]) -> Result<usize> {
    if runs.is_empty() {
        return Err(Error::config(
            "runs",
            "no runs to plot: expected at least one History",
        ));
    }
    if let Some(h) = runs.iter().find(|h| h.is_empty()) {
        return Err(no_epochs(h));
    }
    Ok(runs.iter().map(|h| h.len()).max().unwrap_or(0))
}

/// Several runs on one chart (hw5's `plot_learning_curves_compar`): loss |
/// `metric` side by side (the loss alone when `metric` is `"loss"`), a color
/// per run, training solid, validation faded and dashed. `metric` is a bare
/// name (`accuracy`, `f1_macro`; a `train_`/`val_` prefix is ignored);
/// `ylim = Some((lo, hi))` fixes the loss axis range, as the original's `y_max`.
pub fn compare(runs: &[History], metric: &str, ylim: Option<(f64, f64)>) -> Result<Figure> {
    let epochs = check_runs(runs)?;
    let metric = metric
        .strip_prefix("train_")
        .or_else(|| metric.strip_prefix("val_"))
        .unwrap_or(metric);
    let mut loss = Vec::new();
    let mut other = Vec::new();
    for (i, h) in runs.iter().enumerate() {
        loss.extend(pair(h, "loss", color(i), Some(&h.name), true)?);
        if metric != "loss" {
            other.extend(pair(h, metric, color(i), Some(&h.name), true)?);
        }
    }
    let mut panels = vec![(LOSS_TITLE.to_string(), "loss".to_string(), loss, ylim)];
    if metric != "loss" {
        panels.push((
            style::column_title(metric),
            style::metric_name(metric),
            other,
            None,
        ));
    }
    let names: Vec<&str> = runs.iter().map(|h| h.name.as_str()).collect();
    // The metric named once when it is the loss itself (never "loss и loss").
    let (what, title) = if metric == "loss" {
        ("loss".to_string(), LOSS_TITLE.to_string())
    } else {
        let m = style::metric_name(metric);
        (format!("loss и {m}"), format!("{LOSS_TITLE} и {m}"))
    };
    let desc = format!(
        "Сравнение запусков ({}: {}): {what}, эпох {epochs}",
        runs.len(),
        names.join(", ")
    );
    Ok(panel_figure(&title, panels, epochs, desc))
}

/// One panel per history column (hw1's 2×2 grid: `&["train_loss",
/// "train_accuracy", "val_loss", "val_accuracy"]`), two panels a row, each
/// with its title; one color per run, the legend names the runs. At most
/// 8 panels; every run must have every column.
pub fn panels(runs: &[History], columns: &[&str]) -> Result<Figure> {
    let epochs = check_runs(runs)?;
    if columns.is_empty() {
        return Err(Error::config(
            "columns",
            "no columns to plot: expected e.g. [\"train_loss\", \"val_loss\"]",
        ));
    }
    if columns.len() > style::MAX_PANELS {
        return Err(Error::config(
            "columns",
            format!(
                "{} columns, expected at most {} panels in one figure",
                columns.len(),
                style::MAX_PANELS
            ),
        ));
    }
    let mut panels = Vec::new();
    for col in columns {
        let mut curves = Vec::new();
        for (i, h) in runs.iter().enumerate() {
            let y = h
                .column(col)
                .map_err(|e| Error::config(format!("run `{}`", h.name), e.to_string()))?;
            curves.push(Curve {
                name: h.name.clone(),
                group: h.name.clone(),
                x: epochs_of(h),
                y,
                color: color(i).into(),
                dash: false,
            });
        }
        let label = col
            .strip_prefix("train_")
            .or_else(|| col.strip_prefix("val_"))
            .unwrap_or(col);
        panels.push((
            style::column_title(col),
            style::metric_name(label),
            curves,
            None,
        ));
    }
    let desc = format!(
        "Панелей {} ({}), запусков {}, эпох {epochs}",
        columns.len(),
        columns.join(", "),
        runs.len()
    );
    Ok(panel_figure(
        &columns
            .iter()
            .map(|c| style::column_title(c))
            .collect::<Vec<_>>()
            .join(" · "),
        panels,
        epochs,
        desc,
    ))
}

/// The values of `column` of the grid's results table
/// ([`GridResults::to_dataframe`]: parameters, `<col>_final`, `<col>_best`,
/// `epochs`, `seconds`), one per run, NaN where missing.
fn results_column(results: &GridResults, column: &str) -> Result<Vec<f64>> {
    let df = results.to_dataframe()?;
    let Ok(col) = df.column(column) else {
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        return Err(Error::config(
            "column",
            format!(
                "`{column}` is not a column of the grid results; expected one of {}",
                names.join(", ")
            ),
        ));
    };
    let col = col.cast(&DataType::Float64).map_err(|_| {
        Error::config(
            "column",
            format!(
                "`{column}` is not numeric ({}), expected numbers",
                col.dtype()
            ),
        )
    })?;
    let ca = col.f64()?;
    Ok((0..ca.len())
        .map(|i| ca.get(i).unwrap_or(f64::NAN))
        .collect())
}

fn check_grid(results: &GridResults) -> Result<()> {
    if results.runs.is_empty() {
        return Err(Error::config("grid results", "no runs to plot"));
    }
    Ok(())
}

/// A grid column against a numeric grid axis `x` (`lr`, `batch_size`), e.g.
/// `sweep(&results, "lr", "val_loss_final")`; `y` is a column of
/// [`GridResults::to_dataframe`]. The other axes of the grid make one line
/// each (`bn=true, optimizer=adam`). The x axis is logarithmic when the
/// values span a decade or more.
pub fn sweep(results: &GridResults, x: &str, y: &str) -> Result<Figure> {
    check_grid(results)?;
    let ys = results_column(results, y)?;
    let mut groups: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (r, &yv) in results.runs.iter().zip(&ys) {
        let xv = r.params.f64(x)?;
        let rest: Vec<String> = r
            .params
            .0
            .iter()
            .filter(|(n, _)| n != x)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        let label = if rest.is_empty() {
            style::column_title(y)
        } else {
            rest.join(", ")
        };
        match groups.iter_mut().find(|(l, _)| *l == label) {
            Some((_, pts)) => pts.push((xv, yv)),
            None => groups.push((label, vec![(xv, yv)])),
        }
    }
    let xs_all: Vec<f64> = results
        .runs
        .iter()
        .filter_map(|r| r.params.f64(x).ok())
        .collect();
    let log = style::spans_decades(&xs_all);
    let mut plot = Plot::new();
    for (i, (label, mut pts)) in groups.into_iter().enumerate() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let c = color(i);
        plot.add_trace(
            Scatter::new(
                pts.iter().map(|p| p.0).collect(),
                pts.iter().map(|p| p.1).collect(),
            )
            .name(label)
            .mode(Mode::LinesMarkers)
            .line(Line::new().color(c).width(2.0))
            .marker(Marker::new().size(8).color(c)),
        );
    }
    let xaxis = if log { style::log_axis(x) } else { axis(x) };
    let mut xaxis = xaxis;
    // One tick per value tried when there are few of them.
    let mut distinct = xs_all.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if distinct.len() <= 12 {
        xaxis = xaxis
            .tick_mode(plotly::common::TickMode::Array)
            .tick_values(distinct.clone())
            .tick_text(distinct.iter().map(|&v| style::short_number(v)).collect());
    }
    plot.set_layout(
        base_layout(&format!("{} в зависимости от {x}", style::column_title(y)))
            .x_axis(xaxis)
            .y_axis(axis(&style::column_title(y)))
            .height(420),
    );
    let desc = format!(
        "Зависимость {y} от {x} (запусков {}, значений {}{})",
        results.runs.len(),
        distinct.len(),
        if log {
            ", логарифмическая ось x"
        } else {
            ""
        }
    );
    Ok(Figure::new(plot, desc))
}

/// One bar per label, its value printed above it.
pub fn bars(labels: &[String], values: &[f64], title: &str, y_label: &str) -> Result<Figure> {
    if labels.is_empty() {
        return Err(Error::config("labels", "no bars to plot"));
    }
    if labels.len() != values.len() {
        return Err(Error::config(
            "values",
            format!(
                "{} values for {} labels, expected as many",
                values.len(),
                labels.len()
            ),
        ));
    }
    let text: Vec<String> = values
        .iter()
        .map(|&v| {
            format!("{:.4}", v)
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        })
        .collect();
    let mut plot = Plot::new();
    plot.add_trace(
        Bar::new(labels.to_vec(), values.to_vec())
            .name(y_label)
            .marker(Marker::new().color(color(0)))
            .text_array(text)
            .text_position(TextPosition::Outside),
    );
    plot.set_layout(
        base_layout(title)
            .x_axis(
                axis("")
                    .type_(plotly::layout::AxisType::Category)
                    .tick_angle(if labels.iter().map(|l| l.len()).sum::<usize>() > 80 {
                        -30.0
                    } else {
                        0.0
                    }),
            )
            .y_axis(axis(y_label))
            .show_legend(false)
            .height(420),
    );
    Ok(Figure::new(
        plot,
        format!("{title}: столбцов {}, {y_label}", labels.len()),
    ))
}

/// One bar per grid run (`bn=true, lr=0.001`) of `column` of the results table.
pub fn grid_bars(results: &GridResults, column: &str) -> Result<Figure> {
    check_grid(results)?;
    let values = results_column(results, column)?;
    let labels: Vec<String> = results.runs.iter().map(|r| r.params.label()).collect();
    let name = style::column_title(column);
    bars(&labels, &values, &format!("{name} по запускам"), &name)
}

/// Generic lines: `series` = `(name, values)`, each drawn against its index
/// 0, 1, 2, … in its own color.
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<f64>)],
) -> Result<Figure> {
    if series.is_empty() || series.iter().all(|(_, v)| v.is_empty()) {
        return Err(Error::config(
            "series",
            "no values to plot: expected at least one non-empty series",
        ));
    }
    let mut plot = Plot::new();
    let longest = series.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    for (i, (name, v)) in series.iter().enumerate() {
        let c = color(i);
        let index: Vec<f64> = (0..v.len()).map(|k| k as f64).collect();
        let (x, y) = thin(&index, v);
        plot.add_trace(
            Scatter::new(x, y)
                .name(name.clone())
                .mode(mode_for(v.len()))
                .line(Line::new().color(c).width(2.0))
                .marker(Marker::new().size(5).color(c)),
        );
    }
    plot.set_layout(
        base_layout(title)
            .x_axis(axis(x_label))
            .y_axis(axis(y_label))
            .height(420),
    );
    Ok(Figure::new(
        plot,
        format!("{title}: линий {}, точек до {longest}", series.len()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_series_are_thinned_keeping_extremes_and_the_end() -> crate::TestResult {
        let x: Vec<f64> = (0..10_000).map(|i| i as f64).collect();
        let mut y: Vec<f64> = x.iter().map(|v| (v / 500.0).sin()).collect();
        y[4321] = -7.0; // a spike between the evenly spaced points
        let (tx, ty) = thin(&x, &y);
        assert!(
            tx.len() <= MAX_POINTS && tx.len() > MAX_POINTS * 9 / 10,
            "{}",
            tx.len()
        );
        assert_eq!(
            (tx[0], *tx.last().ok_or("None from tx.last()")?),
            (0.0, 9_999.0)
        );
        assert!(tx.windows(2).all(|w| w[0] < w[1]));
        let spike = tx
            .iter()
            .position(|&v| v == 4321.0)
            .expect("the minimum is kept");
        assert_eq!(ty[spike], -7.0);
        let short = [1.0, 2.0, 3.0];
        assert_eq!(thin(&short, &short), (short.to_vec(), short.to_vec()));
        Ok(())
    }
}
