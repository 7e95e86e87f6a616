"""prepare/status: tiny raw data in each upstream layout -> prepared folder read back by read_case.

Split lists and the 4 real LA files come from ../shared (served on a loopback HTTP server, as
GitHub would serve them); tests that need them skip when it is absent.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from data_fixtures import SHARED_LA, SHARED_SPLITS, serve, write_nifti
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from dycon.data.files import sha256_file
from dycon.data.prepare import DATASETS, ISLES_SIM_BANNER, options_of, prepare, status
from dycon.data.prepare import brats19 as brats_mod
from dycon.data.prepare import la as la_mod
from dycon.data.prepare import pancreas as pancreas_mod
from dycon.data.prepare._common import expand_box
from dycon.data.readers import read_case
from dycon.data.splits import PINNED_LISTS, pancreas_eval_list, read_split
from dycon.data.volume import DataError
from dycon.engine.runs import data_hash

needs_splits = pytest.mark.skipif(not SHARED_SPLITS.is_dir(), reason="shared split lists absent")
needs_la = pytest.mark.skipif(not (SHARED_LA / "full").is_dir(), reason="shared LA data absent")
LA_FULL = SHARED_LA / "full"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """urllib honours *_proxy variables; the loopback server must be reached directly."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)


def _list_files() -> dict[str, bytes]:
    """Every pinned list under its GitHub raw path (``/OWNER/REPO/COMMIT/PATH``)."""
    return {
        pinned.url(""): (SHARED_SPLITS / dataset / pinned.name).read_bytes()
        for dataset, pins in PINNED_LISTS.items()
        for pinned in pins
    }


def _la_ids() -> list[str]:
    return read_split(LA_FULL / "train.list") + read_split(LA_FULL / "test.list")


def _la_files(corrupt: str | None = None) -> dict[str, bytes]:
    files = {}
    for case in _la_ids():
        data = (LA_FULL / case / "mri_norm2.h5").read_bytes()
        files[la_mod.file_url(case, base_url="")] = data + b"x" if case == corrupt else data
    return files


@pytest.fixture(scope="module")
def lists_url():
    if not SHARED_SPLITS.is_dir():
        pytest.skip("shared split lists absent")
    with serve(_list_files()) as url:
        yield url


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _check_manifest(folder: Path, dataset: str, n_cases: int) -> dict:
    """Manifest fields, and each record's sha256/shape/spacing against the file read back."""
    manifest = _manifest(folder)
    assert manifest["dataset"] == dataset
    assert manifest["prepared_with"]["dycon"]
    assert len(manifest["cases"]) == n_cases
    for record in manifest["cases"]:
        assert sha256_file(folder / record["file"]) == record["sha256"]
        volume = read_case(dataset, folder, record["case"])
        assert list(volume.label.shape) == record["shape"]
        assert np.allclose(volume.spacing, record["spacing"], atol=1e-5)
        assert record["foreground_fraction"] == pytest.approx(volume.label.mean(), abs=1e-5)
    assert not folder.with_name(folder.name + ".partial").exists()
    return manifest


# ---------------------------------------------------------------- LA


@needs_la
def test_la_checksum_table_matches_shared_manifest():
    table = la_mod.load_checksums()
    shared = json.loads((SHARED_LA / "manifest.json").read_text())
    assert [(c["id"], c["split"], c["sha256"]) for c in table["cases"]] == [
        (c["id"], c["split"], c["sha256_original"]) for c in shared
    ]
    if SHARED_SPLITS.is_dir():
        for split in ("train", "test"):
            ids = read_split(SHARED_SPLITS / "la" / f"{split}.list")
            assert sorted(ids) == sorted(c["id"] for c in table["cases"] if c["split"] == split)


