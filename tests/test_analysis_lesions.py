"""Lesion-size sensitivity on constructed masks with answers worked out by hand."""

import math

import numpy as np
import pytest

from dycon.analysis import (
    BINS,
    analyze_case,
    analyze_cases,
    analyze_run,
    assign_bin,
    bin_summary,
    compare_methods,
    wilson_interval,
)
from dycon.metrics import dice, lesion_table, mean_ci

SPACING = (5.0, 5.0, 10.0)  # 0.25 mL per voxel, exact in binary floating point


def constructed_case():
    """Five lesions and one false-positive blob in a 24^3 volume (0.25 mL voxels)."""
    gt = np.zeros((24, 24, 24), dtype=bool)
    pred = np.zeros_like(gt)
    # A: 40 voxels (10 mL, "large"); the prediction touches it in one voxel only
    gt[1:3, 1:5, 1:6] = True
    pred[1, 1, 1] = True
    # B: 2x2x2 = 8 voxels (2 mL, "medium"); predicted cube shifted by one along axis 0:
    # |C ∩ P| = 4, |P_C| = 8, IoU = 4 / 12, Dice = 2 * 4 / 16
    gt[10:12, 1:3, 1:3] = True
    pred[11:13, 1:3, 1:3] = True
    # C and D: 2 voxels each (0.5 mL, "small") joined by one predicted bridge voxel:
    # P_C = the bar minus the other lesion = 3 voxels, IoU = 2 / 3, Dice = 4 / 5
    gt[18, 1, 1:3] = True
    gt[18, 1, 4:6] = True
    pred[18, 1, 1:6] = True
    # E: 1 voxel (0.25 mL, "tiny"), missed
    gt[1, 20, 20] = True
    # a false-positive blob far from every lesion
    pred[20:22, 20:22, 20] = True
    return pred, gt


def records_by_start(records, gt):
    """Index the records by each lesion's first voxel (raster order = component id order)."""
    from scipy.ndimage import label

    lab, _ = label(gt, structure=np.ones((3, 3, 3)))
    firsts = {}
    for k in range(1, lab.max() + 1):
        firsts[k] = tuple(int(v) for v in np.argwhere(lab == k)[0])
    return {firsts[r["lesion"]]: r for r in records}


def test_per_lesion_records_match_hand_computation():
    pred, gt = constructed_case()
    study = analyze_case(pred, gt, case="c1", spacing=SPACING)
    by = records_by_start(study.lesions, gt)
    a, b, c, d, e = by[(1, 1, 1)], by[(10, 1, 1)], by[(18, 1, 1)], by[(18, 1, 4)], by[(1, 20, 20)]

    assert (a["voxels"], a["volume_ml"], a["bin"]) == (40, 10.0, "large")
    assert a["detected"] and not a["detected_iou"]  # one voxel: IoU 1/40 < 0.1
    assert a["iou"] == pytest.approx(100 / 40)
    assert a["dice"] == pytest.approx(100 * 2 / 41)

    assert (b["volume_ml"], b["bin"], b["pred_voxels"]) == (2.0, "medium", 8)
    assert b["iou"] == pytest.approx(100 * 4 / 12)
    assert b["dice"] == pytest.approx(50.0)
    assert b["detected"] and b["detected_iou"]

    for r in (c, d):  # the merged prediction is not held against either lesion for the other
        assert (r["volume_ml"], r["bin"], r["pred_components"]) == (0.5, "small", 1)
        assert r["pred_voxels"] == 3
        assert r["iou"] == pytest.approx(100 * 2 / 3)
        assert r["dice"] == pytest.approx(80.0)

    assert (e["volume_ml"], e["bin"]) == (0.25, "tiny")
    assert not e["detected"] and not e["detected_iou"]
    assert e["iou"] == e["dice"] == 0.0

    (case,) = study.cases
    assert case["case"] == "c1"
    assert case["n_lesions"] == 5 and case["n_detected"] == 4 and case["n_detected_iou"] == 3
    assert case["total_volume_ml"] == pytest.approx(0.25 * gt.sum())
    assert case["pred_volume_ml"] == pytest.approx(0.25 * pred.sum())
    assert case["false_positives"] == 1 and case["pred_components"] == 4
    assert case["dice"] == pytest.approx(dice(pred, gt))


