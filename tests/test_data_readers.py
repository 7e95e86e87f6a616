"""Readers: every upstream layout on tiny generated files, the real LA copy, and bad inputs."""

from __future__ import annotations

import gzip
import json

import h5py
import numpy as np
import pytest
from data_fixtures import SHAPE, SHARED_LA, tiny_case, write_h5, write_nifti

from dycon.data.files import sha256_file
from dycon.data.readers import (
    list_isles_bids_cases,
    read_brats19,
    read_case,
    read_isles_bids,
    read_isles_h5,
    read_la,
    read_pancreas,
    write_case_h5,
)
from dycon.data.volume import DataError, Volume

LA_ID = "06SR5RBREL16DQ6M8LWS"
CASE = "sub-strokecase0001"
LAS = np.diag([-2.0, 2.0, 3.0, 1.0])  # the real ISLES'22 DWI orientation, anisotropic here
# Voxel axis i runs along world y (3 mm), j along world x (2 mm): canonical order swaps them.
PERMUTED = np.array([[0, 2.0, 0, 0], [3.0, 0, 0, 0], [0, 0, 4.0, 0], [0, 0, 0, 1]])


def assert_volume(vol: Volume, image: np.ndarray, label: np.ndarray, spacing, case_id: str):
    assert vol.image.dtype == np.float32 and vol.label.dtype == np.uint8
    np.testing.assert_array_equal(vol.image, image if image.ndim == 4 else image[None])
    np.testing.assert_array_equal(vol.label, label)
    assert vol.spacing == pytest.approx(spacing)
    assert vol.case_id == case_id


# ---------------------------------------------------------------- LA


@pytest.mark.parametrize("folder", ["2018LA_Seg_Training Set", "LA_data"])
def test_la_both_layouts(tmp_path, folder):
    image, label = tiny_case()
    write_h5(tmp_path / folder / LA_ID / "mri_norm2.h5", {"image": image, "label": label})
    assert_volume(read_la(tmp_path, LA_ID), image, label, (0.625,) * 3, LA_ID)


def test_la_spacing_attribute(tmp_path):
    image, label = tiny_case()
    write_h5(
        tmp_path / LA_ID / "mri_norm2.h5",
        {"image": image, "label": label},
        {"spacing_mm": np.array([1.25, 1.25, 1.25])},
    )
    assert read_la(tmp_path, LA_ID).spacing == (1.25, 1.25, 1.25)


def test_la_missing_file_names_paths_tried(tmp_path):
    with pytest.raises(DataError, match="2018LA_Seg_Training Set") as err:
        read_la(tmp_path, LA_ID)
    assert "LA_data" in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- BraTS


def test_brats_zyx_to_xyz_and_whole_tumour(tmp_path):
    image, _ = tiny_case()
    classes = np.random.default_rng(1).choice([0, 1, 2, 4], size=SHAPE).astype(np.uint8)
    # SimpleITK's GetArrayFromImage order, as SSL4MIS stores it.
    write_h5(
        tmp_path / "data" / "BraTS19_TCIA02_370_1.h5",
        {"image": image.transpose(2, 1, 0), "label": classes.transpose(2, 1, 0)},
    )
    vol = read_brats19(tmp_path, "BraTS19_TCIA02_370_1")
    assert_volume(vol, image, (classes > 0).astype(np.uint8), (1.0,) * 3, "BraTS19_TCIA02_370_1")


# ---------------------------------------------------------------- Pancreas

SCHEMES = {
    "dycon": "Pancreas_data/PANCREAS_0001.h5",
    "mcnet": "Pancreas_h5/image0001_norm.h5",
    "coranet": "0001.h5",
}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("case_id", ["PANCREAS_0001", "PANCREAS_0001.h5", "image0001", "0001"])
def test_pancreas_any_scheme_any_id_style(tmp_path, scheme, case_id):
    image, label = tiny_case()
    write_h5(tmp_path / SCHEMES[scheme], {"image": image, "label": label})
    vol = read_pancreas(tmp_path, case_id)
    assert_volume(vol, image, label, (1.0,) * 3, case_id.removesuffix(".h5"))


