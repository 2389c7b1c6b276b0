#!/usr/bin/env python3
"""Sizes of the course notebooks: each notebook's bytes and the bytes of its
outputs per MIME type (plus streams), and a failure for any notebook above
the limit (1.5 MB by default: committed notebooks stay small; a figure is
stored once as plotly JSON, plotly.js never, see DESIGN.md "Figures").

    scripts/notebook_sizes.py [--limit-mb 1.5] [NOTEBOOK.ipynb ...]   (default: notebooks/NN_*.ipynb)

Exit status 1 when a notebook is above the limit. `scripts/run_notebooks.py
--update` runs the same check on every notebook it writes. Standard library
only (runs without the Jupyter venv).
"""

import argparse
import json
import sys
from pathlib import Path

LIMIT_MB = 1.5
MB = 1_000_000


def output_bytes(nb: dict) -> dict:
    """Bytes of every output's data per MIME type (`stream` for stdout/stderr,
    `error` for tracebacks), as stored in the .ipynb (JSON-encoded)."""
    sizes: dict = {}

    def add(key, value):
        sizes[key] = sizes.get(key, 0) + len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))

    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":
                add("stream", out.get("text", ""))
            elif kind == "error":
                add("error", out.get("traceback", []))
            for mime, value in out.get("data", {}).items():
                add(mime, value)
    return sizes


def report(path: Path, limit_mb: float = LIMIT_MB) -> bool:
    """Prints one notebook's sizes; True when it is within the limit."""
    size = path.stat().st_size
    nb = json.loads(path.read_text(encoding="utf-8"))
    per_mime = output_bytes(nb)
    ok = size <= limit_mb * MB
    mark = "ok" if ok else f"ABOVE {limit_mb} MB"
    print(f"{path.name}: {size / MB:.2f} MB ({mark})")
    for mime, n in sorted(per_mime.items(), key=lambda kv: -kv[1]):
        print(f"    {mime:<34} {n / 1000:9.1f} kB")
    return ok


def check(paths, limit_mb: float = LIMIT_MB) -> list:
    """Reports every notebook; returns the names of those above the limit."""
    return [p.name for p in paths if not report(p, limit_mb)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit-mb", type=float, default=LIMIT_MB)
    p.add_argument("notebooks", nargs="*", type=Path)
    args = p.parse_args()
    paths = args.notebooks or sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        sys.exit("notebook_sizes: no notebooks/NN_*.ipynb found")
    too_big = check(paths, args.limit_mb)
    if too_big:
        sys.exit(f"notebook_sizes: above {args.limit_mb} MB: {', '.join(too_big)} "
                 "(a figure's output should be plotly JSON + text/plain only; see DESIGN.md \"Figures\")")


if __name__ == "__main__":
    main()