def test_records_follow_lesion_table_components():
    pred, gt = constructed_case()
    study = analyze_case(pred, gt, case="c1", spacing=SPACING)
    table = lesion_table(pred, gt, spacing=SPACING)
    assert [r["lesion"] for r in study.lesions] == [r["component"] for r in table.lesions]
    for mine, theirs in zip(study.lesions, table.lesions, strict=True):
        assert mine["volume_ml"] == theirs["volume_ml"]
        assert mine["detected"] == theirs["detected"]
        assert mine["dice_near"] == theirs["dice"]


def test_iou_threshold_and_connectivity():
    pred, gt = constructed_case()
    loose = analyze_case(pred, gt, case="c", spacing=SPACING, iou_threshold=0.025)
    assert sum(r["detected_iou"] for r in loose.lesions) == 4  # A's IoU is exactly 1/40
    strict = analyze_case(pred, gt, case="c", spacing=SPACING, iou_threshold=0.5)
    assert sum(r["detected_iou"] for r in strict.lesions) == 2  # C and D (2/3) only

    diag = np.zeros((4, 4, 4), dtype=bool)
    diag[1, 1, 1] = diag[2, 2, 2] = True  # corner neighbours: one lesion at 26, two at 6
    assert len(analyze_case(diag, diag, case="d", spacing=(1, 1, 1)).lesions) == 1
    six = analyze_case(diag, diag, case="d", spacing=(1, 1, 1), connectivity=1)
    assert len(six.lesions) == 2


@pytest.mark.parametrize(
    ("volume", "expected"),
    [(0.0, "tiny"), (0.4999, "tiny"), (0.5, "small"), (1.99, "small"), (2.0, "medium"),
     (9.999, "medium"), (10.0, "large"), (1e6, "large")],
)  # fmt: skip
def test_bins_lower_bound_inclusive(volume, expected):
    assert assign_bin(volume) == expected


def test_bins_at_boundaries_from_voxel_counts():
    gt = np.zeros((30, 30, 30), dtype=bool)
    gt[1, 1, 1] = True  # 1 voxel = 0.25 mL
    gt[1, 1, 5:7] = True  # 2 voxels = 0.5 mL: the lower bound of "small"
    gt[1, 1, 10:18] = True  # 8 voxels = 2 mL
    gt[5:9, 5:15, 5] = True
    gt[5, 5, 5] = False  # 39 voxels = 9.75 mL
    gt[15:19, 15:25, 15] = True  # 40 voxels = 10 mL
    study = analyze_case(np.zeros_like(gt), gt, case="b", spacing=SPACING)
    got = sorted((r["voxels"], r["bin"]) for r in study.lesions)
    assert got == [(1, "tiny"), (2, "small"), (8, "medium"), (39, "medium"), (40, "large")]
    custom = (("lt1", 0, 1), ("ge1", 1, math.inf))
    study = analyze_case(np.zeros_like(gt), gt, case="b", spacing=SPACING, bins=custom)
    assert sorted(r["bin"] for r in study.lesions) == ["ge1", "ge1", "ge1", "lt1", "lt1"]


def test_gap_between_bins_gives_none():
    assert assign_bin(0.2, bins=(("a", 0.5, 1.0), ("b", 1.0, 2.0))) is None
    rows = bin_summary([{"volume_ml": 0.2, "detected": True, "detected_iou": True, "dice": 90}],
                       bins=(("a", 0.5, 1.0),))  # fmt: skip
    assert rows[0]["n_lesions"] == 0 and math.isnan(rows[0]["detection_rate"])


def test_wilson_interval_by_hand():
    z = 1.959963984540054  # 97.5 % normal quantile
    n, p = 4, 0.75
    center = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    low, high = wilson_interval(3, 4)
    assert (low, high) == pytest.approx((center - half, center + half), abs=1e-12)
    assert (low, high) == pytest.approx((0.300642, 0.954413), abs=1e-6)  # published tables
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)


def synthetic_records(detected, detected_iou, dices, case="x", volume=1.0):
    return [
        {"case": case, "lesion": i + 1, "voxels": 4, "volume_ml": volume, "detected": d,
         "detected_iou": di, "dice": s}
        for i, (d, di, s) in enumerate(zip(detected, detected_iou, dices, strict=True))
    ]  # fmt: skip


