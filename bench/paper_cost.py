"""Estimated GPU cost of each paper table at the paper scale: counted FLOPs, assumed throughput.

    python bench/paper_cost.py                   # Tables 1-5, one seed, 25 and 100 TFLOP/s
    python bench/paper_cost.py --seeds 3         # three seeds per (row, labeled percentage)
    python bench/paper_cost.py --tflops 12,40    # other assumed sustained throughputs
    python bench/paper_cost.py --tables 2,4      # some tables only

Counted, not timed: FLOPs (torch.utils.flop_counter.FlopCounterMode, which counts convolutions
and matrix products, 2 FLOPs per multiply-add) of one forward and one backward of each model at
each patch, on the "meta" device (no memory, no data, seconds). A training step is composed from
what the method's code pushes through the networks (``METHOD_COUNTING`` says what, per method),
times ``train.iterations``; evaluation is the official sliding window (``window_starts`` of
``dycon.engine.inference``) over a typical test volume (``TYPICAL_SHAPES``, an assumption) times
the test cases. Nothing reads a data folder.

Assumed, not measured: the sustained throughput that turns FLOPs into GPU-hours (``--tflops``,
default 25 and 100 TFLOP/s: 3-D convolutions on an A100/H100-class GPU in bf16 or TF32). No GPU
run has measured it here; ``bench/train_step.py`` on CUDA does, and its achieved TFLOP/s (shown
under ``throughput_cross_check`` once ``results/bench/train_step-cuda.json`` exists) is what to
pass to ``--tflops``. Writes results/bench/paper-cost.json and paper-cost.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from _machine import machine_info  # noqa: E402

from dycon.data.datasets import DATASETS  # noqa: E402

ASSUMED_TFLOPS = (25.0, 100.0)
# Cases per split, as each dataset declares them in dycon/data/datasets.py (the pinned lists;
# isles22: our seeded 200 / 50 split). Train counts only give the labeled count of a percentage.
TRAIN_CASES = {name: d.train_cases for name, d in DATASETS.items()}
TEST_CASES = {name: d.test_cases for name, d in DATASETS.items()}
# A typical test volume (x, y, z) as the evaluation sees it (the volume's own grid; z takes the
# fine stride). Assumptions; the source of each is given. Evaluation is a few % of a run, so
# these shapes move the totals little.
TYPICAL_SHAPES = {
    "isles22": {
        "shape": (112, 112, 72),
        "source": "exact: the fixed 2 mm grid of dycon/data/prepare/isles22.py (SHAPE)",
    },
    "brats19": {
        "shape": (140, 170, 140),
        "source": (
            "assumed: an adult brain's bounding box at 1 mm (SSL4MIS crops FLAIR to its non-zero "
            "box; datasets notes section 1.2 give only the raw 240x240x155 grid); unverified"
        ),
    },
    "pancreas": {
        "shape": (185, 152, 140),
        "source": (
            "x, y: middle of MC-Net's printed ranges (145-225) x (145-159) at 1 mm, datasets "
            "notes section 1.3 (the same pancreas box +-25 voxels); z: assumed ~90 mm of pancreas "
            "+ 2 x 25 voxels for the 3-D crop of dycon/data/prepare/pancreas.py; unverified"
        ),
    },
    "la": {
        "shape": (190, 142, 88),
        "source": "median of UA-MT's 100 h5 files, datasets notes section 1.4 (measured there)",
    },
    "isles-sim": {"shape": (64, 64, 48), "source": "exact: the isles-sim grid"},
}
METHOD_COUNTING = {
    "supervised": (
        "student forward + backward on the labeled rows only (data.labeled_batch_size); no "
        "teacher (dycon/methods/supervised.py slices batch.image[:n] before the network)"
    ),
    "mt": (
        "student forward + backward on the whole batch (data.batch_size); one EMA-teacher "
        "forward, no backward, on the whole batch too: dycon/methods/mean_teacher.py feeds "
        "the noisy full batch to the teacher and only then keeps the unlabeled rows"
    ),
    "ua-mt": (
        "student forward + backward on the whole batch; 1 + T (method.mc_passes, 8) teacher "
        "forwards, no backward, on the consistency rows only (the unlabeled rows by default, "
        "consistency_on='unlabeled'): one for p_t and T for the uncertainty "
        "(dycon/methods/ua_mt.py)"
    ),
    "dycon": (
        "student forward + backward on the whole batch (the backward also runs through the "
        "projection head when FeCL is on); one teacher forward, no backward, on the whole "
        "batch (dycon/methods/dycon.py: no extra passes; UnCL, FeCL and the optional MT term "
        "reuse these outputs); plus the FeCL similarity products, forward + backward, on its "
        "rows (fecl_on, all rows by default), counted on one sample of the real token count "
        "(embedding grid) on the CPU, times the rows"
    ),
    "dtc": (
        "student forward + backward on the whole batch, no teacher (dycon/methods/dtc.py); the "
        "SDF head is a 1x1x1 conv, and the target SDF a CPU distance transform, not counted"
    ),
    "urpc": (
        "student forward + backward on the whole batch, no teacher (dycon/methods/urpc.py); "
        "the three deep-supervision heads are 1x1x1 convs plus upsampling, not counted"
    ),
    "acmt": (
        "student forward + backward on the whole batch; one teacher forward, no backward, on "
        "the unlabeled rows; selector 'mu' adds method.mc_passes forwards, no backward, on "
        "the unlabeled rows through method.mc_network (dycon/methods/acmt.py)"
    ),
    "bcp": (
        "per step of the run, the mean over its two stages (dycon/methods/bcp.py): in the "
        "labeled-only pre-training stage (method.pretrain_fraction of the steps) student forward "
        "+ backward on the labeled rows, mixed in pairs; in the main stage student forward + "
        "backward on 2 x min(labeled, unlabeled) mixed rows (each pair in both directions) and "
        "one teacher forward, no backward, on the min(labeled, unlabeled) clean unlabeled rows; "
        "the largest-component step on the pseudo-labels is a CPU pass, not counted"
    ),
    "magicnet": (
        "student forward + backward on the whole batch twice (the batch, and its cross-image "
        "cube mix) and on every cube of method.cube_grid alone (batch x cells cubes, counted "
        "at the cube size); one teacher forward, no backward, on the unlabeled rows "
        "(dycon/methods/magicnet.py); the location head (two small FC layers on the pooled "
        "bottleneck) is not counted"
    ),
    "cps": (
        "two trainable networks of one architecture, each forward + backward on the whole "
        "batch, no teacher (dycon/methods/cps.py); the peer's passes are the peer_* parts, "
        "shown in the student fwd+bwd column of the markdown"
    ),
    "dycon (framework ct)": (
        "as cps, plus FeCL's products for each of the two networks on its rows (their backward "
        "runs through the projection head when FeCL is on); no EMA teacher "
        "(dycon/methods/dycon.py, preset dycon-ct)"
    ),
    "mcf": (
        "two trainable networks of different architectures (method.subnets: VNet and UNet3D, "
        "each counted as itself), each forward + backward on the whole batch "
        "(dycon/methods/mcf.py); evaluation counts both networks' forwards per window "
        "(eval.model ensemble)"
    ),
    "cml": (
        "per step of the run, the mean over its two stages (dycon/methods/cml.py): both "
        "networks forward + backward (through the embedding: the conflict loss) on the labeled "
        "rows in the pre-training stage and on the whole batch in the main stage, where each "
        "adds one forward, no backward, on the unlabeled rows (the pseudo-labels); the "
        "largest-component step is a CPU pass, not counted; evaluation counts both forwards "
        "(ensemble)"
    ),
    "galoss": (
        "its host's passes (method.host, cps by default: dycon/methods/galoss.py replaces the "
        "host's losses only, every network pass is the host's); the top-k over voxels of GACE "
        "is a sort, not a FLOP here"
    ),
}
NOT_COUNTED = (
    "FlopCounterMode counts convolutions and matrix products only: normalisation, activations, "
    "softmax, the element-wise parts of the losses (Dice, CE, UnCL, entropies), the SGD and EMA "
    "updates and data loading are not FLOPs here. They are memory-bound and are one reason why a "
    "GPU sustains far less than its peak on these networks."
)


_MODELS: dict[tuple, dict] = {}  # (model fields, patch) -> counts
_FECL: dict[tuple, int] = {}  # (tokens, dim, options) -> FLOPs of one sample


def _model_counts(cfg, patch: tuple[int, int, int]) -> dict:
    from dycon.config import to_dict
    from dycon.models import build_model

    key = (json.dumps(to_dict(cfg.model), sort_keys=True), patch)
    if key not in _MODELS:
        _MODELS[key] = {"model": cfg.model.name, **_count_model(build_model, cfg, patch)}
    return _MODELS[key]


def _count_model(build_model, cfg, patch) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    def count(device: str) -> dict:
        with torch.device(device):
            model = build_model(cfg.model)
        model.train()
        x = torch.zeros(1, cfg.model.in_channels, *patch, device=device)
        with FlopCounterMode(display=False) as fc:
            out = model(x)
        forward = fc.get_total_flops()
        backward = {}
        for name, outputs in (
            ("logits", ("logits",)),
            ("logits+embedding", ("logits", "embedding")),
        ):
            out = model(x)  # a fresh graph per backward
            loss = sum(getattr(out, k).float().sum() for k in outputs)
            with FlopCounterMode(display=False) as fc:
                loss.backward()
            backward[name] = fc.get_total_flops()
            model.zero_grad(set_to_none=True)
        return {
            "params": sum(p.numel() for p in model.parameters()),
            "forward": forward,
            "backward": backward,
            "embedding_grid": list(out.embedding.shape[2:]),
            "embedding_dim": int(out.embedding.shape[1]),
            "counted_on": device,
        }

    try:
        return count("meta")
    except (NotImplementedError, RuntimeError) as err:  # an op without a meta kernel
        result = count("cpu")
        result["meta_failed"] = f"{type(err).__name__}: {err}"[:300]
        return result


def model_flops(cfg, patch: tuple[int, int, int] | None = None) -> dict:
    """FLOPs of one sample (batch 1) through ``cfg``'s model at ``patch`` (default data.patch):
    ``forward``, ``backward`` (dict: from the logits only, or logits + embedding), ``params``,
    ``embedding_grid``/``embedding_dim`` (FeCL's tokens), ``counted_on`` ("meta", or "cpu" where
    an op had no meta kernel: ``meta_failed`` says which). Conv FLOPs are linear in the batch."""
    return _model_counts(cfg, tuple(patch or cfg.data.patch))


def _fecl_per_row(tokens: int, dim: int, options: tuple) -> int:
    key = (tokens, dim, options)
    if key not in _FECL:
        _FECL[key] = _count_fecl(tokens, dim, options)
    return _FECL[key]


def _count_fecl(tokens: int, dim: int, options: tuple) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dycon.losses import fecl_loss, fecl_options

    allowed = fecl_options(dict(options)["variant"])  # the chosen variant's own options
    opts = {k: v for k, v in options if k == "variant" or k in allowed}
    hard, entropy = opts.pop("hard_negatives"), opts.pop("entropy_weighting")
    gen = torch.Generator().manual_seed(0)
    # One sample on the CPU (the streaming loss has no meta path): contrast stays within a
    # sample, so the products are linear in the rows; ~13 GFLOP at 2,352 tokens of 256.
    z = torch.randn(1, tokens, dim, generator=gen, requires_grad=True)
    labels = torch.randint(0, 2, (1, tokens), generator=gen)
    teacher = torch.randn(1, tokens, dim, generator=gen) if hard else None
    ent = torch.rand(1, tokens, generator=gen) if entropy else None
    with FlopCounterMode(display=False) as fc:
        fecl_loss(
            z,
            labels,
            teacher_tokens=teacher,
            entropy=ent,
            hard_negatives=hard,
            entropy_weighting=entropy,
            **opts,
        ).backward()
    return fc.get_total_flops()


def fecl_flops(cfg, rows: int, tokens: int, dim: int) -> float:
    """FeCL forward + backward FLOPs for ``rows`` samples of ``tokens`` tokens of ``dim``:
    counted on one sample (CPU, random tokens, two classes), times ``rows``."""
    if rows == 0:
        return 0.0
    mc = cfg.method
    options = (
        ("variant", mc["fecl_variant"]),
        ("focal", mc["focal"]),
        ("hard_negatives", mc["hard_negatives"]),
        ("entropy_weighting", mc["entropy_weighting"]),
        ("similarity_form", mc["similarity_form"]),
        ("hard_negative_form", mc["hard_negative_form"]),
        ("top_k", mc["top_k"]),
    )
    return rows * _fecl_per_row(tokens, dim, options)


def _ua_mt(cfg, batch, labeled, unlabeled) -> dict:
    rows = unlabeled if cfg.method["consistency_on"] == "unlabeled" else batch
    return {"teacher_rows": rows, "teacher_passes": 1 + cfg.method["mc_passes"] if rows else 0}


def _dycon(cfg, batch, labeled, unlabeled) -> dict:
    p = {"teacher_rows": batch, "teacher_passes": 1}
    co_training = cfg.method.get("framework", "mt") == "ct"
    if co_training:  # the peer trains in the teacher's place
        p = {"peer_rows": batch}
    if cfg.method["use_fecl"]:
        p["fecl_rows"] = unlabeled if cfg.method["fecl_on"] == "unlabeled" else batch
        if p["fecl_rows"]:
            p["backward_from"] = "logits+embedding"
        p["fecl_rows"] *= 2 if co_training else 1  # each network against its partner
    return p


def _cml(cfg, batch, labeled, unlabeled) -> dict:
    return {
        "peer_rows": batch,
        "backward_from": "logits+embedding",
        "mc_passes": 2,  # one no-grad forward of each network on the unlabeled rows
        "pretrain_rows": labeled,
        "pretrain_share": _pretrain_share(cfg),
    }


def _acmt(cfg, batch, labeled, unlabeled) -> dict:
    p = {"teacher_rows": unlabeled, "teacher_passes": 1 if unlabeled else 0}
    if cfg.method["selector"] == "mu" and unlabeled:
        p["mc_passes"] = cfg.method["mc_passes"]  # no-grad passes, student or teacher alike
    return p


def _bcp(cfg, batch, labeled, unlabeled) -> dict:
    pairs = min(labeled, unlabeled)
    return {
        "student_rows": 2 * pairs,
        "teacher_rows": pairs,
        "teacher_passes": 1,
        "pretrain_rows": labeled,
        "pretrain_share": _pretrain_share(cfg),
    }


def _magicnet(cfg, batch, labeled, unlabeled) -> dict:
    grid = cfg.method["cube_grid"]
    cube = [p // g for p, g in zip(cfg.data.patch, grid, strict=True)]
    return {
        "student_rows": 2 * batch,
        "teacher_rows": unlabeled,
        "teacher_passes": 1 if unlabeled else 0,
        "cube_rows": batch * math.prod(grid),
        "cube_patch": cube,
    }


# What differs from "student forward + backward on the whole batch, nothing else" (METHOD_COUNTING)
_PASS_RULES = {
    "supervised": lambda cfg, batch, labeled, unlabeled: {"student_rows": labeled},
    "mt": lambda cfg, batch, labeled, unlabeled: {"teacher_rows": batch, "teacher_passes": 1},
    "ua-mt": _ua_mt,
    "dycon": _dycon,
    "dtc": lambda *_: {},
    "urpc": lambda *_: {},
    "acmt": _acmt,
    "bcp": _bcp,
    "magicnet": _magicnet,
    "cps": lambda cfg, batch, labeled, unlabeled: {"peer_rows": batch},
    "mcf": lambda cfg, batch, labeled, unlabeled: {"peer_rows": batch},
    "cml": _cml,
    # GALoss: the host's rule; CPS's (the only host) reads no field GALoss does not share
    "galoss": lambda cfg, *rows: _PASS_RULES[cfg.method["host"]](cfg, *rows),
}


def step_passes(cfg) -> dict:
    """What one training step of ``cfg`` pushes through its networks (``METHOD_COUNTING``):
    student rows (forward + backward, ``backward_from`` those outputs), teacher rows x passes,
    no-grad MC passes over the unlabeled rows, FeCL rows, a second trainable network's rows;
    for a method with a labeled-only stage, that stage's share of the steps and its rows."""
    if cfg.method_name not in _PASS_RULES:
        raise ValueError(f"no FLOP rule for method {cfg.method_name!r}; add one to METHOD_COUNTING")
    batch, labeled = cfg.data.batch_size, cfg.data.labeled_batch_size
    return {
        "student_rows": batch,
        "teacher_rows": 0,
        "teacher_passes": 0,
        "mc_passes": 0,
        "fecl_rows": 0,
        "backward_from": "logits",
        "pretrain_rows": 0,
        "pretrain_share": 0.0,
        "cube_rows": 0,  # student forward + backward on cubes of cube_patch (MagicNet)
        "cube_patch": None,
        "peer_rows": 0,  # forward + backward of a second trainable network ("peer")
        **_PASS_RULES[cfg.method_name](cfg, batch, labeled, batch - labeled),
    }