@needs_la
@needs_splits
def test_la_from_ua_mt_folder_verified_subset(tmp_path):
    raw = tmp_path / "UA-MT" / "data"
    for case in _la_ids():
        target = raw / "2018LA_Seg_Training Set" / case / "mri_norm2.h5"
        target.parent.mkdir(parents=True)
        shutil.copyfile(LA_FULL / case / "mri_norm2.h5", target)
    for name in ("train.list", "test.list"):  # UA-MT's data/ holds the pinned lists
        shutil.copyfile(SHARED_SPLITS / "la" / name, raw / name)
    dest = prepare("la", raw=raw, dest=tmp_path / "data" / "la", cases=_la_ids())
    manifest = _check_manifest(dest, "la", 4)
    upstream = {c["id"]: c["sha256"] for c in la_mod.load_checksums()["cases"]}
    assert all(r["sha256"] == upstream[r["case"]] for r in manifest["cases"])
    assert read_split(dest / "train.list") == read_split(LA_FULL / "train.list")
    assert read_split(dest / "test.list") == read_split(LA_FULL / "test.list")
    assert read_case("la", dest, _la_ids()[0]).spacing == (0.625, 0.625, 0.625)
    assert manifest["subset"] and manifest["notes"] == []


@needs_la
@needs_splits
def test_la_flat_layout_lists_dir(tmp_path):
    # shared/la/full is laid out <id>/mri_norm2.h5, and its lists are not the pinned ones.
    dest = prepare(
        "la", raw=LA_FULL, dest=tmp_path / "la", cases=_la_ids(), lists_dir=SHARED_SPLITS / "la"
    )
    _check_manifest(dest, "la", 4)


@needs_la
def test_la_download_from_loopback_server(tmp_path):
    files = _la_files() | (_list_files() if SHARED_SPLITS.is_dir() else {})
    if not SHARED_SPLITS.is_dir():
        pytest.skip("shared split lists absent")
    with serve(files) as url:
        dest = prepare("la", dest=tmp_path / "la", cases=_la_ids(), base_url=url)
    manifest = _check_manifest(dest, "la", 4)
    assert manifest["source"]["base_url"] == url


@needs_la
def test_la_download_corrupted_file_writes_nothing(tmp_path):
    bad = _la_ids()[1]
    with serve(_la_files(corrupt=bad)) as url:
        with pytest.raises(DataError, match="checksum mismatch") as err:
            prepare("la", dest=tmp_path / "la", cases=_la_ids(), base_url=url)
    expected = next(c["sha256"] for c in la_mod.load_checksums()["cases"] if c["id"] == bad)
    message = str(err.value)
    assert bad in message and expected in message and "got " in message
    assert list(tmp_path.iterdir()) == []  # no dataset folder, no .partial


def test_la_local_checksum_mismatch_names_file_and_hashes(tmp_path):
    case = la_mod.load_checksums()["cases"][0]
    fake = tmp_path / "raw" / case["id"] / "mri_norm2.h5"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"not the upstream file")
    with pytest.raises(DataError, match="checksum mismatch") as err:
        prepare("la", raw=tmp_path / "raw", dest=tmp_path / "la", cases=[case["id"]])
    message = str(err.value)
    assert str(fake) in message and case["sha256"] in message and sha256_file(fake) in message
    assert not (tmp_path / "la").exists() and not (tmp_path / "la.partial").exists()


def test_la_listed_case_missing(tmp_path):
    case = la_mod.load_checksums()["cases"][0]["id"]
    (tmp_path / "raw" / case).mkdir(parents=True)
    (tmp_path / "raw" / case / "mri_norm2.h5").write_bytes(b"x")
    with pytest.raises(DataError, match=r"79 case\(s\) listed in train.list are missing"):
        prepare("la", raw=tmp_path / "raw", dest=tmp_path / "la")


@needs_la
@needs_splits
def test_la_corrupt_h5_unverified(tmp_path):
    case = _la_ids()[0]
    (tmp_path / "raw" / case).mkdir(parents=True)
    (tmp_path / "raw" / case / "mri_norm2.h5").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    with pytest.raises(DataError, match="cannot read HDF5 file"):
        prepare(
            "la",
            raw=tmp_path / "raw",
            dest=tmp_path / "la",
            cases=[case],
            verify=False,
            lists_dir=SHARED_SPLITS / "la",
        )
    assert not (tmp_path / "la").exists()


@pytest.mark.skipif(not (SHARED_LA / "half").is_dir(), reason="shared LA data absent")
def test_la_half_copy_unverified_is_labelled(tmp_path):
    ids = _la_ids()
    dest = prepare("la", raw=SHARED_LA / "half", dest=tmp_path / "la", cases=ids, verify=False)
    manifest = _check_manifest(dest, "la", 4)
    assert read_case("la", dest, ids[0]).spacing == (1.25, 1.25, 1.25)
    notes = " ".join(manifest["notes"])
    assert "NOT verified" in notes and "2x downsampled" in notes


