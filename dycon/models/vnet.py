"""V-Net backbone of DyCON, with a contrastive projection head on the bottleneck.

Follows the V-Net of UA-MT (Yu et al., MICCAI 2019), which the official DyCON code also
builds on: residual-free conv stages of 1-2-3-3-3 convs, strided 2x2x2 convs to downsample,
2x2x2 transposed convs to upsample, additive (not concatenated) skips, and Dropout3d on the
bottleneck and on the last decoder feature. The official DyCON V-Net does not run (it passes
a misspelt keyword to a block), so this is the UA-MT network with DyCON's V-Net projection head
(conv 1x1 -> BatchNorm -> conv 1x1, no ReLU) added on the upsampled bottleneck. Module names
and state-dict keys match UA-MT's `VNet` (e.g. `block_one.conv.0.weight`, `out_conv.weight`), so
its checkpoints load into the segmentation part with `load_state_dict(..., strict=False)`.

With the defaults the model has 9,712,802 parameters: 9,448,866 in the segmentation network
(9,443,266 conv/deconv weights and biases + 5,600 BatchNorm affine parameters over 2,800
channels) and 263,936 in the projection head. The "9.707 M" quoted by the official code is the
same network without the backbone's BatchNorm parameters (9,707,202, which is also our count for
normalization="instancenorm" or "none").
"""

from torch import Tensor, nn

from dycon.models.aux_heads import DeepSupervisionHeads, LocationHead, SDFHead, no_location_head
from dycon.models.heads import ProjectionHead
from dycon.models.output import SegOutput, check_dropout, check_input, check_positive_int

NORMALIZATIONS = ("batchnorm", "instancenorm", "groupnorm", "none")


def _norm(kind: str, channels: int) -> list[nn.Module]:
    if kind == "batchnorm":
        return [nn.BatchNorm3d(channels)]
    if kind == "instancenorm":
        return [nn.InstanceNorm3d(channels)]
    if kind == "groupnorm":
        return [nn.GroupNorm(num_groups=16, num_channels=channels)]
    return []


