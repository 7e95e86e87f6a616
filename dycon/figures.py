"""What each figure of the poster needs, as runs, and the numbers and plots drawn from them.

Besides its tables the poster shows four figures: segmentation overlays ("Lesion and Tumor
segmentation visualization"), training curves ("Loss and dice accuracy on ISLES22 with 10%
labels"), a lesion-size study ("Sensitivity analysis of FeCL loss across different lesion sizes
and distributions") and an "Evolving Grad-CAM visualization". Each has a notebook,
``notebooks/fig_<name>.ipynb`` (``make reproduce FIG=<name>``), that asks :func:`figure_runs`
for its runs, :func:`dycon.experiments.ensure` to train what is missing, and this module for the
numbers (:func:`lesion_numbers`, :func:`curve_numbers`, :func:`gradcam_panels`,
:func:`overlay_cases`) and plots; :func:`save_figure` writes ``results/fig-<name>/``.

Every run is in Table 1's setting: its dataset (ISLES'22 when prepared, else isles-sim), 10 %
labeled (the poster's curves say "10% labels"), one run per seed. Rows per figure:

- ``lesion-size``: DyCON, DyCON w/o FeCL (``method.use_fecl=false``), MT;
- ``overlays``: DyCON, MT;
- ``curves``: DyCON (tracked), MT (``train.val_every``);
- ``gradcam``: DyCON (tracked).

The lesion-size and curve figures take every seed (lesions pooled over seeds, one curve per
seed); the Grad-CAM and overlay figures show one run per row, the first seed's.

*Tracked* adds ``train.val_every = max(1, round(iterations / 10))`` (only where the dataset has a
validation list: ISLES'22 has none and the test list never validates) and
``train.snapshots=[0.1, 0.5, 1.0]``, so the curves' and the Grad-CAM's DyCON are one run. The
untracked DyCON and MT are Table 1's rows at 10 %: run ids are config hashes, so the runs of a
reproduced Table 1 are reused, and the overlays reuse the lesion-size runs.
"""

from __future__ import annotations

import json
import math
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .analysis.lesions import BINS, LesionStudy, analyze_run, bin_summary, compare_methods
from .config import ConfigError
from .data._io import staged_folder
from .experiments import RunResult, RunSpec, config_of, labeled_count, table_dataset, train_size

FIGURES = ("lesion-size", "gradcam", "curves", "overlays")
TABLE = 1  # the figures use Table 1's setting
PERCENT = 10
SNAPSHOTS = (0.1, 0.5, 1.0)
REFERENCE = "DyCON"
_VALUE = {"detection": "detection_rate", "detection_iou": "detection_iou_rate", "dice": "dice_mean"}
_METRIC = {"detection_rate": "detection", "detection_iou_rate": "detection_iou", "dice": "dice"}


def check_figure(name: str) -> str:
    if name not in FIGURES:
        raise ConfigError(f"unknown figure {name!r}; valid figures: {', '.join(FIGURES)}")
    return name


def val_every(iterations: int) -> int:
    """Validation interval of the tracked runs: a tenth of the run, at least every step."""
    return max(1, round(iterations / 10))


def has_validation(dataset: str, *, root: str | Path | None = None) -> bool:
    """Whether ``dataset`` has a prepared validation list (isles-sim ``tiny`` and ISLES'22 not)."""
    from .engine.datasets import dataset_folder
    from .engine.presets import compose

    cfg = compose(dataset=dataset, method="supervised", scale="smoke")
    if cfg.data.val_list is None:
        return False
    return (dataset_folder(cfg, root=root) / cfg.data.val_list).is_file()