# ---------------------------------------------------------------- BraTS'19


def _brats_case(raw: Path, case: str, grade: str = "HGG", seed: int = 0, shape=(24, 24, 16)):
    """FLAIR with a brain block of positive intensities (plus outliers), seg with 1/2/4."""
    rng = np.random.default_rng(seed)
    flair = np.zeros(shape, np.float32)
    flair[3:20, 4:22, 2:13] = rng.uniform(50, 150, (17, 18, 11))
    flair[5, 6, 4] = 5000.0  # an outlier the 99.9th-percentile clip removes
    seg = np.zeros(shape, np.uint8)
    seg[8:12, 9:14, 5:9] = 2
    seg[9:11, 10:12, 6:8] = 4
    seg[10, 11, 7] = 1
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])  # BraTS' LPS-like header: must not be reoriented
    folder = raw / grade / case
    write_nifti(folder / f"{case}_flair.nii.gz", flair, affine)
    write_nifti(folder / f"{case}_seg.nii.gz", seg, affine)
    return flair, seg


def test_brats_convert_case_ssl4mis_recipe(tmp_path):
    flair, seg = _brats_case(tmp_path, "BraTS19_X_1")
    folder = tmp_path / "HGG" / "BraTS19_X_1"
    volume = brats_mod.convert_case(
        folder / "BraTS19_X_1_flair.nii.gz", folder / "BraTS19_X_1_seg.nii.gz", "BraTS19_X_1"
    )
    assert volume.image.shape == (1, 17, 18, 11) and volume.spacing == (1.0, 1.0, 1.0)
    crop = flair[3:20, 4:22, 2:13].astype(np.float64)
    top = np.quantile(crop, 0.999, method="inverted_cdf")
    assert top < 5000
    clipped = np.clip(crop, crop.min(), top)
    inside = clipped > 0
    image = volume.image[0]
    assert image[inside].mean() == pytest.approx(0, abs=1e-5)
    assert image[inside].std() == pytest.approx(1, abs=1e-4)
    assert image.max() == pytest.approx((top - clipped[inside].mean()) / clipped[inside].std())
    np.testing.assert_array_equal(volume.label, seg[3:20, 4:22, 2:13] > 0)


@needs_splits
def test_brats_prepare_ssl4mis_layout(tmp_path, lists_url):
    upstream = SHARED_SPLITS / "brats19"
    lists = {n: read_split(upstream / f"{n}.txt") for n in ("train", "val", "test")}
    cases = [*lists["train"][:2], lists["val"][0], lists["test"][0]]
    for i, case in enumerate(cases):
        _brats_case(tmp_path / "raw", case, grade="HGG" if i % 2 else "LGG", seed=i)
    dest = prepare("brats19", raw=tmp_path / "raw", dest=tmp_path / "brats19",
                   cases=cases, base_url=lists_url)  # fmt: skip
    manifest = _check_manifest(dest, "brats19", 4)
    assert {n: read_split(dest / f"{n}.list") for n in lists} == {
        "train": cases[:2], "val": [cases[2]], "test": [cases[3]]
    }  # fmt: skip
    assert not list(dest.glob("*.txt"))
    with h5py.File(dest / "data" / f"{cases[0]}.h5") as f:  # stored z-first like SSL4MIS
        assert f["image"].shape == (11, 18, 17) and f.attrs["axes"] == "zyx"
    volume = read_case("brats19", dest, cases[0])
    assert volume.image.shape == (1, 17, 18, 11) and set(np.unique(volume.label)) == {0, 1}
    assert manifest["lists"] == {"test.list": 1, "train.list": 2, "val.list": 1}


@needs_splits
def test_brats_listed_case_missing(tmp_path, lists_url):
    case = read_split(SHARED_SPLITS / "brats19" / "train.txt")[0]
    _brats_case(tmp_path / "raw", case)
    with pytest.raises(DataError, match=r"listed in train.list are missing from .*flair"):
        prepare("brats19", raw=tmp_path / "raw", dest=tmp_path / "b", base_url=lists_url)
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()


def test_brats_raw_folder_missing(tmp_path):
    with pytest.raises(DataError, match=r"raw folder .*nope.* does not exist"):
        prepare("brats19", raw=tmp_path / "nope", dest=tmp_path / "b")


