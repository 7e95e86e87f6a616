"""Atomic checkpoints that resume bit for bit: weights, optimizers, step and every RNG state."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch


def save_checkpoint(path: Path, *, step: int, nets: dict, optimizers: dict, extra: dict) -> None:
    """Write to a temp file beside ``path``, then rename: a crash never leaves half a file."""
    state = {
        "step": step,
        "nets": {k: v.state_dict() for k, v in nets.items()},
        "optimizers": {k: v.state_dict() for k, v in optimizers.items()},
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),  # noqa: NPY002 - global state other code may use
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        },
        "extra": extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_checkpoint(path: Path, *, nets: dict, optimizers: dict, restore_rng: bool = True) -> dict:
    """Load weights (and optimizers, RNG states) in place; returns ``{"step", "extra"}``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file: say which and what to do
        raise RuntimeError(
            f"cannot read checkpoint {str(path)!r} ({type(err).__name__}); delete "
            "it to restart the run from its previous checkpoint or from scratch"
        ) from None
    for name, net in nets.items():
        net.load_state_dict(state["nets"][name])
    for name, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    if restore_rng:
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])  # noqa: NPY002
        random.setstate(state["rng"]["python"])
        if state["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return {"step": state["step"], "extra": state["extra"]}
