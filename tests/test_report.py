"""report: ours pooled over seeds beside the paper; a difference only on the paper's real data at
a scale that can reach it; collapsed runs named, with the mean without them."""

import io
from pathlib import Path

import pandas as pd
import pytest

from dycon import report
from dycon.experiments import RunResult, RunSpec

REAL = {"kind": "real", "dataset": "isles22", "scale": "paper"}


def _result(row, percent, seed, dice, *, unit="mm", hd95=None, table=1, empty=None, **data):
    kind, dataset, scale = (
        data.get("kind", "synthetic"),
        data.get("dataset", "isles-sim"),
        data.get("scale", "quick"),
    )
    spec = RunSpec(table, row, "dycon", dataset, percent, 2, scale, seed)
    summary = {
        "run_id": f"{row}-{percent}-{seed}",
        "units": {"hd95": unit, "asd": unit},
        "data_kind": kind,
        "dataset": dataset,
        "scale": scale,
        "protocol": {
            "model_selection": "final",
            "model": "student",
            "convention": "honest" if unit == "mm" else "official",
            "test_list": "test.list",
        },
        "environment": {"git_commit": "abc", "cpu_count": 2},
        "train": {"seconds": 1.0},
        "eval_seconds": 1.0,
    }
    empty = empty or [False] * len(dice)
    cases = [
        {"dice": d, "iou": d / 2, "hd95": h, "asd": 1.0, "empty_pred": str(e)}
        for d, h, e in zip(dice, hd95 or [2.0] * len(dice), empty, strict=True)
    ]
    return RunResult(
        spec=spec, run_id=summary["run_id"], run_dir=Path("."), summary=summary, per_case=cases
    )


def _dycon(rows):
    (r,) = [x for x in rows if x["row"] == "DyCON"]
    return r


def test_seeds_are_pooled_and_delta_is_ours_minus_paper_on_real_paper_data():
    runs = [
        _result("DyCON", 5, 1, [60.0, 70.0], **REAL),
        _result("DyCON", 5, 2, [80.0, 90.0], **REAL),
    ]
    dycon = _dycon(report.compare(1, runs))
    assert dycon["ours_dice"] == pytest.approx(75.0)  # mean of the four pooled cases
    assert dycon["paper_dice"] == pytest.approx(61.48)
    assert dycon["delta_dice"] == pytest.approx(75.0 - 61.48)
    assert dycon["seeds"] == [1, 2] and dycon["status"] == "ran"
    low, high = dycon["ours_dice_ci"]
    assert 60.0 <= low < 75.0 < high <= 90.0


@pytest.mark.parametrize(
    ("data", "compared"),
    [
        (REAL, True),
        ({"kind": "real", "dataset": "isles22", "scale": "cpu"}, True),
        ({"kind": "real", "dataset": "isles22", "scale": "quick"}, False),  # too short
        ({"kind": "real", "dataset": "la", "scale": "paper"}, False),  # not Table 1's data
        ({"kind": "synthetic", "dataset": "isles-sim", "scale": "paper"}, False),
    ],
)
def test_delta_only_on_the_papers_real_data_at_a_scale_that_reaches_it(data, compared):
    rows = report.compare(1, [_result("DyCON", 5, 1, [60.0], **data)])
    assert (_dycon(rows)["delta_dice"] is not None) is compared
    html = report.to_html(1, rows)
    assert ("Δ (ours − paper)" in html) is compared
    assert (report.page_kind(1, [_result("DyCON", 5, 1, [60.0], **data)])[0] == "") is compared


def test_distance_delta_only_when_units_agree():
    a = _dycon(report.compare(1, [_result("DyCON", 5, 1, [60.0], hd95=[4.0], **REAL)]))
    b = _dycon(
        report.compare(1, [_result("DyCON", 5, 1, [60.0], unit="voxel", hd95=[4.0], **REAL)])
    )
    assert a["delta_hd95"] is None and a["ours_hd95"] == pytest.approx(4.0)
    assert b["delta_hd95"] == pytest.approx(4.0 - 17.61)


def test_collapsed_run_is_named_and_the_mean_without_it_is_given():
    runs = [
        _result("DyCON", 10, 1, [0.0, 0.0], empty=[True, True]),  # collapsed
        _result("DyCON", 10, 2, [50.0, 70.0]),
        _result("DyCON", 10, 3, [0.0, 80.0], empty=[True, False]),  # one empty case: not collapsed
    ]
    r = _dycon(report.compare(1, runs))
    assert r["collapsed_runs"] == ["DyCON-10-1"]
    assert r["ours_dice"] == pytest.approx(200.0 / 6)
    assert r["kept_dice"] == pytest.approx(50.0)
    assert "DyCON-10-1" in report.collapse_note([r]) and "1 of 3 runs" in report.collapse_note([r])
    assert "ours without collapsed" in report.to_html(1, [r])
    assert report.collapse_note(report.compare(1, runs[1:])) == ""


