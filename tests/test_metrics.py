"""Metrics: hand-computed cases, equality with medpy 0.5.2, empty-mask policies, lesions, CIs."""

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

try:  # the oracle is a dev dependency; the hand-computed tests run without it
    from medpy.metric import binary as medpy_binary
except ImportError:  # pragma: no cover
    medpy_binary = None

from dycon.metrics import (
    asd,
    case_metrics,
    dice,
    hd95,
    image_diagonal,
    iou,
    lesion_table,
    mean_ci,
    surface_distances,
)
from dycon.metrics import surface as surface_module

ANISO = (0.7, 0.7, 2.5)
needs_medpy = pytest.mark.skipif(medpy_binary is None, reason="medpy (the oracle) not installed")


def _mask(shape, *boxes):
    m = np.zeros(shape, dtype=np.uint8)
    for box in boxes:
        m[box] = 1
    return m


def _blob(shape, seed, *, frac, sigma=2.0):
    """Thresholded smoothed noise holding about ``frac`` of the voxels (never empty)."""
    field = gaussian_filter(np.random.default_rng(seed).normal(size=shape), sigma)
    return field > np.quantile(field, 1.0 - frac)


# ---------------------------------------------------------------- hand-computed cases
S = np.s_
LINE_A = _mask((6, 3, 10), S[1, 1, 2:7])
LINE_B = _mask((6, 3, 10), S[3, 1, 2:7])  # LINE_A moved by 2 along axis 0
LINE_SHORT = _mask((6, 3, 10), S[1, 1, 2:5])  # the first 3 voxels of LINE_A
CUBE = _mask((8, 8, 8), S[2:5, 2:5, 2:5])  # 27 voxels, 26 on the surface
CUBE_X = _mask((8, 8, 8), S[3:6, 2:5, 2:5])  # moved by 1 along axis 0
CUBE_Z = _mask((8, 8, 8), S[2:5, 2:5, 3:6])  # moved by 1 along axis 2
SQUARE = _mask((6, 6), S[1:4, 1:4])
SQUARE_Y = _mask((6, 6), S[1:4, 2:5])


def _far_voxels(spacing):
    return float(np.sqrt(np.sum((4 * np.asarray(spacing)) ** 2)))


# Lines: every voxel is surface. LINE_A vs LINE_SHORT: pred -> ref = (0, 0, 0, s, 2s),
# ref -> pred = (0, 0, 0); 8 pooled values, 95th percentile at rank 0.95 * 7 = 6.65 between
# s and 2s -> 1.65 s; ASD = 3s / 5.
# Cubes moved by one voxel: 10 of the 26 surface voxels in each direction are one step away (the
# moved face and the other cube's centre, which is not surface), so ASD = 10 s / 26 and the
# 95th percentile of 20 ones and 32 zeros is s. Moved along z with spacing (0.7, 0.7, 2.5): the
# face is 2.5 away but the centre is 0.7 away sideways -> ASD = (9 * 2.5 + 0.7) / 26.
# Squares (2-D): 4 of 8 surface pixels one step away -> ASD = s / 2, HD95 = s.
HAND = [
    ("lines-apart", LINE_B, LINE_A, None, 0.0, 0.0, 2.0, 2.0),
    ("lines-apart-aniso", LINE_B, LINE_A, ANISO, 0.0, 0.0, 1.4, 1.4),
    ("lines-nested", LINE_A, LINE_SHORT, None, 75.0, 60.0, 1.65, 0.6),
    ("lines-nested-aniso", LINE_A, LINE_SHORT, ANISO, 75.0, 60.0, 1.65 * 2.5, 0.6 * 2.5),
    ("cubes-x", CUBE_X, CUBE, None, 200 / 3, 50.0, 1.0, 10 / 26),
    ("cubes-x-iso2", CUBE_X, CUBE, (2.0, 2.0, 2.0), 200 / 3, 50.0, 2.0, 20 / 26),
    ("cubes-x-aniso", CUBE_X, CUBE, ANISO, 200 / 3, 50.0, 0.7, 7 / 26),
    ("cubes-z-aniso", CUBE_Z, CUBE, ANISO, 200 / 3, 50.0, 2.5, 23.2 / 26),
    ("cubes-same", CUBE, CUBE, ANISO, 100.0, 100.0, 0.0, 0.0),
    ("voxels-far", _mask((5, 5, 5), S[0, 0, 0]), _mask((5, 5, 5), S[4, 4, 4]), ANISO,
     0.0, 0.0, _far_voxels(ANISO), _far_voxels(ANISO)),
    ("squares-y", SQUARE_Y, SQUARE, None, 200 / 3, 50.0, 1.0, 0.5),
    ("squares-y-aniso", SQUARE_Y, SQUARE, (2.0, 0.5), 200 / 3, 50.0, 0.5, 0.25),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pred", "ref", "spacing", "e_dice", "e_iou", "e_hd95", "e_asd"),
    [case[1:] for case in HAND],
    ids=[case[0] for case in HAND],
)
def test_hand_computed(pred, ref, spacing, e_dice, e_iou, e_hd95, e_asd):
    assert dice(pred, ref, spacing=spacing) == pytest.approx(e_dice, abs=1e-9)
    assert iou(pred, ref, spacing=spacing) == pytest.approx(e_iou, abs=1e-9)
    assert hd95(pred, ref, spacing=spacing) == pytest.approx(e_hd95, abs=1e-9)
    assert asd(pred, ref, spacing=spacing) == pytest.approx(e_asd, abs=1e-9)
    row = case_metrics(pred, ref, spacing=spacing)
    expected = (e_dice, e_iou, e_hd95, e_asd)
    assert [row[k] for k in ("dice", "iou", "hd95", "asd")] == pytest.approx(expected, abs=1e-9)


