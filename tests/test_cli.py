"""The command line: one-line errors with exit status 2, and a smoke run end to end."""

import json
import shutil
import subprocess
import sys

import pytest

from dycon.cli import main
from dycon.engine.evaluate import load_prediction


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["config", "--dataset", "nope", "--method", "dycon"], "unknown dataset 'nope'"),
        (["config", "--dataset", "la", "--method", "dycon", "--scale", "huge"], "unknown scale"),
        (
            ["config", "--dataset", "la", "--method", "dycon", "--set", "train.iteration=3"],
            "did you mean 'train.iterations'",
        ),
        (
            ["config", "--dataset", "la", "--method", "dycon", "--set", "optim.lr=fast"],
            "optim.lr must be float",
        ),
        (
            ["config", "--dataset", "la", "--method", "dycon", "--config", "missing.yaml"],
            "cannot read config",
        ),
    ],
)
def test_bad_configuration_exits_2_with_one_line(capsys, argv, message):
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_missing_data_root_names_the_variable_and_the_page(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DYCON_DATA", str(tmp_path / "nowhere"))
    code, _, err = _run(capsys, "data", "status")
    assert code == 2 and "DYCON_DATA" in err and "book/data.md" in err


def test_unprepared_real_dataset_says_how_to_prepare(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DYCON_DATA", str(tmp_path))
    code, _, err = _run(
        capsys,
        "train",
        "--dataset",
        "brats19",
        "--method",
        "dycon",
        "--scale",
        "smoke",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--quiet",
    )
    assert code == 2 and "python -m dycon data prepare brats19" in err


def test_module_entry_point_exit_status():
    proc = subprocess.run(
        [sys.executable, "-m", "dycon", "config", "--dataset", "nope", "--method", "dycon"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")


@pytest.mark.slow
def test_smoke_run_on_isles_sim_end_to_end(capsys, tmp_path, monkeypatch, default_data):
    monkeypatch.setenv("DYCON_DATA", str(default_data))
    argv = [
        "run",
        "--dataset",
        "isles-sim",
        "--method",
        "dycon",
        "--scale",
        "smoke",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--quiet",
    ]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    assert "SYNTHETIC" in out  # the result line says the data are synthetic
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["data_kind"] == "synthetic" and summary["scale"] == "smoke"
    assert summary["cases"] == 24 and summary["protocol"]["model_selection"] == "final"
    assert 0.0 <= summary["metrics"]["dice"]["mean"] <= 100.0
    assert {"config.yaml", "log.jsonl", "per_case.csv", "train.json", "predictions"} <= {
        p.name for p in run_dir.iterdir()
    }
    saved = sorted((run_dir / "predictions").glob("*.npz"))
    assert len(saved) == 24
    pred, spacing = load_prediction(saved[0])
    assert pred.dtype == bool and pred.ndim == 3 and spacing == (3.0, 3.0, 3.5)
    code, out, _ = _run(capsys, *argv)  # the same command again: nothing recomputed
    assert code == 0 and "already evaluated" in out


@pytest.mark.slow
def test_best_val_selects_on_validation_and_says_which_step(
    capsys, tmp_path, monkeypatch, default_data
):
    monkeypatch.setenv("DYCON_DATA", str(default_data))
    common = ["--dataset", "isles-sim", "--method", "mt", "--scale", "smoke"]
    common += ["--runs-dir", str(tmp_path / "runs"), "--quiet"]
    code, _, err = _run(capsys, "run", *common, "--set", "eval.select=best_val")
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    train_info = json.loads((run_dir / "train.json").read_text())
    assert summary["protocol"]["model_selection"] == "best_val"
    assert summary["protocol"]["selected_step"] == train_info["best"]["step"]
    logged = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "val_dice" in r] == [2, 4]  # every checkpoint_every
    code, _, err = _run(
        capsys, "train", *common, "--set", "eval.select=best_val", "--set", "data.val_list=null"
    )
    assert code == 2 and "has no validation list" in err and err.count("\n") == 1


@pytest.mark.slow
def test_evaluate_force_on_a_notebook_run_keeps_its_training_record(
    capsys, tmp_path, finished_tiny_run
):
    # issue 14 item 1: a run made by experiments.ensure had no train.json, so a forced
    # re-evaluation from the command line read {} and the summary lost its training seconds
    runs_dir = shutil.copytree(finished_tiny_run.runs_dir, tmp_path / "runs")
    run_dir = runs_dir / finished_tiny_run.run_dir.name
    before = json.loads((run_dir / "summary.json").read_text())
    recorded = json.loads((run_dir / "train.json").read_text())
    assert before["train"]["seconds"] == recorded["seconds"] > 0
    code, out, err = _run(
        capsys, "evaluate", *finished_tiny_run.cli_args(runs_dir=runs_dir), "--force", "--quiet"
    )
    assert code == 0, err
    assert out.startswith(f"{run_dir.name}: Dice")  # evaluated again, not "already evaluated"
    after = json.loads((run_dir / "summary.json").read_text())
    assert after["train"] == before["train"]  # seconds, steps, memory and the selected step
    # the summary names the copy of the data it was evaluated on, as the run's stamp does
    stamp = json.loads((run_dir / "data.json").read_text())
    assert after["data_hash"] == stamp["data_hash"] and len(after["data_hash"]) == 16
    assert [p.name for p in runs_dir.iterdir()] == [run_dir.name]  # the same run id
