//! Optimizer paths on a 2-D function (hw5 task 2), replacing the course's
//! GIFs: the function's contour lines on a log scale with every run's path
//! over them, optionally animated (one frame per step, play/pause buttons
//! and a step slider), and the distance to the minimum per step.
//!
//! The contour is of `log10(f(x, y) − f* + ε)` over the box enclosing every
//! path (and the minimum) with a 10% margin, on an 80 × 80 grid; points
//! outside the function's domain (`complex_sum` at x < 0) are left blank.
//! `f*` is `f` at [`Function2d::minimum`] (analytic for three functions; for
//! `complex_sum` the local minimum nearest the course's start (5, −2), found
//! numerically by gradient descent and Newton's method, see
//! [`crate::scratch::functions::complex_sum_minimum`]), or the smallest value
//! seen on the grid when that is lower (another basin inside the box).
//! Every chart measures distances to, and stars, that minimum, never a run's
//! own best point. `ε = 10⁻⁴·(max f − f*)` keeps the logarithm finite at the
//! minimum.
//!
//! Every label is in Russian (the course's language): titles, axes, legend
//! entries, hover text and the one-line text of each figure.
//!
//! ```
//! use nnlab::scratch::{functions::Function2d, optim2d::Optimizer2d};
//! let runs = vec![
//!     Optimizer2d::sgd(0.05).run(Function2d::SquareSum, [5.0, 5.0], 20).unwrap(),
//!     Optimizer2d::adam(0.5).run(Function2d::SquareSum, [5.0, 5.0], 20).unwrap(),
//! ];
//! let fig = nnlab::viz::trajectory::trajectories(&runs, true).unwrap();
//! let v: serde_json::Value = serde_json::from_str(&fig.to_json()).unwrap();
//! assert_eq!(v["frames"].as_array().unwrap().len(), 21);
//! let d = nnlab::viz::trajectory::distance_to_minimum(&runs).unwrap();
//! assert!(d.description().contains("минимума функции (0, 0)"));
//! ```

use super::rounding::round_significant;
use super::style::{self, axis, base_layout, color, log_axis};
use super::Figure;
use crate::scratch::functions::Function2d;
use crate::scratch::optim2d::{Kind, Rule, Trajectory};
use crate::{Error, Result};
use plotly::common::{ColorScale, ColorScaleElement, Line, Marker, MarkerSymbol, Mode};
use plotly::layout::update_menu::{
    Button, ButtonMethod, UpdateMenu, UpdateMenuDirection, UpdateMenuType,
};
use plotly::layout::{Frame, Margin, Slider, SliderCurrentValue, SliderMethod, SliderStep};
use plotly::traces::contour::{Coloring, Contours};
use plotly::{Contour, Plot, Scatter, Trace, Traces};
use serde_json::json;

/// A run's path trace and its current-point trace.
type PathAndEnd = (Box<Scatter<f64, f64>>, Box<Scatter<f64, f64>>);

/// Grid points along each side of the contour: 80 × 80 cells of ≈ 8 screen
/// pixels keep the contour lines smooth; the grid is most of a stored
/// figure, so it is no finer.
const GRID: usize = 80;

/// Significant digits of the contour's z values (log10 of f − f* + ε):
/// 4 digits place every line within 0.1% of the spacing between two of the
/// 24 levels, one digit less than the figure's other floats keep
/// ([`crate::viz::rounding`]), which saves a seventh of the grid.
const CONTOUR_DIGITS: usize = 4;

/// `Adam lr=0.1`, `RMSprop lr=0.01 (правило курса)`.
pub fn run_label(t: &Trajectory) -> String {
    let kind = match t.optimizer.kind {
        Kind::Sgd => "SGD",
        Kind::Momentum => "Momentum",
        Kind::Adagrad => "Adagrad",
        Kind::RmsProp => "RMSprop",
        Kind::Adam => "Adam",
    };
    let rule = if t.optimizer.rule == Rule::Course {
        " (правило курса)"
    } else {
        ""
    };
    format!("{kind} lr={}{rule}", style::short_number(t.optimizer.lr))
}

