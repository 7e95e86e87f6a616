"""The teaching track: every lesson notebook executes (small parameters) and shows its parts."""

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_LA = ROOT.parent / "shared" / "data" / "la" / "half"
# Small enough for CI; every cell still runs, the hidden solutions included.
SMALL = {
    1: {"iterations": 2, "snapshots": 2},
    2: {"iterations": 2, "mc_passes": 2},
    3: {"iterations": 2},
    4: {"iterations": 2, "checkpoints": 2, "num_test": 1, "num_val": 1, "num_labeled": 2},
}


@pytest.fixture(scope="module")
def lessons():
    spec = importlib.util.spec_from_file_location("lessons", ROOT / "bench" / "lessons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(page: Path) -> tuple[list[dict], list[dict]]:
    nb = json.loads(page.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return nb["cells"], [o for c in code for o in c.get("outputs", [])]


@pytest.mark.slow
@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_lesson_executes_with_small_parameters(number, lessons, tmp_path):
    seconds = lessons.run_lesson(
        number, parameters=SMALL[number], output_dir=tmp_path, progress=False
    )
    page = tmp_path / f"{lessons.LESSONS[number][1]}.ipynb"
    assert page.is_file() and seconds > 0
    assert not list(tmp_path.glob(".*.ipynb"))  # the temp notebook was renamed, not left
    cells, outputs = _outputs(page)
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # pictures per concept
    first = "".join(cells[0]["source"])
    assert first.startswith(f"# Lesson {number}") and "**Learning goals.**" in first
    exercises = [c for c in cells if "**Exercise" in "".join(c["source"])]
    assert 2 <= len(exercises) <= 3
    solutions = [c for c in cells if "hide-cell" in c.get("metadata", {}).get("tags", [])]
    solutions = [c for c in solutions if "parameters" not in c["metadata"]["tags"]]
    solutions = [c for c in solutions if "injected-parameters" not in c["metadata"]["tags"]]
    assert len(solutions) == len(exercises)
    assert all(c.get("outputs") for c in solutions)  # executed: a solution cannot rot
    expected = "real data: LA" if SHARED_LA.is_dir() else "synthetic data: isles-sim"
    assert lessons.data_of(page).startswith(expected)


@pytest.mark.slow
def test_lesson_falls_back_to_isles_sim(lessons, tiny_data, tmp_path):
    params = {**SMALL[4], "data": "isles-sim", "data_root": str(tiny_data)}
    lessons.run_lesson(4, parameters=params, output_dir=tmp_path, progress=False)
    page = tmp_path / "evaluation.ipynb"
    assert lessons.data_of(page).startswith("synthetic data: isles-sim")
    _, outputs = _outputs(page)
    assert not [o for o in outputs if o["output_type"] == "error"]


def test_failed_lesson_leaves_no_page(lessons, tmp_path):
    with pytest.raises(RuntimeError, match=r"lesson 1 .* failed in cell"):
        lessons.run_lesson(1, parameters={"data": "nonsense"}, output_dir=tmp_path, progress=False)
    assert not list(tmp_path.glob("*.ipynb")) and not list(tmp_path.glob(".*.ipynb"))


@pytest.mark.parametrize(
    ("assignment", "value"),
    [("iterations=2", 2), ("patch=(16, 16, 16)", (16, 16, 16)), ("data=la", "la")],
)
def test_parse_set(lessons, assignment, value):
    key = assignment.partition("=")[0]
    assert lessons.parse_set([assignment]) == {key: value}


def test_bad_set_is_a_one_line_error(lessons, capsys):
    assert lessons.main(["--lesson", "1", "--set", "iterations"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'iterations'" in err[0] and "key=value" in err[0]


def test_timings_record_matches_the_pages():
    record = json.loads((ROOT / "results" / "teaching" / "timings.json").read_text())
    rows = {r["lesson"]: r for r in record["lessons"]}
    assert sorted(rows) == [1, 2, 3, 4]
    for row in rows.values():
        page = ROOT / f"{row['page']}.ipynb"
        assert page.is_file()
        meta = json.loads(page.read_text())["metadata"]["dycon"]
        assert meta["seconds"] == row["seconds"] > 0
    csv = (ROOT / "results" / "teaching" / "timings.csv").read_text().splitlines()
    assert csv[0].startswith("lesson,page,seconds") and len(csv) == 5


def test_overrides_never_replace_the_book_pages(lessons, capsys):
    assert lessons.main(["--lesson", "1", "--set", "iterations=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--output-dir" in err[0]


def test_make_lessons_unknown_lesson_fails_with_one_line():
    proc = subprocess.run(
        ["make", "--no-print-directory", "lessons", "LESSON=9"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "LESSON=9" in lines[0] and "LESSON=1 to 4" in lines[0]
