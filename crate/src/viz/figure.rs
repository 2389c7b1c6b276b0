//! [`Figure`]: one plotly plot and a one-line description of it.
//!
//! ```no_run
//! use nnlab::viz::Figure;
//! let fig = Figure::new(plotly::Plot::new(), "an empty chart");
//! assert_eq!(fig.description(), "an empty chart");
//! ```

use plotly::Plot;

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
        Figure { plot, description: description.into() }
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

    /// The plotly JSON (`{"data": [...], "layout": {...}, "frames": [...]}`).
    pub fn to_json(&self) -> String {
        self.plot.to_json()
    }
}
