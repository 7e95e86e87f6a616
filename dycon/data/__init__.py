"""Data: the datasets (``datasets.DATASETS``, each declared once), readers per on-disk format,
split lists, prepare steps, isles-sim, patch sampling.

All readers return :class:`Volume` (image float32 (C, X, Y, Z), label uint8, spacing in mm, case
id); bad data raises :class:`DataError` with a one-line message naming the file and the fix.
"""

from .volume import DATA_ENV, DataError, Volume, data_root

__all__ = ["DATA_ENV", "DataError", "Volume", "data_root"]