def test_asd_is_directed_and_hd95_symmetric():
    assert asd(LINE_SHORT, LINE_A) == 0.0  # every reference-side point has a partner
    assert asd(LINE_A, LINE_SHORT) == pytest.approx(0.6)
    assert hd95(LINE_SHORT, LINE_A) == hd95(LINE_A, LINE_SHORT)
    d_pr, d_rp = surface_distances(LINE_A, LINE_SHORT, spacing=ANISO)
    np.testing.assert_allclose(d_pr, [0, 0, 0, 2.5, 5.0])
    np.testing.assert_allclose(d_rp, [0, 0, 0])


# ---------------------------------------------------------------- medpy as the oracle
def _assert_matches_medpy(pred, ref, spacing):
    mb = medpy_binary
    assert dice(pred, ref) == pytest.approx(100 * mb.dc(pred, ref), abs=1e-6)
    assert iou(pred, ref) == pytest.approx(100 * mb.jc(pred, ref), abs=1e-6)
    assert hd95(pred, ref, spacing=spacing) == pytest.approx(
        mb.hd95(pred, ref, voxelspacing=spacing), abs=1e-6
    )
    assert asd(pred, ref, spacing=spacing) == pytest.approx(
        mb.asd(pred, ref, voxelspacing=spacing), abs=1e-6
    )
    row = case_metrics(pred, ref, spacing=spacing)
    assert row["hd95"] == pytest.approx(mb.hd95(pred, ref, voxelspacing=spacing), abs=1e-6)
    assert row["asd"] == pytest.approx(mb.asd(pred, ref, voxelspacing=spacing), abs=1e-6)


@needs_medpy
@pytest.mark.parametrize("spacing", [None, (1.5, 1.5, 1.5), ANISO], ids=["vox", "iso", "aniso"])
@pytest.mark.parametrize("seed", range(12))
def test_random_blobs_match_medpy(seed, spacing):
    rng = np.random.default_rng(1000 + seed)
    shape = (24, 20, 16)
    # sizes from a few voxels to half the volume, so many blobs touch the array border
    ref = _blob(shape, seed, frac=rng.uniform(0.01, 0.5), sigma=rng.uniform(1.0, 3.0))
    pred = _blob(shape, seed + 100, frac=rng.uniform(0.01, 0.5), sigma=rng.uniform(1.0, 3.0))
    if seed % 2:  # a prediction that mostly agrees: a noisy copy of the reference
        pred = ref ^ (rng.random(shape) < 0.03)
    _assert_matches_medpy(pred, ref, spacing)


