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
//! EVCXR_BEGIN_CONTENT text/html
//! <div id="nnlab-fig-…"></div><script>…Plotly.newPlot(…)…</script>
//! EVCXR_END_CONTENT
//! EVCXR_BEGIN_CONTENT text/plain
//! Learning curves: 3 runs, 10 epochs
//! EVCXR_END_CONTENT
//! ```
//!
//! to stdout; all blocks of a cell become one `display_data` bundle, one
//! entry per MIME type. JupyterLab renders the plotly JSON (with the `plotly`
//! Python package installed); nbconvert's HTML export drops that JSON and
//! keeps `text/html`, whose inline script draws the same figure with no network.
//!
//! ## plotly.js once per kernel
//!
//! plotly.js is 4.6 MB, so only the **first** display in a kernel process
//! that needs it inlines it (a `<script>` before the html); later figures'
//! scripts poll until `window.Plotly` exists, so the order in which a page
//! runs its scripts does not matter. The "already sent" flag lives in the
//! process environment (`NNLAB_PLOTLY_JS_SENT=<pid>`), not in a Rust
//! `static`: evcxr links the crate's code into a fresh library for every
//! cell, each with its own copy of every `static` (evcxr issue #331), while
//! the environment is one per process.
//!
//! [`reset_plotly_js`] makes the next display inline it again. Call it when
//! the output that carried plotly.js is gone from the notebook (you cleared or
//! re-ran that cell in a running kernel) before exporting to HTML; a report
//! that is executed from the top in a fresh kernel (`nbconvert --execute`)
//! never needs it.
//!
//! ```
//! use nnlab::display::{MimeBundle, Show};
//! let b = MimeBundle::text("3 epochs");
//! assert_eq!(b.render(), "EVCXR_BEGIN_CONTENT text/plain\n3 epochs\nEVCXR_END_CONTENT\n");
//! ```

use polars::prelude::*;

use crate::models::summary::Summary;
use crate::scratch::gradcheck::{self, Check};
use crate::table::html::{escape, shape_line, to_html};
use crate::train::grid::GridResults;
use crate::train::history::History;
use crate::train::interpret::Interpretation;

/// MIME type of plotly figures (JupyterLab's plotly renderer).
pub const PLOTLY_MIME: &str = "application/vnd.plotly.v1+json";

/// Rows a displayed DataFrame shows before it is truncated.
pub const DEFAULT_MAX_ROWS: usize = 20;

/// Environment variable holding the id of the process that has inlined plotly.js.
const SENT_VAR: &str = "NNLAB_PLOTLY_JS_SENT";

/// One notebook output: a block per MIME type that is present.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MimeBundle {
    /// `application/vnd.plotly.v1+json`: the figure for JupyterLab.
    pub plotly_json: Option<String>,
    /// `text/html`: what nbconvert's HTML export keeps.
    pub html: Option<String>,
    /// `text/plain`: the terminal / fallback rendering.
    pub text: String,
    /// The html draws plotly figures: the first display in the process
    /// inlines plotly.js before it (see the module doc).
    pub needs_plotly_js: bool,
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

    /// The evcxr blocks, exactly as printed: plotly JSON, html, text, each
    /// `EVCXR_BEGIN_CONTENT <mime>\n<data>\nEVCXR_END_CONTENT\n`. Pure: it
    /// never adds plotly.js (that is [`MimeBundle::for_display`]).
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

    /// The bundle as it is displayed now: when it needs plotly.js and no
    /// earlier display of this process inlined it, a copy with the plotly.js
    /// `<script>` in front of the html (and the process marked as served).
    pub fn for_display(&self) -> MimeBundle {
        let mut b = self.clone();
        if b.needs_plotly_js && take_plotly_js_turn() {
            let html = b.html.take().unwrap_or_default();
            b.html = Some(format!("{}\n{html}", plotly_js_script()));
        }
        b
    }

    /// Prints the bundle for evcxr (`for_display().render()` to stdout).
    pub fn print(&self) {
        use std::io::Write;
        let text = self.for_display().render();
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

/// `<script type="text/javascript">plotly.min.js</script>`: plotly.js 3.0.1
/// as bundled by the plotly crate (without its MathJax script).
pub fn plotly_js_script() -> &'static str {
    static JS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    JS.get_or_init(|| {
        let all = plotly::Plot::offline_js_sources();
        let end = all
            .find("</script>")
            .map(|i| i + "</script>".len())
            .unwrap_or(all.len());
        all[..end].trim_start().to_string()
    })
}