def test_bin_summary_rates_and_dice():
    lesions = synthetic_records([1, 1, 1, 0], [1, 0, 0, 0], [100.0, 50.0, 10.0, 0.0])
    lesions += synthetic_records([1], [1], [70.0], case="y", volume=20.0)
    rows = bin_summary(lesions, include_all=True)
    assert [r["bin"] for r in rows] == [b[0] for b in BINS] + ["all"]
    small = rows[1]
    assert small["n_lesions"] == 4 and small["n_detected"] == 3 and small["n_detected_iou"] == 1
    assert small["detection_rate"] == 75.0 and small["detection_iou_rate"] == 25.0
    low, high = wilson_interval(3, 4)
    assert (small["detection_low"], small["detection_high"]) == (100 * low, 100 * high)
    ci = mean_ci([100.0, 50.0, 10.0, 0.0])
    assert (small["dice_mean"], small["dice_low"], small["dice_high"]) == (40.0, ci.low, ci.high)
    assert rows[0]["n_lesions"] == 0 and math.isnan(rows[0]["dice_mean"])
    assert rows[3]["n_lesions"] == 1 and rows[-1]["n_lesions"] == 5


def test_compare_methods_paired_differences():
    a = synthetic_records([1, 0, 0, 0], [0, 0, 0, 0], [40.0, 0.0, 0.0, 0.0])
    b = synthetic_records([1, 1, 1, 0], [1, 0, 0, 0], [60.0, 30.0, 10.0, 0.0])
    rows = compare_methods(a, b, names=("no FeCL", "DyCON"))
    small = [r for r in rows if r["bin"] == "small"]
    assert {(r["metric"], r["method"], r["kind"]) for r in small} == {
        (m, name, kind)
        for m in ("detection_rate", "detection_iou_rate", "dice")
        for name, kind in (("no FeCL", "method"), ("DyCON", "method"),
                           ("DyCON - no FeCL", "difference"))
    }  # fmt: skip
    get = {(r["metric"], r["kind"], r["method"]): r for r in small}
    assert get[("detection_rate", "method", "DyCON")]["value"] == 75.0
    assert get[("detection_rate", "difference", "DyCON - no FeCL")]["value"] == 50.0
    assert get[("dice", "difference", "DyCON - no FeCL")]["value"] == pytest.approx(15.0)
    assert get[("dice", "difference", "DyCON - no FeCL")]["n"] == 4
    with pytest.raises(ValueError, match="different lesions"):
        compare_methods(a, b[:3], names=("a", "b"))
    with pytest.raises(ValueError, match="two different"):
        compare_methods(a, b, names=("a", "a"))


def test_bad_inputs_raise_clear_errors():
    pred, gt = constructed_case()
    with pytest.raises(ValueError, match="same shape"):
        analyze_case(pred[:-1], gt, case="c", spacing=SPACING)
    with pytest.raises(ValueError, match="not binary"):
        analyze_case(pred * 0.5, gt, case="c", spacing=SPACING)
    with pytest.raises(ValueError, match="3-D"):
        analyze_case(pred[0], gt[0], case="c", spacing=SPACING[:2])
    with pytest.raises(ValueError, match="spacing"):
        analyze_case(pred, gt, case="c", spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="fraction"):
        analyze_case(pred, gt, case="c", spacing=SPACING, iou_threshold=10)
    for bins, match in [
        ((("a", 1.0, 0.5),), "low_ml < high_ml"),
        ((("a", 0, 1), ("b", 0.5, 2)), "increasing"),
        ((("a", 0, 1), ("a", 1, 2)), "unique"),
        ((("a", 0),), r"\(name, low_ml, high_ml\)"),
        ((), "non-empty"),
    ]:
        with pytest.raises(ValueError, match=match):
            analyze_case(pred, gt, case="c", spacing=SPACING, bins=bins)
    with pytest.raises(ValueError, match="twice"):
        analyze_cases([("c", pred, gt, SPACING), ("c", pred, gt, SPACING)])


def test_analyze_cases_and_run(tmp_path):
    pred, gt = constructed_case()
    study = analyze_cases([("c1", pred, gt, SPACING), ("c2", gt, gt, SPACING)])
    assert [c["case"] for c in study.cases] == ["c1", "c2"]
    assert len(study.lesions) == 10 and study.cases[1]["dice"] == 100.0

    from dycon.engine.evaluate import save_prediction  # the format evaluate writes

    (tmp_path / "predictions").mkdir()
    save_prediction(tmp_path / "predictions" / "c1.npz", pred, SPACING)
    save_prediction(tmp_path / "predictions" / "c2.npz", gt, SPACING)
    run = analyze_run(tmp_path, {"c1": gt, "c2": gt})
    assert run.lesions == study.lesions and run.cases == study.cases
    with pytest.raises(ValueError, match="no ground truth"):
        analyze_run(tmp_path, {"c1": gt})
