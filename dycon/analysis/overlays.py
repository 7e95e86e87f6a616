"""Slice overlays of predictions on the image, in the style of the DyCON poster.

Colours (RGB in [0, 1]): ground-truth contour red, true positives green, false negatives blue,
false positives yellow, blended over the grayscale slice with opacity ``alpha``. The image is
windowed to its volume's ``window`` percentiles (0.5 and 99.5 by default). Figures are
``matplotlib.figure.Figure`` objects on the Agg canvas (no pyplot state, no display needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_erosion

from ..metrics import as_mask

GT_CONTOUR = (1.0, 0.0, 0.0)
TP = (0.0, 0.8, 0.0)
FN = (0.0, 0.4, 1.0)
FP = (1.0, 0.85, 0.0)


@dataclass(frozen=True)
class OverlayCase:
    """One case of an overlay grid.

    Attributes:
        case: case id (row label).
        image: the volume, (D, H, W) or channels first (C, D, H, W); channel 0 is shown.
        gt: binary ground truth, the image's spatial shape.
        preds: method name -> binary prediction of the same shape (one column each).
        slices: slice indices to show; default :func:`pick_slices` on ``gt``.
    """

    case: str
    image: np.ndarray
    gt: np.ndarray
    preds: Mapping[str, np.ndarray]
    slices: Sequence[int] | None = None


def pick_slices(
    gt: np.ndarray, *, axis: int = -1, n: int = 1, pred: np.ndarray | None = None
) -> list[int]:
    """The ``n`` slices along ``axis`` with the most ground-truth voxels, best first.

    Ties (e.g. slices without lesion) go to the most predicted voxels (if ``pred`` is given),
    then to the slice nearest the middle of the volume.
    """
    g = as_mask("gt", gt)
    if g.ndim != 3:
        raise ValueError(f"gt must be a 3-D volume, got shape {g.shape}")
    axis = _axis(axis)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    others = tuple(a for a in range(3) if a != axis)
    gt_counts = g.sum(axis=others)
    pred_counts = np.zeros_like(gt_counts)
    if pred is not None:
        p = as_mask("pred", pred)
        if p.shape != g.shape:
            raise ValueError(f"pred shape {p.shape} != gt shape {g.shape}")
        pred_counts = p.sum(axis=others)
    idx = np.arange(g.shape[axis])
    order = np.lexsort((np.abs(idx - (g.shape[axis] - 1) / 2), -pred_counts, -gt_counts))
    return [int(i) for i in order[:n]]


def overlay_rgb(
    image: np.ndarray,
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    alpha: float = 0.5,
    window: tuple[float, float] | None = None,
    contour: bool = True,
) -> np.ndarray:
    """RGB overlay of one 2-D slice, shape (*image.shape, 3), values in [0, 1].

    Args:
        image: grayscale slice (any range).
        gt: binary ground-truth slice.
        pred: binary prediction slice.
        alpha: opacity of the TP / FN / FP fills (1 = pure colours).
        window: intensity range ``(low, high)`` mapped to black / white; default the slice's
            minimum and maximum.
        contour: paint the ground-truth contour (its 4-connected inner boundary) in red.
    """
    img = np.asarray(image, dtype=float)
    if img.ndim != 2:
        raise ValueError(f"image must be a 2-D slice, got shape {img.shape}")
    g, p = as_mask("gt", gt), as_mask("pred", pred)
    if g.shape != img.shape or p.shape != img.shape:
        raise ValueError(f"image {img.shape}, gt {g.shape} and pred {p.shape} must match")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    low, high = (float(np.nanmin(img)), float(np.nanmax(img))) if window is None else window
    gray = np.clip((img - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(img)
    rgb = np.repeat(np.nan_to_num(gray)[..., None], 3, axis=-1)
    for region, colour in ((g & p, TP), (g & ~p, FN), (~g & p, FP)):
        rgb[region] = (1.0 - alpha) * rgb[region] + alpha * np.asarray(colour)
    if contour:
        rgb[g & ~binary_erosion(g, border_value=0)] = GT_CONTOUR
    return rgb


def overlay_grid(
    cases: Sequence[OverlayCase],
    *,
    methods: Sequence[str] | None = None,
    axis: int = -1,
    slices_per_case: int = 1,
    alpha: float = 0.5,
    window: tuple[float, float] = (0.5, 99.5),
    image_column: bool = False,
    transpose: bool = True,
    panel_size: float = 2.2,
    dpi: int = 100,
    legend: bool = True,
):
    """A grid of overlays: one row per (case, slice), one column per method.

    Args:
        cases: the cases, each with its predictions by method.
        methods: columns, in order (default: the first case's ``preds`` keys).
        axis: slicing axis of the volumes (-1: the last, axial for RAS-ordered volumes).
        slices_per_case: rows per case, from :func:`pick_slices` unless the case lists them.
        alpha: fill opacity; window: intensity percentiles of each volume mapped to black/white.
        image_column: add a first column with the plain image and the ground-truth contour.
        transpose: show ``slice.T`` with the origin at the bottom left, so the first remaining
            array axis runs left to right (the usual view of an RAS slice); False shows the
            slice as stored (first axis downwards).
        panel_size: inches per panel; dpi: the figure's dots per inch.
        legend: a colour legend under the grid.

    The ground-truth contour is drawn as a red line (matplotlib ``contour`` at level 0.5, i.e.
    on the voxel edges, corners cut); the fills come from :func:`overlay_rgb`.

    Returns:
        A ``matplotlib.figure.Figure`` (constrained layout) of ``columns * panel_size`` by
        ``rows * panel_size + 0.5`` (the legend; 0 without) inches.
    """
    if not cases:
        raise ValueError("give at least one OverlayCase")
    methods = list(methods) if methods is not None else list(cases[0].preds)
    rows = [(c, s) for c in cases for s in _case_slices(c, axis, slices_per_case)]
    columns = (["image"] if image_column else []) + methods
    if not columns:
        raise ValueError("no methods to show: give preds or image_column=True")
    fig, axes = _grid_figure(len(rows), len(columns), panel_size, dpi, legend=legend)
    ax_i = _axis(axis)
    for r, (case, s) in enumerate(rows):
        image = _volume_image(case)
        lo, hi = np.percentile(image, window)
        gt2 = np.take(as_mask("gt", case.gt), s, axis=ax_i)
        img2 = np.take(image, s, axis=ax_i)
        for col, name in enumerate(columns):
            if name == "image":
                pred2 = np.zeros_like(gt2)
            elif name not in case.preds:
                raise ValueError(f"case {case.case!r} has no prediction of {name!r}")
            else:
                pred2 = np.take(_pred(case, name), s, axis=ax_i)
            fill = 0.0 if name == "image" else alpha  # the image column: contour only
            rgb = overlay_rgb(img2, gt2, pred2, alpha=fill, window=(lo, hi), contour=False)
            ax = axes[r, col]
            _draw_panel(ax, rgb, gt2, transpose=transpose)
            if r == 0:
                ax.set_title(name, fontsize="small")
            if col == 0:
                ax.set_ylabel(f"{case.case}\nslice {s}", fontsize="small")
    if legend:
        _add_legend(fig, len(columns))
    return fig


def _grid_figure(n_rows: int, n_cols: int, panel_size: float, dpi: int, *, legend: bool):
    """An Agg figure of ``n_rows x n_cols`` panels, ``panel_size`` inches each, packed tight,
    with 0.5 inch below for the legend; returns ``(figure, axes)``, axes (n_rows, n_cols)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    extra = 0.5 if legend else 0.0
    fig = Figure(
        figsize=(panel_size * n_cols, panel_size * n_rows + extra),
        dpi=dpi,
        layout="constrained",
    )
    FigureCanvasAgg(fig)
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.0, hspace=0.0)
    return fig, fig.subplots(n_rows, n_cols, squeeze=False)


