"""Atomic checkpoints that resume bit for bit: weights, optimizers, step and every RNG state.

A checkpoint holds only tensors and plain types (dicts, lists, numbers, strings), so it loads
with ``torch.load(..., weights_only=True)``: unpickling a file never runs code from it, whoever
placed it in a run folder. Every failure to use one is a ``CheckpointError``: one line naming
the file, what it holds, what the configuration expects, and what to do.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import torch

from ..data.files import atomic_path
from ..data.volume import DataError

RETRAIN = "delete it to restart the run from scratch (train again)"


class CheckpointError(DataError):
    """A checkpoint that cannot be used; the message is one line naming the file and the fix."""


def save_checkpoint(path: Path, *, step: int, nets: dict, optimizers: dict, extra: dict) -> None:
    """Write to a temp file beside ``path``, then rename: a crash never leaves half a file.

    A temp file left by a kill is removed when the run is next claimed
    (``remove_interrupted_writes``).
    """
    state = {
        "step": int(step),
        "nets": {k: v.state_dict() for k, v in nets.items()},
        "optimizers": {k: v.state_dict() for k, v in optimizers.items()},
        "rng": rng_state(),
        "extra": extra,
    }
    with atomic_path(path) as tmp:  # the project's one atomic writer (it follows the umask)
        torch.save(state, tmp)


def rng_state() -> dict:
    """Every global RNG state as tensors and lists (numpy's and Python's are tuples upstream)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - global state
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        # uint32 keys as int64: torch has no uint32 tensors that survive every version
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": [int(version), list(internal), gauss],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(rng: dict) -> None:
    """Restore what ``rng_state`` returned."""
    torch.set_rng_state(rng["torch"])
    n = rng["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))  # noqa: NPY002
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def read_checkpoint(path: Path) -> dict:
    """The raw state of a checkpoint, unpickled with ``weights_only=True`` (never runs code)."""
    where = repr(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower() or "weights_only" in str(err):
            # Either written before checkpoints held only tensors (numpy / Python RNG objects),
            # or crafted: both need full pickle, which can run code, so neither is loaded.
            raise CheckpointError(
                f"checkpoint {where} holds Python objects that only a full unpickle can load "
                f"(an older format, or a file that could run code); {RETRAIN}"
            ) from None
        raise CheckpointError(f"cannot read checkpoint {where} (corrupt); {RETRAIN}") from None
    except Exception as err:  # truncated, not a torch file, unreadable
        raise CheckpointError(
            f"cannot read checkpoint {where} ({type(err).__name__}: truncated, corrupt or not a "
            f"checkpoint); {RETRAIN}"
        ) from None
    if not isinstance(state, dict) or not {"step", "nets", "optimizers", "extra"} <= set(state):
        raise CheckpointError(f"{where} is not a dycon checkpoint (no step/nets); {RETRAIN}")
    return state


def load_checkpoint(path: Path, *, nets: dict, optimizers: dict, restore_rng: bool = True) -> dict:
    """Load weights (and optimizers, RNG states) in place; returns ``{"step", "extra"}``.

    Raises:
        CheckpointError: unreadable, needs pickle, or holds other networks or other shapes than
            ``nets`` (another method, other widths): the message names both sides.
    """
    state = read_checkpoint(path)
    where = repr(str(path))
    held = sorted(state["nets"])
    for name, net in nets.items():
        if name not in state["nets"]:
            raise CheckpointError(
                f"checkpoint {where} holds networks {held}, the configuration needs {name!r} "
                f"(another method's run?); {RETRAIN}, or use the configuration it was trained with"
            )
        _check_shapes(where, name, state["nets"][name], net.state_dict())
        net.load_state_dict(state["nets"][name])
    for name, opt in optimizers.items():
        if name not in state["optimizers"]:
            raise CheckpointError(
                f"checkpoint {where} holds optimizers {sorted(state['optimizers'])}, the "
                f"configuration needs {name!r}; {RETRAIN}"
            )
        try:
            opt.load_state_dict(state["optimizers"][name])
        except (ValueError, KeyError) as err:
            raise CheckpointError(
                f"checkpoint {where}: optimizer {name!r} does not fit ({err}); {RETRAIN}"
            ) from None
    if restore_rng:
        try:
            set_rng_state(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError):
            raise CheckpointError(
                f"checkpoint {where}: its RNG states are unusable; {RETRAIN}"
            ) from None
    return {"step": state["step"], "extra": state["extra"]}


def _check_shapes(where: str, name: str, saved: dict, expected: dict) -> None:
    """One line for the first difference, instead of torch's dump of every mismatched key."""
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    if missing or unexpected:
        key = (missing or unexpected)[0]
        side = "lacks" if missing else "has the extra"
        raise CheckpointError(
            f"checkpoint {where}: network {name!r} {side} parameter {key!r} "
            f"({len(missing)} missing, {len(unexpected)} unexpected): another architecture "
            f"than model.* of the configuration; {RETRAIN}, or use the configuration it was "
            "trained with"
        )
    for key, value in expected.items():
        if tuple(saved[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"checkpoint {where}: network {name!r} parameter {key!r} has shape "
                f"{list(saved[key].shape)}, the configuration expects {list(value.shape)} "
                f"(other model widths?); {RETRAIN}, or use the configuration it was trained with"
            )


def remove_interrupted_writes(folder: Path) -> list[Path]:
    """Delete the temp files (``.<name>.*.tmp``) that a kill during a write left in ``folder``
    and its ``checkpoints/``; returns them. Call only when this process owns the run."""
    stale = [
        p
        for d in (folder, folder / "checkpoints")
        if d.is_dir()
        for p in d.glob(".*.tmp")
        if p.is_file()
    ]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
