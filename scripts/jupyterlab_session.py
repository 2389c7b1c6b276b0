"""A student's session in a real JupyterLab, in headless Chromium driven by selenium.

Called by `scripts/check-jupyterlab` (which finds the venv, Chromium and
chromedriver); not meant to be run by hand. It starts `jupyter lab` on
127.0.0.1 with the repository's notebooks, opens a working copy of one
notebook (`notebooks/_session_NN_name.ipynb`, deleted afterwards; the
committed file is never touched) and then, as a student would:

  --stored   looks at the stored outputs only: every figure of the file must
             be drawn by JupyterLab's plotly renderer and every table shown,
             in a notebook JupyterLab does not trust (as on a fresh machine);
  --run      clears every output (Edit menu), runs every cell (Run menu) with
             the Rust kernel and requires every code cell executed, every
             figure drawn (`.js-plotly-plot`), every table present and no
             stderr output; then edits one cell by typing (`--edit OLD=NEW`,
             e.g. another learning rate), re-runs it with Shift+Enter and
             times the round trip; saves the notebook (File menu) and checks
             the saved outputs against the page.

It prints one line per check, writes a screenshot, and exits non-zero with
the reason when a check fails.
"""

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

PLOTLY_MIME = "application/vnd.plotly.v1+json"


class SessionFailed(Exception):
    pass


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebook", help="a notebook under notebooks/")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stored", action="store_true")
    mode.add_argument("--run", action="store_true")
    p.add_argument("--edit", default="", help="OLD=NEW: the first code cell containing OLD gets NEW typed over it, then runs again")
    p.add_argument("--screenshot", required=True)
    p.add_argument("--jupyter", required=True, help="the jupyter executable")
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    p.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    p.add_argument("--timeout", type=int, default=1800, help="seconds for Run All")
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(jupyter: str, root: Path, port: int, token: str, settings: Path, log):
    # A private config and settings folder: no news toast over the page, and
    # every cell kept in the DOM (JupyterLab 4 otherwise renders only the
    # cells in view, and a page check would count nothing below the fold).
    (settings / "config" / "labconfig").mkdir(parents=True)
    (settings / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    user = settings / "user" / "@jupyterlab" / "notebook-extension"
    user.mkdir(parents=True)
    (user / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(settings / "config"), JUPYTERLAB_SETTINGS_DIR=str(settings / "user"))
    lab = subprocess.Popen(
        [jupyter, "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--allow-root"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return lab
        except OSError:
            if lab.poll() is not None:
                raise SessionFailed(f"jupyter lab exited with status {lab.returncode} (log: {log.name})")
            time.sleep(0.5)
    raise SessionFailed(f"jupyter lab did not answer on 127.0.0.1:{port} within 60 s (log: {log.name})")


def browser(chromium: str, chromedriver: str):
    opts = Options()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--window-size=1400,1000"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(chromedriver), options=opts)


def wait(what: str, seconds: float, check, every: float = 0.5):
    end = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise SessionFailed(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(every)


def menu(driver, title: str, command: str):
    """Clicks the top-level menu `title`, then its item that runs `command`."""
    bar = [e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item") if e.text.strip() == title]
    if not bar:
        raise SessionFailed(f"no '{title}' menu in JupyterLab's menu bar")
    bar[0].click()
    item = wait(f"the '{command}' item of the {title} menu", 10,
                lambda: driver.find_elements(By.CSS_SELECTOR, f".lm-Menu-item[data-command='{command}']"))
    item[0].click()


def kernel_status(driver) -> str:
    el = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator")
    return el[0].get_attribute("data-status") if el else ""


def prompts(driver):
    return [e.text.strip() for e in driver.find_elements(By.CSS_SELECTOR, ".jp-CodeCell .jp-InputPrompt")]


def page_counts(driver):
    outputs = ".jp-Notebook .jp-OutputArea-output"
    return {
        # JupyterLab's plotly renderer marks the output element itself.
        "figures": len(driver.find_elements(By.CSS_SELECTOR, f"{outputs}.js-plotly-plot, {outputs} .js-plotly-plot")),
        "tables": len(driver.find_elements(By.CSS_SELECTOR, f"{outputs} table")),
        "stderr": [e.text[:300] for e in driver.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.stderr']")],
        "outputs": len(driver.find_elements(By.CSS_SELECTOR, outputs)),
    }


def file_counts(path: Path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    figures = tables = 0
    errors = []
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, c in enumerate(code):
        for o in c.get("outputs", []):
            data = o.get("data", {})
            if PLOTLY_MIME in data:
                figures += 1
            elif "<table" in "".join(data.get("text/html", "")):
                tables += 1
            if o.get("output_type") == "error" or (o.get("output_type") == "stream" and o.get("name") == "stderr"):
                errors.append(f"code cell {i + 1}: {''.join(o.get('text', o.get('evalue', '')))[:300]}")
    return {"figures": figures, "tables": tables, "errors": errors, "code_cells": len(code),
            "executed": sum(1 for c in code if c.get("execution_count"))}


def open_notebook(driver, port: int, token: str, rel: str):
    driver.get(f"http://127.0.0.1:{port}/lab/tree/{rel}?token={token}&reset")
    wait("the notebook to open", 120, lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell"))
    time.sleep(2)
    if any("Select Kernel" in d.text for d in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")):
        raise SessionFailed("JupyterLab asks which kernel to use: the `rust` kernel is not registered (run scripts/report once)")
    wait("the Rust kernel to start", 180, lambda: kernel_status(driver) == "idle")


def type_edit(driver, cell_index: int, source: str, old: str, new: str):
    """Puts the cursor on `old` in the cell's editor with the keyboard and types `new` over it."""
    cell = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")[cell_index]
    editor = cell.find_element(By.CSS_SELECTOR, ".cm-content")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
    editor.click()
    at = source.index(old)
    line = source.count("\n", 0, at)
    line_text = source.split("\n")[line]
    col = at - (source.rfind("\n", 0, at) + 1)
    actions = webdriver.ActionChains(driver)
    actions.key_down(Keys.CONTROL).send_keys(Keys.HOME).key_up(Keys.CONTROL)
    for key in [Keys.DOWN] * line + [Keys.END] + [Keys.LEFT] * (len(line_text) - col):
        actions.send_keys(key)
    actions.key_down(Keys.SHIFT)
    for _ in old:
        actions.send_keys(Keys.RIGHT)
    actions.key_up(Keys.SHIFT)
    actions.send_keys(new)
    actions.perform()
    time.sleep(0.5)
    typed = editor.text
    expected = source.replace(old, new, 1)
    if typed.replace("\u00a0", " ").strip() != expected.strip():
        raise SessionFailed(f"the typed edit did not give the expected cell:\n--- page ---\n{typed}\n--- expected ---\n{expected}")
    return cell


def run_session(args, driver, port, token, rel: str, copy: Path):
    open_notebook(driver, port, token, rel)
    if args.stored:
        want = file_counts(copy)
        # Stored outputs render as they are opened; give plotly time to draw.
        got = wait("the stored figures to be drawn", 60,
                   lambda: (lambda c: c if c["figures"] >= want["figures"] and c["tables"] >= want["tables"] else None)(page_counts(driver)))
        print(f"session: {rel}: stored outputs: {got['figures']} of {want['figures']} figures drawn, "
              f"{got['tables']} of {want['tables']} tables shown", flush=True)
        return

    menu(driver, "Edit", "editmenu:clear-all")
    wait("the outputs to be cleared", 30, lambda: page_counts(driver)["outputs"] == 0)
    print(f"session: {rel}: outputs cleared", flush=True)
    t0 = time.monotonic()
    menu(driver, "Run", "runmenu:run-all")
    n = len(prompts(driver))

    def finished():
        p = prompts(driver)
        if page_counts(driver)["stderr"]:
            return "stderr"
        done = all(x.startswith("[") and x[1:-2].strip().isdigit() for x in p)
        return "done" if done and kernel_status(driver) == "idle" else None

    state = wait("Run All to finish", args.timeout, finished, every=2)
    got = page_counts(driver)
    if state == "stderr" or got["stderr"]:
        raise SessionFailed(f"a cell wrote to stderr: {got['stderr'][0]}")
    print(f"session: {rel}: Run All: {n} code cells executed in {time.monotonic() - t0:.1f} s; "
          f"{got['figures']} figures drawn, {got['tables']} tables", flush=True)

    if args.edit:
        old, new = args.edit.split("=", 1)
        nb = json.loads(copy.read_text(encoding="utf-8"))
        index = next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and old in "".join(c["source"])), None)
        if index is None:
            raise SessionFailed(f"no code cell contains '{old}'")
        source = "".join(nb["cells"][index]["source"])
        cell = type_edit(driver, index, source, old, new)
        before = cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt").text.strip()
        t1 = time.monotonic()
        webdriver.ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()

        def rerun_done():
            p = cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt").text.strip()
            outs = cell.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
            return p != before and "*" not in p and kernel_status(driver) == "idle" and outs
        wait("the edited cell to run again", 600, rerun_done, every=0.2)
        round_trip = time.monotonic() - t1
        if page_counts(driver)["stderr"]:
            raise SessionFailed(f"the edited cell wrote to stderr: {page_counts(driver)['stderr'][0]}")
        print(f"session: {rel}: edited code cell {index + 1} ('{old}' → '{new}' typed), Shift+Enter → output in {round_trip:.1f} s", flush=True)
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", cell)
        time.sleep(1.0)

    before_save = copy.stat().st_mtime
    menu(driver, "File", "docmanager:save")
    wait("the notebook to be saved", 30, lambda: copy.stat().st_mtime != before_save)

    def readable():
        # The server may still be writing the file when its mtime changes.
        try:
            return file_counts(copy)
        except (ValueError, KeyError):
            return None
    saved = wait("the saved notebook to be complete JSON", 30, readable)
    got = page_counts(driver)
    if saved["errors"]:
        raise SessionFailed(f"the saved notebook has error output: {saved['errors'][0]}")
    if saved["executed"] != saved["code_cells"]:
        raise SessionFailed(f"{saved['code_cells'] - saved['executed']} of {saved['code_cells']} code cells have no execution count")
    if saved["figures"] == 0 or got["figures"] < saved["figures"]:
        raise SessionFailed(f"{got['figures']} figures drawn on the page, {saved['figures']} figure outputs in the saved notebook")
    if got["tables"] < saved["tables"]:
        raise SessionFailed(f"{got['tables']} tables on the page, {saved['tables']} table outputs in the saved notebook")
    print(f"session: {rel}: saved: {saved['executed']} of {saved['code_cells']} code cells executed, "
          f"{got['figures']} of {saved['figures']} figures drawn, {got['tables']} of {saved['tables']} tables, no stderr", flush=True)


def main():
    args = parse_args()
    root = Path(__file__).resolve().parent.parent
    src = (root / args.notebook).resolve() if not Path(args.notebook).is_absolute() else Path(args.notebook)
    if not src.is_file() or src.parent != root / "notebooks":
        sys.exit(f"session: {args.notebook}: expected a notebook file in {root / 'notebooks'}")
    copy = src.with_name(f"_session_{src.name}")
    shutil.copyfile(src, copy)
    rel = f"notebooks/{copy.name}"
    port, token = free_port(), secrets.token_hex(16)
    settings = Path(tempfile.mkdtemp(prefix="nnlab-lab-"))
    log = open(settings / "lab.log", "w")
    lab = driver = None
    try:
        lab = start_lab(args.jupyter, root, port, token, settings, log)
        driver = browser(args.chromium, args.chromedriver)
        run_session(args, driver, port, token, rel, copy)
        driver.save_screenshot(args.screenshot)
        print(f"session: screenshot {args.screenshot}", flush=True)
    except (SessionFailed, WebDriverException) as e:
        if driver is not None:
            try:
                driver.save_screenshot(args.screenshot)
                print(f"session: screenshot of the failure {args.screenshot}", file=sys.stderr)
            except WebDriverException:
                pass
        log.flush()
        tail = (settings / "lab.log").read_text(errors="replace")[-3000:]
        sys.exit(f"session: {args.notebook}: FAILED: {e}\n--- jupyter lab log (end) ---\n{tail}")
    finally:
        if driver is not None:
            driver.quit()
        if lab is not None:
            lab.terminate()
            try:
                lab.wait(20)
            except subprocess.TimeoutExpired:
                lab.kill()
        copy.unlink(missing_ok=True)
        shutil.rmtree(settings, ignore_errors=True)


if __name__ == "__main__":
    main()
