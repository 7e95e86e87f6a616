"""MagicNet: cube partition and recovery, cross-image permutations, the location head, the
pseudo-label blending, the grid check. Hand-computed values in the comments."""

import json
import math

import pytest
import torch
from method_checks import resume_is_exact, smoke_run_from_the_cli
from test_methods import _batch, _nets

from dycon.cli import main
from dycon.config import ConfigError, apply_overrides
from dycon.engine.presets import compose
from dycon.engine.schema import DataConfig, ExperimentConfig, normalise
from dycon.methods import METHODS, StepState
from dycon.methods.magicnet import MagicNet, MagicNetConfig, blend_pseudo_labels
from dycon.methods.mixing import (
    cube_permutations,
    cube_size,
    mix_cubes,
    partition,
    recover,
    unmix_cubes,
)
from dycon.models import ModelConfig, build_model

# value 32 b + 8 d + 2 h + w at (b, 0, d, h, w) of a (2, 1, 4, 4, 2) batch
VOLUME = torch.arange(64.0).reshape(2, 1, 4, 4, 2)
GRID = (2, 2, 1)  # 4 cubes of 2 x 2 x 2; cube k = 2 i + j at grid position (i, j, 0)


@pytest.mark.parametrize(
    ("row", "b", "cube"),
    [
        (0, 0, (slice(0, 2), slice(0, 2))),  # cube 0 of volume 0: first voxel 0
        (1, 0, (slice(0, 2), slice(2, 4))),  # cube 1 = (0, 1): first voxel 2 * 2 = 4
        (2, 0, (slice(2, 4), slice(0, 2))),  # cube 2 = (1, 0): first voxel 8 * 2 = 16
        (6, 1, (slice(2, 4), slice(0, 2))),  # row 4 + 2: volume 1's cube 2, 32 + 16 = 48
        (7, 1, (slice(2, 4), slice(2, 4))),  # 32 + 16 + 4 = 52
    ],
)
def test_partition_stacks_the_cubes_of_each_volume(row, b, cube):
    cubes = partition(VOLUME, GRID)
    assert cubes.shape == (8, 1, 2, 2, 2)
    assert torch.equal(cubes[row], VOLUME[b][(slice(None), *cube)])
    assert cubes[row, 0, 0, 0, 0] == VOLUME[(b, 0, cube[0].start, cube[1].start, 0)]


@pytest.mark.parametrize("grid", [(2, 2, 1), (1, 1, 2), (4, 2, 2), (1, 1, 1)])
def test_partition_then_recovery_is_the_identity(grid):
    assert torch.equal(recover(partition(VOLUME, grid), grid), VOLUME)


def test_a_volume_that_does_not_divide_is_one_line():
    with pytest.raises(ValueError, match=r"does not divide into a \(3, 1, 1\) cube grid"):
        partition(VOLUME, (3, 1, 1))
    assert cube_size((96, 96, 64), (3, 3, 2)) == (32, 32, 32)


ROWS = torch.arange(3.0).reshape(3, 1, 1, 1, 1).expand(3, 1, 4, 2, 2)  # row b holds b
PERMS = torch.tensor([[1, 2, 0], [0, 1, 2]])  # pi_0 shifts the rows, pi_1 keeps them


