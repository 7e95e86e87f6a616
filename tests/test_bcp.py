"""BCP: the copy-paste mixing, its region-split supervision, its stages. Hand-computed values in
the comments (zero logits give p = 0.5: CE = ln 2 = 0.693147, and a region of V voxels holding
G foreground ones has Dice 1 - (2 * 0.5 G + eps) / (0.25 V + G + eps))."""

import json
import math

import pytest
import torch
from method_checks import resume_is_exact, smoke_run_from_the_cli
from test_methods import _batch, _nets
from test_trainer import _config, _data

from dycon.cli import main
from dycon.config import ConfigError
from dycon.engine.presets import compose
from dycon.engine.trainer import train
from dycon.methods import IGNORE_LABEL, METHODS, Batch, StepState
from dycon.methods import bcp as bcp_module
from dycon.methods.bcp import BCP, BCPConfig, bidirectional_mix, pseudo_labels, region_dice_ce
from dycon.methods.mixing import cube_mask, paste, random_cube_mask
from dycon.models import SegOutput

LN2 = math.log(2.0)
CUBE = {"start": (1, 1, 1), "size": (2, 2, 2)}  # voxels 1..2 on every axis: 8 of 64
MASK = cube_mask((4, 4, 4), **CUBE)
LABELED = torch.arange(64.0).reshape(1, 1, 4, 4, 4)  # value = 16 i + 4 j + k at (i, j, k)
UNLABELED = -LABELED - 100.0  # -100 - (16 i + 4 j + k)
Y_L = torch.zeros(1, 4, 4, 4, dtype=torch.long)
Y_L[:, 3:] = 1  # ground truth: the slab i = 3 (16 voxels, none in the cube)
Y_U = torch.zeros(1, 4, 4, 4, dtype=torch.long)
Y_U[:, :, :2] = 1  # pseudo-label: the slab j < 2 (32 voxels, 4 in the cube: j = 1)


def test_cube_mask_is_false_on_the_cube_only():
    assert (~MASK).sum() == 8 and not MASK[1:3, 1:3, 1:3].any()
    assert MASK[0].all() and MASK[3].all() and MASK[:, 0].all() and MASK[:, :, 3].all()


def test_random_cube_mask_has_the_official_size_and_fits():
    torch.manual_seed(0)
    mask = random_cube_mask((112, 112, 80), fraction=2 / 3)
    # int(2/3 * 112) = 74, int(2/3 * 80) = 53: the official 74 x 74 x 53 cube
    assert (~mask).sum() == 74 * 74 * 53
    inside = (~mask).nonzero()
    assert (inside.max(0).values - inside.min(0).values + 1).tolist() == [74, 74, 53]


@pytest.mark.parametrize(
    ("voxel", "x_in", "x_out", "y_in", "y_out"),
    [
        # outside the cube X_in keeps the labeled context and its ground truth, X_out the reverse
        ((0, 0, 0), 0.0, -100.0, 0, 1),  # y_u(0, 0, 0) = 1 (j = 0 < 2)
        ((3, 3, 3), 63.0, -163.0, 1, 0),  # y_l = 1 (i = 3); y_u = 0 (j = 3)
        ((3, 0, 2), 50.0, -150.0, 1, 1),  # 16*3 + 0 + 2 = 50
        # inside it the unlabeled cube (and its pseudo-label) in X_in, the labeled one in X_out
        ((1, 1, 1), -121.0, 21.0, 1, 0),  # 16 + 4 + 1 = 21; y_u = 1 (j = 1), y_l = 0
        ((2, 2, 2), -142.0, 42.0, 0, 0),  # 32 + 8 + 2 = 42; y_u = 0 (j = 2), y_l = 0 (i = 2)
        ((2, 1, 2), -138.0, 38.0, 1, 0),  # 32 + 4 + 2 = 38
    ],
)
def test_bidirectional_mix_of_a_4x4x4_pair(voxel, x_in, x_out, y_in, y_out):
    image_in, image_out = bidirectional_mix(LABELED, UNLABELED, MASK)
    label_in, label_out = bidirectional_mix(Y_L, Y_U, MASK)
    assert image_in[(0, 0, *voxel)] == x_in and image_out[(0, 0, *voxel)] == x_out
    assert label_in[(0, *voxel)] == y_in and label_out[(0, *voxel)] == y_out
    # y_in: 16 of y_l outside (none inside) + 4 of y_u inside = 20; y_out: 28 of y_u outside
    assert (label_in.sum(), label_out.sum()) == (20, 28)


