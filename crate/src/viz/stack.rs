//! [`Stack`]: several results in one notebook output, top to bottom.
//!
//! evcxr keeps one rich output per cell, so a cell that wants a figure, a
//! table and a note returns one `Stack`. Its bundle is one `text/html` (each
//! figure drawn as in [`Figure`], plotly.js inlined by the first display of
//! the process, see [`crate::display`]) and a `text/plain` with one line per
//! item; no plotly JSON (one JSON can hold only one figure).
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
use crate::viz::figure::{plotly_fragment, Figure};

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

impl Show for Stack {
    /// One html with the items top to bottom, one text line per item.
    fn bundle(&self) -> MimeBundle {
        let mut html = String::from("<div class=\"nnlab-stack\">\n");
        let mut lines = Vec::with_capacity(self.items.len() + 1);
        let mut needs_js = false;
        if let Some(t) = &self.title {
            html += &format!("<h3 class=\"nnlab-stack-title\">{}</h3>\n", escape(t));
            lines.push(t.clone());
        }
        for item in &self.items {
            let (part, line) = match item {
                Item::Figure(f) => {
                    needs_js = true;
                    (f.to_inline_html(), f.description().to_string())
                }
                Item::Table(df) => (to_html(df, DEFAULT_MAX_ROWS), df.headline()),
                Item::Text(t) => (
                    format!(
                        "<p style=\"white-space:pre-wrap;margin:4px 0\">{}</p>",
                        escape(t)
                    ),
                    t.lines().next().unwrap_or("").to_string(),
                ),
                Item::Shown { bundle, line } => {
                    needs_js |= bundle.needs_plotly_js;
                    let part = match (&bundle.plotly_json, &bundle.html) {
                        // A figure is drawn again from its JSON: a fresh div id per display.
                        (Some(json), _) => plotly_fragment(json),
                        (None, Some(h)) => h.clone(),
                        (None, None) => format!("<pre>{}</pre>", escape(&bundle.text)),
                    };
                    needs_js |= bundle.plotly_json.is_some();
                    (part, line.clone())
                }
            };
            html += "<div class=\"nnlab-stack-item\" style=\"margin:8px 0\">\n";
            html += &part;
            html += "\n</div>\n";
            lines.push(line);
        }
        html += "</div>";
        MimeBundle {
            plotly_json: None,
            html: Some(html),
            text: lines.join("\n"),
            needs_plotly_js: needs_js,
        }
    }
    fn headline(&self) -> String {
        match &self.title {
            Some(t) => t.clone(),
            None => format!("stack of {} items", self.items.len()),
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
        Figure::new(plot, format!("figure {name}"))
    }

    #[test]
    fn items_in_order_one_text_line_each_and_no_json() {
        let df = df!("a" => [1i32, 2, 3]).unwrap();
        let s = Stack::new()
            .title("Results <1>")
            .figure(fig("f1"))
            .table(df.clone())
            .text("two\nlines & more")
            .show(&fig("f2"))
            .show(&df);
        let b = s.bundle();
        assert!(b.plotly_json.is_none() && b.needs_plotly_js);
        assert_eq!(
            b.text,
            "Results <1>\nfigure f1\ntable: 3 rows × 1 column\ntwo\nfigure f2\ntable: 3 rows × 1 column"
        );
        let html = b.html.unwrap();
        assert!(html.contains("<h3 class=\"nnlab-stack-title\">Results &lt;1&gt;</h3>"));
        let at = |needle: &str| {
            html.find(needle)
                .unwrap_or_else(|| panic!("{needle} missing"))
        };
        assert!(
            at("\"name\":\"f1\"") < at("3 rows × 1 column")
                && at("3 rows × 1 column") < at("two\nlines &amp; more")
        );
        assert!(at("two\nlines") < at("\"name\":\"f2\""));
        assert_eq!(html.matches("<div class=\"nnlab-stack-item\"").count(), 5);
        assert_eq!(html.matches("window.Plotly.newPlot").count(), 2);
        assert!(
            !html.contains("plotly.js v3.0.1"),
            "the bundle itself never inlines plotly.js"
        );
    }

    #[test]
    fn boxed_items_and_plain_text_values() {
        let s = stack(vec![
            Box::new(fig("a")),
            Box::new(crate::display::MimeBundle::text("x")),
        ]);
        assert_eq!(s.len(), 2);
        let b = s.bundle();
        assert_eq!(b.text, "figure a\nx");
        assert!(b.html.unwrap().contains("<pre>x</pre>"));
        let no_fig = Stack::new().text("only text").bundle();
        assert!(!no_fig.needs_plotly_js);
        // A figure shown twice gets a fresh div each time.
        let ids = |h: String| {
            h.match_indices("id=\"nnlab-fig-")
                .map(|(i, _)| h[i..i + 60].to_string())
                .collect::<Vec<_>>()
        };
        let s = Stack::new().show(&fig("c"));
        assert_ne!(ids(s.bundle().html.unwrap()), ids(s.bundle().html.unwrap()));
    }
}