/// The function all runs share; errors on no runs, an empty run, or runs on
/// different functions.
fn common_function(runs: &[Trajectory]) -> Result<Function2d> {
    let Some(first) = runs.first() else {
        return Err(Error::config(
            "runs",
            "no trajectories to plot: expected at least one",
        ));
    };
    for (i, t) in runs.iter().enumerate() {
        if t.points.is_empty() || t.values.len() != t.points.len() {
            return Err(Error::config(
                format!("runs[{i}]"),
                format!(
                    "{} points and {} values, expected as many and at least one",
                    t.points.len(),
                    t.values.len()
                ),
            ));
        }
        if t.function != first.function {
            return Err(Error::config(
                format!("runs[{i}]"),
                format!(
                    "is on `{}` but runs[0] on `{}`: expected one function per chart",
                    t.function.name(),
                    first.function.name()
                ),
            ));
        }
    }
    Ok(first.function)
}

/// `(x, y)` of a point with short numbers, e.g. `(3.262224, 5.2497)`.
fn point_text(p: [f64; 2]) -> String {
    format!(
        "({}, {})",
        style::short_number(p[0]),
        style::short_number(p[1])
    )
}

/// The box `[x0, x1] × [y0, y1]` enclosing every path and `extra`, with a
/// 10% margin (half a unit when the box is flat).
fn bounds(runs: &[Trajectory], extra: [f64; 2]) -> ([f64; 2], [f64; 2]) {
    let mut lo = extra;
    let mut hi = extra;
    for p in runs.iter().flat_map(|t| &t.points) {
        for k in 0..2 {
            if p[k].is_finite() {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
    }
    let widen = |k: usize| {
        let span = hi[k] - lo[k];
        let m = if span > 1e-9 { 0.1 * span } else { 0.5 };
        [lo[k] - m, hi[k] + m]
    };
    (widen(0), widen(1))
}

/// The log-scaled contour trace over the box.
fn contour(
    runs: &[Trajectory],
    f: Function2d,
    xr: [f64; 2],
    yr: [f64; 2],
) -> Box<Contour<Vec<Option<f64>>, f64, f64>> {
    let lin = |r: [f64; 2]| {
        (0..GRID)
            .map(|i| r[0] + (r[1] - r[0]) * i as f64 / (GRID - 1) as f64)
            .collect::<Vec<f64>>()
    };
    let (xs, ys) = (lin(xr), lin(yr));
    let raw: Vec<Vec<Option<f64>>> = ys
        .iter()
        .map(|&y| {
            xs.iter()
                .map(|&x| f.value([x, y]).ok().filter(|v| v.is_finite()))
                .collect()
        })
        .collect();
    let seen = raw.iter().flatten().flatten().copied().chain(
        runs.iter()
            .flat_map(|t| t.values.iter().copied())
            .filter(|v| v.is_finite()),
    );
    let (lowest, highest) = seen.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let f_star = match f.value(f.minimum()) {
        Ok(v) => v.min(lowest),
        Err(_) => lowest,
    };
    let eps = (1e-4 * (highest - f_star)).max(1e-12);
    let z: Vec<Vec<Option<f64>>> = raw
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| {
                    v.map(|v| {
                        round_significant(((v - f_star).max(0.0) + eps).log10(), CONTOUR_DIGITS)
                    })
                })
                .collect()
        })
        .collect();
    let scale = ColorScale::Vector(vec![
        ColorScaleElement(0.0, "#bdbdbd".into()),
        ColorScaleElement(1.0, "#252525".into()),
    ]);
    Contour::new(xs, ys, z)
        .name("log10(f − f* + ε)")
        .contours(Contours::new().coloring(Coloring::Lines).show_labels(false))
        .n_contours(24)
        .auto_contour(true)
        .line(Line::new().width(1.0))
        .color_scale(scale)
        .show_scale(false)
        .hover_template("x %{x:.3f}, y %{y:.3f}<br>log10(f − f* + ε) = %{z:.2f}<extra></extra>")
        .show_legend(false)
}

