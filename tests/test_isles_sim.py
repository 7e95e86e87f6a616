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
from dycon.data.isles_sim.lesions import phenotype_schedule, plant_lesions
from dycon.data.isles_sim.mimics import plant_mimics
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
    lesion_dwi, healthy_dwi, lesion_adc, healthy_adc = [], [], [], []
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
        # The label marks something visible: bright on DWI, dark on ADC. Since generator 2.1 a
        # lesion's contrast can be as low as c = 0.25 (DWI) and c' = 0.2 (ADC), and rim voxels
        # keep only half of it, so one case may sit near 1.15 / 0.9; pooled over the cases the
        # lesions are still clearly brighter on DWI and darker on ADC.
        healthy = brain & (mask == 0)
        assert dwi[mask == 1].mean() > 1.15 * dwi[healthy].mean()
        assert adc[mask == 1].mean() < 0.9 * adc[healthy].mean()
        lesion_dwi.append(dwi[mask == 1].mean())
        healthy_dwi.append(dwi[healthy].mean())
        lesion_adc.append(adc[mask == 1].mean())
        healthy_adc.append(adc[healthy].mean())
    assert np.mean(lesion_dwi) > 1.3 * np.mean(healthy_dwi)
    assert np.mean(lesion_adc) < 0.8 * np.mean(healthy_adc)


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


def _subject(preset_name: str = "default", seed: int = 3):
    preset, params = PRESETS[preset_name], SimParams()
    rng = np.random.RandomState(seed)
    template = anatomy.load_template(params=params)
    anat = anatomy.subject_anatomy(template=template, preset=preset, params=params, rng=rng)
    return preset, params, anat, rng


def test_mimics_are_unlabeled_bright_and_where_the_design_puts_them():
    preset, params, anat, rng = _subject()
    lesions = plant_lesions(
        phenotype="lacunar", anatomy=anat, spacing=preset.spacing, params=params, rng=rng
    )
    params = dataclasses.replace(params, artefact_count=(3, 3), wmh_count=(6, 6))
    mimics = plant_mimics(
        anatomy=anat, lesion_mask=lesions.mask, spacing=preset.spacing, params=params, rng=rng
    )
    assert (mimics.artefacts, mimics.wmh) == (3, 6)
    # Unlabeled, and kept one voxel away from every lesion voxel (the label stays coherent).
    near_lesion = ndi.binary_dilation(lesions.mask, structure=STRUCTURE_26)
    assert mimics.dwi_contrast.max() > 0 and not mimics.dwi_contrast[near_lesion].any()
    # WMH raise ADC (T2 shine-through); artefacts leave it alone: the ADC footprint is a strict
    # part of the DWI one, and it sits in white matter.
    adc_on, dwi_on = mimics.adc_contrast > 0, mimics.dwi_contrast > 0
    assert adc_on.any() and np.all(dwi_on[adc_on]) and (dwi_on & ~adc_on).sum() > 0
    assert anat.wm[adc_on].mean() > 0.4
    # Artefacts (bright on DWI only) lie low in the brain, near its surface.
    artefact = dwi_on & ~adc_on
    z_brain = np.flatnonzero(anat.brain.any(axis=(0, 1)))
    z_art = np.nonzero(artefact)[2]
    assert np.median(z_art) < z_brain[0] + 0.5 * (z_brain[-1] - z_brain[0])
    assert np.median(anat.depth_mm[artefact]) < 15.0


def test_lesion_rim_has_partial_volume_and_labels_stay_visible():
    preset, params, anat, rng = _subject()
    lesions = plant_lesions(
        phenotype="territorial", anatomy=anat, spacing=preset.spacing, params=params, rng=rng
    )
    mask = lesions.mask
    rim = ndi.binary_dilation(mask, structure=STRUCTURE_26) & ~mask
    interior = ndi.binary_erosion(mask, structure=STRUCTURE_26)
    c = lesions.dwi_contrast
    # Unlabeled rim voxels carry at most half of the contrast, labeled voxels at least half
    # (the floor), and the interior more than the labeled edge.
    assert c[rim].max() <= 0.5 * params.dwi_contrast[1] * (1 + 2 * params.texture) + 1e-6
    assert c[rim].max() > 0 and c[rim].mean() < c[mask].mean()
    assert np.all(lesions.dwi_floor[mask] > 0) and not lesions.dwi_floor[~mask].any()
    assert c[interior].mean() > c[mask & ~interior].mean()


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
    lesion_z, bright_healthy, bright_lesion = [], 0, 0
    for i in range(72):
        img = nib.load(case_paths(dest, i)["msk"])
        assert img.shape == (64, 64, 48)
        np.testing.assert_allclose(img.header.get_zooms(), (3.0, 3.0, 3.5))
        mask = np.asarray(img.dataobj) > 0
        dwi = np.asarray(nib.load(case_paths(dest, i)["dwi"]).dataobj)
        fractions.append(mask.mean())
        brain_fill.append((dwi > 0).mean())
        # Difficulty as the training pipeline sees it: DWI z-scored over the brain.
        brain = dwi > 0
        z = (dwi - dwi[brain].mean()) / dwi[brain].std()
        lesion_z.append(np.median(z[mask]))
        bright_healthy += int((z[brain & ~mask] > 2.5).sum())
        bright_lesion += int((z[mask] > 2.5).sum())
    assert np.median(fractions) < 0.01 and max(fractions) < 0.02
    assert 0.2 < np.median(brain_fill) < 0.4
    # Generator 2.1: lesions 2-3.5 SD above the brain (1.0: 4.3 SD, so a threshold found them),
    # and lesion mimics: healthy voxels above 2.5 SD number a sixth of the lesion voxels there
    # (1.0: 2 %). Measured on seed 0: median 2.8 SD, ratio 0.18, 87 artefacts and 213 WMH.
    assert 2.0 < np.median(lesion_z) < 3.5
    assert bright_healthy > 0.1 * bright_lesion
    mimics = [(int(r["artefacts"]), int(r["wmh"])) for r in participants]
    assert sum(a for a, _ in mimics) > 20 and sum(w for _, w in mimics) > 50
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