def test_paste_of_mismatched_shapes_is_one_line():
    with pytest.raises(ValueError, match=r"paste needs two tensors of one shape") as err:
        paste(LABELED, UNLABELED[..., :2], MASK)
    assert "\n" not in str(err.value)


def _known_mask(monkeypatch):
    monkeypatch.setattr(bcp_module, "random_cube_mask", lambda shape, fraction: MASK)


def test_transform_mixes_both_directions_and_hides_the_pseudo_regions(monkeypatch):
    _known_mask(monkeypatch)
    label = torch.cat([Y_L, torch.full_like(Y_U, IGNORE_LABEL)])  # the trainer hid row 2
    batch = Batch(image=torch.cat([LABELED, UNLABELED]), label=label, num_labeled=1)
    out = BCP().transform(batch, StepState(step=0, total_steps=10, stage="main"))
    assert out.image.shape == (2, 1, 4, 4, 4)
    assert out.image[0, 0, 0, 0, 0] == 0.0 and out.image[0, 0, 1, 1, 1] == -121.0  # X_in
    assert out.image[1, 0, 0, 0, 0] == -100.0 and out.image[1, 0, 1, 1, 1] == 21.0  # X_out
    # X_in: ground truth outside the cube, hidden inside; X_out: the reverse
    assert (out.label[0][~MASK] == IGNORE_LABEL).all() and (out.label[0][MASK] >= 0).all()
    assert (out.label[1][MASK] == IGNORE_LABEL).all() and (out.label[1][~MASK] >= 0).all()
    assert torch.equal(out.extras["unlabeled"], UNLABELED)


def test_pretrain_transform_pastes_the_next_labeled_row(monkeypatch):
    _known_mask(monkeypatch)
    batch = Batch(image=torch.cat([LABELED, UNLABELED]), label=torch.cat([Y_L, Y_U]), num_labeled=2)
    out = BCP().transform(batch, StepState(step=0, total_steps=10, stage="pretrain"))
    # row 0: its own context, row 1's cube; row 1: its context, row 0's cube (cyclic)
    assert out.image[0, 0, 0, 0, 0] == 0.0 and out.image[0, 0, 1, 1, 1] == -121.0
    assert out.image[1, 0, 0, 0, 0] == -100.0 and out.image[1, 0, 1, 1, 1] == 21.0
    assert out.label[0, 1, 1, 1] == 1 and out.label[1, 1, 1, 1] == 0  # Y_U, Y_L at (1, 1, 1)


def _region(n_voxels, n_fg):
    """One row of n_voxels voxels, the first n_fg foreground, all in the region."""
    target = torch.zeros(1, n_voxels, 1, 1, dtype=torch.long)
    target[:, :n_fg] = 1
    return target, torch.ones_like(target, dtype=torch.bool)


@pytest.mark.parametrize(
    ("n_voxels", "n_fg", "expected"),
    [
        (8, 4, 0.5 * (1 / 3 + LN2)),  # Dice 1 - 4 / (2 + 4) = 1/3: 0.513240
        (56, 16, 0.5 * (1 - 16 / 30 + LN2)),  # 1 - 16 / (14 + 16) = 0.466667: 0.579907
        (8, 0, 0.5 * (1 - 1e-5 / (2 + 1e-5) + LN2)),  # no foreground: Dice ~1: 0.846571
    ],
)
def test_region_dice_ce_at_p_one_half(n_voxels, n_fg, expected):
    target, region = _region(n_voxels, n_fg)
    logits = torch.zeros(1, 2, n_voxels, 1, 1)
    assert region_dice_ce(logits, target, region).item() == pytest.approx(expected, abs=1e-6)


def test_region_dice_ce_ignores_the_voxels_outside_its_region():
    target, region = _region(8, 4)
    # 8 more voxels outside the region, confidently wrong and labeled IGNORE_LABEL: no effect
    logits = torch.cat([torch.zeros(1, 2, 8, 1, 1), torch.full((1, 2, 8, 1, 1), 9.0)], dim=2)
    logits[:, 1, 8:] = -9.0
    wide_target = torch.cat([target, torch.full_like(target, IGNORE_LABEL)], dim=1)
    wide_region = torch.cat([region, torch.zeros_like(region)], dim=1)
    got = region_dice_ce(logits, wide_target, wide_region)
    assert got.item() == pytest.approx(0.5 * (1 / 3 + LN2), abs=1e-6)


class _Fixed(torch.nn.Module):
    """A network whose output is fixed: zero logits (student), or one-hot logits of a label."""

    def __init__(self, label=None):
        super().__init__()
        self.label = label
        self.weight = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        b, shape = x.shape[0], x.shape[2:]
        if self.label is None:
            return SegOutput(torch.zeros(b, 2, *shape) + 0 * self.weight, None)
        onehot = torch.nn.functional.one_hot(self.label.expand(b, *shape), 2).movedim(-1, 1)
        return SegOutput(5.0 * onehot.float(), None)


