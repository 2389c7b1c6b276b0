"""Executes the course notebooks through the evcxr kernel and writes HTML reports.

Called by `scripts/report` (which installs the kernel and the Python side);
not meant to be run by hand. For each `notebooks/NN_*.ipynb` (in order, or the
`--only` ones) it runs every cell in one kernel (cwd = notebooks/, so
`:dep nnlab = { path = "../crate" }` resolves), stops at the first error with
the notebook, the cell number and the message, exports
`OUT/NN_name.html` (self-contained: no script is fetched from the network) and
finally `OUT/index.html` + `OUT/summary.json` (notebook, profile, seconds, the
`★ name: value` key results each notebook printed).

With `--update`, the executed notebooks (with their outputs) replace the ones
in notebooks/, which is how the committed copies get the outputs of a real run.
"""

import argparse
import datetime
import html
import json
import os
import re
import sys
import time
from pathlib import Path

import copy
import uuid

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import notebook_sizes  # noqa: E402  (scripts/notebook_sizes.py)

PLOTLY_MIME = "application/vnd.plotly.v1+json"

ANSI = re.compile(r"\x1b\[[0-9;]*m")
KEY_LINE = re.compile(r"^★ (.+?): (.+)$", re.M)
# Scripts the nbconvert lab template pulls from CDNs (require.js, MathJax 2):
# an offline report cannot load them, so they are removed and MathJax 3 is
# inlined instead when it is available (the plotly crate ships tex-svg).
REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.S)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick", choices=["quick", "full"])
    p.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,04")
    p.add_argument("--out", default="reports")
    p.add_argument("--update", action="store_true", help="write executed notebooks back into notebooks/")
    p.add_argument("--warmup", action="store_true", help="first run a two-cell notebook that builds the dependencies")
    p.add_argument("--cell-timeout", type=int, default=3600)
    p.add_argument("--mathjax", default="", help="path of a MathJax 3 tex-svg.js to inline")
    p.add_argument("--plotlyjs", default="", help="path of the plotly.min.js to inline once per report (default: the plotly Python package's)")
    p.add_argument("--export-only", action="store_true", help="no kernel: export the notebooks as they are (with their committed outputs)")
    p.add_argument("--keep-going", action="store_true", help="after a failed notebook, go on with the next (exit status still 1)")
    p.add_argument("--browser-check", action="store_true", help="open every report in headless Chromium, network off, and require every figure drawn")
    return p.parse_args()