def step_flops(cfg) -> dict:
    """FLOPs of one training step of ``cfg``: ``total`` and its parts (student forward and
    backward, teacher forwards, FeCL), the rows and passes counted, and ``rule_of_three`` (the
    same step with backward = 2 x forward) for comparison. See ``METHOD_COUNTING``; with a
    labeled-only stage, the mean step of the run."""
    counts = model_flops(network_cfg(cfg, "student"))
    fwd, p = counts["forward"], step_passes(cfg)
    unlabeled = cfg.data.batch_size - cfg.data.labeled_batch_size
    backward = counts["backward"][p["backward_from"]]
    tokens = math.prod(counts["embedding_grid"])
    parts = {
        "student_forward": p["student_rows"] * fwd,
        "student_backward": p["student_rows"] * backward,
        "teacher_forward": p["teacher_rows"] * p["teacher_passes"] * fwd,
        "mc_forward": unlabeled * p["mc_passes"] * fwd,
        "fecl": fecl_flops(cfg, p["fecl_rows"], tokens, counts["embedding_dim"]),
    }
    if p["cube_rows"]:  # counted at their own size
        cube = model_flops(cfg, tuple(p["cube_patch"]))
        parts["student_forward"] += p["cube_rows"] * cube["forward"]
        parts["student_backward"] += p["cube_rows"] * cube["backward"][p["backward_from"]]
    trained = ["student"]
    if p["peer_rows"]:  # only two-network methods have these parts: the others' output stays
        peer = model_flops(network_cfg(cfg, "peer"))
        parts["peer_forward"] = p["peer_rows"] * peer["forward"]
        parts["peer_backward"] = p["peer_rows"] * peer["backward"][p["backward_from"]]
        trained.append("peer")
    rule = 3 * sum(parts[f"{n}_forward"] for n in trained) + sum(
        parts[k] for k in ("teacher_forward", "mc_forward", "fecl")
    )
    share = p["pretrain_share"]
    if share:  # the labeled-only stage trains the student (and a peer) on the labeled rows
        pre = {"student_forward": p["pretrain_rows"] * fwd}
        pre["student_backward"] = p["pretrain_rows"] * backward
        if p["peer_rows"]:
            pre["peer_forward"] = p["pretrain_rows"] * peer["forward"]
            pre["peer_backward"] = p["pretrain_rows"] * peer["backward"][p["backward_from"]]
        parts = {k: (1 - share) * v + share * pre.get(k, 0) for k, v in parts.items()}
        rule = (1 - share) * rule + share * 3 * sum(pre[f"{n}_forward"] for n in trained)
    return {
        "total": sum(parts.values()),
        "parts": parts,
        **({"peer_rows": p["peer_rows"]} if p["peer_rows"] else {}),
        **{k: p[k] for k in ("student_rows", "teacher_rows", "teacher_passes", "fecl_rows")},
        "fecl_tokens_per_row": tokens if p["fecl_rows"] else 0,
        "backward_from": p["backward_from"],
        "pretrain_share": share,
        "rule_of_three": rule,
    }


