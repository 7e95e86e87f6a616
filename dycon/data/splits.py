"""Split lists: reading, checking, the pinned upstream lists, and the ISLES'22 split.

A split file holds one case id per line. Order matters: by the convention of UA-MT, BCP and
DyCON the first N ids of a train list are the labeled ones, so nothing here ever sorts a list.
Upstream lists are pinned by commit and sha256 (the bytes as published; DyCON's copies have CRLF
endings, which only ``read_split`` normalises).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dycon.data.files import atomic_path, sha256_file
from dycon.data.volume import DATA_PAGE, DataError

PathLike = str | os.PathLike
RAW_BASE_URL = "https://raw.githubusercontent.com"
_MAX_LIST_BYTES = 1 << 20  # split lists are a few kB; refuse anything absurd


def read_split(path: PathLike) -> list[str]:
    """The case ids of a split file, in file order.

    Strips ``\\r`` and surrounding whitespace, skips blank lines, keeps ``.h5`` suffixes as written
    (readers accept them).

    Raises:
        DataError: the file is missing, empty, or lists an id twice.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(
            f"split file {str(path)!r} does not exist; fetch the split lists or prepare the "
            f"dataset (see {DATA_PAGE})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"split file {str(path)!r} cannot be read ({exc}); fetch it again") from exc
    ids: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        case = line.strip()
        if not case:
            continue
        if case in first_line:
            raise DataError(
                f"split file {str(path)!r}: case {case!r} is listed twice (lines "
                f"{first_line[case]} and {number}); remove the duplicate"
            )
        first_line[case] = number
        ids.append(case)
    if not ids:
        raise DataError(f"split file {str(path)!r} lists no case; fetch it again or rewrite it")
    return ids


def write_split(path: PathLike, ids: Sequence[str]) -> None:
    """Write a split file atomically: one id per line, LF endings, order kept.

    Raises:
        DataError: the list is empty, has a duplicate, or an id that is blank or has whitespace.
    """
    ids = [str(case) for case in ids]
    bad = [case for case in ids if not case or case != "".join(case.split())]
    if not ids or bad:
        raise DataError(f"cannot write split {str(path)!r}: empty list or bad ids {bad[:5]}")
    seen: set[str] = set()
    for case in ids:
        if case in seen:
            raise DataError(f"cannot write split {str(path)!r}: case {case!r} is listed twice")
        seen.add(case)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{case}\n" for case in ids), newline="\n")


def check_split(
    ids: Sequence[str],
    available: Collection[str] | Callable[[str], bool],
    *,
    split_file: PathLike | None = None,
) -> None:
    """Fail early when a split lists cases that are not on disk.

    Args:
        ids: the split, e.g. from ``read_split``.
        available: the case ids found on disk, or a predicate ``exists(case_id)``. Ids are
            compared without a ``.h5`` suffix on either side.
        split_file: named in the message.

    Raises:
        DataError: naming the missing cases (the first five and the count), the split file and
            the fix.
    """
    if callable(available):
        missing = [case for case in ids if not available(case)]
    else:
        present = {str(case).removesuffix(".h5") for case in available}
        missing = [case for case in ids if case.removesuffix(".h5") not in present]
    if missing:
        more = " ..." if len(missing) > 5 else ""
        listed = ", ".join(repr(case) for case in missing[:5]) + more
        source = repr(str(split_file)) if split_file is not None else "the split"
        raise DataError(
            f"{len(missing)} case(s) listed in {source} missing on disk: {listed}; download or "
            f"prepare them (see {DATA_PAGE}) or use a split that matches the data"
        )


# ---------------------------------------------------------------- pinned upstream lists


@dataclass(frozen=True)
class PinnedList:
    """One upstream split file, pinned by commit and by the sha256 of its published bytes."""

    repo: str  # owner/name on GitHub
    commit: str
    path: str  # inside the repository
    name: str  # local file name in dest_dir
    sha256: str
    lines: int  # number of ids, for documentation and tests

    def url(self, base_url: str = RAW_BASE_URL) -> str:
        """``base_url/OWNER/REPO/COMMIT/PATH`` with the path percent-encoded."""
        return f"{base_url.rstrip('/')}/{self.repo}/{self.commit}/{urllib.parse.quote(self.path)}"


_SSL4MIS = ("HiLab-git/SSL4MIS", "06df6047a59aba9988ced8331998b5957ecb356b")
_DYCON = ("KU-CVML/DyCON", "69c1384103c552591075895a7d42bd541cebaa23")
_UAMT = ("yulequan/UA-MT", "88ed29ad794f877122e542a7fa9505a76fa83515")


def _pin(source: tuple[str, str], path: str, sha256: str, lines: int) -> PinnedList:
    return PinnedList(source[0], source[1], path, path.rsplit("/", 1)[-1], sha256, lines)


# Transcribed from the lists' public sources (each PinnedList names its repository and path);
# the tests check each sha256 and line count against local copies when they are present.
# BraTS lists are SSL4MIS's (LF endings; DyCON's copies are the same ids with CRLF).
# Pancreas test1..3.list lie inside train.list: see pancreas_eval_list.
PINNED_LISTS: dict[str, tuple[PinnedList, ...]] = {
    "la": (
        _pin(_UAMT, "data/train.list",
             "e88c3f0bae70edcca4bc16eca890673eee2bf3f7b74418249cb01b8cde2f924e", 80),
        _pin(_UAMT, "data/test.list",
             "e55b18069e27d6eab3dc21b8d1dc05a99ef83110fedc789f81c461d7bb152199", 20),
    ),
    "brats19": (
        _pin(_SSL4MIS, "data/BraTS2019/train.txt",
             "7d897caa29191e248c4461264993abcc4ea7c88bb7b4be9bf2cbc9b51941ddfe", 250),
        _pin(_SSL4MIS, "data/BraTS2019/val.txt",
             "7c73bf3984aee0abfe47ea9e71507be3715a7c5d3822c0f097b039db77139eed", 25),
        _pin(_SSL4MIS, "data/BraTS2019/test.txt",
             "bf63460c885deb8f2a6968411b456954276c59c697a4891960978ab32a2a858b", 60),
    ),
    "pancreas": (
        _pin(_DYCON, "data/Pancreas/train.list",
             "4ccefdbf736d14fb0b906aed089d364aee8138e81ff9d3cb9bdc14fa03f247cb", 62),
        _pin(_DYCON, "data/Pancreas/test.list",
             "4ba38e1d0936d7951959b73d1f6a81f85acdb307729a38dff8d59bcb6408fddf", 20),
        _pin(_DYCON, "data/Pancreas/test1.list",
             "12036c3a75b674b1b4e310e11693edba4350619861cdc466b491e44baf82b2a3", 20),
        _pin(_DYCON, "data/Pancreas/train1.list",
             "fd8ae4d357fc4164c9a29404a47f796cefc24607fb03ca84dd62546df350a3ba", 62),
        _pin(_DYCON, "data/Pancreas/train2.list",
             "61cd91de3c0d396d6a5b01a7d733687dbbfb5b8a48e1fafb4048f7866b160314", 61),
        _pin(_DYCON, "data/Pancreas/test2.list",
             "b0cb30b124532b168c3b0236517e1931624956a947dbb5feccf3b11aad94a387", 21),
        _pin(_DYCON, "data/Pancreas/train3.list",
             "716fb88410d4fa626ece3bc2bb8a300101e640097e60458454ceb71a71a7893c", 61),
        _pin(_DYCON, "data/Pancreas/test3.list",
             "9b34f2b26f9db4f23158ed58095f53af6fbbba11db60ce4556b9206fc8cee729", 21),
    ),
}  # fmt: skip


def _download(url: str, *, timeout: float, target: Path) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read(_MAX_LIST_BYTES + 1)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"cannot download {url} ({' '.join(str(reason).split())}); download it by hand "
            f"into {str(target)!r}"
        ) from exc
    if len(data) > _MAX_LIST_BYTES:
        raise DataError(f"{url} is larger than {_MAX_LIST_BYTES} bytes; not a split list")
    return data