def test_cross_image_mix_moves_cubes_between_volumes_not_positions():
    mixed = mix_cubes(ROWS, PERMS, (2, 1, 1))  # cube 0: d 0-1, cube 1: d 2-3
    # mixed[b, k] = x[pi_k(b), k]: cube 0 of rows 0, 1, 2 from rows 1, 2, 0; cube 1 in place
    assert mixed[:, 0, 0, 0, 0].tolist() == [1.0, 2.0, 0.0]
    assert mixed[:, 0, 3, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert torch.equal(unmix_cubes(mixed, PERMS, (2, 1, 1)), ROWS)
    # the inverse of pi_0 = (1, 2, 0) is (2, 0, 1): mixed row 2 holds volume 0's cube 0
    assert torch.argsort(PERMS, dim=1)[0].tolist() == [2, 0, 1]


def test_random_permutations_are_permutations_and_unmix_inverts_them():
    torch.manual_seed(0)
    perms = cube_permutations(2, GRID)
    assert perms.shape == (4, 2) and all(sorted(p.tolist()) == [0, 1] for p in perms)
    x = torch.randn(2, 3, 4, 4, 2)
    assert torch.equal(unmix_cubes(mix_cubes(x, perms, GRID), perms, GRID), x)
    with pytest.raises(ValueError, match=r"permutations must be \(G, B\) = \(4, 2\)"):
        mix_cubes(x, perms[:3], GRID)


# ---------------------------------------------------------------------------------- blending
P_TEACHER = [0.9, 0.8, 0.1, 0.4, 0.1, 0.1, 0.1, 0.1]  # foreground; argmax: 2 fg, 6 bg voxels
P_CUBES = [0.1, 0.0, 1.0, 0.95, 0.5, 0.5, 0.5, 0.5]


def _probs(fg):
    fg = torch.tensor(fg).reshape(1, 1, 8, 1, 1)
    return torch.cat([1 - fg, fg], dim=1)  # (1, 2, 8, 1, 1)


@pytest.mark.parametrize(
    ("temperature", "voxel", "foreground"),
    [
        # T = 1: w = (6, 2) / 6 = (1, 1/3); fg = p_t / 3 + 2 p_w / 3
        (1.0, 0, 0.9 / 3 + 0.2 / 3),  # 0.366667 > bg 0.1: foreground
        (1.0, 2, 0.1 / 3 + 2 / 3),  # 0.7 < bg 0.9: background
        (1.0, 3, 0.4 / 3 + 1.9 / 3),  # 0.766667 > bg 0.6: the cubes turn it foreground
        # T = 2: w_fg = sqrt(2 / 6) = 0.577350; 0.577350 * 0.4 + 0.422650 * 0.95 = 0.632457
        (2.0, 3, math.sqrt(1 / 3) * 0.4 + (1 - math.sqrt(1 / 3)) * 0.95),
    ],
)
def test_blend_weights_follow_the_class_counts(temperature, voxel, foreground):
    blended = blend_pseudo_labels(_probs(P_TEACHER), _probs(P_CUBES), temperature=temperature)
    assert blended[0, 1, voxel, 0, 0].item() == pytest.approx(foreground, abs=1e-6)
    # the most frequent class (background) keeps the teacher's probability: w = 1
    assert blended[0, 0, voxel, 0, 0].item() == pytest.approx(1 - P_TEACHER[voxel], abs=1e-6)


def test_blended_pseudo_label_and_its_fixed_point():
    blended = blend_pseudo_labels(_probs(P_TEACHER), _probs(P_CUBES))
    assert blended.argmax(1).flatten().tolist() == [1, 1, 0, 1, 0, 0, 0, 0]
    even = _probs([0.9] * 4 + [0.1] * 4)  # 4 and 4: w = (1, 1), the teacher alone
    assert torch.equal(blend_pseudo_labels(even, _probs(P_CUBES)), even)
    with pytest.raises(ValueError, match=r"must be \(B, K, \*S\) of one shape"):
        blend_pseudo_labels(even, even[:, :, :4])


# ------------------------------------------------------------------------------ location head
@pytest.mark.parametrize("name", ["unet3d", "vnet"])
def test_location_head_is_an_extra_output_only_when_asked(name):
    cfg = ModelConfig(name=name, widths=(4, 8, 8, 16, 16), base_filters=4, embedding_dim=8)
    torch.manual_seed(0)
    plain = build_model(cfg)
    torch.manual_seed(0)
    located = build_model(cfg, location_head=4)
    for key, value in plain.state_dict().items():  # the backbone is drawn first, unchanged
        assert torch.equal(value, located.state_dict()[key]), key
    x = torch.randn(8, 1, 16, 16, 32)  # 8 cubes of a (2, 2, 1) grid over 32 x 32 x 32
    assert located(x).aux is None or "location" not in located(x).aux
    assert located(x, location=True).aux["location"].shape == (8, 4)
    with pytest.raises(ValueError, match=r"location=True needs a location head"):
        plain(x, location=True)


def test_the_student_has_a_head_of_one_class_per_cell():
    (student, teacher) = MagicNet(MagicNetConfig(cube_grid=(3, 3, 2))).networks
    assert student.model == {"location_head": 18} and teacher.ema_of == "student"


# ------------------------------------------------------------------------------ the losses
@pytest.mark.parametrize(
    ("step", "terms", "sup_share", "consistency"),
    [
        # before the ramp is full (30 of 100): CE + Dice + cross Dice, each 1/3; weight
        # 0.2 exp(-5) at step 0
        (0, {"sup", "cross", "location", "consistency"}, 1 / 3, 0.2 * math.exp(-5)),
        # from then on: + the within-image Dice, each 1/4, consistency at full weight 0.2
        (30, {"sup", "cross", "location", "within", "consistency"}, 1 / 4, 0.2),
    ],
)
def test_terms_and_weights_before_and_after_the_ramp(step, terms, sup_share, consistency):
    method = MagicNet(MagicNetConfig(cube_grid=(2, 1, 1)))
    out = method(_batch(), _nets(method), StepState(step=step, total_steps=100))
    assert set(out.terms) == terms and all(torch.isfinite(v) for v in out.terms.values())
    assert out.weights["sup"] == out.weights["cross"] == pytest.approx(sup_share)
    assert out.weights["location"] == 0.1
    assert out.weights["consistency"] == pytest.approx(consistency)
    assert 0.0 <= out.logs["location_accuracy"] <= 1.0


def test_one_step_lowers_the_loss_with_every_term_on():
    method = MagicNet(MagicNetConfig(cube_grid=(2, 2, 1)))
    nets, batch, state = _nets(method), _batch(), StepState(step=50, total_steps=100)
    optimizer = torch.optim.SGD(nets["student"].parameters(), lr=0.01, momentum=0.9)

    def loss():
        torch.manual_seed(11)  # same permutations, dropout masks and teacher noise
        return method(batch, nets, state)

    before = loss()
    assert "within" in before.terms
    before.total().backward()
    optimizer.step()
    with torch.no_grad():
        assert loss().total() < before.total().detach()


# ---------------------------------------------------------------------------- the trainer
def _magicnet_config():
    """test_trainer's configuration, whose 32 x 32 x 16 patch takes a (2, 1, 1) grid; built on
    that patch because the default 48 x 48 x 32 takes no grid of (2, 1, 1)."""
    base = ExperimentConfig(
        method_name="magicnet", method={"cube_grid": [2, 1, 1]}, data=DataConfig(patch=(32, 32, 16))
    )
    overrides = [
        "data.num_labeled=2",
        "data.batch_size=4",
        "data.labeled_batch_size=2",
        "model.widths=[4, 8, 8, 16, 16]",
        "model.embedding_dim=8",
        "train.iterations=6",
        "train.checkpoint_every=2",
        "train.log_every=1",
        "train.device=cpu",
    ]
    return normalise(apply_overrides(normalise(base), overrides))


def _state(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)


@pytest.mark.parametrize(("die_at", "resumes_from"), [(3, 2), (5, 4)])
def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch, die_at, resumes_from):
    cfg = _magicnet_config()
    resume_is_exact(tmp_path, monkeypatch, cfg, die_at=die_at, resumes_from=resumes_from)
    log = [json.loads(x) for x in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    # the ramp is full from step 0.3 * 6 = 1.8: the within-image Dice joins at the third step
    assert ["within" in r["terms"] for r in log] == [False, False, True, True, True, True]


# ------------------------------------------------------------------- config errors, end to end
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # 32 x 32 x 16 does not divide by 3
        ([], r"method\.cube_grid=\[3, 3, 3\] is not allowed: .* use e\.g\. \[2, 1, 1\]"),
        # 16 x 16 x 16 cubes: the U-Net's InstanceNorm cannot take them
        (["method.cube_grid=[2, 2, 1]"], r"not all 16 \(InstanceNorm"),
        (["method.cube_grid=[1, 1, 1]"], r"at least 2 cells"),
        (["method.cube_grid=[0, 1, 1]"], r"method\.cube_grid=\[0, 1, 1\] is not allowed"),
        (["data.patch=[48, 32, 16]"], r"data\.patch=\[48, 32, 16\] .* use e\.g\. \[3, 1, 1\]"),
        (["method.location_weight=-1"], r"method\.location_weight=-1\.0 is not allowed"),
        (["method.blend_temperature=0"], r"method\.blend_temperature=0\.0 is not allowed"),
    ],
)
def test_a_grid_that_does_not_fit_fails_at_composition(overrides, message):
    base = ["method.cube_grid=[3, 3, 3]"]  # the default, over the smoke scale's [2, 1, 1]
    with pytest.raises(ConfigError, match=message) as err:
        compose(dataset="isles-sim", method="magicnet", scale="smoke", overrides=base + overrides)
    assert "\n" not in str(err.value)