def test_region_weights_of_the_main_loss(monkeypatch):
    _known_mask(monkeypatch)
    label = torch.cat([Y_L, torch.full_like(Y_U, IGNORE_LABEL)])
    batch = Batch(image=torch.cat([LABELED, UNLABELED]), label=label, num_labeled=1)
    method = BCP()
    state = StepState(step=0, total_steps=10, stage="main")
    nets = {"student": _Fixed(), "teacher": _Fixed(Y_U[0])}
    terms = method(method.transform(batch, state), nets, state)
    # X_in : ground truth outside (56 voxels, 16 fg) 0.579907; pseudo in the cube (8, 4) 0.513240
    # X_out: ground truth in the cube (8, 0) 0.846571; pseudo outside (56 voxels, 28 fg) 0.513240
    assert terms.terms["sup"].item() == pytest.approx(0.579907 + 0.846571, abs=1e-5)
    assert terms.terms["pseudo"].item() == pytest.approx(2 * 0.513240, abs=1e-5)
    assert terms.weights == {"sup": 1.0, "pseudo": 0.5}
    # total: 1.426478 + 0.5 * 1.026480 = 1.939718
    assert terms.total().item() == pytest.approx(1.939718, abs=1e-5)
    assert terms.logs["pseudo_foreground"] == pytest.approx(0.5)  # 32 of 64


def test_the_losses_refuse_a_batch_that_skipped_the_transform():
    with pytest.raises(ValueError, match=r"call transform\(\) first"):
        BCP()(_batch(), {"student": _Fixed(), "teacher": _Fixed()}, StepState(0, 10))


@pytest.mark.parametrize("largest", [True, False])
def test_pseudo_labels_keep_the_largest_component(largest):
    logits = torch.zeros(1, 2, 8, 8, 8)
    logits[0, 1, 0:3, 0:3, 0:3] = 1.0  # 27 voxels
    logits[0, 1, 6:8, 6:8, 6:8] = 1.0  # 8 voxels, not touching (26-connectivity)
    got = pseudo_labels(logits, largest=largest)
    assert got.sum() == (27 if largest else 35) and got[0, 0, 0, 0] == 1


@pytest.mark.parametrize(
    ("total", "pretrain", "main"),
    [
        (17000, 2000, 15000),  # the official LA split
        (90, 11, 79),  # round(90 * 2 / 17) = round(10.59) = 11
        (4, 1, 3),  # round(0.47) = 0 -> at least 1
        (2, 1, 1),
    ],
)
def test_stages_split_the_run(total, pretrain, main):
    pre, rest = BCP().stages(total)
    assert (pre.name, pre.steps, rest.name, rest.steps) == ("pretrain", pretrain, "main", main)
    assert pre.labeled_only and pre.train == ("student",) and not pre.update_ema
    assert rest.init == {"teacher": "student"} and not rest.labeled_only


def test_teacher_is_a_fixed_alpha_ema():
    (_, teacher) = BCP(BCPConfig(ema_decay=0.99)).networks
    assert (teacher.ema_of, teacher.ema_decay, teacher.ema_warmup) == ("student", 0.99, False)
    assert BCP().networks[1].ema_decay is None  # train.ema_decay


@pytest.mark.parametrize("stage", ["pretrain", "main"])
def test_one_step_lowers_the_loss(stage):
    method = BCP()
    nets = _nets(method)
    state = StepState(step=5, total_steps=10, stage=stage)
    raw = _batch()
    if stage == "pretrain":  # the trainer's labeled-only batches
        raw = Batch(image=raw.image[:2], label=raw.label[:2], num_labeled=2)
    torch.manual_seed(5)
    batch = method.transform(raw, state)
    optimizer = torch.optim.SGD(nets["student"].parameters(), lr=0.01, momentum=0.9)

    def loss():
        torch.manual_seed(11)  # same dropout masks in both evaluations
        return method(batch, nets, state)

    before = loss()
    assert all(torch.isfinite(v) for v in before.terms.values())
    before.total().backward()
    optimizer.step()
    with torch.no_grad():
        assert loss().total() < before.total().detach()


# --------------------------------------------------------------------------- the trainer
def _bcp_config():
    return _config("bcp", **{"method.pretrain_fraction": 0.5, "train.device": "cpu"})


def _state(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)


