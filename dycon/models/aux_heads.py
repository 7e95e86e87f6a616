"""Optional extra outputs a method can ask a backbone for, returned under ``SegOutput.aux``.

- ``sdf``: a 1x1x1 conv + tanh on the last decoder feature, a signed distance map in [-1, 1]
  per class (DTC, Luo et al., AAAI 2021). UNet3D always carries one (DyCON's official network
  does); the option adds it to VNet.
- ``deep_supervision``: a 1x1x1 conv on each of the three coarser decoder stages (1/8, 1/4,
  1/2 resolution), trilinearly upsampled to the input size: a list of full-resolution logits,
  coarsest first, beside the main ``logits`` (URPC, Luo et al., MICCAI 2021). SSL4MIS's
  ``unet_3D_dv_semi`` also puts Dropout3d(0.5, 0.3, 0.2, 0.1) in the decoder's main path; here
  the dropout (0.5, 0.3, 0.2) sits on the head inputs only, so the main path, and a network built
  without the option, is unchanged.

- ``location``: a cube-location classifier on the bottleneck (MagicNet, Chen et al., CVPR 2023):
  which of the N cells of its grid a cube was cut from. Adaptive average pooling to 2x2x2 (the
  bottleneck of a 32^3 cube, where it is the official flatten), then FC(8C -> 16C) + BatchNorm
  + LeakyReLU + FC(16C -> N): the official FC(2048 -> 4096) ... -> 27 at C = 256, N = 27. It runs
  only when ``forward(x, location=True)`` asks (the method's cube batch), so whole-volume
  passes, a teacher's batch of one included, never meet its BatchNorm.

All are off by default: the networks, their parameter counts and every existing run are as
before. Heads are registered after the backbone's own modules, so turning one on leaves the
backbone's initial weights (drawn in registration order) unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEEP_SUPERVISION_DROPOUT = (0.5, 0.3, 0.2)  # coarsest first, as SSL4MIS's decoder stages 4-2


class DeepSupervisionHeads(nn.Module):
    """Full-resolution logits from decoder features at 1/8, 1/4 and 1/2 of the input size.

    Args:
        channels: Channels of the three decoder features, coarsest first.
        num_classes: Channels of each output.
    """

    def __init__(self, *, channels: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        self.drop = nn.ModuleList(nn.Dropout3d(p) for p in DEEP_SUPERVISION_DROPOUT)
        self.heads = nn.ModuleList(nn.Conv3d(c, num_classes, 1) for c in channels)

    def forward(self, features: list[Tensor], size: tuple[int, ...]) -> list[Tensor]:
        return [
            F.interpolate(head(drop(f)), size=size, mode="trilinear", align_corners=False)
            for drop, head, f in zip(self.drop, self.heads, features, strict=True)
        ]  # 3 x (B, num_classes, *size)


class SDFHead(nn.Module):
    """tanh(1x1x1 conv): one signed-distance channel per class, values in [-1, 1]."""

    def __init__(self, *, channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.conv(x))  # (B, num_classes, D, H, W)


class LocationHead(nn.Module):
    """Cube-location logits (B, num_cells) from a (B, C, *S) bottleneck of any size."""

    def __init__(self, *, channels: int, num_cells: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d(2)
        hidden = 16 * channels
        self.fc = nn.Sequential(
            nn.Linear(8 * channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.LeakyReLU(inplace=True),
            nn.Linear(hidden, num_cells),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(x).flatten(1))  # (B, num_cells)


def no_location_head() -> ValueError:
    return ValueError(
        "location=True needs a location head; build the model with location_head=<cells>"
    )
