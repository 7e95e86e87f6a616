"""FeCL (Eqs. 3-4), paper and reference forms: hand-computed values, streaming = dense,
gradients, edge cases, memory bound, bad input."""

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from dycon.losses import (
    downsample_labels,
    fecl_loss,
    fecl_options,
    fecl_paper_loss,
    fecl_reference_loss,
    fecl_token_labels,
)

E = math.e

# Three 2-D tokens: z1 = z3 = (1, 0), z2 = (0, 1); labels (0, 0, 1); tau = 1, gamma = 2.
# Paper form, affine similarity s = (1 + cos) / 2:
#   anchor 1: P = {2} (cos 0, F+ = 0.5^2), N = {3} (cos 1, F- = 1) -> NEG = e,
#             nll = log(1 + e)
#   anchor 2: P = {1} (cos 0, F+ = 0.25), N = {3} (cos 0, F- = 0.25) -> NEG = 0.25,
#             nll = log(1.25)
#   anchor 3: no positive, not averaged.
# Teacher tokens t1 = (0, 1), t2 = (0.6, 0.8), t3 = (0.8, 0.6): the only negative of anchors
# 1 and 2 is token 3, with student-teacher cosines 0.8 and 0.6.
Z = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]], dtype=torch.float64)
T = torch.tensor([[[0.0, 1.0], [0.6, 0.8], [0.8, 0.6]]], dtype=torch.float64)
Y = torch.tensor([[0, 0, 1]])
L1, L2 = math.log(1 + E), math.log(1.25)
T1 = math.log(1 + E + math.exp(0.8))  # NEG = F-_13 (e^1 + e^0.8)
T2_PER_NEG = math.log(1 + 0.25 * (1 + math.exp(0.6)))  # NEG = 0.25 (e^0 + e^0.6)
T2_ONCE = math.log(1 + 0.25 + math.exp(0.6))  # NEG = 0.25 e^0 + e^0.6

PAPER_CASES = [
    ({}, 0.25 * (L1 + L2) / 2),
    ({"focal": False}, (L1 + math.log(2.0)) / 2),
    (
        {"entropy": torch.tensor([[math.log(2.0), 0.0, 0.0]], dtype=torch.float64)},
        (2 * 0.25 * L1 + 0.25 * L2) / 2,
    ),
    ({"teacher_tokens": T}, 0.25 * (T1 + T2_PER_NEG) / 2),
    ({"teacher_tokens": T, "top_k": 1}, 0.25 * (T1 + T2_PER_NEG) / 2),
    ({"teacher_tokens": T, "hard_negative_form": "once"}, 0.25 * (T1 + T2_ONCE) / 2),
    ({"teacher_tokens": T, "hard_negatives": False}, 0.25 * (L1 + L2) / 2),
    # clamped similarity: anchor 2's negative has cos 0 -> F- = 0 -> nll 0; F+ = 1 for cos 0
    ({"similarity_form": "clamped"}, (L1 + 0.0) / 2),
]

# Reference form on the same tokens: logits with a zero diagonal, column maxima (1, 0, 1),
# p_12 = p_21 = 1/2, one positive per labelled-0 anchor, mean over all 3 anchors.
# Teacher penalty at progress 0 (threshold 0.3013): cross-label pairs with cos 0.8, 0.6, 0.6.
PENALTY = (-math.log(0.2) - 2 * math.log(0.4)) / 3
REFERENCE_CASES = [
    ({}, 0.25 * 2 * math.log(2.0) / 3),
    ({"focal": False}, 2 * math.log(2.0) / 3),
    ({"teacher_tokens": T}, 0.25 * 2 * math.log(2.0) / 3 + PENALTY),
    ({"teacher_tokens": T, "cross_weight": 0.5}, 0.25 * 2 * math.log(2.0) / 3 + 0.5 * PENALTY),
    (
        {"entropy": torch.tensor([[1.0, 3.0, 5.0]], dtype=torch.float64)},
        (1.0 + 3.0) * math.log(2.0) / 3,
    ),
]


@pytest.mark.parametrize("implementation", ["streaming", "dense"])
@pytest.mark.parametrize(("kwargs", "expected"), PAPER_CASES)
def test_paper_hand_computed(kwargs, expected, implementation):
    loss = fecl_loss(Z, Y, temperature=1.0, gamma=2.0, implementation=implementation, **kwargs)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("implementation", ["streaming", "dense"])