def test_pretraining_starts_the_teacher_and_then_it_follows(tmp_path, monkeypatch):
    seen = []
    real = BCP.__call__

    def spy(self, batch, nets, state):
        same = all(
            torch.equal(v, nets["student"].state_dict()[k])
            for k, v in nets["teacher"].state_dict().items()
        )
        seen.append((state.stage, batch.image.shape[0], same))
        return real(self, batch, nets, state)

    monkeypatch.setattr(BCP, "__call__", spy)
    train(_bcp_config(), data=_data(), run_dir=tmp_path, progress=False)
    # pre-training: the 2 labeled rows, mixed in pairs; main: 2 pairs in both directions = 4
    assert [(s, r) for s, r, _ in seen] == [("pretrain", 2)] * 3 + [("main", 4)] * 3
    assert [same for *_, same in seen][3:] == [True, False, False]  # copied, then an EMA
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [set(r["terms"]) for r in lines] == [{"sup"}] * 3 + [{"sup", "pseudo"}] * 3


@pytest.mark.parametrize(
    ("die_at", "resumes_from"),
    [(3, 2), (4, 3), (6, 4)],  # in pre-training, at the boundary, in the main stage
)
def test_kill_and_resume_across_the_stage_boundary(tmp_path, monkeypatch, die_at, resumes_from):
    resume_is_exact(tmp_path, monkeypatch, _bcp_config(), die_at=die_at, resumes_from=resumes_from)


# ------------------------------------------------------------------- config errors, end to end
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("method.pretrain_fraction=1.0", r"method\.pretrain_fraction=1\.0 is not allowed"),
        ("method.pretrain_fraction=0", r"method\.pretrain_fraction=0\.0 is not allowed"),
        ("method.cube_fraction=0", r"method\.cube_fraction=0\.0 is not allowed"),
        ("method.pseudo_weight=-0.5", r"method\.pseudo_weight=-0\.5 is not allowed"),
        ("method.ema_decay=1.5", r"method\.ema_decay=1\.5 is not allowed"),
        ("method.largest_component=2", r"method\.largest_component must be bool"),
        ("train.iterations=1", r"train\.iterations=1 is not allowed: it must be at least 2"),
    ],
)
def test_bad_bcp_values_fail_at_composition(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        compose(dataset="isles-sim", method="bcp", scale="smoke", overrides=[override])
    assert "\n" not in str(err.value)


def test_bad_bcp_value_from_the_cli_is_one_line_and_leaves_nothing(capsys, tmp_path):
    argv = ["run", "--dataset", "isles-sim", "--method", "bcp", "--scale", "smoke"]
    argv += ["--runs-dir", str(tmp_path / "runs"), "--data-root", str(tmp_path / "data")]
    code = main([*argv, "--quiet", "--set", "method.cube_fraction=1.5"])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "method.cube_fraction=1.5 is not allowed" in err and "--set" in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


def test_bcp_is_registered_with_its_preset():
    assert METHODS["bcp"] == (BCPConfig, BCP)
    cfg = compose(dataset="isles-sim", method="bcp", scale="quick")
    assert cfg.method == {
        "pretrain_fraction": 2000 / 17000,
        "cube_fraction": 2 / 3,
        "pseudo_weight": 0.5,
        "largest_component": True,
        "ema_decay": None,
    }


@pytest.mark.slow
def test_smoke_run_from_the_cli(capsys, tmp_path, monkeypatch, default_data):
    _, log = smoke_run_from_the_cli(
        "bcp", tmp_path=tmp_path, monkeypatch=monkeypatch, data_root=default_data, capsys=capsys
    )
    assert [r["stage"] for r in log] == ["pretrain"] + ["main"] * 3  # smoke: 4 iterations


def test_paper_cost_counts_the_mean_step_of_both_stages():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "paper_cost.py"
    spec = importlib.util.spec_from_file_location("paper_cost", path)
    paper_cost = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(paper_cost)
    cfg = compose(dataset="isles-sim", method="bcp", scale="smoke")  # batch 2 = 1 + 1, 4 steps
    counts = paper_cost.model_flops(cfg)
    fwd, bwd = counts["forward"], counts["backward"]["logits"]
    step = paper_cost.step_flops(cfg)
    # 1 of 4 steps pre-trains (1 labeled row, fwd + bwd); 3 mix 1 pair both ways (2 rows fwd +
    # bwd) and run the teacher on the 1 unlabeled row
    assert step["pretrain_share"] == 0.25
    expected = 0.75 * (2 * (fwd + bwd) + fwd) + 0.25 * (fwd + bwd)
    assert step["total"] == pytest.approx(expected)
    assert step["parts"]["teacher_forward"] == pytest.approx(0.75 * fwd)
