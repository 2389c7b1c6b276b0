//! [`Figure`]: one plotly plot and a one-line description of it, shown in a
//! notebook as one output with two MIME types and saved as a standalone
//! HTML file that needs no network.
//!
//! ```text
//! notebook bundle   application/vnd.plotly.v1+json   {"data":…,"layout":…,"frames":…}
//!                   text/plain   the description
//! save_html(path)   <!doctype html>…<script>plotly.js 3.0.1 inlined</script>
//!                   <div id="nnlab-fig-…"></div>
//!                   <script>Plotly.newPlot(div, data, layout, config) … Plotly.addFrames(div, frames)</script>
//! ```
//!
//! The notebook bundle carries no html and no plotly.js (see
//! [`crate::display`]): JupyterLab draws the JSON, and the report exporter
//! (`scripts/run_notebooks.py`) writes the same div and script as
//! [`Figure::to_inline_html`] with plotly.js once per report. The JSON's
//! floats are rounded to 5 significant digits ([`crate::viz::rounding`]).
//!
//! ```no_run
//! use nnlab::viz::Figure;
//! let fig = Figure::new(plotly::Plot::new(), "an empty chart");
//! assert_eq!(fig.description(), "an empty chart");
//! fig.save_html("chart.html").unwrap();
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use plotly::Plot;

use crate::display::{MimeBundle, Show};
use crate::table::html::escape;
use crate::viz::rounding::{round_floats, SIGNIFICANT_DIGITS};
use crate::{Error, Result};

/// A chart: the plotly plot and the one line shown as `text/plain`.
#[derive(Clone)]
pub struct Figure {
    plot: Plot,
    description: String,
}

impl Figure {
    /// Wraps a plotly plot; `description` is the `text/plain` line
    /// ("Learning curves: 3 runs, 10 epochs").
    pub fn new(plot: Plot, description: impl Into<String>) -> Figure {
        Figure {
            plot,
            description: description.into(),
        }
    }

    /// The plotly plot (traces, layout, frames).
    pub fn plot(&self) -> &Plot {
        &self.plot
    }

    /// The plotly plot, to change its layout or add traces.
    pub fn plot_mut(&mut self) -> &mut Plot {
        &mut self.plot
    }

    /// The one-line description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The plotly JSON (`{"data": [...], "layout": {...}, "config": {...}, "frames": [...]}`)
    /// as a notebook stores it: floats rounded to [`SIGNIFICANT_DIGITS`]
    /// significant digits ([`crate::viz::rounding`]).
    pub fn to_json(&self) -> String {
        let json = self.plot.to_json();
        match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(mut v) => {
                round_floats(&mut v, SIGNIFICANT_DIGITS);
                v.to_string()
            }
            // plotly's own serializer wrote it; unreadable JSON is kept as is.
            Err(_) => json,
        }
    }

    /// The figure as an html fragment for a page that loads plotly.js
    /// somewhere (before or after it): a div with a fresh unique id and the
    /// script that draws into it. For pages, never for a notebook output.
    pub fn to_inline_html(&self) -> String {
        plotly_fragment(&self.to_json())
    }

    /// A standalone HTML document: plotly.js inlined, then the figure.
    pub fn to_html(&self) -> String {
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n{}\n</head>\n<body>\n{}\n</body>\n</html>\n",
            escape(&self.description),
            plotly_js_script(),
            self.to_inline_html()
        )
    }

    /// Writes [`Figure::to_html`] to `path` atomically (temp file, then
    /// rename): the file is complete or untouched.
    pub fn save_html(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        crate::atomic::write(path, self.to_html().as_bytes()).map_err(|e| match e {
            // The temporary file's error names the temporary; name the target.
            Error::Io { source, .. } => Error::io(path, source),
            other => other,
        })
    }

    /// Displays the figure in evcxr (the same as [`Show::evcxr_display`]).
    pub fn evcxr_display(&self) {
        self.bundle().print()
    }
}

impl Show for Figure {
    /// plotly JSON + the description; no html, no script.
    fn bundle(&self) -> MimeBundle {
        MimeBundle::plotly(self.to_json(), self.description.clone())
    }
    fn headline(&self) -> String {
        self.description.clone()
    }
}

impl std::fmt::Debug for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Figure({:?}, {} traces)",
            self.description,
            self.plot.data().len()
        )
    }
}

/// `<script type="text/javascript">plotly.min.js</script>`: plotly.js 3.0.1
/// as bundled by the plotly crate (without its MathJax script), for
/// standalone pages ([`Figure::to_html`]); never put into a notebook output.
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

/// A div id no other output of any process is likely to have: evcxr links
/// each cell separately (each with its own counter), so the time and the
/// process id go in too.
fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("nnlab-fig-{:x}-{nanos:x}-{n}", std::process::id())
}

