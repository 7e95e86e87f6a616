"""The cpu scale: its preset composes for every method, the per-method block of a scale, the
committed run ids unchanged, and bench/cpu_scale.py's seeds, collapse flag and pairing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from dycon.config import ConfigError, from_dict
from dycon.engine.presets import _scale_method_settings, compose
from dycon.engine.runs import run_id
from dycon.engine.schema import ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("cpu_scale", ROOT / "bench" / "cpu_scale.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["cpu_scale"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "method, field, expected",
    [
        ("dycon", "eta_rampup", 0.3),
        ("mt", "consistency_rampup", 0.3),
        ("ua-mt", "consistency_rampup", 0.3),
    ],
)
def test_every_unsupervised_weight_ramps_alike_at_the_cpu_scale(method, field, expected):
    cfg = compose(dataset="la", method=method, scale="cpu")
    assert (cfg.scale, cfg.train.iterations, cfg.data.patch) == ("cpu", 2000, (48, 32, 16))
    if field:
        assert cfg.method[field] == expected
    assert "eta_rampup" not in cfg.method or method == "dycon"


def test_the_per_method_block_stays_at_its_scale():
    assert compose(dataset="la", method="dycon", scale="quick").method["eta_rampup"] == 0.0
    assert compose(dataset="la", method="supervised", scale="cpu").method_name == "supervised"


@pytest.mark.parametrize(
    "block, message",
    [
        ({"dyconn": {"eta": 1.0}}, "methods.dyconn is not a method"),
        ({"dycon": 0.3}, "must map a method name"),
        ([0.3], "must map a method name"),
    ],
)
def test_a_bad_per_method_block_is_a_config_error(block, message):
    with pytest.raises(ConfigError, match=message):
        _scale_method_settings({"scale": "x", "methods": block}, "dycon")


def test_committed_run_ids_are_unchanged():
    folders = sorted(ROOT.glob("results/*/runs/*/config.yaml"))
    assert folders, "no committed run under results/*/runs"
    for path in folders:
        cfg = from_dict(ExperimentConfig, yaml.safe_load(path.read_text()))
        assert run_id(cfg) == path.parent.name, path


@pytest.mark.parametrize(
    "text, seeds",
    [
        ("1337", [1337]),
        ("1337-1339", [1337, 1338, 1339]),
        ("1340,1337-1338,1337", [1340, 1337, 1338]),
    ],
)
def test_seed_lists(text, seeds):
    assert _bench().parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["a", "1339-1337"])
def test_bad_seed_lists(text):
    with pytest.raises(Exception, match="seed"):
        _bench().parse_seeds(text)


def _run(row, seed, dice, *, empty=False):
    return {
        "row": row,
        "percent": 5,
        "seed": seed,
        "collapsed": empty,
        "dice": dice[0] if not empty else 0.0,
        "seconds": 10.0,
        "dice_per_case": {"c1": dice[0], "c2": dice[1]} if not empty else {"c1": 0.0, "c2": 0.0},
    }


def test_pairs_are_per_seed_and_leave_out_collapsed_runs():
    bench = _bench()
    sup, ua, dy = bench.SUPERVISED, "UA-MT", "DyCON (VNet)"
    runs = [
        _run(sup, 1, (50.0, 60.0)),
        _run(ua, 1, (52.0, 62.0)),
        _run(dy, 1, (53.0, 63.0)),
        _run(sup, 2, (40.0, 50.0)),
        _run(ua, 2, (42.0, 52.0)),
        _run(dy, 2, (0.0, 0.0), empty=True),
    ]
    pairs = {(p["a"], p["b"]): p for p in bench.paired(runs, {(5, dy, ua): 2.84}, 1.42)}
    assert set(pairs) == {(ua, sup), (dy, sup), (dy, ua)}
    # UA-MT is 2 points ahead on every case of both seeds: a zero-width interval at +2
    assert pairs[(ua, sup)]["mean_difference"] == 2.0 and pairs[(ua, sup)]["ci95"] == [2.0, 2.0]
    assert pairs[(ua, sup)]["seeds"] == [1, 2] and pairs[(ua, sup)]["excludes_zero"]
    # DyCON collapsed on seed 2: that seed is named and left out, not averaged in
    assert pairs[(dy, ua)]["seeds"] == [1] and pairs[(dy, ua)]["collapsed_seeds_left_out"] == [2]
    assert pairs[(dy, ua)]["mean_difference"] == 1.0 and pairs[(dy, ua)]["paper_margin"] == 2.84
    assert pairs[(dy, ua)]["ci_narrower_than_smallest_margin"]
    methods = {(m["row"], m["percent"]): m for m in bench.per_method(runs)}
    assert methods[(dy, 5)]["collapsed_seeds"] == [2] and methods[(dy, 5)]["mean_dice"] == 53.0


def test_paper_margins_of_table_4():
    margins = _bench().paper_margins()
    assert margins[(10, "DyCON (VNet)", "UA-MT")] == pytest.approx(91.58 - 90.16)
    assert margins[(5, "DyCON (3D-UNet)", "DTC")] == pytest.approx(90.96 - 81.25)
    # DyCON is paired with every baseline the paper prints: the smallest claim is over AC-MT
    assert min(margins.values()) == pytest.approx(91.58 - 90.31)  # 10 %, DyCON (VNet)
    assert len(margins) == 2 * 2 * 3  # fractions x DyCON rows x baselines (UA-MT, DTC, AC-MT)


def test_kept_runs_refill_a_fresh_runs_folder(tmp_path):
    bench = _bench()
    run = tmp_path / "runs" / "la-dycon-cpu-s1-abc"
    (run / "checkpoints").mkdir(parents=True)
    for name in bench.KEPT_FILES:
        (run / name).write_text(name)
    (run / "checkpoints" / "last.pt").write_text("big")
    kept = tmp_path / "kept"
    bench.keep_run(run, kept)
    assert sorted(p.name for p in (kept / run.name).iterdir()) == sorted(bench.KEPT_FILES)
    fresh = tmp_path / "fresh"
    assert bench.restore_runs(kept, fresh) == 1
    assert (fresh / run.name / "summary.json").read_text() == "summary.json"
    assert bench.restore_runs(kept, fresh) == 0  # present runs are left alone


def test_default_rows_are_table_4s_single_network_rows():
    from dycon.experiments import TABLES

    bench = _bench()
    args = bench._parser().parse_args([])
    assert tuple(args.rows.split(",")) == bench.ROWS
    table = [r[0] for r in TABLES[4]["rows"]]
    assert set(bench.ROWS) <= set(table)
    # left out by default for their cost; --rows all runs them
    assert set(table) - set(bench.ROWS) == {"MCF", "BCP", "CML"}
