//! Notebook display end to end: what a notebook stores for every kind of
//! result (a figure: plotly JSON + one text line; no script, no plotly.js in
//! any bundle), offline standalone HTML written atomically, and a real
//! headless Chromium drawing figures — a saved one, and a page laid out like
//! a report (plotly.js once in `<head>`, each figure drawn from its JSON).
//!
//! The browser tests need `chromium` (Debian package). Without it they fail
//! when `CI` is set and print a notice otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nnlab::display::{MimeBundle, PLOTLY_MIME};
use nnlab::prelude::*;
use nnlab::scratch::functions::Function2d;
use nnlab::scratch::optim2d::Optimizer2d;
use nnlab::train::history::{EpochRecord, History};
use nnlab::train::interpret::Interpretation;
use nnlab::viz::figure::{plotly_fragment, plotly_js_script};
use nnlab::viz::{curves, images, trajectory, Figure};
use plotly::{Layout, Plot, Scatter};
use polars::prelude::*;

/// A test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
type TestResult = Result<(), Box<dyn std::error::Error>>;

fn scatter(name: &str) -> Figure {
    let mut plot = Plot::new();
    plot.add_trace(Scatter::new(vec![1.0, 2.0, 3.0, 4.0], vec![0.9, 0.5, 0.35, 0.3]).name(name));
    plot.set_layout(Layout::new().title(format!("loss of {name}")));
    Figure::new(plot, format!("{name}: 4 epochs"))
}

const PLOTLY_MARK: &str = "plotly.js v3.0.1";

/// Every `src` attribute of every `<script` tag (outside plotly.js's own text).
fn script_srcs(html: &str) -> Vec<String> {
    let html = html.replace(plotly_js_script(), "");
    html.match_indices("<script")
        .filter_map(|(i, _)| {
            let tag = &html[i..i + html[i..].find('>').unwrap_or(0)];
            tag.find("src=").map(|s| tag[s..].to_string())
        })
        .collect()
}

/// The MIME types of a rendered bundle, in order.
fn mimes(rendered: &str) -> Vec<&str> {
    rendered
        .lines()
        .filter_map(|l| l.strip_prefix("EVCXR_BEGIN_CONTENT "))
        .collect()
}

fn history(name: &str) -> History {
    let mut h = History::new(name);
    for e in 1..=3 {
        h.push(EpochRecord {
            epoch: e,
            train_loss: 1.0 / e as f64,
            val_loss: Some(1.1 / e as f64),
            train_metrics: vec![("accuracy".into(), 0.5 + 0.1 * e as f64)],
            val_metrics: vec![("accuracy".into(), 0.45 + 0.1 * e as f64)],
            lr: 1e-3,
            seconds: 0.5,
        });
    }
    h
}

/// One value of every kind a notebook displays: (what, bundle).
fn every_kind_of_output() -> Vec<(&'static str, MimeBundle)> {
    let ds = nnlab::data::Dataset::new(
        "toy",
        "memory",
        vec!["a".into(), "b".into()],
        [1, 2, 2],
        vec![0, 255, 0, 255, 9, 9, 9, 9],
        vec![0, 1],
        255,
    )
    .unwrap();
    let interp = Interpretation::new(
        vec!["a".into(), "b".into()],
        vec![1, 1],
        vec![0, 1],
        vec![2.0, 0.1],
    )
    .unwrap();
    let runs = vec![
        Optimizer2d::sgd(0.05)
            .run(Function2d::SquareSum, [5.0, 5.0], 20)
            .unwrap(),
        Optimizer2d::adam(0.3)
            .run(Function2d::SquareSum, [5.0, 5.0], 20)
            .unwrap(),
    ];
    let h = history("adam");
    let df = df!("epoch" => [1u32, 2], "loss" => [0.5, 0.25]).unwrap();
    let summary = Mlp::from_json(
        r#"{"input_size":4,"num_classes":3,"layers":[{"type":"linear","size":5},"relu"]}"#,
    )
    .unwrap()
    .summary()
    .unwrap();
    vec![
        ("figure", scatter("adam").bundle()),
        (
            "learning curves",
            curves::learning_curves(&h).unwrap().bundle(),
        ),
        (
            "compare",
            curves::compare(&[h.clone(), history("sgd")], "accuracy", None)
                .unwrap()
                .bundle(),
        ),
        (
            "image mosaic",
            images::image_grid(&ds, [0, 1], 2, Some(&[0, 0]))
                .unwrap()
                .bundle(),
        ),
        (
            "misclassified",
            images::misclassified(&ds, &interp).unwrap().bundle(),
        ),
        ("confusion", interp.plot_confusion(true).unwrap().bundle()),
        (
            "trajectories",
            trajectory::trajectories(&runs, true).unwrap().bundle(),
        ),
        (
            "distance",
            trajectory::distance_to_minimum(&runs).unwrap().bundle(),
        ),
        (
            "stack of figures",
            Stack::new()
                .title("runs")
                .figure(curves::learning_curves(&h).unwrap())
                .figure(trajectory::trajectories(&runs, true).unwrap())
                .table(df.clone())
                .show(&summary)
                .text("note")
                .bundle(),
        ),
        (
            "stack of tables",
            Stack::new().table(df.clone()).text("note").bundle(),
        ),
        ("dataframe", df.bundle()),
        ("summary", summary.bundle()),
        ("history", h.bundle()),
        ("interpretation", interp.bundle()),
    ]
}

