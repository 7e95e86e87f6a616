"""Figure notebooks run under papermill at the smoke scale on isles-sim `tiny`; the runs each
figure asks for; the saved record and PNGs; bad figure names fail with one line."""

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from dycon import cli, experiments, figures
from dycon.analysis.lesion_study import analyze_case
from dycon.config import ConfigError
from dycon.data.splits import read_split
from dycon.engine.runs import run_id
from dycon.experiments import config_of, table_runs
from dycon.reproduce import reproduce_figure

ROOT = Path(__file__).resolve().parents[1]
DPI = 150  # dycon.report.png


@pytest.fixture(scope="module")
def tiny_root(tiny_data, tmp_path_factory):
    """isles-sim `tiny`, plus a validation list: tiny has none, and the curves figure validates
    wherever a list exists. The listed case is an unlabeled training case (a pipeline check)."""
    root = shutil.copytree(tiny_data, tmp_path_factory.mktemp("figures") / "data")
    train = read_split(root / "isles-sim" / "train.list")
    (root / "isles-sim" / "val.list").write_text(train[-1] + "\n")
    return root


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """One runs folder for the module: figures sharing a configuration share its run."""
    return tmp_path_factory.mktemp("runs")


def _names(specs):
    return [(s.row, s.method) for s in specs]


def test_figure_runs_rows_and_shared_runs(tiny_root):
    runs = {
        name: figures.figure_runs(name, dataset="isles-sim", scale="smoke", root=tiny_root)
        for name in figures.FIGURES
    }
    assert _names(runs["lesion-size"]) == [
        ("DyCON", "dycon"),
        ("DyCON w/o FeCL", "dycon"),
        ("MT", "mt"),
    ]
    assert _names(runs["overlays"]) == [("DyCON", "dycon"), ("MT", "mt")]
    assert _names(runs["curves"]) == [("DyCON", "dycon"), ("MT", "mt")]
    assert _names(runs["gradcam"]) == [("DyCON", "dycon")]
    assert _names(runs["frameworks"]) == [
        ("MT", "mt"),
        ("MT + DyCON", "dycon"),
        ("CPS", "cps"),
        ("CPS + DyCON", "dycon-ct"),
    ]
    ids = {
        name: [run_id(config_of(s, device="cpu")) for s in specs] for name, specs in runs.items()
    }
    assert ids["overlays"] == [ids["lesion-size"][0], ids["lesion-size"][2]]
    assert ids["gradcam"] == ids["curves"][:1]  # one tracked DyCON for both figures
    assert len({*ids["lesion-size"], *ids["curves"]}) == 5
    # the untracked rows are Table 1's at 10 %: a reproduced Table 1 is reused
    table = table_runs(1, dataset="isles-sim", scale="smoke", rows=["DyCON", "MT"], root=tiny_root)
    assert {run_id(config_of(s, device="cpu")) for s in table} == set(ids["overlays"])
    assert set(ids["frameworks"][:2]) == set(ids["overlays"])  # MT and MT + DyCON: Table 1's
    assert all(s.percent == 10 and s.num_labeled == 1 for s in runs["lesion-size"])
    no_fecl = config_of(runs["lesion-size"][1], device="cpu")
    assert no_fecl.method["use_fecl"] is False

    tracked = config_of(runs["gradcam"][0], device="cpu")
    assert tracked.train.iterations == 4 and tracked.train.val_every == 1
    assert tuple(tracked.train.snapshots) == figures.SNAPSHOTS
    # the trainer keeps max(1, round(f * iterations)): three distinct steps at 4 iterations
    steps = sorted({max(1, round(f * 4)) for f in tracked.train.snapshots})
    assert steps == [1, 2, 4]
    assert config_of(runs["curves"][1], device="cpu").train.val_every == 1

    two = {"dataset": "isles-sim", "scale": "smoke", "seeds": [1, 2], "root": tiny_root}
    assert [s.seed for s in figures.figure_runs("curves", **two)] == [1, 2, 1, 2]
    assert [s.seed for s in figures.figure_runs("gradcam", **two)] == [1]  # one run pictured


def test_val_every_rounding():
    assert [figures.val_every(n) for n in (1, 4, 5, 15, 300, 20000)] == [1, 1, 1, 2, 30, 2000]


def test_no_validation_list_means_no_val_every(tiny_root, tmp_path):
    shutil.copytree(tiny_root / "isles-sim", tmp_path / "isles-sim")
    (tmp_path / "isles-sim" / "val.list").unlink()
    specs = figures.figure_runs("curves", dataset="isles-sim", scale="smoke", root=tmp_path)
    assert not any("val_every" in o for s in specs for o in s.overrides)
    assert specs[0].overrides == ("train.snapshots=[0.1,0.5,1.0]",)


