"""Grad-CAM maps of the 3-D segmentation networks, through pytorch-grad-cam.

Target (:class:`MaskedLogitTarget`): a per-voxel class score summed over a mask,
``sum_v mask[v] * score[v]`` (pytorch-grad-cam's ``SemanticSegmentationTarget`` for volumes),
with two scores:

- ``score="logit"``: the lesion-class logit, ``logits[category, v]``;
- ``score="log_odds"`` (default): the lesion class's log-odds,
  ``logits[category, v] - logsumexp(logits[others, v])`` = ``log p / (1 - p)``; for two classes
  the logit margin (lesion minus background), for one class (sigmoid) the logit itself.

Softmax outputs are unchanged when a constant is added to every class, so the lesion logit on
its own is not identified: a two-class network can mark a lesion by lowering the background
logit, and the lesion-logit map is then blank at the lesion (seen on small trained UNet3Ds).
The log-odds is what the segmentation decision uses, hence the default.

With ``mask="pred"`` the mask is the model's own prediction (``argmax`` over classes equals
``category``): the map explains what the network segmented. With a ground-truth mask it explains
the evidence at the true lesion, including where the network missed it. Grad-CAM then weights the
target layer's channels by their spatially averaged gradients, keeps the positive part, resizes
to the input (scipy zoom) and scales the volume to [0, 1].

Default target layers: the last decoder block, the feature right before the classifier
(``UNet3D.up1``, ``VNet.block_nine``; full resolution). There Grad-CAM is close to the score map
itself minus the classifier bias; deeper decoder blocks (``up2``, ``block_eight``) give coarser,
more "semantic" maps. A map can be blank (all zero, with a warning): when every channel's weight
is negative, i.e. the network marks the lesion by the absence of features (2 of 10 seeds of a
tiny UNet3D trained 5 steps on a blob). pytorch-grad-cam is imported only when a map is
computed (it pulls torchvision and OpenCV: the ``book`` extra).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from ..metrics import as_mask
from ..models import UNet3D, VNet

CAM_METHODS = ("gradcam", "hirescam", "gradcam++", "layercam")
SCORES = ("log_odds", "logit")


class LogitsOnly(nn.Module):
    """Wrap a DyCON network so that ``forward`` returns only the logits tensor.

    pytorch-grad-cam needs a model returning a tensor; the networks return
    ``SegOutput(logits, embedding, aux)``. A tuple's first item or a plain tensor pass too.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        if isinstance(out, Tensor):
            return out
        logits = getattr(out, "logits", None)
        if logits is None and isinstance(out, (tuple, list)) and out:
            logits = out[0]
        if not isinstance(logits, Tensor):
            raise ValueError(f"cannot find a logits tensor in the model output {type(out)}")
        return logits


class MaskedLogitTarget:
    """pytorch-grad-cam target: class ``category``'s score summed inside ``mask``.

    Called by pytorch-grad-cam with one sample's output, shape (num_classes, D, H, W).
    ``score`` is ``"log_odds"`` or ``"logit"`` (see the module docstring).
    """

    def __init__(
        self, mask: np.ndarray | Tensor, *, category: int = 1, score: str = "log_odds"
    ) -> None:
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if isinstance(mask, Tensor):
            mask = mask.detach().cpu().numpy()
        self.mask = torch.as_tensor(np.asarray(mask, dtype=np.float32))
        self.category = category
        self.score = score

    def __call__(self, model_output: Tensor) -> Tensor:
        shape = tuple(model_output.shape)
        if model_output.dim() != self.mask.dim() + 1:
            raise ValueError(f"expected one sample's logits (classes, *spatial), got {shape}")
        if not 0 <= self.category < shape[0]:
            raise ValueError(f"category {self.category} is not a class of logits {shape}")
        if shape[1:] != tuple(self.mask.shape):
            raise ValueError(f"mask shape {tuple(self.mask.shape)} != logits' spatial {shape[1:]}")
        value = model_output[self.category]
        if self.score == "log_odds" and shape[0] > 1:
            others = [c for c in range(shape[0]) if c != self.category]
            value = value - torch.logsumexp(model_output[others], dim=0)
        mask = self.mask.to(device=model_output.device, dtype=model_output.dtype)
        return (value * mask).sum()


def default_target_layer(model: nn.Module) -> nn.Module:
    """The last decoder block of a UNet3D (``up1``) or VNet (``block_nine``).

    A ``LogitsOnly`` or DDP wrapper (``.module``) is looked through; any other network needs an
    explicit ``target_layer``.
    """
    inner = model
    while isinstance(inner, LogitsOnly) or isinstance(getattr(inner, "module", None), nn.Module):
        inner = inner.model if isinstance(inner, LogitsOnly) else inner.module
    if isinstance(inner, UNet3D):
        return inner.up1
    if isinstance(inner, VNet):
        return inner.block_nine
    raise ValueError(
        f"no default Grad-CAM layer for {type(inner).__name__}: pass target_layer=<a module>"
    )