def test_brats_no_cases_names_pattern(tmp_path):
    (tmp_path / "raw" / "HGG").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no case found .*\*\*/<id>_flair\.nii\.gz"):
        prepare("brats19", raw=tmp_path / "raw", dest=tmp_path / "b")


def test_brats_image_label_shape_differ(tmp_path):
    _brats_case(tmp_path, "C1")
    seg = tmp_path / "HGG" / "C1" / "C1_seg.nii.gz"
    write_nifti(seg, np.zeros((24, 24, 15), np.uint8), np.eye(4))
    with pytest.raises(DataError, match=r"label shape .* differs from the image shape") as err:
        brats_mod.convert_case(seg.with_name("C1_flair.nii.gz"), seg, "C1")
    assert str(seg) in str(err.value)


def test_brats_nan_in_image(tmp_path):
    flair, _ = _brats_case(tmp_path, "C1")
    flair[4, 5, 6] = np.nan
    path = write_nifti(tmp_path / "HGG" / "C1" / "C1_flair.nii.gz", flair, np.eye(4))
    with pytest.raises(DataError, match="NaN/Inf") as err:
        brats_mod.convert_case(path, path.with_name("C1_seg.nii.gz"), "C1")
    assert str(path) in str(err.value)


def test_brats_corrupt_nifti(tmp_path):
    _brats_case(tmp_path, "C1")
    path = tmp_path / "HGG" / "C1" / "C1_flair.nii.gz"
    path.write_bytes(path.read_bytes()[:60])  # truncated gzip
    with pytest.raises(DataError, match="cannot read NIfTI file") as err:
        brats_mod.convert_case(path, path.with_name("C1_seg.nii.gz"), "C1")
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- Pancreas-CT

NX, NY, NZ = 48, 40, 20  # DICOM columns, rows, slices
PIXEL_MM = (1.5, 2.0)  # PixelSpacing = (row spacing = y, column spacing = x)
DZ = 2.5


def _pancreas_truth() -> tuple[np.ndarray, np.ndarray]:
    """HU and label, (x, y, z) with z ascending in position; the organ sits low in z so that a
    flipped label would land on the decoy block instead."""
    hu = np.full((NX, NY, NZ), -1000.0)
    hu[4:44, 4:36, :] = -100.0  # body (fat)
    hu[20:30, 12:20, 3:8] = 150.0  # pancreas
    hu[20:30, 12:20, 12:17] = 250.0  # decoy at the mirrored z position
    label = np.zeros(hu.shape, np.uint8)
    label[20:30, 12:20, 3:8] = 1
    return hu, label


def _write_ct_case(raw: Path, n: int, *, instance_descending: bool = True) -> None:
    """A TCIA-style series (shuffled file names) and its label in InstanceNumber order."""
    hu, label = _pancreas_truth()
    folder = raw / "Pancreas-CT" / f"PANCREAS_{n:04d}" / "11-24-2015-study" / "Pancreas-series"
    folder.mkdir(parents=True)
    series, study = generate_uid(), generate_uid()
    instance = [NZ - k if instance_descending else k + 1 for k in range(NZ)]
    for k in np.random.default_rng(n).permutation(NZ):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = "CT", series, study
        ds.InstanceNumber = instance[k]
        ds.ImagePositionPatient = [-40.0, -30.0, -200.0 + k * DZ]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = list(PIXEL_MM)
        ds.SliceThickness = DZ
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.Rows, ds.Columns = NY, NX
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = (hu[:, :, k].T + 1024).astype(np.uint16).tobytes()
        ds.save_as(folder / f"1-{instance[k]:03d}.dcm", enforce_file_format=True)
    order = np.argsort(instance)  # label slice j is the slice with the j-th InstanceNumber
    labels = raw / "TCIA_pancreas_labels-02-05-2017"
    write_nifti(labels / f"label{n:04d}.nii.gz", label[:, :, order], np.diag([0.5, 0.5, 1, 1]))


