//! The code cells of the course notebooks (`notebooks/*.ipynb`) read like
//! the PyTorch original: none of them holds Rust ceremony a student would
//! have to decode, or that loses the kernel's variables when it panics.
//!
//! Banned in a code cell (DESIGN.md, "What a notebook cell looks like"):
//! `unwrap(` (a panic loses every variable of the kernel: cells use `?`),
//! `::<` (a turbofish), `Box::new`, `std::env` (the library reads the
//! environment, cells do not) and `shared/` (a folder outside the
//! repository; course datasets are found by name). Nor may a cell end in a
//! `for`/`while`/`if`/`match` without `;`: evcxr displays its value, a bare
//! `()`. A failure names the notebook, the cell index (as in
//! `nb["cells"][i]`) and the line.

use std::path::{Path, PathBuf};

/// What a cell must not contain, and why (printed with a failure).
const BANNED: [(&str, &str); 5] = [
    (
        "unwrap(",
        "a panic loses every variable of the kernel: use `?`",
    ),
    (
        "::<",
        "a turbofish: let the library's types or a `let x: T` say it",
    ),
    ("Box::new", "boxes stay inside the library"),
    (
        "std::env",
        "the library reads environment variables, cells do not",
    ),
    (
        "shared/",
        "a folder outside the repository: find course data by name",
    ),
];

/// The notebooks whose homework code is written in cells between
/// `// BEGIN SOLUTION` and `// END SOLUTION` (scripts/student stubs them).
const WITH_SOLUTIONS: [&str; 2] = ["02_scratch_layers_svhn.ipynb", "06_optimizers_2d.ipynb"];

/// The number of course notebooks; the scan must see all of them.
const NOTEBOOKS: usize = 6;

fn notebooks() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("notebooks");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "ipynb"))
        .collect();
    paths.sort();
    paths
}

/// `(cell index, source)` of every code cell.
fn code_cells(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let nb: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let cells = nb["cells"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no `cells` list", path.display()));
    cells
        .iter()
        .enumerate()
        .filter(|(_, c)| c["cell_type"] == "code")
        .map(|(i, c)| {
            let source = match &c["source"] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(lines) => {
                    lines.iter().filter_map(|l| l.as_str()).collect()
                }
                other => panic!("{} cell {i}: source is {other}", path.display()),
            };
            (i, source)
        })
        .collect()
}