/// True once per process: this display inlines plotly.js.
fn take_plotly_js_turn() -> bool {
    let me = std::process::id().to_string();
    if std::env::var(SENT_VAR).ok().as_deref() == Some(me.as_str()) {
        return false;
    }
    std::env::set_var(SENT_VAR, me);
    true
}

/// The next display that draws a figure inlines plotly.js again (see the
/// module doc: needed after the output that carried it was cleared or
/// re-run, before exporting the notebook to HTML).
pub fn reset_plotly_js() {
    std::env::remove_var(SENT_VAR);
}

/// A hand-made bundle shows itself (custom outputs, [`crate::viz::Stack`] items).
impl Show for MimeBundle {
    fn bundle(&self) -> MimeBundle {
        self.clone()
    }
}

/// A DataFrame whose building failed shows the error instead.
fn table_bundle(df: Result<DataFrame, crate::Error>, max_rows: usize, caption: &str) -> MimeBundle {
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

impl Show for Summary {
    fn bundle(&self) -> MimeBundle {
        MimeBundle::html(self.to_html(), self.to_string())
    }
    fn headline(&self) -> String {
        format!("{} summary: {} params", self.model, self.total_params)
    }
}

impl Show for History {
    fn bundle(&self) -> MimeBundle {
        table_bundle(self.to_dataframe(), 60, &self.headline())
    }
    fn headline(&self) -> String {
        let name = if self.name.is_empty() {
            "history"
        } else {
            self.name.as_str()
        };
        format!("{name}: {} epochs", self.len())
    }
}

impl Show for GridResults {
    fn bundle(&self) -> MimeBundle {
        table_bundle(self.to_dataframe(), 60, &self.headline())
    }
    fn headline(&self) -> String {
        format!("grid: {} runs", self.runs.len())
    }
}

impl Show for Vec<Check> {
    fn bundle(&self) -> MimeBundle {
        table_bundle(gradcheck::to_dataframe(self), 60, &self.headline())
    }
    fn headline(&self) -> String {
        let worst = |f: fn(&Check) -> f64| self.iter().map(f).fold(0.0, f64::max);
        format!(
            "gradcheck: {} checks, max rel err {:.1e} (finite differences), {:.1e} (autograd)",
            self.len(),
            worst(|c| c.max_rel_err),
            worst(|c| c.max_rel_err_autograd)
        )
    }
}

impl Show for Interpretation {
    /// Accuracy, the most confused pairs (top 10) and the top losses (top 10).
    fn bundle(&self) -> MimeBundle {
        let confused = self.most_confused(1);
        let top = self.top_losses(10);
        let confused_df = df!(
            "actual" => confused.iter().take(10).map(|c| c.actual.clone()).collect::<Vec<_>>(),
            "predicted" => confused.iter().take(10).map(|c| c.predicted.clone()).collect::<Vec<_>>(),
            "count" => confused.iter().take(10).map(|c| c.count).collect::<Vec<_>>()
        );
        let top_df = df!(
            "index" => top.iter().map(|t| t.index as u64).collect::<Vec<_>>(),
            "loss" => top.iter().map(|t| t.loss).collect::<Vec<_>>(),
            "actual" => top.iter().map(|t| t.actual.clone()).collect::<Vec<_>>(),
            "predicted" => top.iter().map(|t| t.predicted.clone()).collect::<Vec<_>>()
        );
        let (confused_df, top_df) = match (confused_df, top_df) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                return MimeBundle::text(format!("{}: {e}", self.headline()))
            }
        };
        let html = format!(
            "<div class=\"nnlab-caption\">{}</div>\n<div class=\"nnlab-caption\">Most confused (actual → predicted)</div>\n{}\n<div class=\"nnlab-caption\">Top losses</div>\n{}",
            escape(&self.headline()),
            to_html(&confused_df, 10),
            to_html(&top_df, 10)
        );
        let text = format!(
            "{}\nMost confused:\n{confused_df}\nTop losses:\n{top_df}",
            self.headline()
        );
        MimeBundle::html(html, text)
    }
    fn headline(&self) -> String {
        let n = self.targets.len();
        let right = n - self.misclassified().len();
        let acc = if n == 0 {
            0.0
        } else {
            100.0 * right as f64 / n as f64
        };
        format!(
            "interpretation: {n} samples, {} wrong, accuracy {acc:.2}%",
            n - right
        )
    }
}