def test_pancreas_bad_id(tmp_path):
    with pytest.raises(DataError, match="'pancreas-one'"):
        read_pancreas(tmp_path, "pancreas-one")


# ---------------------------------------------------------------- ISLES h5


def test_isles_h5_float64_mask_thresholded(tmp_path):
    image, _ = tiny_case()
    mask = np.random.default_rng(2).choice([0.0, 0.3, 0.7, 1.0], size=SHAPE)  # float64 upstream
    write_h5(
        tmp_path / "case_0001.h5",
        {"image": image.astype(np.float64), "mask": mask},
        {"spacing_mm": [2.0, 2.0, 2.5]},
    )
    vol = read_isles_h5(tmp_path, "case_0001.h5")
    assert_volume(vol, image, (mask > 0.5).astype(np.uint8), (2.0, 2.0, 2.5), "case_0001")


def test_isles_h5_channels_first(tmp_path):
    image = np.stack([tiny_case(0)[0], tiny_case(1)[0]])
    mask = tiny_case()[1].astype(np.float64)
    write_h5(tmp_path / "c.h5", {"image": image, "mask": mask}, {"spacing_mm": 1.5})
    assert_volume(read_isles_h5(tmp_path, "c"), image, mask.astype(np.uint8), (1.5,) * 3, "c")


def test_isles_h5_without_spacing_says_how_to_fix(tmp_path):
    image, label = tiny_case()
    path = write_h5(tmp_path / "c.h5", {"image": image, "mask": label.astype(np.float64)})
    with pytest.raises(DataError, match="no spacing") as err:
        read_isles_h5(tmp_path, "c")
    assert str(path) in str(err.value) and "prepare" in str(err.value)


# ---------------------------------------------------------------- ISLES BIDS


def write_bids_case(root, case, *, layout, affine, seed=0):
    """One ISLES'22 case; returns the arrays as written (voxel order of the files)."""
    rng = np.random.default_rng(seed)
    dwi, adc = rng.random(SHAPE), rng.random(SHAPE) * 2
    mask = (rng.random(SHAPE) > 0.8).astype(np.uint16)  # uint16 like the real masks
    if layout == "zenodo":
        raw, deriv = root / case / "ses-0001" / "dwi", root / "derivatives" / case / "ses-0001"
        write_nifti(
            root / case / "ses-0001" / "anat" / f"{case}_ses-0001_FLAIR.nii.gz",
            rng.random((4, 4, 3)),
            np.eye(4),
        )
    else:  # the organizers' GitHub sample: rawdata/<case>/ses-0001/<files>
        raw, deriv = root / "rawdata" / case / "ses-0001", root / "derivatives" / case / "ses-0001"
    write_nifti(raw / f"{case}_ses-0001_dwi.nii.gz", dwi, affine)
    write_nifti(raw / f"{case}_ses-0001_adc.nii.gz", adc, affine)
    write_nifti(deriv / f"{case}_ses-0001_msk.nii.gz", mask, affine)
    return dwi, adc, mask


def test_isles_bids_zenodo_las_reoriented(tmp_path):
    dwi, adc, mask = write_bids_case(tmp_path, CASE, layout="zenodo", affine=LAS)
    vol = read_isles_bids(tmp_path, CASE, adc=True)
    # LAS -> RAS flips the first voxel axis; spacing is unchanged.
    expected = np.stack([dwi[::-1], adc[::-1]]).astype(np.float32)
    assert_volume(vol, expected, mask[::-1].astype(np.uint8), (2.0, 2.0, 3.0), CASE)


@pytest.mark.parametrize("sub", ["", "rawdata"])
def test_isles_bids_github_layout_permuted_axes(tmp_path, sub):
    dwi, _, mask = write_bids_case(tmp_path, CASE, layout="github", affine=PERMUTED)
    vol = read_isles_bids(tmp_path / sub, CASE)
    expected = dwi.transpose(1, 0, 2).astype(np.float32)
    assert_volume(vol, expected, mask.transpose(1, 0, 2).astype(np.uint8), (2.0, 3.0, 4.0), CASE)


