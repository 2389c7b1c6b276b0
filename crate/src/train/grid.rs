//! Experiment grids (hw2's BN × lr × optimizer): run a closure on every
//! combination of parameter values and collect one row per run — the
//! parameters, the final and best numbers of its [`History`], the seconds.
//!
//! ```
//! use nnlab::train::grid::Grid;
//! use nnlab::train::history::{EpochRecord, History};
//! let grid = Grid::new().axis("bn", [true, false]).axis("lr", [1e-3, 1e-2]);
//! assert_eq!(grid.combinations().len(), 4);
//! let results = grid.run(|p| {
//!     let mut h = History::new("run");
//!     let loss = if p.bool("bn")? { 0.5 } else { 0.7 } * p.f64("lr")? * 100.0;
//!     h.push(EpochRecord { epoch: 1, train_loss: loss, val_loss: Some(loss), lr: p.f64("lr")?,
//!                          seconds: 0.0, train_metrics: vec![], val_metrics: vec![] });
//!     Ok(h)
//! }).unwrap();
//! let df = results.to_dataframe_sorted("val_loss_final", true).unwrap();
//! assert_eq!(df.height(), 4);
//! ```

use crate::display::{table_bundle, MimeBundle, Show};
use crate::train::history::{minimize, History};
use crate::{Error, Result};
use polars::prelude::*;
use std::fmt;
use std::path::Path;
use std::time::Instant;

/// One parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Bool(bool),
    Num(f64),
    Text(String),
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Bool(b) => write!(f, "{b}"),
            Param::Num(x) => write!(f, "{x}"),
            Param::Text(s) => write!(f, "{s}"),
        }
    }
}

impl From<bool> for Param {
    fn from(b: bool) -> Self {
        Param::Bool(b)
    }
}
impl From<f64> for Param {
    fn from(x: f64) -> Self {
        Param::Num(x)
    }
}
impl From<usize> for Param {
    fn from(x: usize) -> Self {
        Param::Num(x as f64)
    }
}
impl From<i32> for Param {
    fn from(x: i32) -> Self {
        Param::Num(x as f64)
    }
}
impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Param::Text(s.to_string())
    }
}
impl From<String> for Param {
    fn from(s: String) -> Self {
        Param::Text(s)
    }
}

/// The values of one combination, looked up by axis name.
#[derive(Clone, Debug, PartialEq)]
pub struct Params(pub Vec<(String, Param)>);

