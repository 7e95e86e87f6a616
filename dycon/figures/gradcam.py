"""The evolving Grad-CAM figure: maps of one run's snapshots on a few test cases."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..config import ConfigError
from ..experiments import RunResult, config_of
from ._format import fmt, nanmean, new_figure
from .base import REFERENCE, Figure, Row, held_out


def snapshots(run_dir: Path) -> list[tuple[int, Path]]:
    """The weights kept by ``train.snapshots``: ``(step, path)``, by step."""
    found = sorted(Path(run_dir).glob("checkpoints/step_*.pt"))
    return sorted((int(p.stem.removeprefix("step_")), p) for p in found)


def gradcam_panels(
    result: RunResult,
    *,
    root=None,
    n_cases: int = 3,
    steps: Sequence[int] | None = None,
    device: str = "auto",
) -> list[dict]:
    """Grad-CAM (lesion log-odds inside the ground truth) of the first ``n_cases`` test cases
    with a lesion, at each snapshot in ``steps`` (default: all kept). Each panel: ``case``,
    ``slice`` (most lesion voxels), ``image`` / ``gt`` (3-D), ``maps`` and ``inside`` by step
    (share of the map's mass inside the lesion; NaN for a blank map) and ``lesion_fraction``
    (that share for a uniform map)."""
    from ..analysis.gradcam import gradcam_volume
    from ..analysis.overlays import pick_slices
    from ..engine.checkpoint import load_checkpoint
    from ..engine.distributed import resolve_device
    from ..engine.networks import build_network_of, eval_members

    kept = snapshots(result.run_dir)
    if not kept:
        raise ConfigError(
            f"run {result.run_id} kept no snapshots: train it with train.snapshots=[0.1,0.5,1.0]"
        )
    if steps is not None:
        unknown = sorted(set(steps) - {s for s, _ in kept})
        if unknown:
            have = ", ".join(str(s) for s, _ in kept)
            raise ConfigError(f"no snapshot at step(s) {unknown}; kept steps: {have}")
        kept = [(s, p) for s, p in kept if s in set(steps)]
    cfg = config_of(result.spec, device=device)
    test = held_out(result.spec, root=root)
    chosen = []
    for i in range(len(test.ids)):
        if len(chosen) >= n_cases:
            break
        volume = test.load(i)
        if volume.label.any():  # Grad-CAM of an empty target is undefined: skipped
            chosen.append(volume)
    model = build_network_of(cfg, cfg.eval.model).to(resolve_device(device))
    panels = [
        {
            "case": v.case_id,
            "slice": pick_slices(v.label > 0, n=1)[0],
            "image": v.image[0],
            "gt": v.label > 0,
            "maps": {},
            "inside": {},
            "lesion_fraction": float(np.mean(v.label > 0)),
        }
        for v in chosen
    ]
    for step, path in kept:
        nets = eval_members(cfg.eval.model, model)
        load_checkpoint(path, nets=nets, optimizers={}, restore_rng=False)
        for p, v in zip(panels, chosen, strict=True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a blank map shows as NaN below
                cam = gradcam_volume(model, _pad(v.image), mask=_pad(p["gt"][None], "constant")[0])
            cam = cam[tuple(slice(0, n) for n in p["gt"].shape)]
            total = float(cam.sum())
            p["maps"][step] = cam
            p["inside"][step] = float(cam[p["gt"]].sum()) / total if total > 0 else math.nan
    return panels


def _pad(x: np.ndarray, mode: str = "edge", multiple: int = 16) -> np.ndarray:
    """Pad the spatial dims of (C, X, Y, Z) at their end to multiples of 16, at least 32 (the
    networks' input sizes); images repeat their edge, masks pad with 0 (``"constant"``)."""
    target = [max(32, -(-n // multiple) * multiple) for n in x.shape[1:]]
    widths = [(0, 0), *[(0, t - n) for t, n in zip(target, x.shape[1:], strict=True)]]
    return np.pad(x, widths, mode)


def gradcam_numbers(panels: list[dict], steps: Sequence[int], iterations: int) -> dict:
    inside = {s: [p["inside"][s] for p in panels] for s in steps}
    return {
        "iterations": iterations,
        "steps": list(steps),
        "cases": [
            {k: p[k] for k in ("case", "slice", "lesion_fraction", "inside")} for p in panels
        ],
        "mean_inside": {
            s: {
                "mean": nanmean(v),
                "n": int(np.isfinite(v).sum()),
                "n_blank": int(np.isnan(v).sum()),
            }
            for s, v in inside.items()
        },
    }


def plot_gradcam(panels: list[dict], steps: Sequence[int], iterations: int, *, size: float = 1.55):
    """One row per case: the slice with the lesion contour, then the map at each snapshot."""
    columns = 1 + len(steps)
    fig, axes = new_figure(
        (size * columns + 0.6, size * max(1, len(panels))), max(1, len(panels)), columns
    )
    if not panels:
        for ax in axes.ravel():
            ax.set_axis_off()
        axes[0][0].text(0, 0.5, "no test case with a lesion", fontsize="large")
        return fig
    image = None
    for r, p in enumerate(panels):
        img = p["image"][..., p["slice"]].T
        gt = p["gt"][..., p["slice"]].T.astype(float)
        lo, hi = np.percentile(p["image"], (0.5, 99.5))
        for c in range(columns):
            ax = axes[r][c]
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, origin="lower")
            if c:
                cam = p["maps"][steps[c - 1]][..., p["slice"]].T
                image = ax.imshow(cam, cmap="jet", vmin=0, vmax=1, alpha=0.5, origin="lower")
            ax.contour(gt, levels=[0.5], colors=["red"], linewidths=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                title = "image + lesion" if c == 0 else step_title(steps[c - 1], iterations)
                ax.set_title(title, fontsize=10)  # >= 10 pt: legible at the column width
        axes[r][0].set_ylabel(f"{p['case']}\nslice {p['slice']}", fontsize=10)
    fig.colorbar(image, ax=axes, shrink=0.8, label="Grad-CAM")
    return fig


def step_title(step: int, iterations: int) -> str:
    return f"step {step} ({100 * step / iterations:.0f} %)"


def _glue(pre: str, numbers: dict) -> dict[str, str]:
    """``<pre>_inside_step<N>``: the mean share of the map inside the lesion at snapshot N."""
    return {
        f"{pre}_inside_step{step}": f"{fmt(100 * m['mean'], 1)} % (n = {m['n']})"
        for step, m in numbers["mean_inside"].items()
    }


def _markdown(numbers: dict) -> str:
    steps = numbers["steps"]
    heads = [f"map in lesion (%), {step_title(s, numbers['iterations'])}" for s in steps]
    lines = [
        "| case | lesion (% of volume) | " + " | ".join(heads) + " |",
        "|---" * (2 + len(steps)) + "|",
    ]
    for c in numbers["cases"]:
        cells = " | ".join(fmt(100 * c["inside"][s], 1) for s in steps)
        lines.append(f"| {c['case']} | {fmt(100 * c['lesion_fraction'], 2)} | {cells} |")
    return "\n".join(lines)


def _decode(numbers: dict) -> dict:
    """JSON made the snapshot steps' keys strings: back to the integer steps."""
    numbers["mean_inside"] = {int(k): v for k, v in numbers["mean_inside"].items()}
    for case in numbers["cases"]:
        case["inside"] = {int(k): v for k, v in case["inside"].items()}
    return numbers


FIGURE = Figure(
    name="gradcam",
    rows=(Row(REFERENCE, "dycon", track="all"),),
    first_seed_only=True,  # pictures of one run
    glue=_glue,
    markdown=_markdown,
    decode=_decode,
)