@needs_medpy
@pytest.mark.parametrize("seed", range(6))
def test_random_2d_blobs_match_medpy(seed):
    ref = _blob((40, 33), seed, frac=0.2)
    pred = _blob((40, 33), seed + 50, frac=0.15)
    _assert_matches_medpy(pred, ref, (0.8, 1.3))
    _assert_matches_medpy(pred, ref, None)


BORDER = [
    ("full-array", np.ones((6, 7, 5), bool), _mask((6, 7, 5), S[1:4, 2:5, 1:3])),
    ("face", _mask((6, 7, 5), S[0, :, :]), _mask((6, 7, 5), S[:, 6, :])),
    ("corners", _mask((6, 7, 5), S[:2, :2, :2]), _mask((6, 7, 5), S[4:, 5:, 3:])),
    ("slab-vs-blob", _mask((9, 9, 9), S[:, :, :3]), _mask((9, 9, 9), S[2:7, 2:7, 1:8])),
    ("single-voxels", _mask((6, 7, 5), S[0, 6, 2]), _mask((6, 7, 5), S[5, 0, 4])),
    ("same-voxel", _mask((6, 7, 5), S[0, 0, 0]), _mask((6, 7, 5), S[0, 0, 0])),
    ("voxel-in-cube", _mask((6, 7, 5), S[2, 3, 2]), _mask((6, 7, 5), S[1:4, 2:5, 1:4])),
]


@needs_medpy
@pytest.mark.parametrize("spacing", [None, ANISO], ids=["vox", "aniso"])
@pytest.mark.parametrize(("pred", "ref"), [b[1:] for b in BORDER], ids=[b[0] for b in BORDER])
def test_border_and_single_voxel_cases_match_medpy(pred, ref, spacing):
    _assert_matches_medpy(pred, ref, spacing)
    _assert_matches_medpy(ref, pred, spacing)


