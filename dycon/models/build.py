"""The model factory: one place that turns a ``ModelConfig`` into a network.

Training, evaluation, Grad-CAM and the benchmarks all build their networks here, so none of them
imports the training loop to get a model, and a method that needs another architecture for one
of its networks (MCF's second subnet, a deep-supervision or location head) says so with model
overrides on its ``NetworkSpec`` instead of a branch in the trainer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from ..config import added_field
from .unet3d import UNet3D
from .vnet import VNet


@dataclass(frozen=True)
class ModelConfig:
    name: Literal["unet3d", "vnet"] = "unet3d"
    in_channels: int = 1
    num_classes: int = 2
    widths: tuple[int, int, int, int, int] = (16, 32, 64, 128, 256)  # unet3d
    base_filters: int = 16  # vnet
    normalization: Literal["batchnorm", "instancenorm", "groupnorm", "none"] = "batchnorm"
    dropout: float | None = None  # None: the architecture's default (0.3 U-Net, 0.5 V-Net)
    embedding_dim: int = 256
    # Extra outputs (models/aux_heads.py); a method turns them on for its networks.
    sdf_head: bool = added_field(False)  # vnet; unet3d always has one
    deep_supervision: bool = added_field(False)
    location_head: int = added_field(0)  # cells of a cube grid (MagicNet); 0: none


def build_model(cfg: ModelConfig, **overrides: Any) -> nn.Module:
    """The network ``cfg`` describes, with ``overrides`` (ModelConfig fields) applied first.

    Raises:
        ValueError: ``overrides`` names a field ModelConfig does not have.
    """
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(ModelConfig)})
    if unknown:
        known = ", ".join(f.name for f in dataclasses.fields(ModelConfig))
        raise ValueError(f"unknown model overrides {unknown}; ModelConfig fields are: {known}")
    m = dataclasses.replace(cfg, **overrides) if overrides else cfg
    extra = {} if m.dropout is None else {"dropout": m.dropout}
    if m.name == "unet3d":
        return UNet3D(
            in_channels=m.in_channels,
            num_classes=m.num_classes,
            widths=m.widths,
            embedding_dim=m.embedding_dim,
            deep_supervision=m.deep_supervision,
            location_head=m.location_head,
            **extra,
        )
    return VNet(
        in_channels=m.in_channels,
        num_classes=m.num_classes,
        base_filters=m.base_filters,
        normalization=m.normalization,
        embedding_dim=m.embedding_dim,
        sdf_head=m.sdf_head,
        deep_supervision=m.deep_supervision,
        location_head=m.location_head,
        **extra,
    )
