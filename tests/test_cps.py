"""Cross pseudo supervision: the loss by hand, gradients, resume, eval.model, end to end."""

import math

import pytest
import torch
import torch.nn.functional as F
from method_checks import (
    config,
    method_of,
    one_step_lowers_the_loss,
    resume_is_exact,
    smoke_run_from_the_cli,
)
from test_methods import _batch, _nets

from dycon.config import ConfigError
from dycon.engine.networks import Ensemble, build_method, build_network_of, build_networks
from dycon.engine.presets import compose
from dycon.methods import StepState
from dycon.methods.cps import cross_pseudo_loss


def _two_voxels(*pairs):
    """(1, 2, 2, 1, 1) logits of two voxels from (background, foreground) logit pairs."""
    return torch.tensor(pairs, dtype=torch.float32).T.reshape(1, 2, 2, 1, 1)


# a: v1 (0, ln 3) -> p = (0.25, 0.75), argmax 1; v2 (ln 4, 0) -> (0.8, 0.2), argmax 0
# b: v1 (ln 9, 0) -> (0.9, 0.1), argmax 0;     v2 (ln 4, 0) -> (0.8, 0.2), argmax 0
A = _two_voxels((0.0, math.log(3)), (math.log(4), 0.0))
B = _two_voxels((math.log(9), 0.0), (math.log(4), 0.0))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # CE(a, [0, 0]) = (-ln 0.25 - ln 0.8) / 2 = (1.386294 + 0.223144) / 2 = 0.804719
        # CE(b, [1, 0]) = (-ln 0.1 - ln 0.8) / 2 = (2.302585 + 0.223144) / 2 = 1.262864
        (A, B, 2.067583),
        (B, A, 2.067583),  # symmetric
        # a = b: 2 CE(a, [1, 0]) = 2 (-ln 0.75 - ln 0.8) / 2 = 0.287682 + 0.223144 = 0.510826
        (A, A, 0.510826),
    ],
)
def test_cross_pseudo_loss_on_two_voxels(a, b, expected):
    assert cross_pseudo_loss(a, b).item() == pytest.approx(expected, abs=1e-5)


def test_no_gradient_through_a_pseudo_label():
    a, b = A.clone().requires_grad_(), B.clone().requires_grad_()
    (grad_a, grad_b) = torch.autograd.grad(cross_pseudo_loss(a, b), (a, b))
    # each network's gradient is that of its own CE against the other's fixed argmax alone
    (own_a,) = torch.autograd.grad(F.cross_entropy(a, torch.tensor([[[[0]], [[0]]]])), a)
    (own_b,) = torch.autograd.grad(F.cross_entropy(b, torch.tensor([[[[1]], [[0]]]])), b)
    assert torch.allclose(grad_a, own_a) and torch.allclose(grad_b, own_b)


def test_mismatched_logits_are_one_line():
    with pytest.raises(ValueError, match=r"of one shape, got \(1, 2, 2, 1, 1\) and \(1, 2, 1\)"):
        cross_pseudo_loss(A, torch.zeros(1, 2, 1))


def test_both_networks_learn_from_the_cross_term():
    method = method_of("cps")
    nets = _nets(method)
    terms = method(_batch(), nets, StepState(step=500, total_steps=1000))
    assert set(terms.terms) == {"sup", "peer_sup", "cross"}
    terms.terms["cross"].backward()
    for name, net in nets.items():
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), name


def test_the_two_networks_start_apart():
    cfg = config("cps")
    nets = build_networks(cfg, build_method(cfg), "cpu")
    a, b = nets["student"].state_dict(), nets["peer"].state_dict()
    assert a.keys() == b.keys()
    assert not all(torch.equal(v, b[k]) for k, v in a.items() if v.is_floating_point())


def test_one_step_lowers_the_loss():
    one_step_lowers_the_loss(method_of("cps"))


def test_checkpoint_holds_both_networks_and_resume_is_exact(tmp_path, monkeypatch):
    final = resume_is_exact(tmp_path, monkeypatch, "cps", die_at=4)
    assert set(final["nets"]) == set(final["optimizers"]) == {"student", "peer"}


def test_the_ensemble_is_the_mean_of_the_softmaxes():
    cfg = config("cps", **{"eval.model": "ensemble"})
    ensemble = build_network_of(cfg, "ensemble").eval()
    assert isinstance(ensemble, Ensemble) and list(ensemble.members) == ["student", "peer"]
    x = torch.randn(1, 1, 32, 32, 16)
    with torch.no_grad():
        got = torch.softmax(ensemble(x).logits, 1)
        expected = sum(torch.softmax(m(x).logits, 1) for m in ensemble.members.values()) / 2
    assert torch.allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("method", "override", "message"),
    [
        ("cps", "method.cross_weight=-1", r"method\.cross_weight=-1\.0 is not allowed"),
        ("cps", "method.cross_rampup=-0.5", r"method\.cross_rampup=-0\.5 is not allowed"),
        ("cps", "eval.model=teacher", r"eval\.model='teacher' is not allowed: it must be one of"),
        ("mt", "eval.model=peer", r"\['student', 'teacher'\] \(method 'mt'"),
        ("dycon", "eval.model=ensemble", r"eval\.model='ensemble' is not allowed"),
        ("cps", "eval.model=both", r"eval\.model must be one of"),
    ],
)
def test_bad_config_is_one_line(method, override, message):
    with pytest.raises(ConfigError, match=message) as err:
        compose(dataset="isles-sim", method=method, scale="smoke", overrides=[override])
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_smoke_run_from_the_cli_evaluates_the_ensemble(capsys, tmp_path, monkeypatch, default_data):
    summary, _ = smoke_run_from_the_cli(
        "cps",
        "--set",
        "eval.model=ensemble",
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        data_root=default_data,
        capsys=capsys,
    )
    assert summary["protocol"]["model"] == "ensemble"