def test_crop_does_not_change_results():
    """The same pair embedded in a larger background gives identical distance sets."""
    ref, pred = _blob((12, 10, 8), 3, frac=0.3), _blob((12, 10, 8), 4, frac=0.3)
    big_ref, big_pred = np.zeros((30, 25, 20), bool), np.zeros((30, 25, 20), bool)
    big_ref[9:21, 7:17, 6:14], big_pred[9:21, 7:17, 6:14] = ref, pred
    small = surface_distances(pred, ref, spacing=ANISO)
    big = surface_distances(big_pred, big_ref, spacing=ANISO)
    for a, b in zip(small, big, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- the three searches of surface.py
def _scan_must_finish(n_left, dst):
    raise AssertionError(f"the scan left {n_left} points")


# Each setting forces one search (or a mix) on the same inputs; all must give medpy's numbers.
SEARCHES = {
    # the scan's disc covers the whole box: every point is final within the scan
    "scan": {"_SCAN_OFFSETS": 10**6, "_SCAN_WORK": math.inf, "_far": _scan_must_finish},
    # the scan tries offset 0 only (final: points on the other surface); the rest: KD-tree / EDT
    "kdtree": {"_SCAN_OFFSETS": 0, "_far": lambda n, dst: surface_module._kdtree},
    "transform": {"_SCAN_OFFSETS": 0, "_far": lambda n, dst: surface_module._transform},
    # tiny chunks, disc and budget: the scan stops early, the fallback is chosen automatically
    "mixed": {"_SCAN_OFFSETS": 6, "_CHUNK": 5, "_SCAN_WORK": 0.3},
}
_SHAPE3 = (14, 12, 10)
SEARCH_CASES = [
    ("blobs-vox", _blob(_SHAPE3, 7, frac=0.3), _blob(_SHAPE3, 8, frac=0.2), None),
    ("blobs-aniso", _blob(_SHAPE3, 7, frac=0.3), _blob(_SHAPE3, 8, frac=0.2), ANISO),
    # the finest axis is the middle one, then the last one: other layouts of the gap table
    ("blobs-fine-y", _blob(_SHAPE3, 9, frac=0.1), _blob(_SHAPE3, 10, frac=0.4), (2.5, 0.7, 1.1)),
    ("blobs-fine-z", _blob(_SHAPE3, 9, frac=0.1), _blob(_SHAPE3, 10, frac=0.4), (1.2, 1.1, 0.6)),
    ("one-voxel-vs-blob", _mask(_SHAPE3, S[2, 9, 7]), _blob(_SHAPE3, 11, frac=0.2), ANISO),
    ("one-voxel-inside", _mask(_SHAPE3, S[7, 6, 5]), _mask(_SHAPE3, S[2:12, 1:11, 1:9]), ANISO),
    ("2d-fine-x", _blob((30, 26), 12, frac=0.2), _blob((30, 26), 13, frac=0.3), (0.8, 1.3)),
    ("2d-fine-y", _blob((30, 26), 12, frac=0.2), _blob((30, 26), 13, frac=0.3), (2.0, 0.5)),
    ("2d-vox", _blob((30, 26), 14, frac=0.05), _blob((30, 26), 15, frac=0.5), None),
]


@needs_medpy
@pytest.mark.parametrize("search", list(SEARCHES))
@pytest.mark.parametrize(
    ("pred", "ref", "spacing"), [c[1:] for c in SEARCH_CASES], ids=[c[0] for c in SEARCH_CASES]
)
def test_every_search_matches_medpy(monkeypatch, search, pred, ref, spacing):
    expected = surface_distances(pred, ref, spacing=spacing)  # default, automatic choice
    for name, value in SEARCHES[search].items():
        monkeypatch.setattr(surface_module, name, value)
    _assert_matches_medpy(pred, ref, spacing)
    _assert_matches_medpy(ref, pred, spacing)
    for got, want in zip(surface_distances(pred, ref, spacing=spacing), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_fallback_choice():
    """KD-tree for a few points or a small target surface, the box's transform otherwise."""
    box = np.zeros((40, 40, 40), bool)
    box[::2, ::2, ::2] = True  # 8,000 target voxels in a box of 64,000
    assert surface_module._far(100, box) is surface_module._kdtree
    assert surface_module._far(50_000, box) is surface_module._transform
    single = np.zeros_like(box)
    single[3, 4, 5] = True  # each query is cheap whatever the number of points
    assert surface_module._far(50_000, single) is surface_module._kdtree


@pytest.mark.parametrize(
    "convert",
    [
        lambda m: m.astype(bool),
        lambda m: m.astype(np.uint8) * 255,
        lambda m: m.astype(np.int64),
        lambda m: m.astype(np.float32),
    ],
    ids=["bool", "uint8-255", "int64", "float32-01"],
)
def test_dtypes_nonzero_is_foreground(convert):
    expected = case_metrics(CUBE_X, CUBE, spacing=ANISO)
    assert case_metrics(convert(CUBE_X), convert(CUBE), spacing=ANISO) == expected


# ---------------------------------------------------------------- empty masks
EMPTY = np.zeros((8, 8, 8), np.uint8)


@pytest.mark.parametrize("fn", [hd95, asd, surface_distances])
@pytest.mark.parametrize(
    ("pred", "ref", "which"),
    [(EMPTY, CUBE, "prediction"), (CUBE, EMPTY, "reference"), (EMPTY, EMPTY, "prediction")],
)
def test_distances_raise_on_empty(fn, pred, ref, which):
    with pytest.raises(ValueError, match=f"{which} is empty"):
        fn(pred, ref)


def test_overlap_of_empty_masks():
    assert dice(EMPTY, EMPTY) == 100.0 and iou(EMPTY, EMPTY) == 100.0  # as medpy dc, jc
    assert dice(EMPTY, CUBE) == 0.0 and iou(CUBE, EMPTY) == 0.0


def _values(row):
    return [row[k] for k in ("dice", "iou", "hd95", "asd")]


def test_honest_convention_empty_masks():
    missed = case_metrics(EMPTY, CUBE, spacing=ANISO)
    assert missed["dice"] == 0.0 and missed["iou"] == 0.0
    assert math.isnan(missed["hd95"]) and math.isnan(missed["asd"])
    assert missed["empty_pred"] and not missed["empty_ref"]
    assert missed["distance_unit"] == "mm" and missed["convention"] == "honest"
    alarm = case_metrics(CUBE, EMPTY)
    assert not alarm["empty_pred"] and alarm["empty_ref"] and alarm["distance_unit"] == "voxel"
    assert _values(alarm)[:2] == [0.0, 0.0] and math.isnan(alarm["hd95"])
    both = case_metrics(EMPTY, EMPTY)
    assert _values(both)[:2] == [100.0, 100.0] and math.isnan(both["asd"])
    assert both["empty_pred"] and both["empty_ref"]


def test_honest_convention_diagonal_penalty():
    diag = math.sqrt((8 * 0.7) ** 2 * 2 + (8 * 2.5) ** 2)
    assert image_diagonal((8, 8, 8), spacing=ANISO) == pytest.approx(diag)
    for pred, ref in [(EMPTY, CUBE), (CUBE, EMPTY)]:
        row = case_metrics(pred, ref, spacing=ANISO, empty_penalty="diagonal")
        assert row["hd95"] == pytest.approx(diag) and row["asd"] == pytest.approx(diag)
    both = case_metrics(EMPTY, EMPTY, spacing=ANISO, empty_penalty="diagonal")
    assert math.isnan(both["hd95"]) and both["dice"] == 100.0
    normal = case_metrics(CUBE_X, CUBE, empty_penalty="diagonal")
    assert normal["hd95"] == 1.0  # the penalty touches only empty cases


def test_official_convention():
    assert _values(case_metrics(EMPTY, CUBE, convention="official")) == [0.0] * 4
    assert _values(case_metrics(CUBE, EMPTY, convention="official")) == [0.0] * 4
    assert _values(case_metrics(EMPTY, EMPTY, convention="official")) == [0.0] * 4
    # voxel units whatever spacing is passed (medpy without voxelspacing): the cubes-z case of
    # the hand-computed table scores 2.5 and 23.2 / 26 in mm, 1 and 10 / 26 in voxels
    row = case_metrics(CUBE_Z, CUBE, spacing=ANISO, convention="official")
    assert row["distance_unit"] == "voxel" and row["convention"] == "official"
    assert _values(row) == pytest.approx([200 / 3, 50.0, 1.0, 10 / 26])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"convention": "paper"}, "convention must be one of"),
        ({"empty_penalty": "max"}, "empty_penalty must be one of"),
        ({"convention": "official", "empty_penalty": "diagonal"}, "honest"),
    ],
)
def test_case_metrics_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        case_metrics(CUBE, CUBE, **kwargs)


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("pred", "ref", "spacing", "match"),
    [
        (CUBE, CUBE[:-1], None, r"same shape, got \(8, 8, 8\) and \(7, 8, 8\)"),
        (CUBE * 0.7, CUBE, None, "threshold the probability map first"),
        (CUBE, np.full((8, 8, 8), np.nan), None, "not binary"),
        (CUBE[None], CUBE[None], None, "2-D or 3-D"),
        (CUBE[0, 0], CUBE[0, 0], None, "2-D or 3-D"),
        (CUBE.astype(complex), CUBE, None, "dtype complex"),
        (CUBE, CUBE, (1.0, 1.0), r"spacing \(1.0, 1.0\) has 2 values for a 3-D mask"),
        (CUBE, CUBE, (1.0, 0.0, 1.0), r"spacing \(1.0, 0.0, 1.0\) must be finite and > 0"),
        (CUBE, CUBE, (1.0, -2.0, 1.0), "must be finite and > 0"),
        (CUBE, CUBE, (1.0, math.inf, 1.0), "must be finite and > 0"),
        (CUBE, CUBE, 1.0, "spacing must be a sequence of 3 voxel sizes in mm, got 1.0"),
        (CUBE, CUBE, "1,1,1", "spacing must be a sequence"),
        (CUBE, CUBE, ("a", 1, 1), "spacing must hold numbers"),
    ],
)
@pytest.mark.parametrize("fn", [dice, iou, hd95, asd, case_metrics])
def test_bad_input_raises(fn, pred, ref, spacing, match):
    with pytest.raises(ValueError, match=match):
        fn(pred, ref, spacing=spacing)


