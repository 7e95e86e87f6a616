"""The hand-typed paper tables (results/paper): shape, ranges, notes, group counts, spot values."""

from __future__ import annotations

from collections import Counter

import pytest

from dycon.paper import paper_dir, paper_rows

METRICS = {"dice": "Dice", "iou": "IoU", "hd95": "HD95", "asd": "ASD"}
COMPARISON_TABLES = (1, 2, 3, 4)

# Rows per (dataset, labeled_pct), counted from the poster text.
SHAPE = {
    1: {("isles22", 100): 2, ("isles22", 5): 10, ("isles22", 10): 9, ("isles22", 20): 8},
    2: {("brats19", 100): 1, ("brats19", 10): 9, ("brats19", 20): 9},
    3: {("pancreas", 100): 1, ("pancreas", 20): 7},
    4: {("la", 100): 1, ("la", 5): 9, ("la", 10): 9},
}

# (labeled, unlabeled) per labeled_pct group.
GROUPS = {
    1: {100: (200, 0), 5: (10, 190), 10: (20, 180), 20: (40, 160)},
    2: {100: (250, 0), 10: (25, 225), 20: (50, 200)},
    3: {100: (62, 0), 20: (12, 50)},
    4: {100: (80, 0), 5: (4, 76), 10: (8, 72)},
}


def _find(table: int, method: str, pct: float) -> dict:
    matches = [r for r in paper_rows(table) if r["method"] == method and r["labeled_pct"] == pct]
    assert len(matches) == 1, (table, method, pct, matches)
    return matches[0]


def test_paper_dir_is_the_repository_results_folder():
    assert paper_dir().parts[-2:] == ("results", "paper")


@pytest.mark.parametrize("table", COMPARISON_TABLES)
def test_row_counts(table):
    rows = paper_rows(table)
    assert Counter((r["dataset"], r["labeled_pct"]) for r in rows) == SHAPE[table]
    assert all(r["table"] == table for r in rows)


def test_ablation_shape():
    rows = paper_rows(5)
    assert len(rows) == 10
    assert Counter(r["dataset"] for r in rows) == {"isles22": 5, "brats19": 5}
    assert [r["row"] for r in rows] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    switches = ("fecl_focal", "fecl_hard_negatives", "fecl_entropy", "uncl")
    first, last = rows[0], rows[-1]
    assert not any(first[s] for s in switches)
    assert all(last[s] for s in switches)
    assert [r["fecl_hard_negatives"] for r in rows[2:8:2]] == [False, True, False]
    assert [r["fecl_entropy"] for r in rows[2:8:2]] == [False, False, True]


@pytest.mark.parametrize("table", COMPARISON_TABLES)
def test_group_counts(table):
    for r in paper_rows(table):
        assert (r["labeled"], r["unlabeled"]) == GROUPS[table][r["labeled_pct"]], r


@pytest.mark.parametrize("table", (*COMPARISON_TABLES, 5))
def test_ranges(table):
    for r in paper_rows(table):
        for key in ("dice", "iou"):
            if r.get(key) is not None:
                assert 0.0 <= r[key] <= 100.0, r
        if r.get("iou") is not None and r["dice"] is not None:
            assert r["iou"] <= r["dice"], r
        for key in ("hd95", "asd"):
            if r[key] is not None:
                assert r[key] >= 0.0, r


@pytest.mark.parametrize("table", (*COMPARISON_TABLES, 5))
def test_every_empty_cell_is_explained(table):
    for r in paper_rows(table):
        for key, label in METRICS.items():
            if key in r and r[key] is None:
                assert label in r["note"], (key, r)
        for key in ("labeled", "unlabeled"):
            if key in r and r[key] is None:
                assert "labeled" in r["note"], (key, r)


def test_method_keys_and_architectures():
    keys = {r["method_key"] for t in COMPARISON_TABLES for r in paper_rows(t)}
    assert keys == {"", "mt", "ua-mt", "dycon", "supervised", "dtc", "urpc", "acmt"}
    for t in COMPARISON_TABLES:
        for r in paper_rows(t):
            if r["method_key"] == "supervised":
                assert r["labeled_pct"] == 100 and r["unlabeled"] == 0
                assert "fully supervised upper bound" in r["note"]
    assert _find(4, "DyCON (VNet)", 5)["architecture"] == "vnet"
    assert _find(4, "DyCON (3D-UNet)", 10)["architecture"] == "unet3d"
    assert _find(3, "V-Net", 100)["architecture"] == "vnet"


@pytest.mark.parametrize(
    ("table", "method", "pct", "expected"),
    [
        (1, "DyCON", 5, (61.48, 48.80, 17.61, 0.75)),
        (1, "W-Net", 100, (85.60, None, 27.34, None)),
        (1, "AC-MT", 10, (49.47, 37.02, 39.67, 11.10)),
        (2, "MCF", 10, (83.67, 72.15, 12.58, 3.28)),
        (2, "BCP", 20, (82.71, 72.72, 9.99, 1.86)),
        (2, "CML", 10, (85.26, None, 9.08, 1.83)),
        (3, "MT", 20, (None, None, None, None)),
        (3, "DTC", 20, (78.27, 64.75, None, 2.25)),
        (3, "DyCON", 20, (84.81, 73.86, 5.41, 1.44)),
        (4, "DyCON (3D-UNet)", 10, (92.77, 86.21, 4.20, 1.23)),
        (4, "3D-UNet", 100, (91.51, 84.04, 1.53, 5.61)),
    ],
)
def test_spot_values(table, method, pct, expected):
    row = _find(table, method, pct)
    assert tuple(row[k] for k in METRICS) == pytest.approx(expected)


def test_ablation_spot_values():
    last_isles = [r for r in paper_rows(5) if r["row"] == 5 and r["dataset"] == "isles22"]
    assert [(r["dice"], r["hd95"], r["asd"]) for r in last_isles] == [(66.07, 13.34, 0.75)]
    first_brats = [r for r in paper_rows(5) if r["row"] == 1 and r["dataset"] == "brats19"]
    assert [(r["dice"], r["hd95"], r["asd"]) for r in first_brats] == [(82.68, 21.53, 5.89)]


def test_types():
    row = _find(1, "MT", 5)
    assert isinstance(row["labeled"], int) and isinstance(row["unlabeled"], int)
    assert isinstance(row["dice"], float) and isinstance(row["method"], str)
    assert isinstance(paper_rows(5)[0]["uncl"], bool)


@pytest.mark.parametrize("bad", [0, 6, -1, True])
def test_bad_table(bad):
    with pytest.raises(ValueError, match=r"valid tables are 1, 2, 3, 4, 5"):
        paper_rows(bad)


def test_missing_folder_is_a_clear_error(monkeypatch, tmp_path):
    import dycon.paper

    monkeypatch.setattr(dycon.paper, "__file__", str(tmp_path / "dycon" / "paper.py"))
    with pytest.raises(FileNotFoundError, match="results/paper"):
        paper_rows(1)
