"""dataset_folder: isles-sim from an older generator is regenerated, never silently reused."""

import json

from dycon.data.isles_sim import GENERATOR_VERSION
from dycon.data.prepare import prepare
from dycon.engine.datasets import dataset_folder
from dycon.engine.presets import compose


def test_isles_sim_from_another_generator_version_is_regenerated(tmp_path, capsys):
    folder = prepare("isles-sim", dest=tmp_path / "isles-sim", preset="tiny")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["source"]["generator_version"] = "0.0.1"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    cfg = compose(dataset="isles-sim", method="supervised", scale="smoke")
    assert dataset_folder(cfg, root=tmp_path) == folder
    assert "generator 0.0.1" in capsys.readouterr().out
    fresh = json.loads((folder / "manifest.json").read_text())
    assert fresh["source"]["generator_version"] == GENERATOR_VERSION
    assert fresh["source"]["preset"] == "tiny" and len(fresh["cases"]) == 6
    capsys.readouterr()
    dataset_folder(cfg, root=tmp_path)  # current now: reused without a word
    assert capsys.readouterr().out == ""


def test_two_processes_asking_at_once_generate_it_once(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from dycon.engine.datasets import dataset_folder; "
        "from dycon.engine.presets import compose; "
        "cfg = compose(dataset='isles-sim', method='supervised', scale='smoke'); "
        "print(dataset_folder(cfg, root=sys.argv[1]))"
    )
    # tiny keeps it fast: a prepared-but-stale tiny set makes both processes want to regenerate
    folder = prepare("isles-sim", dest=tmp_path / "isles-sim", preset="tiny")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["source"]["generator_version"] = "0.0.1"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert sum("regenerating" in o[0] for o in outs) == 1  # the second found it current
    fresh = json.loads((folder / "manifest.json").read_text())
    assert fresh["source"]["generator_version"] == GENERATOR_VERSION
