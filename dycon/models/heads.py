"""Projection heads that turn a backbone's bottleneck into DyCON's contrastive embedding.

DyCON (Assefa et al., CVPR 2025) and its official code attach a small 1x1x1 MLP to the
bottleneck of the segmentation network; its output tokens feed the focal entropy-aware
contrastive loss (FeCL). The bottleneck sits at 1/16 of the input resolution, so the head first
upsamples it (x2 by default) to 1/8, which gives 12^3 = 1728 tokens for a 96^3 patch.
The two official heads differ slightly, and this module reproduces both:

- UNet3D: conv 1x1 -> BatchNorm -> ReLU -> conv 1x1 -> BatchNorm
- VNet:   conv 1x1 -> BatchNorm -> conv 1x1 (no ReLU, no final BatchNorm)
"""

import torch.nn.functional as F
from torch import Tensor, nn

from dycon.models.output import check_positive_int


class ProjectionHead(nn.Module):
    """Upsample, then a two-layer 1x1x1 MLP with a hidden width of 2 * embedding_dim.

    Args:
        in_channels: Channels of the bottleneck feature the head reads.
        embedding_dim: Channels of the returned embedding.
        scale: Trilinear upsampling factor applied first (align_corners=True as in the
            official code); 2 turns a 1/16 bottleneck into a 1/8 embedding, 1 skips it.
        relu: Put a ReLU between the two convs (UNet3D head) or not (VNet head).
        final_norm: End with BatchNorm3d(embedding_dim) (UNet3D head) or not (VNet head).
    """

    def __init__(
        self,
        *,
        in_channels: int = 256,
        embedding_dim: int = 256,
        scale: int = 2,
        relu: bool = True,
        final_norm: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("embedding_dim", embedding_dim)
        check_positive_int("embedding_scale", scale)
        self.scale = scale
        hidden = 2 * embedding_dim
        layers: list[nn.Module] = [nn.Conv3d(in_channels, hidden, 1), nn.BatchNorm3d(hidden)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv3d(hidden, embedding_dim, 1))
        if final_norm:
            layers.append(nn.BatchNorm3d(embedding_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.scale != 1:
            x = F.interpolate(x, scale_factor=self.scale, mode="trilinear", align_corners=True)
        return self.mlp(x)  # (B, embedding_dim, D/8, H/8, W/8) for a 1/16 input and scale 2
