"""Runs the teacher and student editions of the homework notebooks through
the evcxr kernel and checks the verdicts of the homework checks. Called by
`scripts/check-student` (which sets up the environment and writes student/);
not meant to be run by hand.

A verdict is a line printed by a check of `nnlab::scratch` (`verdict.rs`):
"✔ what: пройдено / passed — …", "✘ what: не реализовано / not implemented: …"
or "✘ what: ошибка / failed — …". A check cell is a code cell whose teacher
output holds verdict lines.
"""

import argparse
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

ROOT = Path(__file__).resolve().parent.parent
VERDICT = re.compile(r"^([✔✘]) .*?: (пройдено / passed|не реализовано / not implemented|ошибка / failed)", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def outputs_text(cell, kinds=("stream", "execute_result", "display_data")):
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") not in kinds:
            continue
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        else:
            parts.append(o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def errors_of(cell):
    """Error outputs and stderr text of a cell."""
    found = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            found.append(ANSI.sub("", f"{o.get('ename', '')}: {o.get('evalue', '')}").strip())
        elif o.get("output_type") == "stream" and o.get("name") == "stderr" and o.get("text", "").strip():
            found.append(ANSI.sub("", o["text"]).strip())
    return found


def run(path: Path, workdir: Path, out: Path, label: str):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="rust", timeout=900, startup_timeout=300, allow_errors=True,
                            resources={"metadata": {"path": str(workdir)}})
    t = time.perf_counter()
    dead = None
    try:
        client.execute()
    except DeadKernelError as e:
        dead = str(e)
    seconds = time.perf_counter() - t
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / f"{path.stem}.{label}.ipynb")
    return nb, seconds, dead


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--only", default="")
    p.add_argument("--teacher-dir", default="", help="take the executed teacher editions from here (scripts/report --out DIR) instead of running them")
    args = p.parse_args()
    out = Path(args.out)
    wanted = {w.strip() for w in args.only.split(",") if w.strip()}
    students = sorted((ROOT / "student").glob("[0-9][0-9]_*.ipynb"))
    if wanted:
        students = [s for s in students if s.name[:2] in wanted]
    if not students:
        sys.exit("check-student: no student edition to check (scripts/student wrote none, or --only matched none)")
    failures = []
    for student_path in students:
        name = student_path.name
        executed = Path(args.teacher_dir) / name if args.teacher_dir else None
        if executed is not None and executed.is_file():
            teacher = nbformat.read(executed, as_version=4)
            t_sec, t_dead = float(teacher.metadata.get("nnlab", {}).get("seconds", 0.0)), None
        else:
            teacher, t_sec, t_dead = run(ROOT / "notebooks" / name, ROOT / "notebooks", out, "teacher")
        student, s_sec, s_dead = run(student_path, ROOT / "student", out, "student")
        fail = lambda msg: failures.append(f"{name}: {msg}")
        if t_dead:
            fail(f"teacher edition: the kernel died: {t_dead}")
        if s_dead:
            fail(f"student edition: the kernel died: {s_dead}")
        by_id = {c.get("id"): c for c in student.cells}
        checks = passed = not_impl = 0
        for i, cell in enumerate(teacher.cells):
            if cell.cell_type != "code":
                continue
            for e in errors_of(cell):
                fail(f"teacher cell {i}: {e[-600:]}")
            verdicts = VERDICT.findall(outputs_text(cell))
            if not verdicts:
                continue
            checks += 1
            bad = [v for v in verdicts if v[1] != "пройдено / passed"]
            passed += len(verdicts) - len(bad)
            if bad:
                fail(f"teacher cell {i}: a check did not pass:\n{outputs_text(cell)[-1500:]}")
            sc = by_id.get(cell.get("id"))
            if sc is None:
                fail(f"student edition has no cell {cell.get('id')} (teacher cell {i})")
                continue
            sv = VERDICT.findall(outputs_text(sc))
            ni = [v for v in sv if v[1] == "не реализовано / not implemented"]
            not_impl += len(ni)
            if len(ni) != len(verdicts) or len(sv) != len(verdicts):
                text = outputs_text(sc) or "; ".join(errors_of(sc)) or "(no output)"
                fail(f"student cell {i}: expected {len(verdicts)} 'не реализовано / not implemented' verdicts, got:\n{text[-1500:]}")
        stubs = 0
        for i, cell in enumerate(student.cells):
            if cell.cell_type == "code" and "todo!(" in cell.source:
                stubs += 1
                for e in errors_of(cell):
                    fail(f"student cell {i} (a stub) does not compile or run: {e[-800:]}")
        if checks == 0:
            fail("no check verdict in the teacher edition")
        print(f"check-student: {name}: teacher {passed} verdicts passed in {checks} check cells ({t_sec:.1f} s); "
              f"student {stubs} stub cells compile, {not_impl} verdicts 'not implemented', kernel alive ({s_sec:.1f} s)", flush=True)
    if failures:
        sys.exit("check-student: FAILED\n" + "\n".join(failures) + f"\n(executed notebooks in {out})")
    print(f"check-student: ok (executed notebooks in {out})")


if __name__ == "__main__":
    main()