def gradcam_volume(
    model: nn.Module,
    image: np.ndarray | Tensor,
    *,
    mask: np.ndarray | Tensor | str,
    target_layer: nn.Module | None = None,
    method: str = "gradcam",
    category: int = 1,
    score: str = "log_odds",
) -> np.ndarray:
    """A Grad-CAM map of one volume, shape of the input's spatial dims, values in [0, 1].

    Args:
        model: a UNet3D / VNet (or any network returning logits, a tuple or ``SegOutput``).
        image: one volume, (D, H, W) for a one-channel model, (C, D, H, W) or (1, C, D, H, W).
        mask: where the target sums the logits: a binary (D, H, W) array (e.g. the ground truth)
            or ``"pred"`` for the model's own prediction of ``category``.
        target_layer: module whose activations are weighted; default
            :func:`default_target_layer`.
        method: ``"gradcam"``, ``"hirescam"``, ``"gradcam++"`` or ``"layercam"``.
        category: the lesion class (index into the logits' channels).
        score: ``"log_odds"`` (default) or ``"logit"``: the per-voxel score summed in the mask.

    The model is run in eval mode and given back with every module in the mode it had; its
    parameters' ``.grad`` are cleared (pytorch-grad-cam zeroes them) and no parameter gradients
    are computed.

    Raises:
        ValueError: bad image or mask shape, non-binary or empty mask, unknown method.
    """
    if method not in CAM_METHODS:
        raise ValueError(f"method must be one of {CAM_METHODS}, got {method!r}")
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    x = _as_batch(image)
    spatial = tuple(x.shape[2:])
    wrapped = model if isinstance(model, LogitsOnly) else LogitsOnly(model)
    layer = default_target_layer(model) if target_layer is None else target_layer
    params = list(model.parameters())
    if not params:
        raise ValueError("the model has no parameters")
    x = x.to(params[0].device)
    with _frozen_eval(model, params):
        target_mask = _target_mask(wrapped, x, mask, category=category, spatial=spatial)
        x.requires_grad_(True)  # gradients reach the activations without parameter gradients
        target = MaskedLogitTarget(target_mask, category=category, score=score)
        out = _run_cam(method, wrapped, layer, x, target)
    out = np.nan_to_num(np.asarray(out[0], dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    if out.shape != spatial:
        raise RuntimeError(f"pytorch-grad-cam returned shape {out.shape}, expected {spatial}")
    if not out.any():
        warnings.warn(
            "the Grad-CAM map is zero everywhere: every channel of the target layer lowers the "
            "score (the network marks the lesion by absent features); try a deeper target_layer",
            stacklevel=2,
        )
    return np.clip(out, 0.0, 1.0)


@contextlib.contextmanager
def _frozen_eval(model: nn.Module, params: list[nn.Parameter]) -> Iterator[None]:
    """Eval mode and no parameter gradients inside; every module's mode and every parameter's
    ``requires_grad`` as they were after, also on an error (the caller's model is borrowed)."""
    modes, flags = [(m, m.training) for m in model.modules()], [p.requires_grad for p in params]
    try:
        model.eval()
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
        for module, mode in modes:
            module.train(mode)


def _target_mask(
    wrapped: LogitsOnly,
    x: Tensor,
    mask: np.ndarray | Tensor | str,
    *,
    category: int,
    spatial: tuple[int, ...],
) -> np.ndarray:
    """The binary (D, H, W) mask the target sums over: the given one, or the model's own
    prediction of ``category`` for ``"pred"``; an empty mask is an error (nothing to explain)."""
    if isinstance(mask, str):
        if mask != "pred":
            raise ValueError(f'mask must be an array or "pred", got {mask!r}')
        with torch.no_grad():
            logits = wrapped(x)[0]  # (C, D, H, W)
        one = logits.shape[0] == 1  # a sigmoid network: lesion where the logit is > 0
        m = (logits[0] > 0 if one else logits.argmax(0) == category).cpu().numpy()
    else:
        m = as_mask("mask", mask.detach().cpu().numpy() if isinstance(mask, Tensor) else mask)
        if m.shape != spatial:
            raise ValueError(f"mask shape {m.shape} != the image's spatial shape {spatial}")
    if not m.any():
        raise ValueError(f"the mask ({mask if isinstance(mask, str) else 'given'}) is empty")
    return m


def _run_cam(
    method: str, wrapped: LogitsOnly, layer: nn.Module, x: Tensor, target: MaskedLogitTarget
) -> np.ndarray:
    """pytorch-grad-cam's map of ``target``, (1, D, H, W), its hooks released afterwards."""
    # not `with cam:` - pytorch-grad-cam's __exit__ swallows IndexError
    cam = _cam_class(method)(model=wrapped, target_layers=[layer])
    try:
        return cam(input_tensor=x, targets=[target])
    finally:
        cam.activations_and_grads.release()


def _as_batch(image: np.ndarray | Tensor) -> Tensor:
    x = image if isinstance(image, Tensor) else torch.as_tensor(np.asarray(image))
    if x.dim() == 3:
        x = x[None, None]
    elif x.dim() == 4:
        x = x[None]
    elif x.dim() != 5 or x.shape[0] != 1:
        raise ValueError(
            f"image must be one volume, (D, H, W), (C, D, H, W) or (1, C, D, H, W), "
            f"got shape {tuple(x.shape)}"
        )
    return x.detach().float().clone()


def _cam_class(method: str):
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM

    return {
        "gradcam": GradCAM,
        "hirescam": HiResCAM,
        "gradcam++": GradCAMPlusPlus,
        "layercam": LayerCAM,
    }[method]