def network_cfg(cfg, name: str):
    """``cfg`` with the architecture (``model.name``) of the method's network ``name``: MCF's
    subnets differ. Other model overrides (DTC's SDF head, URPC's deep supervision) are small
    heads and stay uncounted, as the counting rules say."""
    import dataclasses

    from dycon.engine.networks import build_method

    specs = {s.name: s for s in build_method(cfg).networks}
    spec = specs[name] if specs[name].ema_of is None else specs[specs[name].ema_of]
    if "name" not in spec.model:
        return cfg
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=spec.model["name"]))


def _pretrain_share(cfg) -> float:
    """The fraction of the run's steps in the method's labeled-only stages."""
    from dycon.engine.networks import build_method

    stages = build_method(cfg).stages(cfg.train.iterations)
    return sum(s.steps for s in stages if s.labeled_only) / cfg.train.iterations


def windows_per_case(shape, patch, stride) -> int:
    """Sliding windows over a volume of ``shape``: padded up to the patch, then the start rule of
    ``dycon.engine.inference.window_starts`` on each axis (as ``sliding_window_predict``)."""
    from dycon.engine.inference import window_starts

    padded = [max(s, p) for s, p in zip(shape, patch, strict=True)]
    return math.prod(
        len(window_starts(s, p, st)) for s, p, st in zip(padded, patch, stride, strict=True)
    )