def test_unknown_figure_is_one_line():
    with pytest.raises(ConfigError) as err:
        figures.figure_runs("nope")
    msg = str(err.value)
    assert "\n" not in msg and "'nope'" in msg
    assert all(name in msg for name in figures.FIGURES)


def test_cli_fig_and_table_exclusive(capsys):
    assert cli.main(["reproduce", "--fig", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown figure 'nope'" in err[0]
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--fig", "curves", "--table", "1"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["reproduce"])


def test_make_reproduce_unknown_figure_fails_with_one_line():
    proc = subprocess.run(
        ["make", "--no-print-directory", "reproduce", "FIG=nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "FIG=nope" in lines[0]
    assert all(name in lines[0] for name in figures.FIGURES)


def test_empty_lesions_give_nan_with_counts():
    """No lesion at all (empty ground truth): NaN rates with n = 0, figures still drawn."""
    empty = np.zeros((8, 8, 8), dtype=bool)
    pred = empty.copy()
    pred[2:4, 2:4, 2:4] = True
    study = analyze_case(pred, empty, case="c0", spacing=(1.0, 1.0, 1.0))
    numbers = figures.lesion_numbers({"DyCON": study, "MT": study}, n_boot=50)
    assert all(
        math.isnan(b["detection_rate"]) and b["n_lesions"] == 0 for b in numbers["bins"]["DyCON"]
    )
    glued = figures.glue_values("lesion-size", numbers)
    assert glued["fig_lesion_size_dycon_all_detection"] == "— (n = 0)"
    assert "fig_lesion_size_dycon_minus_mt_all_dice" in glued
    figures.plot_lesion_bins(numbers["bins"])
    figures.plot_lesion_cases(numbers)
    gradcam = figures.gradcam_numbers([], [1, 2, 4], 4)
    last = gradcam["mean_inside"][4]
    assert math.isnan(last["mean"]) and last["n"] == 0
    figures.plot_gradcam([], [1, 2, 4], 4)
    assert figures.glue_values("gradcam", gradcam)["fig_gradcam_inside_step4"] == "— % (n = 0)"
    json.dumps(figures.clean(numbers), allow_nan=False)  # NaN is written as null


def _gradcam_panels(n: int) -> list[dict]:
    shape, gt = (8, 8, 4), np.zeros((8, 8, 4), bool)
    gt[2:5, 2:5, 1] = True
    maps = {s: np.full(shape, 0.5) for s in (9, 45, 90)}
    image = np.arange(256, dtype=float).reshape(shape)
    return [
        {"case": f"case{i}", "slice": 1, "image": image, "gt": gt, "maps": maps} for i in range(n)
    ]


def _two_logs(tmp_path: Path) -> dict[str, Path]:
    logs = {}
    for name, terms in (("DyCON", ("sup", "uncl", "fecl")), ("MT", ("sup", "consistency"))):
        lines = [{"step": s, "loss": 1.0 / s, **{t: 0.5 / s for t in terms}} for s in (1, 2, 3)]
        lines[-1]["val_dice"] = 40.0
        logs[name] = tmp_path / f"{name}.jsonl"
        logs[name].write_text("".join(json.dumps(x) + "\n" for x in lines))
    return logs


def _framework_run(row: str, seed: int, dice: list[float], *, empty: bool = False):
    spec = experiments.RunSpec(1, row, "mt", "isles-sim", 10, 4, "quick", seed)
    cases = [{"case": f"c{i}", "dice": d, "empty_pred": str(empty)} for i, d in enumerate(dice)]
    return experiments.RunResult(spec, f"{row}-{seed}", Path("."), {}, cases)


def _framework_results():
    return [
        _framework_run("MT", 1, [40.0, 60.0]),
        _framework_run("MT", 2, [50.0, 70.0]),
        _framework_run("MT + DyCON", 1, [50.0, 70.0]),  # +10 on every case
        _framework_run("MT + DyCON", 2, [60.0, 80.0]),
        _framework_run("CPS", 1, [30.0, 30.0]),
        _framework_run("CPS", 2, [0.0, 0.0], empty=True),  # collapsed: every case empty
        _framework_run("CPS + DyCON", 1, [40.0, 40.0]),  # +10, then +20 on the collapsed seed
        _framework_run("CPS + DyCON", 2, [20.0, 20.0]),
    ]


def test_framework_gains_are_paired_and_collapsed_runs_are_flagged():
    numbers = figures.framework_numbers(_framework_results(), n_boot=200)
    mt, cps = numbers["rows"]["MT"], numbers["rows"]["CPS"]
    assert mt["dice"] == pytest.approx(55.0) and mt["per_seed"] == {1: 50.0, 2: 60.0}
    assert mt["collapsed_seeds"] == [] and mt["dice_kept"] is None
    # CPS pooled: (30 + 30 + 0 + 0) / 4 = 15; without the collapsed seed 2: 30
    assert cps["dice"] == pytest.approx(15.0) and cps["collapsed_seeds"] == [2]
    assert cps["dice_kept"] == pytest.approx(30.0)
    (mt_gain, cps_gain) = numbers["gains"]
    # every paired difference is 10: every resample's mean is 10, so is the interval
    assert (mt_gain["with"], mt_gain["without"]) == ("MT + DyCON", "MT")
    assert (mt_gain["mean"], mt_gain["low"], mt_gain["high"]) == pytest.approx((10, 10, 10))
    assert (mt_gain["n_seeds"], mt_gain["n_cases"]) == (2, 2)
    # differences 10, 10 (seed 1) and 20, 20 (seed 2): mean 15, interval within [10, 20]
    assert cps_gain["mean"] == pytest.approx(15.0)
    assert 10 <= cps_gain["low"] <= cps_gain["high"] <= 20
    table = figures.to_markdown("frameworks", numbers)
    assert "| CPS | 15.0 (" in table and "seed 2; Dice 30.0 without" in table
    assert "| gain: MT + DyCON − MT | +10.0 (10.0–10.0) |" in table
    glued = figures.glue_values("frameworks", numbers)
    assert glued["fig_frameworks_gain_cps"].startswith("+15.0 (")


def test_framework_gains_skip_a_pair_with_a_missing_row():
    results = [r for r in _framework_results() if r.spec.row != "CPS + DyCON"]
    assert [g["without"] for g in figures.framework_numbers(results, n_boot=50)["gains"]] == ["MT"]


@pytest.mark.parametrize(
    ("name", "width_in"),
    # the 676 px column, unscaled at about 100 px/in
    [("curves", 6.8), ("gradcam", 6.8), ("frameworks", 6.8)],
)
def test_figure_text_is_at_least_10_pt_at_the_column_width(name, width_in, tmp_path):
    """6 px labels (110 dpi PNGs shrunk to half in the column) were unreadable: the figures are
    drawn at the column's width, so a font size in points is what the reader sees."""
    from matplotlib.text import Text

    from dycon.analysis import plot_curves

    if name == "curves":
        fig = plot_curves(_two_logs(tmp_path))
    elif name == "frameworks":
        fig = figures.plot_frameworks(figures.framework_numbers(_framework_results(), n_boot=50))
    else:
        fig = figures.plot_gradcam(_gradcam_panels(3), [9, 45, 90], 90)
    assert fig.get_size_inches()[0] == pytest.approx(width_in)
    texts = [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]
    assert texts
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 10]
    assert not small


def _png(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _expected(name: str, numbers: dict) -> dict[str, tuple[float, float]]:
    """Each PNG's size in inches, from the figure's layout (report.png saves at 150 dpi)."""
    if name == "lesion-size":
        return {"lesion_size_bins.png": (6.8, 7.6), "lesion_size_cases.png": (6.8, 3.6)}
    if name == "curves":
        return {"curves.png": (6.8, 4.0)}
    if name == "frameworks":
        return {"frameworks.png": (6.8, 3.6)}
    rows = len(numbers["cases"])
    if name == "gradcam":  # image + 3 snapshots, 1.55 in each, 0.6 in for the colour bar
        return {"gradcam.png": (1.55 * 4 + 0.6, 1.55 * rows)}
    return {"overlays.png": (2.2 * 3, 2.2 * rows + 0.5)}  # image, DyCON, MT; legend


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lesion-size", "overlays", "curves", "gradcam", "frameworks"])
def test_figure_notebook_runs_at_smoke_scale(name, tiny_root, runs_dir, tmp_path):
    options = {"n_cases": 2} if name in ("gradcam", "overlays") else None
    out = reproduce_figure(
        name,
        dataset="isles-sim",
        scale="smoke",
        device="cpu",
        data_root=str(tiny_root),
        runs_dir=str(runs_dir),
        results_dir=str(tmp_path / "results"),
        output_dir=tmp_path / "book",
        options=options,
        progress=False,
    )
    assert out == tmp_path / "book" / f"{name}.ipynb"
    assert not list((tmp_path / "book").glob(".*"))  # no temp notebook left behind
    nb = json.loads(out.read_text())
    assert "".join(nb["cells"][0]["source"]).startswith("# ")
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    text = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "SYNTHETIC" in text and "scale: smoke" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    glued = {o.get("metadata", {}).get("scrapbook", {}).get("name") for o in outputs}

    record = json.loads((tmp_path / "results" / "figure.json").read_text())
    assert record["figure"] == name and "SYNTHETIC" in record["banner"]
    assert (tmp_path / "results" / "summary.md").read_text().startswith("| ")
    numbers = record["numbers"]
    expected = _expected(name, numbers)
    assert set(record["figures"]) == set(expected)
    for fname, (w_in, h_in) in expected.items():
        path = tmp_path / "results" / fname
        width, height = _png(path)
        assert abs(width - w_in * DPI) <= 1 and abs(height - h_in * DPI) <= 1, (fname, width)
        assert record["figures"][fname] == {"width_px": width, "height_px": height}
        assert imread(path).std() > 0.01  # something is drawn
    rows = {r["row"] for r in record["runs"]}

    if name == "lesion-size":
        assert rows == {"DyCON", "DyCON w/o FeCL", "MT"}
        assert set(numbers["differences"]) == {"DyCON w/o FeCL", "MT"}
        total = sum(numbers["lesions_per_case"].values())
        for bins in numbers["bins"].values():
            assert [b["bin"] for b in bins] == ["tiny", "small", "medium", "large", "all"]
            assert bins[-1]["n_lesions"] == total
            for b in bins:
                for key in ("detection_rate", "detection_iou_rate", "dice_mean"):
                    assert b[key] is None if b["n_lesions"] == 0 else 0 <= b[key] <= 100
        assert "fig_lesion_size_dycon_minus_mt_small_detection_iou" in glued
    elif name == "curves":
        assert rows == {"DyCON", "MT"}
        assert numbers["validation"] and numbers["val_every"] == 1
        for run in numbers["runs"].values():  # val_every = 1 at 4 iterations: 4 points
            assert run["val_points"] == 4 and 0 <= run["final_val_dice"] <= 100
        assert "fig_curves_mt_best_val_dice" in glued
    elif name == "gradcam":
        assert numbers["steps"] == [1, 2, 4] and numbers["iterations"] == 4
        assert 1 <= len(numbers["cases"]) <= 2
        for case in numbers["cases"]:
            assert case["lesion_fraction"] > 0
            assert all(v is None or 0 <= v <= 1 for v in case["inside"].values())
        assert {f"fig_gradcam_inside_step{s}" for s in (1, 2, 4)} <= glued
    elif name == "frameworks":
        assert rows == {"MT", "MT + DyCON", "CPS", "CPS + DyCON"}
        assert [(g["with"], g["n_seeds"]) for g in numbers["gains"]] == [
            ("MT + DyCON", 1),
            ("CPS + DyCON", 1),
        ]
        assert {"fig_frameworks_gain_mt", "fig_frameworks_cps___dycon_dice"} <= glued
    else:
        assert rows == {"DyCON", "MT"}
        assert len(numbers["cases"]) == 2
        assert all(set(c["dice"]) == {"DyCON", "MT"} for c in numbers["cases"])


def test_environment_page_lists_the_figures(tmp_path):
    from dycon.reproduce import refresh_environment

    record = {
        "figure": "curves",
        "runs": [{"run_id": "a"}, {"run_id": "b"}],
        "notebook_seconds": 90.0,
        "environment": {"device": "cpu", "cpu_count": 2},
        "banner": "Data: isles-sim (SYNTHETIC)",
    }
    (tmp_path / "results" / "fig-curves").mkdir(parents=True)
    (tmp_path / "results" / "fig-curves" / "figure.json").write_text(json.dumps(record))
    refresh_environment(str(tmp_path / "results" / "fig-curves"), tmp_path / "book" / "figures")
    nb = json.loads((tmp_path / "book" / "environment.ipynb").read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert re.search(r">Figure curves</td>\s*<td[^>]*>2</td>", html), html
    assert re.search(r">1\.5</td>", html) and "Figure curves" in html


def test_empty_rows_are_runs_that_detected_no_lesion():
    def bins(detected):
        rows = [
            {"bin": b, "n_lesions": 2, "n_detected": d} for b, d in zip("ab", detected, strict=True)
        ]
        return [*rows, {"bin": "all", "n_lesions": 4, "n_detected": sum(detected)}]

    numbers = {"bins": {"DyCON": bins([1, 0]), "collapsed": bins([0, 0]), "MT": bins([0, 2])}}
    assert figures.empty_rows(numbers) == ["collapsed"]
    nothing = {"bins": {"x": [{"bin": "all", "n_lesions": 0, "n_detected": 0}]}}
    assert figures.empty_rows(nothing) == []  # no lesions: nothing to miss


def test_makefile_lists_are_the_declared_figures_and_tables():
    """The Makefile checks FIG and TABLE before setup, from the figure notebooks and its TABLES
    line; both must stay what dycon declares (a new figure is its module plus its notebook)."""
    proc = subprocess.run(
        ["make", "--no-print-directory", "-pn", "reproduce", "FIG=curves"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    values = dict(
        line.split(" := ", 1)
        for line in proc.stdout.splitlines()
        if line[:7] in ("FIGS :=", "TABLES ")
    )
    assert sorted(values["FIGS"].split()) == sorted(figures.FIGURES)
    assert [int(t) for t in values["TABLES"].split()] == list(experiments.TABLES)
