"""UnCL (Eq. 1) and the beta schedule (Eq. 2): hand-computed values, gradients, bad input."""

import math

import pytest
import torch

from dycon.losses import beta_schedule, uncl_loss


def _logits(*per_class):
    """One voxel, one sample: (1, C, 1, 1, 1) logits."""
    return torch.tensor(per_class, dtype=torch.float64).reshape(1, -1, 1, 1, 1)


# student p = (0.25, 0.75), teacher p = (0.5, 0.5):
#   H_s = -(0.25 ln 0.25 + 0.75 ln 0.75) = 0.5623351446, H_t = ln 2
#   sum of squared differences 0.125, mean 0.0625; beta = 2
#   loss = d / (exp(2 H_s) + exp(2 H_t)) + 2 (H_s + H_t)
@pytest.mark.parametrize(
    ("student", "teacher", "beta", "reduction", "expected"),
    [
        ((0.0, math.log(3.0)), (0.0, 0.0), 2.0, "sum", 2.528622009190386),
        ((0.0, math.log(3.0)), (0.0, 0.0), 2.0, "mean", 2.5197933297739463),
        # identical uniform predictions: no distance, 2 beta ln 2
        ((0.0, 0.0), (0.0, 0.0), 1.0, "sum", 2.0 * math.log(2.0)),
        # beta = 0: plain squared distance over a denominator of 1 + 1
        ((0.0, math.log(3.0)), (0.0, 0.0), 0.0, "sum", 0.0625),
        # confident and equal: no distance, no entropy
        ((-1e4, 1e4), (-1e4, 1e4), 5.0, "sum", 0.0),
        # confident and opposite: distance 2 over e^0 + e^0
        ((-1e4, 1e4), (1e4, -1e4), 5.0, "sum", 1.0),
    ],
)
def test_uncl_hand_computed(student, teacher, beta, reduction, expected):
    loss = uncl_loss(_logits(*student), _logits(*teacher), beta=beta, class_reduction=reduction)
    assert loss.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_uncl_means_over_batch_and_voxels():
    s = torch.randn(3, 2, 4, 5, 6)
    t = torch.randn(3, 2, 4, 5, 6)
    whole = uncl_loss(s, t, beta=1.5)
    per_voxel = [
        uncl_loss(s[b : b + 1, :, i : i + 1], t[b : b + 1, :, i : i + 1], beta=1.5)
        for b in range(3)
        for i in range(4)
    ]
    assert whole.item() == pytest.approx(torch.stack(per_voxel).mean().item(), rel=1e-5)


def test_uncl_teacher_gets_no_gradient_and_student_does():
    s = torch.randn(2, 3, 4, 4, 4, requires_grad=True)
    t = torch.randn(2, 3, 4, 4, 4, requires_grad=True)
    uncl_loss(s, t, beta=2.0).backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_uncl_gradcheck_float64():
    s = torch.randn(2, 3, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 3, 2, 2, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: uncl_loss(x, t, beta=1.3), (s,))
    assert torch.autograd.gradcheck(
        lambda x: uncl_loss(x, t, beta=0.7, class_reduction="mean"), (s,)
    )


def test_uncl_finite_at_extreme_logits():
    s = (torch.randint(0, 2, (2, 2, 4, 4, 4)).float() * 2 - 1) * 1e4
    s.requires_grad_(True)
    t = torch.flip(s.detach(), dims=[1])
    loss = uncl_loss(s, t, beta=5.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_uncl_float32_under_autocast():
    s = torch.randn(1, 2, 4, 4, 4).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = uncl_loss(s, s.clone(), beta=1.0)
    assert loss.dtype == torch.float32


@pytest.mark.parametrize(
    ("student", "teacher", "kwargs", "message"),
    [
        (torch.zeros(1, 2, 4), torch.zeros(1, 2, 5), {"beta": 1.0}, "same shape"),
        (torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), {"beta": 1.0}, "C >= 2"),
        (torch.zeros(1, 2), torch.zeros(1, 2), {"beta": 1.0}, "C >= 2"),
        (torch.zeros(1, 2, 4, dtype=torch.long), torch.zeros(1, 2, 4), {"beta": 1.0}, "floating"),
        (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4), {"beta": -1.0}, "beta"),
        (
            torch.zeros(1, 2, 4),
            torch.zeros(1, 2, 4),
            {"beta": 1.0, "class_reduction": "max"},
            "sum",
        ),
    ],
)
def test_uncl_bad_input(student, teacher, kwargs, message):
    with pytest.raises(ValueError, match=message):
        uncl_loss(student, teacher, **kwargs)


@pytest.mark.parametrize(
    ("step", "total", "kwargs", "expected"),
    [
        (0, 100, {}, 5.0),
        (100, 100, {}, 0.5),
        (50, 100, {}, 5.0 * 10**-0.5),  # geometric midpoint
        (250, 100, {}, 0.5),  # past the horizon: floor
        (50, 100, {"lam": 1.0}, 5.0 * math.exp(-0.5)),
        (100, 100, {"lam": 10.0}, 0.5),  # 5 e^-10 is below the floor
        (10, 20, {"beta_min": 1.0, "beta_max": 1.0}, 1.0),
        (0, 10, {"lam": 0.0}, 5.0),
    ],
)
def test_beta_schedule_values(step, total, kwargs, expected):
    assert beta_schedule(step, total, **kwargs) == pytest.approx(expected, rel=1e-12)


def test_beta_schedule_equals_official_geometric_decay():
    # official: beta_max * (beta_min / beta_max) ** (e / E)
    total = 3334
    for step in range(0, total + 1, 37):
        official = 5.0 * (0.5 / 5.0) ** (step / total)
        assert beta_schedule(step, total) == pytest.approx(official, rel=1e-12)
    lam = math.log(5.0 / 0.5)
    assert beta_schedule(1234, total, lam=lam) == pytest.approx(beta_schedule(1234, total))


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((1, 0), {}, "total_steps"),
        ((-1, 10), {}, "step"),
        ((1, 10), {"beta_min": 2.0, "beta_max": 1.0}, "beta_max"),
        ((1, 10), {"beta_min": 0.0}, "beta_min"),
        ((1, 10), {"lam": -1.0}, "lam"),
        ((1, 10), {"beta_max": float("nan")}, "beta_max"),
    ],
)
def test_beta_schedule_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        beta_schedule(*args, **kwargs)