class Stage(nn.Module):
    """Layers kept under `.conv`, as in UA-MT's blocks, so UA-MT checkpoint keys line up."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def conv_block(n_stages: int, in_channels: int, out_channels: int, norm: str) -> Stage:
    """`n_stages` x (3x3x3 conv + norm + ReLU): UA-MT `ConvBlock`."""
    layers: list[nn.Module] = []
    for i in range(n_stages):
        c_in = in_channels if i == 0 else out_channels
        layers += [nn.Conv3d(c_in, out_channels, 3, padding=1), *_norm(norm, out_channels)]
        layers.append(nn.ReLU(inplace=True))
    return Stage(*layers)


def down_block(in_channels: int, out_channels: int, norm: str) -> Stage:
    """2x2x2 stride-2 conv + norm + ReLU: UA-MT `DownsamplingConvBlock`."""
    conv = nn.Conv3d(in_channels, out_channels, 2, stride=2)
    return Stage(conv, *_norm(norm, out_channels), nn.ReLU(inplace=True))


def up_block(in_channels: int, out_channels: int, norm: str) -> Stage:
    """2x2x2 stride-2 transposed conv + norm + ReLU: UA-MT `UpsamplingDeconvBlock`."""
    deconv = nn.ConvTranspose3d(in_channels, out_channels, 2, stride=2)
    return Stage(deconv, *_norm(norm, out_channels), nn.ReLU(inplace=True))


class VNet(nn.Module):
    """UA-MT V-Net with DyCON's V-Net projection head.

    Args:
        in_channels: Channels of the input volume.
        num_classes: Channels of the logits.
        base_filters: Channels of the first stage; stage k has base_filters * 2**k.
        normalization: "batchnorm", "instancenorm" (affine=False), "groupnorm" (16 groups,
            so base_filters must be a multiple of 16) or "none".
        dropout: Dropout3d probability on the bottleneck and the last decoder feature; 0
            disables both (UA-MT's has_dropout=False).
        embedding_dim: Channels of the projection-head output.
        embedding_scale: Upsampling of the 1/16 bottleneck before the projection head; 2 gives
            embeddings at 1/8 of the input resolution.
        sdf_head: Add a tanh signed-distance head (`aux_heads.SDFHead`) under aux["sdf"].
        deep_supervision: Add full-resolution logits from the three coarser decoder stages
            under aux["deep_supervision"].
        location_head: Cells of a cube grid; > 0 adds a cube-location classifier on the
            bottleneck (`aux_heads.LocationHead`), run by `forward(x, location=True)`.

    `forward(x, location=False)` takes a (B, in_channels, D, H, W) float tensor with D, H, W
    multiples of 16 and returns `SegOutput(logits, embedding, aux)`, aux None unless a head
    option is on ("location": (B, cells) only when asked).
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        num_classes: int = 2,
        base_filters: int = 16,
        normalization: str = "batchnorm",
        dropout: float = 0.5,
        embedding_dim: int = 256,
        embedding_scale: int = 2,
        sdf_head: bool = False,
        deep_supervision: bool = False,
        location_head: int = 0,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("num_classes", num_classes)
        check_positive_int("base_filters", base_filters)
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}; "
                'pass e.g. normalization="batchnorm"'
            )
        if normalization == "groupnorm" and base_filters % 16:
            raise ValueError(
                f"groupnorm uses 16 groups, so base_filters must be a multiple of 16, got "
                f"{base_filters}; use base_filters=16 or another normalization"
            )
        check_dropout(dropout)
        check_positive_int("embedding_dim", embedding_dim)
        check_positive_int("embedding_scale", embedding_scale)
        self.in_channels = in_channels
        self.normalization = normalization
        self.num_classes = num_classes

        f, n = base_filters, normalization
        self.block_one = conv_block(1, in_channels, f, n)
        self.block_one_dw = down_block(f, 2 * f, n)
        self.block_two = conv_block(2, 2 * f, 2 * f, n)
        self.block_two_dw = down_block(2 * f, 4 * f, n)
        self.block_three = conv_block(3, 4 * f, 4 * f, n)
        self.block_three_dw = down_block(4 * f, 8 * f, n)
        self.block_four = conv_block(3, 8 * f, 8 * f, n)
        self.block_four_dw = down_block(8 * f, 16 * f, n)
        self.block_five = conv_block(3, 16 * f, 16 * f, n)
        self.block_five_up = up_block(16 * f, 8 * f, n)
        self.block_six = conv_block(3, 8 * f, 8 * f, n)
        self.block_six_up = up_block(8 * f, 4 * f, n)
        self.block_seven = conv_block(3, 4 * f, 4 * f, n)
        self.block_seven_up = up_block(4 * f, 2 * f, n)
        self.block_eight = conv_block(2, 2 * f, 2 * f, n)
        self.block_eight_up = up_block(2 * f, f, n)
        self.block_nine = conv_block(1, f, f, n)
        self.out_conv = nn.Conv3d(f, num_classes, 1)
        # One parameter-free module serves both sites, as in UA-MT; Identity keeps forward flat.
        self.dropout = nn.Dropout3d(dropout) if dropout > 0 else nn.Identity()
        self.projection = ProjectionHead(
            in_channels=16 * f,
            embedding_dim=embedding_dim,
            scale=embedding_scale,
            relu=False,
            final_norm=False,
        )
        self.sdf_head = SDFHead(channels=f, num_classes=num_classes) if sdf_head else None
        self.deep_supervision = (
            DeepSupervisionHeads(channels=(8 * f, 4 * f, 2 * f), num_classes=num_classes)
            if deep_supervision
            else None
        )
        self.location = (
            LocationHead(channels=16 * f, num_cells=location_head) if location_head else None
        )

    def forward(self, x: Tensor, *, location: bool = False) -> SegOutput:
        check_input(x, self.in_channels, instance_norm=self.normalization == "instancenorm")
        if location and self.location is None:
            raise no_location_head()
        # Channel counts in the shape comments are those of base_filters=16.
        x1 = self.block_one(x)  # (B, 16, D, H, W)
        x2 = self.block_two(self.block_one_dw(x1))  # (B, 32, D/2, H/2, W/2)
        x3 = self.block_three(self.block_two_dw(x2))  # (B, 64, D/4, H/4, W/4)
        x4 = self.block_four(self.block_three_dw(x3))  # (B, 128, D/8, H/8, W/8)
        x5 = self.dropout(self.block_five(self.block_four_dw(x4)))  # (B, 256, D/16, H/16, W/16)

        x6 = self.block_six(self.block_five_up(x5) + x4)  # (B, 128, D/8, H/8, W/8)
        x7 = self.block_seven(self.block_six_up(x6) + x3)  # (B, 64, D/4, H/4, W/4)
        x8 = self.block_eight(self.block_seven_up(x7) + x2)  # (B, 32, D/2, H/2, W/2)
        x9 = self.dropout(self.block_nine(self.block_eight_up(x8) + x1))  # (B, 16, D, H, W)

        logits = self.out_conv(x9)  # (B, num_classes, D, H, W)
        embedding = self.projection(x5)  # (B, 256, D/8, H/8, W/8)
        aux = {}
        if self.sdf_head is not None:
            aux["sdf"] = self.sdf_head(x9)  # (B, num_classes, D, H, W)
        if self.deep_supervision is not None:
            aux["deep_supervision"] = self.deep_supervision([x6, x7, x8], tuple(x.shape[2:]))
        if location:
            aux["location"] = self.location(x5)  # (B, cells)
        return SegOutput(logits=logits, embedding=embedding, aux=aux or None)
