"""isles-sim: synthetic stroke lesions in the MNI152 template, in the ISLES'22 BIDS layout.

Public API: `generate_isles_sim(dest, preset=..., seed=..., overwrite=...)`. Design and
calibration: notes/datasets.md section 4. Modules: `params` (presets and every parameter),
`anatomy` (template or phantom, per-subject resampling), `lesions` (phenotypes, planting,
component table), `synth` (contrasts and acquisition), `writer` (files, atomic folder).
"""

from dycon.data.isles_sim.lesions import label_components, size_bin
from dycon.data.isles_sim.params import (
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
