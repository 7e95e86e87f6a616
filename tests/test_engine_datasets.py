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
