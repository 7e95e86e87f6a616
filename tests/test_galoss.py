"""GALoss: GACE's class weights and GADice by hand, the host it wraps, one step, resume, config,
end to end."""

import math

import pytest
import torch
from method_checks import (
    method_of,
    one_step_lowers_the_loss,
    resume_is_exact,
    smoke_run_from_the_cli,
)
from test_methods import _batch, _nets

from dycon.config import ConfigError
from dycon.engine.presets import compose
from dycon.losses import gace_class_weights, gace_loss, gadice_loss, galoss_supervised
from dycon.methods import CPS, StepState
from dycon.methods.cps import cross_pseudo_loss


def _voxels(*pairs):
    """(1, 2, V, 1, 1) logits from (background, foreground) logit pairs, one per voxel."""
    return torch.tensor(pairs, dtype=torch.float32).T.reshape(1, 2, len(pairs), 1, 1)


def _labels(*labels):
    return torch.tensor(labels).reshape(1, len(labels), 1, 1)


# p_fg = 0.1, 0.2, 0.5, 0.75 (p_bg = 0.9, 0.8, 0.5, 0.25); target 0, 0, 0, 1:
# per-voxel CE l = -ln 0.9, -ln 0.8, -ln 0.5, -ln 0.75 = 0.105361, 0.223144, 0.693147, 0.287682;
# largest first: v3 (bg), v4 (fg), v2 (bg), v1 (bg)
FOUR = _voxels((math.log(9), 0.0), (math.log(4), 0.0), (0.0, 0.0), (0.0, math.log(3)))
ONE_FG = _labels(0, 0, 0, 1)
# two rows of 8 voxels, one foreground voxel among the 16: 15 : 1; flat logits (every CE ln 2)
FLAT = torch.zeros(2, 2, 8, 1, 1)
RARE = torch.zeros(2, 8, 1, 1, dtype=torch.long)
RARE[1, 5] = 1


@pytest.mark.parametrize(
    ("logits", "target", "top_k", "gamma", "expected"),
    [
        # 1 / (n_c^{1-g} K^g). K = 16, n = (15, 1): g = 0.5: 1/sqrt(15 * 16) = 0.064550, 1/sqrt(16)
        (FLAT, RARE, 100.0, 0.5, (0.064550, 0.25)),
        (FLAT, RARE, 100.0, 0.0, (1 / 15, 1.0)),  # class means: 1 / n_c
        (FLAT, RARE, 100.0, 1.0, (1 / 16, 1 / 16)),  # the global mean: 1 / K
        # K = 4, n = (3, 1): 1/sqrt(3 * 4) = 0.288675, 1/sqrt(1 * 4) = 0.5
        (FOUR, ONE_FG, 100.0, 0.5, (0.288675, 0.5)),
        # K = 2 keeps v3 (bg) and v4 (fg): n = (1, 1), 1/sqrt(1 * 2) = 0.707107 each
        (FOUR, ONE_FG, 50.0, 0.5, (0.707107, 0.707107)),
        # K = 1 keeps v3 alone: n = (1, 0), bg 1/sqrt(1 * 1) = 1, no foreground kept: 0
        (FOUR, ONE_FG, 25.0, 0.5, (1.0, 0.0)),
    ],
)
def test_gace_class_weights(logits, target, top_k, gamma, expected):
    got = gace_class_weights(logits, target, top_k=top_k, gamma=gamma)
    assert got.tolist() == pytest.approx(expected, abs=1e-6)


def test_the_rare_class_weighs_more_per_voxel():
    w = gace_class_weights(FLAT, RARE, top_k=100.0, gamma=0.5)
    # (n_bg / n_fg)^{1-g} = 15^0.5 = 3.872983: the class balance half way to class means
    assert (w[1] / w[0]).item() == pytest.approx(math.sqrt(15), rel=1e-5)