def eval_flops(cfg, shape=None, test_cases: int | None = None) -> dict:
    """Forward FLOPs of evaluating ``cfg`` on its test list: windows x forward x cases."""
    dataset = cfg.data.dataset
    shape = tuple(shape or TYPICAL_SHAPES[dataset]["shape"])
    cases = TEST_CASES[dataset] if test_cases is None else test_cases
    patch = tuple(cfg.eval.patch or cfg.data.patch)
    windows = windows_per_case(shape, patch, cfg.eval.stride)
    if cfg.eval.model == "ensemble":  # every trainable network, each its own architecture
        from dycon.engine.networks import build_method

        names = [s.name for s in build_method(cfg).networks if s.ema_of is None]
    else:
        names = [cfg.eval.model]
    fwd = sum(model_flops(network_cfg(cfg, n), patch)["forward"] for n in names)
    return {
        "patch": list(patch),
        "stride": list(cfg.eval.stride),
        "volume_shape": list(shape),
        "windows_per_case": windows,
        "test_cases": cases,
        "forward_per_window": fwd,
        "total": windows * fwd * cases,
    }


def gpu_hours(flops: float, tflops: float) -> float:
    """Hours at a sustained ``tflops`` TFLOP/s."""
    return flops / (tflops * 1e12) / 3600.0


