"""What every DyCON segmentation network returns and what input it accepts.

Both backbones (`UNet3D`, `VNet`) share one output type so the training loop, the losses and
the evaluation code never branch on the architecture, and one input check so that a bad batch
fails at the model boundary with a message rather than deep inside a convolution.
"""

from typing import NamedTuple

from torch import Tensor

# Both backbones halve the resolution four times; skips only line up when every spatial size
# survives that exactly.
SIZE_MULTIPLE = 16


class SegOutput(NamedTuple):
    """Output of a DyCON segmentation network.

    Attributes:
        logits: Unnormalised class scores, shape (B, num_classes, D, H, W).
        embedding: Projection-head features at 1/8 of the input resolution, shape
            (B, embedding_dim, D/8, H/8, W/8). Not L2-normalised: the contrastive losses
            normalise, so the raw features stay available to anything else that wants them.
        aux: Extra heads by name, or None. "sdf": the tanh signed-distance head, shape
            (B, num_classes, D, H, W), values in [-1, 1] (always on `UNet3D`, an option of
            `VNet`); "deep_supervision": a list of full-resolution logits from coarser decoder
            stages, coarsest first (an option of both; see `aux_heads`).
    """

    logits: Tensor
    embedding: Tensor
    aux: dict[str, Tensor | list[Tensor]] | None = None


def check_input(x: object, in_channels: int, *, instance_norm: bool = False) -> None:
    """Raise ValueError unless `x` is a (B, in_channels, D, H, W) float tensor, sizes % 16 == 0.

    With `instance_norm`, also reject a 16x16x16 input: its 1x1x1 bottleneck is a single voxel,
    which InstanceNorm cannot normalise (PyTorch raises deep inside the network otherwise).
    """
    if not isinstance(x, Tensor):
        raise ValueError(
            f"expected a torch.Tensor, got {type(x).__name__}; pass a (B, C, D, H, W) tensor"
        )
    if x.dim() != 5:
        raise ValueError(
            f"expected a 5-D (B, C, D, H, W) tensor, got shape {tuple(x.shape)}; "
            "add the missing batch/channel dims, e.g. x[None, None] for one (D, H, W) volume"
        )
    if not x.is_floating_point():
        raise ValueError(
            f"expected a floating-point tensor, got dtype {x.dtype}; call x.float() first"
        )
    if x.shape[1] != in_channels:
        raise ValueError(
            f"expected {in_channels} input channel(s), got shape {tuple(x.shape)} with "
            f"{x.shape[1]}; fix the data or build the model with in_channels={x.shape[1]}"
        )
    spatial = tuple(x.shape[2:])
    if any(s % SIZE_MULTIPLE for s in spatial):
        raise ValueError(
            f"spatial sizes {spatial} of input shape {tuple(x.shape)} must be multiples of "
            f"{SIZE_MULTIPLE}; crop or pad the patch (e.g. 96x96x96 or 112x112x80)"
        )
    if instance_norm and all(s == SIZE_MULTIPLE for s in spatial):
        raise ValueError(
            f"input shape {tuple(x.shape)} leaves a 1x1x1 bottleneck that InstanceNorm cannot "
            f"normalise; make at least one spatial size {2 * SIZE_MULTIPLE} or more"
        )


def check_positive_int(name: str, value: object) -> None:
    """Raise ValueError unless `value` is an int >= 1 (bools rejected: True is not a width)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}; pass e.g. {name}=2")


def check_dropout(value: object) -> None:
    """Raise ValueError unless `value` is a dropout probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"dropout must be a float in [0, 1), got {value!r}; use 0 to disable it")
