"""Segmentation backbones of DyCON; every model's forward(x) returns a `SegOutput`.

`build_model(ModelConfig)` is the one way the rest of the library builds a network.
"""

from dycon.models.build import ModelConfig, build_model
from dycon.models.heads import ProjectionHead
from dycon.models.output import SegOutput
from dycon.models.unet3d import UNet3D
from dycon.models.vnet import VNet

__all__ = ["ModelConfig", "ProjectionHead", "SegOutput", "UNet3D", "VNet", "build_model"]
