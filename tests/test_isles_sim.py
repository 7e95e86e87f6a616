"""isles-sim generator: layout, volumes, lesion table, splits, determinism, atomicity, fallback."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import stat
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from dycon.data.isles_sim import (
    GENERATOR_VERSION,
    PRESETS,
    SPLITS,
    SimParams,
    anatomy,
    case_paths,
    generate_isles_sim,
    size_bin,
    writer,
)
from dycon.data.isles_sim.lesions import phenotype_schedule
from dycon.data.isles_sim.synth import synthesize_case
from dycon.data.volume import DataError

# 26-connectivity, written out here rather than imported, so the test checks the generator.
STRUCTURE_26 = np.ones((3, 3, 3), dtype=bool)
TOP_LEVEL = {
    "dataset_description.json",
    "participants.tsv",
    "lesions.tsv",
    "NOTICE",
    "train.list",
    "val.list",
    "test.list",
    "splits",
    "derivatives",
}


def _tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _list(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _arrays(root: Path) -> dict[str, np.ndarray]:
    return {
        str(p.relative_to(root)): np.asarray(nib.load(p).dataobj)
        for p in sorted(root.rglob("*.nii.gz"))
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return generate_isles_sim(tmp_path_factory.mktemp("sim") / "isles-sim", preset="tiny", seed=0)


def test_layout_is_the_isles22_zenodo_layout(tiny):
    participants = [r["participant_id"] for r in _tsv(tiny / "participants.tsv")]
    assert participants == [f"sub-strokecase{i:04d}" for i in range(1, 7)]
    assert {p.name for p in tiny.iterdir()} == TOP_LEVEL | set(participants)
    expected = set()
    for i, sub in enumerate(participants):
        stem = f"{sub}_ses-0001"
        paths = case_paths(tiny, i)
        assert paths["dwi"] == tiny / sub / "ses-0001" / "dwi" / f"{stem}_dwi.nii.gz"
        assert paths["adc"] == tiny / sub / "ses-0001" / "dwi" / f"{stem}_adc.nii.gz"
        assert paths["msk"] == tiny / "derivatives" / sub / "ses-0001" / f"{stem}_msk.nii.gz"
        expected |= set(paths.values())
    assert set(tiny.rglob("*.nii.gz")) == expected
    # What a suffix-based recursive reader finds: one of each per case, masks only in derivatives.
    assert len(list(tiny.glob("**/*_dwi.nii.gz"))) == len(list(tiny.glob("**/*_adc.nii.gz"))) == 6
    assert all("derivatives" in p.parts for p in tiny.glob("**/*_msk.nii.gz"))
    assert not list(tiny.parent.glob(".*"))  # no temporary folder left beside the dataset


def test_volumes_dtype_shape_affine_and_masks(tiny):
    preset = PRESETS["tiny"]
    for i in range(preset.n_cases):
        imgs = {k: nib.load(p) for k, p in case_paths(tiny, i).items()}
        for key, img in imgs.items():
            assert img.shape == preset.shape
            assert img.get_data_dtype() == (np.uint8 if key == "msk" else np.float32)
            assert nib.aff2axcodes(img.affine) == ("L", "A", "S")
            assert img.affine[0, 0] < 0
            np.testing.assert_allclose(img.header.get_zooms(), preset.spacing)
            np.testing.assert_allclose(img.affine, imgs["dwi"].affine)
        dwi, adc = (np.asarray(imgs[k].dataobj) for k in ("dwi", "adc"))
        mask = np.asarray(imgs["msk"].dataobj)
        brain = dwi > 0
        assert set(np.unique(mask)) == {0, 1}
        assert np.all(brain[mask == 1]), "lesion voxels outside the brain"
        assert np.all((adc > 0) <= brain) and np.isfinite(dwi).all() and np.isfinite(adc).all()
        # The label marks something visible: bright on DWI, dark on ADC.
        healthy = brain & (mask == 0)
        assert dwi[mask == 1].mean() > 1.3 * dwi[healthy].mean()
        assert adc[mask == 1].mean() < 0.8 * adc[healthy].mean()


def test_lesions_tsv_rows_are_the_connected_components(tiny):
    rows = _tsv(tiny / "lesions.tsv")
    phenotype = {r["participant_id"]: r["phenotype"] for r in _tsv(tiny / "participants.tsv")}
    voxel_ml = PRESETS["tiny"].voxel_ml
    for i, sub in enumerate(phenotype):
        mask = np.asarray(nib.load(case_paths(tiny, i)["msk"]).dataobj)
        labels, n = ndi.label(mask, structure=STRUCTURE_26)
        mine = [r for r in rows if r["case"] == sub]
        assert n >= 1 and [int(r["component"]) for r in mine] == list(range(1, n + 1))
        for r in mine:
            cid = int(r["component"])
            voxels = int((labels == cid).sum())
            assert int(r["voxels"]) == voxels
            assert float(r["volume_ml"]) == pytest.approx(voxels * voxel_ml, abs=1e-4)
            assert r["size_bin"] == size_bin(voxels * voxel_ml)
            assert r["phenotype"] == phenotype[sub]
            centroid = [float(r[f"centroid_{a}"]) for a in "ijk"]
            np.testing.assert_allclose(centroid, ndi.center_of_mass(labels == cid), atol=0.01)


def test_split_lists_disjoint_complete_labeled_first(tiny):
    preset = PRESETS["tiny"]
    lists = {s: _list(tiny / "splits" / f"{s}.list") for s in SPLITS}
    assert [len(lists[s]) for s in SPLITS] == list(preset.counts)
    everyone = [r["participant_id"] for r in _tsv(tiny / "participants.tsv")]
    members = [c for ids in lists.values() for c in ids]
    assert sorted(members) == sorted(everyone)  # disjoint and complete
    assert _list(tiny / "train.list") == lists["train_labeled"] + lists["train_unlabeled"]
    assert _list(tiny / "val.list") == lists["val"]
    assert _list(tiny / "test.list") == lists["test"]
    split_of = {r["participant_id"]: r["split"] for r in _tsv(tiny / "participants.tsv")}
    assert all(split_of[c] == s for s, ids in lists.items() for c in ids)


def test_description_records_everything_needed_to_regenerate(tiny):
    meta = json.loads((tiny / "dataset_description.json").read_text())
    assert meta["Name"] and meta["BIDSVersion"]
    assert (meta["generator_version"], meta["preset"], meta["seed"]) == (
        GENERATOR_VERSION,
        "tiny",
        0,
    )
    assert meta["parameters"] == json.loads(json.dumps(dataclasses.asdict(SimParams())))
    assert meta["shape"] == [32, 32, 24] and meta["spacing_mm"] == [6.0, 6.0, 7.0]
    assert {"numpy", "scipy", "nibabel", "nilearn"} <= set(meta["software"])
    if anatomy.locate_template() is not None:
        assert meta["anatomy"] == anatomy.MNI_ANATOMY
        assert set(meta["template_sha256"]) == set(anatomy.TEMPLATE_FILES.values())
        assert all(len(h) == 64 for h in meta["template_sha256"].values())
    notice = (tiny / "NOTICE").read_text()
    assert notice == writer.NOTICE_SOURCE.read_text()
    assert "Louis Collins" in notice and "Fonov" in notice and "2011" in notice


def test_same_seed_same_arrays_other_seed_differs(tiny, tmp_path):
    again = _arrays(generate_isles_sim(tmp_path / "a", preset="tiny", seed=0))
    first = _arrays(tiny)
    assert again.keys() == first.keys()
    assert all(np.array_equal(again[k], first[k]) for k in first)
    other = _arrays(generate_isles_sim(tmp_path / "b", preset="tiny", seed=1))
    assert not any(np.array_equal(other[k], first[k]) for k in first if k.endswith("_dwi.nii.gz"))


def test_case_depends_only_on_seed_and_index(tiny):
    """Case i is reproduced from its own documented stream, without generating the others."""
    preset, params = PRESETS["tiny"], SimParams()
    rngs, _ = writer.case_rngs(seed=0, n_cases=preset.n_cases)
    stream = np.random.SeedSequence(0).spawn(preset.n_cases + 1)[3]
    assert rngs[3].get_state()[1].tolist() == (
        np.random.RandomState(stream.generate_state(4)).get_state()[1].tolist()
    )
    phenotype = _tsv(tiny / "participants.tsv")[3]["phenotype"]
    case = synthesize_case(
        template=anatomy.load_template(params=params),
        preset=preset,
        params=params,
        phenotype=phenotype,
        rng=rngs[3],
    )
    paths = case_paths(tiny, 3)
    assert np.array_equal(case.dwi, np.asarray(nib.load(paths["dwi"]).dataobj))
    assert np.array_equal(case.mask, np.asarray(nib.load(paths["msk"]).dataobj))


def test_files_follow_the_umask_not_owner_only(tiny):
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tiny / "lesions.tsv").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(case_paths(tiny, 0)["dwi"].stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(tiny.stat().st_mode) == 0o777 & ~umask | (0o777 & ~umask & 0o444) >> 2


def test_complete_dataset_is_reused(tiny, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("regenerated a complete dataset")

    monkeypatch.setattr(writer, "_write_dataset", fail)
    assert generate_isles_sim(tiny, preset="tiny", seed=0) == tiny


def test_existing_other_content_raises_unless_overwrite(tiny, tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "something.txt").write_text("keep me")
    with pytest.raises(DataError, match=r"junk.*delete it or pass overwrite=True"):
        generate_isles_sim(junk, preset="tiny")
    with pytest.raises(DataError, match="holds isles-sim preset='tiny' seed=0"):
        generate_isles_sim(tiny, preset="tiny", seed=5)  # complete, but another seed
    assert (junk / "something.txt").exists()
    generate_isles_sim(junk, preset="tiny", overwrite=True)
    assert not (junk / "something.txt").exists()
    assert writer.is_complete(junk, preset="tiny", seed=0)
    assert not list(tmp_path.glob(".*"))
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder holds nothing to protect
    assert writer.is_complete(generate_isles_sim(empty, preset="tiny"), preset="tiny", seed=0)


def test_unknown_preset_raises(tmp_path):
    with pytest.raises(DataError, match="preset"):
        generate_isles_sim(tmp_path / "x", preset="huge")
    for seed in (-1, 1.5, "0"):
        with pytest.raises(DataError, match="seed"):
            generate_isles_sim(tmp_path / "x", preset="tiny", seed=seed)
    assert not (tmp_path / "x").exists()


def _fail_on_third_case(monkeypatch):
    real = writer.synthesize_case
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return real(**kwargs)

    monkeypatch.setattr(writer, "synthesize_case", flaky)


def test_failure_mid_generation_leaves_nothing(tmp_path, monkeypatch):
    _fail_on_third_case(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate_isles_sim(tmp_path / "isles-sim", preset="tiny")
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_previous_dataset(tmp_path, monkeypatch):
    dest = generate_isles_sim(tmp_path / "isles-sim", preset="tiny", seed=0)
    before = _arrays(dest)
    _fail_on_third_case(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate_isles_sim(dest, preset="tiny", seed=1, overwrite=True)
    assert writer.is_complete(dest, preset="tiny", seed=0)
    after = _arrays(dest)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert [p.name for p in tmp_path.iterdir()] == ["isles-sim"]


def test_phantom_fallback_produces_a_valid_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(anatomy, "locate_template", lambda: None)
    dest = generate_isles_sim(tmp_path / "phantom", preset="tiny", seed=0)
    meta = json.loads((dest / "dataset_description.json").read_text())
    assert meta["anatomy"] == "phantom" and meta["template_sha256"] == {}
    rows = _tsv(dest / "lesions.tsv")
    for i in range(PRESETS["tiny"].n_cases):
        dwi = np.asarray(nib.load(case_paths(dest, i)["dwi"]).dataobj)
        mask = np.asarray(nib.load(case_paths(dest, i)["msk"]).dataobj)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
        assert np.all(dwi[mask == 1] > 0)
        n = ndi.label(mask, structure=STRUCTURE_26)[1]
        assert sum(r["case"] == f"sub-strokecase{i + 1:04d}" for r in rows) == n


def test_phenotype_quota_per_split():
    preset = PRESETS["default"]
    rng = np.random.RandomState(0)
    phenotypes = phenotype_schedule(preset=preset, params=SimParams(), rng=rng)
    got = Counter(zip(preset.split_of_case(), phenotypes, strict=True))
    # 7:4:6:3 per 20 cases (embolic, lacunar, territorial, mixed), largest remainder.
    want = {
        "train_labeled": (3, 2, 2, 1),
        "train_unlabeled": (11, 6, 10, 5),
        "val": (3, 2, 2, 1),
        "test": (8, 5, 7, 4),
    }
    for split, counts in want.items():
        names = ("embolic", "lacunar", "territorial", "mixed")
        assert tuple(got[(split, p)] for p in names) == counts


@pytest.mark.slow
def test_default_preset_calibration(tmp_path):
    """One full default generation: the statistics notes/datasets.md section 4.3 calibrates."""
    dest = generate_isles_sim(tmp_path / "isles-sim", preset="default", seed=0)
    participants = _tsv(dest / "participants.tsv")
    rows = _tsv(dest / "lesions.tsv")
    assert Counter(r["split"] for r in participants) == dict(
        zip(SPLITS, (8, 32, 8, 24), strict=True)
    )
    assert [len(_list(dest / f"{s}.list")) for s in ("train", "val", "test")] == [40, 8, 24]
    fractions, brain_fill, per_case = [], [], Counter(r["case"] for r in rows)
    for i in range(72):
        img = nib.load(case_paths(dest, i)["msk"])
        assert img.shape == (64, 64, 48)
        np.testing.assert_allclose(img.header.get_zooms(), (3.0, 3.0, 3.5))
        fractions.append(np.asarray(img.dataobj).mean())
        brain_fill.append((np.asarray(nib.load(case_paths(dest, i)["dwi"]).dataobj) > 0).mean())
    assert np.median(fractions) < 0.01 and max(fractions) < 0.02
    assert 0.2 < np.median(brain_fill) < 0.4
    assert np.median(list(per_case.values())) >= 3 and len(per_case) == 72
    bins = Counter(r["size_bin"] for r in rows)
    assert all(bins[b] > 0 for b in ("tiny", "small", "medium", "large"))
    assert bins["tiny"] + bins["small"] > len(rows) / 2  # many small components
    test_ids = {r["participant_id"] for r in participants if r["split"] == "test"}
    assert len({r["size_bin"] for r in rows if r["case"] in test_ids}) == 4
    by_split = Counter((r["split"], r["phenotype"]) for r in participants)
    assert [by_split[("test", p)] for p in ("embolic", "lacunar", "territorial", "mixed")] == [
        8,
        5,
        7,
        4,
    ]
