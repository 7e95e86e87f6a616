"""Baselines re-run in the tables: DTC, URPC, AC-MT. Hand-computed values in the comments."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from method_checks import smoke_run_from_the_cli

from dycon.config import ConfigError
from dycon.engine.presets import compose
from dycon.methods.acmt import ACMT, ACMTConfig, ambiguity_mask, ambiguity_threshold
from dycon.methods.dtc import dual_task_consistency, signed_distance, target_sdf
from dycon.methods.urpc import pyramid_consistency, rectification_weights

# ------------------------------------------------------------------------------------------ DTC
SPHERE = np.zeros((7, 7, 7), dtype=bool)  # radius-1 ball: the centre and its 6 face neighbours
SPHERE[3, 3, 3] = True
for axis in range(3):
    for d in (-1, 1):
        idx = [3, 3, 3]
        idx[axis] += d
        SPHERE[tuple(idx)] = True


@pytest.mark.parametrize(
    ("voxel", "expected"),
    [
        # centre: not on the boundary; d_in = sqrt(2) (nearest background (4, 4, 3)) = max d_in,
        # so -norm(d_in) = -1.
        ((3, 3, 3), -1.0),
        ((4, 3, 3), 0.0),  # a face neighbour has a background 6-neighbour: inner boundary
        # outside: d_out / max d_out; max d_out at a corner, (0, 0, 0) -> (2, 3, 3): sqrt(22)
        ((4, 4, 3), 1 / math.sqrt(22)),  # nearest foreground (4, 3, 3) at 1
        ((5, 3, 3), 1 / math.sqrt(22)),
        ((6, 3, 3), 2 / math.sqrt(22)),
        ((0, 0, 0), 1.0),
        ((6, 6, 6), 1.0),
    ],
)
def test_sdf_of_a_small_sphere(voxel, expected):
    sdf = signed_distance(SPHERE)
    assert sdf.shape == SPHERE.shape and sdf.dtype == np.float32
    assert sdf[voxel] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("fill", [False, True])  # nothing inside / nothing outside: all zeros
def test_sdf_of_an_empty_or_full_volume_is_zero(fill):
    assert not signed_distance(np.full((4, 4, 4), fill)).any()


def test_target_sdf_is_per_foreground_class_and_row():
    label = torch.zeros(2, 7, 7, 7, dtype=torch.long)
    label[0][torch.from_numpy(SPHERE)] = 1  # row 1 stays empty
    sdf = target_sdf(label, num_classes=2)
    assert sdf.shape == (2, 1, 7, 7, 7)
    assert sdf[0, 0, 3, 3, 3] == -1.0 and not sdf[1].any()


LOGIT_075 = math.log(3.0)  # softmax foreground 0.75 for logits (0, ln 3)


@pytest.mark.parametrize(
    ("sdf_values", "probs", "k", "expected"),
    [
        # sigma(-k * 0) = 0.5; p = 0.5 on 4 voxels, 0.75 on 4: (0 * 4 + 0.25^2 * 4) / 8
        ([0.0] * 8, [0.5] * 4 + [0.75] * 4, 1.0, 0.03125),
        # k = 1500, s = -0.01 (inside): sigma(15) = 0.9999997 ~ 1 = p -> 0;
        # s = +0.01 (outside): sigma(-15) ~ 3.06e-7 vs p = 1 -> (1 - 3.06e-7)^2 ~ 1, on 2 of 8
        ([-0.01] * 6 + [0.01] * 2, [1.0] * 8, 1500.0, 0.25),
    ],
)
def test_dual_task_term_on_a_2x2x2_example(sdf_values, probs, k, expected):
    sdf = torch.tensor(sdf_values).reshape(1, 1, 2, 2, 2)
    p = torch.tensor(probs).reshape(1, 1, 2, 2, 2)
    assert dual_task_consistency(p, sdf, k=k).item() == pytest.approx(expected, abs=1e-6)


def test_dual_task_term_of_mismatched_shapes_is_one_line():
    with pytest.raises(ValueError, match=r"must have the same shape"):
        dual_task_consistency(torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 2, 2, 2, 2), k=1.0)


def test_dtc_reference_preset_is_the_official_setting():
    cfg = compose(dataset="la", method="dtc-reference", scale="paper")
    assert cfg.method["sup_ce"] is False and cfg.method["consistency_rampup"] == 1.0
    assert (cfg.model.name, cfg.optim.schedule, cfg.optim.grad_clip) == ("vnet", "step", None)
    assert round(cfg.optim.step_every * 6000) == 2500 and cfg.optim.step_gamma == 0.1


def test_step_schedule_decays_by_gamma_every_fraction():
    from dycon.engine.trainer import _lr
    from dycon.methods import StepState

    cfg = compose(dataset="la", method="dtc-reference", scale="paper")
    # 0.01 for steps 0-2499, 0.001 for 2500-4999, 0.0001 after (of 6000)
    got = [_lr(cfg, StepState(step=t, total_steps=6000)) for t in (0, 2499, 2500, 5000)]
    assert got == pytest.approx([0.01, 0.01, 0.001, 0.0001])


# ----------------------------------------------------------------------------------------- URPC
def _two_scales():
    """Two voxels (A, B), two classes. Scale 1: p = (0.5, 0.5) at both; scale 2: (0.9, 0.1) at A
    (logits (ln 9, 0)), (0.5, 0.5) at B. So p_bar = (0.7, 0.3) at A and (0.5, 0.5) at B."""
    coarse = torch.zeros(1, 2, 2, 1, 1)
    fine = torch.zeros(1, 2, 2, 1, 1)
    fine[0, 0, 0] = math.log(9.0)
    return [coarse, fine]


def test_rectification_weights_are_exp_minus_kl():
    mean, kl, weight = rectification_weights(_two_scales())
    # D_1(A) = 0.7 ln(0.7/0.5) + 0.3 ln(0.3/0.5) = 0.235531 - 0.153248 = 0.082283
    # D_2(A) = 0.7 ln(0.7/0.9) + 0.3 ln(0.3/0.1) = -0.175920 + 0.329584 = 0.153664; D(B) = 0
    assert kl.flatten().tolist() == pytest.approx([0.082283, 0.0, 0.153664, 0.0], abs=1e-5)
    # exp(-0.082283) = 0.921011, exp(-0.153664) = 0.857560
    assert weight.flatten().tolist() == pytest.approx([0.921011, 1.0, 0.857560, 1.0], abs=1e-5)
    assert mean[0, :, 0, 0, 0].tolist() == pytest.approx([0.7, 0.3])


def test_pyramid_loss_on_a_two_scale_example():
    # (p_bar - p^s)^2 summed over classes at A: 2 * 0.2^2 = 0.08 for both scales; 0 at B.
    # L_1 = 0.921011 * 0.08 / (2 * 1.921011) + 0.082283 / 2 = 0.019178 + 0.041141 = 0.060320
    # L_2 = 0.857560 * 0.08 / (2 * 1.857560) + 0.153664 / 2 = 0.018466 + 0.076832 = 0.095298
    # L = (L_1 + L_2) / 2 = 0.077809
    assert pyramid_consistency(_two_scales()).item() == pytest.approx(0.077809, abs=1e-5)


def test_pyramid_of_mismatched_shapes_is_one_line():
    with pytest.raises(ValueError, match=r"need >= 2 pyramid logits of one shape"):
        pyramid_consistency([torch.zeros(1, 2, 2, 2, 2), torch.zeros(1, 2, 4, 2, 2)])


def test_urpc_infers_from_the_main_head_only():
    from dycon.engine.networks import build_network_of

    cfg = compose(dataset="isles-sim", method="urpc", scale="smoke")
    net = build_network_of(cfg, "student").eval()
    out = net(torch.randn(1, 1, 32, 32, 16))
    # the evaluation network carries the heads of training (its checkpoint loads), but
    # sliding-window inference reads ``logits``: the full-resolution head
    assert len(out.aux["deep_supervision"]) == 3 and out.logits.shape == (1, 2, 32, 32, 16)


# ---------------------------------------------------------------------------------------- AC-MT
# normalised binary entropies -sum p ln p / ln 2: (0.5, 0.5) 1.0; (0.9, 0.1) 0.325083 / 0.693147
# = 0.468996; (0.8, 0.2) 0.500402 / 0.693147 = 0.721928; (0.7, 0.3) 0.881291; (0.6, 0.4) 0.970951
FOREGROUND = [0.5, 0.9, 0.8, 0.7, 0.4]


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0.75, [1, 0, 0, 1, 1]),
        (0.95, [1, 0, 0, 0, 1]),
        (0.47, [1, 0, 1, 1, 1]),  # 0.468996 < 0.47 <= 0.721928
        (1.01, [0, 0, 0, 0, 0]),
    ],
)
def test_ambiguity_mask_at_a_threshold(threshold, expected):
    fg = torch.tensor(FOREGROUND).reshape(1, 1, 5, 1, 1)
    probs = torch.cat([1 - fg, fg], dim=1)  # (1, 2, 5, 1, 1)
    assert ambiguity_mask(probs, threshold).flatten().tolist() == expected


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.75 + 0.20 * math.exp(-5)),  # 0.751348
        (50, 0.75 + 0.20 * math.exp(-5 * 0.25)),  # 0.807301
        (100, 0.95),
        (150, 0.95),  # held after the end of the ramp
    ],
)
def test_ambiguity_threshold_ramp(step, expected):
    got = ambiguity_threshold(step, 100, start=0.75, end=0.95)
    assert got == pytest.approx(expected, abs=1e-9)


def test_ambiguity_mask_of_a_wrong_shape_is_one_line():
    with pytest.raises(ValueError, match=r"must be \(B, C>=2, \*S\) probabilities"):
        ambiguity_mask(torch.ones(1, 1, 4, 4, 4), 0.5)


@pytest.mark.parametrize("selector", ["ent", "mu"])
def test_acmt_selectors_mask_the_consistency(selector):
    from test_methods import _batch, _nets

    from dycon.methods import StepState

    method = ACMT(ACMTConfig(selector=selector, mc_passes=2))
    terms = method(_batch(), _nets(method), StepState(step=50, total_steps=100))
    assert set(terms.terms) == {"sup", "consistency"}
    assert 0.0 <= terms.logs["ambiguous_fraction"] <= 1.0
    assert terms.logs["threshold"] == pytest.approx(0.75 + 0.20 * math.exp(-1.25))


# ------------------------------------------------------------------- config errors, end to end
@pytest.mark.parametrize(
    ("method", "override", "message"),
    [
        ("dtc", "method.k=-1", r"method\.k=-1\.0 is not allowed"),
        ("dtc", "method.beta=-0.3", r"method\.beta=-0\.3 is not allowed"),
        ("dtc-reference", "optim.step_every=0", r"optim\.step_every=0\.0 is not allowed"),
        ("acmt", "method.threshold_start=0.99", r"method\.threshold_start=0\.99 is not allowed"),
        ("acmt", "method.selector=perr", r"method\.selector"),
        ("acmt-mu", "method.mc_passes=0", r"method\.mc_passes=0 is not allowed"),
        ("urpc", "method.consistency=-1", r"method\.consistency=-1\.0 is not allowed"),
        ("urpc", "method.consistency_rampup=-2", r"method\.consistency_rampup=-2\.0 is not"),
    ],
)
def test_bad_method_values_fail_at_composition(method, override, message):
    with pytest.raises(ConfigError, match=message) as err:
        compose(dataset="isles-sim", method=method, scale="smoke", overrides=[override])
    assert "\n" not in str(err.value)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dtc", "dtc-reference", "urpc", "acmt", "acmt-mu"])
def test_smoke_run_from_the_cli(method, capsys, tmp_path, monkeypatch, default_data):
    smoke_run_from_the_cli(
        method, tmp_path=tmp_path, monkeypatch=monkeypatch, data_root=default_data, capsys=capsys
    )


# --------------------------------------------------------------------------- model aux heads
@pytest.mark.parametrize("name", ["unet3d", "vnet"])
def test_aux_heads_are_off_by_default_and_add_outputs_when_asked(name):
    from dycon.models import ModelConfig, build_model

    cfg = ModelConfig(name=name, widths=(4, 8, 8, 16, 16), base_filters=4, embedding_dim=8)
    torch.manual_seed(0)
    plain = build_model(cfg)
    torch.manual_seed(0)
    extra = build_model(cfg, sdf_head=True, deep_supervision=True)
    # the backbone's own weights are drawn first, so the options leave them unchanged
    for key, value in plain.state_dict().items():
        assert torch.equal(value, extra.state_dict()[key]), key
    x = torch.randn(2, 1, 32, 32, 16)
    assert plain(x).aux is None if name == "vnet" else set(plain(x).aux) == {"sdf"}
    out = extra(x)
    assert out.aux["sdf"].shape == (2, 2, 32, 32, 16) and out.aux["sdf"].abs().max() <= 1
    assert [t.shape for t in out.aux["deep_supervision"]] == [(2, 2, 32, 32, 16)] * 3


# ------------------------------------------------------------------------ table declarations
def test_tables_declare_the_new_rows_and_the_fully_supervised_ones(default_data):
    from dycon.experiments import TABLES, table_runs
    from dycon.paper import paper_rows

    assert [r[0] for r in TABLES[2]["rows"]][3:5] == ["URPC", "MCF"]
    assert "MagicNet" not in {r[0] for r in TABLES[2]["rows"]}  # printed in Table 1 only
    assert not {"AC-MT", "MagicNet"} & {r[0] for r in TABLES[3]["rows"]}  # the paper prints none
    # Every printed row is re-run, except the architectures not implemented (W-Net, PAMSNet) and
    # the unidentified "UPC"; no row is re-run that its table does not print (but our lower bound).
    from dycon.experiments import NOT_RERUN

    not_implemented = set(NOT_RERUN)
    assert not_implemented == {"W-Net", "PAMSNet", "UPC"}
    for table in (1, 2, 3, 4):
        ours = {r[0] for r in TABLES[table]["rows"]} | {TABLES[table].get("upper_bound", ("",))[0]}
        printed = {r["method"] for r in paper_rows(table)}
        assert printed - ours == printed & not_implemented, table
        assert ours - printed <= {"Supervised (labeled only)", ""}, table
    assert {"MCF", "BCP", "CML"} <= {r[0] for r in TABLES[4]["rows"]}
    specs = table_runs(4, dataset="isles-sim", scale="quick", percents=(10, 100), root=default_data)
    full = [s for s in specs if s.percent == 100]
    # isles-sim's train list has 40 cases: 10 % is 4 labeled, 100 % all 40
    assert [(s.row, s.method, s.num_labeled) for s in full] == [("3D-UNet", "supervised", 40)]
    assert {s.num_labeled for s in specs if s.percent == 10} == {4}
    assert {"DTC", "AC-MT"} <= {s.row for s in specs}
    with pytest.raises(ConfigError, match=r"table 1 has no 100 % row"):
        table_runs(1, dataset="isles-sim", percents=(100,), root=default_data)


# ------------------------------------------------------------------------ the book's baselines page
def test_the_baselines_page_quotes_the_committed_step_costs():
    """book/baselines.md types each method's cost against MT; a re-run of bench/method_step.py
    that changes a ratio must change the page too."""
    import re

    import pandas as pd

    root = Path(__file__).resolve().parents[1]
    bench = pd.read_csv(root / "results" / "bench" / "method_step-cpu.csv").set_index("method")
    page = (root / "book" / "baselines.md").read_text()
    quoted = {float(x) for x in re.findall(r"(\d\.\d\d)× (?:MT|for MU)", page)}
    committed = {round(float(r), 2) for r in bench["ratio_to_mt"]}
    assert quoted and quoted <= committed, sorted(quoted - committed)
    # every method of the bench but MT itself is quoted (MT is the 1.00× reference)
    assert len(quoted) >= len(committed - {1.0}) - 1  # two methods may share a rounded ratio
    mt = f"{bench.loc['mt', 'seconds_per_step']:.2f} s per step"
    assert page.count(mt) == 2, mt  # the note on measurement and MT's own section


def test_the_step_bench_times_every_method_preset():
    import importlib.util

    import pandas as pd

    from dycon.config import available

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("method_step", root / "bench" / "method_step.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    methods = bench.default_methods()
    assert methods[0] == "mt" and len(set(methods)) == len(methods)
    assert set(methods) == {m for m in available("methods") if not m.endswith("-reference")}
    committed = set(pd.read_csv(root / "results" / "bench" / "method_step-cpu.csv")["method"])
    assert committed == set(methods)  # the committed record times each of them
