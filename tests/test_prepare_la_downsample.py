"""``prepare la --downsample F``: block mean / strict majority, reproducing shared/data/la/half."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from data_fixtures import SHARED_LA, SHARED_SPLITS

from dycon.cli import main
from dycon.data.prepare import prepare
from dycon.data.prepare.la import downsample_volume
from dycon.data.readers import read_case
from dycon.data.splits import read_split
from dycon.data.volume import DataError, Volume

LA_FULL, LA_HALF = SHARED_LA / "full", SHARED_LA / "half"
LISTS = SHARED_SPLITS / "la"  # the pinned train/test lists (full/'s lists name only its 4)
needs_la = pytest.mark.skipif(
    not (LA_FULL.is_dir() and LA_HALF.is_dir() and LISTS.is_dir()),
    reason="shared LA data (full/, half/) or split lists absent",
)


def _ids() -> list[str]:
    return read_split(LA_FULL / "train.list") + read_split(LA_FULL / "test.list")


def _volume(image: np.ndarray, label: np.ndarray, spacing=(0.625, 0.625, 0.625)) -> Volume:
    return Volume(
        image=np.asarray(image, dtype=np.float32)[None],
        label=np.asarray(label, dtype=np.uint8),
        spacing=spacing,
        case_id="toy",
    )


def _block(votes: int) -> np.ndarray:
    """A 2x2x2 label block with ``votes`` foreground voxels."""
    return (np.arange(8) < votes).astype(np.uint8).reshape(2, 2, 2)


# (label of one 2x2x2 block as its foreground count, expected label): strict majority, 4-4 -> 0
MAJORITY = [(0, 0), (3, 0), (4, 0), (5, 1), (8, 1)]


@pytest.mark.parametrize("votes, expected", MAJORITY)
def test_label_is_strict_block_majority(votes, expected):
    out = downsample_volume(_volume(np.zeros((2, 2, 2)), _block(votes)), steps=1)
    assert out.label.tolist() == [[[expected]]]


# (image shape, expected output shape): an odd axis loses its last plane
SHAPES = [((2, 2, 2), (1, 1, 1)), ((3, 5, 4), (1, 2, 2)), ((183, 140, 88), (91, 70, 44))]


@pytest.mark.parametrize("shape, expected", SHAPES)
def test_odd_axes_drop_their_last_plane(shape, expected):
    out = downsample_volume(_volume(np.zeros(shape), np.zeros(shape)), steps=1)
    assert out.label.shape == expected and out.image.shape == (1, *expected)


def test_image_is_block_mean_and_spacing_doubles_per_step():
    image = np.arange(4 * 4 * 4, dtype=np.float32).reshape(4, 4, 4)
    # block (0, 0, 0) of 2x: voxels x, y, z in {0, 1}: values 16x + 4y + z, mean 10.5
    two = downsample_volume(_volume(image, np.zeros((4, 4, 4))), steps=1)
    assert two.image[0, 0, 0, 0] == pytest.approx(10.5)
    assert two.spacing == (1.25, 1.25, 1.25)
    # 4x: the mean of all 64 values 0..63 is 31.5
    four = downsample_volume(_volume(image, np.zeros((4, 4, 4))), steps=2)
    assert four.image.tolist() == [[[[31.5]]]] and four.spacing == (2.5, 2.5, 2.5)


def test_majority_of_majorities_at_4x():
    # 8 blocks of 2x2x2: five hold 5 votes (-> 1), three hold 8 (-> 1): 4x label 1; with five
    # blocks at 4 votes (ties -> 0) and three at 8, the 4x label is 0 although 44 of 64 are 1.
    label = np.zeros((4, 4, 4), dtype=np.uint8)
    for i, (x, y, z) in enumerate(np.ndindex(2, 2, 2)):
        label[2 * x : 2 * x + 2, 2 * y : 2 * y + 2, 2 * z : 2 * z + 2] = _block(4 if i < 5 else 8)
    out = downsample_volume(_volume(np.zeros((4, 4, 4)), label), steps=2)
    assert int(label.sum()) == 44 and out.label.tolist() == [[[0]]]


def test_too_small_to_halve_is_a_clear_error():
    with pytest.raises(DataError, match="too small to halve"):
        downsample_volume(_volume(np.zeros((2, 1, 2)), np.zeros((2, 1, 2))), steps=1)


@pytest.mark.parametrize("factor", [3, 0, 16, "2", True])
def test_bad_factor_is_refused_before_any_work(tmp_path, factor):
    with pytest.raises(DataError, match=r"downsample=.* is not one of \[1, 2, 4, 8\]"):
        prepare("la", raw=tmp_path / "missing", dest=tmp_path / "la", downsample=factor)
    assert list(tmp_path.iterdir()) == []


@needs_la
def test_2x_of_full_equals_shared_half(tmp_path):
    dest = prepare(
        "la", raw=LA_FULL, dest=tmp_path / "la", cases=_ids(), lists_dir=LISTS, downsample=2
    )
    for case in _ids():
        ours, theirs = read_case("la", dest, case), read_case("la", LA_HALF, case)
        assert ours.image.shape == theirs.image.shape
        assert np.array_equal(ours.image, theirs.image)  # bit for bit
        assert np.array_equal(ours.label, theirs.label)
        assert ours.spacing == theirs.spacing == (1.25, 1.25, 1.25)
        with h5py.File(dest / "2018LA_Seg_Training Set" / case / "mri_norm2.h5") as f:
            assert f.attrs["spacing_mm"].tolist() == [1.25, 1.25, 1.25]
    notes = " ".join(json.loads((dest / "manifest.json").read_text())["notes"])
    assert "LA, 2x downsampled" in notes and "NOT verified" not in notes


@needs_la
def test_4x_of_full_equals_2x_of_half(tmp_path):
    ids = _ids()[:2]
    four = prepare("la", raw=LA_FULL, dest=tmp_path / "a", cases=ids, lists_dir=LISTS, downsample=4)
    half = prepare(
        "la",
        raw=LA_HALF,
        dest=tmp_path / "b",
        cases=ids,
        lists_dir=LISTS,
        verify=False,
        downsample=2,
    )
    for case in ids:
        a, b = read_case("la", four, case), read_case("la", half, case)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label)
        assert a.spacing == b.spacing == (2.5, 2.5, 2.5)


def test_cli_downsample_is_la_only(tmp_path, capsys):
    code = main(["data", "prepare", "brats19", "--raw", str(tmp_path), "--downsample", "2"])
    assert code == 2
    assert "unknown option(s) ['downsample'] for brats19" in capsys.readouterr().err