def notebooks(root: Path, only: str):
    found = sorted(p for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return found
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    chosen = [p for p in found if p.name[:2] in wanted]
    missing = [w for w in wanted if w not in {p.name[:2] for p in chosen}]
    if missing:
        sys.exit(f"report: no notebook numbered {', '.join(missing)} in notebooks/ (have: {', '.join(p.name[:2] for p in found)})")
    return chosen


def first_dep_cells(nb):
    """The leading code cells that only hold `:dep`/`:opt`/`use` lines (the build)."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = [l for l in cell.source.splitlines() if l.strip() and not l.strip().startswith("//")]
        if lines and all(l.startswith((":dep", ":opt", ":cache", "use ")) for l in lines):
            cells.append(cell)
        else:
            break
    return cells


class NotebookFailed(Exception):
    pass


def execute(nb, workdir: Path, timeout: int, name: str):
    client = NotebookClient(
        nb,
        kernel_name="rust",
        timeout=timeout,
        startup_timeout=300,
        allow_errors=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    started = {}   # the index of the cell the kernel was last given
    client.on_cell_start = lambda cell, cell_index: started.update(index=cell_index)
    try:
        client.execute()
        check_stderr(nb, name)
    except NotebookFailed:
        raise
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
        failed = next(
            ((i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", []))),
            None,
        )
        if failed is None:
            raise NotebookFailed(f"report: {name}: {type(e).__name__}: {str(e).strip()[-3000:]}{running_cell(nb, started.get('index'))}")
        index, cell = failed
        details = []
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                details.append(f"{o.get('ename', '')}: {o.get('evalue', '')}")
                details.extend(ANSI.sub("", t) for t in o.get("traceback", []))
            elif o.get("output_type") == "stream" and o.get("name") == "stderr":
                details.append(ANSI.sub("", o.get("text", "")))
        message = "\n".join(details).strip()[-4000:]
        raise NotebookFailed(f"report: {name}: cell {index + 1} failed:\n--- cell ---\n{excerpt(cell.source)}\n--- error ---\n{message}")
    except Exception as e:
        # A kernel that dies (killed for memory, an abort) can surface as
        # nbclient's own clean-up error: name the cell it was running.
        raise NotebookFailed(f"report: {name}: the kernel or the client stopped ({type(e).__name__}: {str(e).strip()[-500:]})"
                             f"{running_cell(nb, started.get('index'))}") from e


def excerpt(source: str) -> str:
    """A cell's source for an error message: its first 400 characters."""
    return source if len(source) < 400 else source[:400] + " …"


def running_cell(nb, index) -> str:
    """Names the cell the kernel was running when it stopped (from nbclient's on_cell_start)."""
    if index is None:
        return ""
    return f"\nwhile running cell {index + 1}:\n--- cell ---\n{excerpt(nb.cells[index].source)}"


def check_stderr(nb, name: str):
    """evcxr reports an `Err` returned through `?` by printing it to stderr
    (no error message reaches Jupyter, so nbclient sees success); nnlab itself
    never writes to stderr. Any stderr output in a cell is a failure."""
    for index, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stderr" and o.get("text", "").strip():
                raise NotebookFailed(f"report: {name}: cell {index + 1} returned an error:\n--- cell ---\n{excerpt(cell.source)}\n--- error ---\n{ANSI.sub('', o['text']).strip()[-4000:]}")


def text_of(nb):
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


def plotly_js_source(path: str) -> str:
    """plotly.min.js for the reports. scripts/report passes the copy the
    plotly crate ships (`plotly-<version in Cargo.lock>/resource/plotly.min.js`
    in the cargo registry: plotly.js 3.0.1 for plotly 0.14.1): the version
    the figures' JSON is written for and that `Figure::save_html` inlines,
    pinned by Cargo.lock and on disk wherever the notebooks were built. The
    `plotly` Python package's copy (the one JupyterLab draws with, version
    chosen by pip) is the fallback."""
    if path:
        return Path(path).read_text(encoding="utf-8")
    try:
        import plotly  # noqa: F401
        bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        return bundled.read_text(encoding="utf-8")
    except (ImportError, OSError):
        return ""


def script_json(value) -> str:
    """JSON safe inside <script>: <, >, &, U+2028, U+2029 as \\u escapes (they
    only occur inside JSON strings, where the escape means the same)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def figure_html(fig) -> str:
    """The div and script drawing one plotly figure (as nnlab's
    `viz::figure::plotly_fragment`): `browser_check` counts the
    `nnlab-figure` divs that plotly.js turned into `js-plotly-plot`."""
    if isinstance(fig, str):
        fig = json.loads(fig)
    fid = f"nnlab-fig-{uuid.uuid4().hex[:16]}"
    return f"""<div id="{fid}" class="plotly-graph-div nnlab-figure" style="width:100%;"></div>
<script type="text/javascript">
(function () {{
  var id = "{fid}";
  var fig = {script_json(fig)};
  var waited = 0;
  function draw() {{
    var div = document.getElementById(id);
    if (div && window.Plotly) {{
      window.Plotly.newPlot(div, fig.data || [], fig.layout || {{}}, fig.config || {{}}).then(function (gd) {{
        if (fig.frames && fig.frames.length) {{ return window.Plotly.addFrames(gd, fig.frames); }}
      }});
    }} else if (waited < 60000) {{
      waited += 50;
      setTimeout(draw, 50);
    }} else if (div) {{
      div.textContent = "plotly.js is not on this page";
    }}
  }}
  draw();
}})();
</script>"""


def with_figure_html(nb):
    """A copy of `nb` in which every output holding plotly JSON has a
    text/html drawing it (replacing any html it had: older notebooks stored
    a drawing script, the first one with plotly.js inside). The number of
    figures is returned too."""
    nb = copy.deepcopy(nb)
    count = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if PLOTLY_MIME in data:
                data["text/html"] = figure_html(data[PLOTLY_MIME])
                count += 1
    return nb, count


def export_html(nb, title: str, mathjax: str, plotly_js: str) -> str:
    nb, figures = with_figure_html(nb)
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    body = REMOTE_SCRIPT.sub("", body)
    head = ""
    if figures or "window.Plotly" in body:
        if not plotly_js:
            raise NotebookFailed(f"report: {title} has figures but no plotly.js to inline (pass --plotlyjs PATH or install the plotly Python package)")
        # Once per report, before every figure; "</script" cannot occur in it.
        head += "<script type=\"text/javascript\">" + plotly_js.replace("</script", "<\\/script") + "</script>"
    if mathjax:
        head += (
            "<script>window.MathJax={tex:{inlineMath:[['$','$'],['\\\\(','\\\\)']],"
            "displayMath:[['$$','$$'],['\\\\[','\\\\]']]},svg:{fontCache:'global'}};</script>"
            f"<script>{mathjax}</script>"
        )
    if head:
        body = body.replace("</head>", head + "</head>", 1)
    return body


def notebook_text(nb) -> str:
    """The .ipynb text nbformat writes, except that plotly JSON is written
    on one line (nbformat's indent would put every number on a line of its
    own). Still valid JSON that nbformat and JupyterLab read back."""
    nb = copy.deepcopy(nb)
    compact = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if PLOTLY_MIME in data and not isinstance(data[PLOTLY_MIME], str):
                token = f"@@nnlab-plotly-{uuid.uuid4().hex}@@"
                compact[json.dumps(token)] = json.dumps(data[PLOTLY_MIME], separators=(",", ":"), ensure_ascii=False)
                data[PLOTLY_MIME] = token
    text = nbformat.writes(nb) + "\n"
    for token, value in compact.items():
        text = text.replace(token, value, 1)
    return text


def browser_check(path: Path):
    """Opens `path` in headless Chromium with every host unresolvable and
    checks that each figure of the page was drawn by plotly.js: every
    `nnlab-figure` div must have become a `js-plotly-plot` with an SVG."""
    import shutil, subprocess
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not chromium:
        sys.exit("report: --browser-check needs chromium (apt-get install chromium)")
    text = path.read_text(encoding="utf-8")
    expected = text.count('class="plotly-graph-div nnlab-figure"')
    out = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=20000", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=300,
    )
    drawn = len(re.findall(r'class="[^"]*nnlab-figure[^"]*js-plotly-plot|class="[^"]*js-plotly-plot[^"]*nnlab-figure', out.stdout))
    if expected and drawn < expected:
        sys.exit(f"report: {path.name}: {drawn} of {expected} figures drawn in headless Chromium (network off)")
    return expected, drawn


def write_atomic(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def index_html(rows, profile: str) -> str:
    trs = []
    for r in rows:
        keys = "<br>".join(f"{html.escape(k)}: <b>{html.escape(v)}</b>" for k, v in r["key_results"])
        trs.append(
            f"<tr><td><a href=\"{html.escape(r['html'])}\">{html.escape(r['notebook'])}</a></td>"
            f"<td>{html.escape(r['profile'])}</td><td style='text-align:right'>{r['seconds']:.1f}</td><td>{keys or '—'}</td></tr>"
        )
    total = sum(r["seconds"] for r in rows)
    return f"""<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>nnlab — отчёты курса</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.4em .7em;vertical-align:top}}th{{background:#f3f3f3}}</style></head><body>
<h1>nnlab — отчёты курса</h1>
<p>Профиль: <b>{html.escape(profile)}</b>; создано {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; всего {total:.0f} с.</p>
<table><tr><th>Тетрадь</th><th>Профиль</th><th>Секунды</th><th>Ключевые результаты</th></tr>
{''.join(trs)}
</table></body></html>
"""


def main():
    args = parse_args()
    root = Path(__file__).resolve().parent.parent
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    chosen = notebooks(root, args.only)
    if not chosen:
        sys.exit("report: no notebooks/NN_*.ipynb found")
    mathjax = Path(args.mathjax).read_text(encoding="utf-8") if args.mathjax else ""
    plotly_js = plotly_js_source(args.plotlyjs)
    workdir = root / "notebooks"

    if args.warmup and not args.export_only:
        nb = nbformat.read(chosen[0], as_version=4)
        warm = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.source) for c in first_dep_cells(nb)])
        warm.cells.append(nbformat.v4.new_code_cell('println!("warm");'))
        t = time.perf_counter()
        try:
            execute(warm, workdir, args.cell_timeout, "warm-up")
        except NotebookFailed as e:
            sys.exit(str(e))
        print(f"report: warm-up (build of the notebook dependencies, kernel start to first result) {time.perf_counter() - t:.1f} s", flush=True)

    rows = []
    failures = []
    for path in chosen:
        nb = nbformat.read(path, as_version=4)
        print(f"report: {path.name} ({args.profile}) …", flush=True)
        t = time.perf_counter()
        try:
            if args.export_only:
                meta = nb.metadata.get("nnlab", {})
                if not meta:
                    raise NotebookFailed(f"report: {path.name} has no outputs of a run (metadata.nnlab missing); run it first")
                args.profile = meta.get("profile", args.profile)
            else:
                execute(nb, workdir, args.cell_timeout, path.name)
        except NotebookFailed as e:
            # The cells run so far, with their outputs, for the diagnosis.
            write_atomic(out / f"{path.stem}.failed.ipynb", nbformat.writes(nb) + "\n")
            print(str(e), file=sys.stderr, flush=True)
            failures.append(path.name)
            if args.keep_going:
                continue
            sys.exit(1)
        seconds = time.perf_counter() - t
        if args.export_only:
            seconds = float(nb.metadata["nnlab"].get("seconds", 0.0))
        else:
            nb.metadata["nnlab"] = {"profile": args.profile, "seconds": round(seconds, 1), "executed": datetime.datetime.now().isoformat(timespec="seconds")}
        keys = KEY_LINE.findall(text_of(nb))
        name = path.stem
        try:
            write_atomic(out / f"{name}.html", export_html(nb, name, mathjax, plotly_js))
        except NotebookFailed as e:
            sys.exit(str(e))
        if not args.export_only:
            # The executed notebook beside its report (scripts/check-student
            # --teacher-dir reads the verdicts of the checks from it), and
            # with --update in notebooks/: the same text, written twice.
            executed = notebook_text(nb)
            write_atomic(out / f"{name}.ipynb", executed)
        if args.update and not args.export_only:
            write_atomic(path, executed)
            if notebook_sizes.check([path]):
                failures.append(f"{path.name} (above {notebook_sizes.LIMIT_MB} MB, written anyway)")
        if args.browser_check:
            expected, drawn = browser_check(out / f"{name}.html")
            print(f"report: {name}.html in headless Chromium, network off: {drawn} plot elements for {expected} figures", flush=True)
        rows.append({"notebook": name, "html": f"{name}.html", "profile": args.profile, "seconds": round(seconds, 1), "key_results": keys})
        print(f"report: {path.name} done in {seconds:.1f} s" + "".join(f"\n  ★ {k}: {v}" for k, v in keys), flush=True)

    write_atomic(out / "index.html", index_html(rows, args.profile))
    write_atomic(out / "summary.json", json.dumps({"profile": args.profile, "notebooks": rows}, ensure_ascii=False, indent=2) + "\n")
    print(f"report: {len(rows)} notebook(s) → {out}/index.html", flush=True)
    if failures:
        sys.exit(f"report: failed: {', '.join(failures)} (cells run so far in {out}/*.failed.ipynb)")


if __name__ == "__main__":
    main()