def _hours(flops: float, throughputs) -> dict:
    return {f"{t:g}": gpu_hours(flops, t) for t in throughputs}


def table_runs(table: int, seeds: int) -> list[dict]:
    """The runs of ``table`` at the paper scale: rows x the paper's percentages x seeds."""
    from dycon.engine.presets import compose
    from dycon.engine.runs import run_id
    from dycon.experiments import FULL, TABLES, labeled_count

    spec = TABLES[table]
    dataset = spec["dataset"]
    cells = list(itertools.product(spec["percents"], spec["rows"]))
    if spec.get("upper_bound"):  # the fully supervised row: every training volume labeled
        cells.append((FULL, spec["upper_bound"]))
    runs = []
    for (pct, (label, method, overrides)), seed in itertools.product(
        cells, range(1337, 1337 + seeds)
    ):
        n_train = TRAIN_CASES[dataset]
        num_labeled = n_train if pct == FULL else labeled_count(pct, n_train)
        cfg = compose(
            dataset=dataset,
            method=method,
            scale="paper",
            overrides=[f"data.num_labeled={num_labeled}", f"train.seed={seed}", *overrides],
        )
        runs.append(
            {
                "table": table,
                "row": label,
                "method": method,
                "overrides": list(overrides),
                "percent": pct,
                "num_labeled": num_labeled,
                "seed": seed,
                "run_id": run_id(cfg),
                "cfg": cfg,
            }
        )
    return runs


