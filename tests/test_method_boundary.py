"""The method boundary carries what the baselines need, through the public interface only.

``PeerTeaching`` is a method written the way a baseline would be: two trainable networks with an
optimizer each (cross pseudo supervision, as in CPS), an EMA copy without warm-up (BCP), a
labeled-only pre-training stage whose weights start the peer and the teacher (BCP, CML), a
model override for one network and a copy-paste transform of the batch. The trainer runs it
without knowing any of that; these tests check that it does what the declarations say, and that
a run killed anywhere around the stage boundary resumes to the same weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from test_trainer import _data

from dycon.config import ConfigError, apply_overrides
from dycon.engine.schema import ExperimentConfig, normalise
from dycon.engine.trainer import train
from dycon.losses import dice_ce_loss
from dycon.methods import (
    IGNORE_LABEL,
    METHODS,
    Batch,
    LossTerms,
    Method,
    NetworkSpec,
    Stage,
    StepState,
)

CUBE = (slice(0, 8), slice(0, 8), slice(0, 4))  # pasted from the first labeled row


@dataclass(frozen=True)
class PeerConfig:
    pretrain: float = 0.5  # fraction of train.iterations
    cross_weight: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.pretrain < 1:
            raise ConfigError(f"method.pretrain must be in (0, 1), got {self.pretrain!r}")


class PeerTeaching(Method):
    name = "peer-test"
    networks = (
        NetworkSpec("student"),
        NetworkSpec("peer", model={"dropout": 0.1}),
        NetworkSpec("teacher", ema_of="student", ema_decay=0.9, ema_warmup=False),
    )
    seen: ClassVar[list[dict]] = []  # what each call saw, for the tests
    die_at: ClassVar[int | None] = (
        None  # raise KeyboardInterrupt at this call (1-based): a killed run
    )

    def __init__(self, cfg: PeerConfig | None = None) -> None:
        self.cfg = cfg or PeerConfig()

    def stages(self, total_steps: int) -> tuple[Stage, ...]:
        n = round(self.cfg.pretrain * total_steps)
        return (
            Stage("pretrain", n, labeled_only=True, train=("student",), update_ema=False),
            Stage("main", total_steps - n, init={"peer": "student", "teacher": "student"}),
        )

    def transform(self, batch: Batch, state: StepState) -> Batch:
        if state.stage != "main":
            return batch
        image, label = batch.image.clone(), batch.label.clone()
        image[-1][(slice(None), *CUBE)] = image[0][(slice(None), *CUBE)]
        label[-1][CUBE] = label[0][CUBE]  # ground truth where the labeled cube was pasted
        return Batch(image=image, label=label, num_labeled=batch.num_labeled)

    def __call__(self, batch: Batch, nets: dict, state: StepState) -> LossTerms:
        type(self).seen.append(_observe(batch, nets, state))
        if len(type(self).seen) == type(self).die_at:
            raise KeyboardInterrupt
        n = batch.num_labeled
        s = nets["student"](batch.image).logits  # (B, K, *S)
        terms = {"sup": dice_ce_loss(s[:n], batch.label[:n])}
        weights = {"sup": 1.0}
        if state.stage == "main":
            p = nets["peer"](batch.image).logits  # (B, K, *S)
            with torch.no_grad():
                t = nets["teacher"](batch.image).logits  # (B, K, *S)
            terms["peer_sup"] = dice_ce_loss(p[:n], batch.label[:n])
            terms["cross"] = F.cross_entropy(s[n:], p[n:].argmax(1)) + F.cross_entropy(
                p[n:], s[n:].argmax(1)
            )
            terms["teacher"] = F.cross_entropy(s[n:], t[n:].argmax(1))
            weights |= {"peer_sup": 1.0, "cross": self.cfg.cross_weight, "teacher": 0.1}
        return LossTerms(terms=terms, weights=weights)


def _observe(batch: Batch, nets: dict, state: StepState) -> dict:
    student = nets["student"].state_dict()
    same = {
        name: all(torch.equal(v, student[k]) for k, v in nets[name].state_dict().items())
        for name in ("peer", "teacher")
    }
    return {
        "stage": state.stage,
        "step": state.step,
        "total": state.total_steps,
        "rows": batch.image.shape[0],
        "same_as_student": same,
        "peer_weights": {k: v.clone() for k, v in nets["peer"].state_dict().items()},
        "last_label": batch.label[-1].clone(),
    }


@pytest.fixture(autouse=True)
def _registered(monkeypatch):
    monkeypatch.setitem(METHODS, PeerTeaching.name, (PeerConfig, PeerTeaching))
    monkeypatch.setattr(PeerTeaching, "seen", [])
    monkeypatch.setattr(PeerTeaching, "die_at", None)


def _config(**extra):
    overrides = [
        "data.num_labeled=2",
        "data.patch=[32, 32, 16]",
        "data.batch_size=4",
        "data.labeled_batch_size=2",
        "model.widths=[4, 8, 8, 16, 16]",
        "model.embedding_dim=8",
        "train.iterations=6",
        "train.checkpoint_every=2",
        "train.log_every=1",
        "train.device=cpu",
        *[f"{k}={v}" for k, v in extra.items()],
    ]
    return apply_overrides(normalise(ExperimentConfig(method_name=PeerTeaching.name)), overrides)


def _state(run_dir):
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)
    return state["nets"], state["optimizers"]


def test_stages_batches_initialisation_and_transform(tmp_path):
    train(_config(), data=_data(), run_dir=tmp_path, progress=False)
    seen = PeerTeaching.seen
    assert [(s["stage"], s["step"], s["total"]) for s in seen] == [
        ("pretrain", 0, 3),
        ("pretrain", 1, 3),
        ("pretrain", 2, 3),
        ("main", 0, 3),
        ("main", 1, 3),
        ("main", 2, 3),
    ]
    assert [s["rows"] for s in seen] == [2, 2, 2, 4, 4, 4]  # labeled-only, then two-stream
    # The peer is not trained in pre-training; the main stage starts both copies from the
    # pre-trained student, then they move apart.
    first = seen[0]["peer_weights"]
    assert all(torch.equal(first[k], v) for s in seen[:3] for k, v in s["peer_weights"].items())
    assert not seen[2]["same_as_student"]["peer"]
    assert seen[3]["same_as_student"] == {"peer": True, "teacher": True}
    assert seen[5]["same_as_student"] == {"peer": False, "teacher": False}
    # The transform pasted labeled ground truth into the unlabeled row; the rest stays hidden.
    pasted = seen[3]["last_label"]
    outside = torch.ones_like(pasted, dtype=torch.bool)
    outside[CUBE] = False
    assert (pasted[CUBE] >= 0).all() and (pasted[outside] == IGNORE_LABEL).all()
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in lines] == ["pretrain"] * 3 + ["main"] * 3
    assert set(lines[0]["terms"]) == {"sup"}
    assert set(lines[-1]["terms"]) == {"sup", "peer_sup", "cross", "teacher"}
    nets, optimizers = _state(tmp_path)
    assert set(nets) == {"student", "peer", "teacher"} and set(optimizers) == {"student", "peer"}


@pytest.mark.parametrize(
    ("die_at", "resumes_from"),
    [(3, 2), (4, 3), (6, 4)],  # in pre-training, at the boundary, in the main stage
)
def test_kill_and_resume_across_the_stage_boundary(tmp_path, die_at, resumes_from):
    cfg = _config()
    train(cfg, data=_data(), run_dir=tmp_path / "whole", progress=False)
    PeerTeaching.seen.clear()
    PeerTeaching.die_at = die_at
    with pytest.raises(KeyboardInterrupt):
        train(cfg, data=_data(), run_dir=tmp_path / "killed", progress=False)
    killed = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=False)
    assert killed["step"] == resumes_from
    PeerTeaching.die_at = None
    train(cfg, data=_data(), run_dir=tmp_path / "killed", progress=False)
    (whole, whole_opt), (resumed, resumed_opt) = (
        _state(tmp_path / "whole"),
        _state(tmp_path / "killed"),
    )
    for name in whole:
        assert all(torch.equal(v, resumed[name][k]) for k, v in whole[name].items()), name
    for name in whole_opt:
        a, b = whole_opt[name]["state"], resumed_opt[name]["state"]
        assert a.keys() == b.keys() and all(
            torch.equal(a[i]["momentum_buffer"], b[i]["momentum_buffer"]) for i in a
        ), name
    steps = [json.loads(x)["step"] for x in (tmp_path / "killed" / "log.jsonl").open()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_stages_that_do_not_cover_the_run_are_an_error_before_any_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(PeerTeaching, "stages", lambda self, total: (Stage("main", total - 1),))
    with pytest.raises(ConfigError, match=r"add up to 5 steps, not train\.iterations=6"):
        train(_config(), data=_data(), run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_stage_naming_an_unknown_network_is_an_error(tmp_path, monkeypatch):
    def stages(self, total):
        return (Stage("main", total, init={"peer": "nope"}),)

    monkeypatch.setattr(PeerTeaching, "stages", stages)
    with pytest.raises(ConfigError, match=r"names networks \['nope'\]"):
        train(_config(), data=_data(), run_dir=tmp_path / "run", progress=False)


def test_the_pretrain_fraction_is_checked_when_the_config_is_built():
    with pytest.raises(ConfigError, match=r"method.pretrain must be in \(0, 1\)"):
        train(
            _config(**{"method.pretrain": 1.0}),
            data=_data(),
            run_dir=None,  # never reached: the method config is checked first
            progress=False,
        )


def test_model_overrides_reach_the_network():
    from dycon.engine.networks import build_method, build_networks

    cfg = _config()
    nets = build_networks(cfg, build_method(cfg), "cpu")
    drop = {
        n: [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)]
        for n, net in nets.items()
    }
    assert drop["peer"] and set(drop["peer"]) == {0.1}
    assert set(drop["student"]) != {0.1} and drop["teacher"] == drop["student"]
