"""The one table template (notebooks/table.ipynb) makes each of the five table pages, and each
runs under papermill at the smoke scale on isles-sim `tiny`."""

import json
import subprocess
from pathlib import Path

import pytest

from dycon.config import ConfigError
from dycon.reproduce import page_for, reproduce_table, table_notebook

ROOT = Path(__file__).resolve().parents[1]
# A few rows per table keep the suite fast; each notebook still runs every cell.
ROWS = {1: ["DyCON", "MT"], 2: ["UA-MT"], 3: ["Supervised (labeled only)"], 4: ["DyCON (VNet)"]}
ROWS[5] = ["row 1", "row 5"]
PERCENTS = {1: [10], 2: [20], 3: [20], 4: [10], 5: [10]}  # one labeled case of tiny's four


@pytest.fixture(scope="module")
def tiny_root(tiny_data):
    return tiny_data


TEMPLATE = ROOT / "notebooks" / "table.ipynb"


@pytest.mark.parametrize(
    ("table", "title"),
    [
        (1, "# Table 1 — ISLES'22"),
        (2, "# Table 2 — BraTS'19"),
        (3, "# Table 3 — Pancreas-CT"),
        (4, "# Table 4 — Left atrium"),
        (5, "# Table 5 — Ablation"),
    ],
)
def test_the_template_makes_each_tables_notebook(table, title):
    nb = table_notebook(TEMPLATE, table)
    prose = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert prose[0].startswith(title)
    assert sum(p.startswith("# Table") for p in prose) == 1  # the other tables' intros dropped
    text = "\n".join(prose)
    assert "{table}" not in text
    assert f"make reproduce TABLE={table}" in text and f"results/table{table}/" in text
    assert not any(t.startswith("table-") for c in nb.cells for t in c.metadata.get("tags", []))
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert "table = 1" in params.source  # papermill injects the number after this cell


def test_the_template_refuses_a_table_the_paper_lacks():
    with pytest.raises(ConfigError, match="table"):
        table_notebook(TEMPLATE, 9)


def test_one_template_for_the_five_tables():
    assert TEMPLATE.is_file()
    assert not list(TEMPLATE.parent.glob("table[0-9]*.ipynb"))  # no per-table copy to drift


@pytest.mark.slow
@pytest.mark.parametrize("table", [1, 2, 3, 4, 5])
def test_table_notebook_runs_at_smoke_scale(table, tiny_root, tmp_path):
    out = reproduce_table(
        table,
        dataset="isles-sim",
        scale="smoke",
        percents=PERCENTS[table],
        rows=ROWS[table],
        device="cpu",
        data_root=str(tiny_root),
        runs_dir=str(tmp_path / "runs"),
        results_dir=str(tmp_path / "results"),
        output_dir=tmp_path / "book",
        progress=False,
    )
    assert out == tmp_path / "book" / f"table{table}.ipynb"
    nb = json.loads(out.read_text())
    assert nb["metadata"]["papermill"]["input_path"] == "notebooks/table.ipynb"
    # nbformat writes a cell's source as a string or as a list of lines; papermill keeps the list
    assert "".join(nb["cells"][0]["source"]).startswith(f"# Table {table}")
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    text = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "dycon-comparison" in html and "ours (95% CI)" in html
    assert "SYNTHETIC" in text and "scale: smoke" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert not list((tmp_path / "book").glob(".table*"))  # no temp notebook left behind
    record = json.loads((tmp_path / "results" / "comparison.json").read_text())
    ran = [r for r in record["rows"] if r["status"] == "ran"]
    assert {r["row"] for r in ran} == set(ROWS[table])
    assert all(0.0 <= r["ours_dice"] <= 100.0 for r in ran)
    if table != 5:  # rows the engine does not implement keep the paper's numbers
        assert any(r["status"] == "not re-run" and r["paper_dice"] for r in record["rows"])
    assert len(list((tmp_path / "results" / "runs").iterdir())) == len(ran)


