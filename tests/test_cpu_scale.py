"""The cpu scale: its preset composes for every method, the per-method block of a scale, the
committed run ids unchanged, and bench/cpu_scale.py's seeds, collapse flag and pairing, for
Table 4 and for Table 5 (the ablation)."""

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
    (run / "data.json").write_text('{"data_version": null, "data_hash": "aaaa"}')
    (run / "checkpoints" / "last.pt").write_text("big")
    kept = tmp_path / "kept"
    bench.keep_run(run, kept)
    assert sorted(p.name for p in (kept / run.name).iterdir()) == sorted(bench.KEPT_FILES)
    assert "data.json" in bench.KEPT_FILES  # the stamp says which copy of LA trained it
    fresh = tmp_path / "fresh"
    assert bench.restore_runs(kept, fresh, data_hash="aaaa") == (1, [])
    assert (fresh / run.name / "summary.json").read_text() == "summary.json"
    assert bench.restore_runs(kept, fresh, data_hash="aaaa") == (0, [])  # present: left alone
    # another copy of the data, or no stamp at all: not reused (it would pair two copies)
    assert bench.restore_runs(kept, tmp_path / "other", data_hash="bbbb") == (0, [run.name])
    (kept / run.name / "data.json").unlink()
    assert bench.restore_runs(kept, tmp_path / "none", data_hash="aaaa") == (0, [run.name])
    assert not (tmp_path / "other").exists() and not (tmp_path / "none").exists()


def test_default_rows_are_table_4s_single_network_rows():
    from dycon.experiments import TABLES

    bench = _bench()
    args = bench._parser().parse_args([])
    assert bench.table_defaults(args) and args.table == 4
    assert tuple(args.rows.split(",")) == bench.ROWS
    table = [r[0] for r in TABLES[4]["rows"]]
    assert set(bench.ROWS) <= set(table)
    # left out by default for their cost; --rows all runs them
    assert set(table) - set(bench.ROWS) == {"MCF", "BCP", "CML"}


def _fake_la(root: Path) -> Path:
    """A data root whose la/ has only what planning reads: a manifest (4x) and 80 train ids."""
    (root / "la").mkdir(parents=True)
    (root / "la" / "manifest.json").write_text('{"notes": ["LA, 4x downsampled"]}')
    (root / "la" / "train.list").write_text("".join(f"case{i:02d}\n" for i in range(80)))
    return root


def _table5_args(bench, root, *extra):
    args = bench._parser().parse_args(["--table", "5", "--data-root", str(root), *extra])
    assert bench.table_defaults(args)
    return args


def test_table_5_plans_five_rows_per_seed_at_10_percent(tmp_path):
    bench = _bench()
    args = _table5_args(bench, _fake_la(tmp_path), "--seeds", "1338,1337")
    specs, percents, _ = bench._planned_runs(args)
    assert percents == [10]
    rows = [f"row {i}" for i in range(1, 6)]
    # a whole seed before the next, in the order given; 10 % of 80 is 8 labeled
    assert [(s.row, s.seed) for s in specs] == [(r, 1338) for r in rows] + [(r, 1337) for r in rows]
    assert {(s.method, s.percent, s.num_labeled, s.dataset, s.scale) for s in specs} == {
        ("dycon", 10, 8, "la", "cpu")
    }
    assert args.out == "results/bench/cpu_scale-table5-cpu.json"
    assert args.page == "book/tables/table5-cpu.ipynb"


def test_table_5_full_dycon_is_table_4s_dycon_3d_unet_run(tmp_path):
    from dycon.experiments import config_of, table_runs

    root = _fake_la(tmp_path)
    (row5,) = table_runs(5, dataset="la", scale="cpu", rows=["row 5"], root=root)
    unet, vnet = table_runs(
        4,
        dataset="la",
        scale="cpu",
        percents=(10,),
        rows=["DyCON (3D-UNet)", "DyCON (VNet)"],
        root=root,
    )
    ids = {s.row: run_id(config_of(s)) for s in (row5, unet, vnet)}
    # the same config (Table 5 keeps LA's default 3D U-Net), so Table 4's run is reused; the
    # V-Net one is another run
    assert ids["row 5"] == ids["DyCON (3D-UNet)"] != ids["DyCON (VNet)"]
    assert (ROOT / "results/bench/cpu_scale-runs" / ids["row 5"] / "summary.json").is_file()


