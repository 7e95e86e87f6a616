"""Issue 12, held as tables: every bad input is one line on stderr, exit status 2, and nothing
left behind (no run folder, no file); no checkpoint runs code; nothing is accepted silently.

Each row is a command line run through ``dycon.cli.main`` in-process, on a small prepared
LA-format dataset made here (``fake_la``) or the session's tiny isles-sim, so every row costs
well under a second and none trains more than one step.
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import SHARED_SPLITS, write_h5

from dycon.cli import main
from dycon.data.prepare.manifest import finish
from dycon.data.readers import write_case_h5
from dycon.data.volume import Volume
from dycon.engine.checkpoint import save_checkpoint
from dycon.engine.presets import compose
from dycon.engine.runs import DATA_STAMP, run_id
from dycon.models import build_model

TRAIN = [f"case{i:02d}" for i in range(4)]  # the first 2 labeled (data.num_labeled=2)
TEST = ["case90", "case91"]
SMOKE = ["--scale", "smoke", "--quiet", "--set", "data.num_labeled=2"]


def _la_case(case: str, *, seed: int) -> Volume:
    rng = np.random.default_rng(seed)
    label = np.zeros((32, 32, 16), np.uint8)
    label[10:20, 12:22, 4:12] = 1
    image = (rng.normal(size=label.shape) + 2.0 * label).astype(np.float32)[None]
    return Volume(image=image, label=label, spacing=(0.625,) * 3, case_id=case)


def la_path(root: Path, case: str) -> Path:
    return root / "la" / "2018LA_Seg_Training Set" / case / "mri_norm2.h5"


@pytest.fixture
def fake_la(tmp_path) -> Path:
    """A data root holding a prepared ``la`` (4 train, 2 test cases, 32x32x16, manifest)."""
    root = tmp_path / "data"
    folder = root / "la"
    for i, case in enumerate(TRAIN + TEST):
        write_case_h5(la_path(root, case), _la_case(case, seed=i))
    (folder / "train.list").write_text("\n".join(TRAIN) + "\n")
    (folder / "test.list").write_text("\n".join(TEST) + "\n")
    finish(folder, dataset="la", case_ids=TRAIN + TEST, source={}, options={}, subset=False)
    (tmp_path / "runs").mkdir()  # a user's runs folder: what must not change is inside it
    return root


def _tree(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")} if path.exists() else set()


def _one_line_exit_2(capsys, argv, *, watch: Path, contains: str):
    before = _tree(watch)
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert contains in err, err
    assert "Traceback" not in err
    assert _tree(watch) == before, "a file or folder was left behind"
    return err


def _train(data_root: Path, runs: Path, *extra: str, dataset="la", method="dycon", cmd="train"):
    return [
        cmd,
        "--dataset",
        dataset,
        "--method",
        method,
        "--data-root",
        str(data_root),
        "--runs-dir",
        str(runs),
        *SMOKE,
        *extra,
    ]


# ---------------------------------------------------------------- 2. a bad configuration value


@pytest.mark.parametrize(
    ("overrides", "contains"),
    [
        (["data.num_labeled=0"], "data.num_labeled=0 is not allowed"),
        (["data.num_labeled=-1"], "data.num_labeled=-1"),
        (["data.batch_size=1", "data.labeled_batch_size=2"], "data.batch_size=1"),
        (["data.batch_size=0"], "data.batch_size=0"),
        (["data.labeled_batch_size=2"], "below data.batch_size=2"),  # == batch_size
        (["data.patch=[30, 32, 16]"], "multiples of 16"),
        (["data.patch=[-16, 32, 16]"], "data.patch=[-16, 32, 16]"),
        (["optim.lr=-1"], "optim.lr=-1.0"),
        (["train.checkpoint_every=0"], "train.checkpoint_every=0"),
        (["model.num_classes=1"], "model.num_classes=1"),
        (["eval.stride=[0, 0, 0]"], "eval.stride=[0, 0, 0]"),
        (["eval.stride=[64, 32, 16]"], "at most the inference patch"),
        (["train.iterations=0"], "train.iterations=0"),  # was: exit 0, "trained", 0 steps
        (["train.iterations=-5"], "train.iterations=-5"),
        (["train.device=gpu"], "train.device='gpu'"),
        (["optim.momentum=1.5"], "optim.momentum=1.5"),
        (["method.temperature=0"], "method.temperature=0.0"),  # a method's own field
        (["method.top_k=0"], "method.top_k=0"),
    ],
)
def test_bad_value_is_refused_when_composed(capsys, tmp_path, fake_la, overrides, contains):
    argv = _train(fake_la, tmp_path / "runs", *[a for o in overrides for a in ("--set", o)])
    err = _one_line_exit_2(capsys, argv, watch=tmp_path, contains=contains)
    assert "must be" in err and "--set" in err  # what is allowed, and the fix


@pytest.mark.parametrize(
    ("text", "contains"),
    [
        ("train: {iterations: 3\n", "is not valid YAML at line"),
        ("data:\n  patch: [32, 32\n", "is not valid YAML"),
        ("- train\n- data\n", "must hold a mapping"),
        ("just a string\n", "must hold a mapping"),
    ],
)
def test_bad_config_file_is_one_line(capsys, tmp_path, fake_la, text, contains):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    argv = _train(fake_la, tmp_path / "runs", "--config", str(config))
    _one_line_exit_2(capsys, argv, watch=tmp_path, contains=contains)


def test_every_committed_run_keeps_its_id_and_passes_validation():
    import yaml

    from dycon.config import from_dict
    from dycon.engine.schema import ExperimentConfig, validate

    paths = sorted(Path("results").glob("*/runs/*/config.yaml"))
    assert paths, "run from the repository root"
    for path in paths:
        cfg = from_dict(ExperimentConfig, yaml.safe_load(path.read_text()))
        validate(cfg)
        assert run_id(cfg) == path.parent.name


# ---------------------------------------------------------------- bad data


def _corrupt(root: Path, case: str, kind: str) -> None:
    path = la_path(root, case)
    if kind == "missing":
        path.unlink()
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[:700])
    elif kind == "no label":
        write_h5(path, {"image": np.zeros((32, 32, 16), np.float32)})
    elif kind == "shape":
        write_h5(path, {"image": np.zeros((32, 32, 16), np.float32), "label": np.zeros((8, 8, 8))})
    elif kind.startswith("label "):
        volume = _la_case(case, seed=0)
        label = volume.label.copy()
        label[0, 0, 0] = int(kind.split()[1])
        write_h5(path, {"image": volume.image[0], "label": label})


@pytest.mark.parametrize(
    ("case", "kind", "contains"),
    [
        # unlabeled cases, read only when sampled: now checked from headers before training
        ("case03", "missing", "case 'case03'"),
        ("case03", "truncated", "truncated or corrupt"),
        ("case02", "no label", "missing key(s) ['label']"),
        ("case02", "shape", "differ"),
        ("case91", "missing", "test.list, case 'case91'"),  # `run` checks the test list too
        # labels outside {0, 1}: refused by the reader at the first read, naming the values
        ("case00", "label 2", "label values {0, 1, 2} lie outside {0, 1}"),
        ("case01", "label 255", "{0, 1, 255}"),
    ],
)
def test_bad_case_file_fails_before_training_and_leaves_no_run(
    capsys, tmp_path, fake_la, case, kind, contains
):
    _corrupt(fake_la, case, kind)
    argv = _train(fake_la, tmp_path / "runs", "--set", "data.rot_flip=false", cmd="run")
    err = _one_line_exit_2(capsys, argv, watch=tmp_path, contains=contains)
    assert "mri_norm2.h5" in err or "case" in err


@pytest.mark.parametrize("target", ["data root", "runs dir"])
def test_a_file_where_a_folder_belongs(capsys, tmp_path, fake_la, monkeypatch, target):
    plain = tmp_path / "a-file"
    plain.write_text("x")
    if target == "data root":
        monkeypatch.setenv("DYCON_DATA", str(plain))
        argv = _train(plain, tmp_path / "runs", dataset="isles-sim")
        argv.remove("--data-root")
        argv.remove(str(plain))
        contains = "is a file, not a folder"
    else:
        argv = _train(fake_la, plain / "runs")
        contains = "--runs-dir"
    _one_line_exit_2(capsys, argv, watch=tmp_path, contains=contains)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_that_cannot_be_made_even_by_root(capsys, tmp_path):
    # /proc takes no new entries whoever asks: the one-line fallback for any OSError
    argv = _train(Path("/proc/dycon-data"), tmp_path / "runs", dataset="isles-sim")
    _one_line_exit_2(capsys, argv, watch=tmp_path, contains="'/proc/dycon-data'")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_runs_dir(capsys, tmp_path, fake_la):
    runs = tmp_path / "runs"
    runs.chmod(0o555)
    try:
        argv = _train(fake_la, runs)
        _one_line_exit_2(capsys, argv, watch=tmp_path, contains="not writable")
    finally:
        runs.chmod(0o755)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_data_root_that_must_generate(capsys, tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    try:
        argv = _train(root, tmp_path / "runs", dataset="isles-sim")
        _one_line_exit_2(capsys, argv, watch=tmp_path, contains="not writable")
    finally:
        root.chmod(0o755)


def test_percents_out_of_range_is_refused_before_any_run(capsys, tmp_path):
    argv = ["reproduce", "--table", "1", "--percents", "10,150", "--scale", "smoke"]
    argv += ["--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "res")]
    _one_line_exit_2(capsys, argv, watch=tmp_path, contains="--percents 150")


# ---------------------------------------------------------------- 1. checkpoints never run code


class _RunsCode:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for any command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (str(self.marker), "w"))


def _placed_checkpoint(runs: Path, cfg, state: dict) -> Path:
    path = runs / run_id(cfg) / "checkpoints" / "last.pt"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path


def test_a_checkpoint_carrying_a_callable_is_refused_and_runs_nothing(capsys, tmp_path, fake_la):
    marker = tmp_path / "marker"
    probe = tmp_path / "probe.pt"
    torch.save({"x": _RunsCode(marker)}, probe)
    torch.load(probe, weights_only=False)  # the test can fail: a full unpickle runs it
    assert marker.is_file()
    marker.unlink()
    cfg = compose(dataset="la", method="dycon", scale="smoke", overrides=SMOKE[-1:])
    state = {"step": 4, "nets": {}, "optimizers": {}, "extra": {"x": _RunsCode(marker)}}
    _placed_checkpoint(tmp_path / "runs", cfg, state)
    for cmd in ("evaluate", "train"):
        argv = _train(fake_la, tmp_path / "runs", cmd=cmd)
        _one_line_exit_2(
            capsys, argv, watch=tmp_path / "runs" / run_id(cfg) / "checkpoints", contains="pickle"
        )
        assert not marker.exists()


def _real_checkpoint(runs: Path, cfg_of_file, cfg_of_run, nets: tuple[str, ...]) -> Path:
    model = build_model(cfg_of_file.model)
    path = runs / run_id(cfg_of_run) / "checkpoints" / "last.pt"
    save_checkpoint(
        path,
        step=cfg_of_run.train.iterations,
        nets=dict.fromkeys(nets, model),
        optimizers={},
        extra={"epoch": 0, "batch": 0, "skipped": 0, "seconds": 0.0},
    )
    return path


@pytest.mark.parametrize(
    ("cmd", "method", "file_overrides", "nets", "contains"),
    [
        # another method's run: a supervised student where mean teacher needs a teacher
        ("train", "mt", [], ("student",), "holds networks ['student'], the configuration needs"),
        # other widths: one line, not torch's dump of every mismatched key
        ("evaluate", "mt", ["model.widths=[8, 8, 8, 16, 16]"], ("student", "teacher"), "shape"),
    ],
)
def test_a_checkpoint_of_another_configuration_is_one_line(
    capsys, tmp_path, fake_la, cmd, method, file_overrides, nets, contains
):
    run_cfg = compose(dataset="la", method=method, scale="smoke", overrides=SMOKE[-1:])
    file_cfg = compose(
        dataset="la", method=method, scale="smoke", overrides=[*SMOKE[-1:], *file_overrides]
    )
    path = _real_checkpoint(tmp_path / "runs", file_cfg, run_cfg, nets)
    argv = _train(fake_la, tmp_path / "runs", method=method, cmd=cmd)
    err = _one_line_exit_2(capsys, argv, watch=path.parent, contains=contains)
    assert str(path) in err


# ---------------------------------------------------------------- 3. nothing reused silently


def _finished_run(runs: Path, cfg, stamp: dict) -> Path:
    run_dir = runs / run_id(cfg)
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"not read: the run is finished")
    (run_dir / "summary.json").write_text("{}")
    (run_dir / DATA_STAMP).write_text(json.dumps(stamp) + "\n")
    return run_dir


def test_a_finished_run_of_other_data_with_the_same_name_is_an_error(capsys, tmp_path, fake_la):
    from dycon.engine.runs import data_stamp

    other = tmp_path / "other"
    shutil.copytree(fake_la, other)
    _corrupt(other, "case03", "label 1")  # other bytes: another copy of "la"
    finish(other / "la", dataset="la", case_ids=TRAIN + TEST, source={}, options={}, subset=False)
    cfg = compose(dataset="la", method="dycon", scale="smoke", overrides=SMOKE[-1:])
    _finished_run(tmp_path / "runs", cfg, data_stamp(fake_la / "la"))
    argv = _train(other, tmp_path / "runs", cmd="evaluate")
    _one_line_exit_2(capsys, argv, watch=tmp_path / "runs", contains="pass the --data-root")
    capsys.readouterr()
    assert main(_train(fake_la, tmp_path / "runs", cmd="evaluate")) == 0  # its own data: reused
    assert "already evaluated" in capsys.readouterr().out


def test_a_run_stamped_before_the_data_hash_is_still_reused(capsys, tmp_path, fake_la):
    cfg = compose(dataset="la", method="dycon", scale="smoke", overrides=SMOKE[-1:])
    run_dir = _finished_run(tmp_path / "runs", cfg, {"data_version": None})  # the old format
    stamp = (run_dir / DATA_STAMP).read_bytes()
    assert main(_train(fake_la, tmp_path / "runs", cmd="evaluate")) == 0
    assert "already evaluated" in capsys.readouterr().out
    assert not run_dir.with_name(run_dir.name + ".stale").exists()
    assert (run_dir / DATA_STAMP).read_bytes() == stamp  # left as it was


def test_evaluate_without_training_leaves_no_folder(capsys, tmp_path, fake_la):
    argv = _train(fake_la, tmp_path / "runs", cmd="evaluate")
    _one_line_exit_2(capsys, argv, watch=tmp_path, contains="train this configuration first")


@pytest.mark.skipif(not (SHARED_SPLITS / "la").is_dir(), reason="shared LA split lists absent")
@pytest.mark.parametrize("value", [2, 255])
def test_prepare_refuses_labels_outside_0_1_naming_the_source(capsys, tmp_path, value):
    from dycon.data.prepare.la import load_checksums

    case = load_checksums()["cases"][0]["id"]
    source = tmp_path / "raw" / case / "mri_norm2.h5"
    volume = _la_case(case, seed=0)
    label = volume.label.copy()
    label[1, 2, 3] = value
    write_h5(source, {"image": volume.image[0], "label": label})
    argv = ["data", "prepare", "la", "--raw", str(tmp_path / "raw")]
    argv += ["--dest", str(tmp_path / "la"), "--option", "verify=false"]
    argv += ["--option", f"cases=[{case}]", "--option", f"lists_dir={SHARED_SPLITS / 'la'}"]
    err = _one_line_exit_2(capsys, argv, watch=tmp_path, contains=f"{{0, 1, {value}}}")
    assert str(source) in err and ".partial" not in err


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_checkpoint_follows_the_umask(tmp_path, umask):
    """Checkpoints go through the one atomic writer, so they get 0666 & ~umask (0644 under the
    usual 022), not mkstemp's owner-only 0600 that a shared runs folder cannot read."""
    import stat

    old = os.umask(umask)
    try:
        path = tmp_path / "checkpoints" / "last.pt"
        save_checkpoint(
            path, step=1, nets={"student": torch.nn.Linear(2, 1)}, optimizers={}, extra={}
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert not list(path.parent.glob("*.tmp"))
