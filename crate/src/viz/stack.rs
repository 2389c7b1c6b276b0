//! [`Stack`]: several results in one notebook output, top to bottom.
//!
//! evcxr keeps one rich output per cell, and JupyterLab draws one MIME type
//! of an output and runs no script in an untrusted notebook, so a cell that
//! wants a figure, a table and a note returns one `Stack`, shown as:
//!
//! - **with figures**: ONE plotly figure (`application/vnd.plotly.v1+json`)
//!   holding every item top to bottom ([`crate::viz::combine`]): each figure
//!   in its own band with its own axes and legend, tables as their
//!   monospace text, notes as text; plus a `text/plain` with one line per
//!   item. No html.
//! - **without figures**: one `text/html` (tables and paragraphs, no script)
//!   and the same `text/plain`.
//!
//! ```
//! use nnlab::prelude::*; // Show, Figure, Stack, stack
//! use polars::prelude::*;
//! let df = df!("epoch" => [1u32, 2], "loss" => [0.5, 0.25]).unwrap();
//! let fig = Figure::new(plotly::Plot::new(), "an empty chart");
//! let s = Stack::new().title("Run 1").figure(fig.clone()).table(df.clone()).text("lr = 1e-3");
//! assert_eq!(s.bundle().text, "Run 1\nan empty chart\ntable: 2 rows × 2 columns\nlr = 1e-3");
//! let same = stack(vec![Box::new(fig), Box::new(df)]);
//! assert_eq!(same.len(), 2);
//! ```

use polars::prelude::DataFrame;

use crate::display::{MimeBundle, Show, DEFAULT_MAX_ROWS};
use crate::table::html::{escape, to_html};
use crate::viz::combine::{combine, Part};
use crate::viz::figure::Figure;
use crate::viz::rounding::{round_floats, SIGNIFICANT_DIGITS};

#[derive(Clone, Debug)]
enum Item {
    Figure(Box<Figure>),
    Table(DataFrame),
    Text(String),
    /// Any other [`Show`] value, captured when it was added.
    Shown {
        bundle: MimeBundle,
        line: String,
    },
}

/// Results shown as one output, in the order they were added.
#[derive(Clone, Debug, Default)]
pub struct Stack {
    title: Option<String>,
    items: Vec<Item>,
}

/// A stack of boxed results: `stack(vec![Box::new(fig), Box::new(df)])`.
pub fn stack(items: Vec<Box<dyn Show>>) -> Stack {
    items
        .iter()
        .fold(Stack::new(), |s, item| s.show(item.as_ref()))
}

impl Stack {
    /// An empty stack.
    pub fn new() -> Stack {
        Stack::default()
    }

    /// A heading above the items.
    pub fn title(mut self, title: impl Into<String>) -> Stack {
        self.title = Some(title.into());
        self
    }

    /// Adds a figure.
    pub fn figure(mut self, figure: Figure) -> Stack {
        self.items.push(Item::Figure(Box::new(figure)));
        self
    }

    /// Adds a table (at most [`DEFAULT_MAX_ROWS`] rows shown).
    pub fn table(mut self, df: DataFrame) -> Stack {
        self.items.push(Item::Table(df));
        self
    }

    /// Adds a paragraph of text (line breaks kept).
    pub fn text(mut self, text: impl Into<String>) -> Stack {
        self.items.push(Item::Text(text.into()));
        self
    }

    /// Adds anything that shows itself (a summary, a history, another stack…),
    /// as it is now.
    pub fn show(mut self, value: &dyn Show) -> Stack {
        self.items.push(Item::Shown {
            bundle: value.bundle(),
            line: value.headline(),
        });
        self
    }

    /// Number of items (the title not counted).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there is no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Displays the stack in evcxr (the same as [`Show::evcxr_display`]).
    pub fn evcxr_display(&self) {
        self.bundle().print()
    }
}

impl Stack {
    /// True when an item is a figure (so the stack shows as one plotly figure).
    fn has_figure(&self) -> bool {
        self.items.iter().any(|item| match item {
            Item::Figure(_) => true,
            Item::Shown { bundle, .. } => bundle.plotly_json.is_some(),
            _ => false,
        })
    }

    /// The text line of each item (title first).
    fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.title.iter().cloned().collect();
        for item in &self.items {
            lines.push(match item {
                Item::Figure(f) => f.description().to_string(),
                Item::Table(df) => df.headline(),
                Item::Text(t) => t.lines().next().unwrap_or("").to_string(),
                Item::Shown { line, .. } => line.clone(),
            });
        }
        lines
    }

    /// Every item as a part of one combined plotly figure.
    fn figure_bundle(&self) -> MimeBundle {
        let parse = |json: &str, line: &str| match serde_json::from_str::<serde_json::Value>(json) {
            Ok(v) => Part::Figure(v),
            Err(e) => Part::Note(format!("{line}: unreadable figure JSON ({e})")),
        };
        let parts: Vec<Part> = self
            .items
            .iter()
            .map(|item| match item {
                Item::Figure(f) => parse(&f.to_json(), f.description()),
                Item::Table(df) => Part::Preformatted {
                    caption: df.headline(),
                    text: format!("{df}"),
                },
                Item::Text(t) => Part::Note(t.clone()),
                Item::Shown { bundle, line } => match &bundle.plotly_json {
                    Some(json) => parse(json, line),
                    None => {
                        // A table-like value: its text, without the headline twice.
                        let text = bundle
                            .text
                            .strip_prefix(line.as_str())
                            .unwrap_or(&bundle.text);
                        Part::Preformatted {
                            caption: line.clone(),
                            text: text.trim_start_matches('\n').to_string(),
                        }
                    }
                },
            })
            .collect();
        let mut fig = combine(self.title.as_deref(), &parts);
        round_floats(&mut fig, SIGNIFICANT_DIGITS);
        MimeBundle::plotly(fig.to_string(), self.lines().join("\n"))
    }

    /// Tables and paragraphs as one html (no figure among the items).
    fn html_bundle(&self) -> MimeBundle {
        let mut html = String::from("<div class=\"nnlab-stack\">\n");
        if let Some(t) = &self.title {
            html += &format!("<h3 class=\"nnlab-stack-title\">{}</h3>\n", escape(t));
        }
        for item in &self.items {
            let part = match item {
                Item::Figure(f) => format!("<pre>{}</pre>", escape(f.description())),
                Item::Table(df) => to_html(df, DEFAULT_MAX_ROWS),
                Item::Text(t) => format!(
                    "<p style=\"white-space:pre-wrap;margin:4px 0\">{}</p>",
                    escape(t)
                ),
                Item::Shown { bundle, .. } => match &bundle.html {
                    Some(h) => h.clone(),
                    None => format!("<pre>{}</pre>", escape(&bundle.text)),
                },
            };
            html += "<div class=\"nnlab-stack-item\" style=\"margin:8px 0\">\n";
            html += &part;
            html += "\n</div>\n";
        }
        html += "</div>";
        MimeBundle::html(html, self.lines().join("\n"))
    }
}

