"""The ramp the official DyCON code uses for its loss weights and thresholds."""

from __future__ import annotations

import math


def sigmoid_ramp(progress: float, start: float, end: float, *, steepness: float = 5.0) -> float:
    """Ramp ``start`` -> ``end`` by exp(-steepness * (1 - p)^2), p = progress clipped to [0, 1].

    This is the Laine & Aila (2017) ramp-up that the official DyCON code uses for its thresholds.
    """
    p = min(max(float(progress), 0.0), 1.0)
    return start + (end - start) * math.exp(-steepness * (1.0 - p) ** 2)