/// The path of run `i` up to step `k` and its current point.
fn path_traces(t: &Trajectory, i: usize, k: usize) -> PathAndEnd {
    let k = k.min(t.points.len() - 1);
    let c = color(i);
    let name = run_label(t);
    let pts = &t.points[..=k];
    let path = Scatter::new(
        pts.iter().map(|p| p[0]).collect(),
        pts.iter().map(|p| p[1]).collect(),
    )
    .name(name.clone())
    .legend_group(name.clone())
    .mode(Mode::LinesMarkers)
    .line(Line::new().color(c).width(2.0))
    .marker(Marker::new().size(4).color(c));
    let end = Scatter::new(vec![t.points[k][0]], vec![t.points[k][1]])
        .name(format!("{name}, шаг {k}"))
        .legend_group(name)
        .show_legend(false)
        .mode(Mode::Markers)
        .marker(
            Marker::new()
                .size(12)
                .color(c)
                .symbol(MarkerSymbol::Diamond)
                .line(Line::new().color("#ffffff").width(1.0)),
        );
    (path, end)
}

/// Run `t`'s current point at step `k` for an animation frame: one point (the
/// slider says which step it is). A frame changes only the current-point traces
/// (`traces: [4, 6, …]`); the paths are drawn once, in the still traces, so
/// the stored animation grows linearly with the steps (a frame that redrew
/// the path so far would make it quadratic: 101 frames × the whole trail).
fn frame_point(t: &Trajectory, k: usize) -> Box<Scatter<f64, f64>> {
    let k = k.min(t.points.len() - 1);
    Scatter::new(vec![t.points[k][0]], vec![t.points[k][1]])
}

