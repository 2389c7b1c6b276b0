//! How every result shows itself in a notebook: a [`MimeBundle`] printed in
//! evcxr's display protocol, and the [`Show`] trait every result implements.
//!
//! evcxr keeps **one** rich output per cell. A value whose type has an
//! `evcxr_display(&self)` method (inherent, or a trait method in scope, here
//! [`Show`] through `use nnlab::prelude::*`) is displayed by printing blocks
//!
//! ```text
//! EVCXR_BEGIN_CONTENT application/vnd.plotly.v1+json
//! {"data":[...],"layout":{...}}
//! EVCXR_END_CONTENT
//! EVCXR_BEGIN_CONTENT text/plain
//! Learning curves: 3 runs, 10 epochs
//! EVCXR_END_CONTENT
//! ```
//!
//! to stdout; all blocks of a cell become one `display_data` bundle, one
//! entry per MIME type.
//!
//! ## What a notebook stores
//!
//! - a **figure**: `application/vnd.plotly.v1+json` + a one-line
//!   `text/plain`, nothing else. JupyterLab draws the JSON with the `plotly`
//!   package of environment.yml, also in an untrusted notebook (it runs no
//!   script of the notebook). plotly.js is never stored in a notebook: the
//!   report exporter (`scripts/run_notebooks.py`) adds the drawing html to a
//!   copy of each figure output and inlines plotly.js once per report.
//! - a **table** (DataFrame, summary, history…): plain `text/html` (no
//!   script) + `text/plain`.
//!
//! No bundle ever holds a `<script>`: an untrusted JupyterLab would not run
//! it, and a script would be stored once per output.
//!
//! This file holds the trait, [`MimeBundle`] and the impl for polars'
//! `DataFrame`; every nnlab type's `impl Show` sits next to the type
//! (`History` in `train/history.rs`, `Figure` in `viz/figure.rs`, …), with
//! `table_bundle` for the ones that show as a captioned table.
//!
//! ```
//! use nnlab::display::{MimeBundle, Show};
//! let b = MimeBundle::text("3 epochs");
//! assert_eq!(b.render(), "EVCXR_BEGIN_CONTENT text/plain\n3 epochs\nEVCXR_END_CONTENT\n");
//! let fig = MimeBundle::plotly("{\"data\":[]}", "an empty chart");
//! assert!(fig.html.is_none() && fig.plotly_json.is_some());
//! ```

use polars::prelude::*;

use crate::table::html::{escape, shape_line, to_html};

/// MIME type of plotly figures (JupyterLab's plotly renderer).
pub const PLOTLY_MIME: &str = "application/vnd.plotly.v1+json";

/// Rows a displayed DataFrame shows before it is truncated.
pub const DEFAULT_MAX_ROWS: usize = 20;

/// One notebook output: a block per MIME type that is present.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MimeBundle {
    /// `application/vnd.plotly.v1+json`: the figure (JupyterLab draws it; the
    /// report exporter turns it into offline html).
    pub plotly_json: Option<String>,
    /// `text/html`: tables and notes, plain HTML without scripts.
    pub html: Option<String>,
    /// `text/plain`: the terminal / fallback rendering (one line for a figure).
    pub text: String,
}

impl MimeBundle {
    /// A bundle with only `text/plain`.
    pub fn text(text: impl Into<String>) -> MimeBundle {
        MimeBundle {
            text: text.into(),
            ..MimeBundle::default()
        }
    }

    /// A bundle with `text/html` and `text/plain`.
    pub fn html(html: impl Into<String>, text: impl Into<String>) -> MimeBundle {
        MimeBundle {
            html: Some(html.into()),
            text: text.into(),
            ..MimeBundle::default()
        }
    }

    /// A figure: plotly JSON and its one-line description, no html.
    pub fn plotly(json: impl Into<String>, text: impl Into<String>) -> MimeBundle {
        MimeBundle {
            plotly_json: Some(json.into()),
            html: None,
            text: text.into(),
        }
    }

    /// The evcxr blocks, exactly as printed: plotly JSON, html, text, each
    /// `EVCXR_BEGIN_CONTENT <mime>\n<data>\nEVCXR_END_CONTENT\n`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut block = |mime: &str, data: &str| {
            out.push_str("EVCXR_BEGIN_CONTENT ");
            out.push_str(mime);
            out.push('\n');
            out.push_str(data);
            out.push_str("\nEVCXR_END_CONTENT\n");
        };
        if let Some(j) = &self.plotly_json {
            block(PLOTLY_MIME, j);
        }
        if let Some(h) = &self.html {
            block("text/html", h);
        }
        block("text/plain", &self.text);
        out
    }

    /// Prints the bundle for evcxr ([`MimeBundle::render`] to stdout).
    pub fn print(&self) {
        use std::io::Write;
        let text = self.render();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// Anything that shows itself in a notebook cell as one output.
///
/// ```
/// use nnlab::prelude::*;
/// use polars::prelude::*;
/// let df = df!("epoch" => [1u32, 2], "loss" => [0.5, 0.25]).unwrap();
/// assert!(df.bundle().html.unwrap().contains("2 rows × 2 columns"));
/// ```
pub trait Show {
    /// The MIME bundle of this value.
    fn bundle(&self) -> MimeBundle;

    /// One line naming the value (used by [`crate::viz::Stack`]'s `text/plain`):
    /// by default the first non-blank line of the text.
    fn headline(&self) -> String {
        first_line(&self.bundle().text)
    }

    /// evcxr calls this on a cell's last expression.
    fn evcxr_display(&self) {
        self.bundle().print()
    }
}

/// The first line of `text` that has a letter or digit, cut at 120 characters.
pub(crate) fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.chars().any(|c| c.is_alphanumeric()))
        .unwrap_or("")
        .trim();
    if line.chars().count() > 120 {
        line.chars().take(119).collect::<String>() + "…"
    } else {
        line.to_string()
    }
}

