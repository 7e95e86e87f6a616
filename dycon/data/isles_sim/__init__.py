"""isles-sim: synthetic stroke lesions in the MNI152 template, in the ISLES'22 BIDS layout.

Public API: `generate_isles_sim(dest, preset=..., seed=..., overwrite=...)`. Design:
book/data.md (isles-sim); generator 2.0 departs from its intensity numbers to make the task
about as hard as real ISLES'22 (see `params`: version history, `CALIBRATION`). Modules: `params`
(presets and every parameter), `anatomy` (template or phantom, per-subject resampling),
`lesions` (phenotypes, planting with partial volume, component table), `mimics` (unlabeled
lesion look-alikes), `synth` (contrasts and acquisition), `writer` (files, atomic folder).
"""

from dycon.data.isles_sim.lesions import label_components, size_bin
from dycon.data.isles_sim.params import (
    CALIBRATION,
    CONNECTIVITY,
    GENERATOR_VERSION,
    PHENOTYPES,
    PRESETS,
    SIZE_BINS,
    SPLITS,
    Preset,
    SimParams,
)
from dycon.data.isles_sim.writer import case_id, case_paths, generate_isles_sim, is_complete

__all__ = [
    "CALIBRATION",
    "CONNECTIVITY",
    "GENERATOR_VERSION",
    "PHENOTYPES",
    "PRESETS",
    "SIZE_BINS",
    "SPLITS",
    "Preset",
    "SimParams",
    "case_id",
    "case_paths",
    "generate_isles_sim",
    "is_complete",
    "label_components",
    "size_bin",
]
