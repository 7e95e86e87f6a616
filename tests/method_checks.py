"""Checks the methods' tests share: one step lowers the loss, a killed run resumes exactly, and
a smoke run from the CLI (co-trained methods use all three; BCP, MagicNet and the baselines
the last two)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_methods import _batch, _nets
from test_trainer import _data

from dycon.cli import main
from dycon.config import apply_overrides
from dycon.engine import trainer as trainer_module
from dycon.engine.schema import ExperimentConfig, normalise
from dycon.engine.trainer import train
from dycon.methods import METHODS, StepState

TINY = {  # test_trainer's tiny runs: 6 steps, checkpoints every 2
    "data.num_labeled": 2,
    "data.patch": "[32, 32, 16]",
    "data.batch_size": 4,
    "data.labeled_batch_size": 2,
    "model.widths": "[4, 8, 8, 16, 16]",
    "model.embedding_dim": 8,
    "model.base_filters": 4,
    "train.iterations": 6,
    "train.checkpoint_every": 2,
    "train.log_every": 1,
    "train.device": "cpu",
}


def config(method: str, **extra) -> ExperimentConfig:
    """A tiny run of ``method``; ``extra`` may set the method's added fields (``framework``)."""
    base = normalise(ExperimentConfig(method_name=method), every_field=True)
    return normalise(apply_overrides(base, [f"{k}={v}" for k, v in (TINY | extra).items()]))


def method_of(name: str, **fields):
    config_cls, method_cls = METHODS[name]
    return method_cls(config_cls(**fields))


def one_step_lowers_the_loss(method, *, state: StepState | None = None) -> None:
    """An SGD step of every trainable network lowers the method's total (same dropout masks),
    by default at step 500 of 1000 (weights ramped up)."""
    state = state or StepState(step=500, total_steps=1000)
    nets = _nets(method)
    batch = _batch()
    params = [p for s in method.networks if s.ema_of is None for p in nets[s.name].parameters()]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)

    def loss():
        torch.manual_seed(11)
        return method(batch, nets, state)

    before = loss()
    assert all(torch.isfinite(v) for v in before.terms.values())
    before.total().backward()
    optimizer.step()
    with torch.no_grad():
        after = loss().total()
    assert after < before.total().detach()


def checkpoint(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)


def resume_is_exact(
    tmp_path,
    monkeypatch,
    method: str | ExperimentConfig,
    *,
    die_at: int,
    resumes_from: int | None = None,
    **extra,
) -> dict:
    """Train 6 steps whole; train again killed during step ``die_at`` (the last checkpoint then
    at step ``resumes_from``, when given) and resume: every network and every optimizer's
    momentum end equal. ``method``: a method name (a tiny run of it) or a whole configuration.
    Returns the final checkpoint."""
    cfg = method if isinstance(method, ExperimentConfig) else config(method, **extra)
    train(cfg, data=_data(), run_dir=tmp_path / "whole", progress=False)
    real_step, calls = trainer_module._step, {"n": 0}

    def dying_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == die_at:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, data=_data(), run_dir=tmp_path / "killed", progress=False)
    if resumes_from is not None:
        assert checkpoint(tmp_path / "killed")["step"] == resumes_from
    monkeypatch.setattr(trainer_module, "_step", real_step)
    train(cfg, data=_data(), run_dir=tmp_path / "killed", progress=False)
    whole, resumed = checkpoint(tmp_path / "whole"), checkpoint(tmp_path / "killed")
    assert whole["nets"].keys() == resumed["nets"].keys()
    for name, weights in whole["nets"].items():
        assert all(torch.equal(v, resumed["nets"][name][k]) for k, v in weights.items()), name
    for name, opt in whole["optimizers"].items():
        a, b = opt["state"], resumed["optimizers"][name]["state"]
        assert a.keys() == b.keys() and all(
            torch.equal(a[i]["momentum_buffer"], b[i]["momentum_buffer"]) for i in a
        ), name
    steps = [json.loads(x)["step"] for x in (tmp_path / "killed" / "log.jsonl").open()]
    assert steps == [1, 2, 3, 4, 5, 6]
    return whole


def smoke_run_from_the_cli(
    method: str, *extra: str, tmp_path, monkeypatch, data_root, capsys
) -> tuple[dict, list[dict]]:
    """``dycon run`` at the smoke scale on isles-sim: trains, evaluates, finite log terms.
    Returns the run's summary and its log lines."""
    monkeypatch.setenv("DYCON_DATA", str(data_root))
    argv = ["run", "--dataset", "isles-sim", "--method", method, "--scale", "smoke", *extra]
    code = main([*argv, "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    _, err = capsys.readouterr()
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["cases"] == 24 and 0.0 <= summary["metrics"]["dice"]["mean"] <= 100.0
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(v) for r in log for v in r["terms"].values())
    return summary, log