/// A hand-made bundle shows itself (custom outputs, [`crate::viz::Stack`] items).
impl Show for MimeBundle {
    fn bundle(&self) -> MimeBundle {
        self.clone()
    }
}

/// A DataFrame whose building failed shows the error instead.
pub(crate) fn table_bundle(
    df: Result<DataFrame, crate::Error>,
    max_rows: usize,
    caption: &str,
) -> MimeBundle {
    match df {
        Ok(df) => MimeBundle::html(
            format!(
                "<div class=\"nnlab-caption\">{}</div>\n{}",
                escape(caption),
                to_html(&df, max_rows)
            ),
            format!("{caption}\n{df}"),
        ),
        Err(e) => MimeBundle::text(format!("{caption}: {e}")),
    }
}

impl Show for DataFrame {
    fn bundle(&self) -> MimeBundle {
        MimeBundle::html(to_html(self, DEFAULT_MAX_ROWS), format!("{self}"))
    }
    fn headline(&self) -> String {
        format!("table: {}", shape_line(self.height(), self.width()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::gradcheck::Check;
    use crate::train::grid::GridResults;
    use crate::train::history::History;
    use crate::train::interpret::Interpretation;

    #[test]
    fn the_evcxr_block_format_is_exact() {
        let b = MimeBundle {
            plotly_json: Some("{\"data\":[]}".into()),
            html: Some("<b>x</b>".into()),
            text: "two\nlines".into(),
        };
        assert_eq!(
            b.render(),
            "EVCXR_BEGIN_CONTENT application/vnd.plotly.v1+json\n{\"data\":[]}\nEVCXR_END_CONTENT\n\
             EVCXR_BEGIN_CONTENT text/html\n<b>x</b>\nEVCXR_END_CONTENT\n\
             EVCXR_BEGIN_CONTENT text/plain\ntwo\nlines\nEVCXR_END_CONTENT\n"
        );
        assert_eq!(
            MimeBundle::text("t").render(),
            "EVCXR_BEGIN_CONTENT text/plain\nt\nEVCXR_END_CONTENT\n"
        );
    }

    #[test]
    fn history_grid_checks_and_interpretation_show_tables() -> crate::TestResult {
        use crate::train::history::EpochRecord;
        let mut h = History::new("adam");
        for e in 1..=3 {
            h.push(EpochRecord {
                epoch: e,
                train_loss: 1.0 / e as f64,
                val_loss: Some(2.0 / e as f64),
                train_metrics: vec![("accuracy".into(), 0.5 + 0.1 * e as f64)],
                val_metrics: vec![],
                lr: 1e-3,
                seconds: 0.25,
            });
        }
        let b = h.bundle();
        assert_eq!(h.headline(), "adam: 3 epochs");
        let html = b.html.ok_or("None from b.html")?;
        assert!(
            html.contains("3 rows ×") && html.contains("train_loss") && html.contains("0.3333"),
            "{html}"
        );
        assert!(
            b.text.starts_with("adam: 3 epochs\n")
                && b.plotly_json.is_none()
                && !html.contains("<script")
        );

        let checks = vec![Check {
            layer: "Linear(5→4)".into(),
            param: "weight".into(),
            numel: 20,
            checked: 20,
            max_abs_err: 1e-10,
            max_rel_err: 3e-9,
            max_abs_err_autograd: 0.0,
            max_rel_err_autograd: 1e-12,
            kink_margin: f64::INFINITY,
        }];
        assert_eq!(
            checks.headline(),
            "gradcheck: 1 checks, max rel err 3.0e-9 (finite differences), 1.0e-12 (autograd)"
        );
        let html = checks
            .bundle()
            .html
            .ok_or("None from checks.bundle().html")?;
        assert!(
            html.contains("Linear(5→4)") && html.contains("3e-09") && html.contains("inf"),
            "{html}"
        );

        let it = Interpretation::new(
            vec!["cat".into(), "dog".into()],
            vec![1, 1, 0, 0],
            vec![0, 1, 0, 1],
            vec![2.0, 0.1, 0.2, 0.7],
        )?;
        assert_eq!(
            it.headline(),
            "interpretation: 4 samples, 2 wrong, accuracy 50.00%"
        );
        let html = it.bundle().html.ok_or("None from it.bundle().html")?;
        assert!(
            html.contains("Most confused")
                && html.contains("Top losses")
                && html.contains("<td>cat</td>"),
            "{html}"
        );

        let grid = GridResults { runs: vec![] };
        assert_eq!(grid.headline(), "grid: 0 runs");
        assert!(grid
            .bundle()
            .html
            .ok_or("None from grid.bundle().html")?
            .contains("0 rows × 2 columns"));
        Ok(())
    }
}
