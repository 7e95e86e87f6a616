"""The training loop: a smoke run, exact resume after a kill, non-finite handling, label hiding."""

import json

import numpy as np
import pytest
import torch

from dycon.config import ConfigError, apply_overrides
from dycon.data.volume import Volume
from dycon.engine import trainer as trainer_module
from dycon.engine.schema import ExperimentConfig, normalise
from dycon.engine.trainer import TrainData, TrainingError, train
from dycon.methods import LossTerms


def _volumes(n=6, size=(36, 36, 20)):
    rng = np.random.default_rng(0)
    vols = []
    for i in range(n):
        label = np.zeros(size, dtype=np.uint8)
        c = rng.integers(8, 24, size=3)
        label[c[0] - 5 : c[0] + 5, c[1] - 5 : c[1] + 5, 4:14] = 1
        image = (rng.normal(size=size) + 2.0 * label).astype(np.float32)[None]
        vols.append(Volume(image=image, label=label, spacing=(1.0, 1.0, 1.0), case_id=f"c{i}"))
    return vols


class _Loader:
    def __init__(self, vols):
        self.vols = vols

    def __call__(self, i):
        return self.vols[i]


def _config(method="dycon", **extra):
    overrides = [
        f"method_name={method}",
        "data.num_labeled=2",
        "data.patch=[32, 32, 16]",
        "data.batch_size=4",
        "data.labeled_batch_size=2",
        "model.widths=[4, 8, 8, 16, 16]",
        "model.embedding_dim=8",
        "train.iterations=6",
        "train.checkpoint_every=2",
        "train.log_every=1",
        *[f"{k}={v}" for k, v in extra.items()],
    ]
    base = apply_overrides(ExperimentConfig(method_name=method), [overrides[0]])
    return apply_overrides(normalise(base), overrides[1:])


def _data():
    vols = _volumes()
    return TrainData(train_ids=[v.case_id for v in vols], load=_Loader(vols))


def _weights(run_dir):
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    return state["nets"]["student"]


@pytest.mark.parametrize("method", ["supervised", "mt", "ua-mt", "dycon"])
def test_smoke_run_writes_log_and_checkpoint(method, tmp_path):
    cfg = _config(method, **{"train.iterations": 3})
    info = train(cfg, data=_data(), run_dir=tmp_path, progress=False)
    assert info["steps"] == 3 and info["skipped"] == 0
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in lines)
    assert (tmp_path / "checkpoints" / "last.pt").exists()


def test_kill_and_resume_equals_uninterrupted(tmp_path, monkeypatch):
    cfg = _config("dycon")
    train(cfg, data=_data(), run_dir=tmp_path / "whole", progress=False)
    real_step, calls = trainer_module._step, {"n": 0}

    def dying_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # killed during step 4; the last checkpoint is at step 2
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, data=_data(), run_dir=tmp_path / "killed", progress=False)
    monkeypatch.setattr(trainer_module, "_step", real_step)
    train(cfg, data=_data(), run_dir=tmp_path / "killed", progress=False)
    whole, resumed = _weights(tmp_path / "whole"), _weights(tmp_path / "killed")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    steps = [
        json.loads(x)["step"] for x in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4, 5, 6]  # each step logged once


def test_nonfinite_losses_are_skipped_then_abort(tmp_path, monkeypatch):
    cfg = _config("supervised", **{"train.max_nonfinite": 3})

    def nan_total(self):
        return torch.tensor(float("nan"), requires_grad=True)

    monkeypatch.setattr(LossTerms, "total", nan_total)
    with pytest.raises(TrainingError, match="3 non-finite losses in a row"):
        train(cfg, data=_data(), run_dir=tmp_path, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["skipped"] for r in lines] == [True, True]  # logged before the abort


def test_unlabeled_labels_are_hidden_from_methods(tmp_path, monkeypatch):
    seen = []
    real = trainer_module.Batch

    def spy(**kwargs):
        seen.append(kwargs["label"].clone())
        return real(**kwargs)

    monkeypatch.setattr(trainer_module, "Batch", spy)
    train(_config("mt", **{"train.iterations": 1}), data=_data(), run_dir=tmp_path, progress=False)
    assert (seen[0][2:] == -1).all() and (seen[0][:2] >= 0).all()


