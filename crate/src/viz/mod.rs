//! Charts as values: every function returns a [`Figure`] (a plotly plot plus a
//! one-line description) that displays itself in a notebook and saves as a
//! standalone offline HTML file.
//!
//! ```text
//! History ─► curves::learning_curves ─► Figure ─► notebook (plotly JSON + one text line)
//!                                              └► Figure::save_html("report.html")
//! ```

pub mod combine;
pub mod confusion;
pub mod curves;
pub mod figure;
pub mod images;
pub mod rounding;
pub mod stack;
pub mod style;
pub mod trajectory;

pub use figure::Figure;
pub use stack::{stack, Stack};
