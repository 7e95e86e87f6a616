r"""Focal Entropy-aware Contrastive Loss (FeCL): DyCON Eqs. (3)-(4), paper and reference forms.

Assefa et al., "DyCON: Dynamic Uncertainty-aware Consistency and Contrastive Learning for
Semi-supervised Medical Image Segmentation", CVPR 2025. The official code computes a different
loss from the poster's equations (the book's method chapter, ``book/method.md``, lists each
difference). Each form is its own function with only its own options, :func:`fecl_paper_loss`
and :func:`fecl_reference_loss`; :func:`fecl_loss` picks one by name (a method's config), and an
option of the other form is an error there rather than silently ignored. Nothing picks the
token labels for the caller (:func:`fecl_token_labels`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_choice, check_positive, check_same_shape, check_tensor, compute_dtype
from .fecl_dense import dense_paper_fecl, dense_reference_fecl
from .fecl_paper import PaperConfig, StreamingPaperFeCL
from .fecl_reference import ReferenceConfig, StreamingReferenceFeCL

# Default block: (block, N) float32 intermediates of about 2 MiB keep the elementwise work in cache
# (fastest at N ~ 2k on 2 cores); at least 256 rows keep the matrix products efficient at N ~ 14k.
_BLOCK_ELEMENTS = 1 << 19
_MIN_BLOCK_ROWS = 256


def fecl_paper_loss(
    student_tokens: Tensor,
    token_labels: Tensor,
    *,
    teacher_tokens: Tensor | None = None,
    entropy: Tensor | None = None,
    temperature: float = 0.6,
    gamma: float = 2.0,
    top_k: int = 8,
    focal: bool = True,
    hard_negatives: bool | None = None,
    entropy_weighting: bool | None = None,
    similarity_form: str = "affine",
    hard_negative_form: str = "per_negative",
    detach_weights: bool = True,
    block_size: int | None = None,
    implementation: str = "streaming",
) -> Tensor:
    r"""FeCL as the poster writes it, Eqs. (3)-(4); contrast is within a sample, never across.

    With :math:`\hat z` the L2-normalised tokens, :math:`S_{ij} = \hat z_i \cdot \hat z_j / \tau`,
    :math:`P(i) = \{k \ne i: y_k = y_i\}`, :math:`N(i) = \{q: y_q \ne y_i\}`:

    .. math::
        \ell_i = \frac{1}{|P(i)|}\sum_{k \in P(i)} F^+_{ik}
            \left[-\log \frac{e^{S_{ik}}}{D(i)}\right],\quad
        D(i) = e^{S_{ik}} + \sum_{q \in N(i)} F^-_{iq}\left[e^{S_{iq}}
            + \frac{1}{K}\sum_{l=1}^{K} e^{S^t_{il}}\right]

    :math:`F^+_{ik} = (1 - s_{ik})^\gamma e^{H_i}`, :math:`F^-_{iq} = s_{iq}^\gamma`, and
    :math:`S^t_{il}` the K largest student-anchor / teacher-token similarities over :math:`N(i)`
    (Eq. 4; fewer if :math:`|N(i)| < K`). The loss is the mean of :math:`\ell_i` over the anchors
    of the batch that have at least one positive (0 when none has). Choices the poster leaves open:

    - ``similarity_form``: the similarity :math:`s` inside the focal terms must lie in [0, 1] for
      :math:`(1-s)^\gamma` and :math:`s^\gamma` to be weights. ``"affine"`` (default)
      :math:`s = (1 + \cos)/2` keeps every negative in :math:`D(i)`; ``"clamped"``
      :math:`s = \max(\cos, 0)` drops negatives with non-positive cosine.
    - ``hard_negative_form``: ``"per_negative"`` (default) reads the bracket of :math:`D(i)`
      literally, each negative's :math:`F^-` also scaling the top-K mean; ``"once"`` adds the
      top-K mean to :math:`D(i)` a single time.
    - ``detach_weights=True`` (default): :math:`F^+, F^-, e^{H}` are weights, not optimised.
    - ``top_k=8``: K is not given on the poster.
    - :math:`H_i` is the entropy of the anchor token (``entropy``, e.g. the student's per-voxel
      entropy pooled to the token grid).

    Args:
        student_tokens: (B, N, D) student embeddings; normalised here.
        token_labels: (B, N) integer labels of the tokens: ground truth for labeled samples and
            teacher pseudo-labels for unlabeled ones, or ground truth for all (the official
            behaviour, which uses labels the method should not see); see :func:`fecl_token_labels`.
        teacher_tokens: (B, N, D) teacher embeddings (detached) for the hard negatives.
        entropy: (B, N) per-token student entropy for the entropy weighting.
        temperature: :math:`\tau > 0`.
        gamma: Focal exponent :math:`\gamma >= 0`.
        top_k: K of Eq. (4).
        focal: Use :math:`F^+, F^-` (Table 5 "F+ + F-"); ``False`` sets both to 1.
        hard_negatives: Use the teacher hard negatives (Table 5 "HN"). ``None``: on iff
            ``teacher_tokens`` is given. ``True`` without teacher tokens is an error.
        entropy_weighting: Use :math:`e^{H}` (Table 5 "Entropy"). ``None``: on iff ``entropy``
            is given. ``True`` without entropy is an error.
        similarity_form, hard_negative_form, detach_weights: See above.
        block_size: Anchors per block of the streaming implementation (per sample); default
            max(256, 2^19 // N).
        implementation: ``"streaming"`` (default) or ``"dense"`` (the O(B N^2) test oracle).

    Returns:
        Scalar loss, float32 (float64 for float64 input): computed in at least float32 even under
        autocast, as exp and log of similarities over thousands of tokens lose too much in bf16.
    """
    check_choice("similarity_form", similarity_form, ("affine", "clamped"))
    check_choice("hard_negative_form", hard_negative_form, ("per_negative", "once"))
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
    tokens = (student_tokens, token_labels, teacher_tokens, entropy)
    x = _inputs(
        *tokens, hard_negatives, entropy_weighting, temperature, gamma, block_size, implementation
    )
    with torch.autocast(device_type=x.z.device.type, enabled=False):  # float32: see Returns
        z = F.normalize(x.z, dim=-1)  # (B, N, D)
        if implementation == "dense":
            return dense_paper_fecl(
                z,
                x.labels,
                teacher=x.teacher,
                entropy=x.entropy,
                temperature=x.temperature,
                gamma=x.gamma,
                top_k=top_k,
                focal=focal,
                hard_negative_form=hard_negative_form,
                similarity_form=similarity_form,
                detach_weights=detach_weights,
            )
        cfg = PaperConfig(
            temperature=x.temperature,
            gamma=x.gamma,
            top_k=top_k,
            focal=bool(focal),
            hard_negative_form=hard_negative_form,
            similarity_form=similarity_form,
            detach_weights=bool(detach_weights),
            block_size=x.block_size,
        )
        return StreamingPaperFeCL.apply(z, x.entropy, x.teacher, x.labels, cfg)


def fecl_reference_loss(
    student_tokens: Tensor,
    token_labels: Tensor,
    *,
    teacher_tokens: Tensor | None = None,
    entropy: Tensor | None = None,
    temperature: float = 0.6,
    gamma: float = 2.0,
    progress: float = 0.0,
    focal: bool = True,
    hard_negatives: bool | None = None,
    entropy_weighting: bool | None = None,
    cross_weight: float = 1.0,
    block_size: int | None = None,
    implementation: str = "streaming",
) -> Tensor:
    r"""FeCL as the official ``FeCLoss`` (HEAD 69c1384) computes it; contrast within a sample.

    An InfoNCE-style probability :math:`p_{ij}` with a column-wise max shift, focal weight
    :math:`(1-p_{ij})^\gamma` on every positive pair (its thresholds, ramped by ``progress``,
    never bind), the mean over all B*N anchors, plus ``cross_weight`` times the mean of
    :math:`-\log(1 - \cos(\hat z_i, \hat z^t_j))` over cross-label teacher pairs whose cosine
    exceeds a threshold ramped 0.3 -> 0.5. ``entropy`` (its disabled "gambling" option) replaces
    the focal weighting by a per-anchor factor. One deviation: the log is taken only on selected
    pairs and clamped, where the official code returns NaN if any cosine rounds above 1.

    Args:
        student_tokens, token_labels, teacher_tokens, entropy, temperature, gamma, focal,
            hard_negatives, entropy_weighting, implementation: As in :func:`fecl_paper_loss`
            (``entropy`` here is the per-anchor factor).
        progress: Training progress in [0, 1] driving the thresholds (official code: epoch /
            1500 labeled epochs).
        cross_weight: Weight of the teacher penalty (official 1.0).
        block_size: Anchors per block of the streaming implementation (across the batch);
            default max(256, 2^19 // N).

    Returns:
        Scalar loss, float32 (float64 for float64 input), as :func:`fecl_paper_loss`.
    """
    check_positive("cross_weight", cross_weight, allow_zero=True)
    if not 0.0 <= float(progress) <= 1.0:
        raise ValueError(f"progress must lie in [0, 1], got {progress!r}")
    tokens = (student_tokens, token_labels, teacher_tokens, entropy)
    x = _inputs(
        *tokens, hard_negatives, entropy_weighting, temperature, gamma, block_size, implementation
    )
    with torch.autocast(device_type=x.z.device.type, enabled=False):  # float32: see Returns
        z = F.normalize(x.z, dim=-1)  # (B, N, D)
        options = dict(
            temperature=x.temperature,
            gamma=x.gamma,
            focal=bool(focal),
            progress=float(progress),
            cross_weight=float(cross_weight),
        )
        if implementation == "dense":
            return dense_reference_fecl(
                z, x.labels, teacher=x.teacher, entropy=x.entropy, **options
            )
        cfg = ReferenceConfig(block_size=x.block_size, **options)
        return StreamingReferenceFeCL.apply(z, x.entropy, x.teacher, x.labels, cfg)


VARIANTS = {"paper": fecl_paper_loss, "reference": fecl_reference_loss}


def fecl_options(variant: str) -> frozenset[str]:
    """The keyword options of ``variant``'s loss function (what :func:`fecl_loss` accepts)."""
    check_choice("variant", variant, tuple(VARIANTS))
    params = inspect.signature(VARIANTS[variant]).parameters.values()
    return frozenset(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def fecl_loss(
    student_tokens: Tensor, token_labels: Tensor, *, variant: str = "paper", **options
) -> Tensor:
    """FeCL in the form named by ``variant`` (``"paper"`` or ``"reference"``), e.g. from a config.

    ``options`` go to :func:`fecl_paper_loss` or :func:`fecl_reference_loss`; one that the chosen
    form does not take (``top_k`` for the reference, ``progress`` for the paper) is a ValueError.
    """
    allowed = fecl_options(variant)
    wrong = sorted(set(options) - allowed)
    if wrong:
        raise ValueError(
            f"{', '.join(wrong)}: not an option of FeCL variant={variant!r}, which takes "
            f"{', '.join(sorted(allowed))}"
        )
    return VARIANTS[variant](student_tokens, token_labels, **options)


@dataclass(frozen=True)
class _Inputs:
    z: Tensor  # (B, N, D), compute dtype, not yet normalised
    labels: Tensor  # (B, N) int64
    teacher: Tensor | None  # (B, N, D) normalised, detached
    entropy: Tensor | None  # (B, N)
    temperature: float
    gamma: float
    block_size: int


def _inputs(
    student_tokens,
    token_labels,
    teacher_tokens,
    entropy,
    hard_negatives,
    entropy_weighting,
    temperature,
    gamma,
    block_size,
    implementation,
) -> _Inputs:
    """The checks both forms share: shapes, dtypes, switches, temperature, gamma, block size."""
    z = check_tensor("student_tokens", student_tokens, ndim=3, floating=True)
    labels = check_tensor("token_labels", token_labels, ndim=2, integer=True)
    bsz, n, _ = z.shape
    if tuple(labels.shape) != (bsz, n):
        raise ValueError(
            f"token_labels must have shape (B, N) = {(bsz, n)} to match student_tokens "
            f"{tuple(z.shape)}, got {tuple(labels.shape)}"
        )
    if n == 0 or z.shape[2] == 0:
        raise ValueError(f"student_tokens must have N >= 1 tokens of D >= 1, got {tuple(z.shape)}")
    check_choice("implementation", implementation, ("streaming", "dense"))
    temperature = check_positive("temperature", temperature)
    gamma = check_positive("gamma", gamma, allow_zero=True)
    dtype = compute_dtype(z)
    teacher = _optional_input("teacher_tokens", teacher_tokens, hard_negatives, "hard_negatives")
    ent = _optional_input("entropy", entropy, entropy_weighting, "entropy_weighting")
    if teacher is not None:
        check_tensor("teacher_tokens", teacher, ndim=3, floating=True)
        check_same_shape("student_tokens", z, "teacher_tokens", teacher)
        teacher = F.normalize(teacher.detach().to(dtype), dim=-1)
    if ent is not None:
        check_tensor("entropy", ent, ndim=2, floating=True)
        check_same_shape("entropy", ent, "token_labels", labels)
        ent = ent.to(dtype)
    if block_size is None:
        block_size = min(n, max(_MIN_BLOCK_ROWS, _BLOCK_ELEMENTS // n))
    elif not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
    return _Inputs(z.to(dtype), labels.long(), teacher, ent, temperature, gamma, block_size)


def _optional_input(name: str, value: Tensor | None, switch: bool | None, switch_name: str):
    if switch is None:
        return value
    if switch and value is None:
        raise ValueError(f"{switch_name}=True needs {name}; pass {name} or set {switch_name}=False")
    return value if switch else None


def downsample_labels(labels: Tensor, grid: tuple[int, ...], *, mode: str = "trilinear") -> Tensor:
    """Binary voxel labels (B, *spatial) -> token labels (B, N) on ``grid`` (foreground = 1).

    ``"trilinear"``: trilinear resize (align_corners=False) then > 0.5, the official code since
    November 2025 (point-like: a lesion smaller than a token can vanish). ``"majority"``: the
    fraction of foreground voxels in each token's block > 0.5, the code before that.
    """
    check_tensor("labels", labels, integer=True)
    check_choice("mode", mode, ("trilinear", "majority"))
    if labels.ndim != len(grid) + 1:
        raise ValueError(
            f"labels must be (B, *spatial) with {len(grid)} spatial dims to match "
            f"grid {tuple(grid)}, got shape {tuple(labels.shape)}"
        )
    fg = (labels > 0).float()[:, None]  # (B, 1, *S)
    if mode == "trilinear":
        interp = "trilinear" if len(grid) == 3 else "bilinear"
        small = F.interpolate(fg, size=tuple(grid), mode=interp, align_corners=False)
    else:
        small = (
            F.adaptive_avg_pool3d(fg, grid) if len(grid) == 3 else F.adaptive_avg_pool2d(fg, grid)
        )
    return (small[:, 0] > 0.5).flatten(1).long()  # (B, N)


def fecl_token_labels(
    *,
    ground_truth: Tensor,
    teacher_logits: Tensor,
    num_labeled: int,
    grid: tuple[int, ...],
    source: str = "gt+pseudo",
    mode: str = "trilinear",
) -> Tensor:
    """Token labels for FeCL pairs, with the label source stated by the caller.

    Args:
        ground_truth: (B, *spatial) voxel labels; rows >= ``num_labeled`` are only read when
            ``source="gt_all"``.
        teacher_logits: (B, C, *spatial) teacher logits; their argmax labels the unlabeled rows.
        num_labeled: The first ``num_labeled`` samples of the batch are labeled.
        grid: Token grid of the embedding, e.g. (12, 12, 12).
        source: ``"gt+pseudo"`` (default: ground truth for labeled samples, teacher pseudo-labels
            for the others) or ``"gt_all"`` (the official code's use of unlabeled ground truth).
        mode: See :func:`downsample_labels`.
    """
    check_choice("source", source, ("gt+pseudo", "gt_all"))
    bsz = ground_truth.shape[0]
    if not isinstance(num_labeled, int) or not 0 <= num_labeled <= bsz:
        raise ValueError(f"num_labeled must be an integer in [0, {bsz}], got {num_labeled!r}")
    if source == "gt_all":
        return downsample_labels(ground_truth, grid, mode=mode)
    pseudo = teacher_logits.detach().argmax(dim=1)  # (B, *S)
    mixed = torch.cat([ground_truth[:num_labeled].long(), pseudo[num_labeled:]], dim=0)
    return downsample_labels(mixed, grid, mode=mode)
