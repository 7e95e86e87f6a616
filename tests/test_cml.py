"""CML: conflict loss, cross-view targets, and its pre-training stage (its cube mixing and
largest-component pseudo-labels are BCP's, tested in test_bcp.py)."""

import pytest
import torch
from method_checks import (
    checkpoint,
    config,
    method_of,
    one_step_lowers_the_loss,
    resume_is_exact,
    smoke_run_from_the_cli,
)
from test_trainer import _data

from dycon.config import ConfigError
from dycon.engine.presets import compose
from dycon.engine.trainer import train
from dycon.methods import StepState
from dycon.methods.cml import CML, conflict_loss, cross_view_targets


def _features(*pairs):
    """(1, 2, V, 1, 1) features of V voxels with 2 channels."""
    return torch.tensor(pairs, dtype=torch.float32).T.reshape(1, 2, -1, 1, 1)


@pytest.mark.parametrize(
    ("f_a", "f_b", "expected"),
    [
        # v1: cos((1, 0), (1, 1)) = 1 / sqrt 2 = 0.707107; v2: cos((0, 2), (0, -3)) = -1
        # 1 + (0.707107 - 1) / 2 = 0.853553
        (((1, 0), (0, 2)), ((1, 1), (0, -3)), 0.853553),
        (((1, 0), (0, 2)), ((-1, 0), (0, -1)), 0.0),  # opposite everywhere: the minimum
        (((1, 0), (0, 2)), ((3, 0), (0, 1)), 2.0),  # aligned: the maximum
        (((1, 0), (0, 2)), ((0, 5), (4, 0)), 1.0),  # orthogonal
    ],
)
def test_conflict_loss_on_two_voxels(f_a, f_b, expected):
    a, b = _features(*f_a).requires_grad_(), _features(*f_b).requires_grad_()
    loss = conflict_loss(a, b)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert b.grad is None  # the other network's features are detached


def test_cross_view_targets_by_hand():
    p1 = torch.tensor([[1, 0], [0, 0]])  # pseudo-labels of f_1 on u[0], u[1] (2 voxels each)
    p2 = torch.tensor([[1, 1], [0, 1]])
    inside = torch.tensor([True, False])  # voxel 0 outside the cube (from u_a), 1 inside (u_b)
    # row r mixes u_a = u[r] with u_b = roll(u)[r] = u[r - 1]
    # f_1: outside P_2(u_a): p2[r, 0]; inside P_1(u_b): p1[r - 1, 1] -> [[1, 0], [0, 0]]
    # f_2: outside P_1(u_a): p1[r, 0]; inside P_2(u_b): p2[r - 1, 1] -> [[1, 1], [0, 1]]
    t1, t2 = cross_view_targets(p1, p2, inside)
    assert t1.tolist() == [[1, 0], [0, 0]] and t2.tolist() == [[1, 1], [0, 1]]


@pytest.mark.parametrize(
    ("fraction", "total", "steps"),
    [(0.5, 6, (3, 3)), (2000 / 17000, 20000, (2353, 17647)), (2000 / 17000, 4, (1, 3))],
)
def test_stages_are_pretrain_then_main(fraction, total, steps):
    stages = method_of("cml", pretrain_fraction=fraction).stages(total)
    assert [(s.name, s.steps, s.labeled_only) for s in stages] == [
        ("pretrain", steps[0], True),
        ("main", steps[1], False),
    ]


def test_pretraining_runs_first_and_initialises_the_main_stage(tmp_path, monkeypatch):
    seen, real, die_at = [], CML.__call__, {"call": None}

    def spy(self, batch, nets, state):
        weights = {n: {k: v.clone() for k, v in nets[n].state_dict().items()} for n in nets}
        seen.append((state.stage, batch.image.shape[0], weights))
        if len(seen) == die_at["call"]:
            raise KeyboardInterrupt  # killed as the first main step starts
        return real(self, batch, nets, state)

    monkeypatch.setattr(CML, "__call__", spy)
    cfg = config("cml", **{"method.pretrain_fraction": 0.5})
    train(cfg, data=_data(), run_dir=tmp_path / "whole", progress=False)
    assert [(s, r) for s, r, _ in seen] == [("pretrain", 2)] * 3 + [("main", 4)] * 3
    die_at["call"] = len(seen) + 4
    with pytest.raises(KeyboardInterrupt):
        train(cfg, data=_data(), run_dir=tmp_path / "killed", progress=False)
    pretrained = checkpoint(tmp_path / "killed")  # written at the end of the pretrain stage
    assert pretrained["step"] == 3
    first_main, start = seen[3][2], seen[0][2]
    for net in ("student", "peer"):  # both trained in pre-training, both carried on
        assert not all(torch.equal(v, start[net][k]) for k, v in first_main[net].items()), net
        assert all(torch.equal(v, pretrained["nets"][net][k]) for k, v in first_main[net].items())


@pytest.mark.parametrize("die_at", [3, 4, 6])  # in pre-training, at the boundary, in the main
def test_resume_in_either_stage_gives_the_same_final_weights(tmp_path, monkeypatch, die_at):
    resume_is_exact(
        tmp_path, monkeypatch, "cml", die_at=die_at, **{"method.pretrain_fraction": 0.5}
    )


@pytest.mark.parametrize("stage", ["pretrain", "main"])
def test_one_step_lowers_the_loss(stage):
    one_step_lowers_the_loss(method_of("cml"), state=StepState(500, 1000, stage))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("method.pretrain_fraction=1.0", r"method\.pretrain_fraction=1\.0 is not allowed"),
        ("method.cube_fraction=0", r"method\.cube_fraction=0\.0 is not allowed"),
        (
            "train.iterations=1",
            r"train\.iterations=1 is not allowed: it must be at least 2",
        ),
        ("method.conflict_weight=-1", r"method\.conflict_weight=-1\.0 is not allowed"),
        ("method.unlabeled_weight=-2", r"method\.unlabeled_weight=-2\.0 is not allowed"),
        ("eval.model=teacher", r"\['student', 'peer', 'ensemble'\]"),
    ],
)
def test_bad_config_is_one_line(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        compose(dataset="isles-sim", method="cml", scale="smoke", overrides=[override])
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_smoke_run_from_the_cli(capsys, tmp_path, monkeypatch, default_data):
    summary, _ = smoke_run_from_the_cli(
        "cml", tmp_path=tmp_path, monkeypatch=monkeypatch, data_root=default_data, capsys=capsys
    )
    assert summary["protocol"]["model"] == "ensemble"