@pytest.mark.parametrize(("kwargs", "expected"), REFERENCE_CASES)
def test_reference_hand_computed(kwargs, expected, implementation):
    loss = fecl_loss(
        Z,
        Y,
        variant="reference",
        temperature=1.0,
        gamma=2.0,
        implementation=implementation,
        **kwargs,
    )
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_reference_teacher_threshold_ramps_with_progress():
    # a cross-label pair with cosine 0.4 is hard at progress 0 (threshold 0.301) but not at
    # progress 1 (threshold 0.5)
    z = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    t = torch.tensor([[[1.0, 0.0], [0.4, math.sqrt(1 - 0.16)]]], dtype=torch.float64)
    y = torch.tensor([[0, 1]])
    early = fecl_loss(z, y, variant="reference", teacher_tokens=t, temperature=1.0, progress=0.0)
    late = fecl_loss(z, y, variant="reference", teacher_tokens=t, temperature=1.0, progress=1.0)
    assert early.item() == pytest.approx(-math.log(0.6), rel=1e-12)
    assert late.item() == pytest.approx(0.0, abs=1e-12)


def _random_inputs(b=2, n=37, d=8, dtype=torch.float32, fg=0.3):
    z = torch.randn(b, n, d, dtype=dtype, requires_grad=True)
    t = torch.randn(b, n, d, dtype=dtype)
    y = (torch.rand(b, n) < fg).long()
    h = (torch.rand(b, n, dtype=dtype) * 0.69).requires_grad_(True)
    return z, t, y, h


STREAMING_CASES = [
    ("paper", {}),
    ("paper", {"teacher": True}),
    ("paper", {"teacher": True, "entropy": True}),
    ("paper", {"teacher": True, "entropy": True, "detach_weights": False}),
    (
        "paper",
        {
            "teacher": True,
            "entropy": True,
            "detach_weights": False,
            "similarity_form": "clamped",
            "hard_negative_form": "once",
        },
    ),
    ("paper", {"teacher": True, "focal": False, "top_k": 50}),
    ("paper", {"teacher": True, "gamma": 0.5, "temperature": 0.1, "top_k": 3}),
    ("reference", {}),
    ("reference", {"teacher": True, "progress": 0.4}),
    ("reference", {"teacher": True, "entropy": True}),
    ("reference", {"teacher": True, "focal": False, "gamma": 3.0}),
]


@pytest.mark.parametrize("block_size", [1, 5, 16, 37])
@pytest.mark.parametrize(("variant", "options"), STREAMING_CASES)
def test_streaming_equals_dense(variant, options, block_size):
    z, t, y, h = _random_inputs()
    kwargs = dict(options)
    if kwargs.pop("teacher", False):
        kwargs["teacher_tokens"] = t
    if kwargs.pop("entropy", False):
        kwargs["entropy"] = h
    results = []
    for implementation in ("dense", "streaming"):
        z.grad, h.grad = None, None
        loss = fecl_loss(
            z, y, variant=variant, implementation=implementation, block_size=block_size, **kwargs
        )
        loss.backward()
        results.append((loss.detach(), z.grad.clone(), None if h.grad is None else h.grad.clone()))
    (dense, dz_dense, dh_dense), (stream, dz_stream, dh_stream) = results
    torch.testing.assert_close(stream, dense, rtol=1e-5, atol=0)
    scale = dz_dense.abs().max()
    torch.testing.assert_close(dz_stream, dz_dense, rtol=1e-5, atol=1e-5 * scale)
    assert (dh_dense is None) == (dh_stream is None)
    if dh_dense is not None:
        torch.testing.assert_close(dh_stream, dh_dense, rtol=1e-5, atol=1e-5 * dh_dense.abs().max())


# Only where the gradient is the true derivative: detached focal weights (the paper default) and
# the reference's detached column-max shift are stop-gradients by design; those cases are checked
# against the dense autograd graph in test_streaming_equals_dense instead.
@pytest.mark.parametrize(
    "kwargs",
    [
        {"detach_weights": False},
        {"detach_weights": False, "hard_negative_form": "once", "similarity_form": "clamped"},
        {"focal": False, "detach_weights": False},
    ],
)
def test_gradcheck_float64(kwargs):
    z, t, y, h = _random_inputs(b=2, n=7, d=3, dtype=torch.float64)
    y[:, :2] = torch.tensor([0, 1])  # both classes in every sample

    def loss_fn(z_, h_):
        return fecl_loss(z_, y, teacher_tokens=t, entropy=h_, top_k=2, block_size=3, **kwargs)

    assert torch.autograd.gradcheck(loss_fn, (z, h))


