"""Transforms, PatchDataset, TwoStreamBatchSampler and worker seeding (dycon.data)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dycon.data.sampling import (
    PatchDataset,
    TwoStreamBatchSampler,
    seed_worker,
    two_stream_indices,
)
from dycon.data.transforms import (
    add_teacher_noise,
    crop_padding,
    draw_rot_flip,
    random_crop,
    random_rot_flip,
    rot90_flip,
)
from dycon.data.volume import DataError, Volume


def coords(shape):
    """Image (3, X, Y, Z) whose channels are the voxel coordinates + 1 (0 marks padding)."""
    grid = np.indices(shape, dtype=np.float32) + 1  # (3, X, Y, Z)
    label = (np.arange(np.prod(shape)).reshape(shape) % 251).astype(np.uint8)  # distinct-ish
    return grid, label


def volume(shape=(20, 18, 14), *, case_id="c", lesion=None):
    image = np.random.default_rng(1).normal(size=(1, *shape)).astype(np.float32)
    label = np.zeros(shape, np.uint8)
    if lesion is not None:
        label[lesion] = 1
    return Volume(image=image, label=label, spacing=(1.0, 1.0, 1.0), case_id=case_id)


# --- crop -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 7, 3), (12, 12, 12), (30, 9, 40), (40, 41, 42)])
def test_crop_shape_is_patch(shape):
    rng = np.random.default_rng(0)
    image, label = coords(shape)
    for _ in range(5):
        out_image, out_label = random_crop(image, label, patch=(12, 10, 8), rng=rng)
        assert out_image.shape == (3, 12, 10, 8) and out_label.shape == (12, 10, 8)
        assert out_image.dtype == np.float32 and out_label.dtype == np.uint8


def test_padding_rule_by_hand():
    # X: 10 <= 12 -> (12-10)//2+3 = 4; Y: 20 > 12 -> (12-20)//2+3 = -1 -> 0; Z: 8 -> 4//2+3 = 5
    assert crop_padding(shape=(10, 20, 8), patch=(12, 12, 12)) == (4, 0, 5)
    # the official rule also pads a slightly larger axis once any axis triggers it: (-2)//2+3 = 2
    assert crop_padding(shape=(14, 8, 30), patch=(12, 12, 12)) == (2, 5, 0)
    assert crop_padding(shape=(13, 13, 13), patch=(12, 12, 12)) == (0, 0, 0)
    # equality triggers the rule: 12 <= 12 -> 3 per side
    assert crop_padding(shape=(12, 40, 40), patch=(12, 12, 12)) == (3, 0, 0)


def test_padded_crop_positions_cover_padded_volume():
    # padded X size 10 + 2*4 = 18 -> starts 0..6; the image value 0 marks padding
    image, label = coords((10, 20, 8))
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(400):
        out, _ = random_crop(image, label, patch=(12, 12, 12), rng=rng)
        xs = out[0, :, 0, 0]  # X coordinate + 1 along the crop, 0 where padded
        first_real = int(np.argmax(xs > 0))
        starts.add(4 - first_real if xs[0] == 0 else 4 + int(xs[0]) - 1)
    assert starts == set(range(7))


def test_crop_keeps_alignment():
    image, label = coords((25, 22, 19))
    rng = np.random.default_rng(3)
    for fraction in (0.0, 1.0):
        for _ in range(20):
            out_image, out_label = random_crop(
                image, label, patch=(8, 9, 10), rng=rng, foreground_fraction=fraction
            )
            x, y, z = (out_image[i].astype(int) - 1 for i in range(3))  # coordinates back
            assert np.array_equal(out_label, label[x, y, z])
            assert np.all(np.diff(x, axis=0) == 1)  # a contiguous block, not a permutation


def test_foreground_crop_always_contains_foreground():
    shape = (40, 40, 30)
    rng = np.random.default_rng(0)
    for trial in range(50):
        label = np.zeros(shape, np.uint8)
        spot = tuple(int(v) for v in rng.integers(0, shape))  # anywhere, corners included
        label[spot] = 1
        image = np.zeros((1, *shape), np.float32)
        _, out = random_crop(image, label, patch=(8, 8, 8), rng=rng, foreground_fraction=1.0)
        assert out.sum() == 1, (trial, spot)


def test_foreground_fraction_without_foreground_is_uniform_fallback():
    image, label = np.zeros((1, 20, 20, 20), np.float32), np.zeros((20, 20, 20), np.uint8)
    out_image, out_label = random_crop(
        image, label, patch=(8, 8, 8), rng=np.random.default_rng(0), foreground_fraction=1.0
    )
    assert out_image.shape == (1, 8, 8, 8) and not out_label.any()


def test_uniform_crop_positions():
    # 16 - 8 + 1 = 9 start positions per axis; chi-square on 1800 draws of the X start
    image, label = coords((16, 16, 16))
    rng = np.random.default_rng(42)
    starts = np.array(
        [
            int(random_crop(image, label, patch=(8, 8, 8), rng=rng)[0][0, 0, 0, 0]) - 1
            for _ in range(1800)
        ]
    )
    counts = np.bincount(starts, minlength=9)
    assert counts.size == 9 and counts.min() > 0
    expected = starts.size / 9
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 26.1  # 99.9th percentile of chi-square with 8 degrees of freedom


def test_crop_rejects_bad_input():
    image, label = coords((10, 10, 10))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="patch"):
        random_crop(image, label, patch=(8, 8), rng=rng)
    with pytest.raises(ValueError, match="same grid"):
        random_crop(image, label[:-1], patch=(8, 8, 8), rng=rng)
    with pytest.raises(ValueError, match="foreground_fraction"):
        random_crop(image, label, patch=(8, 8, 8), rng=rng, foreground_fraction=1.5)


# --- rotation and flip ----------------------------------------------------------------------------


def test_rot_flip_transforms_image_and_label_identically():
    image, label = coords((6, 6, 4))
    for k in range(4):
        for axis in (0, 1):
            out_image, out_label = rot90_flip(image, label, k=k, axis=axis)
            x, y, z = (out_image[i].astype(int) - 1 for i in range(3))
            assert np.array_equal(out_label, label[x, y, z])
            assert out_image.flags.c_contiguous and out_label.flags.c_contiguous
            assert np.array_equal(np.sort(out_label, axis=None), np.sort(label, axis=None))
            assert np.array_equal(z, np.broadcast_to(np.arange(4), z.shape))  # Z untouched


def test_rot_flip_swaps_xy_for_odd_k():
    image, label = coords((6, 5, 4))
    assert rot90_flip(image, label, k=1, axis=0)[0].shape == (3, 5, 6, 4)
    assert rot90_flip(image, label, k=2, axis=1)[1].shape == (6, 5, 4)
    with pytest.raises(ValueError, match="axis"):
        rot90_flip(image, label, k=0, axis=2)


def test_random_rot_flip_reaches_all_eight_combinations():
    image, label = coords((5, 5, 3))
    rng = np.random.default_rng(0)
    reference = {
        (k, a): rot90_flip(image, label, k=k, axis=a)[0].tobytes() for k in range(4) for a in (0, 1)
    }
    seen = {random_rot_flip(image, label, rng=rng)[0].tobytes() for _ in range(200)}
    assert seen == set(reference.values())
    # the official scheme always flips: 8 parameter pairs, 4 distinct reflections, no identity
    assert len(seen) == 4 and image.tobytes() not in seen


def test_random_rot_flip_draws_every_parameter_pair():
    rng = np.random.default_rng(0)
    assert {draw_rot_flip(rng) for _ in range(200)} == {(k, a) for k in range(4) for a in (0, 1)}


# --- teacher noise --------------------------------------------------------------------------------


def test_teacher_noise_is_bounded_and_reproducible():
    x = torch.randn(2, 1, 8, 8, 8)
    noisy = add_teacher_noise(x, generator=torch.Generator().manual_seed(0))
    diff = noisy - x
    assert diff.abs().max() <= 0.2 + 1e-6 and diff.std() > 0.05
    again = add_teacher_noise(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)
    assert (add_teacher_noise(x, std=1.0, clip=0.05) - x).abs().max() <= 0.05 + 1e-6
    with pytest.raises(ValueError):
        add_teacher_noise(x, std=-1.0)
    with pytest.raises(ValueError):
        add_teacher_noise(torch.ones(3, dtype=torch.int64))


# --- sampler --------------------------------------------------------------------------------------


def sampler(**overrides):
    args = dict(
        labeled_indices=list(range(12)),
        unlabeled_indices=list(range(12, 22)),
        batch_size=4,
        labeled_batch_size=2,
        seed=7,
    )
    return TwoStreamBatchSampler(**{**args, **overrides})


def test_sampler_batches_and_epoch_coverage():
    s = sampler()
    batches = list(s)
    assert len(batches) == len(s) == 6
    labeled, unlabeled = set(s.labeled_indices), set(s.unlabeled_indices)
    for batch in batches:
        assert len(batch) == 4
        assert set(batch[:2]) <= labeled and set(batch[2:]) <= unlabeled
    firsts = [i for batch in batches for i in batch[:2]]
    assert sorted(firsts) == sorted(labeled)  # each labeled index exactly once per epoch
    window = math.ceil(len(unlabeled) / 2)  # 5 batches
    assert {i for batch in batches[:window] for i in batch[2:]} == unlabeled


def test_sampler_drops_incomplete_labeled_group_and_cycles_unlabeled():
    s = sampler(labeled_indices=list(range(7)), unlabeled_indices=[7, 8], labeled_batch_size=3)
    batches = list(s)
    assert len(batches) == 2 and all(len(b) == 4 for b in batches)
    assert len({i for b in batches for i in b[:3]}) == 6
    assert sorted(b[3] for b in batches) == [7, 8]


def test_sampler_is_deterministic_per_seed_and_epoch():
    s = sampler()
    s.set_epoch(3)
    first = list(s)
    assert list(s) == first and s.epoch == 3  # iterating does not advance the epoch
    s.set_epoch(4)
    assert list(s) != first
    assert list(sampler(seed=8)) != list(sampler())
    other = sampler()
    other.set_epoch(3)
    assert list(other) == first


def test_sampler_in_a_dataloader():
    s = sampler()
    loader = DataLoader(list(range(22)), batch_sampler=s)
    assert [b.tolist() for b in loader] == list(sampler())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"labeled_indices": []}, "labeled_indices is empty"),
        ({"labeled_batch_size": 5}, "must be < batch_size"),
        ({"labeled_batch_size": 4}, "must be < batch_size"),
        ({"labeled_indices": [0], "labeled_batch_size": 2}, "cannot fill"),
        ({"unlabeled_indices": [11, 12]}, "overlap"),
        ({"labeled_indices": [0, 0, 1]}, "duplicate"),
        ({"labeled_indices": [-1, 0]}, "negative"),
        ({"seed": -1}, "seed"),
    ],
)
def test_sampler_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        sampler(**overrides)


def test_every_case_labeled_fills_the_other_rows_from_the_labeled_set():
    # a fully supervised row: no unlabeled case; each batch is 2 labeled + 2 more labeled cases
    # (whose labels the trainer hides), and every labeled case appears once per epoch first
    s = sampler(labeled_indices=list(range(6)), unlabeled_indices=[])
    batches = list(s)
    assert len(batches) == 3 and all(len(b) == 4 and set(b) <= set(range(6)) for b in batches)
    assert sorted(i for b in batches for i in b[:2]) == list(range(6))


def test_two_stream_indices():
    ids = ["a", "b", "c", "d", "e"]
    assert two_stream_indices(ids, num_labeled=2) == ([0, 1], [2, 3, 4])
    assert two_stream_indices(ids, num_labeled=5) == ([0, 1, 2, 3, 4], [])
    with pytest.raises(ValueError, match="exceeds"):
        two_stream_indices(ids, num_labeled=6)
    with pytest.raises(ValueError, match="num_labeled"):
        two_stream_indices(ids, num_labeled=0)
    with pytest.raises(ValueError, match="duplicates"):
        two_stream_indices(["a", "a"], num_labeled=1)


# --- PatchDataset ---------------------------------------------------------------------------------


def dataset(**overrides):
    volumes = [volume(case_id=f"c{i}", lesion=(slice(2, 4), slice(3, 5), 6)) for i in range(6)]
    args = dict(volumes=volumes, patch=(8, 6, 4), seed=5)
    return PatchDataset(**{**args, **overrides})


def test_patch_dataset_item_contract_and_repeatability():
    ds = dataset()
    item = ds[2]
    assert item["image"].shape == (1, 8, 6, 4) and item["image"].dtype == torch.float32
    assert item["label"].shape == (8, 6, 4) and item["label"].dtype == torch.int64
    assert item["case_id"] == "c2" and item["index"] == 2
    again = ds[2]
    assert torch.equal(item["image"], again["image"]) and torch.equal(item["label"], again["label"])
    ds.set_epoch(1)
    assert not torch.equal(ds[2]["image"], item["image"])
    ds.set_epoch(0)
    assert torch.equal(ds[2]["image"], item["image"])


def test_patch_dataset_ignores_global_rng():
    ds = dataset()
    np.random.seed(1)  # noqa: NPY002 - deliberately disturb the legacy global state
    random.seed(1)
    first = ds[3]["image"]
    np.random.seed(2)  # noqa: NPY002
    random.seed(2)
    assert torch.equal(ds[3]["image"], first)


def test_patch_dataset_foreground_only_for_labeled():
    lesion = (slice(1, 2), slice(1, 2), slice(1, 2))  # one voxel in a corner
    volumes = [volume((30, 30, 30), case_id=f"c{i}", lesion=lesion) for i in range(8)]
    with pytest.raises(ValueError, match="labeled="):
        PatchDataset(volumes=volumes, patch=(6, 6, 6), foreground_fraction=0.5)
    ds = PatchDataset(volumes=volumes, patch=(6, 6, 6), foreground_fraction=1.0, labeled=range(4))
    hits = [int(ds[i]["label"].sum()) for i in range(8)]
    assert hits[:4] == [1, 1, 1, 1]  # labeled: always centred on the lesion
    assert sum(hits[4:]) < 4  # unlabeled: uniform, so mostly empty


def test_patch_dataset_with_loader_callable_and_errors():
    vols = [volume(case_id=f"c{i}") for i in range(3)]
    ds = PatchDataset(volumes=vols.__getitem__, num_cases=3, patch=(8, 6, 4))
    assert len(ds) == 3 and ds[1]["case_id"] == "c1"
    with pytest.raises(ValueError, match="num_cases"):
        PatchDataset(volumes=vols.__getitem__, patch=(8, 6, 4))
    with pytest.raises(IndexError):
        ds[3]
    bad = PatchDataset(volumes=lambda i: "nope", num_cases=1, patch=(8, 6, 4))
    with pytest.raises(DataError, match="not Volume"):
        bad[0]


def test_patch_dataset_rotated_patch_keeps_shape_and_alignment():
    image, label = coords((12, 10, 7))
    vol = Volume(image=image, label=label, spacing=(1.0, 1.0, 1.0), case_id="x")
    ds = PatchDataset(volumes=[vol] * 16, patch=(9, 5, 4), seed=0)  # X != Y patch
    for i in range(16):
        item = ds[i]
        assert item["image"].shape == (3, 9, 5, 4)
        x, y, z = (item["image"][c].long() - 1 for c in range(3))
        assert torch.equal(item["label"], torch.from_numpy(label.astype(np.int64))[x, y, z])


def test_patch_dataset_same_batches_with_zero_and_two_workers():
    ds = dataset()
    ds.set_epoch(2)
    s = sampler(
        labeled_indices=[0, 1, 2], unlabeled_indices=[3, 4, 5], labeled_batch_size=1, batch_size=2
    )

    def run(workers):
        s.set_epoch(2)
        loader = DataLoader(ds, batch_sampler=s, num_workers=workers, worker_init_fn=seed_worker)
        return [(b["index"].tolist(), b["image"], b["label"]) for b in loader]

    serial, parallel = run(0), run(2)
    assert len(serial) == 3
    for (i0, x0, y0), (i1, x1, y1) in zip(serial, parallel, strict=True):
        assert i0 == i1 and torch.equal(x0, x1) and torch.equal(y0, y1)


def test_seed_worker_seeds_numpy_and_random():
    torch.manual_seed(123)
    seed_worker(0)
    a = (np.random.rand(), random.random())  # noqa: NPY002
    torch.manual_seed(124)
    seed_worker(1)
    b = (np.random.rand(), random.random())  # noqa: NPY002
    assert a != b
    torch.manual_seed(123)
    seed_worker(0)
    assert (np.random.rand(), random.random()) == a  # noqa: NPY002