#[test]
fn a_figure_is_stored_as_plotly_json_and_one_text_line() -> TestResult {
    let r = scatter("adam").bundle().render();
    assert_eq!(mimes(&r), [PLOTLY_MIME, "text/plain"]);
    assert_eq!(r.matches("\nEVCXR_END_CONTENT\n").count(), 2);
    assert!(r.ends_with("EVCXR_BEGIN_CONTENT text/plain\nadam: 4 epochs\nEVCXR_END_CONTENT\n"));
    let json = r.lines().nth(1).ok_or("None from r.lines().nth(1)")?;
    let v: serde_json::Value = serde_json::from_str(json)?;
    assert_eq!(v["data"][0]["name"], "adam");
    assert_eq!(v["layout"]["title"]["text"], "loss of adam");
    Ok(())
}

#[test]
fn no_bundle_a_notebook_stores_has_a_script_or_plotly_js() -> TestResult {
    for (what, b) in every_kind_of_output() {
        let r = b.render();
        assert!(!r.contains("<script"), "{what}: a script in the bundle");
        assert!(!r.contains(PLOTLY_MARK), "{what}: plotly.js in the bundle");
        assert!(!b.text.trim().is_empty(), "{what}: empty text/plain");
        if let Some(json) = &b.plotly_json {
            // A figure: the JSON JupyterLab draws, nothing it would draw instead.
            assert!(b.html.is_none(), "{what}: a figure with text/html");
            assert_eq!(mimes(&r), [PLOTLY_MIME, "text/plain"], "{what}");
            let v: serde_json::Value =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(v["data"].is_array() && v["layout"].is_object(), "{what}");
        } else {
            assert_eq!(mimes(&r), ["text/html", "text/plain"], "{what}");
        }
    }
    let kinds = every_kind_of_output();
    let figures = kinds
        .iter()
        .filter(|(_, b)| b.plotly_json.is_some())
        .count();
    assert_eq!(
        figures, 9,
        "every chart, mosaic and the stack with figures is plotly JSON"
    );
    // The stack of figures is ONE figure: both parts' traces, frames kept.
    let stack = &kinds
        .iter()
        .find(|(w, _)| *w == "stack of figures")
        .ok_or("no \"stack of figures\" kind")?
        .1;
    let v: serde_json::Value = serde_json::from_str(
        stack
            .plotly_json
            .as_deref()
            .ok_or("None from stack.plotly_json.as_deref()")?,
    )?;
    assert_eq!(
        v["data"]
            .as_array()
            .ok_or("None from v[\"data\"].as_array()")?
            .len(),
        4 + 3 + 2 * 2
    );
    assert_eq!(
        v["frames"]
            .as_array()
            .ok_or("None from v[\"frames\"].as_array()")?
            .len(),
        21
    );
    assert_eq!(v["frames"][3]["traces"], serde_json::json!([8, 10]));
    let lines: Vec<&str> = stack.text.lines().collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(lines[0], "runs");
    assert!(
        lines[1].contains("adam") && lines[2].starts_with("Траекторий: 2"),
        "{lines:?}"
    );
    assert_eq!(
        lines[3..],
        [
            "table: 2 rows × 2 columns",
            "2 layers summary: 43 params",
            "note"
        ]
    );
    Ok(())
}

#[test]
fn the_script_src_check_sees_external_scripts() {
    let bad = "<div></div><script type=\"text/javascript\" src=\"https://cdn.plot.ly/plotly-3.0.1.min.js\"></script>";
    assert_eq!(
        script_srcs(bad),
        ["src=\"https://cdn.plot.ly/plotly-3.0.1.min.js\""]
    );
}

