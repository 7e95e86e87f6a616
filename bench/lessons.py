"""The teaching track: execute the lesson notebooks into the book and time them.

    python bench/lessons.py                 # all four -> book/teaching/*.ipynb + timings
    python bench/lessons.py --lesson 2      # one lesson (its timing row is replaced)
    python bench/lessons.py --lesson 1 --set iterations=2 --output-dir /tmp/x --no-timings

Each template ``notebooks/lesson_<n>_<topic>.ipynb`` runs through ``dycon.reproduce.render_page``,
the book's one page runner (papermill, cwd: the repository root), into a temporary file beside
``<output-dir>/<page>.ipynb``, which replaces the old page only when every cell succeeded.
With the default parameters the wall-clock of each lesson is recorded in
``results/teaching/timings.json`` and ``timings.csv`` (with the machine it ran on); a run with
``--set`` overrides is not a timing of the lesson: it records nothing and must write elsewhere
(``--output-dir``), so that the book's pages are always the defaults' output.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import resource
import signal
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info

ROOT = Path(__file__).resolve().parents[1]
# lesson number -> (template stem, page name in book/teaching)
LESSONS = {
    1: ("lesson_1_mean_teacher", "mean-teacher"),
    2: ("lesson_2_uncertainty", "uncertainty"),
    3: ("lesson_3_contrastive", "contrastive"),
    4: ("lesson_4_evaluation", "evaluation"),
}
TIMINGS = ROOT / "results" / "teaching" / "timings.json"
HANDOUT_TABLE = ROOT / "book" / "teaching" / "timings.md"


def parse_set(assignments: list[str]) -> dict:
    """``key=value`` pairs; values are Python literals (``2``, ``(32, 32, 16)``) or strings."""
    out = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--set {item!r}: expected key=value, e.g. --set iterations=2")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def run_lesson(number: int, *, parameters: dict, output_dir: Path, progress: bool) -> float:
    """Execute lesson ``number`` into ``output_dir``; returns its wall-clock seconds.

    ``dycon.reproduce.render_page`` runs it, as it runs every page of the book: the old page is
    replaced only when every cell succeeded, and the seconds are those it wrote into the page.
    """
    from dycon.reproduce import render_page, repo_relative

    stem, page = LESSONS[number]
    template = ROOT / "notebooks" / f"{stem}.ipynb"
    final = output_dir / f"{page}.ipynb"
    try:
        render_page(template, final, parameters, progress=progress)
    except RuntimeError as err:
        raise RuntimeError(f"lesson {number} ({repo_relative(final)}): {err}") from None
    return json.loads(final.read_text())["metadata"]["dycon"]["seconds"]


def data_of(page: Path) -> str:
    """The data banner the lesson printed ("real data: ..." or "synthetic data: ...")."""
    nb = json.loads(page.read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("data", {}).get("text/markdown", ""))
            if text.startswith("**Data of this page: "):
                return text.removeprefix("**Data of this page: ").rstrip(".*")
    return "unknown"


def record(rows: dict[int, dict], machine: dict) -> None:
    """Merge ``rows`` into the timings record (JSON + CSV beside it), each written atomically."""
    old = json.loads(TIMINGS.read_text()) if TIMINGS.is_file() else {"lessons": []}
    kept = [r for r in old["lessons"] if r["lesson"] not in rows]
    lessons = sorted(kept + list(rows.values()), key=lambda r: r["lesson"])
    doc = {
        "what": "wall-clock (seconds) of each lesson notebook at its default parameters "
        "(papermill, kernel start included) and the CPU time its kernel used (cpu_seconds, user + "
        "system): on a shared machine the wall-clock grows with the load, the CPU time does not",
        "command": "python bench/lessons.py",
        "machine": machine,
        "lessons": lessons,
    }
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    tmp = TIMINGS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, TIMINGS)
    write_handout_table(doc)
    csv = TIMINGS.with_suffix(".csv")
    pd.DataFrame(lessons).to_csv(csv.with_suffix(".csv.tmp"), index=False)
    os.replace(csv.with_suffix(".csv.tmp"), csv)


def _short(data: str) -> str:
    """'real data: LA (2018 ...), 2x downsampled' -> 'real: LA, 2x downsampled'."""
    kind, _, rest = data.partition(" data: ")
    name = rest.split(" (")[0]
    return f"{kind}: {name}" + (", 2x downsampled" if "2x downsampled" in rest else "")


def _one_decimal(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def write_handout_table(doc: dict) -> None:
    """The handout page's table (``book/teaching/timings.md``, included there), from the record."""
    machine = doc["machine"]
    lines = [
        "| lesson | page | wall-clock (s) | CPU time (s) | load at start | data |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['lesson']} | {{doc}}`{r['page'].rsplit('/', 1)[1]}` "
            f"| {r['seconds']:.0f} | {r['cpu_seconds']:.0f} "
            f"| {_one_decimal(r['load_average_at_start'])} | {_short(r['data'])} |"
            for r in doc["lessons"]
        ),
        "",
        f"Machine: {machine['cpu_count']} CPU cores ({machine['processor'] or machine['machine']}),"
        f" Python {machine['python']}, torch {machine['torch']} with"
        f" {machine['torch_threads']} threads.",
        "",
    ]
    path = HANDOUT_TABLE
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, path)


def refresh_environment_page() -> None:
    """The environment page shows the lesson timings too: re-execute it from the records."""
    from dycon.reproduce import refresh_environment

    refresh_environment(str(ROOT / "results" / "teaching"), ROOT / "book" / "teaching")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", type=int, action="append", choices=sorted(LESSONS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output-dir", default="book/teaching")
    parser.add_argument("--no-timings", action="store_true", help="do not record timings")
    args = parser.parse_args(argv)
    try:
        parameters = parse_set(args.set)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    output_dir = (ROOT / args.output_dir).resolve()
    if parameters and output_dir == (ROOT / "book" / "teaching").resolve():
        print(
            "error: the pages in book/teaching are executed at the lessons' defaults; "
            "give --output-dir for a run with --set",
            file=sys.stderr,
        )
        return 2
    # a killed run (SIGTERM) unwinds like Ctrl-C, so that no temporary page is left behind
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    machine = machine_info("torch", "numpy", torch_threads=2)
    rows = {}
    for number in args.lesson or sorted(LESSONS):
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            seconds = run_lesson(
                number, parameters=parameters, output_dir=output_dir, progress=False
            )
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the finished kernel's CPU time
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        page = output_dir / f"{LESSONS[number][1]}.ipynb"
        shown = page.relative_to(ROOT) if page.is_relative_to(ROOT) else page
        print(f"lesson {number}: {shown} in {seconds:.0f} s ({cpu:.0f} CPU s)")
        rows[number] = {
            "lesson": number,
            "page": f"book/teaching/{LESSONS[number][1]}",
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "load_average_at_start": None if load is None else round(load, 2),
            "data": data_of(page),
        }
    if rows and not parameters and not args.no_timings:
        record(rows, machine)
        refresh_environment_page()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
