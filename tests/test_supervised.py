"""Dice + CE (the supervised part of Eq. 5): hand-computed values and bad input."""

import math

import pytest
import torch

from dycon.losses import dice_ce_loss, dice_loss


def _two_voxels():
    # foreground probabilities (0.75, 0.25) for voxels with labels (1, 0)
    fg = math.log(3.0)
    logits = torch.tensor([[[0.0, 0.0], [fg, -fg]]], dtype=torch.float64)  # (1, 2, 2)
    target = torch.tensor([[1, 0]])
    return logits, target


def test_dice_hand_computed():
    logits, target = _two_voxels()
    # intersection 0.75; denominator 0.75^2 + 0.25^2 + 1 = 1.625
    expected = 1 - (2 * 0.75 + 1e-5) / (1.625 + 1e-5)
    assert dice_loss(logits, target).item() == pytest.approx(expected, rel=1e-12)


def test_dice_ce_hand_computed():
    logits, target = _two_voxels()
    # both voxels get probability 0.75 on their label: CE = -ln 0.75
    expected = 0.0769226035532089 + 0.2876820724517809
    assert dice_ce_loss(logits, target).item() == pytest.approx(expected, rel=1e-12)


def test_dice_batch_global_differs_from_per_sample():
    big = 1e4
    # sample 0 perfect (4 fg voxels), sample 1 predicts fg on a voxel that is background
    logits = torch.full((2, 2, 4), -big, dtype=torch.float64)
    logits[:, 0] = big
    logits[0, 1], logits[0, 0] = big, -big
    logits[1, 1, 0], logits[1, 0, 0] = big, -big
    target = torch.zeros(2, 4, dtype=torch.long)
    target[0] = 1
    # global: inter 4, denom 5 + 4 -> 1 - 8/9; per sample: 0 and 1 - 1e-5/(1 + 1e-5)
    assert dice_loss(logits, target, smooth=1e-5).item() == pytest.approx(
        1 - (8 + 1e-5) / (9 + 1e-5), rel=1e-9
    )
    per_sample = (0.0 + (1 - 1e-5 / (1 + 1e-5))) / 2
    assert dice_loss(logits, target, batch_dice=False).item() == pytest.approx(per_sample, rel=1e-9)


def test_dice_multiclass_averages_foreground_classes():
    logits = torch.randn(2, 4, 3, 3, 3, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 3, 3, 3))
    probs = torch.softmax(logits, 1)
    per_class = []
    for c in range(1, 4):
        g = (target == c).double()
        p = probs[:, c]
        per_class.append(1 - (2 * (p * g).sum() + 1e-5) / ((p * p).sum() + g.sum() + 1e-5))
    assert dice_loss(logits, target).item() == pytest.approx(torch.stack(per_class).mean().item())


def test_dice_ce_gradcheck_float64():
    logits = torch.randn(2, 2, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 2, (2, 3, 3, 2))
    assert torch.autograd.gradcheck(lambda x: dice_ce_loss(x, target), (logits,))


@pytest.mark.parametrize(
    ("logits", "target", "message"),
    [
        (torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long), "target must have shape"),
        (torch.zeros(1, 2, 4), torch.zeros(1, 4), "integer"),
        (torch.zeros(1, 2, 4), torch.full((1, 4), 2), r"\[0, 1\]"),
        (torch.zeros(1, 2, 4), torch.full((1, 4), -1), r"\[0, 1\]"),
        (torch.zeros(1, 1, 4), torch.zeros(1, 4, dtype=torch.long), "C >= 2"),
    ],
)
def test_supervised_bad_input(logits, target, message):
    with pytest.raises(ValueError, match=message):
        dice_ce_loss(logits, target)


def test_dice_ce_finite_at_extreme_logits():
    logits = (torch.randint(0, 2, (2, 2, 4, 4, 4)).float() * 2 - 1) * 1e4
    logits.requires_grad_(True)
    target = torch.randint(0, 2, (2, 4, 4, 4))
    loss = dice_ce_loss(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
