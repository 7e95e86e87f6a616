"""report: ours pooled over seeds beside the paper, deltas only where units agree."""

from pathlib import Path

import pytest

from dycon import report
from dycon.experiments import RunResult, RunSpec


def _result(row, percent, seed, dice, *, unit="mm", hd95=None, table=1):
    spec = RunSpec(table, row, "dycon", "isles-sim", percent, 2, "quick", seed)
    summary = {
        "run_id": f"{row}-{percent}-{seed}",
        "units": {"hd95": unit, "asd": unit},
        "data_kind": "synthetic",
        "dataset": "isles-sim",
        "scale": "quick",
        "protocol": {
            "model_selection": "final",
            "model": "student",
            "convention": "honest" if unit == "mm" else "official",
            "test_list": "test.list",
        },
        "environment": {"git_commit": "abc"},
        "train": {"seconds": 1.0},
        "eval_seconds": 1.0,
    }
    cases = [
        {"dice": d, "iou": d / 2, "hd95": h, "asd": 1.0}
        for d, h in zip(dice, hd95 or [2.0] * len(dice), strict=True)
    ]
    return RunResult(
        spec=spec, run_id=summary["run_id"], run_dir=Path("."), summary=summary, per_case=cases
    )


def test_seeds_are_pooled_and_delta_is_ours_minus_paper():
    runs = [_result("DyCON", 5, 1, [60.0, 70.0]), _result("DyCON", 5, 2, [80.0, 90.0])]
    rows = report.compare(1, runs)
    (dycon,) = [r for r in rows if r["row"] == "DyCON"]
    assert dycon["ours_dice"] == pytest.approx(75.0)  # mean of the four pooled cases
    assert dycon["paper_dice"] == pytest.approx(61.48)
    assert dycon["delta_dice"] == pytest.approx(75.0 - 61.48)
    assert dycon["seeds"] == [1, 2] and dycon["status"] == "ran"
    low, high = dycon["ours_dice_ci"]
    assert 60.0 <= low < 75.0 < high <= 90.0


def test_distance_delta_only_when_units_agree():
    mm = report.compare(1, [_result("DyCON", 5, 1, [60.0], hd95=[4.0])])
    vox = report.compare(1, [_result("DyCON", 5, 1, [60.0], unit="voxel", hd95=[4.0])])
    (a,) = [r for r in mm if r["row"] == "DyCON"]
    (b,) = [r for r in vox if r["row"] == "DyCON"]
    assert a["delta_hd95"] is None and a["ours_hd95"] == pytest.approx(4.0)
    assert b["delta_hd95"] == pytest.approx(4.0 - 17.61)


def test_paper_rows_not_run_are_kept_and_marked():
    rows = report.compare(1, [_result("DyCON", 10, 1, [50.0])])
    bcp = [r for r in rows if r["row"] == "BCP"]
    assert len(bcp) == 1 and bcp[0]["status"] == "not re-run"
    assert bcp[0]["paper_dice"] == pytest.approx(57.97) and bcp[0]["ours_dice"] is None
    assert all(r["percent"] == 10 for r in rows)  # only the labeled fraction that ran
    assert "not re-run" in report.to_html(1, rows) and "BCP" in report.to_text(1, rows)


def test_undefined_distances_are_counted_not_averaged():
    rows = report.compare(1, [_result("DyCON", 5, 1, [0.0, 50.0], hd95=[float("nan"), 3.0])])
    (r,) = [x for x in rows if x["row"] == "DyCON"]
    assert r["ours_hd95"] == pytest.approx(3.0) and r["ours_hd95_undefined"] == 1


def test_banner_says_synthetic_scale_protocol_and_seeds():
    text = report.banner([_result("DyCON", 5, 7, [1.0])], notes=["a note"])
    for part in ("SYNTHETIC", "scale: quick", "final checkpoint", "honest", "seeds: 7", "a note"):
        assert part in text


def test_glue_keys_and_plot_png():
    rows = report.compare(1, [_result("DyCON", 5, 1, [60.0, 62.0])])
    values = report.glue_values(1, rows)
    assert values["t1_dycon_5_dice_ours"] == "61.00" and values["t1_dycon_5_dice_paper"] == "61.48"
    data = report.png(report.plot(1, rows))
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