def test_paper_rows_not_run_are_kept_and_marked():
    rows = report.compare(1, [_result("DyCON", 10, 1, [50.0])])
    bcp = [r for r in rows if r["row"] == "BCP"]
    assert len(bcp) == 1 and bcp[0]["status"] == "not re-run"
    assert bcp[0]["paper_dice"] == pytest.approx(57.97) and bcp[0]["ours_dice"] is None
    assert all(r["percent"] == 10 for r in rows)  # only the labeled fraction that ran
    assert "not re-run" in report.to_html(1, rows) and "BCP" in report.to_text(1, rows)
    # each cell says why: an unbuilt architecture, or a row this run left out
    reasons = {r["row"]: r["not_rerun_reason"] for r in rows}
    assert reasons["BCP"] == "not among this run's rows" and reasons["DyCON"] is None
    full = report.compare(1, [_result("DyCON", 100, 1, [50.0])])  # W-Net: fully supervised
    (wnet,) = [r for r in full if r["row"] == "W-Net"]
    assert wnet["not_rerun_reason"] == "an architecture this library does not build"
    html = report.to_html(1, full)
    assert "not re-run<br><small>(an architecture this library does not build)</small>" in html
    # the terminal table tells the two apart in a word
    text_lines = report.to_text(1, rows).splitlines()
    (bcp_line,) = [line for line in text_lines if line.split()[:1] == ["BCP"]]
    assert "not asked" in bcp_line and "not re-run" not in bcp_line
    (wnet_line,) = [line for line in report.to_text(1, full).splitlines() if "W-Net" in line]
    assert "not re-run" in wnet_line and "not asked" not in wnet_line
    table4 = report.compare(4, [_result("DyCON (VNet)", 10, 1, [50.0])])
    (upc,) = [r for r in table4 if r["row"] == "UPC"]
    assert upc["not_rerun_reason"] == "not identified (results/paper/README.md)"


def test_one_table_per_metric_with_the_ci_on_its_own_line():
    rows = report.compare(1, [_result("DyCON", 5, 1, [60.0, 62.0])])
    html = report.to_html(1, rows)
    assert html.count('class="dycon-comparison"') == 4  # Dice, IoU, HD95, ASD
    assert "61.00<br><small>(" in html
    assert (
        report.to_html(5, report.compare(5, [_result("row 5", 10, 1, [1.0], table=5)])).count(
            'class="dycon-comparison"'
        )
        == 3
    )  # Table 5 prints no IoU


def test_frame_is_the_csv_a_reader_loads():
    rows = report.compare(1, [_result("DyCON", 5, 1, [60.0, 62.0], **REAL)])
    frame = pd.read_csv(io.StringIO(report.to_frame(1, rows).to_csv(index=False)))
    dice = frame[(frame["row"] == "DyCON") & (frame["metric"] == "dice")].iloc[0]
    assert dice["ours"] == pytest.approx(61.0) and dice["paper"] == pytest.approx(61.48)
    assert dice["delta"] == pytest.approx(61.0 - 61.48) and dice["unit"] == "%"
    assert set(frame["metric"]) == {"dice", "iou", "hd95", "asd"}


@pytest.mark.parametrize(
    ("switches", "label"),
    [
        ({}, "none (MT pipeline)"),
        ({"fecl_focal": True, "uncl": True}, "FeCL: F⁺F⁻ + UnCL"),
        ({"fecl_focal": True, "fecl_hard_negatives": True}, "FeCL: F⁺F⁻, HN"),
        ({"uncl": True}, "UnCL"),
    ],
)
def test_ablation_rows_are_named_by_their_components(switches, label):
    assert report.ablation_label(switches) == label


def test_banner_says_synthetic_scale_protocol_and_seeds():
    text = report.banner([_result("DyCON", 5, 7, [1.0])], notes=["a note"])
    for part in ("SYNTHETIC", "scale: quick", "final checkpoint", "honest", "seeds: 7", "a note"):
        assert part in text
    assert report.source_line(text).startswith("Data: isles-sim")


def test_glue_keys_and_plot_png():
    runs = [_result("DyCON", 5, 1, [60.0, 62.0])]
    rows = report.compare(1, runs)
    values = report.glue_values(1, rows)
    assert values["t1_dycon_5_dice_ours"] == "61.00" and values["t1_dycon_5_dice_paper"] == "61.48"
    assert values["t1_dycon_5_dice_delta"] == "—"  # synthetic: no difference
    assert report.page_glue(1, runs)["t1_data"] == "isles-sim (synthetic)"
    data = report.png(report.plot(1, rows, runs))
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_unknown_table_is_an_error():
    with pytest.raises(ValueError, match="unknown paper table 9"):
        report.compare(9, [])