def cost_run(run: dict, throughputs) -> dict:
    cfg = run.pop("cfg")
    step = step_flops(cfg)
    ev = eval_flops(cfg)
    train = step["total"] * cfg.train.iterations
    validation = "none (train.val_every=0, eval.select=final)"
    if cfg.train.val_every or cfg.eval.select == "best_val":
        validation = "configured but NOT counted"
    return {
        **run,
        "model": cfg.model.name,
        "patch": list(cfg.data.patch),
        "batch_size": cfg.data.batch_size,
        "labeled_batch_size": cfg.data.labeled_batch_size,
        "iterations": cfg.train.iterations,
        "amp": cfg.train.amp,
        "step_tflops": step["total"] / 1e12,
        "step_parts_tflops": {k: v / 1e12 for k, v in step["parts"].items()},
        "step_rows": {
            k: step[k]
            for k in (
                "student_rows",
                "teacher_rows",
                "teacher_passes",
                "fecl_rows",
                "backward_from",
            )
        }
        | ({"peer_rows": step["peer_rows"]} if "peer_rows" in step else {}),
        "step_tflops_rule_of_three": step["rule_of_three"] / 1e12,
        "train_tflops": train / 1e12,
        "eval": {
            **{k: v for k, v in ev.items() if k not in ("forward_per_window", "total")},
            "forward_gflops_per_window": ev["forward_per_window"] / 1e9,
        },
        "eval_tflops": ev["total"] / 1e12,
        "validation": validation,
        "total_tflops": (train + ev["total"]) / 1e12,
        "gpu_hours": _hours(train + ev["total"], throughputs),
    }


def _totals(runs: list[dict], throughputs) -> dict:
    train = sum(r["train_tflops"] for r in runs) * 1e12
    ev = sum(r["eval_tflops"] for r in runs) * 1e12
    return {
        "runs": len(runs),
        "train_tflops": train / 1e12,
        "eval_tflops": ev / 1e12,
        "total_tflops": (train + ev) / 1e12,
        "gpu_hours": _hours(train + ev, throughputs),
    }


def throughput_cross_check() -> list[dict]:
    """Achieved FLOP/s of the measured DyCON steps in results/bench/train_step-<device>.json:
    our counted step FLOPs divided by the measured seconds per step. Reported, not used."""
    from dycon.engine.presets import compose

    rows = []
    for path in sorted((ROOT / "results" / "bench").glob("train_step-*.json")):
        report = json.loads(path.read_text())
        for r in report.get("results", []):
            dataset = "brats19" if r["model"] == "unet3d" else "la"
            cfg = compose(
                dataset=dataset,
                method="dycon",
                scale="paper",
                overrides=[
                    f"model.name={r['model']}",
                    f"data.batch_size={r['batch']}",
                    f"data.labeled_batch_size={r['labeled']}",
                ],
            )
            if list(cfg.data.patch) != list(r["patch"]):
                continue  # a setting this script cannot rebuild from the presets
            step = step_flops(cfg)["total"]
            rows.append(
                {
                    "file": str(path.relative_to(ROOT)),
                    "device": report["machine"].get("device"),
                    "gpu": report["machine"].get("gpu"),
                    "setting": r["setting"],
                    "precision": r["precision"],
                    "batch": r["batch"],
                    "step_tflops_counted": step / 1e12,
                    "seconds_per_step_measured": r["seconds_per_step"],
                    "achieved_gflops_per_second": step / r["seconds_per_step"] / 1e9,
                    "load_average_at_start": report["machine"].get("load_average_at_start"),
                }
            )
    return rows


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"


def _load(value) -> str:
    return "unknown" if value is None else f"{value:.1f}"