# ---------------------------------------------------------------- lesions
def test_lesion_table_three_components_one_missed():
    shape = (20, 20, 20)
    ref = _mask(shape, S[2:5, 2:5, 2:5], S[10:12, 10:12, 10:12], S[16, 3, 16])  # 27, 8, 1
    pred = _mask(
        shape,
        S[2:6, 2:5, 2:5],  # component 1 plus one extra face of 9 voxels (inside its neighbourhood)
        S[10:12, 10:12, 10],  # half of component 2
        S[17:19, 17:19, 2:4],  # a false positive far from everything
    )
    table = lesion_table(pred, ref, spacing=(1.0, 1.0, 2.0))
    assert table.false_positives == 1 and table.pred_components == 3
    rows = table.lesions
    assert [r["component"] for r in rows] == [1, 2, 3]
    assert [r["voxels"] for r in rows] == [27, 8, 1]
    assert [r["volume_ml"] for r in rows] == pytest.approx([0.054, 0.016, 0.002])
    assert [r["detected"] for r in rows] == [True, True, False]
    assert [r["overlap_voxels"] for r in rows] == [27, 4, 0]
    expected_dice = [100 * 54 / 63, 100 * 8 / 12, 0.0]
    assert [r["dice"] for r in rows] == pytest.approx(expected_dice)