#[test]
fn save_html_is_atomic_offline_and_names_a_bad_path() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("fig.html");
    let fig = scatter("adam");
    fig.save_html(&path)?;
    let html = std::fs::read_to_string(&path)?;
    assert_eq!(html, {
        // Same document apart from the fresh div id.
        let again = fig.to_html();
        let id = |h: &str| {
            h[h.find("nnlab-fig-").unwrap()..]
                .split('"')
                .next()
                .unwrap()
                .to_string()
        };
        again.replace(&id(&again), &id(&html))
    });
    assert_eq!(html.matches(PLOTLY_MARK).count(), 1);
    assert!(script_srcs(&html).is_empty());
    // Overwrite, and nothing but the file is left in the folder.
    fig.save_html(&path)?;
    let names: Vec<_> = std::fs::read_dir(dir.path())?
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("fig.html")]);
    // A missing folder: the error names the target path.
    let bad = dir.path().join("no-such-dir").join("fig.html");
    let e = fig.save_html(&bad).unwrap_err().to_string();
    assert!(e.contains(&bad.display().to_string()), "{e}");
    assert!(!bad.parent().ok_or("None from bad.parent()")?.exists());
    // A folder in the way of the file.
    let e = fig.save_html(dir.path()).unwrap_err().to_string();
    assert!(e.contains(&dir.path().display().to_string()), "{e}");
    let names: Vec<_> = std::fs::read_dir(dir.path())?
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary left behind: {names:?}");
    Ok(())
}

#[test]
fn every_result_type_shows_as_html_and_text() -> TestResult {
    let df = df!("name" => ["<b>", "ok"], "loss" => [1.0 / 3.0, 2e-7])?;
    let b = df.bundle();
    let html = b.html.ok_or("None from b.html")?;
    assert!(
        html.contains("<td>&lt;b&gt;</td>") && html.contains("0.3333") && html.contains("2e-07")
    );
    assert_eq!(b.text, format!("{df}"));
    let model = Mlp::from_json(
        r#"{"input_size":4,"num_classes":3,"layers":[{"type":"linear","size":5},"relu"]}"#,
    )?;
    let summary = model.summary()?;
    let b = summary.bundle();
    assert_eq!(b.html.as_deref(), Some(summary.to_html().as_str()));
    assert_eq!(b.text, summary.to_string());
    assert_eq!(summary.headline(), "2 layers summary: 43 params");
    // Any of them goes into a stack, one text line each.
    let s = Stack::new().show(&summary).show(&df).show(&scatter("x"));
    assert_eq!(
        s.bundle().text,
        "2 layers summary: 43 params\ntable: 2 rows × 2 columns\nx: 4 epochs"
    );
    Ok(())
}

/// A notebook (nbformat 4) whose outputs are one bundle of every kind, as a
/// notebook stores them: for `scripts/check-jupyterlab`, which opens a
/// notebook in a real JupyterLab. Written to `$NNLAB_SAMPLE_NOTEBOOK` when
/// that is set.
#[test]
fn a_sample_notebook_of_every_output_kind() -> TestResult {
    let cells: Vec<serde_json::Value> = every_kind_of_output()
        .into_iter()
        .map(|(what, b)| {
            let mut data = serde_json::Map::new();
            if let Some(json) = &b.plotly_json {
                data.insert(PLOTLY_MIME.into(), serde_json::from_str(json).unwrap());
            }
            if let Some(html) = &b.html {
                data.insert("text/html".into(), html.clone().into());
            }
            data.insert("text/plain".into(), b.text.clone().into());
            serde_json::json!({
                "cell_type": "code", "execution_count": null, "id": what.replace(' ', "-"),
                "metadata": {}, "source": format!("// {what}"),
                "outputs": [{"output_type": "display_data", "data": data, "metadata": {}}]
            })
        })
        .collect();
    let nb = serde_json::json!({
        "cells": cells, "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "rust", "display_name": "Rust", "language": "rust"}}
    });
    let text = nb.to_string();
    assert!(!text.contains("<script") && !text.contains(PLOTLY_MARK));
    if let Some(path) = std::env::var_os("NNLAB_SAMPLE_NOTEBOOK") {
        std::fs::write(path, text)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- browser

/// `chromium` if installed; None (after a notice) when it is not and CI is unset.
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(name).output() {
            let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !p.is_empty() {
                return Some(PathBuf::from(p));
            }
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but no `chromium` is installed: `apt-get install -y chromium` (the browser tests draw figures in it)");
    }
    eprintln!("notice: chromium not installed, browser test skipped (apt-get install -y chromium)");
    None
}

/// Loads `page` in headless Chromium with no network and returns the DOM
/// after 10 s of virtual time (timers run, so polling scripts finish).
fn dump_dom(browser: &Path, page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).map(|_| s)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {} in 120 s", page.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap().unwrap()
}

/// The DOM inside the figure div `id`: up to the script that follows it.
fn figure_dom<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("div {id} not in the DOM"));
    let rest = &dom[start..];
    &rest[..rest.find("<script").unwrap_or(rest.len())]
}

fn div_ids(html: &str) -> Vec<String> {
    html.match_indices("<div id=\"nnlab-fig-")
        .map(|(i, _)| html[i + 9..].split('"').next().unwrap().to_string())
        .collect()
}