@pytest.mark.parametrize(
    ("top_k", "gamma", "expected"),
    [
        # 0.288675 (0.105361 + 0.223144 + 0.693147) + 0.5 * 0.287682 = 0.294925 + 0.143841
        (100.0, 0.5, 0.438766),
        (100.0, 0.0, 0.628232),  # 1.021652 / 3 + 0.287682
        (100.0, 1.0, 0.327333),  # (1.021652 + 0.287682) / 4
        (50.0, 0.5, 0.693551),  # 0.707107 (0.693147 + 0.287682)
        (25.0, 0.5, 0.693147),  # v3 alone, weight 1
    ],
)
def test_gace_loss_on_four_voxels(top_k, gamma, expected):
    got = gace_loss(FOUR, ONE_FG, top_k=top_k, gamma=gamma)
    assert got.item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("target", "gradient_aware", "expected"),
    [
        # both present. bg: 1 - 2 * 2.2 / (1.7625 + 3) = 0.076115 (sum p^2 = .81+.64+.25+.0625);
        # fg: 1 - 2 * 0.75 / (0.8625 + 1) = 0.194631 (sum p^2 = .01+.04+.25+.5625); mean
        (ONE_FG, True, 0.135373),
        (ONE_FG, False, 0.135373),  # no absent class: the switch changes nothing
        # no foreground. bg: 1 - 2 * 2.45 / (1.7625 + 4) = 0.149675; fg absent: sum p^2 / N^0 =
        # 0.8625 / 4 = 0.215625; mean 0.182650
        (_labels(0, 0, 0, 0), True, 0.182650),
        # plain Dice of the absent fg: 1 - 1e-5 / (0.8625 + 1e-5) = 0.999988; mean 0.574832
        (_labels(0, 0, 0, 0), False, 0.574832),
    ],
)
def test_gadice_on_four_voxels(target, gradient_aware, expected):
    got = gadice_loss(FOUR, target, gradient_aware=gradient_aware)
    assert got.item() == pytest.approx(expected, abs=1e-5)


def _grad(loss_of):
    z = FOUR.clone().requires_grad_()
    return torch.autograd.grad(loss_of(z), z)[0]  # (1, 2, 4, 1, 1)


def _background_dice(
    z,
):  # bg of an all-background target: 1 - (2 sum p + eps) / (sum p^2 + 4 + eps)
    p = z.softmax(1)[0, 0].flatten()  # (4,)
    return 1 - (2 * p.sum() + 1e-5) / (p.square().sum() + 4 + 1e-5)


def _absent_foreground(z):  # sum_v sg(p_v / N^0) p_v, N^0 = 4: d/dp = p / N^0
    p = z.softmax(1)[0, 1].flatten()  # (4,)
    return (p.detach() / 4 * p).sum()


def test_an_absent_class_gets_the_probability_aware_gradient():
    none = _labels(0, 0, 0, 0)
    got = _grad(lambda z: gadice_loss(z, none))
    expected = _grad(lambda z: (_background_dice(z) + _absent_foreground(z)) / 2)
    assert torch.allclose(got, expected, atol=1e-7)
    # the plain Dice of the absent class hardly moves the logits: ~ its eps, not p / N^0
    plain = _grad(lambda z: gadice_loss(z, none, gradient_aware=False))
    background_only = _grad(lambda z: _background_dice(z) / 2)
    assert (plain - background_only).abs().max() < 1e-4 < (got - background_only).abs().max()


def test_fp32_under_bf16_autocast():
    logits = FOUR.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        values = [gace_loss(logits, ONE_FG), gadice_loss(logits, ONE_FG)]
    expected = [gace_loss(logits.float(), ONE_FG), gadice_loss(logits.float(), ONE_FG)]
    for got, want in zip(values, expected, strict=True):
        assert got.dtype == torch.float32 and got.item() == pytest.approx(want.item(), abs=1e-7)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gace_loss(FOUR, _labels(0, 1)), r"target must have shape \(B, \*spatial\)"),
        (lambda: gadice_loss(FOUR, _labels(0, 0, 2, 0)), r"must lie in \[0, 1\]"),
        (lambda: gace_loss(FOUR, ONE_FG, top_k=0.0), r"top_k must be a percentage in \(0, 100\]"),
        (lambda: gace_class_weights(FOUR, ONE_FG, gamma=2.0), r"gamma must be in \[0, 1\]"),
    ],
)
def test_bad_loss_arguments_are_one_line(call, message):
    with pytest.raises(ValueError, match=message) as err:
        call()
    assert "\n" not in str(err.value)