def test_list_isles_bids_cases(tmp_path):
    for n in (3, 1, 2):
        write_bids_case(tmp_path, f"sub-strokecase000{n}", layout="zenodo", affine=LAS)
    assert list_isles_bids_cases(tmp_path) == [f"sub-strokecase000{n}" for n in (1, 2, 3)]


def test_isles_bids_missing_mask(tmp_path):
    write_bids_case(tmp_path, CASE, layout="zenodo", affine=LAS)
    next(tmp_path.glob("derivatives/**/*_msk.nii.gz")).unlink()
    with pytest.raises(DataError, match=f"{CASE}_ses-0001_msk.nii.gz"):
        read_isles_bids(tmp_path, CASE)


def test_isles_bids_mask_on_another_grid(tmp_path):
    write_bids_case(tmp_path, CASE, layout="zenodo", affine=LAS)
    msk = next(tmp_path.glob("derivatives/**/*_msk.nii.gz"))
    write_nifti(msk, np.zeros((8, 8, 5), np.uint16), LAS)
    with pytest.raises(DataError, match="does not match the DWI") as err:
        read_isles_bids(tmp_path, CASE)
    assert str(msk) in str(err.value)


def test_isles_bids_truncated_nifti(tmp_path):
    write_bids_case(tmp_path, CASE, layout="zenodo", affine=LAS)
    dwi = next(tmp_path.glob(f"**/{CASE}_ses-0001_dwi.nii.gz"))
    dwi.write_bytes(dwi.read_bytes()[:200])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        read_isles_bids(tmp_path, CASE)
    assert str(dwi) in str(err.value) and "re-download" in str(err.value)


def test_isles_bids_garbage_nifti(tmp_path):
    write_bids_case(tmp_path, CASE, layout="zenodo", affine=LAS)
    dwi = next(tmp_path.glob(f"**/{CASE}_ses-0001_dwi.nii.gz"))
    dwi.write_bytes(gzip.compress(b"not a nifti header" * 30))
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_isles_bids(tmp_path, CASE)


# ---------------------------------------------------------------- dispatch and writer

ROUND_TRIPS = {  # dataset -> (path under root, label key, layout, channels)
    "la": (f"LA_data/{LA_ID}/mri_norm2.h5", "label", "xyz", 1),
    "brats19": ("data/BraTS19_TCIA02_370_1.h5", "label", "zyx", 1),
    "pancreas": ("Pancreas_data/PANCREAS_0007.h5", "label", "xyz", 1),
    "isles22": ("sub-strokecase0001.h5", "mask", "xyz", 2),
    "isles-sim": ("sim_0003.h5", "mask", "xyz", 1),
}


@pytest.mark.parametrize("dataset", ROUND_TRIPS)
def test_write_case_h5_round_trip(tmp_path, dataset):
    rel, label_key, layout, channels = ROUND_TRIPS[dataset]
    case = rel.split("/")[1] if dataset == "la" else rel.split("/")[-1].removesuffix(".h5")
    image = np.stack([tiny_case(c)[0] for c in range(channels)])
    volume = Volume(image, tiny_case()[1], (0.5, 0.75, 2.0), case)
    write_case_h5(tmp_path / rel, volume, label_key=label_key, layout=layout)
    back = read_case(dataset, tmp_path, case)
    assert_volume(back, volume.image, volume.label, volume.spacing, case)
    assert list(tmp_path.rglob("*.tmp")) == []
    with h5py.File(tmp_path / rel) as f:  # the upstream storage order, channel axis dropped if 1
        stored = SHAPE[::-1] if layout == "zyx" else SHAPE
        assert f["image"].shape == ((channels,) if channels > 1 else ()) + stored
        assert f.attrs["case_id"] == case


def test_write_case_h5_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "c.h5"
    path.write_bytes(b"old")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    with pytest.raises(RuntimeError):
        write_case_h5(path, Volume(tiny_case()[0][None], tiny_case()[1], (1, 1, 1), "c"))
    assert path.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [path]


