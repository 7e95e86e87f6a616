"""Training curves from a hand-written log.jsonl, and TP / FN / FP overlays on a built case."""

import json
import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure
from matplotlib.image import imread

from dycon.analysis import (
    FN,
    FP,
    GT_CONTOUR,
    TP,
    OverlayCase,
    overlay_grid,
    overlay_rgb,
    pick_slices,
    plot_curves,
    read_log,
    smooth_ema,
)


def record(step, terms, *, val=None, skipped=False, loss=None):
    rec = {
        "step": step,
        "loss": sum(terms.values()) if loss is None else loss,
        "terms": terms,
        "weights": {k: 0.5 if k != "sup" else 1.0 for k in terms},
        "logs": {"beta": 5.0 - step / 10},
        "lr": 0.01,
        "skipped": skipped,
    }
    if val is not None:
        rec["val_dice"] = val
    return json.dumps(rec)


@pytest.fixture
def runs(tmp_path):
    dycon = tmp_path / "dycon-run"
    dycon.mkdir()
    lines = [
        record(10, {"sup": 2.0, "uncl": 4.0, "fecl": 0.6}),
        record(20, {"sup": 1.5, "uncl": 3.0, "fecl": 0.7}, val=40.0),
        record(30, {"sup": 9.0, "uncl": 9.0, "fecl": 9.0}),  # replaced by the resumed line
        record(30, {"sup": 1.0, "uncl": 2.0, "fecl": float("nan")}, skipped=True, loss=math.nan),
        "",
        record(40, {"sup": 0.5, "uncl": 1.0, "fecl": 0.8}, val=61.5),
        '{"step": 50, "loss": 1.',  # killed mid-write
    ]
    (dycon / "log.jsonl").write_text("\n".join(lines))
    mt = tmp_path / "mt.jsonl"
    mt.write_text(
        "\n".join(
            [
                record(10, {"sup": 2.2, "consistency": 0.1}),
                record(20, {"sup": 1.8, "consistency": 0.2}, val=35.0),
                record(40, {"sup": 0.9, "consistency": 0.3}, val=50.0),
            ]
        )
    )
    return dycon, mt


def test_read_log_series(runs):
    dycon, _ = runs
    with pytest.warns(UserWarning, match="truncated"):
        log = read_log(dycon)
    assert log.name == "dycon-run"
    assert log.steps.tolist() == [10, 20, 30, 40]
    assert list(log.terms) == ["sup", "uncl", "fecl"]
    assert log.terms["sup"].tolist() == [2.0, 1.5, 1.0, 0.5]
    assert math.isnan(log.terms["fecl"][2]) and math.isnan(log.loss[2])
    assert log.skipped.tolist() == [False, False, True, False]
    assert log.weights["uncl"].tolist() == [0.5] * 4
    assert log.logs["beta"][0] == pytest.approx(4.0)
    assert log.val_steps.tolist() == [20, 40] and log.val_dice.tolist() == [40.0, 61.5]


def test_read_log_rejects_a_broken_middle_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(record(10, {"sup": 1.0}) + "\nnot json\n" + record(20, {"sup": 1.0}))
    with pytest.raises(ValueError, match=r"log.jsonl:2"):
        read_log(path)
    with pytest.raises(ValueError, match="no training log"):
        read_log(tmp_path / "missing")


def test_smooth_ema():
    y = smooth_ema(np.array([1.0, np.nan, 3.0]), 0.5)
    assert y[0] == 1.0 and math.isnan(y[1])
    assert y[2] == pytest.approx((0.25 * 1 + 0.5 * 3) / 0.75)  # debiased EMA


def test_plot_curves_two_runs(runs, tmp_path):
    dycon, mt = runs
    with pytest.warns(UserWarning):
        fig = plot_curves({"DyCON": dycon, "MT": mt}, weighted=True, smooth=0.3)
    assert isinstance(fig, Figure)
    ax_loss, ax_val = fig.axes
    # loss + 3 terms for DyCON, loss + 2 terms for MT; one validation curve per run
    assert len(ax_loss.get_lines()) == 7 and len(ax_val.get_lines()) == 2
    assert ax_val.get_lines()[0].get_xdata().tolist() == [20, 40]
    assert [t.get_text() for t in ax_val.get_legend().get_texts()] == ["DyCON", "MT"]
    assert read_log(mt).name == "mt"  # a log not called log.jsonl is named by its stem
    fig.savefig(tmp_path / "curves.png", dpi=50)
    png = imread(tmp_path / "curves.png")
    assert png.shape[:2] == (round(4.0 * 50), round(6.8 * 50))  # sized for the 676 px column