@pytest.mark.parametrize("descending", [True, False])
def test_pancreas_orientation_window_resample(tmp_path, descending):
    _write_ct_case(tmp_path, 1, instance_descending=descending)
    found = pancreas_mod.find_cases(tmp_path)
    volume, extra = pancreas_mod.convert_case(*found["PANCREAS_0001"], "PANCREAS_0001")
    assert extra["source_spacing"] == [2.0, 1.5, 2.5]
    assert extra["resampled_shape"] == [96, 60, 50]  # 1 mm: 48*2, 40*1.5, 20*2.5
    assert volume.spacing == (1.0, 1.0, 1.0)
    assert volume.image.shape[1:] == (96, 60, 50)  # every axis clamped to the volume (< 96)
    image = volume.image[0]
    assert image.min() >= 0 and image.max() <= 1
    organ = image[volume.label == 1]
    # Interior voxels hold the organ's HU exactly (rims blend with fat); none is the decoy's.
    assert np.median(organ) == pytest.approx((150 + 125) / 400, abs=1e-4)
    assert organ.max() < (250 + 125) / 400 - 0.05
    assert image.min() == 0.0 and image.max() == pytest.approx(375 / 400)


def test_pancreas_crop_margins(tmp_path):
    _write_ct_case(tmp_path, 1)
    found = pancreas_mod.find_cases(tmp_path)
    volume, extra = pancreas_mod.convert_case(
        *found["PANCREAS_0001"], "PANCREAS_0001", margin=4, min_size=0
    )
    coords = np.nonzero(volume.label)
    for axis, c in enumerate(coords):
        assert c.min() == 4 and volume.label.shape[axis] - 1 - c.max() == 4
    lo, hi = extra["crop_box"]
    assert [h - lo_ for lo_, h in zip(lo, hi, strict=True)] == list(volume.label.shape)


def test_expand_box_min_size_and_clamp():
    lo, hi = expand_box(np.array([50, 2, 0]), np.array([60, 10, 5]), (200, 200, 40),
                        margin=25, min_size=96)  # fmt: skip
    assert (hi - lo).tolist() == [96, 96, 40]
    assert lo.tolist() == [7, 0, 0]  # centred on the box, shifted inwards at the border


@needs_splits
def test_pancreas_prepare_lists_folds_and_leak_warning(tmp_path, lists_url):
    for n in (1, 63):
        _write_ct_case(tmp_path / "raw", n)
    dest = prepare("pancreas", raw=tmp_path / "raw", dest=tmp_path / "pancreas",
                   cases=["PANCREAS_0001", "PANCREAS_0063"], base_url=lists_url)  # fmt: skip
    manifest = _check_manifest(dest, "pancreas", 2)
    assert (dest / "Pancreas_data" / "PANCREAS_0001.h5").is_file()
    assert read_split(dest / "train.list") == ["PANCREAS_0001.h5"]
    assert read_split(dest / "test.list") == ["PANCREAS_0063.h5"]
    assert not (dest / "test1.list").exists() and (dest / "folds" / "test1.list").is_file()
    with pytest.warns(UserWarning, match="not held-out"):
        pancreas_eval_list("folds/test1.list", split_dir=dest)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pancreas_eval_list(split_dir=dest) == ["PANCREAS_0063.h5"]
    assert manifest["cases"][0]["crop_box"] and "test1.list" in manifest["notes"][0]


def test_pancreas_corrupt_dicom(tmp_path):
    _write_ct_case(tmp_path, 1)
    bad = sorted(tmp_path.rglob("*.dcm"))[3]
    bad.write_bytes(b"garbage, not DICOM")
    found = pancreas_mod.find_cases(tmp_path)
    with pytest.raises(DataError, match="cannot read DICOM slice") as err:
        pancreas_mod.convert_case(*found["PANCREAS_0001"], "PANCREAS_0001")
    assert str(bad) in str(err.value)


def test_pancreas_label_shape_differs(tmp_path):
    _write_ct_case(tmp_path, 1)
    label = next(tmp_path.rglob("label0001.nii.gz"))
    write_nifti(label, np.zeros((NX, NY, NZ - 1), np.uint8), np.eye(4))
    found = pancreas_mod.find_cases(tmp_path)
    with pytest.raises(DataError, match=r"label shape .* differs"):
        pancreas_mod.convert_case(*found["PANCREAS_0001"], "PANCREAS_0001")


# ---------------------------------------------------------------- ISLES'22

ISLES_SHAPE, ISLES_ZOOMS = (20, 22, 12), (2.5, 2.5, 3.0)


