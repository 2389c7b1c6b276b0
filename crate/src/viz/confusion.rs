//! The confusion matrix as a heatmap, and the most confused pairs as a table.
//!
//! Rows are true classes (top to bottom in class order), columns predicted
//! classes. `normalized` colors each cell by its share of the row,
//! `C[t][p] / Σ_p C[t][p]` (recall on the diagonal); every cell is annotated
//! with its count (and its percentage when normalized).
//!
//! ```
//! use nnlab::train::interpret::Interpretation;
//! let classes: Vec<String> = vec!["cat".into(), "dog".into()];
//! let it = Interpretation::new(classes, vec![0, 1, 1], vec![0, 0, 1], vec![0.1, 2.3, 0.2]).unwrap();
//! let fig = it.plot_confusion(true).unwrap();
//! let v: serde_json::Value = serde_json::from_str(&fig.to_json()).unwrap();
//! assert_eq!(v["data"][0]["z"][0], serde_json::json!([0.5, 0.5]));
//! let df = nnlab::viz::confusion::most_confused_table(&it, 1).unwrap();
//! assert_eq!(df.height(), 1);
//! ```

use super::style::{self, base_layout};
use super::Figure;
use crate::train::interpret::Interpretation;
use crate::train::metrics::ConfusionMatrix;
use crate::{Error, Result};
use plotly::common::{Anchor, ColorBar, ColorScale, ColorScaleElement, Font, Title};
use plotly::layout::{Annotation, AxisType, CategoryOrder};
use plotly::{HeatMap, Plot};
use polars::prelude::{Column, DataFrame};

/// More classes than this and the cells carry no text (too small to read).
const MAX_ANNOTATED: usize = 30;

/// The heatmap of `cm` with class names `classes` (one per row), counts in the
/// cells; `normalized` colors by row share. Errors when the names do not
/// match the matrix size.
pub fn confusion_heatmap(
    cm: &ConfusionMatrix,
    classes: &[String],
    normalized: bool,
) -> Result<Figure> {
    let k = cm.num_classes();
    if k == 0 {
        return Err(Error::config("confusion matrix", "has no classes"));
    }
    if classes.len() != k {
        return Err(Error::config(
            "classes",
            format!(
                "{} class names for a {k}×{k} confusion matrix, expected {k}",
                classes.len()
            ),
        ));
    }
    let counts = cm.rows();
    let z: Vec<Vec<f64>> = if normalized {
        cm.normalized()
    } else {
        counts
            .iter()
            .map(|r| r.iter().map(|&c| c as f64).collect())
            .collect()
    };
    let zmax = z.iter().flatten().copied().fold(0.0f64, f64::max);
    let hover: Vec<Vec<String>> = (0..k)
        .map(|t| {
            (0..k)
                .map(|p| {
                    let share = cm.normalized()[t][p];
                    format!(
                        "истинный {}<br>предсказан {}<br>{} ({:.1}% строки)",
                        classes[t],
                        classes[p],
                        counts[t][p],
                        share * 100.0
                    )
                })
                .collect()
        })
        .collect();
    let scale = ColorScale::Vector(vec![
        ColorScaleElement(0.0, "#f7fbff".into()),
        ColorScaleElement(0.5, "#6baed6".into()),
        ColorScaleElement(1.0, "#08306b".into()),
    ]);
    let heat = HeatMap::new(classes.to_vec(), classes.to_vec(), z.clone())
        .color_scale(scale)
        .zmin(0.0)
        .zmax(if normalized { 1.0 } else { zmax.max(1.0) })
        .hover_text_matrix(hover)
        .hover_info(plotly::common::HoverInfo::Text)
        .name(if normalized {
            "доля строки"
        } else {
            "число"
        })
        .color_bar(ColorBar::new().title(Title::with_text(if normalized {
            "доля строки"
        } else {
            "число"
        })));
    let mut plot = Plot::new();
    plot.add_trace(heat);
    let mut annotations = Vec::new();
    if k <= MAX_ANNOTATED {
        let size = if k <= 10 {
            12
        } else if k <= 20 {
            10
        } else {
            8
        };
        for t in 0..k {
            for p in 0..k {
                let text = if normalized && counts[t][p] > 0 {
                    format!("{}<br>{:.0}%", counts[t][p], z[t][p] * 100.0)
                } else {
                    counts[t][p].to_string()
                };
                let dark = zmax > 0.0 && z[t][p] / if normalized { 1.0 } else { zmax } > 0.5;
                annotations.push(
                    Annotation::new()
                        .text(text)
                        // Positions on the category axes (names like "1" would be
                        // read as positions anyway): column p, row k−1−t from the bottom.
                        .x(p as f64)
                        .y((k - 1 - t) as f64)
                        .x_ref("x")
                        .y_ref("y")
                        .show_arrow(false)
                        .x_anchor(Anchor::Center)
                        .y_anchor(Anchor::Middle)
                        .font(Font::new().size(size).color(if dark {
                            "#ffffff"
                        } else {
                            style::TEXT
                        })),
                );
            }
        }
    }
    let side = (60 * k).clamp(360, 900);
    // Row 0 at the top: the y categories listed bottom-up.
    let mut reversed = classes.to_vec();
    reversed.reverse();
    // Category axes: class names such as "0".."9" must not become numbers.
    let long = classes.iter().any(|c| c.chars().count() > 4);
    let x = style::axis("предсказанный класс")
        .type_(AxisType::Category)
        .show_grid(false)
        .show_line(false)
        .tick_angle(if long && k > 6 { -45.0 } else { 0.0 })
        .category_order(CategoryOrder::Array)
        .category_array(classes.to_vec());
    let y = style::axis("истинный класс")
        .type_(AxisType::Category)
        .show_grid(false)
        .show_line(false)
        .category_order(CategoryOrder::Array)
        .category_array(reversed)
        .scale_anchor("x");
    let title = if normalized {
        "Матрица ошибок (нормирована по строкам)"
    } else {
        "Матрица ошибок"
    };
    plot.set_layout(
        base_layout(title)
            .x_axis(x)
            .y_axis(y)
            .annotations(annotations)
            .width(side + 180)
            .height(side + 120),
    );
    let desc = format!(
        "{title}: классов {k}, объектов {}, accuracy {:.4}",
        cm.total(),
        cm.accuracy()
    );
    Ok(Figure::new(plot, desc))
}

