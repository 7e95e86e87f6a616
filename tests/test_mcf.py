"""MCF: difference review, the good student's sharpened pseudo-labels, resume, end to end."""

import pytest
import torch
from method_checks import (
    config,
    method_of,
    one_step_lowers_the_loss,
    resume_is_exact,
    smoke_run_from_the_cli,
)
from test_methods import _batch
from torch import nn

from dycon.config import ConfigError
from dycon.engine.networks import build_network_of
from dycon.engine.presets import compose
from dycon.methods import StepState
from dycon.methods.mcf import difference_mask, review_loss, sharpen
from dycon.models import SegOutput, UNet3D, VNet


def _probs(*foreground):
    """(1, 2, V, 1, 1) probabilities of V voxels from their foreground probabilities."""
    fg = torch.tensor(foreground).reshape(1, 1, -1, 1, 1)
    return torch.cat([1 - fg, fg], dim=1)


Y = torch.tensor([1, 1, 0, 0]).reshape(1, 4, 1, 1)


@pytest.mark.parametrize(
    ("a", "b", "mask", "review_a", "review_b"),
    [
        # argmax fg: a [1, 0, 1, 0], b [1, 1, 0, 0] -> D = [0, 1, 1, 0]
        # R_a = ((0.2 - 1)^2 + (0.6 - 0)^2) / 2 = (0.64 + 0.36) / 2 = 0.5
        # R_b = ((0.7 - 1)^2 + (0.3 - 0)^2) / 2 = (0.09 + 0.09) / 2 = 0.09
        ((0.9, 0.2, 0.6, 0.4), (0.8, 0.7, 0.3, 0.45), [0, 1, 1, 0], 0.5, 0.09),
        # they agree everywhere (even where both are wrong): D empty, R = 0 / (0 + 1e-16) = 0
        ((0.9, 0.2, 0.6, 0.4), (0.7, 0.1, 0.8, 0.3), [0, 0, 0, 0], 0.0, 0.0),
        # they disagree everywhere (a [1, 1, 0, 0], b [0, 0, 1, 1]):
        # R_a = (0.1^2 + 0.2^2 + 0.4^2 + 0.3^2) / 4 = 0.30 / 4 = 0.075
        # R_b = (0.6^2 + 0.7^2 + 0.6^2 + 0.7^2) / 4 = 1.70 / 4 = 0.425
        ((0.9, 0.8, 0.4, 0.3), (0.4, 0.3, 0.6, 0.7), [1, 1, 1, 1], 0.075, 0.425),
    ],
)
def test_xor_mask_and_review_loss(a, b, mask, review_a, review_b):
    pa, pb = _probs(*a), _probs(*b)
    d = difference_mask(pa, pb)
    assert d.flatten().tolist() == [bool(v) for v in mask]
    assert review_loss(pa, Y, d).item() == pytest.approx(review_a, abs=1e-6)
    assert review_loss(pb, Y, d).item() == pytest.approx(review_b, abs=1e-6)


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        # 0.6^10 = 0.0060466, 0.4^10 = 0.00010486; / 0.0061515 -> (0.982954, 0.017046)
        ((0.6, 0.4), (0.982954, 0.017046)),
        ((0.5, 0.5), (0.5, 0.5)),
        # 0.5^10 = 9.7656e-4, 0.3^10 = 5.9049e-6, 0.2^10 = 1.024e-7; / 9.8257e-4
        ((0.5, 0.3, 0.2), (0.993886, 0.006010, 0.000104)),
        ((0.9, 0.1), (1.0, 2.868e-10)),  # 0.1^10 / (0.9^10 + 0.1^10) = 1e-10 / 0.348678
    ],
)
def test_sharpening_at_t_01(p, expected):
    got = sharpen(torch.tensor(p).reshape(1, -1), 0.1).flatten().tolist()
    assert got == pytest.approx(expected, abs=1e-6)


def test_bad_inputs_are_one_line():
    with pytest.raises(ValueError, match=r"of one shape, got \(1, 2, 4, 1, 1\) and \(1, 2, 3"):
        difference_mask(_probs(0.1, 0.2, 0.3, 0.4), _probs(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match=r"label and mask must be \(B, \*S\)"):
        review_loss(_probs(0.1, 0.2, 0.3, 0.4), Y[:, :2], Y[:, :2].bool())
    with pytest.raises(ValueError, match=r"temperature must be > 0"):
        sharpen(_probs(0.5), 0.0)


class _Fixed(nn.Module):
    """Logits ``scale * base`` whatever the input: a subnet whose quality the test chooses."""

    def __init__(self, base):
        super().__init__()
        self.base, self.scale = base, nn.Parameter(torch.ones(()))

    def forward(self, x):
        return SegOutput(logits=self.scale * self.base, embedding=torch.zeros(1))


@pytest.mark.parametrize("good", [0, 1])
def test_the_good_student_is_the_lower_labeled_dice_loss(good):
    truth = _batch(hide_unlabeled=False).label  # (4, 32, 32, 32): the labels of every row
    right = 3.0 * torch.stack([-(truth == 1).float(), (truth == 1).float()], 1)  # (4, 2, ...)
    nets = {"student": _Fixed(right if good == 0 else -right)}
    nets["peer"] = _Fixed(-right if good == 0 else right)
    terms = method_of("mcf")(_batch(), nets, StepState(step=500, total_steps=1000))
    assert terms.logs["good"] == good
    terms.terms["compete"].backward()  # the other subnet learns from the good one's labels
    bad = ("peer", "student")[good]
    assert nets[bad].scale.grad.abs() > 0
    assert nets[("student", "peer")[good]].scale.grad is None  # sharpened target: detached


def test_one_step_lowers_the_loss():
    one_step_lowers_the_loss(method_of("mcf"))


def test_resume_is_exact_with_both_subnets(tmp_path, monkeypatch):
    final = resume_is_exact(tmp_path, monkeypatch, "mcf", die_at=4)
    assert set(final["nets"]) == set(final["optimizers"]) == {"student", "peer"}


def test_the_preset_evaluates_the_mean_of_two_different_subnets():
    cfg = compose(dataset="isles-sim", method="mcf", scale="smoke")
    assert cfg.eval.model == "ensemble"
    members = build_network_of(config("mcf"), "ensemble").members
    assert (type(members["student"]), type(members["peer"])) == (VNet, UNet3D)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("method.subnets=[vnet, vnet]", r"method\.subnets=\['vnet', 'vnet'\] is not allowed"),
        ("method.subnets=[vnet, resnet34]", r"method\.subnets\[1\] must be one of"),
        ("method.review_weight=-1", r"method\.review_weight=-1\.0 is not allowed"),
        ("method.temperature=0", r"method\.temperature=0\.0 is not allowed"),
        ("method.compete_rampup=-1", r"method\.compete_rampup=-1\.0 is not allowed"),
    ],
)
def test_bad_config_is_one_line(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        compose(dataset="isles-sim", method="mcf", scale="smoke", overrides=[override])
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_smoke_run_from_the_cli(capsys, tmp_path, monkeypatch, default_data):
    summary, _ = smoke_run_from_the_cli(
        "mcf", tmp_path=tmp_path, monkeypatch=monkeypatch, data_root=default_data, capsys=capsys
    )
    assert summary["protocol"]["model"] == "ensemble"