impl Show for Stack {
    /// With a figure among the items: one combined plotly figure + one text
    /// line per item; otherwise one html + the same text.
    fn bundle(&self) -> MimeBundle {
        if self.has_figure() {
            self.figure_bundle()
        } else {
            self.html_bundle()
        }
    }
    fn headline(&self) -> String {
        match &self.title {
            Some(t) => t.clone(),
            None => format!("Сводка: частей {}", self.items.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    fn fig(name: &str) -> Figure {
        let mut plot = plotly::Plot::new();
        plot.add_trace(plotly::Scatter::new(vec![0, 1], vec![1.0, 0.0]).name(name));
        plot.set_layout(
            plotly::Layout::new()
                .title(format!("title {name}"))
                .height(300),
        );
        Figure::new(plot, format!("figure {name}"))
    }

    #[test]
    fn figures_tables_and_text_become_one_plotly_figure() -> crate::TestResult {
        let df = df!("a" => [1i32, 2, 3])?;
        let s = Stack::new()
            .title("Results <1>")
            .figure(fig("f1"))
            .table(df.clone())
            .text("two\nlines & more")
            .show(&fig("f2"))
            .show(&df);
        let b = s.bundle();
        assert!(
            b.html.is_none(),
            "no html: JupyterLab would draw only one of the two"
        );
        assert_eq!(
            b.text,
            "Results <1>\nfigure f1\ntable: 3 rows × 1 column\ntwo\nfigure f2\ntable: 3 rows × 1 column"
        );
        assert!(!b.render().contains("<script"));
        let v: serde_json::Value = serde_json::from_str(
            b.plotly_json
                .as_deref()
                .ok_or("None from b.plotly_json.as_deref()")?,
        )?;
        assert_eq!(v["layout"]["title"]["text"], "Results <1>");
        let data = v["data"]
            .as_array()
            .ok_or("None from v[\"data\"].as_array()")?;
        assert_eq!(data.len(), 2);
        assert_eq!(
            (data[0]["name"].as_str(), data[0]["xaxis"].as_str()),
            (Some("f1"), Some("x"))
        );
        assert_eq!(
            (data[1]["name"].as_str(), data[1]["yaxis"].as_str()),
            (Some("f2"), Some("y2"))
        );
        let texts: Vec<String> = v["layout"]["annotations"]
            .as_array()
            .ok_or("expected a JSON array")?
            .iter()
            .map(|a| a["text"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(texts.len(), 5, "{texts:?}");
        assert_eq!(texts[0], "title f1");
        assert!(
            texts[1].starts_with("<b>table: 3 rows × 1 column</b><br>"),
            "{}",
            texts[1]
        );
        assert_eq!(texts[2], "two<br>lines &amp; more");
        assert_eq!(texts[3], "title f2");
        // f1's band is above f2's.
        let top = |k: &str| v["layout"][k]["domain"][1].as_f64().unwrap();
        assert!(top("yaxis") > top("yaxis2"));
        Ok(())
    }

    #[test]
    fn without_figures_plain_html_and_boxed_items() -> crate::TestResult {
        let df = df!("a" => [1i32, 2, 3])?;
        let s = Stack::new()
            .title("Only <tables>")
            .table(df)
            .text("note & more");
        let b = s.bundle();
        assert!(b.plotly_json.is_none());
        let html = b.html.ok_or("None from b.html")?;
        assert!(html.contains("<h3 class=\"nnlab-stack-title\">Only &lt;tables&gt;</h3>"));
        assert!(html.contains("3 rows × 1 column") && html.contains("note &amp; more"));
        assert_eq!(html.matches("<div class=\"nnlab-stack-item\"").count(), 2);
        assert!(!html.contains("<script"));
        let s = stack(vec![
            Box::new(fig("a")),
            Box::new(crate::display::MimeBundle::text("x")),
        ]);
        assert_eq!(s.len(), 2);
        let b = s.bundle();
        assert_eq!(b.text, "figure a\nx");
        assert!(b
            .plotly_json
            .ok_or("None from b.plotly_json")?
            .contains("<b>x</b>"));
        assert_eq!(Stack::new().text("only text").bundle().text, "only text");
        Ok(())
    }
}