def figure_runs(
    name: str,
    *,
    dataset: str | None = None,
    scale: str = "quick",
    seeds: Sequence[int] = (1337,),
    root: str | Path | None = None,
) -> list[RunSpec]:
    """The runs of figure ``name`` (rows in the module docstring), one per row and seed; the
    Grad-CAM and overlay figures picture one run per row, that of the first seed."""
    check_figure(name)
    if not seeds:
        raise ConfigError("give at least one seed")
    dataset = table_dataset(TABLE, dataset=dataset, root=root)
    n_labeled = labeled_count(PERCENT, train_size(dataset, root=root))

    def spec(row: str, method: str, overrides: tuple[str, ...], seed: int) -> RunSpec:
        return RunSpec(TABLE, row, method, dataset, PERCENT, n_labeled, scale, seed, overrides)

    iterations = config_of(spec(REFERENCE, "dycon", (), seeds[0])).train.iterations
    val = (
        (f"train.val_every={val_every(iterations)}",) if has_validation(dataset, root=root) else ()
    )
    tracked = (*val, f"train.snapshots=[{','.join(str(float(f)) for f in SNAPSHOTS)}]")
    rows = {
        "lesion-size": [
            (REFERENCE, "dycon", ()),
            ("DyCON w/o FeCL", "dycon", ("method.use_fecl=false",)),
            ("MT", "mt", ()),
        ],
        "overlays": [(REFERENCE, "dycon", ()), ("MT", "mt", ())],
        "curves": [(REFERENCE, "dycon", tracked), ("MT", "mt", val)],
        "gradcam": [(REFERENCE, "dycon", tracked)],
    }[name]
    if name in ("gradcam", "overlays"):  # pictures of one run: the first seed
        seeds = seeds[:1]
    return [spec(row, m, o, int(s)) for row, m, o in rows for s in seeds]