def fetch_split_lists(
    dataset: str,
    dest_dir: PathLike,
    *,
    base_url: str = RAW_BASE_URL,
    timeout: float = 30,
) -> list[Path]:
    """Download the pinned upstream split lists of a dataset into dest_dir.

    Every file is downloaded and checked against its sha256 before any is written, so a failure
    leaves dest_dir as it was; files are written atomically. A file already present with the
    right checksum is kept and not downloaded again.

    Args:
        dataset: ``la``, ``brats19`` or ``pancreas`` (ISLES'22 has no public split: see
            ``make_isles_split``).
        dest_dir: where the lists go, under their upstream file names.
        base_url: the raw-file server (a local one in tests).
        timeout: seconds per request.

    Returns:
        The paths of all the dataset's lists, in table order.

    Raises:
        DataError: unknown dataset, network error (names the URL and the manual fix) or checksum
            mismatch (names the file, expected and actual sha256 and the URL).
    """
    if dataset not in PINNED_LISTS:
        raise DataError(
            f"no pinned split lists for {dataset!r}; known: {sorted(PINNED_LISTS)} "
            "(ISLES'22 has no public split: use make_isles_split)"
        )
    dest = Path(dest_dir)
    pending: list[tuple[Path, bytes]] = []
    paths = []
    for pinned in PINNED_LISTS[dataset]:
        target = dest / pinned.name
        paths.append(target)
        if target.is_file() and sha256_file(target) == pinned.sha256:
            continue
        url = pinned.url(base_url)
        data = _download(url, timeout=timeout, target=target)
        actual = hashlib.sha256(data).hexdigest()  # of the bytes as served: no normalisation
        if actual != pinned.sha256:
            raise DataError(
                f"checksum mismatch for {pinned.name} from {url}: expected sha256 "
                f"{pinned.sha256}, got {actual}; nothing written to {str(dest)!r}; retry, or "
                "download the file by hand from the pinned commit"
            )
        pending.append((target, data))
    for target, data in pending:
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    return paths