def test_the_host_runs_with_the_gradient_aware_losses():
    method = method_of("galoss")
    assert isinstance(method.host, CPS) and method.networks == CPS.networks
    nets, batch, n = _nets(method), _batch(), 2
    torch.manual_seed(11)  # the same dropout masks in both passes
    terms = method(batch, nets, StepState(step=300, total_steps=1000))
    torch.manual_seed(11)
    with torch.no_grad():
        a, b = (nets[k](batch.image).logits for k in ("student", "peer"))  # (4, 2, 32, 32, 32)
        sup = galoss_supervised(a[:n], batch.label[:n], top_k=10.0, gamma=0.5)
        # the cross term on all four rows (labeled ones too), every voxel kept
        cross = cross_pseudo_loss(a, b, loss=lambda x, y: gace_loss(x, y, top_k=100.0))
    assert terms.terms["sup"].item() == pytest.approx(sup.item(), rel=1e-5)
    assert terms.terms["cross"].item() == pytest.approx(cross.item(), rel=1e-5)
    # the host's weight: 0.1 * ramp(300, 0.3 * 1000) = 0.1 (full at the ramp's end)
    assert terms.weights == {"sup": 1.0, "peer_sup": 1.0, "cross": pytest.approx(0.1)}


@pytest.mark.parametrize(("cross_on", "has_cross"), [("all", True), ("unlabeled", False)])
def test_a_labeled_only_batch_has_a_cross_term_only_on_all_rows(cross_on, has_cross):
    method = method_of("galoss", cross_on=cross_on)
    batch = _batch(num_labeled=4)  # every row labeled: no unlabeled rows
    terms = method(batch, _nets(method), StepState(step=500, total_steps=1000))
    assert ("cross" in terms.terms) is has_cross


@pytest.mark.parametrize("fields", [{}, {"cross_on": "unlabeled", "gradient_aware_dice": False}])
def test_one_step_lowers_the_loss(fields):
    one_step_lowers_the_loss(method_of("galoss", **fields))


def test_checkpoint_holds_both_networks_and_resume_is_exact(tmp_path, monkeypatch):
    final = resume_is_exact(tmp_path, monkeypatch, "galoss", die_at=4)
    assert set(final["nets"]) == set(final["optimizers"]) == {"student", "peer"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("method.host=mt", r"method\.host='mt' is not allowed: it must be one of \['cps'\]"),
        ("method.cross_weight=-1", r"method\.cross_weight=-1\.0 is not allowed"),
        ("method.sup_top_k=0", r"method\.sup_top_k=0\.0 is not allowed: it must be a percentage"),
        ("method.cross_top_k=150", r"method\.cross_top_k=150\.0 is not allowed"),
        ("method.ce_gamma=1.5", r"method\.ce_gamma=1\.5 is not allowed: it must be a number in"),
        ("method.cross_on=labeled", r"method\.cross_on must be one of 'all', 'unlabeled'"),
    ],
)
def test_bad_config_is_one_line(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        compose(dataset="isles-sim", method="galoss", scale="smoke", overrides=[override])
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_smoke_run_from_the_cli(capsys, tmp_path, monkeypatch, default_data):
    summary, _ = smoke_run_from_the_cli(
        "galoss", tmp_path=tmp_path, monkeypatch=monkeypatch, data_root=default_data, capsys=capsys
    )
    assert summary["protocol"]["model"] == "student"
