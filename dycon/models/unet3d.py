"""3D U-Net backbone of DyCON, with a signed-distance head and a contrastive projection head.

Follows the `unet_3D` of the official DyCON code, which in turn is the SSL4MIS `unet_3D`
(Luo et al.) with feature_scale 4, i.e. widths 16-32-64-128-256: five double-conv blocks with
InstanceNorm, four max-pool downsamplings, a trilinear-upsampling decoder with concatenated
skips, and dropout 0.3 on the bottleneck and on the last decoder feature. DyCON adds a tanh
signed-distance (SDF) head next to the segmentation head, and a projection head on the
bottleneck whose 1/8-resolution output feeds the contrastive loss.

With the defaults the model has 6,148,532 parameters: 5,884,084 in the segmentation network
(both 1x1x1 heads included) and 264,448 in the projection head.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dycon.models.aux_heads import DeepSupervisionHeads, LocationHead, no_location_head
from dycon.models.heads import ProjectionHead
from dycon.models.output import SegOutput, check_dropout, check_input, check_positive_int


class DoubleConv(nn.Module):
    """Two (3x3x3 conv + InstanceNorm + ReLU) layers: SSL4MIS `UnetConv3`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in in (in_channels, out_channels):
            # InstanceNorm3d defaults to affine=False, as in SSL4MIS: the norm adds no parameters.
            layers += [nn.Conv3d(c_in, out_channels, 3, padding=1), nn.InstanceNorm3d(out_channels)]
            layers.append(nn.ReLU(inplace=True))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class UpBlock(nn.Module):
    """Upsample the deeper feature x2, concatenate [skip, deeper], double conv: `UnetUp3_CT`."""

    def __init__(self, skip_channels: int, deep_channels: int) -> None:
        super().__init__()
        self.conv = DoubleConv(skip_channels + deep_channels, skip_channels)

    def forward(self, skip: Tensor, deep: Tensor) -> Tensor:
        deep = F.interpolate(deep, scale_factor=2, mode="trilinear", align_corners=False)
        return self.conv(torch.cat([skip, deep], dim=1))  # (B, skip_channels, *skip.shape[2:])


class UNet3D(nn.Module):
    """DyCON's 3D U-Net (SSL4MIS `unet_3D`, feature_scale 4) with SDF and projection heads.

    Args:
        in_channels: Channels of the input volume (1 for LA and Pancreas CT).
        num_classes: Channels of the logits and of the SDF head.
        widths: Channels of the five encoder stages, the last one being the bottleneck.
        dropout: Probability of the two nn.Dropout layers (bottleneck, last decoder feature).
        embedding_dim: Channels of the projection-head output.
        embedding_scale: Upsampling of the 1/16 bottleneck before the projection head; 2 gives
            embeddings at 1/8 of the input resolution.
        deep_supervision: Add full-resolution logits from the three coarser decoder stages
            (`aux_heads.DeepSupervisionHeads`) under aux["deep_supervision"].
        location_head: Cells of a cube grid; > 0 adds a cube-location classifier on the
            bottleneck (`aux_heads.LocationHead`), run by `forward(x, location=True)`.

    `forward(x, location=False)` takes a (B, in_channels, D, H, W) float tensor with D, H, W
    multiples of 16 and returns `SegOutput(logits, embedding, aux={"sdf": sdf})` (plus
    "deep_supervision", and "location" (B, cells) when asked).
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        num_classes: int = 2,
        widths: tuple[int, ...] = (16, 32, 64, 128, 256),
        dropout: float = 0.3,
        embedding_dim: int = 256,
        embedding_scale: int = 2,
        deep_supervision: bool = False,
        location_head: int = 0,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("num_classes", num_classes)
        widths = tuple(widths) if isinstance(widths, list | tuple) else widths
        if (
            not isinstance(widths, tuple)
            or len(widths) != 5
            or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths)
        ):
            raise ValueError(
                f"widths must be 5 positive ints (one per encoder stage), got {widths!r}; "
                "pass e.g. widths=(16, 32, 64, 128, 256)"
            )
        check_dropout(dropout)
        check_positive_int("embedding_dim", embedding_dim)
        check_positive_int("embedding_scale", embedding_scale)
        self.in_channels = in_channels
        self.num_classes = num_classes

        w1, w2, w3, w4, w5 = widths
        self.conv1 = DoubleConv(in_channels, w1)
        self.conv2 = DoubleConv(w1, w2)
        self.conv3 = DoubleConv(w2, w3)
        self.conv4 = DoubleConv(w3, w4)
        self.center = DoubleConv(w4, w5)
        self.pool = nn.MaxPool3d(2)
        self.up4 = UpBlock(w4, w5)
        self.up3 = UpBlock(w3, w4)
        self.up2 = UpBlock(w2, w3)
        self.up1 = UpBlock(w1, w2)
        # Two modules rather than one so each dropout site can be inspected or hooked on its own.
        self.dropout_center = nn.Dropout(dropout)
        self.dropout_out = nn.Dropout(dropout)
        self.seg_head = nn.Conv3d(w1, num_classes, 1)
        self.sdf_head = nn.Conv3d(w1, num_classes, 1)
        self.projection = ProjectionHead(
            in_channels=w5, embedding_dim=embedding_dim, scale=embedding_scale
        )
        self._init_weights()
        # Built after the backbone's init so the option leaves the backbone's weights as drawn.
        self.deep_supervision = None
        if deep_supervision:
            self.deep_supervision = DeepSupervisionHeads(
                channels=(w4, w3, w2), num_classes=num_classes
            )
            self._init_weights(self.deep_supervision)
        self.location = (
            LocationHead(channels=w5, num_cells=location_head) if location_head else None
        )

    def _init_weights(self, root: nn.Module | None = None) -> None:
        # SSL4MIS "kaiming" init (fan_in, a=0) on conv weights; biases keep PyTorch's default
        # uniform init, which is what SSL4MIS leaves them at too.
        for m in (root or self).modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")

    def forward(self, x: Tensor, *, location: bool = False) -> SegOutput:
        check_input(x, self.in_channels, instance_norm=True)
        if location and self.location is None:
            raise no_location_head()
        # Channel counts in the shape comments are those of the default widths.
        c1 = self.conv1(x)  # (B, 16, D, H, W)
        c2 = self.conv2(self.pool(c1))  # (B, 32, D/2, H/2, W/2)
        c3 = self.conv3(self.pool(c2))  # (B, 64, D/4, H/4, W/4)
        c4 = self.conv4(self.pool(c3))  # (B, 128, D/8, H/8, W/8)
        center = self.dropout_center(self.center(self.pool(c4)))  # (B, 256, D/16, H/16, W/16)

        u4 = self.up4(c4, center)  # (B, 128, D/8, H/8, W/8)
        u3 = self.up3(c3, u4)  # (B, 64, D/4, H/4, W/4)
        u2 = self.up2(c2, u3)  # (B, 32, D/2, H/2, W/2)
        u = self.dropout_out(self.up1(c1, u2))  # (B, 16, D, H, W)

        logits = self.seg_head(u)  # (B, num_classes, D, H, W)
        sdf = torch.tanh(self.sdf_head(u))  # (B, num_classes, D, H, W), in [-1, 1]
        embedding = self.projection(center)  # (B, 256, D/8, H/8, W/8)
        aux = {"sdf": sdf}
        if self.deep_supervision is not None:
            aux["deep_supervision"] = self.deep_supervision([u4, u3, u2], tuple(x.shape[2:]))
        if location:
            aux["location"] = self.location(center)  # (B, cells)
        return SegOutput(logits=logits, embedding=embedding, aux=aux)
