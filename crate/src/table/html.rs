//! A polars DataFrame as an HTML table for notebooks and exported reports:
//! a header with every column's name and dtype, floats to 4 significant
//! digits (`%.4g`: `0.3333`, `1235`, `1.235e+05`), integers as integers,
//! nulls as `—`, HTML-escaped text, long frames cut to their first and last
//! rows around a `… N more rows` row, then `N rows × M columns`. The only
//! style is a small inline `<style>` (no external resources).
//!
//! ```
//! use polars::prelude::*;
//! let df = df!("name" => ["a<b", "c"], "loss" => [1.0 / 3.0, 2.0]).unwrap();
//! let html = nnlab::table::html::to_html(&df, 20);
//! assert!(html.contains("<td>a&lt;b</td>") && html.contains(">0.3333</td>"));
//! assert!(html.contains("2 rows × 2 columns"));
//! ```

use polars::prelude::*;

/// The inline style shared by every table (scoped to `.nnlab-table`).
pub const CSS: &str = "<style>\
.nnlab-table{border-collapse:collapse;font-size:12px;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:4px 0}\
.nnlab-table th,.nnlab-table td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
.nnlab-table th{border-bottom:2px solid #999}\
.nnlab-table th .dtype{font-weight:normal;color:#888;font-size:10px}\
.nnlab-table td.num{text-align:right;font-variant-numeric:tabular-nums}\
.nnlab-table td.null{color:#aaa;text-align:center}\
.nnlab-table tr.more td{color:#888;font-style:italic;text-align:center}\
.nnlab-shape,.nnlab-caption{font-size:12px;color:#666;margin:2px 0}\
.nnlab-caption{color:#333;font-weight:bold}\
</style>";

/// Escapes `& < > " '` for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `x` to 4 significant digits like C's `%.4g`: trailing zeros dropped,
/// scientific notation when the exponent is below −4 or at least 4.
pub fn format_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // `{:.3e}` rounds to 4 significant digits and gives the exponent after rounding.
    let sci = format!("{x:.3e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..4).contains(&exp) {
        trim_zeros(&format!("{x:.*}", (3 - exp) as usize))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs())
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// One cell: its html text and its td class (`num`, `null` or none).
fn cell(v: &AnyValue) -> (String, &'static str) {
    match v {
        AnyValue::Null => ("—".into(), "null"),
        AnyValue::Float64(x) => (format_float(*x), "num"),
        AnyValue::Float32(x) => (format_float(*x as f64), "num"),
        AnyValue::Int8(_)
        | AnyValue::Int16(_)
        | AnyValue::Int32(_)
        | AnyValue::Int64(_)
        | AnyValue::UInt8(_)
        | AnyValue::UInt16(_)
        | AnyValue::UInt32(_)
        | AnyValue::UInt64(_) => (v.to_string(), "num"),
        AnyValue::String(s) => (escape(s), ""),
        AnyValue::StringOwned(s) => (escape(s.as_str()), ""),
        AnyValue::Boolean(b) => (b.to_string(), ""),
        other => (escape(&other.to_string()), ""),
    }
}

fn push_row(out: &mut String, df: &DataFrame, row: usize) {
    out.push_str("<tr>");
    for col in df.columns() {
        let (text, class) = match col.get(row) {
            Ok(v) => cell(&v),
            Err(e) => (escape(&e.to_string()), ""),
        };
        if class.is_empty() {
            out.push_str(&format!("<td>{text}</td>"));
        } else {
            out.push_str(&format!("<td class=\"{class}\">{text}</td>"));
        }
    }
    out.push_str("</tr>\n");
}

/// The table: every row when `df.height() <= max_rows`, else the first
/// `⌈max_rows/2⌉` and last `⌊max_rows/2⌋` rows around `… N more rows`.
pub fn to_html(df: &DataFrame, max_rows: usize) -> String {
    let (h, w) = df.shape();
    let mut out = String::with_capacity(256 + 40 * h.min(max_rows) * w.max(1));
    out.push_str(CSS);
    out.push_str("\n<table class=\"nnlab-table\">\n<thead><tr>");
    for col in df.columns() {
        out.push_str(&format!(
            "<th>{}<br><span class=\"dtype\">{}</span></th>",
            escape(col.name().as_str()),
            escape(&col.dtype().to_string())
        ));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let (head, tail) = if h <= max_rows {
        (h, 0)
    } else {
        (max_rows.div_ceil(2), max_rows / 2)
    };
    for r in 0..head {
        push_row(&mut out, df, r);
    }
    if head + tail < h {
        let hidden = h - head - tail;
        let noun = if hidden == 1 { "row" } else { "rows" };
        out.push_str(&format!(
            "<tr class=\"more\"><td colspan=\"{}\">… {hidden} more {noun}</td></tr>\n",
            w.max(1)
        ));
    }
    for r in h - tail..h {
        push_row(&mut out, df, r);
    }
    out.push_str(&format!(
        "</tbody>\n</table>\n<div class=\"nnlab-shape\">{}</div>",
        shape_line(h, w)
    ));
    out
}

/// `3 rows × 1 column`.
pub fn shape_line(rows: usize, columns: usize) -> String {
    let r = if rows == 1 { "row" } else { "rows" };
    let c = if columns == 1 { "column" } else { "columns" };
    format!("{rows} {r} × {columns} {c}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_to_four_significant_digits_like_printf_g() {
        // Python: ['%.4g' % x for x in xs]
        let cases = [
            (1.0 / 3.0, "0.3333"),
            (2.0, "2"),
            (0.5, "0.5"),
            (1234.5, "1234"),
            (12345.0, "1.234e+04"),
            (123456.0, "1.235e+05"),
            (9999.6, "1e+04"),
            (0.0001234, "0.0001234"),
            (0.00001234, "1.234e-05"),
            (-2.5e-7, "-2.5e-07"),
            (1e100, "1e+100"),
            (0.0, "0"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (x, want) in cases {
            assert_eq!(format_float(x), want, "{x}");
        }
    }

    #[test]
    fn header_cells_nulls_and_escaping() -> crate::TestResult {
        let df = df!(
            "name <i>" => [Some("a&b"), None, Some("\"q\"")],
            "n" => [Some(1i64), Some(-20), None],
            "x" => [Some(0.25f64), None, Some(1e-9)],
            "ok" => [true, false, true]
        )?;
        let html = to_html(&df, 10);
        assert!(
            html.starts_with("<style>") && !html.contains("http"),
            "no external resources"
        );
        assert!(
            html.contains("<th>name &lt;i&gt;<br><span class=\"dtype\">str</span></th>"),
            "{html}"
        );
        assert!(html.contains("<th>n<br><span class=\"dtype\">i64</span></th>"));
        assert!(html.contains("<th>x<br><span class=\"dtype\">f64</span></th>"));
        assert!(html.contains(
            "<tr><td>a&amp;b</td><td class=\"num\">1</td><td class=\"num\">0.25</td><td>true</td></tr>"
        ), "{html}");
        assert!(html.contains(
            "<tr><td class=\"null\">—</td><td class=\"num\">-20</td><td class=\"null\">—</td><td>false</td></tr>"
        ), "{html}");
        assert!(html.contains(
            "<td>&quot;q&quot;</td><td class=\"null\">—</td><td class=\"num\">1e-09</td>"
        ));
        assert!(html.ends_with("<div class=\"nnlab-shape\">3 rows × 4 columns</div>"));
        Ok(())
    }

    #[test]
    fn long_frames_keep_first_and_last_rows() -> crate::TestResult {
        let df = df!("i" => (0..100u32).collect::<Vec<_>>())?;
        let html = to_html(&df, 5);
        let rows: Vec<&str> = html
            .lines()
            .filter(|l| l.starts_with("<tr>") || l.starts_with("<tr class"))
            .collect();
        assert_eq!(
            rows,
            vec![
                "<tr><td class=\"num\">0</td></tr>",
                "<tr><td class=\"num\">1</td></tr>",
                "<tr><td class=\"num\">2</td></tr>",
                "<tr class=\"more\"><td colspan=\"1\">… 95 more rows</td></tr>",
                "<tr><td class=\"num\">98</td></tr>",
                "<tr><td class=\"num\">99</td></tr>",
            ]
        );
        assert!(html.ends_with("100 rows × 1 column</div>"));
        // Exactly max_rows rows: nothing hidden.
        let html = to_html(&df.head(Some(5)), 5);
        assert!(!html.contains("more row") && html.contains("<td class=\"num\">4</td>"));
        // An empty frame still has its header and shape.
        let empty = df.head(Some(0));
        assert!(to_html(&empty, 5).contains("<th>i<br><span class=\"dtype\">u32</span></th>"));
        assert!(to_html(&empty, 5).ends_with("0 rows × 1 column</div>"));
        Ok(())
    }
}
