"""Split lists: reading, checking, pinned upstream lists (fetched from a local server), ISLES."""

from __future__ import annotations

import hashlib
import urllib.parse
import warnings

import pytest
from data_fixtures import SHARED_SPLITS, serve, unreachable_url

from dycon.data.splits import (
    PINNED_LISTS,
    PinnedList,
    check_split,
    fetch_split_lists,
    make_isles_split,
    pancreas_eval_list,
    read_split,
    write_split,
)
from dycon.data.volume import DataError

needs_shared = pytest.mark.skipif(not SHARED_SPLITS.is_dir(), reason="shared split lists absent")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """urllib honours *_proxy variables; the local server must be reached directly."""
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------- reading and writing


def test_read_split_crlf_blank_lines_order(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(b"\xef\xbb\xbfc3\r\nc1\r\n\r\n  c2  \r\nc0")  # BOM, CRLF, no final newline
    assert read_split(path) == ["c3", "c1", "c2", "c0"]


def test_read_split_empty(tmp_path):
    path = tmp_path / "empty.list"
    path.write_text("\n \r\n")
    with pytest.raises(DataError, match="lists no case") as err:
        read_split(path)
    assert str(path) in str(err.value)


def test_read_split_duplicate_names_id_and_file(tmp_path):
    path = tmp_path / "train.list"
    path.write_text("a\nb\na\n")
    with pytest.raises(DataError, match=r"'a' is listed twice \(lines 1 and 3\)") as err:
        read_split(path)
    assert str(path) in str(err.value)


def test_read_split_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_split(tmp_path / "nope.list")


def test_write_split_round_trip_and_rejects_duplicates(tmp_path):
    write_split(tmp_path / "s.list", ["z", "a", "m"])
    assert (tmp_path / "s.list").read_bytes() == b"z\na\nm\n"
    assert read_split(tmp_path / "s.list") == ["z", "a", "m"]
    with pytest.raises(DataError, match="'a' is listed twice"):
        write_split(tmp_path / "t.list", ["a", "a"])
    with pytest.raises(DataError, match="bad ids"):
        write_split(tmp_path / "t.list", ["a b"])
    assert not (tmp_path / "t.list").exists()


def test_check_split_missing_case(tmp_path):
    check_split(["PANCREAS_0001.h5", "b"], {"PANCREAS_0001", "b", "c"})  # .h5 on either side
    check_split(["a"], lambda case: case == "a")
    with pytest.raises(DataError, match="'b'") as err:
        check_split(["a", "b"], {"a"}, split_file=tmp_path / "train.list")
    message = str(err.value)
    assert "train.list" in message and "prepare" in message and "'a'" not in message


# ---------------------------------------------------------------- pinned lists


@needs_shared
def test_pinned_table_matches_shared_copies():
    for dataset, entries in PINNED_LISTS.items():
        assert len({e.name for e in entries}) == len(entries)
        for entry in entries:
            data = (SHARED_SPLITS / dataset / entry.name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry.sha256, entry.name
            assert len(read_split(SHARED_SPLITS / dataset / entry.name)) == entry.lines


def test_url_percent_encodes_spaces():
    entry = PinnedList("o/r", "c0ffee", "data/2018LA_Seg_Training Set/x.list", "x.list", "0", 1)
    assert entry.url("http://h/") == "http://h/o/r/c0ffee/data/2018LA_Seg_Training%20Set/x.list"


def upstream_files(dataset, *, tamper: str | None = None) -> dict[str, bytes]:
    """The shared copies under their upstream URL paths; ``tamper`` alters one file's bytes."""
    files = {}
    for entry in PINNED_LISTS[dataset]:
        data = (SHARED_SPLITS / dataset / entry.name).read_bytes()
        url_path = urllib.parse.urlsplit(entry.url("http://x")).path
        files[url_path] = data.replace(b"\n", b"\r\n") if entry.name == tamper else data
    return files


@needs_shared
@pytest.mark.parametrize("dataset", sorted(PINNED_LISTS))
def test_fetch_split_lists_from_local_server(tmp_path, dataset):
    with serve(upstream_files(dataset)) as base_url:
        paths = fetch_split_lists(dataset, tmp_path / "lists", base_url=base_url, timeout=5)
    assert [p.name for p in paths] == [e.name for e in PINNED_LISTS[dataset]]
    for path in paths:
        assert path.read_bytes() == (SHARED_SPLITS / dataset / path.name).read_bytes()
    # Valid files are kept: a second call needs no server.
    assert fetch_split_lists(dataset, tmp_path / "lists", base_url=unreachable_url()) == paths


@needs_shared
def test_fetch_checksum_mismatch_writes_nothing(tmp_path):
    dest = tmp_path / "lists"
    with serve(upstream_files("la", tamper="test.list")) as base_url:
        with pytest.raises(DataError, match=r"checksum mismatch for test\.list") as err:
            fetch_split_lists("la", dest, base_url=base_url, timeout=5)
    expected = next(e for e in PINNED_LISTS["la"] if e.name == "test.list")
    message = str(err.value)
    assert expected.sha256 in message and expected.url(base_url) in message
    assert "got " in message and not dest.exists()  # train.list verified fine, still not written


def test_fetch_unreachable_server(tmp_path):
    base_url = unreachable_url()
    with pytest.raises(DataError, match="download it by hand") as err:
        fetch_split_lists("la", tmp_path, base_url=base_url, timeout=5)
    assert PINNED_LISTS["la"][0].url(base_url) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_fetch_http_404(tmp_path):
    with serve({}) as base_url, pytest.raises(DataError, match=r"Not Found|404"):
        fetch_split_lists("brats19", tmp_path, base_url=base_url, timeout=5)


def test_fetch_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="make_isles_split"):
        fetch_split_lists("isles22", tmp_path)


# ---------------------------------------------------------------- Pancreas evaluation list


def pancreas_lists(tmp_path):
    ids = [f"PANCREAS_{n:04d}.h5" for n in range(1, 83)]
    write_split(tmp_path / "train.list", ids[:62])
    write_split(tmp_path / "test.list", ids[62:])
    write_split(tmp_path / "test1.list", ids[:20])
    write_split(tmp_path / "train1.list", ids[20:62])
    return ids


def test_pancreas_test1_warns_not_held_out(tmp_path):
    ids = pancreas_lists(tmp_path)
    with pytest.warns(UserWarning, match=r"test1\.list overlaps train\.list.*not held-out"):
        assert pancreas_eval_list("test1.list", split_dir=tmp_path) == ids[:20]


def test_pancreas_held_out_lists_are_silent(tmp_path):
    ids = pancreas_lists(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pancreas_eval_list(split_dir=tmp_path) == ids[62:]
        pancreas_eval_list("test1.list", split_dir=tmp_path, train_name="train1.list")


@needs_shared
def test_pancreas_real_test1_warns():
    with pytest.warns(UserWarning, match="not held-out"):
        pancreas_eval_list("test1.list", split_dir=SHARED_SPLITS / "pancreas")


# ---------------------------------------------------------------- ISLES'22 split

ISLES = [f"sub-strokecase{n:04d}" for n in range(1, 251)]
PINNED_ISLES_SEED0 = ["sub-strokecase0226", "sub-strokecase0123", "sub-strokecase0093"]


def test_isles_split_deterministic_disjoint_and_pinned(tmp_path):
    split = make_isles_split(ISLES, seed=0, dest_dir=tmp_path)
    assert len(split["train"]) == 200 and len(split["test"]) == 50
    assert not set(split["train"]) & set(split["test"])
    assert make_isles_split(list(reversed(ISLES)), seed=0) == split  # input order is irrelevant
    assert make_isles_split(ISLES, seed=1) != split
    # Pinned: a change here silently changes every ISLES number; bump it only on purpose.
    assert split["train"][:3] == PINNED_ISLES_SEED0
    assert read_split(tmp_path / "train.list") == split["train"]
    assert read_split(tmp_path / "test.list") == split["test"]


def test_isles_split_errors():
    with pytest.raises(DataError, match="cannot draw 200 train"):
        make_isles_split(ISLES[:100])
    with pytest.raises(DataError, match="duplicates"):
        make_isles_split(ISLES + ISLES[:1])
