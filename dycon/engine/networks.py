"""What a method asks the trainer for: its networks, their optimizers, and the stages of a run.

Everything here reads the method's declarations (``NetworkSpec``, ``Stage``) and never its name,
so a method with two peers, an EMA copy or a pre-training stage needs no branch in the loop.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..config import ConfigError
from ..methods import METHODS, Method, Stage
from ..models import SegOutput, build_model
from .distributed import World
from .schema import ExperimentConfig, method_config


def build_method(cfg: ExperimentConfig) -> Method:
    return METHODS[cfg.method_name][1](method_config(cfg))


def trainable_names(method: Method) -> list[str]:
    return [s.name for s in method.networks if s.ema_of is None]


def build_networks(cfg: ExperimentConfig, method: Method, device) -> dict[str, nn.Module]:
    nets: dict[str, nn.Module] = {}
    for spec in method.networks:
        if spec.ema_of is None:
            nets[spec.name] = build_model(cfg.model, **spec.model).to(device)
        else:  # the teacher starts as a copy and is never optimised
            nets[spec.name] = copy.deepcopy(nets[spec.ema_of]).requires_grad_(False)
    return nets


ENSEMBLE = "ensemble"  # eval.model: the mean of the trainable networks' softmaxes


class Ensemble(nn.Module):
    """p = (1/K) sum_k softmax(f_k(x)), returned as ``logits = log p``.

    softmax(log p) = p (p sums to 1), so inference, which applies a softmax, gets the mean of
    the members' probabilities back exactly: MCF's and CML's two-network inference.
    """

    def __init__(self, members: dict[str, nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleDict(members)

    def forward(self, x: torch.Tensor) -> SegOutput:
        probs = torch.stack(
            [torch.softmax(m(x).logits.float(), dim=1) for m in self.members.values()]
        ).mean(0)  # (B, K, *S)
        return SegOutput(logits=probs.log(), embedding=None)


def build_network_of(cfg: ExperimentConfig, name: str) -> nn.Module:
    """One network of the method alone, with the model overrides of its spec (an EMA copy has
    its source's architecture), or the ``Ensemble`` of its trainable networks: what evaluation
    and Grad-CAM load a checkpoint into (``eval_members`` says under which names).

    Raises:
        ConfigError: the method has no network ``name`` (or fewer than two for the ensemble).
    """
    specs = {s.name: s for s in build_method(cfg).networks}
    if name == ENSEMBLE:
        members = [s.name for s in specs.values() if s.ema_of is None]
        if len(members) < 2:
            raise ConfigError(
                f"eval.model={ENSEMBLE!r} needs two trainable networks; method "
                f"{cfg.method_name!r} has {members}: set eval.model to one of them"
            )
        return Ensemble({m: build_network_of(cfg, m) for m in members})
    if name not in specs:
        raise ConfigError(
            f"method {cfg.method_name!r} has networks {sorted(specs)}, not {name!r}; set "
            "eval.model to one of them"
        )
    spec = specs[name] if specs[name].ema_of is None else specs[specs[name].ema_of]
    return build_model(cfg.model, **spec.model)


def eval_members(name: str, model: nn.Module) -> dict[str, nn.Module]:
    """The checkpoint names of what ``build_network_of(cfg, name)`` returned."""
    return dict(model.members) if isinstance(model, Ensemble) else {name: model}


def eval_network(cfg: ExperimentConfig, nets: dict[str, nn.Module]) -> nn.Module:
    """The network ``cfg.eval.model`` names among the training networks (no copy)."""
    if cfg.eval.model != ENSEMBLE:
        return nets[cfg.eval.model]
    return Ensemble({k: nets[k] for k in trainable_names(build_method(cfg))})


def build_optimizer(cfg: ExperimentConfig, net: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        net.parameters(),
        lr=cfg.optim.lr,
        momentum=cfg.optim.momentum,
        weight_decay=cfg.optim.weight_decay,
    )


def build_optimizers(cfg: ExperimentConfig, nets: dict, names: list[str]) -> dict:
    return {n: build_optimizer(cfg, nets[n]) for n in names}


def plan_stages(method: Method, total_steps: int) -> list[tuple[int, Stage]]:
    """``(first global step, stage)`` of each stage; they must cover ``total_steps`` exactly."""
    stages = method.stages(total_steps)
    names = {s.name for s in method.networks}
    trainable = set(trainable_names(method))
    for stage in stages:
        unknown = (set(stage.train or ()) - trainable) | (
            set(stage.init) | set(stage.init.values())
        ) - names
        if stage.steps < 1 or unknown:
            raise ConfigError(
                f"method {method.name!r}: stage {stage.name!r} has {stage.steps} steps and "
                f"names networks {sorted(unknown)} it does not have; fix its stages()"
            )
    if sum(s.steps for s in stages) != total_steps:
        raise ConfigError(
            f"method {method.name!r}: its stages add up to {sum(s.steps for s in stages)} "
            f"steps, not train.iterations={total_steps}; fix its stages()"
        )
    starts = [sum(s.steps for s in stages[:i]) for i in range(len(stages))]
    return list(zip(starts, stages, strict=True))


@torch.no_grad()
def begin_stage(stage: Stage, *, cfg: ExperimentConfig, nets: dict, optimizers: dict) -> None:
    """Copy ``stage.init``'s weights and start every optimizer afresh (no momentum carried)."""
    for target, source in stage.init.items():
        nets[target].load_state_dict(nets[source].state_dict())
    for name in optimizers:
        optimizers[name] = build_optimizer(cfg, nets[name])


def wrap_ddp(nets: dict, trainable: list[str], world: World, device) -> dict[str, nn.Module]:
    """What the method calls: DDP wrappers of the trainable networks under torchrun.

    Checkpoints and the EMA keep using the bare modules, so a checkpoint loads the same way
    whether it was written by one process or several.
    """
    if world.size == 1:
        return nets
    ids = [device.index] if device.type == "cuda" else None
    # Unused parameters are normal: MT never calls the projection head, nor DyCON the SDF head.
    return {
        name: DistributedDataParallel(net, device_ids=ids, find_unused_parameters=True)
        if name in trainable
        else net
        for name, net in nets.items()
    }