def test_lesion_dice_ignores_neighbouring_lesions_and_far_prediction():
    ref = _mask((12, 12, 12), S[2:4, 2:4, 2:4], S[2:4, 2:4, 5:7])  # two lesions 1 voxel apart
    pred = _mask((12, 12, 12), S[2:4, 2:4, 2:4], S[2:4, 2:4, 5:7], S[9:11, 9:11, 9:11])
    table = lesion_table(pred, ref, spacing=(1, 1, 1))
    assert [r["dice"] for r in table.lesions] == pytest.approx([100.0, 100.0])
    assert table.false_positives == 1
    # neighbourhood 0: only the component itself is judged
    alone = lesion_table(
        _mask((12, 12, 12), S[1:5, 1:5, 1:5]), ref, spacing=(1, 1, 1), neighbourhood=0
    )
    assert alone.lesions[0]["dice"] == pytest.approx(100.0) and alone.false_positives == 0


def test_lesion_connectivity():
    ref = _mask((5, 5, 5), S[1, 1, 1], S[2, 2, 2])  # touching only at a corner
    assert len(lesion_table(ref, ref, spacing=(1, 1, 1)).lesions) == 1  # 26-neighbours
    assert len(lesion_table(ref, ref, spacing=(1, 1, 1), connectivity=1).lesions) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spacing": None}, "needs spacing"),
        ({"spacing": (1, 1, 1), "connectivity": 4}, "connectivity must be an int in 1..3"),
        ({"spacing": (1, 1, 1), "neighbourhood": -1}, "neighbourhood must be an int >= 0"),
    ],
)
def test_lesion_table_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lesion_table(CUBE, CUBE, **kwargs)
    with pytest.raises(ValueError, match="needs 3-D masks"):
        lesion_table(SQUARE, SQUARE, spacing=(1, 1))


# ---------------------------------------------------------------- aggregation
def test_mean_ci_known_data():
    m = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert m.mean == 3.0 and m.n == 5 and m.n_nan == 0
    assert 1.0 <= m.low <= 3.0 <= m.high <= 5.0
    assert mean_ci([1.0, 2.0, 3.0, 4.0, 5.0]) == m  # seeded: reproducible
    mean, low, high, n, n_nan = mean_ci([1.0, math.nan, 3.0, math.nan])
    assert (mean, n, n_nan) == (2.0, 2, 2) and low <= 2.0 <= high


def test_mean_ci_width_matches_normal_theory():
    x = np.random.default_rng(0).normal(10.0, 2.0, size=400)
    m = mean_ci(x, level=0.9)
    half = 1.6449 * x.std(ddof=1) / math.sqrt(x.size)
    assert m.mean == pytest.approx(x.mean())
    assert (m.high - m.low) / 2 == pytest.approx(half, rel=0.1)


def test_mean_ci_degenerate_and_bad_input():
    assert mean_ci([7.0])[:4] == (7.0, 7.0, 7.0, 1)
    nan = mean_ci([math.nan, math.nan])
    assert math.isnan(nan.mean) and math.isnan(nan.low) and (nan.n, nan.n_nan) == (0, 2)
    with pytest.raises(ValueError, match="infinity"):
        mean_ci([1.0, math.inf])
    with pytest.raises(ValueError, match="level"):
        mean_ci([1.0, 2.0], level=95)
    with pytest.raises(ValueError, match="n_boot"):
        mean_ci([1.0, 2.0], n_boot=0)