def overlay_case():
    """A 16 x 16 x 8 volume: GT block, prediction shifted so TP, FN and FP areas are 4 x 8."""
    image = np.tile(np.linspace(0.0, 1.0, 16)[:, None, None], (1, 16, 8)).astype(np.float32)
    gt = np.zeros(image.shape, dtype=bool)
    pred = np.zeros_like(gt)
    gt[2:10, 4:12, 3:5] = True
    pred[6:14, 4:12, 3:5] = True
    gt[2:4, 2:4, 7] = True  # a smaller lesion on another slice
    return image, gt, pred


def test_pick_slices():
    _, gt, pred = overlay_case()
    assert pick_slices(gt, n=3) == [3, 4, 7]
    # slices 2 and 3 of axis 0 tie on GT (20 voxels each): the one nearer the middle wins ...
    assert pick_slices(gt, axis=0, n=2) == [3, 2]
    # ... unless the prediction breaks the tie
    shifted = np.zeros_like(pred)
    shifted[2] = True
    assert pick_slices(gt, axis=0, n=2, pred=shifted) == [2, 3]
    empty = np.zeros((4, 4, 5), dtype=bool)
    assert pick_slices(empty) == [2]  # no lesion: the middle slice
    with pytest.raises(ValueError, match="3-D"):
        pick_slices(gt[0])


def test_overlay_rgb_colours():
    image, gt, pred = overlay_case()
    s = 3
    rgb = overlay_rgb(image[:, :, s], gt[:, :, s], pred[:, :, s], alpha=1.0, contour=True)
    assert rgb.shape == (16, 16, 3)
    assert tuple(rgb[7, 7]) == TP  # interior of the overlap
    assert tuple(rgb[3, 7]) == FN  # inside GT, not predicted
    assert tuple(rgb[11, 7]) == FP  # predicted, outside GT
    assert tuple(rgb[2, 7]) == GT_CONTOUR  # GT border
    assert rgb[0, 0].tolist() == [0.0, 0.0, 0.0] and rgb[15, 0].tolist() == [1.0] * 3  # gray
    blended = overlay_rgb(image[:, :, s], gt[:, :, s], pred[:, :, s], alpha=0.5)
    assert np.argmax(blended[7, 7]) == 1 and np.argmax(blended[3, 7]) == 2  # green, blue
    with pytest.raises(ValueError, match="must match"):
        overlay_rgb(image[:, :, s], gt[:-1, :, s], pred[:, :, s])


def test_overlay_grid_pixels_and_png(tmp_path):
    image, gt, pred = overlay_case()
    cases = [
        OverlayCase("case-a", image, gt, {"DyCON": pred, "MT": gt}),
        OverlayCase("case-b", image[None], gt, {"DyCON": pred, "MT": pred}, slices=[7]),
    ]
    fig = overlay_grid(cases, alpha=1.0, window=(0, 100), panel_size=2.0, dpi=100)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert fig.axes[0].get_title() == "DyCON" and "slice 3" in fig.axes[0].get_ylabel()
    path = tmp_path / "overlay.png"
    fig.savefig(path)
    png = imread(path)  # RGBA floats in [0, 1], row 0 at the top
    assert png.shape[:2] == (round((2 * 2.0 + 0.5) * 100), 2 * 2 * 100)  # 2 x 2 panels + legend
    height = png.shape[0]
    ax = fig.axes[0]  # case-a, DyCON, slice 3, shown transposed with the origin at the bottom

    def colour(i, j):
        x, y = ax.transData.transform((i, j))
        return png[int(height - y), int(x), :3]

    assert np.allclose(colour(7, 7), TP, atol=0.02)
    assert np.allclose(colour(4, 7), FN, atol=0.02)
    assert np.allclose(colour(11, 7), FP, atol=0.02)
    assert np.allclose(colour(14, 1), 14 / 15, atol=0.02)  # plain gray image outside
    with pytest.raises(ValueError, match="no prediction"):
        overlay_grid(cases, methods=["UA-MT"])
