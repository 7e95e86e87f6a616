"""Formatting shared by the figure modules: numbers with intervals, slugs, PNG sizes, JSON."""

from __future__ import annotations

import math
import struct

import numpy as np


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in str(text).lower()).strip("_")


def fmt_ci(value, low=math.nan, high=math.nan, n: int | None = None, *, sign=False) -> str:
    """``12.3 (4.5–20.1; n = 7)``; an undefined value shows as ``—`` with its count."""
    ok = value is not None and math.isfinite(value)
    extras = [f"{low:.1f}–{high:.1f}"] if ok and math.isfinite(low) and math.isfinite(high) else []
    extras += [] if n is None else [f"n = {n}"]
    main = format(value, "+.1f" if sign else ".1f") if ok else "—"
    return main + (f" ({'; '.join(extras)})" if extras else "")


def fmt(x, digits: int = 2) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def nanmean(values) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan


def clean(x):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, tuple keys and values -> str/list."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def new_figure(figsize: tuple[float, float], rows: int, cols: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)
