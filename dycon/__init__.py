"""dycon: a reference reproduction of DyCON (Assefa et al., CVPR 2025).

DyCON = Dynamic Uncertainty-aware Consistency and Contrastive learning for semi-supervised
medical image segmentation. Subpackages: ``losses`` (Eqs. 1-5), ``models`` (3D U-Net, V-Net).
"""

__version__ = "0.1.0"