/// JSON made safe inside `<script>`: `<`, `>`, `&`, U+2028 and U+2029 as
/// `\uXXXX` escapes (they only occur inside JSON strings, where the escape
/// means the same character), so no `</script>` can end the script early.
fn script_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The div and script drawing the plotly figure `json` (see the module doc;
/// `scripts/run_notebooks.py` writes the same for the reports).
/// The script polls for `window.Plotly` (every 50 ms, up to 60 s), so it
/// works whether plotly.js comes before or after it on the page.
pub fn plotly_fragment(json: &str) -> String {
    let id = unique_id();
    format!(
        r#"<div id="{id}" class="plotly-graph-div nnlab-figure" style="width:100%;"></div>
<script type="text/javascript">
(function () {{
  var id = "{id}";
  var fig = {fig};
  var waited = 0;
  function draw() {{
    var div = document.getElementById(id);
    if (div && window.Plotly) {{
      window.Plotly.newPlot(div, fig.data || [], fig.layout || {{}}, fig.config || {{}}).then(function (gd) {{
        if (fig.frames && fig.frames.length) {{ return window.Plotly.addFrames(gd, fig.frames); }}
      }});
    }} else if (waited < 60000) {{
      waited += 50;
      setTimeout(draw, 50);
    }} else if (div) {{
      div.textContent = "plotly.js is not on this page: this figure needs a page that loads plotly.js " +
        "(Figure::to_html / save_html, or the reports of scripts/report).";
    }}
  }}
  draw();
}})();
</script>"#,
        fig = script_json(json)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotly::layout::Frame;
    use plotly::{Layout, Scatter, Traces};

    fn scatter(title: &str) -> Figure {
        let mut plot = Plot::new();
        plot.add_trace(Scatter::new(vec![1, 2, 3], vec![2.0, 1.0, 3.0]).name("loss"));
        plot.set_layout(Layout::new().title(title));
        Figure::new(plot, "a scatter")
    }

    #[test]
    fn bundle_has_plotly_json_and_text_only() -> crate::TestResult {
        let fig = scatter("t");
        let b = fig.bundle();
        let json: serde_json::Value = serde_json::from_str(
            b.plotly_json
                .as_deref()
                .ok_or("None from b.plotly_json.as_deref()")?,
        )?;
        assert_eq!(json["data"][0]["name"], "loss");
        assert_eq!(json["data"][0]["y"], serde_json::json!([2.0, 1.0, 3.0]));
        assert_eq!(json["layout"]["title"]["text"], "t");
        assert!(b.html.is_none(), "no html in a figure's notebook output");
        assert_eq!(b.text, "a scatter");
        let r = b.render();
        assert!(!r.contains("<script") && !r.contains("plotly.js v"));
        let mimes: Vec<&str> = r
            .lines()
            .filter_map(|l| l.strip_prefix("EVCXR_BEGIN_CONTENT "))
            .collect();
        assert_eq!(mimes, ["application/vnd.plotly.v1+json", "text/plain"]);
        // Two html fragments of one figure draw into two different divs.
        let id = |h: &str| h.split('"').nth(1).unwrap().to_string();
        assert_ne!(id(&fig.to_inline_html()), id(&fig.to_inline_html()));
        Ok(())
    }

    #[test]
    fn json_floats_are_rounded_in_one_place() {
        let mut plot = Plot::new();
        plot.add_trace(Scatter::new(vec![1, 2], vec![1.0 / 3.0, 0.1f32 as f64]));
        let fig = Figure::new(plot, "rounded");
        let json = fig.to_json();
        assert!(json.contains("\"y\":[0.33333,0.1]"), "{json}");
        assert!(json.contains("\"x\":[1,2]"), "{json}");
        assert_eq!(fig.bundle().plotly_json.as_deref(), Some(json.as_str()));
    }

    #[test]
    fn frames_go_into_the_json_and_the_page_script_adds_them() -> crate::TestResult {
        let mut fig = scatter("animated");
        let mut traces = Traces::new();
        traces.push(Scatter::new(vec![1, 2, 3], vec![0.0, 0.5, 1.0]));
        fig.plot_mut()
            .add_frame(Frame::new().name("step 1").data(traces));
        let b = fig.bundle();
        let json: serde_json::Value = serde_json::from_str(
            b.plotly_json
                .as_deref()
                .ok_or("None from b.plotly_json.as_deref()")?,
        )?;
        assert_eq!(json["frames"][0]["name"], "step 1");
        let html = fig.to_inline_html();
        assert!(
            html.contains("\"name\":\"step 1\"")
                && html.contains("Plotly.addFrames(gd, fig.frames)")
        );
        Ok(())
    }

    #[test]
    fn text_cannot_close_the_script() -> crate::TestResult {
        let fig = scatter("</script><script>alert(1)</script> & \u{2028}");
        let html = fig.to_inline_html();
        assert_eq!(html.matches("</script>").count(), 1, "{html}");
        assert!(html.contains(
            r"\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e \u0026 \u2028"
        ));
        // Still the same JSON once unescaped by a JSON parser.
        let start = html
            .find("var fig = ")
            .ok_or("None from html.find(\"var fig = \")")?
            + "var fig = ".len();
        let end = start
            + html[start..]
                .find(";\n")
                .ok_or("None from html[start..].find(\";\\n\")")?;
        let v: serde_json::Value = serde_json::from_str(&html[start..end])?;
        assert_eq!(
            v["layout"]["title"]["text"],
            "</script><script>alert(1)</script> & \u{2028}"
        );
        Ok(())
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
    fn standalone_html_inlines_plotly_once_and_loads_nothing() {
        let html = scatter("t").to_html();
        assert!(html.starts_with("<!doctype html>") && html.ends_with("</html>\n"));
        assert_eq!(html.matches("plotly.js v3.0.1").count(), 1);
        assert!(!html.contains("<script src"), "no external scripts");
        assert!(html.contains("<title>a scatter</title>"));
    }
}
