"""The cpu-scale page (notebooks/cpu_scale.ipynb) renders a bench record into verdicts."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def _record(tmp_path: Path) -> Path:
    def run(row, seed, base, collapsed=False):
        cases = {f"c{i}": base + i for i in range(4)}
        return {
            "row": row,
            "percent": 5,
            "seed": seed,
            "collapsed": collapsed,
            "dice": sum(cases.values()) / 4,
            "seconds": 60.0,
            "dice_per_case": cases,
        }

    runs = [
        run("Supervised (labeled only)", 1, 60.0),
        run("Supervised (labeled only)", 2, 61.0),
        run("UA-MT", 1, 70.0),
        run("UA-MT", 2, 72.0),
        run("DyCON (VNet)", 1, 80.0),
        run("DyCON (VNet)", 2, 0.0, collapsed=True),
    ]
    record = {
        "table": 4,
        "scale": "cpu",
        "data": "LA (real), 4x downsampled",
        "protocol": "final",
        "command": "python bench/cpu_scale.py",
        "planned_runs": 8,
        "complete": False,
        "machine": {"cpu_count": 2, "processor": "x86_64", "torch": "2", "torch_threads": 2},
        "runs": runs,
    }
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    return path


def test_page_names_the_collapsed_seed_and_gives_verdicts(tmp_path):
    import cpu_scale

    page = tmp_path / "page.ipynb"
    assert cpu_scale.render_page(_record(tmp_path), page) == 0
    nb = json.loads(page.read_text())
    out = "".join(
        "".join(o.get("data", {}).get("text/html", ""))
        + "".join(o.get("data", {}).get("text/markdown", ""))
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
    )
    assert not any(
        o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", [])
    )
    # DyCON (VNet) - UA-MT at 5 %: seed 2 collapsed, so one seed: +10 on every case, CI [10, 10]
    assert "DyCON (VNet) − UA-MT" in out and "+10.00" in out and "reproduced" in out
    assert "DyCON (VNet) seed 2" in out  # the collapsed seed is named, not averaged in
    assert "6 of 8 planned runs" in out and "A run in progress" in out


def test_page_only_without_a_record_is_one_line(tmp_path, capsys):
    import cpu_scale

    assert cpu_scale.main(["--page-only", "--out", str(tmp_path / "none.json")]) == 2
    assert "does not exist; run the bench first" in capsys.readouterr().err
