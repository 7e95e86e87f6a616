"""``make reproduce TABLE=N`` / ``FIG=name``: execute a table or figure notebook into the book.

One template, ``notebooks/table.ipynb``, serves the five tables: ``table_notebook`` keeps its
introduction cell tagged ``table-N`` (dropping the other tables') and fills ``{table}`` in its
prose, and papermill sets ``table = N``. It (or ``notebooks/fig_<name>.ipynb``) runs with the
given parameters into a temporary file beside ``book/tables/tableN.ipynb``
(``book/figures/<name>.ipynb``), which replaces the old page only when every cell succeeded: a
failed run leaves the previous page and results as they were. The comparison (the figure's key
numbers) is then printed. Each run's progress (step, loss, time left) goes to the terminal.

Committed results are never lost. Without ``seeds`` a table runs the committed page's seeds, and
the committed runs (``results/tableN/runs/<run-id>``: summary and per-case table) are reused by
run id, so the default command reproduces the page as committed without training. A request
whose runs would not include every committed run (other seeds, scale or rows) writes its page and
results beside the committed ones (``tableN-<scale>-s<seeds>``), never over them.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from .config import ConfigError, parse_assignment
from .data.files import atomic_path
from .experiments import check_table
from .figures import check_figure

ROOT = Path(__file__).resolve().parents[1]


def reproduce_table(
    table: int,
    *,
    dataset: str | None = None,
    scale: str = "quick",
    seeds: list[int] | None = None,
    percents: list[int] | None = None,
    rows: list[str] | None = None,
    device: str = "auto",
    data_root: str | None = None,
    runs_dir: str = "results/runs",
    results_dir: str | None = None,
    output_dir: str | Path = "book/tables",
    progress: bool = True,
) -> Path:
    """Run the notebook of ``table`` and return the executed notebook's path.

    Paths are taken relative to the repository root, and the notebook runs there, so nothing of
    this machine's layout ends up in the executed notebook.
    """
    check_table(table)
    bad = [p for p in percents or () if not 0 < p <= 100]
    if bad:  # before any run: 150 % would train, then label a table "150 % = 39 cases"
        raise ConfigError(
            f"--percents {','.join(map(str, bad))}: labeled percentages must lie in 1..100; "
            "e.g. --percents 5,10"
        )
    results_dir = results_dir if results_dir is not None else f"results/table{table}"
    committed = _committed_runs(results_dir)
    seeds, percents = committed_defaults(committed, seeds=seeds, percents=percents)
    parameters = {
        "table": table,
        **_run_parameters(dataset, data_root, scale, seeds, device, runs_dir),
        "percents": list(percents) if percents else None,
        "rows": list(rows) if rows else None,
        "results_dir": results_dir,
        "progress": progress,
    }
    page = f"table{table}"
    if committed:
        ids = _table_run_ids(table, parameters)
        _reuse_committed(ids, results_dir, runs_dir)
        page, parameters["results_dir"] = page_for(
            table,
            committed=committed,
            ids=ids,
            scale=scale,
            seeds=parameters["seeds"],
            results_dir=results_dir,
        )
        if page != f"table{table}":
            print(
                f"[dycon] these runs would drop committed runs of {results_dir}: writing "
                f"{parameters['results_dir']} and {Path(output_dir) / page}.ipynb beside it",
                file=sys.stderr,
            )
    out_dir = ROOT / output_dir
    final = _run_notebook("table", out_dir / f"{page}.ipynb", parameters, progress, table=table)
    refresh_environment(str(Path(results_dir)), out_dir)
    return final


def committed_defaults(committed: dict, *, seeds, percents) -> tuple:
    """The seeds and labeled percentages not given: the committed page's, so that a plain
    ``make reproduce TABLE=N`` asks for the committed runs (and trains none on a clone)."""
    if committed and seeds is None:
        seeds = sorted({r["seed"] for r in committed.values()})
    if committed and not percents:
        percents = sorted({r["percent"] for r in committed.values()})
    return seeds, percents


def page_for(table: int, *, committed, ids, scale: str, seeds, results_dir: str) -> tuple[str, str]:
    """(page stem, results folder) of a reproduction whose runs are ``ids``: the committed page
    when every committed run is among them (the page gains runs, loses none), else a page
    beside it, ``tableN-<scale>-s<seeds>``, so that the committed one is never overwritten."""
    if set(committed) <= set(ids):
        return f"table{table}", results_dir
    page = f"table{table}-{scale}-s{'-'.join(map(str, seeds))}"
    return page, str(Path(results_dir).with_name(page))


def _committed_runs(results_dir: str) -> dict[str, dict]:
    """run id -> {row, percent, seed} of the committed page in ``results_dir`` ({} if none)."""
    path = ROOT / results_dir / "comparison.json"
    try:
        return {r["run_id"]: r for r in json.loads(path.read_text())["runs"]}
    except (OSError, ValueError, KeyError):
        return {}


def _table_run_ids(table: int, parameters: dict) -> list[str]:
    from .engine.runs import run_id
    from .experiments import config_of, table_runs

    specs = table_runs(
        table,
        dataset=parameters["dataset"],
        scale=parameters["scale"],
        seeds=parameters["seeds"],
        percents=parameters["percents"],
        rows=parameters["rows"],
        root=parameters["data_root"],
    )
    return [run_id(config_of(s, device=parameters["device"])) for s in specs]


def _reuse_committed(ids: list[str], results_dir: str, runs_dir: str) -> None:
    """Put each committed run among ``ids`` into ``runs_dir`` (where ``experiments.ensure`` finds
    finished runs) unless a run is there already, with the stamp of the data it was trained on
    (from its summary), so that a clean clone reuses the committed runs instead of training."""
    from .engine.runs import DATA_STAMP

    for rid in ids:
        src, dest = ROOT / results_dir / "runs" / rid, ROOT / runs_dir / rid
        if not (src / "summary.json").is_file() or (dest / "summary.json").is_file():
            continue
        dest.mkdir(parents=True, exist_ok=True)
        summary = json.loads((src / "summary.json").read_text())
        # runs from before summaries held the data hash carry the version only
        stamp = {k: summary[k] for k in ("data_version", "data_hash") if k in summary}
        stamp.setdefault("data_version", None)
        for name in ("config.yaml", "log.jsonl", "per_case.csv"):
            if (src / name).is_file() and not (dest / name).exists():
                shutil.copy2(src / name, dest / name)
        (dest / DATA_STAMP).write_text(json.dumps(stamp) + "\n")
        shutil.copy2(src / "summary.json", dest / "summary.json")  # last: marks the run complete


def reproduce_figure(
    name: str,
    *,
    dataset: str | None = None,
    scale: str = "quick",
    seeds: list[int] | None = None,
    device: str = "auto",
    data_root: str | None = None,
    runs_dir: str = "results/runs",
    results_dir: str | None = None,
    output_dir: str | Path = "book/figures",
    options: dict | None = None,
    progress: bool = True,
) -> Path:
    """Run the notebook of figure ``name`` (``dycon.figures.FIGURES``) into
    ``<output_dir>/<name>.ipynb`` and return its path; ``options`` sets the notebook's
    figure-specific parameters (e.g. ``{"n_cases": 2}``)."""
    check_figure(name)
    parameters = {
        **(options or {}),
        **_run_parameters(dataset, data_root, scale, seeds, device, runs_dir),
        "results_dir": results_dir if results_dir is not None else f"results/fig-{name}",
        "progress": progress,
    }
    final = ROOT / output_dir / f"{name}.ipynb"
    _run_notebook(f"fig_{name.replace('-', '_')}", final, parameters, progress)
    refresh_environment(parameters["results_dir"], final.parent)
    return final


def refresh_environment(results_dir: str, out_dir: Path) -> None:
    """The environment page (versions, hardware, time of each page) follows every table and
    figure: it reads the records beside ``results_dir`` and goes beside ``out_dir``."""
    env = ROOT / "notebooks" / "environment.ipynb"
    if env.is_file():
        # the page records its parameters: no path of this machine in a committed page
        results_root = str(repo_relative(Path(results_dir).parent))
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        _execute(
            env,
            out_dir.parent / "environment.ipynb",
            {"results_root": results_root},
            progress=False,
        )


def _run_parameters(dataset, data_root, scale, seeds, device, runs_dir) -> dict:
    """The parameters every table and figure notebook takes."""
    return {
        "dataset": dataset,
        "data_root": data_root,
        "scale": scale,
        "seeds": list(seeds or [1337]),
        "device": device,
        "runs_dir": runs_dir,
    }


def _run_notebook(
    stem: str, final: Path, parameters: dict, progress: bool, *, table: int | None = None
) -> Path:
    template = ROOT / "notebooks" / f"{stem}.ipynb"
    if not template.is_file():
        raise ConfigError(f"notebook template {str(template)!r} is missing; restore notebooks/")
    final.parent.mkdir(parents=True, exist_ok=True)
    _execute(template, final, parameters, progress=progress, table=table)
    return final


def table_notebook(template: Path, table: int):
    """``template`` (``notebooks/table.ipynb``) as the notebook of ``table``: of the introduction
    cells tagged ``table-M`` only ``table-N`` stays, and ``{table}`` in the prose becomes N (the
    code reads the number from the ``table`` parameter papermill sets)."""
    import nbformat

    check_table(table)
    nb = nbformat.read(template, as_version=4)
    kept = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        own = [t for t in tags if t.startswith("table-")]
        if own and own != [f"table-{table}"]:
            continue
        cell.metadata["tags"] = [t for t in tags if t not in own]
        if not cell.metadata["tags"]:
            del cell.metadata["tags"]
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace("{table}", str(table))
        kept.append(cell)
    nb.cells = kept
    return nb


def _execute(
    template: Path, final: Path, parameters: dict, *, progress: bool, table: int | None = None
) -> None:
    """papermill ``template`` (for ``table`` if given, see ``table_notebook``) into a temp file
    beside ``final``; rename only on success."""
    import papermill

    template = template.resolve()
    if not template.is_relative_to(ROOT):
        # the page records its template's path relative to the checkout; one from another
        # checkout (a worktree beside an editable install of this one) would record a machine path
        raise ValueError(
            f"{template}: the template is outside {ROOT}, the checkout this dycon is imported "
            "from; run from that checkout, or put yours first (PYTHONPATH=<your checkout>)"
        )
    source = str(template.relative_to(ROOT)) if table is None else table_notebook(template, table)
    start = time.perf_counter()
    with atomic_path(final, suffix=".ipynb") as tmp:
        try:
            # The kernel's stderr (each run's progress bar: step, loss, time left) streams to
            # this terminal; papermill's own cell counter would only say "Executing: 11%".
            papermill.execute_notebook(
                source,
                str(tmp.relative_to(ROOT)) if tmp.is_relative_to(ROOT) else str(tmp),
                parameters=parameters,
                kernel_name="python3",
                cwd=str(ROOT),
                progress_bar=False,
                stderr_file=sys.stderr if progress else None,
            )
        except papermill.PapermillExecutionError as err:
            raise RuntimeError(
                f"notebook {template.name} failed in cell {err.exec_count}: {err.ename}: "
                f"{err.evalue}"
            ) from None
        _finish(tmp, seconds=time.perf_counter() - start, template=template)


def render_page(template: Path, page: Path, parameters: dict, *, progress: bool = False) -> None:
    """Execute a page template (cwd: the repository root) into ``page``, replaced only when
    every cell succeeded (a failed cell raises ``RuntimeError`` naming it). The wall time is
    in the page's ``metadata.dycon.seconds``; ``progress`` streams the kernel's stderr here."""
    page.parent.mkdir(parents=True, exist_ok=True)
    _execute(template, page, parameters, progress=progress)


def _finish(path: Path, *, seconds: float, template: Path) -> None:
    """Fold the injected parameters away on the page and record the wall time and the template
    (papermill records a notebook it was given in memory as the whole notebook)."""
    nb = json.loads(path.read_text())
    nb["metadata"].setdefault("papermill", {})["input_path"] = str(template.relative_to(ROOT))
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-cell" not in tags:
            tags.append("hide-cell")
        if cell["cell_type"] == "code":  # progress bars belong to the terminal, not the page
            cell["outputs"] = [
                o
                for o in cell["outputs"]
                if not (o["output_type"] == "stream" and o["name"] == "stderr")
            ]
    nb["metadata"].setdefault("dycon", {})["seconds"] = round(seconds, 1)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def print_comparison(table: int, results_dir: str | None) -> None:
    folder = ROOT / (results_dir or f"results/table{table}")
    text = folder / "comparison.txt"
    record = json.loads((folder / "comparison.json").read_text())
    print(record["banner"])
    print(text.read_text(), end="")


def print_figure(name: str, results_dir: str | None) -> None:
    folder = ROOT / (results_dir or f"results/fig-{name}")
    print(json.loads((folder / "figure.json").read_text())["banner"])
    print((folder / "summary.md").read_text(), end="")


def repo_relative(path: Path) -> Path:
    """``path`` relative to the repository when inside it (an --output-dir may be elsewhere)."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(args) -> int:
    if args.fig is not None:
        return _main_figure(args)
    if args.params:
        raise ConfigError("--param sets figure parameters: use it with --fig")
    table = args.table
    final = reproduce_table(
        table,
        percents=args.percents,
        rows=args.rows,
        output_dir=args.output_dir or "book/tables",
        **_common_options(args),
    )
    print_comparison(table, args.results_dir or f"results/{final.stem}")
    print(f"executed notebook: {repo_relative(final)}", file=sys.stderr)
    return 0


def _main_figure(args) -> int:
    if args.percents or args.rows:
        raise ConfigError("--percents and --rows apply to tables; figures use 10 % labeled")
    options = dict(parse_assignment(item, what="--param") for item in args.params or [])
    final = reproduce_figure(
        args.fig,
        output_dir=args.output_dir or "book/figures",
        options=options,
        **_common_options(args),
    )
    print_figure(args.fig, args.results_dir)
    print(f"executed notebook: {repo_relative(final)}", file=sys.stderr)
    return 0


def _common_options(args) -> dict:
    """The command-line options that tables and figures take alike."""
    return {
        "dataset": args.dataset,
        "scale": args.scale,
        "seeds": args.seeds,
        "device": args.device,
        "data_root": args.data_root,
        "runs_dir": args.runs_dir,
        "results_dir": args.results_dir,
        "progress": not args.quiet,
    }