def test_a_grid_that_fits_a_batchnorm_vnet_may_cut_16_cubes():
    cfg = compose(
        dataset="isles-sim",
        method="magicnet",
        scale="smoke",
        overrides=["model.name=vnet", "method.cube_grid=[2, 2, 1]"],
    )
    assert cfg.method["cube_grid"] == [2, 2, 1]


def test_bad_grid_from_the_cli_is_one_line_and_leaves_nothing(capsys, tmp_path):
    argv = ["run", "--dataset", "isles-sim", "--method", "magicnet", "--scale", "quick"]
    argv += ["--runs-dir", str(tmp_path / "runs"), "--data-root", str(tmp_path / "data")]
    code = main([*argv, "--quiet", "--set", "method.cube_grid=[3, 3, 3]"])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "method.cube_grid=[3, 3, 3] is not allowed" in err and "use e.g. [2, 2, 1]" in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("dataset", "scale", "grid"),
    [
        ("isles-sim", "smoke", [2, 1, 1]),
        ("isles-sim", "quick", [2, 2, 1]),
        ("isles22", "paper", [3, 3, 2]),
    ],
)
def test_presets_give_grids_that_fit(dataset, scale, grid):
    assert METHODS["magicnet"] == (MagicNetConfig, MagicNet)
    assert compose(dataset=dataset, method="magicnet", scale=scale).method["cube_grid"] == grid


def test_paper_cost_counts_the_cubes_at_their_size():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "paper_cost.py"
    spec = importlib.util.spec_from_file_location("paper_cost", path)
    paper_cost = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(paper_cost)
    cfg = compose(dataset="isles-sim", method="magicnet", scale="smoke")  # batch 2 = 1 + 1
    whole, cube = paper_cost.model_flops(cfg), paper_cost.model_flops(cfg, (16, 32, 16))
    step = paper_cost.step_flops(cfg)
    # 2 x 2 rows (the batch and its mix) + 2 x 2 cubes of 16 x 32 x 16; the teacher on 1 row
    assert step["parts"]["student_forward"] == 4 * whole["forward"] + 4 * cube["forward"]
    assert step["parts"]["teacher_forward"] == whole["forward"]
    assert cube["forward"] < whole["forward"]  # half the voxels: about half the FLOPs


@pytest.mark.slow
def test_smoke_run_from_the_cli(capsys, tmp_path, monkeypatch, default_data):
    _, log = smoke_run_from_the_cli(
        "magicnet",
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        data_root=default_data,
        capsys=capsys,
    )
    assert "within" in log[-1]["terms"] and "location" in log[0]["terms"]