/// Every banned pattern in `source`, as `cell i, line n: pattern (why): the line`.
fn violations(notebook: &str, cell: usize, source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        for (pattern, why) in BANNED {
            if line.contains(pattern) {
                found.push(format!(
                    "{notebook} cell {cell}, line {}: `{pattern}` ({why}):\n    {}",
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    if let Some(line) = bare_unit(source) {
        found.push(format!("{notebook} cell {cell}, line {line}: a `for`/`while`/`if`/`match` ends the cell without `;`: it displays `()`"));
    }
    found
}

/// The line (1-based) of the statement that ends the cell when it is a
/// `for`, `while`, `if` or `match` closed by `}` without `;`.
fn bare_unit(source: &str) -> Option<usize> {
    let lines: Vec<&str> = source.lines().collect();
    let last = lines.iter().rposition(|l| !l.trim().is_empty())?;
    if lines[last].trim_end() != "}" {
        return None;
    }
    // the statement's first line: the last line at column 0 before the closing brace
    let start = (0..last).rev().find(|&i| {
        let l = lines[i];
        !l.trim().is_empty() && !l.starts_with(char::is_whitespace) && !l.starts_with('}')
    })?;
    let head = lines[start];
    ["for ", "while ", "if ", "match "]
        .iter()
        .any(|k| head.starts_with(k))
        .then_some(start + 1)
}

#[test]
fn code_cells_hold_no_rust_ceremony() {
    let paths = notebooks();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into())
        .collect();
    assert_eq!(
        paths.len(),
        NOTEBOOKS,
        "expected the {NOTEBOOKS} course notebooks, found {names:?}"
    );
    let mut found = Vec::new();
    let mut cells = 0;
    for (path, name) in paths.iter().zip(&names) {
        let code = code_cells(path);
        assert!(code.len() > 3, "{name}: only {} code cells", code.len());
        cells += code.len();
        for (i, source) in code {
            found.extend(violations(name, i, &source));
        }
    }
    assert!(
        found.is_empty(),
        "{} banned patterns in {cells} code cells:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_scan_names_notebook_cell_and_line() {
    let v = violations(
        "01_x.ipynb",
        7,
        "let a = 1;\nlet b = h.column(\"x\")?.last().unwrap();\nBox::new(Adam::new(1e-3))",
    );
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(
        v[0].starts_with("01_x.ipynb cell 7, line 2: `unwrap(`"),
        "{}",
        v[0]
    );
    assert!(
        v[1].starts_with("01_x.ipynb cell 7, line 3: `Box::new`"),
        "{}",
        v[1]
    );
    assert!(violations("n", 0, "let x = profile.pick(10, 2);").is_empty());
    let unit = violations(
        "n",
        3,
        "let mut v = Vec::new();\nfor i in 0..3 {\n    v.push(i);\n}",
    );
    assert_eq!(unit.len(), 1, "{unit:?}");
    assert!(
        unit[0].starts_with("n cell 3, line 2: a `for`"),
        "{}",
        unit[0]
    );
    assert!(violations("n", 0, "for i in 0..3 {\n    v.push(i);\n};").is_empty());
    assert!(violations("n", 0, "fn f() -> usize {\n    for i in 0..3 {}\n    1\n}").is_empty());
    assert!(violations("n", 0, "match x {\n    _ => 1,\n}.to_string()").is_empty());
}

/// Every problem with the solution regions of `source`: a `BEGIN SOLUTION`
/// without `END SOLUTION` (or the reverse, or nested), or one without a hint
/// after `BEGIN SOLUTION:` (the student edition's `todo!` says what to write).
fn region_problems(notebook: &str, cell: usize, source: &str) -> (usize, Vec<String>) {
    let mut found = Vec::new();
    let mut open: Option<usize> = None;
    let mut regions = 0;
    for (n, line) in source.lines().enumerate() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("// BEGIN SOLUTION") {
            if let Some(first) = open {
                found.push(format!("{notebook} cell {cell}, line {}: BEGIN SOLUTION inside the region of line {first}", n + 1));
            }
            if rest.trim_start_matches(':').trim().is_empty() {
                found.push(format!("{notebook} cell {cell}, line {}: BEGIN SOLUTION without a hint (`// BEGIN SOLUTION: what to write`)", n + 1));
            }
            open = Some(n + 1);
            regions += 1;
        } else if t.starts_with("// END SOLUTION") && open.take().is_none() {
            found.push(format!(
                "{notebook} cell {cell}, line {}: END SOLUTION without BEGIN SOLUTION",
                n + 1
            ));
        }
    }
    if let Some(first) = open {
        found.push(format!(
            "{notebook} cell {cell}, line {first}: BEGIN SOLUTION without END SOLUTION"
        ));
    }
    (regions, found)
}

#[test]
fn solution_regions_are_closed_and_hinted() {
    let mut found = Vec::new();
    for path in notebooks() {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let mut regions = 0;
        for (i, source) in code_cells(&path) {
            let (n, problems) = region_problems(&name, i, &source);
            regions += n;
            found.extend(problems);
        }
        if WITH_SOLUTIONS.contains(&name.as_str()) {
            assert!(
                regions >= 5,
                "{name}: {regions} solution regions, expected the homework's code in cells"
            );
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
    let (n, p) = region_problems(
        "n",
        2,
        "fn f() {\n    // BEGIN SOLUTION: x\n    1\n    // END SOLUTION\n}\n// BEGIN SOLUTION\n",
    );
    assert_eq!(n, 2);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].contains("line 6: BEGIN SOLUTION without a hint")
            && p[1].contains("line 6: BEGIN SOLUTION without END"),
        "{p:?}"
    );
}