def _isles_case(raw: Path, index: int, *, github: bool) -> None:
    """One case in the Zenodo layout (dwi/ folder) or the organizers' GitHub one (rawdata/)."""
    rng = np.random.default_rng(index)
    x, y, z = np.ogrid[: ISLES_SHAPE[0], : ISLES_SHAPE[1], : ISLES_SHAPE[2]]
    brain = ((x - 10) / 8) ** 2 + ((y - 11) / 9) ** 2 + ((z - 6) / 5) ** 2 < 1
    dwi = np.where(brain, rng.uniform(200, 400, ISLES_SHAPE), 0).astype(np.float32)
    adc = np.where(brain, rng.uniform(0.8, 1.4, ISLES_SHAPE), 0).astype(np.float32)
    mask = np.zeros(ISLES_SHAPE, np.uint16)
    mask[8:12, 9:13, 5:8] = 1
    affine = np.diag([-ISLES_ZOOMS[0], ISLES_ZOOMS[1], ISLES_ZOOMS[2], 1.0])  # LAS, as upstream
    sub = f"sub-strokecase{index:04d}"
    images = raw / "rawdata" / sub / "ses-0001" if github else raw / sub / "ses-0001" / "dwi"
    write_nifti(images / f"{sub}_ses-0001_dwi.nii.gz", dwi, affine)
    write_nifti(images / f"{sub}_ses-0001_adc.nii.gz", adc, affine)
    write_nifti(raw / "derivatives" / sub / "ses-0001" / f"{sub}_ses-0001_msk.nii.gz", mask, affine)


def _isles_raw(raw: Path, *, github: bool = False, n: int = 4) -> Path:
    for index in range(1, n + 1):
        _isles_case(raw, index, github=github)
    return raw / "rawdata" if github else raw


@pytest.mark.parametrize("github", [False, True])
def test_isles22_prepare_grid_normalisation_split(tmp_path, github):
    raw = _isles_raw(tmp_path / "ISLES-2022", github=github)
    dest = prepare("isles22", raw=raw, dest=tmp_path / "isles22", shape=(24, 32, 16), adc=True,
                   n_train=3, n_test=1)  # fmt: skip
    manifest = _check_manifest(dest, "isles22", 4)
    train, test = read_split(dest / "train.list"), read_split(dest / "test.list")
    assert len(train) == 3 and len(test) == 1 and not set(train) & set(test)
    volume = read_case("isles22", dest, "sub-strokecase0001")
    assert volume.image.shape == (2, 24, 32, 16)  # 25 x 28 x 18 at 2 mm, cropped / padded
    np.testing.assert_allclose(volume.spacing, (2.0, 55 / 28, 2.0), rtol=1e-6)
    brain = volume.image[0] != 0
    for channel in volume.image:
        assert channel[brain].mean() == pytest.approx(0, abs=1e-4)
        assert channel[brain].std() == pytest.approx(1, abs=1e-3)
        assert np.all(channel[~brain] == 0)
    assert set(np.unique(volume.label)) == {0, 1} and volume.label[brain].sum() > 0
    with h5py.File(dest / "sub-strokecase0001.h5") as f:
        assert set(f) == {"image", "mask"} and "spacing_mm" in f.attrs
    assert manifest["cases"][0]["mask_voxels_cropped"] == 0
    assert manifest["prepared_with"]["options"]["shape"] == [24, 32, 16]


def test_isles22_mask_grid_differs(tmp_path):
    raw = _isles_raw(tmp_path / "raw", n=2)
    mask = next(raw.rglob("sub-strokecase0002_ses-0001_msk.nii.gz"))
    write_nifti(mask, np.zeros((20, 22, 11), np.uint8), np.eye(4))
    with pytest.raises(DataError, match="does not match the DWI") as err:
        prepare("isles22", raw=raw, dest=tmp_path / "isles22", n_train=1, n_test=1)
    assert str(mask) in str(err.value)


