"""bench/paper_cost.py: the FLOP composition per method, the window count, the hours."""

import importlib.util
from pathlib import Path

import pytest

from dycon.engine.presets import compose

_PATH = Path(__file__).resolve().parents[1] / "bench" / "paper_cost.py"


@pytest.fixture(scope="module")
def paper_cost():
    spec = importlib.util.spec_from_file_location("paper_cost", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _smoke(method: str):
    return compose(dataset="isles-sim", method=method, scale="smoke")


def test_step_flops_order_at_equal_batch(paper_cost):
    steps = {m: paper_cost.step_flops(_smoke(m)) for m in ("supervised", "mt", "dycon", "ua-mt")}
    total = {m: s["total"] for m, s in steps.items()}
    assert 0 < total["supervised"] < total["mt"] <= total["dycon"] < total["ua-mt"]
    fwd = paper_cost.model_flops(_smoke("mt"))["forward"]
    batch, labeled = 2, 1  # the smoke scale
    assert steps["supervised"]["student_rows"] == labeled
    assert steps["mt"]["parts"]["teacher_forward"] == batch * fwd
    assert steps["dycon"]["parts"]["teacher_forward"] == batch * fwd
    assert steps["ua-mt"]["parts"]["teacher_forward"] == (1 + 8) * (batch - labeled) * fwd
    assert steps["dycon"]["parts"]["fecl"] > 0 == steps["mt"]["parts"]["fecl"]
    # backward ~ 2x forward: the 3x rule holds to a few %
    for s in steps.values():
        assert s["total"] == pytest.approx(s["rule_of_three"], rel=0.05)


def test_flops_linear_in_rows(paper_cost):
    one = paper_cost.step_flops(compose(dataset="isles-sim", method="supervised", scale="smoke"))
    two = paper_cost.step_flops(
        compose(
            dataset="isles-sim",
            method="supervised",
            scale="smoke",
            overrides=["data.batch_size=4", "data.labeled_batch_size=2"],
        )
    )
    assert two["total"] == 2 * one["total"]


def test_windows_follow_the_inference_rule(paper_cost):
    assert paper_cost.windows_per_case((64, 64, 48), (32, 32, 32), (32, 32, 16)) == 2 * 2 * 2
    # z: ceil((48 - 16) / 16) + 1 = 3 starts (0, 16, 32)
    assert paper_cost.windows_per_case((64, 64, 48), (32, 32, 16), (32, 32, 16)) == 2 * 2 * 3
    # clamped last start (70: 0, 32, 38) and a padded axis (20 < 32: one window)
    assert paper_cost.windows_per_case((70, 20, 32), (32, 32, 32), (32, 32, 32)) == 3
    # the official LA test: 190 x 142 x 88, patch 112 x 112 x 80, stride 18 x 18 x 4
    assert paper_cost.windows_per_case((190, 142, 88), (112, 112, 80), (18, 18, 4)) == 6 * 3 * 3


def test_eval_flops_counts_windows_cases_and_forward(paper_cost):
    cfg = compose(dataset="isles-sim", method="mt", scale="quick")
    ev = paper_cost.eval_flops(cfg, shape=(64, 64, 48), test_cases=3)
    fwd = paper_cost.model_flops(cfg)["forward"]
    assert ev["windows_per_case"] == 8  # the quick preset's comment: 8 windows per case
    assert ev["total"] == 8 * 3 * fwd


def test_hours_inverse_in_throughput(paper_cost):
    flops = 3.6e18
    assert paper_cost.gpu_hours(flops, 100.0) == pytest.approx(10.0)
    assert paper_cost.gpu_hours(flops, 25.0) == pytest.approx(
        4 * paper_cost.gpu_hours(flops, 100.0)
    )


def test_two_network_methods_count_the_peer(paper_cost):
    mt, cps, ct, mcf, cml = (
        paper_cost.step_flops(_smoke(m)) for m in ("mt", "cps", "dycon-ct", "mcf", "cml")
    )
    fwd = paper_cost.model_flops(_smoke("mt"))["forward"]
    batch, labeled = 2, 1  # the smoke scale
    # CPS: the same network twice on the whole batch, no teacher
    assert cps["parts"]["peer_forward"] == cps["parts"]["student_forward"] == batch * fwd
    assert cps["parts"]["teacher_forward"] == 0 and cps["peer_rows"] == batch
    assert cps["total"] == pytest.approx(2 * (mt["total"] - mt["parts"]["teacher_forward"]))
    # DyCON in CT: FeCL of both networks, no teacher
    assert ct["fecl_rows"] == 2 * batch and ct["parts"]["teacher_forward"] == 0
    # MCF: each subnet counted as its own architecture (VNet, UNet3D)
    unet = paper_cost.model_flops(_smoke("mcf"))  # isles-sim's model.name: unet3d, the peer
    assert mcf["parts"]["peer_forward"] == batch * unet["forward"]
    assert mcf["parts"]["student_forward"] != mcf["parts"]["peer_forward"]
    # CML at 4 smoke steps: 1 labeled-only step (1 row through each network), 3 main steps
    # (2 rows each, and one no-grad forward of each on the unlabeled row): the mean step
    assert (cml["student_rows"], cml["peer_rows"], cml["pretrain_share"]) == (batch, batch, 0.25)
    both = cml["parts"]["student_forward"] + cml["parts"]["peer_forward"]
    assert both == pytest.approx(2 * (0.25 * labeled + 0.75 * batch) * fwd)
    assert cml["parts"]["mc_forward"] == pytest.approx(0.75 * (batch - labeled) * 2 * fwd)
    for s in (cps, ct, mcf, cml):
        assert s["total"] == pytest.approx(s["rule_of_three"], rel=0.05)


def test_ensemble_evaluation_counts_each_member(paper_cost):
    mcf = _smoke("mcf")
    ev = paper_cost.eval_flops(mcf, shape=(64, 64, 48), test_cases=1)
    members = [paper_cost.network_cfg(mcf, n) for n in ("student", "peer")]
    per_window = sum(paper_cost.model_flops(c, (32, 32, 16))["forward"] for c in members)
    assert ev["total"] == ev["windows_per_case"] * per_window


def test_galoss_counts_its_host(paper_cost):
    # a loss on the host's passes: the same FLOPs as CPS (two networks, the whole batch each)
    galoss, cps = (paper_cost.step_flops(_smoke(m)) for m in ("galoss", "cps"))
    assert galoss == cps and galoss["peer_rows"] == 2