# (A, B) -> the poster's Dice A - B on ISLES'22, on BraTS'19 (results/paper/table5.csv); the
# claim's margin is the smaller
TABLE5_CLAIMS = {
    ("row 2", "row 1"): (63.78 - 38.24, 84.57 - 82.68),
    ("row 3", "row 1"): (64.39 - 38.24, 85.23 - 82.68),
    ("row 4", "row 1"): (65.46 - 38.24, 86.32 - 82.68),
    ("row 5", "row 1"): (66.07 - 38.24, 86.97 - 82.68),
    ("row 3", "row 2"): (64.39 - 63.78, 85.23 - 84.57),
    ("row 4", "row 3"): (65.46 - 64.39, 86.32 - 85.23),
    ("row 5", "row 4"): (66.07 - 65.46, 86.97 - 86.32),
}


def test_table_5_claims_and_their_paper_margins():
    from dycon.claims import ablation_claims

    claims = ablation_claims()
    assert [(c["a"], c["b"]) for c in claims] == list(TABLE5_CLAIMS)  # vs row 1, then stepwise
    for c in claims:
        isles, brats = TABLE5_CLAIMS[(c["a"], c["b"])]
        assert c["by_dataset"] == {"isles22": pytest.approx(isles), "brats19": pytest.approx(brats)}
        assert c["margin"] == pytest.approx(min(isles, brats))
    margins = _bench().paper_margins(5, percents=(10,))
    assert margins == {(10, a, b): pytest.approx(min(m)) for (a, b), m in TABLE5_CLAIMS.items()}
    assert min(margins.values()) == pytest.approx(0.61)  # row 3 - row 2 and row 5 - row 4, ISLES


def test_table_5_pairs_name_components_and_leave_out_collapsed_runs():
    bench = _bench()
    runs = [
        _run("row 1", 1, (50.0, 60.0)),
        _run("row 2", 1, (51.0, 61.0)),
        _run("row 3", 1, (0.0, 0.0), empty=True),
        _run("row 1", 2, (40.0, 50.0)),
        _run("row 2", 2, (41.0, 51.0)),
        _run("row 3", 2, (42.0, 53.0)),
    ]
    margins = {(5, "row 2", "row 1"): 1.89, (5, "row 3", "row 2"): 0.61}
    out = {(p["a"], p["b"]): p for p in bench.paired(runs, margins, 0.61, table=5)}
    # rows 4 and 5 did not run: their claims are absent, not empty
    assert set(out) == {("row 2", "row 1"), ("row 3", "row 1"), ("row 3", "row 2")}
    step = out[("row 2", "row 1")]  # +1 on every case of both seeds
    assert step["ci95"] == [1.0, 1.0] and step["verdict"] == "reproduced"
    assert (
        step["a_components"] == "FeCL: F⁺F⁻ + UnCL" and step["b_components"] == "none (MT pipeline)"
    )
    hn = out[("row 3", "row 2")]  # seed 1 collapsed: seed 2 alone, +1 and +2 on its two cases
    assert hn["seeds"] == [2] and hn["collapsed_seeds_left_out"] == [1]
    assert hn["mean_difference"] == 1.5 and hn["paper_margin"] == 0.61
    assert out[("row 3", "row 1")]["verdict"] is None  # no margin given here: no verdict


def test_a_table_this_bench_does_not_run_is_one_line(capsys):
    assert _bench().main(["--table", "3", "--page-only"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--table 3" in err and "Table 4 or 5" in err