# ---------------------------------------------------------------- protocol guards


def pancreas_eval_list(
    name: str = "test.list", *, split_dir: PathLike, train_name: str = "train.list"
) -> list[str]:
    """The ids of a Pancreas evaluation list, warning when it is not held out.

    DyCON's official scripts train on ``train.list`` (cases 1-62) but validate and test on
    ``test1.list`` (cases 1-20), which lies inside it. Reading an evaluation list through this
    function makes such a choice visible: it warns whenever the list shares cases with the train
    list in use (``test.list`` with ``train.list``, or ``testK.list`` with ``trainK.list``, are
    disjoint and silent).

    Args:
        name: the evaluation list, ``test.list`` by default.
        split_dir: the folder holding the fetched lists.
        train_name: the train list of the run.
    """
    split_dir = Path(split_dir)
    ids = read_split(split_dir / name)
    train = {case.removesuffix(".h5") for case in read_split(split_dir / train_name)}
    shared = [case for case in ids if case.removesuffix(".h5") in train]
    if shared:
        warnings.warn(
            f"Pancreas evaluation list {name} overlaps {train_name} ({len(shared)} of {len(ids)} "
            f"cases, e.g. {shared[0]}): numbers on it are not held-out; use test.list with "
            "train.list (or testK.list with trainK.list)",
            UserWarning,
            stacklevel=2,
        )
    return ids


# ---------------------------------------------------------------- ISLES'22


def make_isles_split(
    case_ids: Sequence[str],
    *,
    seed: int = 0,
    n_train: int = 200,
    n_test: int = 50,
    dest_dir: PathLike | None = None,
) -> dict[str, list[str]]:
    """A seeded train/test split of ISLES'22 (which publishes none).

    The ids are sorted first, so the result depends only on the set of ids and the seed, then
    shuffled with ``numpy.random.RandomState(seed)``, whose stream NumPy keeps frozen across
    versions (``Generator`` streams may change). ``train`` is the first n_train ids of the
    permutation, in that (random) order, so its first N are the labeled ones; ``test`` the next
    n_test; ids beyond n_train + n_test are left out. The defaults give the 200/50 split of the
    250 public cases.

    Args:
        case_ids: all available case ids, e.g. ``list_isles_bids_cases(raw_root)``.
        seed: the split seed (documented next to every number that uses it).
        n_train: training cases (labeled and unlabeled).
        n_test: held-out test cases.
        dest_dir: if given, ``train.list`` and ``test.list`` are written there (atomically).

    Returns:
        ``{"train": [...], "test": [...]}``.
    """
    ids = sorted(set(case_ids))
    if len(ids) != len(case_ids):
        raise DataError("make_isles_split: case ids contain duplicates")
    if min(n_train, n_test) < 1 or n_train + n_test > len(ids):
        raise DataError(
            f"make_isles_split: cannot draw {n_train} train + {n_test} test cases from "
            f"{len(ids)} ids; lower n_train/n_test or add the missing cases"
        )
    order = np.random.RandomState(seed).permutation(len(ids))
    split = {
        "train": [ids[i] for i in order[:n_train]],
        "test": [ids[i] for i in order[n_train : n_train + n_test]],
    }
    if dest_dir is not None:
        for name, part in split.items():
            write_split(Path(dest_dir) / f"{name}.list", part)
    return split