/// Every run's path over the log-scaled contour of its function, start and
/// end marked, the function's minimum ([`Function2d::minimum`]) starred. With `animate`,
/// one frame per step (frames `0..=steps`: every run's current point, a
/// diamond, moves along its whole path; a shorter run stays at its end), a
/// Play/Pause menu and a step slider; the still picture shows the whole
/// paths with the diamonds at the end. The stored size is linear in the
/// steps (each frame carries one point per run).
pub fn trajectories(runs: &[Trajectory], animate: bool) -> Result<Figure> {
    let f = common_function(runs)?;
    let target = f.minimum();
    let (xr, yr) = bounds(runs, target);
    let steps = runs.iter().map(|t| t.points.len() - 1).max().unwrap_or(0);
    let mut plot = Plot::new();
    plot.add_trace(contour(runs, f, xr, yr));
    plot.add_trace(
        Scatter::new(vec![target[0]], vec![target[1]])
            .name(format!("минимум функции {}", point_text(target)))
            .mode(Mode::Markers)
            .marker(
                Marker::new()
                    .size(16)
                    .color("#000000")
                    .symbol(MarkerSymbol::Star),
            ),
    );
    let mut starts: Vec<[f64; 2]> = Vec::new();
    for t in runs {
        if !starts.contains(&t.points[0]) {
            starts.push(t.points[0]);
        }
    }
    plot.add_trace(
        Scatter::new(
            starts.iter().map(|p| p[0]).collect(),
            starts.iter().map(|p| p[1]).collect(),
        )
        .name("старт")
        .mode(Mode::Markers)
        .marker(
            Marker::new()
                .size(11)
                .color("#000000")
                .symbol(MarkerSymbol::CircleOpen)
                .line(Line::new().width(2.0)),
        ),
    );
    for (i, t) in runs.iter().enumerate() {
        let (path, end) = path_traces(t, i, steps);
        plot.add_trace(path);
        plot.add_trace(if animate {
            end.name(format!("{}, текущий шаг", run_label(t)))
        } else {
            end
        });
    }
    let title = format!(
        "{} на {} = {}",
        if runs.len() == 1 {
            run_label(&runs[0])
        } else {
            format!("Оптимизаторов: {}", runs.len())
        },
        f.name(),
        f.formula()
    );
    let mut layout = base_layout(&title)
        .x_axis(axis("x").range(vec![xr[0], xr[1]]))
        .y_axis(axis("y").range(vec![yr[0], yr[1]]))
        .height(560)
        .hover_mode(plotly::layout::HoverMode::Closest);
    if animate {
        // Trace 3 + 2i is run i's path, 3 + 2i + 1 its current point.
        let moving: Vec<usize> = (0..runs.len()).map(|i| 3 + 2 * i + 1).collect();
        for k in 0..=steps {
            let mut data = Traces::new();
            for t in runs {
                data.push(frame_point(t, k) as Box<dyn Trace>);
            }
            plot.add_frame(
                Frame::new()
                    .name(k.to_string())
                    .data(data)
                    .traces(moving.clone()),
            );
        }
        // `redraw: true`: with `false`, plotly.js drops the contour (not an
        // animatable trace) at the first animated frame (seen in Chromium).
        let duration = (5000 / steps.max(1)).clamp(20, 200);
        let play = Button::new().label("▶ Пуск").method(ButtonMethod::Animate).args(json!([
            null,
            {"frame": {"duration": duration, "redraw": true}, "transition": {"duration": 0}, "fromcurrent": false, "mode": "immediate"}
        ]));
        let pause = Button::new().label("❚❚ Пауза").method(ButtonMethod::Animate).args(json!([
            [null],
            {"frame": {"duration": 0, "redraw": true}, "transition": {"duration": 0}, "mode": "immediate"}
        ]));
        let menu = UpdateMenu::new()
            .ty(UpdateMenuType::Buttons)
            .direction(UpdateMenuDirection::Left)
            .buttons(vec![play, pause])
            .show_active(false)
            .x(0.0)
            .x_anchor(plotly::common::Anchor::Left)
            .y(-0.16)
            .y_anchor(plotly::common::Anchor::Top);
        let slider_steps: Vec<SliderStep> = (0..=steps)
            .map(|k| {
                SliderStep::new().label(k.to_string()).method(SliderMethod::Animate).args(json!([
                    [k.to_string()],
                    {"mode": "immediate", "frame": {"duration": 0}, "transition": {"duration": 0}}
                ]))
            })
            .collect();
        let slider = Slider::new()
            .active(steps as i32)
            .steps(slider_steps)
            .current_value(SliderCurrentValue::new().prefix("шаг ").visible(true))
            .x(0.3)
            .length(0.7)
            .y(-0.1)
            .y_anchor(plotly::common::Anchor::Top);
        layout = layout
            .update_menus(vec![menu])
            .sliders(vec![slider])
            .margin(Margin::new().left(60).right(20).top(60).bottom(150))
            .height(660);
    }
    plot.set_layout(layout);
    let finals: Vec<String> = runs
        .iter()
        .map(|t| {
            let p = t.points[t.points.len() - 1];
            format!("{} заканчивает в ({:.3}, {:.3})", run_label(t), p[0], p[1])
        })
        .collect();
    let desc = format!(
        "Траекторий: {} на {}, шагов: {steps}{}, минимум функции {}: {}",
        runs.len(),
        f.name(),
        if animate {
            ", с анимацией"
        } else {
            ""
        },
        point_text(target),
        finals.join("; ")
    );
    Ok(Figure::new(plot, desc))
}