def test_read_case_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="'acdc'"):
        read_case("acdc", tmp_path, "x")


# ---------------------------------------------------------------- bad files, one each


def la_file(tmp_path):
    return tmp_path / LA_ID / "mri_norm2.h5"


def test_truncated_h5(tmp_path):
    image, label = tiny_case()
    path = write_h5(la_file(tmp_path), {"image": image, "label": label})
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="re-download it or re-run prepare") as err:
        read_la(tmp_path, LA_ID)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_not_an_h5(tmp_path):
    path = la_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        read_la(tmp_path, LA_ID)
    assert str(path) in str(err.value)


def test_shape_mismatch_names_file(tmp_path):
    image, label = tiny_case()
    path = write_h5(la_file(tmp_path), {"image": image, "label": label[..., :5]})
    with pytest.raises(DataError, match="differ") as err:
        read_la(tmp_path, LA_ID)
    assert str(path) in str(err.value)


def test_nan_in_image_names_file(tmp_path):
    image, label = tiny_case()
    image[1, 2, 3] = np.nan
    path = write_h5(la_file(tmp_path), {"image": image, "label": label})
    with pytest.raises(DataError, match="NaN or Inf") as err:
        read_la(tmp_path, LA_ID)
    assert str(path) in str(err.value)


def test_missing_keys_lists_found(tmp_path):
    image, label = tiny_case()
    path = write_h5(la_file(tmp_path), {"img": image, "seg": label})
    with pytest.raises(DataError, match=r"\['image', 'label'\].*\['img', 'seg'\]") as err:
        read_la(tmp_path, LA_ID)
    assert str(path) in str(err.value)


def test_non_integer_label(tmp_path):
    image, label = tiny_case()
    path = write_h5(la_file(tmp_path), {"image": image, "label": label * 0.5})
    with pytest.raises(DataError, match=r"integers in 0\.\.255") as err:
        read_la(tmp_path, LA_ID)
    assert str(path) in str(err.value)


def test_bad_spacing_attribute(tmp_path):
    image, label = tiny_case()
    write_h5(la_file(tmp_path), {"image": image, "label": label}, {"spacing_mm": [1.0, -1.0]})
    with pytest.raises(DataError, match=r"spacing_mm=\[1.0, -1.0\]"):
        read_la(tmp_path, LA_ID)


# ---------------------------------------------------------------- the real LA copy in shared/

needs_la = pytest.mark.skipif(not SHARED_LA.is_dir(), reason="shared LA data absent")


@needs_la
def test_real_la_full_and_half():
    manifest = {m["id"]: m for m in json.loads((SHARED_LA / "manifest.json").read_text())}
    ids = (SHARED_LA / "full" / "train.list").read_text().split()
    ids += (SHARED_LA / "full" / "test.list").read_text().split()
    assert len(ids) == 4
    for case in ids:
        full, half = read_la(SHARED_LA / "full", case), read_la(SHARED_LA / "half", case)
        assert full.spacing == (0.625,) * 3 and half.spacing == (1.25,) * 3
        assert full.label.shape == tuple(manifest[case]["full_shape"])
        assert half.label.shape == tuple(s // 2 for s in full.label.shape)
        for vol in (full, half):
            assert vol.image.dtype == np.float32 and vol.image.shape[0] == 1
            assert set(np.unique(vol.label).tolist()) == {0, 1}
        fg = full.label.mean()
        assert fg == pytest.approx(manifest[case]["fg_fraction"], abs=1e-4)


@needs_la
def test_real_la_full_files_match_upstream_sha256():
    manifest = json.loads((SHARED_LA / "manifest.json").read_text())
    full = {
        m["id"]: m["sha256_original"] for m in manifest if (SHARED_LA / "full" / m["id"]).is_dir()
    }
    assert len(full) == 4
    for case, sha in full.items():
        assert sha256_file(SHARED_LA / "full" / case / "mri_norm2.h5") == sha