def test_isles22_failure_keeps_previous_prepare(tmp_path):
    raw = _isles_raw(tmp_path / "raw", n=2)
    dest = prepare("isles22", raw=raw, dest=tmp_path / "isles22", n_train=1, n_test=1)
    before = (dest / "manifest.json").read_bytes()
    (tmp_path / "isles22.partial").mkdir()  # a stale one from a killed run
    (tmp_path / "isles22.partial" / "junk.h5").write_bytes(b"x")
    dwi = next(raw.rglob("sub-strokecase0002_ses-0001_dwi.nii.gz"))
    dwi.write_bytes(b"corrupt")
    with pytest.raises(DataError, match="cannot read NIfTI"):
        prepare("isles22", raw=raw, dest=dest, n_train=1, n_test=1)
    assert (dest / "manifest.json").read_bytes() == before
    assert not (tmp_path / "isles22.partial").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["isles22", "raw"]


# ---------------------------------------------------------------- isles-sim


def test_isles_sim_tiny_native_grid(tmp_path):
    pytest.importorskip("dycon.data.isles_sim")
    dest = prepare("isles-sim", dest=tmp_path / "isles-sim", preset="tiny")
    manifest = _check_manifest(dest, "isles-sim", 6)
    assert manifest["banner"] == ISLES_SIM_BANNER and "SYNTHETIC" in ISLES_SIM_BANNER
    raw = dest / "raw"
    assert read_split(dest / "train.list") == read_split(raw / "train.list")  # labeled first
    assert read_split(dest / "test.list") == read_split(raw / "test.list")
    assert not (dest / "val.list").exists()  # the tiny preset has no validation case
    assert (dest / "lesions.tsv").read_bytes() == (raw / "lesions.tsv").read_bytes()
    volume = read_case("isles-sim", dest, "sub-strokecase0001")
    assert volume.spacing == (6.0, 6.0, 7.0) and volume.label.shape == (32, 32, 24)
    brain = volume.image[0] != 0
    assert volume.image[0][brain].mean() == pytest.approx(0, abs=1e-4)
    assert volume.image[0][brain].std() == pytest.approx(1, abs=1e-3)
    again = prepare("isles-sim", dest=dest, preset="tiny")  # reuses the generated raw set
    assert _manifest(again)["cases"] == manifest["cases"]


# ---------------------------------------------------------------- status and dispatch


def test_status_prepared_partial_missing(tmp_path, monkeypatch):
    root = tmp_path / "data"
    prepare("isles22", raw=_isles_raw(tmp_path / "raw", n=2), dest=root / "isles22",
            n_train=1, n_test=1)  # fmt: skip
    (root / "brats19.partial" / "data").mkdir(parents=True)  # an interrupted prepare
    (root / "brats19.partial" / "data" / "x.h5").write_bytes(b"")
    monkeypatch.setenv("DYCON_DATA", str(root))
    rows = {row["dataset"]: row for row in status()}
    assert list(rows) == list(DATASETS)
    assert rows["isles22"]["state"] == "prepared" and rows["isles22"]["cases"] == 2
    assert rows["isles22"]["lists"] == {"test.list": 1, "train.list": 1}
    # the hash that a run's data stamp records, so a user can tell which copy they hold
    assert rows["isles22"]["data_hash"] == data_hash(root / "isles22")
    assert rows["isles22"]["detail"] == f"2 cases, data hash {rows['isles22']['data_hash']}"
    assert rows["brats19"]["state"] == "partial" and rows["brats19"]["cases"] == 1
    assert rows["brats19"]["command"].startswith("python -m dycon data prepare brats19 --raw")
    for name in ("la", "pancreas", "isles-sim"):
        assert rows[name]["state"] == "missing"
    assert rows["isles-sim"]["banner"] == ISLES_SIM_BANNER
    (root / "isles22" / "sub-strokecase0001.h5").unlink()
    row = status(root)[DATASETS.index("isles22")]
    assert row["state"] == "partial" and "missing" in row["detail"]
    assert row["command"].startswith(f"DYCON_DATA={root} python -m dycon data prepare isles22 ")


def test_status_missing_root(tmp_path):
    with pytest.raises(DataError, match=r"DYCON_DATA.*book/data\.md"):
        status(tmp_path / "nowhere")


def test_unknown_dataset_and_option(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'acdc'"):
        prepare("acdc", dest=tmp_path)
    with pytest.raises(DataError, match=r"unknown option\(s\) \['spacing'\] for la"):
        prepare("la", dest=tmp_path, spacing=(1, 1, 1))
    assert {"cases", "verify", "base_url"} <= set(options_of("la"))
