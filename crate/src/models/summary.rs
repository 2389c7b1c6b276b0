//! `Model::summary()`: torchinfo's table (`torchinfo.summary(model, (1, *input))`,
//! torchinfo 1.8 defaults) as a value: text, polars DataFrame, HTML, JSON.
//!
//! ```text
//! ==========================================================================================
//! Layer (type:depth-idx)                   Output Shape              Param #
//! ==========================================================================================
//! BasicCNN                                 [1, 10]                   --
//! ├─Sequential: 1-1                        [1, 32, 7, 7]             --
//! │    └─Conv2d: 2-1                       [1, 16, 28, 28]           160
//! ...
//! Total params: 206,922
//! Trainable params: 206,922
//! Non-trainable params: 0
//! Total mult-adds (M): 1.24
//! ==========================================================================================
//! Input size (MB): 0.00
//! Forward/backward pass size (MB): 0.15
//! Params size (MB): 0.83
//! Estimated Total Size (MB): 0.98
//! ```
//!
//! How torchinfo counts (and so do we), for batch 1: a module path `features.0`
//! puts `Conv2d` under a `Sequential` row; mult-adds of a leaf = `numel(weight
//! or bias) · B` (Conv: `· B·H'·W'`), parameters named otherwise (hw2's `W`)
//! count 0; forward/backward size = `2 · Σ bytes(output)` over the leaves that
//! have parameters; params size = bytes of the parameters of the layers that
//! run (a registered but unused module's parameters count in the totals only,
//! shown on the first row); MB = 10⁶ bytes.
//!
//! ```
//! let s = nnlab::models::zoo::build("hw3/BasicCNN").unwrap().summary().unwrap();
//! assert_eq!(s.total_params, 206_922);
//! assert!(s.to_string().contains("│    └─Conv2d: 2-1                       [1, 16, 28, 28]           160"));
//! ```

use super::model::Model;
use crate::display::{MimeBundle, Show};
use crate::Result;
use polars::prelude::{Column, DataFrame, NamedFrom, Series};
use serde::Serialize;

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SummaryRow {
    /// `Conv2d: 2-1` (the first row: the class name).
    pub layer: String,
    /// 0 for the model, 1 for its children, ...
    pub depth: usize,
    /// State-dict path (`features.0`), empty for the model row.
    pub path: String,
    /// Output shape for a batch of 1.
    pub output_shape: Vec<usize>,
    /// Parameters shown in `Param #` (`None` → `--`).
    pub params: Option<usize>,
    /// A module called a second time: torchinfo prints `(recursive)`.
    pub recursive: bool,
    /// Multiply-adds of this row (leaves only).
    pub mult_adds: u64,
}

/// The summary: see the module doc.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub model: String,
    pub class_name: String,
    /// The input given to the forward pass: `[1, *input_shape]`.
    pub input_size: Vec<usize>,
    pub rows: Vec<SummaryRow>,
    pub total_params: usize,
    pub trainable_params: usize,
    pub non_trainable_params: usize,
    pub total_mult_adds: u64,
    pub input_size_mb: f64,
    pub forward_backward_pass_size_mb: f64,
    pub params_size_mb: f64,
    pub estimated_total_size_mb: f64,
}