/// Serializes tests that read or change the process-wide plotly.js flag.
#[cfg(test)]
pub(crate) static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_evcxr_block_format_is_exact() {
        let b = MimeBundle {
            plotly_json: Some("{\"data\":[]}".into()),
            html: Some("<b>x</b>".into()),
            text: "two\nlines".into(),
            needs_plotly_js: false,
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
    fn plotly_js_is_the_bundled_plotly_only() {
        let js = plotly_js_script();
        assert!(
            js.starts_with("<script type=\"text/javascript\">"),
            "{}",
            &js[..80]
        );
        assert!(js.ends_with("</script>"));
        assert_eq!(js.matches("</script>").count(), 1);
        assert!(js.contains("plotly.js v3.0.1"));
        assert!(js.contains("window.Plotly = Plotly"));
        assert!(!js.contains("MathJax ="), "the MathJax script is left out");
        assert!(js.len() > 4_000_000 && js.len() < 5_000_000, "{}", js.len());
    }

    #[test]
    fn plotly_js_once_per_process_and_again_after_reset() {
        let _g = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let b = MimeBundle {
            html: Some("<div>fig</div>".into()),
            needs_plotly_js: true,
            ..MimeBundle::text("fig")
        };
        let plain = MimeBundle::html("<p>t</p>", "t");
        reset_plotly_js();
        // A bundle that draws no figure does not use up the turn.
        assert_eq!(plain.for_display(), plain);
        let first = b.for_display().html.unwrap();
        let second = b.for_display().html.unwrap();
        assert!(first.starts_with(plotly_js_script()) && first.ends_with("\n<div>fig</div>"));
        assert_eq!(second, "<div>fig</div>");
        reset_plotly_js();
        assert!(b.for_display().html.unwrap().contains("plotly.js v3.0.1"));
        assert!(!b.for_display().html.unwrap().contains("plotly.js v3.0.1"));
        // The flag is this process's: a value left by another process does not count.
        std::env::set_var(SENT_VAR, "not-this-pid");
        assert!(b.for_display().html.unwrap().contains("plotly.js v3.0.1"));
    }

    #[test]
    fn history_grid_checks_and_interpretation_show_tables() {
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
        let html = b.html.unwrap();
        assert!(
            html.contains("3 rows ×") && html.contains("train_loss") && html.contains("0.3333"),
            "{html}"
        );
        assert!(
            b.text.starts_with("adam: 3 epochs\n") && b.plotly_json.is_none() && !b.needs_plotly_js
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
        let html = checks.bundle().html.unwrap();
        assert!(
            html.contains("Linear(5→4)") && html.contains("3e-09") && html.contains("inf"),
            "{html}"
        );

        let it = Interpretation::new(
            vec!["cat".into(), "dog".into()],
            vec![1, 1, 0, 0],
            vec![0, 1, 0, 1],
            vec![2.0, 0.1, 0.2, 0.7],
        )
        .unwrap();
        assert_eq!(
            it.headline(),
            "interpretation: 4 samples, 2 wrong, accuracy 50.00%"
        );
        let html = it.bundle().html.unwrap();
        assert!(
            html.contains("Most confused")
                && html.contains("Top losses")
                && html.contains("<td>cat</td>"),
            "{html}"
        );

        let grid = GridResults { runs: vec![] };
        assert_eq!(grid.headline(), "grid: 0 runs");
        assert!(grid.bundle().html.unwrap().contains("0 rows × 2 columns"));
    }
}
