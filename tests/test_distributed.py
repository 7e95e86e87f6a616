"""Data-parallel training under torchrun: batch shards, and 2 CPU processes with gloo."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dycon.config import ConfigError
from dycon.engine.distributed import World, check_divisible, shard

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize(
    ("rank", "expected"),
    [(0, [0, 1, 10, 11]), (1, [2, 3, 12, 13])],
)
def test_each_rank_takes_its_slice_of_labeled_and_unlabeled_rows(rank, expected):
    batch = [0, 1, 2, 3, 10, 11, 12, 13]  # 4 labeled then 4 unlabeled
    assert shard(batch, labeled_batch_size=4, world=World(rank=rank, size=2)) == expected


def test_one_process_keeps_the_whole_batch():
    assert shard([5, 6, 7], labeled_batch_size=1, world=World()) == [5, 6, 7]


def test_indivisible_batch_is_a_config_error():
    with pytest.raises(ConfigError, match=r"labeled_batch_size=1 .* divide by the 2 processes"):
        check_divisible(batch_size=4, labeled_batch_size=1, world=World(rank=0, size=2))


def _torchrun(*argv, cwd, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.run(
        [*cmd, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
@pytest.mark.parametrize("method", ["supervised", "dycon", "cps", "mcf", "cml"])
def test_two_gloo_processes_train_in_lockstep(tmp_path, method):
    proc = _torchrun(str(HERE / "_ddp_worker.py"), str(tmp_path), method, cwd=HERE.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["info"]["world_size"] == 2 and r0["info"]["steps"] == 3
    assert r0["held"]["rows"] == r1["held"]["rows"] == 2  # each rank got half the batch of 4
    networks = {"supervised": ("student",), "dycon": ("student", "teacher")}
    for net in networks.get(method, ("student", "peer")):  # both co-trained networks
        a, b = r0["held"][net], r1["held"][net]
        # BatchNorm running statistics are per rank between DDP's broadcasts; parameters are not
        params = [
            k for k in a if not k.endswith(("running_mean", "running_var", "batches_tracked"))
        ]
        assert len(params) > 10
        assert all(torch.equal(a[k], b[k]) for k in params), f"{net} weights differ between ranks"
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    live = {k.removeprefix("module."): v for k, v in r0["held"]["student"].items()}
    assert set(saved["nets"]["student"]) == set(live)  # the bare module, not the DDP wrapper
    assert all(torch.equal(saved["nets"]["student"][k], live[k]) for k in live)
    steps = [
        json.loads(x)["step"] for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3]  # rank 0 alone logs


@pytest.mark.slow
def test_torchrun_cli_smoke_run_evaluates_once(tmp_path):
    proc = _torchrun(
        "-m",
        "dycon",
        "run",
        "--dataset",
        "isles-sim",
        "--method",
        "mt",
        "--scale",
        "smoke",
        "--data-root",
        str(tmp_path / "data"),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--set",
        "train.device=cpu",
        "--set",
        "data.batch_size=4",
        "--set",
        "data.labeled_batch_size=2",
        "--quiet",
        cwd=HERE.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("Dice") == 1  # rank 0 alone evaluates
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["train"]["world_size"] == 2 and summary["cases"] > 0
