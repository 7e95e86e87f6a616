"""Methods: one optimisation step lowers each method's loss; switches and label hygiene."""

import pytest
import torch

from dycon.engine.presets import compose
from dycon.methods import (
    IGNORE_LABEL,
    METHODS,
    Batch,
    DyCON,
    DyconConfig,
    StepState,
)
from dycon.models import ModelConfig, build_model


def _tiny_model(**overrides):  # overrides: a NetworkSpec's model (DTC's SDF head, URPC's list)
    return build_model(ModelConfig(widths=(4, 8, 8, 16, 16), embedding_dim=8), **overrides)


def _batch(num_labeled=2, hide_unlabeled=True):
    g = torch.Generator().manual_seed(3)
    image = torch.randn(4, 1, 32, 32, 32, generator=g)
    label = torch.zeros(4, 32, 32, 32, dtype=torch.long)
    label[:, 8:20, 10:22, 6:18] = 1
    image = image + 2.0 * label[:, None]  # learnable: foreground is brighter
    if hide_unlabeled:
        label[num_labeled:] = IGNORE_LABEL
    return Batch(image=image, label=label, num_labeled=num_labeled)


def _nets(method):
    torch.manual_seed(0)
    nets = {}
    for spec in method.networks:
        if spec.ema_of is None:
            nets[spec.name] = _tiny_model(**spec.model)
        else:
            teacher = _tiny_model(**method.networks[0].model)
            teacher.load_state_dict(nets[spec.ema_of].state_dict())
            nets[spec.name] = teacher
    return nets


# Settings that fit the 32^3 test batch where a default does not (MagicNet's 3 x 3 x 3 grid).
FOR_THE_TEST_BATCH = {"magicnet": {"cube_grid": (2, 1, 1)}}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_one_step_lowers_the_loss(name):
    config_cls, method_cls = METHODS[name]
    method = method_cls(config_cls(**FOR_THE_TEST_BATCH.get(name, {})))
    nets = _nets(method)
    state = StepState(step=500, total_steps=1000)  # weights ramped up
    # as the trainer does: the method's transform (copy-paste mixing) before its losses
    batch = method.transform(_batch(hide_unlabeled=not method.uses_unlabeled_ground_truth), state)
    trainable = [p for s in method.networks if s.ema_of is None for p in nets[s.name].parameters()]
    optimizer = torch.optim.SGD(trainable, lr=0.01, momentum=0.9)  # every network it trains

    def loss():
        torch.manual_seed(11)  # same dropout masks and teacher noise for both evaluations
        return method(batch, nets, state)

    before = loss()
    assert set(before.terms) >= {"sup"} and all(torch.isfinite(v) for v in before.terms.values())
    before.total().backward()
    optimizer.step()
    with torch.no_grad():
        after = loss().total()
    assert after < before.total().detach()


def test_dycon_terms_and_table5_switches():
    method = DyCON(DyconConfig())
    nets = _nets(method)
    terms = method(_batch(), nets, StepState(step=0, total_steps=100))
    assert set(terms.terms) == {"sup", "uncl", "fecl"}
    assert terms.logs["beta"] == pytest.approx(5.0)
    off = DyCON(DyconConfig(use_fecl=False, use_uncl=False))
    assert set(off(_batch(), nets, StepState(0, 100)).terms) == {"sup"}
    ablated = DyCON(DyconConfig(focal=False, hard_negatives=False, entropy_weighting=False))
    assert torch.isfinite(ablated(_batch(), nets, StepState(0, 100)).terms["fecl"])


def test_reference_preset_reproduces_the_official_setting():
    cfg = compose(dataset="brats19", method="dycon-reference", scale="paper")
    method_cfg = DyconConfig(**cfg.method)
    assert (method_cfg.eta, method_cfg.fecl_variant, method_cfg.fecl_labels) == (
        0.5,
        "reference",
        "gt_all",
    )
    assert (method_cfg.mt_weight, method_cfg.mt_double_softmax, cfg.optim.grad_clip) == (
        0.1,
        True,
        1.0,
    )
    method = DyCON(method_cfg)
    assert method.uses_unlabeled_ground_truth
    terms = method(_batch(hide_unlabeled=False), _nets(method), StepState(100, 1000))
    assert set(terms.terms) == {"sup", "uncl", "fecl", "mt"}


def test_gt_plus_pseudo_never_reads_unlabeled_ground_truth():
    method = DyCON(DyconConfig())
    assert not method.uses_unlabeled_ground_truth
    nets = _nets(method)
    hidden, shown = _batch(hide_unlabeled=True), _batch(hide_unlabeled=False)
    torch.manual_seed(5)
    a = method(hidden, nets, StepState(0, 10)).total()
    torch.manual_seed(5)
    b = method(shown, nets, StepState(0, 10)).total()
    assert a.item() == b.item()  # the unlabeled ground truth changes nothing