def test_make_reproduce_unknown_table_fails_with_one_line():
    proc = subprocess.run(
        ["make", "--no-print-directory", "reproduce", "TABLE=9"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "TABLE=9" in lines[0] and "TABLE=1 to 5" in lines[0]


ROWS_ARG = "ROWS=AC-MT,DyCON (VNet)"


def test_make_reproduce_passes_rows_with_spaces_whole():
    # a row label holds spaces and parentheses: it reaches the CLI as one comma-separated word
    proc = subprocess.run(
        ["make", "-n", "--no-print-directory", "reproduce", "TABLE=4", "SCALE=cpu", ROWS_ARG],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--scale cpu" in proc.stdout and "--rows 'AC-MT,DyCON (VNet)'" in proc.stdout


@pytest.mark.parametrize(
    ("ids", "page", "folder"),
    [
        (["a", "b", "c"], "table1", "results/table1"),  # the committed runs: the same page
        (["a", "b", "c", "d"], "table1", "results/table1"),  # more runs: nothing lost
        (["a"], "table1-quick-s1337", "results/table1-quick-s1337"),  # fewer: beside it
        (["x", "y"], "table1-quick-s1337", "results/table1-quick-s1337"),  # others: beside it
    ],
)
def test_a_reproduction_never_writes_over_committed_runs(ids, page, folder):
    committed = {"a": {}, "b": {}, "c": {}}
    got = page_for(
        1, committed=committed, ids=ids, scale="quick", seeds=[1337], results_dir="results/table1"
    )
    assert got == (page, folder)


def test_committed_runs_are_reused_by_run_id(tmp_path, monkeypatch):
    import dycon.reproduce as reproduce

    monkeypatch.setattr(reproduce, "ROOT", tmp_path)
    run = tmp_path / "results" / "table1" / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"run_id": "r1", "data_version": "2.1.0"}))
    (run / "per_case.csv").write_text("case,dice\nc,1.0\n")
    reproduce._reuse_committed(["r1", "r2"], "results/table1", "runs")
    reused = tmp_path / "runs" / "r1"
    assert json.loads((reused / "summary.json").read_text())["run_id"] == "r1"
    assert json.loads((reused / "data.json").read_text()) == {"data_version": "2.1.0"}
    assert (reused / "per_case.csv").read_text().startswith("case,dice")
    assert not (tmp_path / "runs" / "r2").exists()  # not committed: trained as usual
    # a summary that names its copy of the data passes it on: other data is then refused
    run2 = tmp_path / "results" / "table1" / "runs" / "r3"
    run2.mkdir(parents=True)
    (run2 / "summary.json").write_text(json.dumps({"data_version": None, "data_hash": "ab12"}))
    reproduce._reuse_committed(["r3"], "results/table1", "runs")
    stamp = json.loads((tmp_path / "runs" / "r3" / "data.json").read_text())
    assert stamp == {"data_version": None, "data_hash": "ab12"}


def test_a_failed_cell_keeps_the_old_page_and_leaves_no_temp_file(tmp_path, monkeypatch):
    import papermill

    from dycon.reproduce import ROOT as REPO
    from dycon.reproduce import render_page

    page = tmp_path / "book" / "page.ipynb"
    page.parent.mkdir()
    page.write_text("old page")

    def half_written_then_fail(source, output, **kwargs):
        Path(output).write_text("half a notebook")
        raise papermill.PapermillExecutionError(3, 3, "boom", "ValueError", "bad record", [])

    monkeypatch.setattr(papermill, "execute_notebook", half_written_then_fail)
    with pytest.raises(RuntimeError, match=r"cpu_scale.ipynb failed in cell 3: ValueError"):
        render_page(REPO / "notebooks" / "cpu_scale.ipynb", page, {})
    assert page.read_text() == "old page"
    assert [p.name for p in page.parent.iterdir()] == ["page.ipynb"]


@pytest.mark.parametrize(
    ("seeds", "percents", "expected"),
    [
        (None, None, ([1337, 1338], [10, 100])),  # nothing given: the committed page's runs
        ([1], None, ([1], [10, 100])),
        (None, [5], ([1337, 1338], [5])),
        ([1], [5], ([1], [5])),  # both given: as given
    ],
)
def test_seeds_and_percents_default_to_the_committed_pages(seeds, percents, expected):
    from dycon.reproduce import committed_defaults

    committed = {
        "a": {"seed": 1338, "percent": 10},
        "b": {"seed": 1337, "percent": 100},
        "c": {"seed": 1337, "percent": 10},
    }
    assert committed_defaults(committed, seeds=seeds, percents=percents) == expected
    assert committed_defaults({}, seeds=seeds, percents=percents) == (seeds, percents)


def test_a_template_outside_the_checkout_is_refused_before_any_page(tmp_path):
    """A worktree's template rendered with another checkout's dycon would record a machine path
    in the page (and run the other checkout's code): refused, naming the fix."""
    from dycon.reproduce import ROOT as REPO
    from dycon.reproduce import render_page

    template = tmp_path / "elsewhere" / "cpu_scale.ipynb"
    template.parent.mkdir()
    template.write_text((REPO / "notebooks" / "cpu_scale.ipynb").read_text())
    page = tmp_path / "page.ipynb"
    with pytest.raises(ValueError, match=r"outside .*PYTHONPATH=<your checkout>"):
        render_page(template, page, {})
    assert not page.exists()