def test_a_data_note_asking_for_a_label_names_the_data():
    runs = [_result("DyCON", 10, 1, [40.0], kind="real", dataset="la", scale="quick", table=4)]
    note = "not the upstream resolution: write 'LA, 2x downsampled' next to every number from it"
    assert report.page_glue(4, runs, notes=[note])["t4_data"] == "LA, 2x downsampled (real)"
    assert report.page_glue(4, runs)["t4_data"] == "la (real)"


def test_plot_jitter_is_the_same_on_every_render_and_leaves_numpy_state_alone():
    # the legacy global generator on purpose: it is the one seaborn's jitter draws from
    import numpy as np

    runs = [_result("DyCON", 5, seed, [60.0 + seed, 62.0]) for seed in (1, 2, 3)]
    rows = report.compare(1, runs)
    np.random.seed(123)  # noqa: NPY002
    expected_next = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    first = report.png(report.plot(1, rows, runs))
    assert np.random.random() == expected_next  # noqa: NPY002 (the caller's state is untouched)
    np.random.random()  # noqa: NPY002 (another state before the second render)
    assert report.png(report.plot(1, rows, runs)) == first


def test_plot_leaves_matplotlib_settings_as_it_found_them():
    import matplotlib

    runs = [_result("DyCON", 5, 1, [60.0])]
    before = dict(matplotlib.rcParams)
    report.png(report.plot(1, report.compare(1, runs), runs))
    assert dict(matplotlib.rcParams) == before


@pytest.mark.parametrize(
    "seconds, seeds, expected",
    [
        # one row: median of (100, 110, 2000) = 110, on 10 seeds
        ({("A", 5): [100, 110, 2000]}, 10, 1100.0),
        # two rows, even counts: medians 15 and 300, on 4 seeds
        ({("A", 5): [10, 20], ("B", 10): [300]}, 4, 1260.0),
    ],
)
def test_projected_seconds_takes_each_rows_median(seconds, seeds, expected):
    runs = [{"row": r, "percent": p, "seconds": s} for (r, p), ss in seconds.items() for s in ss]
    assert report.projected_seconds(runs, seeds=list(range(seeds))) == pytest.approx(expected)


def test_projected_seconds_needs_a_run():
    with pytest.raises(ValueError, match="no finished runs"):
        report.projected_seconds([], seeds=[1337])


@pytest.mark.parametrize(
    "seconds, seeds, expected",
    [
        # one seed = median 3600 s + 7200 s = 3 h: a 10 h night holds 3, ten seeds 30 h = 3 nights
        (
            {("A", 5): [3600, 3000, 9000], ("B", 10): [7200]},
            10,
            "one seed of the table (every row and fraction) takes "
            "3.0 h, so a 10-hour night holds 3 seeds; "
            "the 10 planned seeds take 30.0 h, 3 such nights",
        ),
        # 1.5 h a seed, two seeds: 3 h, inside one night, but one of a seed's two rows untimed
        (
            {("A", 5): [5400]},
            2,
            "one seed of the table (every row and fraction) takes "
            "1.5 h, so a 10-hour night holds 6 seeds; "
            "the 2 planned seeds take 3.0 h, one night, counting only the 1 of 2 row and "
            "fraction pairs timed so far (the others will add to it)",
        ),
    ],
)
def test_nights_says_whether_the_table_fits_one_night(seconds, seeds, expected):
    runs = [{"row": r, "percent": p, "seconds": s} for (r, p), ss in seconds.items() for s in ss]
    assert report.nights(runs, seeds=list(range(seeds)), planned_runs=2 * seeds) == expected


def test_nights_rejects_a_night_of_no_hours():
    with pytest.raises(ValueError, match="night_hours=0 must be positive"):
        report.nights(
            [{"row": "A", "percent": 5, "seconds": 1.0}], seeds=[1], planned_runs=1, night_hours=0
        )


@pytest.mark.parametrize(
    "planned_runs, expected",
    [
        (20, "3.0 h a seed, 30.0 h for the 10 planned seeds (3 such nights of 10 h)"),
        # a third row planned but not timed: the hours are floors
        (
            30,
            "at least 3.0 h a seed, at least 30.0 h for the 10 planned seeds "
            "(3 such nights of 10 h)",
        ),
    ],
)
def test_nights_brief_gives_the_hours_for_a_table_cell(planned_runs, expected):
    runs = [
        {"row": "A", "percent": 5, "seconds": 3600.0},
        {"row": "B", "percent": 10, "seconds": 7200.0},
    ]
    seeds = list(range(10))
    assert report.nights(runs, seeds=seeds, planned_runs=planned_runs, brief=True) == expected


@pytest.mark.parametrize(
    "verdicts, expected",
    [
        ([], "no claim paired yet"),
        (["reproduced"], "1 reproduced of 1 claim"),
        (
            ["not tested", "not reproduced", "not reproduced"],
            "2 not reproduced, 1 not tested of 3 claims",
        ),
    ],
)
def test_verdict_counts_reads_most_frequent_first(verdicts, expected):
    assert report.verdict_counts(verdicts) == expected