const NAME_WIDTH: usize = 40;
const COL_WIDTH: usize = 25;

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn shape_str(s: &[usize]) -> String {
    if s.is_empty() {
        return "--".into();
    }
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn tree_prefix(depth: usize) -> String {
    match depth {
        0 => String::new(),
        1 => "├─".into(),
        d => "│    ".repeat(d - 1) + "└─",
    }
}

/// torchinfo's `format_output_num` with units M: `1.24`, or `3` when whole.
fn mega(n: u64) -> String {
    let v = n as f64 / 1e6;
    if v.fract() == 0.0 {
        format!("{}", v as u64)
    } else {
        format!("{v:.2}")
    }
}

impl SummaryRow {
    fn params_str(&self) -> String {
        if self.recursive && self.params.unwrap_or(0) > 0 {
            return "(recursive)".into();
        }
        match self.params {
            Some(n) if n > 0 => thousands(n),
            _ => "--".into(),
        }
    }
    fn title(&self) -> String {
        format!("{}{}", tree_prefix(self.depth), self.layer)
    }
}

impl Model {
    /// The torchinfo-style summary for a batch of 1 (see [`Summary`]).
    pub fn summary(&self) -> Result<Summary> {
        let shapes = self.out_shapes()?;
        let entries = self.entries();
        let elem = self.dtype().size_in_bytes();
        let mut rows = vec![SummaryRow {
            layer: self.class_name().to_string(),
            depth: 0,
            path: String::new(),
            output_shape: batch1(
                shapes
                    .last()
                    .map(|v| v.as_slice())
                    .unwrap_or(self.input_shape()),
            ),
            params: None,
            recursive: false,
            mult_adds: 0,
        }];
        let mut idx_at_depth: Vec<usize> = vec![0; 8];
        let mut open: Vec<String> = Vec::new(); // containers we are inside
        let mut container_rows: Vec<usize> = Vec::new();
        let mut seen = vec![false; entries.len()];
        let (mut mult_adds, mut fwd_bytes, mut param_bytes) = (0u64, 0u64, 0u64);
        for (step, &i) in self.forward_order().iter().enumerate() {
            let e = &entries[i];
            if !e.module {
                continue; // functional call: torch registers nothing, torchinfo shows nothing
            }
            let parts: Vec<&str> = e.path.split('.').collect();
            let parents: Vec<String> = (1..parts.len()).map(|k| parts[..k].join(".")).collect();
            // close containers we left, open the new ones
            let common = open
                .iter()
                .zip(&parents)
                .take_while(|(a, b)| a == b)
                .count();
            open.truncate(common);
            container_rows.truncate(common);
            for p in &parents[common..] {
                let depth = open.len() + 1;
                bump(&mut idx_at_depth, depth);
                rows.push(SummaryRow {
                    layer: format!("Sequential: {depth}-{}", idx_at_depth[depth]),
                    depth,
                    path: p.clone(),
                    output_shape: Vec::new(),
                    params: None,
                    recursive: false,
                    mult_adds: 0,
                });
                open.push(p.clone());
                container_rows.push(rows.len() - 1);
            }
            let out = batch1(&shapes[step]);
            for &r in &container_rows {
                rows[r].output_shape = out.clone();
            }
            let depth = open.len() + 1;
            bump(&mut idx_at_depth, depth);
            let params = e.layer.params();
            let n: usize = params.iter().map(|(_, v)| v.elem_count()).sum();
            let conv = e.type_name.contains("Conv");
            let spatial: u64 = out.iter().skip(2).map(|&d| d as u64).product();
            let macs: u64 = params
                .iter()
                .filter(|(name, _)| *name == "weight" || *name == "bias")
                .map(|(_, v)| v.elem_count() as u64 * if conv { spatial } else { 1 })
                .sum();
            mult_adds += macs;
            let out_numel: u64 = out.iter().map(|&d| d as u64).product();
            if n > 0 {
                fwd_bytes += 2 * out_numel * elem as u64;
            }
            if !seen[i] {
                param_bytes += (n * elem) as u64;
            }
            rows.push(SummaryRow {
                layer: format!("{}: {depth}-{}", e.type_name, idx_at_depth[depth]),
                depth,
                path: e.path.clone(),
                output_shape: out,
                params: Some(n),
                recursive: seen[i],
                mult_adds: macs,
            });
            seen[i] = true;
        }
        // parameters of registered modules that never run: on the model row
        let unused: usize = entries
            .iter()
            .enumerate()
            .filter(|(i, _)| !seen[*i])
            .map(|(_, e)| e.layer.num_params())
            .sum();
        if unused > 0 {
            rows[0].params = Some(unused);
        }
        let total = self.num_params();
        let input_size = batch1(self.input_shape());
        let input_bytes = input_size.iter().product::<usize>() as f64 * elem as f64;
        let mb = |b: f64| b / 1e6;
        Ok(Summary {
            model: self.name().to_string(),
            class_name: self.class_name().to_string(),
            input_size,
            rows,
            total_params: total,
            trainable_params: total,
            non_trainable_params: 0,
            total_mult_adds: mult_adds,
            input_size_mb: mb(input_bytes),
            forward_backward_pass_size_mb: mb(fwd_bytes as f64),
            params_size_mb: mb(param_bytes as f64),
            estimated_total_size_mb: mb(input_bytes + fwd_bytes as f64 + param_bytes as f64),
        })
    }
}

fn bump(idx: &mut Vec<usize>, depth: usize) {
    if idx.len() <= depth {
        idx.resize(depth + 1, 0);
    }
    idx[depth] += 1;
}

fn batch1(s: &[usize]) -> Vec<usize> {
    let mut v = vec![1];
    v.extend_from_slice(s);
    v
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Summary {
    fn name_width(&self) -> usize {
        // torchinfo: the longest `depth·5 + 1 + len(title)`, rounded up to 5
        let max = self
            .rows
            .iter()
            .map(|r| r.depth * 5 + 1 + r.layer.chars().count())
            .max()
            .unwrap_or(0);
        if max >= NAME_WIDTH {
            max.div_ceil(5) * 5
        } else {
            NAME_WIDTH
        }
    }

    /// The footer lines (`Total params: 206,922`, ...), without dividers.
    pub fn totals(&self) -> Vec<(String, String)> {
        vec![
            ("Total params".into(), thousands(self.total_params)),
            ("Trainable params".into(), thousands(self.trainable_params)),
            (
                "Non-trainable params".into(),
                thousands(self.non_trainable_params),
            ),
            ("Total mult-adds (M)".into(), mega(self.total_mult_adds)),
            (
                "Input size (MB)".into(),
                format!("{:.2}", self.input_size_mb),
            ),
            (
                "Forward/backward pass size (MB)".into(),
                format!("{:.2}", self.forward_backward_pass_size_mb),
            ),
            (
                "Params size (MB)".into(),
                format!("{:.2}", self.params_size_mb),
            ),
            (
                "Estimated Total Size (MB)".into(),
                format!("{:.2}", self.estimated_total_size_mb),
            ),
        ]
    }

    /// The table as a DataFrame: `Layer (type:depth-idx)`, `Output Shape`,
    /// `Param #` (null where torchinfo prints `--`).
    pub fn to_dataframe(&self) -> Result<DataFrame> {
        let names: Vec<String> = self.rows.iter().map(|r| r.title()).collect();
        let shapes: Vec<String> = self
            .rows
            .iter()
            .map(|r| shape_str(&r.output_shape))
            .collect();
        let params: Vec<Option<u64>> = self
            .rows
            .iter()
            .map(|r| match r.params {
                Some(n) if n > 0 && !r.recursive => Some(n as u64),
                _ => None,
            })
            .collect();
        let cols: Vec<Column> = vec![
            Series::new("Layer (type:depth-idx)".into(), names).into(),
            Series::new("Output Shape".into(), shapes).into(),
            Series::new("Param #".into(), params).into(),
        ];
        Ok(DataFrame::new(self.rows.len(), cols)?)
    }

    /// An HTML table (monospace tree names) followed by the totals.
    pub fn to_html(&self) -> String {
        let mut s = String::from("<div class=\"nnlab-summary\">\n<table>\n<thead><tr>");
        for h in ["Layer (type:depth-idx)", "Output Shape", "Param #"] {
            s += &format!("<th style=\"text-align:left\">{h}</th>");
        }
        s += "</tr></thead>\n<tbody>\n";
        for r in &self.rows {
            s += &format!(
                "<tr><td style=\"text-align:left;font-family:monospace;white-space:pre\">{}</td><td style=\"text-align:left\">{}</td><td style=\"text-align:right\">{}</td></tr>\n",
                html_escape(&r.title()),
                html_escape(&shape_str(&r.output_shape)),
                html_escape(&r.params_str())
            );
        }
        s += "</tbody>\n</table>\n<table>\n";
        for (k, v) in self.totals() {
            s += &format!("<tr><td style=\"text-align:left\">{}</td><td style=\"text-align:right\">{}</td></tr>\n", html_escape(&k), v);
        }
        s + "</table>\n</div>"
    }

    /// The summary as JSON (`total_params`, `rows`, ...).
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self.name_width();
        let divider = "=".repeat(w + 2 * COL_WIDTH);
        let row = |a: &str, b: &str, c: &str| {
            format!("{a:<w$} {b:<cw$} {c:<cw$}", cw = COL_WIDTH)
                .trim_end()
                .to_string()
        };
        writeln!(f, "{divider}")?;
        writeln!(
            f,
            "{}",
            row("Layer (type:depth-idx)", "Output Shape", "Param #")
        )?;
        writeln!(f, "{divider}")?;
        for r in &self.rows {
            writeln!(
                f,
                "{}",
                row(&r.title(), &shape_str(&r.output_shape), &r.params_str())
            )?;
        }
        writeln!(f, "{divider}")?;
        let totals = self.totals();
        for (k, v) in &totals[..4] {
            writeln!(f, "{k}: {v}")?;
        }
        writeln!(f, "{divider}")?;
        for (k, v) in &totals[4..] {
            writeln!(f, "{k}: {v}")?;
        }
        write!(f, "{divider}")
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
