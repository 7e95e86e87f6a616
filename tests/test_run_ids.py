"""Run ids of the committed results do not drift.

A run id is a hash of the full configuration, so a new config field, a changed default or a
preset edit silently orphans every finished run (it would be trained again under a new id, and
the committed tables would no longer point at their runs). These tests recompute the id of every
committed run: table runs from the ``config.yaml`` committed in their folders, figure runs from
what ``dycon.figures`` asks for, composed the way ``experiments`` composes them.
"""

import json
from pathlib import Path

import pytest
import yaml

from dycon.config import from_dict, to_dict
from dycon.engine.runs import run_id
from dycon.engine.schema import ExperimentConfig, normalise

RESULTS = Path(__file__).resolve().parent.parent / "results"
TABLE_RUNS = sorted(p for p in RESULTS.glob("table*/runs/*") if p.is_dir())
FIGURES = sorted(RESULTS.glob("fig-*/figure.json"))


def _committed_config(run_dir: Path) -> ExperimentConfig:
    return normalise(
        from_dict(ExperimentConfig, yaml.safe_load((run_dir / "config.yaml").read_text()))
    )


def test_there_are_committed_runs_to_check():
    assert len(TABLE_RUNS) >= 20 and len(FIGURES) >= 4


@pytest.mark.parametrize("run_dir", TABLE_RUNS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_table_run_id_is_recomputed_from_its_config(run_dir):
    cfg = _committed_config(run_dir)
    assert run_id(cfg) == run_dir.name
    assert json.loads((run_dir / "summary.json").read_text())["run_id"] == run_dir.name
    # The file the trainer would write today is the committed one (write_run_config compares).
    committed = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert to_dict(cfg) == committed


@pytest.mark.slow
@pytest.mark.parametrize("figure_json", FIGURES, ids=lambda p: p.parent.name)
def test_figure_run_ids_are_what_the_figure_asks_for(figure_json, default_data):
    from dycon.experiments import config_of
    from dycon.figures import figure_runs

    record = json.loads(figure_json.read_text())
    committed = record["runs"]
    seeds = sorted({r["seed"] for r in committed})
    specs = figure_runs(
        record["figure"], dataset="isles-sim", scale="quick", seeds=seeds, root=default_data
    )
    recomputed = [
        {"run_id": run_id(config_of(s)), "row": s.row, "seed": s.seed, "percent": s.percent}
        for s in specs
    ]
    assert recomputed == committed
