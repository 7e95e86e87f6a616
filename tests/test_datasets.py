"""data/datasets.py: each dataset declared once; every per-dataset table is derived from it."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest
import yaml

from dycon import cli
from dycon.config import available
from dycon.data import prepare, readers
from dycon.data.datasets import DATASETS, Dataset, dataset
from dycon.data.isles_sim.params import PRESETS
from dycon.data.prepare import manifest
from dycon.data.readers import h5
from dycon.data.splits import PINNED_LISTS
from dycon.data.volume import DataError
from dycon.engine import datasets as engine_datasets

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["isles-sim", "isles22", "brats19", "pancreas", "la"]  # default first, then Tables 1-4


def _paper_cost():
    spec = importlib.util.spec_from_file_location("paper_cost", ROOT / "bench" / "paper_cost.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_registry_names_are_the_yaml_configs():
    assert list(DATASETS) == NAMES
    assert sorted(DATASETS) == available("datasets")
    for name in DATASETS:
        text = (ROOT / "dycon" / "configs" / "datasets" / f"{name}.yaml").read_text()
        assert yaml.safe_load(text)["data"]["dataset"] == name
        assert DATASETS[name].name == name


def test_every_derived_table_has_exactly_the_registry_keys():
    paper_cost = _paper_cost()
    tables = {
        "prepare.PREPARERS": prepare.PREPARERS,
        "readers.READERS": readers.READERS,
        "manifest.CASE_FILES": manifest.CASE_FILES,
        "manifest.COMMANDS": manifest.COMMANDS,
        "paper_cost.TRAIN_CASES": paper_cost.TRAIN_CASES,
        "paper_cost.TEST_CASES": paper_cost.TEST_CASES,
    }
    for where, table in tables.items():
        assert list(table) == NAMES, where
    assert sorted(paper_cost.TYPICAL_SHAPES) == sorted(NAMES)  # bench assumptions, kept there
    assert prepare.DATASETS == cli.DATASETS == tuple(NAMES)
    assert engine_datasets.SYNTHETIC == {"isles-sim"}
    formats = {d.format for d in DATASETS.values()}
    assert set(h5.H5_READERS) == set(h5.H5_FORMATS) == set(h5.H5_FILES) == formats


# Hand-written from the upstream layouts and commands (book/data.md).
@pytest.mark.parametrize(
    ("name", "reader", "case_file", "command"),
    [
        ("isles-sim", h5.read_isles_h5, "sub-0001.h5", "python -m dycon data prepare isles-sim"),
        (
            "isles22",
            h5.read_isles_h5,
            "sub-0001.h5",
            "python -m dycon data prepare isles22 --raw <ISLES-2022>",
        ),
        (
            "brats19",
            h5.read_brats19,
            "data/sub-0001.h5",
            "python -m dycon data prepare brats19 --raw <MICCAI_BraTS_2019_Data_Training>",
        ),
        (
            "pancreas",
            h5.read_pancreas,
            "Pancreas_data/sub-0001.h5",
            "python -m dycon data prepare pancreas --raw <folder with PANCREAS_00XX DICOM "
            "folders and TCIA_pancreas_labels-02-05-2017>",
        ),
        (
            "la",
            h5.read_la,
            "2018LA_Seg_Training Set/sub-0001/mri_norm2.h5",
            "python -m dycon data prepare la",
        ),
    ],
)
def test_the_derived_entries(name, reader, case_file, command):
    assert readers.READERS[name] is reader
    assert manifest.case_file(name, "sub-0001.h5") == case_file
    assert manifest.COMMANDS[name] == command
    assert DATASETS[name].command_name == f"python -m dycon data prepare {name}"
    module, function = DATASETS[name].preparer.split(":")
    assert prepare.PREPARERS[name].__module__ == f"dycon.data.prepare.{module}"
    assert prepare.PREPARERS[name].__name__ == function


def _sizes(d: Dataset) -> dict[str, int]:
    return {"train": d.train_cases, "val": d.val_cases, "test": d.test_cases}


@pytest.mark.parametrize(
    ("name", "lists"),
    [
        ("la", {"train": "train.list", "test": "test.list"}),  # UA-MT
        ("brats19", {"train": "train.txt", "val": "val.txt", "test": "test.txt"}),  # SSL4MIS
        ("pancreas", {"train": "train.list", "test": "test.list"}),  # DyCON (folds apart)
    ],
)
def test_split_sizes_match_the_pinned_lists(name, lists):
    lines = {p.name: p.lines for p in PINNED_LISTS[name]}
    expected = {split: lines[file] for split, file in lists.items()}
    assert _sizes(DATASETS[name]) == {"val": 0, **expected}


def test_split_sizes_of_the_generated_and_the_seeded_split():
    labeled, unlabeled, val, test = PRESETS["default"].counts  # the generator's split
    assert _sizes(DATASETS["isles-sim"]) == {"train": labeled + unlabeled, "val": val, "test": test}
    assert (labeled + unlabeled, val, test) == (40, 8, 24)
    defaults = inspect.signature(prepare.PREPARERS["isles22"]).parameters  # no public split
    assert _sizes(DATASETS["isles22"]) == {
        "train": defaults["n_train"].default,
        "val": 0,
        "test": defaults["n_test"].default,
    }
    assert (defaults["n_train"].default, defaults["n_test"].default) == (200, 50)


def test_a_synthetic_dataset_has_a_banner_and_a_real_one_none():
    for d in DATASETS.values():
        assert d.synthetic == (d.banner is not None), d.name
    assert "SYNTHETIC" in DATASETS["isles-sim"].banner


MESSAGE = "unknown dataset 'acdc'; valid datasets: isles-sim, isles22, brats19, pancreas, la"


@pytest.mark.parametrize(
    "call",
    [
        lambda tmp: dataset("acdc"),
        lambda tmp: readers.read_case("acdc", tmp, "case"),
        lambda tmp: readers.check_case("acdc", tmp, "case"),
        lambda tmp: prepare.prepare("acdc", dest=tmp),
        lambda tmp: prepare.options_of("acdc"),
        lambda tmp: manifest.case_file("acdc", "case"),
    ],
)
def test_an_unknown_name_gives_one_line_listing_the_valid_ones(call, tmp_path):
    with pytest.raises(DataError) as err:
        call(tmp_path)
    assert str(err.value) == MESSAGE


def test_the_cli_offers_the_registry_names(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["data", "prepare", "acdc"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert "invalid choice: 'acdc' (choose from " + ", ".join(map(repr, NAMES)) + ")" in err
