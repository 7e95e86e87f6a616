"""Run by torchrun in test_distributed: a few DDP steps; each rank saves the weights it holds."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_trainer import _config, _data

from dycon.engine import trainer as trainer_module
from dycon.engine.distributed import world_from_env

HELD = {}
_real_step = trainer_module._step


def _recording_step(cfg, method, nets, *args, **kwargs):
    record = _real_step(cfg, method, nets, *args, **kwargs)
    for name, net in nets.items():  # the live weights of this rank after the update
        HELD[name] = {k: v.detach().clone() for k, v in net.state_dict().items()}
    HELD["rows"] = args[1]["image"].shape[0]  # items: this rank's shard of the batch
    return record


if __name__ == "__main__":
    out, method = Path(sys.argv[1]), sys.argv[2]
    trainer_module._step = _recording_step
    cfg = _config(method, **{"train.iterations": 3, "train.device": "cpu"})
    info = trainer_module.train(cfg, data=_data(), run_dir=out / "run", progress=False)
    torch.save({"info": info, "held": HELD}, out / f"rank{world_from_env().rank}.pt")
    torch.distributed.destroy_process_group()