@pytest.mark.parametrize("variant", ["paper", "reference"])
@pytest.mark.parametrize("case", ["all_foreground", "all_background", "single_foreground"])
def test_finite_on_degenerate_labels(variant, case):
    z, t, _, h = _random_inputs(b=2, n=20)
    y = (
        torch.ones(2, 20, dtype=torch.long)
        if case == "all_foreground"
        else torch.zeros(2, 20, dtype=torch.long)
    )
    if case == "single_foreground":
        y[:, 7] = 1
    loss = fecl_loss(z, y, teacher_tokens=t, entropy=h, variant=variant)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(z.grad).all()
    if case != "single_foreground":  # no negative anywhere: nothing to contrast
        assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_paper_single_token_sample_has_no_anchor():
    z = torch.randn(1, 1, 4, requires_grad=True)
    loss = fecl_loss(z, torch.zeros(1, 1, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(z.grad, torch.zeros_like(z))


def test_teacher_gets_no_gradient_and_tokens_are_normalised():
    z, t, y, _ = _random_inputs()
    t.requires_grad_(True)
    loss = fecl_loss(z, y, teacher_tokens=t)
    loss.backward()
    assert t.grad is None
    scaled = fecl_loss(z.detach() * 7.0, y, teacher_tokens=t.detach() * 0.1)
    assert scaled.item() == pytest.approx(loss.item(), rel=1e-5)


def test_contrast_stays_within_each_sample():
    z, t, y, _ = _random_inputs(b=3)
    together = fecl_loss(z, y, teacher_tokens=t, variant="reference")
    apart = [
        fecl_loss(
            z[i : i + 1],
            y[i : i + 1],
            teacher_tokens=t[i : i + 1],
            variant="reference",
            hard_negatives=False,
        )
        for i in range(3)
    ]
    alone = fecl_loss(z, y, variant="reference")
    assert alone.item() == pytest.approx(torch.stack(apart).mean().item(), rel=1e-5)
    assert together.item() > alone.item()


def test_autocast_bf16_gives_float32():
    z, t, y, h = _random_inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = fecl_loss(z.bfloat16(), y, teacher_tokens=t.bfloat16(), entropy=h.bfloat16())
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any aten op produces, backward included."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.largest = max(self.largest, leaf.numel())
        return out


@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_streaming_never_builds_a_full_similarity_matrix(variant):
    b, n, block = 2, 300, 16
    z, t, _, h = _random_inputs(b=b, n=n)
    y = (torch.rand(b, n) < 0.3).long()
    with _LargestTensor() as probe:
        loss = fecl_loss(z, y, teacher_tokens=t, entropy=h, variant=variant, block_size=block)
        loss.backward()
    assert 0 < probe.largest <= b * block * n  # one (B, N, N) tensor would be 180,000
    with _LargestTensor() as dense_probe:
        fecl_loss(z, y, teacher_tokens=t, entropy=h, variant=variant, implementation="dense")
    assert dense_probe.largest == b * n * n  # the probe sees what it should


def test_token_labels_from_masks():
    gt = torch.zeros(2, 8, 8, 8, dtype=torch.long)
    gt[:, :4, :4, :4] = 1  # one full 4^3 block of foreground
    gt[:, 4:6, 4:6, 4:6] = 1  # an eighth of another block
    maj = downsample_labels(gt, (2, 2, 2), mode="majority")
    assert maj.tolist() == [[1, 0, 0, 0, 0, 0, 0, 0]] * 2
    tri = downsample_labels(gt, (2, 2, 2), mode="trilinear")
    assert tri.shape == (2, 8) and tri[:, 0].tolist() == [1, 1]
    teacher = torch.zeros(2, 2, 8, 8, 8)
    teacher[:, 1] = 5.0  # teacher says foreground everywhere
    mixed = fecl_token_labels(
        ground_truth=gt, teacher_logits=teacher, num_labeled=1, grid=(2, 2, 2), mode="majority"
    )
    assert mixed[0].tolist() == maj[0].tolist() and mixed[1].tolist() == [1] * 8
    gt_all = fecl_token_labels(
        ground_truth=gt,
        teacher_logits=teacher,
        num_labeled=1,
        grid=(2, 2, 2),
        source="gt_all",
        mode="majority",
    )
    assert torch.equal(gt_all, maj)


BAD = [
    (lambda z, y, t: fecl_loss(z[0], y), "3 dimensions"),
    (lambda z, y, t: fecl_loss(z, y[:, :-1]), "token_labels must have shape"),
    (lambda z, y, t: fecl_loss(z, y.float()), "integer"),
    (lambda z, y, t: fecl_loss(z.long(), y), "floating"),
    (lambda z, y, t: fecl_loss(z, y, teacher_tokens=t[:, :-1]), "same shape"),
    (lambda z, y, t: fecl_loss(z, y, hard_negatives=True), "teacher_tokens"),
    (lambda z, y, t: fecl_loss(z, y, entropy_weighting=True), "entropy"),
    (lambda z, y, t: fecl_loss(z, y, entropy=torch.zeros(3, 3)), "same shape"),
    (lambda z, y, t: fecl_loss(z, y, variant="official"), "variant"),
    (lambda z, y, t: fecl_loss(z, y, temperature=0.0), "temperature"),
    (lambda z, y, t: fecl_loss(z, y, gamma=-1.0), "gamma"),
    (lambda z, y, t: fecl_loss(z, y, top_k=0), "top_k"),
    (lambda z, y, t: fecl_loss(z, y, progress=1.5), "progress"),
    (lambda z, y, t: fecl_loss(z, y, block_size=0), "block_size"),
    (lambda z, y, t: fecl_loss(z, y, similarity_form="cos"), "similarity_form"),
    (lambda z, y, t: fecl_loss(z, y, implementation="fast"), "implementation"),
    (
        lambda z, y, t: fecl_token_labels(
            ground_truth=y, teacher_logits=z, num_labeled=5, grid=(2,)
        ),
        "num_labeled",
    ),
]


@pytest.mark.parametrize(("call", "message"), BAD)
def test_bad_input(call, message):
    z, t, y, _ = _random_inputs(b=2, n=10)
    with pytest.raises(ValueError, match=message):
        call(z.detach(), y, t)


@pytest.mark.parametrize(
    ("variant", "option", "value"),
    [
        ("reference", "top_k", 4),
        ("reference", "similarity_form", "clamped"),
        ("reference", "hard_negative_form", "once"),
        ("reference", "detach_weights", False),
        ("paper", "progress", 0.5),
        ("paper", "cross_weight", 0.5),
    ],
)
def test_an_option_of_the_other_variant_is_an_error(variant, option, value):
    z, _, y, _ = _random_inputs(b=1, n=6)
    with pytest.raises(ValueError, match=rf"^{option}: not an option of FeCL variant='{variant}'"):
        fecl_loss(z, y, variant=variant, **{option: value})


def test_each_variant_function_takes_only_its_own_options():
    assert fecl_options("paper") - fecl_options("reference") == {
        "top_k",
        "similarity_form",
        "hard_negative_form",
        "detach_weights",
    }
    assert fecl_options("reference") - fecl_options("paper") == {"progress", "cross_weight"}
    z, _, y, _ = _random_inputs(b=1, n=6)
    with pytest.raises(TypeError, match="top_k"):
        fecl_reference_loss(z, y, top_k=4)


@pytest.mark.parametrize(
    ("function", "variant", "kwargs"),
    [
        (fecl_paper_loss, "paper", {"top_k": 3, "similarity_form": "clamped"}),
        (fecl_reference_loss, "reference", {"progress": 0.3, "cross_weight": 0.5}),
    ],
)
def test_the_dispatch_calls_the_variant_function(function, variant, kwargs):
    z, t, y, h = _random_inputs(b=2, n=20)
    direct = function(z, y, teacher_tokens=t, entropy=h, **kwargs)
    dispatched = fecl_loss(z, y, variant=variant, teacher_tokens=t, entropy=h, **kwargs)
    assert torch.equal(direct, dispatched)
