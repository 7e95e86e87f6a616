from dataclasses import dataclass
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A data root holding isles-sim ``tiny`` (``prepare``'s output), generated once per session.
    Tests read it; one that changes it works on a copy."""
    from dycon.data.prepare import prepare

    root = tmp_path_factory.mktemp("tiny-data")
    prepare("isles-sim", dest=root / "isles-sim", preset="tiny")
    return root


@pytest.fixture(scope="session")
def default_data(tmp_path_factory):
    """A data root holding the default isles-sim (what ``make reproduce`` generates), made once
    per session for the end-to-end CLI tests; tests read it and must not change it."""
    from dycon.data.prepare import prepare

    root = tmp_path_factory.mktemp("default-data")
    prepare("isles-sim", dest=root / "isles-sim")
    return root


@dataclass(frozen=True)
class TinyRun:
    """A finished run: ``spec`` trained and evaluated by ``experiments.ensure`` (the notebooks'
    path) in ``runs_dir/<run id>`` (``run_dir``) on the data root ``root``."""

    spec: object  # experiments.RunSpec
    device: str
    root: Path
    runs_dir: Path
    run_dir: Path

    def cli_args(self, *, runs_dir: Path | None = None) -> list[str]:
        """``python -m dycon <command>``'s options that name the same configuration (run id)."""
        sets = [a for o in self.spec.all_overrides(self.device) for a in ("--set", o)]
        return [
            *("--dataset", self.spec.dataset, "--method", self.spec.method),
            *("--scale", self.spec.scale, *sets),
            *("--data-root", str(self.root), "--runs-dir", str(runs_dir or self.runs_dir)),
        ]


@pytest.fixture(scope="session")
def finished_tiny_run(tiny_data, tmp_path_factory) -> TinyRun:
    """One supervised smoke run on isles-sim ``tiny`` (one labeled case), made once per session.
    Tests read it; one that changes it works on a copy of ``runs_dir``."""
    from dycon.experiments import ensure, table_runs

    (spec,) = table_runs(
        1,
        dataset="isles-sim",
        scale="smoke",
        seeds=[1337],
        percents=[10],
        rows=["Supervised (labeled only)"],
        root=tiny_data,
    )
    runs_dir = tmp_path_factory.mktemp("tiny-run") / "runs"
    (result,) = ensure([spec], runs_dir=runs_dir, root=tiny_data, device="cpu", progress=False)
    return TinyRun(spec, "cpu", tiny_data, runs_dir, result.run_dir)