impl Params {
    fn get(&self, name: &str) -> Result<&Param> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                let names: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
                Error::config(
                    name,
                    format!("no such grid axis; expected one of {}", names.join(", ")),
                )
            })
    }
    fn wrong(name: &str, v: &Param, expected: &str) -> Error {
        Error::config(name, format!("grid value `{v}` is not {expected}"))
    }
    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name)? {
            Param::Bool(b) => Ok(*b),
            v => Err(Self::wrong(name, v, "a bool")),
        }
    }
    pub fn f64(&self, name: &str) -> Result<f64> {
        match self.get(name)? {
            Param::Num(x) => Ok(*x),
            v => Err(Self::wrong(name, v, "a number")),
        }
    }
    pub fn usize(&self, name: &str) -> Result<usize> {
        let x = self.f64(name)?;
        if x < 0.0 || x.fract() != 0.0 {
            return Err(Error::config(
                name,
                format!("grid value {x} is not a non-negative integer"),
            ));
        }
        Ok(x as usize)
    }
    pub fn str(&self, name: &str) -> Result<&str> {
        match self.get(name)? {
            Param::Text(s) => Ok(s),
            v => Err(Self::wrong(name, v, "a string")),
        }
    }
    /// `bn=true, lr=0.001` — a run label.
    pub fn label(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Axes of a grid, combined in order (the last axis varies fastest).
#[derive(Clone, Debug, Default)]
pub struct Grid {
    axes: Vec<(String, Vec<Param>)>,
}

impl Grid {
    pub fn new() -> Self {
        Grid::default()
    }

    pub fn axis<I, V>(mut self, name: &str, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Param>,
    {
        self.axes.push((
            name.to_string(),
            values.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Every combination, the first axis varying slowest.
    pub fn combinations(&self) -> Vec<Params> {
        let mut out = vec![Params(Vec::new())];
        for (name, values) in &self.axes {
            out = out
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut q = p.0.clone();
                        q.push((name.clone(), v.clone()));
                        Params(q)
                    })
                })
                .collect();
        }
        out
    }

    /// Runs `f` on every combination in order; the first error stops the grid
    /// and names the combination.
    pub fn run(&self, mut f: impl FnMut(&Params) -> Result<History>) -> Result<GridResults> {
        for (name, values) in &self.axes {
            if values.is_empty() {
                return Err(Error::config(name, "grid axis has no values"));
            }
        }
        let mut runs = Vec::new();
        for p in self.combinations() {
            let t = Instant::now();
            let h = f(&p)
                .map_err(|e| Error::config(format!("grid run {}", p.label()), e.to_string()))?;
            runs.push(GridRun {
                params: p,
                history: h,
                seconds: t.elapsed().as_secs_f64(),
            });
        }
        Ok(GridResults { runs })
    }
}

/// One finished run of a grid.
#[derive(Clone, Debug)]
pub struct GridRun {
    pub params: Params,
    pub history: History,
    pub seconds: f64,
}

/// Every run of a grid.
#[derive(Clone, Debug)]
pub struct GridResults {
    pub runs: Vec<GridRun>,
}

impl GridResults {
    /// One row per run: the parameters, then `<col>_final` and `<col>_best`
    /// (min for losses, max otherwise) of every history column, epochs, seconds.
    pub fn to_dataframe(&self) -> Result<DataFrame> {
        let n = self.runs.len();
        let mut cols: Vec<Column> = Vec::new();
        if let Some(first) = self.runs.first() {
            for (name, v) in &first.params.0 {
                let col = match v {
                    Param::Bool(_) => Column::new(
                        name.as_str().into(),
                        self.runs
                            .iter()
                            .map(|r| r.params.bool(name))
                            .collect::<Result<Vec<_>>>()?,
                    ),
                    Param::Num(_) => Column::new(
                        name.as_str().into(),
                        self.runs
                            .iter()
                            .map(|r| r.params.f64(name))
                            .collect::<Result<Vec<_>>>()?,
                    ),
                    Param::Text(_) => Column::new(
                        name.as_str().into(),
                        self.runs
                            .iter()
                            .map(|r| r.params.str(name).map(str::to_string))
                            .collect::<Result<Vec<_>>>()?,
                    ),
                };
                cols.push(col);
            }
            let metrics: Vec<String> = first
                .history
                .columns()
                .into_iter()
                .filter(|c| !matches!(c.as_str(), "epoch" | "lr" | "seconds"))
                .collect();
            for m in &metrics {
                let lower = minimize(m);
                let mut finals = Vec::with_capacity(n);
                let mut bests = Vec::with_capacity(n);
                for r in &self.runs {
                    let v = r.history.column(m)?;
                    finals.push(v.last().copied().unwrap_or(f64::NAN));
                    let best = v.iter().copied().filter(|x| !x.is_nan()).reduce(|a, b| {
                        if (b < a) == lower {
                            b
                        } else {
                            a
                        }
                    });
                    bests.push(best.unwrap_or(f64::NAN));
                }
                cols.push(Column::new(format!("{m}_final").into(), finals));
                cols.push(Column::new(format!("{m}_best").into(), bests));
            }
        }
        cols.push(Column::new(
            "epochs".into(),
            self.runs
                .iter()
                .map(|r| r.history.len() as u32)
                .collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            "seconds".into(),
            self.runs.iter().map(|r| r.seconds).collect::<Vec<_>>(),
        ));
        Ok(DataFrame::new(n, cols)?)
    }

    /// The table sorted by `column` (ascending when `ascending`).
    pub fn to_dataframe_sorted(&self, column: &str, ascending: bool) -> Result<DataFrame> {
        let df = self.to_dataframe()?;
        if df.column(column).is_err() {
            let names: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|s| s.to_string())
                .collect();
            return Err(Error::config(
                "sort column",
                format!(
                    "`{column}` is not a column; expected one of {}",
                    names.join(", ")
                ),
            ));
        }
        Ok(df.sort(
            [column],
            SortMultipleOptions::default().with_order_descending(!ascending),
        )?)
    }

    /// The run with the best value of `column` — the smallest of a loss, the
    /// largest of anything else ([`minimize`]), the first of equal ones: a
    /// history column or `<col>_final` (its last epoch), or `<col>_best` (its
    /// best epoch), as in the table.
    pub fn best(&self, column: &str) -> Result<&GridRun> {
        // `val_loss` or `val_loss_final`: the last epoch's value; `val_loss_best`:
        // the best epoch's (min for losses, max otherwise), as in the table.
        let (name, best_epoch) = match (column.strip_suffix("_final"), column.strip_suffix("_best"))
        {
            (Some(n), _) => (n, false),
            (_, Some(n)) => (n, true),
            _ => (column, false),
        };
        let lower_wins = minimize(name);
        let mut best: Option<(&GridRun, f64)> = None;
        for r in &self.runs {
            let values = r.history.column(name)?;
            let v = if best_epoch {
                let lower = minimize(name);
                values
                    .iter()
                    .copied()
                    .filter(|x| !x.is_nan())
                    .reduce(|a, b| if (b < a) == lower { b } else { a })
                    .unwrap_or(f64::NAN)
            } else {
                values.last().copied().unwrap_or(f64::NAN)
            };
            if v.is_nan() {
                continue;
            }
            if best.is_none_or(|(_, b)| if lower_wins { v < b } else { v > b }) {
                best = Some((r, v));
            }
        }
        best.map(|(r, _)| r)
            .ok_or_else(|| Error::config(column, "no run has a value for this column"))
    }

    /// The history of every run, in order (for `curves::compare`).
    pub fn histories(&self) -> Vec<History> {
        self.runs.iter().map(|r| r.history.clone()).collect()
    }

    /// Writes the table as CSV (temp file, then rename; the folder is created).
    pub fn to_csv(&self, path: impl AsRef<Path>, sort_by: Option<(&str, bool)>) -> Result<()> {
        let mut df = match sort_by {
            Some((c, asc)) => self.to_dataframe_sorted(c, asc)?,
            None => self.to_dataframe()?,
        };
        crate::table::write_csv(&mut df, path.as_ref())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::history::EpochRecord;

    fn hist(losses: &[f64]) -> History {
        let mut h = History::new("r");
        for (i, &l) in losses.iter().enumerate() {
            h.push(EpochRecord {
                epoch: i + 1,
                train_loss: l,
                val_loss: Some(l + 0.05),
                train_metrics: vec![],
                val_metrics: vec![("accuracy".into(), 1.0 - l)],
                lr: 0.1,
                seconds: 0.0,
            });
        }
        h
    }

    #[test]
    fn grid_rows_sort_and_best() -> crate::TestResult {
        let g = Grid::new()
            .axis("bn", [true, false])
            .axis("lr", [1e-3, 1e-2])
            .axis("optimizer", ["adam", "momentum"]);
        let combos = g.combinations();
        assert_eq!(combos.len(), 8);
        assert_eq!(combos[1].label(), "bn=true, lr=0.001, optimizer=momentum");
        let res = g.run(|p| {
            let base = if p.bool("bn")? { 0.3 } else { 0.6 }
                + if p.str("optimizer")? == "adam" {
                    0.0
                } else {
                    0.1
                };
            Ok(hist(&[base + 0.2, base, base + p.f64("lr")?]))
        })?;
        let df = res.to_dataframe_sorted("val_loss_final", true)?;
        assert_eq!(df.height(), 8);
        assert_eq!(res.histories().len(), 8);
        let first = df
            .column("val_loss_final")?
            .f64()?
            .get(0)
            .ok_or("empty or null column")?;
        assert!((first - 0.351).abs() < 1e-12, "{first}");
        let best = df
            .column("val_loss_best")?
            .f64()?
            .get(0)
            .ok_or("empty or null column")?;
        assert!((best - 0.35).abs() < 1e-12);
        let b = res.best("val_loss")?;
        assert_eq!(b.params.label(), "bn=true, lr=0.001, optimizer=adam");
        // The table's names work too: `_final` is the last epoch, `_best` the best one.
        assert_eq!(res.best("val_loss_final")?.params, b.params);
        assert_eq!(res.best("val_loss_best")?.params, b.params);
        // a metric: the largest value wins
        let most_accurate = res.best("val_accuracy_best")?;
        assert_eq!(
            most_accurate.params.label(),
            "bn=true, lr=0.001, optimizer=adam"
        );
        assert!(res
            .best("val_f1_best")
            .unwrap_err()
            .to_string()
            .contains("val_f1"));
        assert!(res
            .to_dataframe_sorted("nope", true)
            .unwrap_err()
            .to_string()
            .contains("`nope`"));
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("tables").join("grid.csv"); // the folder is created
        res.to_csv(&path, Some(("val_loss_final", true)))?;
        let text = std::fs::read_to_string(&path)?;
        assert!(
            text.starts_with("bn,lr,optimizer,train_loss_final"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 9);
        Ok(())
    }

    #[test]
    fn errors_name_the_run_and_axis() {
        let g = Grid::new().axis("lr", [0.1]);
        let e = g
            .run(|p| p.bool("lr").map(|_| History::new("x")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("grid run lr=0.1") && e.contains("not a bool"),
            "{e}"
        );
        let e = Grid::new()
            .axis("lr", Vec::<f64>::new())
            .run(|_| Ok(History::new("x")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("lr") && e.contains("no values"), "{e}");
    }
}
