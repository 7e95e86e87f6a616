"""``python -m dycon`` with a kill -9 planted, for the resume tests of test_trainer.py.

Usage: ``_kill_worker.py <where> <n> <dycon arguments ...>``; ``where`` is ``step`` (SIGKILL as
the n-th optimisation step of this process starts), ``save`` (SIGKILL during the n-th checkpoint
write, once half of the file is on disk) or ``none``. SIGKILL runs no handler, no ``finally``:
what the process leaves is what a real kill -9 leaves.
"""

import io
import os
import signal
import sys

import torch

from dycon import cli
from dycon.engine import trainer


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    where, n, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    calls = {"n": 0}
    if where == "step":
        real_step = trainer._step

        def step(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == n:
                _die()
            return real_step(*args, **kwargs)

        trainer._step = step
    elif where == "save":
        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == n:
                whole = io.BytesIO()
                real_save(obj, whole)
                with open(f, "wb") as out:
                    out.write(whole.getvalue()[: len(whole.getvalue()) // 2])
                    out.flush()
                    os.fsync(out.fileno())
                _die()
            return real_save(obj, f, *args, **kwargs)

        torch.save = save
    elif where != "none":
        raise SystemExit(f"where must be step, save or none, got {where!r}")
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