def by_row(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    out: dict[str, list[RunResult]] = {}
    for r in results:
        out.setdefault(r.spec.row, []).append(r)
    return out


def held_out(spec: RunSpec, *, root: str | Path | None = None):
    """The test cases (the test list) of ``spec``'s dataset (``.ids``, ``.load(i)`` -> Volume)."""
    from .engine.datasets import dataset_folder, split_cases

    cfg = config_of(spec, device="cpu")
    return split_cases(cfg, cfg.data.test_list, folder=dataset_folder(cfg, root=root))


def as_bins(bins) -> tuple:
    """``bins`` from a notebook parameter: ``None`` -> :data:`BINS`; a ``None`` bound -> inf."""
    if bins is None:
        return BINS
    return tuple((str(n), float(lo), math.inf if hi is None else float(hi)) for n, lo, hi in bins)


# ---------------------------------------------------------------------------- lesion size
def lesion_studies(
    results: Sequence[RunResult], *, root=None, bins=BINS, iou_threshold: float = 0.1
) -> dict[str, LesionStudy]:
    """Per-lesion records of every row's saved test predictions, seeds pooled (with several
    seeds a case id becomes ``<case>@seed<N>``, so the methods still pair lesion by lesion)."""
    test = held_out(results[0].spec, root=root)
    gts = {case: test.load(i).label > 0 for i, case in enumerate(test.ids)}
    several = len({r.spec.seed for r in results}) > 1
    studies = {}
    for row, runs in by_row(results).items():
        study = LesionStudy()
        for r in runs:
            one = analyze_run(r.run_dir, gts, bins=bins, iou_threshold=iou_threshold)
            for x in (*one.lesions, *one.cases):
                x["case"] = f"{x['case']}@seed{r.spec.seed}" if several else x["case"]
            study.lesions.extend(one.lesions)
            study.cases.extend(one.cases)
        studies[row] = study
    return studies


def lesion_numbers(studies: dict[str, LesionStudy], *, bins=BINS, n_boot: int = 2000) -> dict:
    """Per-bin rates and Dice per row (plus an ``all`` bin), and ``DyCON - row`` differences
    with paired bootstrap intervals; per-case records and the lesion count of every case."""
    summaries = {
        row: bin_summary(s.lesions, bins=bins, n_boot=n_boot, include_all=True)
        for row, s in studies.items()
    }
    differences = {
        row: [
            d
            for d in compare_methods(
                s.lesions,
                studies[REFERENCE].lesions,
                names=(row, REFERENCE),
                bins=bins,
                n_boot=n_boot,
                include_all=True,
            )
            if d["kind"] == "difference"
        ]
        for row, s in studies.items()
        if row != REFERENCE and REFERENCE in studies
    }
    first = next(iter(studies.values()))
    return {
        "bins": summaries,
        "differences": differences,
        "cases": {row: s.cases for row, s in studies.items()},
        "lesions_per_case": {c["case"]: c["n_lesions"] for c in first.cases},
    }


def plot_lesion_bins(summaries: dict[str, list[dict]], *, iou_threshold: float = 0.1):
    """Detection (overlap, IoU) and per-lesion Dice per size bin, one bar per row, 95 % CIs."""
    fig, axes = _figure((12.0, 3.8), 1, 3)
    rows = list(summaries)
    bins = summaries[rows[0]]
    x = np.arange(len(bins))
    width = 0.8 / len(rows)
    titles = {
        "detection": "detected (overlap ≥ 1 voxel)",
        "detection_iou": f"detected (IoU ≥ {iou_threshold:g})",
        "dice": "per-lesion Dice",
    }
    for ax, (key, title) in zip(axes[0], titles.items(), strict=True):
        for j, row in enumerate(rows):
            v = np.array([b[_VALUE[key]] for b in summaries[row]], dtype=float)
            lo = np.array([b[f"{key}_low"] for b in summaries[row]], dtype=float)
            hi = np.array([b[f"{key}_high"] for b in summaries[row]], dtype=float)
            ok = np.isfinite(v)
            err = np.nan_to_num([v - lo, hi - v])[:, ok].clip(0)
            pos = x[ok] - 0.4 + width * (j + 0.5)
            ax.bar(pos, v[ok], width, yerr=err, capsize=2, color=f"C{j}", label=row)
        ax.set_xticks(x, [_bin_label(b) for b in bins], fontsize="small")
        ax.set(title=title, ylabel="%", ylim=(0, 105))
        ax.grid(axis="y", alpha=0.3)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside upper center", ncol=len(rows))
    return fig


def plot_lesion_cases(numbers: dict):
    """Per-case Dice vs total lesion volume (each row), and lesions per case (ground truth)."""
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    fig, axes = _figure((11.0, 3.8), 1, 2)
    ax, hist = axes[0]
    empty = 0
    for j, (row, cases) in enumerate(numbers["cases"].items()):
        shown = [c for c in cases if c["total_volume_ml"] > 0]  # no place on a log axis
        empty = len(cases) - len(shown)
        vol = [c["total_volume_ml"] for c in shown]
        ax.scatter(vol, [c["dice"] for c in shown], s=18, color=f"C{j}", label=row, alpha=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.xaxis.set_minor_formatter(StrMethodFormatter("{x:g}"))
    ax.set(xlabel="total lesion volume (mL)", ylabel="case Dice (%)", ylim=(-5, 105))
    title = "per case" + (f" ({empty} without lesion not shown)" if empty else "")
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small")
    counts = np.array(list(numbers["lesions_per_case"].values()), dtype=int)
    edges = np.arange(counts.max(initial=0) + 2) - 0.5
    hist.hist(counts, bins=edges, color="0.5", edgecolor="white")
    hist.set(xlabel="lesions per case (ground truth)", ylabel="cases")
    hist.set_title(f"{counts.size} test cases, {counts.sum()} lesions", fontsize="medium")
    for a in (hist.xaxis, hist.yaxis):
        a.set_major_locator(MaxNLocator(integer=True))
    for a in (ax, hist):
        a.grid(alpha=0.3)
    return fig


def _bin_label(b: dict) -> str:
    if b["bin"] == "all":
        return f"all\nn={b['n_lesions']}"
    size = f"≥ {b['low_ml']:g}" if math.isinf(b["high_ml"]) else f"{b['low_ml']:g}–{b['high_ml']:g}"
    return f"{b['bin']}\n{size} mL\nn={b['n_lesions']}"


# ---------------------------------------------------------------------------- curves
def curve_numbers(results: Sequence[RunResult]) -> dict:
    """Final loss, validation Dice (final, best and its step) of each run's log."""
    from .analysis.curves import read_log

    out = {}
    for r in results:
        lg = read_log(r.run_dir, name=curve_label(r, results))
        val = lg.val_dice
        best = int(np.nanargmax(val)) if np.isfinite(val).any() else None
        out[lg.name] = {
            "final_loss": float(lg.loss[-1]) if lg.loss.size else None,
            "val_points": int(val.size),
            "final_val_dice": float(val[-1]) if val.size else None,
            "best_val_dice": None if best is None else float(val[best]),
            "best_val_step": None if best is None else int(lg.val_steps[best]),
            "terms": list(lg.terms),
        }
    return out


def curve_label(r: RunResult, results: Sequence[RunResult]) -> str:
    several = len({x.spec.seed for x in results}) > 1
    return f"{r.spec.row} (seed {r.spec.seed})" if several else r.spec.row


# ---------------------------------------------------------------------------- grad-cam
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
    from .analysis.gradcam import gradcam_volume
    from .analysis.overlays import pick_slices
    from .engine.checkpoint import load_checkpoint
    from .engine.trainer import build_model, resolve_device

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
    model = build_model(cfg).to(resolve_device(device))
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
        load_checkpoint(path, nets={cfg.eval.model: model}, optimizers={}, restore_rng=False)
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
                "mean": _nanmean(v),
                "n": int(np.isfinite(v).sum()),
                "n_blank": int(np.isnan(v).sum()),
            }
            for s, v in inside.items()
        },
    }