impl Interpretation {
    /// [`confusion_heatmap`] of these predictions, labelled with the class names.
    pub fn plot_confusion(&self, normalized: bool) -> Result<Figure> {
        confusion_heatmap(&self.confusion_matrix(), &self.classes, normalized)
    }
}

/// The most confused pairs seen at least `min_count` times, most frequent
/// first: columns `actual`, `predicted`, `count` (u64), `share_of_actual`
/// (the count over the samples of the actual class).
pub fn most_confused_table(interp: &Interpretation, min_count: u64) -> Result<DataFrame> {
    let pairs = interp.most_confused(min_count);
    let support = interp.confusion_matrix().support();
    let idx = |name: &str| interp.classes.iter().position(|c| c == name);
    let share: Vec<f64> = pairs
        .iter()
        .map(|p| match idx(&p.actual).map(|i| support[i]) {
            Some(s) if s > 0 => p.count as f64 / s as f64,
            _ => f64::NAN,
        })
        .collect();
    let cols = vec![
        Column::new(
            "actual".into(),
            pairs.iter().map(|p| p.actual.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "predicted".into(),
            pairs
                .iter()
                .map(|p| p.predicted.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "count".into(),
            pairs.iter().map(|p| p.count).collect::<Vec<_>>(),
        ),
        Column::new("share_of_actual".into(), share),
    ];
    Ok(DataFrame::new(pairs.len(), cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn heatmap_cells_and_annotations() -> crate::TestResult {
        let cm = ConfusionMatrix::from_labels(&[0, 1, 1, 2, 2, 2, 0], &[0, 0, 1, 2, 2, 1, 0], 3)?;
        let fig = confusion_heatmap(&cm, &names(&["a", "b", "c"]), false)?;
        let v: serde_json::Value = serde_json::from_str(&fig.to_json())?;
        let z = &v["data"][0]["z"];
        for t in 0..3 {
            for p in 0..3 {
                assert_eq!(
                    z[t][p].as_f64().ok_or("None from z[t][p].as_f64()")?,
                    cm.get(t, p) as f64,
                    "cell {t},{p}"
                );
            }
        }
        assert_eq!(v["data"][0]["type"], "heatmap");
        let ann = v["layout"]["annotations"]
            .as_array()
            .ok_or("None from v[\"layout\"][\"annotations\"].as_array()")?;
        assert_eq!(ann.len(), 9);
        // true a (row 0, drawn at the top: y = 2), predicted b (x = 1).
        let cell = ann
            .iter()
            .find(|a| a["x"] == 1.0 && a["y"] == 2.0)
            .ok_or("None from ann.iter().find(|a| a[\"x\"] == 1.0 && a[\"y\"] == 2.0)")?;
        assert_eq!(cell["text"], "1");
        assert_eq!(
            v["layout"]["yaxis"]["categoryarray"],
            serde_json::json!(["c", "b", "a"])
        );
        assert!(fig.description().contains("объектов 7"));
        assert_eq!(v["layout"]["title"]["text"], "Матрица ошибок");
        assert_eq!(v["layout"]["xaxis"]["title"]["text"], "предсказанный класс");

        let e = confusion_heatmap(&cm, &names(&["a", "b"]), false)
            .err()
            .ok_or("expected an error, got Ok")?
            .to_string();
        assert!(e.contains("2 class names") && e.contains("3×3"), "{e}");
        Ok(())
    }

    #[test]
    fn normalized_rows_sum_to_one_and_table() -> crate::TestResult {
        let classes = names(&["cat", "dog", "fox"]);
        let it = Interpretation::new(
            classes,
            vec![1, 1, 0, 2, 1, 2],
            vec![0, 0, 0, 2, 2, 1],
            vec![0.0; 6],
        )?;
        let v: serde_json::Value = serde_json::from_str(&it.plot_confusion(true)?.to_json())?;
        for row in v["data"][0]["z"]
            .as_array()
            .ok_or("None from v[\"data\"][0][\"z\"].as_array()")?
        {
            let s: f64 = row
                .as_array()
                .ok_or("expected a JSON array")?
                .iter()
                .map(|x| x.as_f64().unwrap())
                .sum();
            assert!((s - 1.0).abs() < 1e-12, "row sums to {s}");
        }
        assert_eq!(v["layout"]["annotations"][1]["text"], "2<br>67%");
        assert_eq!(v["layout"]["annotations"][3]["text"], "0");
        assert_eq!(v["layout"]["xaxis"]["type"], "category");
        let df = most_confused_table(&it, 1)?;
        assert_eq!(df.shape(), (3, 4));
        let actual = df
            .column("actual")?
            .str()?
            .get(0)
            .ok_or("empty or null column")?
            .to_string();
        assert_eq!(actual, "cat");
        assert_eq!(df.column("count")?.u64()?.get(0), Some(2));
        let share = df
            .column("share_of_actual")?
            .f64()?
            .get(0)
            .ok_or("empty or null column")?;
        assert!((share - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(most_confused_table(&it, 3)?.height(), 0);
        Ok(())
    }
}
