//! Notebook display end to end: evcxr bundles of figures and stacks, the
//! plotly.js-once rule, offline standalone HTML written atomically, and a real
//! headless Chromium drawing the figures with no network.
//!
//! The browser tests need `chromium` (Debian package). Without it they fail
//! when `CI` is set and print a notice otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nnlab::display::{plotly_js_script, reset_plotly_js};
use nnlab::prelude::*;
use nnlab::viz::Figure;
use plotly::{Layout, Plot, Scatter};
use polars::prelude::*;

/// The plotly.js flag is process-wide: tests that display take turns.
static DISPLAY: Mutex<()> = Mutex::new(());

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

#[test]
fn a_displayed_figure_has_three_mime_types_and_plotly_js_once() {
    let _g = DISPLAY.lock().unwrap_or_else(|e| e.into_inner());
    reset_plotly_js();
    let first = scatter("adam").bundle().for_display().render();
    let second = scatter("sgd").bundle().for_display().render();
    for r in [&first, &second] {
        let blocks: Vec<&str> = r
            .lines()
            .filter(|l| l.starts_with("EVCXR_BEGIN_CONTENT "))
            .collect();
        assert_eq!(
            blocks,
            [
                "EVCXR_BEGIN_CONTENT application/vnd.plotly.v1+json",
                "EVCXR_BEGIN_CONTENT text/html",
                "EVCXR_BEGIN_CONTENT text/plain"
            ]
        );
        assert_eq!(r.matches("\nEVCXR_END_CONTENT\n").count(), 3);
        assert!(
            script_srcs(r).is_empty(),
            "no <script src=…>: {:?}",
            script_srcs(r)
        );
    }
    assert!(first.ends_with("EVCXR_BEGIN_CONTENT text/plain\nadam: 4 epochs\nEVCXR_END_CONTENT\n"));
    assert_eq!(
        first.matches(PLOTLY_MARK).count(),
        1,
        "the first display carries plotly.js"
    );
    assert_eq!(second.matches(PLOTLY_MARK).count(), 0, "later ones do not");
    // A stack counts as a display too; after a reset the next one carries it again.
    let stack_out = Stack::new()
        .figure(scatter("a"))
        .bundle()
        .for_display()
        .render();
    assert_eq!(stack_out.matches(PLOTLY_MARK).count(), 0);
    reset_plotly_js();
    let stack_out = Stack::new()
        .figure(scatter("a"))
        .text("note")
        .bundle()
        .for_display()
        .render();
    assert_eq!(stack_out.matches(PLOTLY_MARK).count(), 1);
    assert!(!stack_out.contains("application/vnd.plotly.v1+json"));
    assert!(script_srcs(&stack_out).is_empty());
    // A table never uses up the turn.
    reset_plotly_js();
    let df = df!("x" => [1.5f64]).unwrap();
    assert_eq!(
        df.bundle()
            .for_display()
            .render()
            .matches(PLOTLY_MARK)
            .count(),
        0
    );
    assert_eq!(
        scatter("b")
            .bundle()
            .for_display()
            .render()
            .matches(PLOTLY_MARK)
            .count(),
        1
    );
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
fn save_html_is_atomic_offline_and_names_a_bad_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fig.html");
    let fig = scatter("adam");
    fig.save_html(&path).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
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
    fig.save_html(&path).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("fig.html")]);
    // A missing folder: the error names the target path.
    let bad = dir.path().join("no-such-dir").join("fig.html");
    let e = fig.save_html(&bad).unwrap_err().to_string();
    assert!(e.contains(&bad.display().to_string()), "{e}");
    assert!(!bad.parent().unwrap().exists());
    // A folder in the way of the file.
    let e = fig.save_html(dir.path()).unwrap_err().to_string();
    assert!(e.contains(&dir.path().display().to_string()), "{e}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary left behind: {names:?}");
}

#[test]
fn every_result_type_shows_as_html_and_text() {
    let df = df!("name" => ["<b>", "ok"], "loss" => [1.0 / 3.0, 2e-7]).unwrap();
    let b = df.bundle();
    let html = b.html.unwrap();
    assert!(
        html.contains("<td>&lt;b&gt;</td>") && html.contains("0.3333") && html.contains("2e-07")
    );
    assert_eq!(b.text, format!("{df}"));
    let model = Mlp::from_json(
        r#"{"input_size":4,"num_classes":3,"layers":[{"type":"linear","size":5},"relu"]}"#,
    )
    .unwrap();
    let summary = model.summary().unwrap();
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
fn chromium_draws_a_saved_figure_offline() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("scatter.html");
    scatter("adam").save_html(&page).unwrap();
    let dom = dump_dom(&browser, &page);
    let id = &div_ids(&std::fs::read_to_string(&page).unwrap())[0];
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
    )
    .unwrap();
    let dom = dump_dom(&browser, &bare);
    let fig = figure_dom(&dom, &div_ids(&fragment)[0]);
    assert!(!fig.contains("main-svg"), "{fig}");
}

/// A page laid out like nbconvert's HTML export of a notebook run in one
/// kernel: each output's text/html in order, only the first display carrying
/// plotly.js; one figure comes *before* the output that carries plotly.js
/// (its script must wait), two after it, one inside a stack.
#[test]
fn chromium_draws_an_export_where_only_one_output_carries_plotly_js() {
    let Some(browser) = chromium() else { return };
    let html_of = |b: nnlab::display::MimeBundle| b.html.unwrap();
    let (early, outputs) = {
        let _g = DISPLAY.lock().unwrap_or_else(|e| e.into_inner());
        reset_plotly_js();
        let _ = scatter("warm-up").bundle().for_display(); // uses up the turn
        let early = html_of(scatter("early").bundle().for_display());
        reset_plotly_js();
        let outputs = vec![
            html_of(scatter("first").bundle().for_display()),
            html_of(
                df!("epoch" => [1u32, 2], "loss" => [0.5, 0.25])
                    .unwrap()
                    .bundle()
                    .for_display(),
            ),
            html_of(scatter("second").bundle().for_display()),
            html_of(
                Stack::new()
                    .title("both")
                    .figure(scatter("third"))
                    .text("done")
                    .bundle()
                    .for_display(),
            ),
        ];
        (early, outputs)
    };
    assert_eq!(early.matches(PLOTLY_MARK).count(), 0);
    assert_eq!(outputs[0].matches(PLOTLY_MARK).count(), 1);
    assert!(outputs[1..].iter().all(|h| !h.contains(PLOTLY_MARK)));
    let body: String = std::iter::once(&early)
        .chain(&outputs)
        .map(|h| format!("<div class=\"jp-OutputArea-output\">\n{h}\n</div>\n"))
        .collect();
    let page_html = format!("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>export</title></head>\n<body>\n{body}</body></html>\n");
    assert!(script_srcs(&page_html).is_empty());
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("export.html");
    std::fs::write(&page, &page_html).unwrap();
    let dom = dump_dom(&browser, &page);
    let ids = div_ids(&page_html);
    assert_eq!(ids.len(), 4);
    for (id, name) in ids.iter().zip(["early", "first", "second", "third"]) {
        let fig = figure_dom(&dom, id);
        assert!(
            fig.contains("class=\"main-svg\""),
            "figure `{name}` not drawn"
        );
        assert!(
            fig.contains(&format!("loss of {name}")),
            "figure `{name}` lacks its title"
        );
    }
    assert!(dom.contains("2 rows × 2 columns"));
}