def plot_gradcam(panels: list[dict], steps: Sequence[int], iterations: int, *, size: float = 2.2):
    """One row per case: the slice with the lesion contour, then the map at each snapshot."""
    columns = 1 + len(steps)
    fig, axes = _figure(
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
                title = "image + lesion" if c == 0 else _step_title(steps[c - 1], iterations)
                ax.set_title(title, fontsize="small")
        axes[r][0].set_ylabel(f"{p['case']}\nslice {p['slice']}", fontsize="small")
    fig.colorbar(image, ax=axes, shrink=0.8, label="Grad-CAM")
    return fig


def _step_title(step: int, iterations: int) -> str:
    return f"step {step} ({100 * step / iterations:.0f} %)"


# ---------------------------------------------------------------------------- overlays
def overlay_cases(results: Sequence[RunResult], *, root=None, n_cases: int = 3) -> list:
    """``OverlayCase``s of the first ``n_cases`` test cases (those with a lesion first), with
    each row's prediction (its first run)."""
    from .analysis.overlays import OverlayCase
    from .engine.evaluate import load_prediction

    runs = {row: rs[0] for row, rs in by_row(results).items()}
    test = held_out(results[0].spec, root=root)
    lesion, empty = [], []
    for i in range(len(test.ids)):
        if len(lesion) >= n_cases:
            break
        v = test.load(i)
        (lesion if v.label.any() else empty).append(v)
    cases = []
    for v in (lesion + empty)[:n_cases]:
        preds = {}
        for row, r in runs.items():
            path = r.run_dir / "predictions" / f"{v.case_id}.npz"
            if not path.is_file():
                raise ConfigError(f"{path} is missing: evaluate with eval.save_predictions=true")
            preds[row] = load_prediction(path)[0]
        cases.append(OverlayCase(v.case_id, v.image, v.label > 0, preds))
    return cases


def overlay_numbers(results: Sequence[RunResult], cases: list) -> dict:
    runs = {row: rs[0] for row, rs in by_row(results).items()}
    dice = {row: {c["case"]: float(c["dice"]) for c in r.per_case} for row, r in runs.items()}
    return {
        "cases": [
            {"case": c.case, "lesion_voxels": int(np.count_nonzero(c.gt))}
            | {"dice": {row: dice[row].get(c.case, math.nan) for row in runs}}
            for c in cases
        ]
    }


# ---------------------------------------------------------------------------- glue and record
def glue_values(name: str, numbers: dict) -> dict[str, str]:
    """Formatted numbers for myst-nb glue, keys ``fig_<name>_...`` (see each branch)."""
    out, pre = {}, "fig_" + slug(name)
    if name == "lesion-size":
        for row, bins in numbers["bins"].items():
            for b in bins:
                for key, value in _VALUE.items():
                    ci = (b[value], b[f"{key}_low"], b[f"{key}_high"], b["n_lesions"])
                    out[f"{pre}_{slug(row)}_{slug(b['bin'])}_{key}"] = fmt_ci(*ci)
        for row, diffs in numbers["differences"].items():
            for d in diffs:
                key = _METRIC[d["metric"]]
                name_ = f"{pre}_{slug(REFERENCE)}_minus_{slug(row)}_{slug(d['bin'])}_{key}"
                out[name_] = fmt_ci(d["value"], d["low"], d["high"], d["n"], sign=True)
    elif name == "curves":
        for label, c in numbers["runs"].items():
            for key in ("final_val_dice", "best_val_dice", "final_loss"):
                out[f"{pre}_{slug(label)}_{key}"] = _fmt(c[key], 3 if key == "final_loss" else 2)
    elif name == "gradcam":
        for step, m in numbers["mean_inside"].items():
            out[f"{pre}_inside_step{step}"] = f"{_fmt(100 * m['mean'], 1)} % (n = {m['n']})"
    elif name == "overlays":
        for c in numbers["cases"]:
            for row, value in c["dice"].items():
                out[f"{pre}_{slug(c['case'])}_{slug(row)}_dice"] = _fmt(value)
    return out


def to_markdown(name: str, numbers: dict) -> str:
    """The key numbers of figure ``name`` as a Markdown table."""
    if name == "lesion-size":
        head = "| bin | lesions | method | detected (overlap) | detected (IoU) | lesion Dice |"
        lines = [head, "|---|---|---|---|---|---|"]
        for row, bins in numbers["bins"].items():
            for b in bins:
                cells = [fmt_ci(b[v], b[f"{k}_low"], b[f"{k}_high"]) for k, v in _VALUE.items()]
                lines.append(f"| {b['bin']} | {b['n_lesions']} | {row} | {' | '.join(cells)} |")
        for row, diffs in numbers["differences"].items():
            cells: dict = {}
            for d in diffs:
                cells.setdefault(d["bin"], [d["n"]]).append(
                    fmt_ci(d["value"], d["low"], d["high"], sign=True)
                )
            for b, (n, *c) in cells.items():
                lines.append(f"| {b} | {n} | {REFERENCE} − {row} | {' | '.join(c)} |")
        return "\n".join(lines)
    if name == "curves":
        lines = ["| run | final loss | validation Dice: final | best (step) |", "|---|---|---|---|"]
        for label, c in numbers["runs"].items():
            best = f"{_fmt(c['best_val_dice'])} ({c['best_val_step'] or '—'})"
            lines.append(
                f"| {label} | {_fmt(c['final_loss'], 3)} | {_fmt(c['final_val_dice'])} | {best} |"
            )
        return "\n".join(lines)
    if name == "gradcam":
        steps = numbers["steps"]
        heads = [f"map in lesion (%), {_step_title(s, numbers['iterations'])}" for s in steps]
        lines = [
            "| case | lesion (% of volume) | " + " | ".join(heads) + " |",
            "|---" * (2 + len(steps)) + "|",
        ]
        for c in numbers["cases"]:
            cells = " | ".join(_fmt(100 * c["inside"][s], 1) for s in steps)
            lines.append(f"| {c['case']} | {_fmt(100 * c['lesion_fraction'], 2)} | {cells} |")
        return "\n".join(lines)
    rows = list(numbers["cases"][0]["dice"]) if numbers["cases"] else []
    lines = ["| case | lesion voxels | " + " | ".join(f"{r} Dice" for r in rows) + " |"]
    lines.append("|---" * (2 + len(rows)) + "|")
    for c in numbers["cases"]:
        cells = " | ".join(_fmt(c["dice"][r]) for r in rows)
        lines.append(f"| {c['case']} | {c['lesion_voxels']} | {cells} |")
    return "\n".join(lines)


def save_figure(
    name: str,
    dest: str | Path,
    *,
    results: Sequence[RunResult],
    pngs: dict[str, bytes],
    numbers: dict,
    notes: Sequence[str] = (),
    seconds: float = 0.0,
) -> Path:
    """``dest/figure.json`` (banner, runs, numbers, each PNG's pixel size), ``summary.md`` and
    the PNGs; ``dest`` is replaced whole through a staging folder and renames."""
    from .report import banner

    record = {
        "figure": name,
        "banner": banner(list(results), notes=list(notes)),
        "data_notes": list(notes),
        "notebook_seconds": round(seconds, 1),
        "environment": results[0].summary.get("environment", {}) if results else {},
        "runs": [
            {"run_id": r.run_id, "row": r.spec.row, "seed": r.spec.seed, "percent": r.spec.percent}
            for r in results
        ],
        "figures": {
            f: dict(zip(("width_px", "height_px"), png_size(b), strict=True))
            for f, b in pngs.items()
        },
        "numbers": _clean(numbers),
    }
    dest = Path(dest)
    with staged_folder(dest) as staging:
        for fname, data in pngs.items():
            (staging / fname).write_bytes(data)
        (staging / "figure.json").write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
        (staging / "summary.md").write_text(to_markdown(name, numbers) + "\n")
    return dest


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


def _fmt(x, digits: int = 2) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _nanmean(values) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan


def _clean(x):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, tuple keys and values -> str/list."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _figure(figsize: tuple[float, float], rows: int, cols: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


__all__ = [
    "FIGURES",
    "SNAPSHOTS",
    "check_figure",
    "curve_numbers",
    "figure_runs",
    "glue_values",
    "gradcam_numbers",
    "gradcam_panels",
    "lesion_numbers",
    "lesion_studies",
    "overlay_cases",
    "overlay_numbers",
    "plot_gradcam",
    "plot_lesion_bins",
    "plot_lesion_cases",
    "save_figure",
    "to_markdown",
]