#[test]
fn chromium_draws_a_saved_figure_offline() -> TestResult {
    let Some(browser) = chromium() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("scatter.html");
    scatter("adam").save_html(&page)?;
    let dom = dump_dom(&browser, &page);
    let id = &div_ids(&std::fs::read_to_string(&page)?)[0];
    let fig = figure_dom(&dom, id);
    assert!(
        fig.contains("class=\"main-svg\""),
        "no plotly svg in the DOM: {}",
        &dom[..dom.len().min(2000)]
    );
    assert!(fig.contains("loss of adam"), "the title is drawn");
    assert!(
        fig.contains("class=\"scatterlayer"),
        "the scatter trace is drawn"
    );
    // Control: the same fragment on a page without plotly.js draws nothing
    // (so the checks above do detect a figure that is not drawn).
    let bare = dir.path().join("bare.html");
    let fragment = scatter("bare").to_inline_html();
    std::fs::write(
        &bare,
        format!("<!DOCTYPE html><html><body>\n{fragment}\n</body></html>"),
    )?;
    let dom = dump_dom(&browser, &bare);
    let fig = figure_dom(&dom, &div_ids(&fragment)[0]);
    assert!(!fig.contains("main-svg"), "{fig}");
    Ok(())
}

/// A page laid out like a report of `scripts/run_notebooks.py`: plotly.js
/// once in `<head>`, then each stored output drawn from its plotly JSON
/// (the exporter writes the same div and script as `plotly_fragment`) or
/// shown as its html: a figure, a table, an animated trajectory, a stack of
/// figures combined into one, an image mosaic.
#[test]
fn chromium_draws_a_report_page_built_from_the_stored_json() -> TestResult {
    let Some(browser) = chromium() else {
        return Ok(());
    };
    let runs = vec![
        Optimizer2d::sgd(0.05).run(Function2d::SquareSum, [5.0, 5.0], 20)?,
        Optimizer2d::adam(0.3).run(Function2d::SquareSum, [5.0, 5.0], 20)?,
    ];
    let h = history("adam");
    let ds = nnlab::data::Dataset::new(
        "toy",
        "memory",
        vec!["a".into(), "b".into()],
        [1, 2, 2],
        vec![0, 255, 0, 255, 9, 9, 9, 9],
        vec![0, 1],
        255,
    )?;
    let outputs: Vec<(&str, MimeBundle)> = vec![
        ("loss of first", scatter("first").bundle()),
        (
            "table",
            df!("epoch" => [1u32, 2], "loss" => [0.5, 0.25])?.bundle(),
        ),
        (
            "Оптимизаторов: 2 на square_sum",
            trajectory::trajectories(&runs, true)?.bundle(),
        ),
        (
            "both runs",
            Stack::new()
                .title("both runs")
                .figure(curves::learning_curves(&h)?)
                .figure(scatter("second"))
                .text("done")
                .bundle(),
        ),
        ("toy", images::image_grid(&ds, [0, 1], 2, None)?.bundle()),
    ];
    let mut body = String::new();
    let mut figures = Vec::new();
    for (title, b) in &outputs {
        let part = match (&b.plotly_json, &b.html) {
            (Some(json), _) => {
                let html = plotly_fragment(json);
                figures.push((title.to_string(), div_ids(&html)[0].clone()));
                html
            }
            (None, Some(h)) => h.clone(),
            (None, None) => b.text.clone(),
        };
        body += &format!("<div class=\"jp-OutputArea-output\">\n{part}\n</div>\n");
    }
    let page_html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>report</title>{}</head>\n<body>\n{body}</body></html>\n",
        plotly_js_script()
    );
    assert_eq!(page_html.matches(PLOTLY_MARK).count(), 1);
    assert!(script_srcs(&page_html).is_empty());
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("report.html");
    std::fs::write(&page, &page_html)?;
    let dom = dump_dom(&browser, &page);
    assert_eq!(figures.len(), 4);
    for (title, id) in &figures {
        let fig = figure_dom(&dom, id);
        assert!(
            fig.contains("class=\"main-svg\""),
            "figure `{title}` not drawn"
        );
        assert!(
            fig.contains(title.as_str()),
            "figure `{title}` lacks its title"
        );
    }
    // The combined stack: both parts drawn (their titles and both plots).
    let stack = figure_dom(&dom, &figures[2].1);
    assert!(
        stack.contains("loss of second") && stack.contains("adam — кривые обучения"),
        "stack parts"
    );
    assert!(stack.matches("class=\"scatterlayer").count() >= 1);
    // The animation's controls are drawn.
    let anim = figure_dom(&dom, &figures[1].1);
    assert!(
        anim.contains("Пуск") && anim.contains("slider"),
        "animation controls"
    );
    assert!(dom.contains("2 rows × 2 columns"));
    Ok(())
}
