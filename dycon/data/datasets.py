"""Every dataset, declared once: ``DATASETS`` (name -> :class:`Dataset`).

The per-dataset tables of the rest of the package are derived from it: ``prepare.PREPARERS``,
``readers.READERS``, ``prepare.manifest.CASE_FILES`` and ``COMMANDS``, ``prepare.DATASETS`` (the
names), the CLI's choices, ``engine.datasets.SYNTHETIC`` and ``bench/paper_cost.py``'s case
counts. Adding a dataset is a preparer module in ``data/prepare/``, a reader format if its files
are new, an entry here and ``configs/datasets/<name>.yaml``; ``tests/test_datasets.py`` checks
that they agree.

This module holds plain data (functions are named, not imported), so the readers and the prepare
modules below can derive their tables from it without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from dycon.data.volume import DATA_PAGE, DataError

PREPARE = "python -m dycon data prepare"


@dataclass(frozen=True)
class Dataset:
    """One dataset: where it comes from, how it is read, what its splits hold.

    Attributes:
        name: as on the command line, in configs and under ``$DYCON_DATA/<name>``.
        preparer: ``"<module>:<function>"`` in ``dycon.data.prepare``, imported by that package.
        format: the on-disk format of the prepared files, a key of ``readers.h5.H5_READERS``.
        case_file: a prepared case's file inside the dataset folder, ``{case}`` its id (what
            the reader finds first).
        raw: what ``--raw`` names (the official download), or None when prepare needs none
            (LA downloads itself, isles-sim is generated).
        train_cases: cases in ``train.list`` (labeled and unlabeled).
        val_cases: cases in ``val.list`` (0: no validation list).
        test_cases: cases in ``test.list``.
        split_source: where the split sizes come from (checked by the tests).
        synthetic: generated data, not patients; numbers on it carry ``banner``.
        banner: the warning shown wherever the data are used (synthetic data only).
    """

    name: str
    preparer: str
    format: str
    case_file: str
    raw: str | None
    train_cases: int
    val_cases: int
    test_cases: int
    split_source: str
    synthetic: bool = False
    banner: str | None = None

    @property
    def command(self) -> str:
        """The command that prepares the dataset, with a placeholder for ``--raw``."""
        return f"{PREPARE} {self.name}" + (f" --raw {self.raw}" if self.raw else "")

    @property
    def command_name(self) -> str:
        """``command`` without ``--raw`` (what a manifest records)."""
        return f"{PREPARE} {self.name}"


ISLES_SIM_BANNER = (
    "isles-sim: SYNTHETIC stroke lesions planted in the MNI152 template, not patient data. "
    "Numbers on it are not comparable with the paper's ISLES'22 results; prepare the real "
    f"ISLES'22 release for those (see {DATA_PAGE})."
)

# The default dataset first, then the paper's tables in order (Tables 1-4).
DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="isles-sim",
            preparer="isles_sim:prepare_isles_sim",
            format="isles-h5",
            case_file="{case}.h5",
            raw=None,
            train_cases=40,
            val_cases=8,
            test_cases=24,
            split_source="the generator's default preset (isles_sim.params.PRESETS)",
            synthetic=True,
            banner=ISLES_SIM_BANNER,
        ),
        Dataset(
            name="isles22",
            preparer="isles22:prepare_isles22",
            format="isles-h5",
            case_file="{case}.h5",
            raw="<ISLES-2022>",
            train_cases=200,
            val_cases=0,
            test_cases=50,
            split_source="our seeded split of the 250 public cases (prepare_isles22's defaults)",
        ),
        Dataset(
            name="brats19",
            preparer="brats19:prepare_brats19",
            format="brats19-h5",
            case_file="data/{case}.h5",
            raw="<MICCAI_BraTS_2019_Data_Training>",
            train_cases=250,
            val_cases=25,
            test_cases=60,
            split_source="SSL4MIS's train/val/test.txt (splits.PINNED_LISTS)",
        ),
        Dataset(
            name="pancreas",
            preparer="pancreas:prepare_pancreas",
            format="pancreas-h5",
            case_file="Pancreas_data/{case}.h5",
            raw="<folder with PANCREAS_00XX DICOM folders and TCIA_pancreas_labels-02-05-2017>",
            train_cases=62,
            val_cases=0,
            test_cases=20,
            split_source="DyCON's train.list / test.list (splits.PINNED_LISTS)",
        ),
        Dataset(
            name="la",
            preparer="la:prepare_la",
            format="la-h5",
            case_file="2018LA_Seg_Training Set/{case}/mri_norm2.h5",
            raw=None,
            train_cases=80,
            val_cases=0,
            test_cases=20,
            split_source="UA-MT's train.list / test.list (splits.PINNED_LISTS)",
        ),
    )
}


def dataset(name: str) -> Dataset:
    """The declaration of dataset ``name``.

    Raises:
        DataError: one line naming the unknown name and the valid ones.
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(
            f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}"
        ) from None