def markdown(report: dict) -> str:
    tp = report["assumptions"]["sustained_tflops"]
    cols = " | ".join(f"GPU-h at {t:g} TFLOP/s" for t in tp)
    out = [
        "# Paper-scale GPU cost: counted FLOPs, assumed throughput",
        "",
        "Written by `bench/paper_cost.py`. FLOPs are **counted** (`FlopCounterMode` on the meta "
        "device, convolutions and matrix products only); GPU-hours are FLOPs divided by an "
        f"**assumed** sustained throughput of {' and '.join(f'{t:g}' for t in tp)} TFLOP/s "
        "(3-D convolutions on an A100/H100-class GPU in bf16 or TF32). No GPU run has measured "
        "that throughput here; `bench/train_step.py` on CUDA does, and its achieved rate replaces "
        "the assumption (`--tflops`). The low-channel full-resolution layers of these networks "
        "are often memory-bound, so the real rate may well fall below the low end.",
        "",
        f"Seeds per (row, labeled %): {report['seeds']}. Iterations per run: 20,000.",
        "",
        f"| table | dataset | runs | train PFLOP | eval PFLOP | {cols} |",
        "|---|---|---|---|---|" + "---|" * len(tp),
    ]
    for key, t in report["tables"].items():
        tot = t["totals"]
        hours = " | ".join(_fmt(tot["gpu_hours"][f"{x:g}"]) for x in tp)
        out.append(
            f"| {key} | {t['dataset']} | {tot['runs']} | {_fmt(tot['train_tflops'] / 1e3)} | "
            f"{_fmt(tot['eval_tflops'] / 1e3)} | {hours} |"
        )
    a = report["all_tables_unique_runs"]
    hours = " | ".join(_fmt(a["gpu_hours"][f"{x:g}"]) for x in tp)
    shared = "; ".join(" = ".join(w) for w in report["shared_runs"].values()) or "none"
    out += [
        f"| all, unique runs | | {a['runs']} | {_fmt(a['train_tflops'] / 1e3)} | "
        f"{_fmt(a['eval_tflops'] / 1e3)} | {hours} |",
        "",
        "Unique runs: a run that two tables share (the same configuration, so the same run id; "
        f"the second table reuses it) is counted once. Shared here: {shared}.",
        "",
        "## One sample through each model (counted)",
        "",
        "| model | patch | parameters | forward GFLOP | backward / forward | counted on |",
        "|---|---|---|---|---|---|",
    ]
    for m in report["models"]:
        out.append(
            f"| {m['model']} | {'x'.join(map(str, m['patch']))} | {m['params']:,} | "
            f"{m['forward_gflops']:.1f} | {m['backward_over_forward_logits']:.2f} | "
            f"{m['counted_on']} |"
        )
    out += [
        "",
        "## One training step per run type (counted, TFLOP)",
        "",
        "| table | row | model | batch | student fwd+bwd | teacher | FeCL | step | x 20k = run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    seen = set()
    for t in report["tables"].values():
        for r in t["runs"]:
            key = (r["table"], r["row"])
            if key in seen:
                continue
            seen.add(key)
            p = r["step_parts_tflops"]
            trained = sum(p.get(k, 0.0) for k in ("student_forward", "student_backward"))
            trained += sum(p.get(k, 0.0) for k in ("peer_forward", "peer_backward"))
            out.append(
                f"| {r['table']} | {r['row']} | {r['model']} | {r['batch_size']} "
                f"({r['labeled_batch_size']} lab.) | "
                f"{trained:.2f} | "
                f"{p['teacher_forward']:.2f} | {p['fecl']:.3f} | {r['step_tflops']:.2f} | "
                f"{r['train_tflops'] / 1e3:.1f} PFLOP |"
            )
    out += ["", "## What was counted", ""]
    out += [f"- **{k}**: {v}." for k, v in report["method_counting"].items()]
    out += [f"- Not counted: {report['not_counted']}", "", "## Assumptions", ""]
    ev = report["assumptions"]["eval_volumes"]
    for ds, v in ev.items():
        out.append(
            f"- {ds} test volume {'x'.join(map(str, v['shape']))}, {v['test_cases']} test "
            f"cases, {v['windows_per_case']} windows per case: {v['source']}."
        )
    out += [f"- {s}" for s in report["assumptions"]["notes"]]
    if report["throughput_cross_check"]:
        out += ["", "## Cross-check: achieved rate of measured steps (reported, not used)", ""]
        for c in report["throughput_cross_check"]:
            out.append(
                f"- {c['file']}: {c['setting']} {c['precision']} (batch {c['batch']}), "
                f"{c['step_tflops_counted']:.2f} TFLOP counted / "
                f"{c['seconds_per_step_measured']:.1f} s measured = "
                f"{c['achieved_gflops_per_second']:.1f} GFLOP/s "
                f"(load average {_load(c['load_average_at_start'])} at start)."
            )
    return "\n".join(out) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="seeds per (row, labeled %%)")
    parser.add_argument(
        "--tflops",
        default=",".join(f"{t:g}" for t in ASSUMED_TFLOPS),
        help="assumed sustained TFLOP/s, comma-separated",
    )
    parser.add_argument("--tables", default="1,2,3,4,5")
    parser.add_argument("--out", default="results/bench/paper-cost", help="path without suffix")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    throughputs = tuple(float(t) for t in args.tflops.split(","))
    if any(t <= 0 for t in throughputs):
        parser.error("--tflops must be positive")
    import torch

    from dycon.experiments import TABLES

    machine = machine_info("torch", "numpy", device="meta", threads=torch.get_num_threads())
    tables, all_runs = {}, {}
    for table in (int(t) for t in args.tables.split(",")):
        runs = [cost_run(r, throughputs) for r in table_runs(table, args.seeds)]
        for r in runs:
            all_runs.setdefault(r["run_id"], []).append(
                f"table {table} {r['row']} {r['percent']} %"
            )
        tables[str(table)] = {
            "dataset": TABLES[table]["dataset"],
            "percents": list(TABLES[table]["percents"]),
            "rows": [r[0] for r in TABLES[table]["rows"]],
            "totals": _totals(runs, throughputs),
            "runs": runs,
        }
        tot = tables[str(table)]["totals"]
        hours = ", ".join(f"{v:.1f} h at {k}" for k, v in tot["gpu_hours"].items())
        print(f"table {table}: {tot['runs']} runs, {tot['total_tflops'] / 1e3:.0f} PFLOP, {hours}")
    models = []
    for (_, patch), c in sorted(_MODELS.items(), key=lambda kv: (kv[1]["model"], kv[0][1])):
        models.append(
            {
                "model": c["model"],
                "patch": list(patch),
                "params": c["params"],
                "forward_gflops": c["forward"] / 1e9,
                "backward_gflops": {k: v / 1e9 for k, v in c["backward"].items()},
                "backward_over_forward_logits": c["backward"]["logits"] / c["forward"],
                "embedding_grid": c["embedding_grid"],
                "embedding_dim": c["embedding_dim"],
                "counted_on": c["counted_on"],
                **({"meta_failed": c["meta_failed"]} if "meta_failed" in c else {}),
            }
        )
    used = {t["dataset"] for t in tables.values()}
    report = {
        "what": (
            "Estimated GPU cost of each paper table at the paper scale: FLOPs counted, GPU-hours "
            "= FLOPs / an ASSUMED sustained throughput (not measured here)."
        ),
        "machine": machine,
        "seeds": args.seeds,
        "assumptions": {
            "sustained_tflops": list(throughputs),
            "sustained_tflops_meaning": (
                "assumed sustained rate of 3-D convolutions on an A100/H100-class GPU, bf16 "
                "autocast or TF32; NOT measured: no GPU run has measured it here. "
                "bench/train_step.py on CUDA measures it; pass its achieved TFLOP/s as --tflops."
            ),
            "eval_volumes": {
                ds: {
                    **TYPICAL_SHAPES[ds],
                    "shape": list(TYPICAL_SHAPES[ds]["shape"]),
                    "test_cases": TEST_CASES[ds],
                    "windows_per_case": next(
                        r["eval"]["windows_per_case"]
                        for t in tables.values()
                        for r in t["runs"]
                        if t["dataset"] == ds
                    ),
                }
                for ds in sorted(used)
            },
            "notes": [
                "Test cases per dataset: the split sizes declared in dycon/data/datasets.py ("
                + ", ".join(f"{ds} {TEST_CASES[ds]}" for ds in sorted(used))
                + ").",
                "The paper scale sets train.amp=false: the trainer runs fp32, where PyTorch's "
                "default (torch.backends.cudnn.allow_tf32=True; nothing in dycon changes it) runs "
                "the convolutions in TF32 on Ampere or newer. train.amp=true gives bf16.",
                "One GPU per run; several GPUs (torchrun) split the same FLOPs.",
                "Validation during training: none at the paper scale (train.val_every=0).",
                "Conv FLOPs are linear in the batch: counted at batch 1, multiplied by the rows.",
                "Backward counted (not 3x forward): autograd skips the input gradient of the "
                "first convolution, so backward is 1.96-1.98x forward; the 3x rule is also given "
                "per run (step_tflops_rule_of_three).",
                "FeCL counted on random tokens with two classes; its top-K products depend a "
                "little on the labels (< 0.01 % of the FeCL count, itself ~1-3 % of a DyCON step).",
            ],
        },
        "method_counting": METHOD_COUNTING,
        "not_counted": NOT_COUNTED,
        "models": models,
        "tables": tables,
        "all_tables_unique_runs": _totals(
            [
                next(r for t in tables.values() for r in t["runs"] if r["run_id"] == rid)
                for rid in all_runs
            ],
            throughputs,
        ),
        "shared_runs": {rid: where for rid, where in all_runs.items() if len(where) > 1},
        "throughput_cross_check": throughput_cross_check(),
    }
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(out.with_suffix(".json"), json.dumps(report, indent=2) + "\n")
    _write(out.with_suffix(".md"), markdown(report))
    print(f"wrote {out}.json and {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