/// Euclidean distance to the function's minimum per step, one line per run,
/// log y. The reference is [`Function2d::minimum`] (for `complex_sum` the
/// numerically found local minimum nearest (5, −2)), the same for every run,
/// so no run's distance is 0 by construction; a distance of exactly 0 cannot
/// be drawn on the log axis and is left out.
pub fn distance_to_minimum(runs: &[Trajectory]) -> Result<Figure> {
    let f = common_function(runs)?;
    let target = f.minimum();
    let mut plot = Plot::new();
    let mut finals = Vec::new();
    for (i, t) in runs.iter().enumerate() {
        let d = t.distances_to(target);
        let c = color(i);
        finals.push(format!("{} {:.3e}", run_label(t), d[d.len() - 1]));
        let y: Vec<Option<f64>> = d
            .iter()
            .map(|&v| if v > 0.0 { Some(v) } else { None })
            .collect();
        plot.add_trace(
            Scatter::new((0..d.len()).map(|k| k as f64).collect(), y)
                .name(run_label(t))
                .mode(if d.len() <= 30 {
                    Mode::LinesMarkers
                } else {
                    Mode::Lines
                })
                .line(Line::new().color(c).width(2.0))
                .marker(Marker::new().size(5).color(c)),
        );
    }
    let at = point_text(target);
    plot.set_layout(
        base_layout(&format!(
            "Расстояние до минимума функции {at} на {}",
            f.name()
        ))
        .x_axis(axis("шаг"))
        .y_axis(log_axis("расстояние до минимума"))
        .height(440),
    );
    Ok(Figure::new(
        plot,
        format!(
            "Расстояние до минимума функции {at} по шагам на {}, в конце: {}",
            f.name(),
            finals.join(", ")
        ),
    ))
}

impl Trajectory {
    /// [`trajectories`] of this run alone.
    pub fn plot(&self, animate: bool) -> Result<Figure> {
        trajectories(std::slice::from_ref(self), animate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::optim2d::Optimizer2d;

    #[test]
    fn complex_sum_uses_its_minimum_and_blank_outside_domain() -> crate::TestResult {
        let runs = vec![
            Optimizer2d::adam(0.1).run(Function2d::ComplexSum, [5.0, -2.0], 30)?,
            Optimizer2d::sgd(0.001).run(Function2d::ComplexSum, [5.0, -2.0], 30)?,
        ];
        // The star is the function's minimum, not a run's best point: no
        // distance reaches 0.
        let m = Function2d::ComplexSum.minimum();
        let fig = trajectories(&runs, false)?;
        let v: serde_json::Value = serde_json::from_str(&fig.to_json())?;
        assert_eq!(
            v["data"][1]["name"],
            format!("минимум функции {}", point_text(m))
        );
        assert!(
            (v["data"][1]["x"][0]
                .as_f64()
                .ok_or("None from v[\"data\"][1][\"x\"][0].as_f64()")?
                - m[0])
                .abs()
                < 1e-3
        );
        assert!(runs
            .iter()
            .all(|t| t.distances_to(m).iter().all(|&d| d > 1e-3)));
        let d = distance_to_minimum(&runs)?;
        assert!(
            d.description()
                .starts_with(&format!("Расстояние до минимума функции {}", point_text(m))),
            "{}",
            d.description()
        );
        assert!(point_text(m).starts_with("(3.262"), "{}", point_text(m));
        // A box reaching x < 0 leaves those grid cells blank (null).
        let c = contour(&runs, Function2d::ComplexSum, [-1.0, 5.0], [-2.0, 5.0]);
        let v: serde_json::Value = serde_json::from_str(&c.to_json())?;
        assert!(v["z"][0][0].is_null());
        assert!(v["z"][0][GRID - 1].is_number());
        let e = trajectories(
            &[
                runs[0].clone(),
                Optimizer2d::sgd(0.1).run(Function2d::SquareSum, [1.0, 1.0], 3)?,
            ],
            false,
        )
        .err()
        .ok_or("expected an error, got Ok")?;
        assert!(
            e.to_string().contains("runs[1]") && e.to_string().contains("square_sum"),
            "{e}"
        );
        assert!(trajectories(&[], true).is_err());
        Ok(())
    }
}
