"""DyCON in the co-training (CT) framework: a configuration of DyCON, not a copy of it."""

import pytest
import torch
from method_checks import (
    method_of,
    one_step_lowers_the_loss,
    resume_is_exact,
    smoke_run_from_the_cli,
)
from test_methods import _batch, _tiny_model

from dycon.config import ConfigError, to_dict
from dycon.engine.presets import compose
from dycon.methods import StepState

STATE = StepState(step=500, total_steps=1000)
PAIR_TERMS = {"sup", "uncl", "fecl"}  # of one network against its teacher


def _pair(seed=0):
    """Two tiny networks without dropout: their outputs depend on the weights and input only."""
    torch.manual_seed(seed)
    return _tiny_model(dropout=0.0), _tiny_model(dropout=0.0)


def test_the_preset_declares_two_trainable_networks_and_mt_ids_stay():
    ct = compose(dataset="isles-sim", method="dycon-ct", scale="smoke")
    mt = compose(dataset="isles-sim", method="dycon", scale="smoke")
    assert [(s.name, s.ema_of) for s in method_of("dycon", **ct.method).networks] == [
        ("student", None),
        ("peer", None),
    ]
    assert [s.ema_of for s in method_of("dycon", **mt.method).networks] == [None, "student"]
    # The added fields are left out of the MT form's config, so its run ids do not move.
    assert "framework" not in to_dict(mt)["method"]
    assert to_dict(ct)["method"]["framework"] == "ct"


def test_each_network_has_the_mt_form_terms_against_its_partner_plus_cps():
    method = method_of("dycon", framework="ct")
    a, b = _pair()
    terms = method(_batch(), {"student": a, "peer": b}, STATE)
    assert set(terms.terms) == PAIR_TERMS | {f"peer_{k}" for k in PAIR_TERMS} | {"cross"}
    assert terms.weights["cross"] == pytest.approx(0.1)  # ramp 0.3 of 1000 steps: full at 500


@pytest.mark.parametrize(
    ("own", "partner"),
    [(("sup", "uncl", "fecl"), "peer"), (("peer_sup", "peer_uncl", "peer_fecl"), "student")],
)
def test_the_partner_in_the_teachers_role_gets_no_gradient(own, partner):
    a, b = _pair()
    nets = {"student": a, "peer": b}
    terms = method_of("dycon", framework="ct")(_batch(), nets, STATE)
    sum(terms.terms[k] for k in own).backward()
    mine = "student" if partner == "peer" else "peer"
    assert all(p.grad is None for p in nets[partner].parameters())  # detached
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in nets[mine].parameters())


def test_both_networks_are_trained_by_the_total():
    a, b = _pair()
    method_of("dycon", framework="ct")(
        _batch(), {"student": a, "peer": b}, STATE
    ).total().backward()
    for net in (a, b):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_equal_to_the_mt_form_given_the_same_tensors():
    # The MT form's teacher on the input without noise is the CT form's peer: the student's
    # terms are the same numbers, and so are the peer's against the student as its teacher.
    a, b = _pair()
    batch = _batch()
    ct = method_of("dycon", framework="ct", noise_std=0.0)(batch, {"student": a, "peer": b}, STATE)
    mt = method_of("dycon", noise_std=0.0)
    as_student = mt(batch, {"student": a, "teacher": b}, STATE)
    as_peer = mt(batch, {"student": b, "teacher": a}, STATE)
    for k in PAIR_TERMS:
        assert ct.terms[k].item() == pytest.approx(as_student.terms[k].item(), rel=1e-6), k
        assert ct.terms[f"peer_{k}"].item() == pytest.approx(as_peer.terms[k].item(), rel=1e-6)
        assert ct.weights[k] == as_student.weights[k]


def test_cross_weight_zero_drops_the_cps_term():
    a, b = _pair()
    terms = method_of("dycon", framework="ct", cross_weight=0.0)(
        _batch(), {"student": a, "peer": b}, STATE
    )
    assert "cross" not in terms.terms


def test_one_step_lowers_the_loss():
    one_step_lowers_the_loss(method_of("dycon", framework="ct"))


def test_checkpoint_holds_both_networks_and_resume_is_exact(tmp_path, monkeypatch):
    final = resume_is_exact(tmp_path, monkeypatch, "dycon", die_at=4, **{"method.framework": "ct"})
    assert set(final["nets"]) == set(final["optimizers"]) == {"student", "peer"}


@pytest.mark.parametrize(
    ("method", "override", "message"),
    [
        ("dycon-ct", "method.mt_weight=0.1", r"method\.mt_weight=0\.1 is not allowed with"),
        ("dycon", "method.cross_weight=0.5", r"do nothing with method\.framework='mt'"),
        ("dycon", "method.framework=cps", r"method\.framework must be one of 'mt', 'ct'"),
        ("dycon-ct", "eval.model=teacher", r"\['student', 'peer', 'ensemble'\]"),
        ("dycon-ct", "method.cross_weight=-1", r"method\.cross_weight=-1\.0 is not allowed"),
    ],
)
def test_bad_config_is_one_line(method, override, message):
    with pytest.raises(ConfigError, match=message) as err:
        compose(dataset="isles-sim", method=method, scale="smoke", overrides=[override])
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_smoke_run_from_the_cli(capsys, tmp_path, monkeypatch, default_data):
    summary, _ = smoke_run_from_the_cli(
        "dycon-ct",
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        data_root=default_data,
        capsys=capsys,
    )
    assert summary["config"]["method"]["framework"] == "ct"