def _draw_panel(ax, rgb: np.ndarray, gt2: np.ndarray, *, transpose: bool) -> None:
    """One panel: the RGB overlay and the ground-truth contour line, without ticks."""
    shown = rgb.transpose(1, 0, 2) if transpose else rgb
    ax.imshow(shown, origin="lower" if transpose else "upper", interpolation="nearest")
    if gt2.any():  # voxel centres at integer coordinates, as imshow puts them
        g = (gt2.T if transpose else gt2).astype(float)
        ax.contour(
            np.arange(g.shape[1]),
            np.arange(g.shape[0]),
            g,
            levels=[0.5],
            colors=[GT_CONTOUR],
            linewidths=1.0,
        )
    ax.set_xticks([])
    ax.set_yticks([])


def _add_legend(fig, n_columns: int) -> None:
    """The colour legend under the grid; four entries in one line from three columns on."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Line2D([], [], color=GT_CONTOUR, label="ground truth"),
        Patch(color=TP, label="true positive"),
        Patch(color=FN, label="false negative"),
        Patch(color=FP, label="false positive"),
    ]
    ncol = 4 if n_columns >= 3 else 2
    fig.legend(
        handles=handles, loc="outside lower center", ncol=ncol, fontsize="small", frameon=False
    )


def _axis(axis: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int) or not -3 <= axis <= 2:
        raise ValueError(f"axis must be an int in -3..2 of a 3-D volume, got {axis!r}")
    return axis % 3


def _volume_image(case: OverlayCase) -> np.ndarray:
    image = np.asarray(case.image, dtype=float)
    if image.ndim == 4:
        image = image[0]
    gt_shape = np.shape(case.gt)
    if image.ndim != 3 or image.shape != gt_shape:
        raise ValueError(
            f"case {case.case!r}: image {np.shape(case.image)} must be (D, H, W) or (C, D, H, W) "
            f"matching gt {gt_shape}"
        )
    return image


def _case_slices(case: OverlayCase, axis: int, n: int) -> list[int]:
    if case.slices is not None:
        size = np.shape(case.gt)[_axis(axis)]
        bad = [s for s in case.slices if not 0 <= s < size]
        if bad:
            raise ValueError(f"case {case.case!r}: slices {bad} outside 0..{size - 1}")
        return [int(s) for s in case.slices]
    union = np.zeros(np.shape(case.gt), dtype=bool)
    for name in case.preds:
        union |= _pred(case, name)
    return pick_slices(case.gt, axis=axis, n=n, pred=union)


def _pred(case: OverlayCase, name: str) -> np.ndarray:
    pred = as_mask(f"preds[{name!r}]", case.preds[name])
    if pred.shape != np.shape(case.gt):
        raise ValueError(
            f"case {case.case!r}: {name!r} prediction {pred.shape} != gt {np.shape(case.gt)}"
        )
    return pred