def test_validation_logs_dice_and_keeps_the_best_checkpoint(tmp_path):
    vols = _volumes(8)
    data = TrainData(
        train_ids=[v.case_id for v in vols[:6]],
        load=_Loader(vols[:6]),
        val_ids=[v.case_id for v in vols[6:]],
        val_load=_Loader(vols[6:]),
    )
    cfg = _config("mt", **{"train.val_every": 2, "eval.stride": "[16, 16, 8]"})
    info = train(cfg, data=data, run_dir=tmp_path, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    scores = {r["step"]: r["val_dice"] for r in lines if "val_dice" in r}
    assert sorted(scores) == [2, 4, 6] and all(0.0 <= v <= 100.0 for v in scores.values())
    best_step = max(scores, key=lambda s: (scores[s], -s))  # the first of equal scores is kept
    assert info["best"] == {"step": best_step, "val_dice": scores[best_step]}
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert best["step"] == best_step and set(best["nets"]) == {"student"}


def test_best_val_without_a_validation_list_is_a_config_error(tmp_path):
    cfg = _config("mt", **{"eval.select": "best_val"})
    with pytest.raises(ConfigError, match="needs a validation list"):
        train(cfg, data=_data(), run_dir=tmp_path, progress=False)
    assert not (tmp_path / "checkpoints").exists()


def test_snapshots_keep_the_weights_of_those_steps(tmp_path):
    cfg = _config("mt", **{"train.snapshots": "[0.5, 1.0]"})
    train(cfg, data=_data(), run_dir=tmp_path, progress=False)
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.pt"))
    assert kept == ["step_0000003.pt", "step_0000006.pt"]
    last = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    final = torch.load(tmp_path / "checkpoints" / kept[-1], weights_only=True)
    assert set(final["nets"]) == {"student", "teacher"} and final["optimizers"] == {}
    assert all(
        torch.equal(final["nets"]["student"][k], v) for k, v in last["nets"]["student"].items()
    )


# ---------------------------------------------------------------- kill -9, in a real process

_KILL_ARGS = [
    "train",
    "--dataset",
    "isles-sim",
    "--method",
    "dycon",
    "--scale",
    "smoke",
    "--quiet",
    "--set",
    "data.num_labeled=1",
    "--set",
    "train.iterations=6",  # checkpoints at steps 2, 4 and 6
]


def _dycon_killed(runs, data_root, where="none", n=0):
    import os
    import subprocess
    import sys
    from pathlib import Path

    worker = Path(__file__).with_name("_kill_worker.py")
    argv = [*_KILL_ARGS, "--data-root", str(data_root), "--runs-dir", str(runs)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread: the same sums in every process
    proc = subprocess.run(
        [sys.executable, str(worker), where, str(n), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc


def _final_state(runs):
    from dycon.engine.checkpoint import read_checkpoint

    (run_dir,) = runs.iterdir()
    return run_dir, read_checkpoint(run_dir / "checkpoints" / "last.pt")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_data):
    runs = tmp_path_factory.mktemp("whole") / "runs"
    proc = _dycon_killed(runs, tiny_data)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return _final_state(runs)[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    "kills",
    [
        [("save", 2)],  # during the write of step 4's checkpoint: step 2's is the last whole one
        [("step", 4), ("step", 3)],  # killed, resumed from 2, killed again after step 4's save
        [("step", 3), ("save", 1)],  # the second kill during the resumed run's first write
    ],
)
def test_kill_9_anywhere_then_resume_is_bit_exact(tmp_path, tiny_data, uninterrupted, kills):
    runs = tmp_path / "runs"
    for where, n in kills:
        proc = _dycon_killed(runs, tiny_data, where, n)
        assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL, as planted
        (run_dir,) = runs.iterdir()
        left = list((run_dir / "checkpoints").glob(".last.pt.*.tmp"))
        assert bool(left) == (where == "save")  # half a file, beside the intact last.pt
    proc = _dycon_killed(runs, tiny_data)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir, resumed = _final_state(runs)
    assert not list(run_dir.rglob("*.tmp"))  # removed when the run was claimed again
    assert resumed["step"] == uninterrupted["step"] == 6
    for net, weights in uninterrupted["nets"].items():
        assert all(torch.equal(weights[k], resumed["nets"][net][k]) for k in weights), net
    steps = [json.loads(x)["step"] for x in (run_dir / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # each step logged once
