"""Segmentation backbones of DyCON; every model's forward(x) returns a `SegOutput`."""

from dycon.models.heads import ProjectionHead
from dycon.models.output import SegOutput
from dycon.models.unet3d import UNet3D
from dycon.models.vnet import VNet

__all__ = ["ProjectionHead", "SegOutput", "UNet3D", "VNet"]
