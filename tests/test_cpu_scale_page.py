"""The cpu-scale pages (notebooks/cpu_scale.ipynb for Table 4, cpu_scale_table5.ipynb for Table 5)
render a bench record into verdicts."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def _record(tmp_path: Path) -> Path:
    def run(row, seed, base, collapsed=False):
        cases = {f"c{i}": base + i for i in range(4)}
        return {
            "row": row,
            "percent": 5,
            "seed": seed,
            "collapsed": collapsed,
            "dice": sum(cases.values()) / 4,
            "seconds": 60.0,
            "dice_per_case": cases,
        }

    runs = [
        run("Supervised (labeled only)", 1, 60.0),
        run("Supervised (labeled only)", 2, 61.0),
        run("UA-MT", 1, 70.0),
        run("UA-MT", 2, 72.0),
        run("DyCON (VNet)", 1, 80.0),
        run("DyCON (VNet)", 2, 0.0, collapsed=True),
    ]
    return _write_record(tmp_path / "record.json", runs, table=4, planned=8, complete=False)


def _write_record(path: Path, runs: list[dict], *, table: int, planned: int, complete: bool):
    """A bench record around ``runs``, as bench/cpu_scale.py writes it, at ``path``."""
    record = {
        "table": table,
        "scale": "cpu",
        "data": "LA (real), 4x downsampled",
        "protocol": "final",
        "command": "python bench/cpu_scale.py" + ("" if table == 4 else f" --table {table}"),
        "planned_runs": planned,
        "seeds": sorted({r["seed"] for r in runs}),
        "complete": complete,
        "machine": {"cpu_count": 2, "processor": "x86_64", "torch": "2", "torch_threads": 2},
        "runs": runs,
    }
    path.write_text(json.dumps(record))
    return path


def _outputs(page: Path) -> str:
    """The page's HTML and markdown outputs, after checking that no cell failed."""
    nb = json.loads(page.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not any(o.get("output_type") == "error" for o in outputs)
    return "".join(
        "".join(o.get("data", {}).get("text/html", ""))
        + "".join(o.get("data", {}).get("text/markdown", ""))
        for o in outputs
    )


def test_page_names_the_collapsed_seed_and_gives_verdicts(tmp_path):
    import cpu_scale

    page = tmp_path / "page.ipynb"
    assert cpu_scale.render_page(_record(tmp_path), page) == 0
    out = _outputs(page)
    # DyCON (VNet) - UA-MT at 5 %: seed 2 collapsed, so one seed: +10 on every case, CI [10, 10]
    assert "DyCON (VNet) − UA-MT" in out and "+10.00" in out and "reproduced" in out
    assert "DyCON (VNet) seed 2" in out  # the collapsed seed is named, not averaged in
    assert "6 of 8 planned runs" in out and "A run in progress" in out
    # whether it fits one night: 3 rows of 60 s a seed, 200 seeds a 10-hour night, the 2 in one
    # night; 3 of the 4 (row, percent) pairs of a seed (8 planned runs, 2 seeds) are timed
    night = "a 10-hour night holds 200 seeds; the 2 planned seeds take 0.1 h, one night"
    assert "One night on 2 CPU cores" in out and night in out
    assert "counting only the 3 of 4 row and fraction pairs timed so far" in out


def test_page_only_without_a_record_is_one_line(tmp_path, capsys):
    import cpu_scale

    assert cpu_scale.main(["--page-only", "--out", str(tmp_path / "none.json")]) == 2
    assert "does not exist; run the bench first" in capsys.readouterr().err


def _table5_record(tmp_path: Path) -> Path:
    """Rows 1-5 on seeds 1 and 2 at 10 %: each row 1 point above the previous on every case,
    except row 3 on seed 2, collapsed."""

    def run(row, seed, base, collapsed=False):
        cases = {f"c{i}": 0.0 if collapsed else base + i for i in range(4)}
        return {
            "row": f"row {row}",
            "percent": 10,
            "seed": seed,
            "collapsed": collapsed,
            "dice": sum(cases.values()) / 4,
            "seconds": 60.0,
            "dice_per_case": cases,
        }

    runs = [
        run(k, s, 60.0 + 10 * s + k, collapsed=(k, s) == (3, 2))
        for s in (1, 2)
        for k in range(1, 6)
    ]
    return _write_record(tmp_path / "record5.json", runs, table=5, planned=10, complete=True)


def test_table_5_page_labels_rows_by_components_and_gives_verdicts(tmp_path):
    import cpu_scale

    page = tmp_path / "table5.ipynb"
    assert cpu_scale.render_page(_table5_record(tmp_path), page) == 0
    assert json.loads(page.read_text())["metadata"]["papermill"]["input_path"].endswith(
        "notebooks/cpu_scale_table5.ipynb"
    )
    out = _outputs(page)
    assert "Claims of Table 5" in out and "7 claims:" in out
    # full DyCON minus row 4: +1 on every case of both seeds, CI [1, 1] above 0: reproduced
    assert "FeCL: F⁺F⁻, HN, Ent. + UnCL − FeCL: F⁺F⁻, Ent. + UnCL" in out and "+1.00" in out
    assert "reproduced" in out and "+4.29" in out  # BraTS'19's full DyCON - row 1, the margin
    assert "FeCL: F⁺F⁻, HN + UnCL seed 2" in out  # the collapsed run is named, by components
    assert "row 2" not in out and "row 3" not in out  # rows are named by what is on
    assert "none (MT pipeline)" in out and "A run in progress" not in out
    assert "37.2" not in out  # row 3's mean over seeds leaves its collapsed seed out: 74.5
    assert "a 10-hour night holds 120 seeds" in out  # five rows of 60 s: 300 s a seed
    glued = page.read_text()
    for name in ("verdicts", "seeds", "runs", "compute", "data"):
        assert f"t5cpu_{name}" in glued


def test_a_record_of_another_table_is_one_line(tmp_path, capsys):
    import cpu_scale

    record = tmp_path / "record.json"
    record.write_text(json.dumps({"table": 3}))
    assert cpu_scale.render_page(record, tmp_path / "page.ipynb") == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "holds table 3" in err and not (tmp_path / "page.ipynb").exists()
    )


def test_table_5_bench_writes_its_record_csvs_kept_runs_and_page(tmp_path, monkeypatch):
    """The whole --table 5 loop on a fake LA root, training replaced by made-up results."""
    import cpu_scale

    from dycon import experiments

    (tmp_path / "data" / "la").mkdir(parents=True)
    (tmp_path / "data" / "la" / "manifest.json").write_text('{"notes": ["LA, 4x downsampled"]}')
    (tmp_path / "data" / "la" / "train.list").write_text("".join(f"c{i}\n" for i in range(80)))

    def fake_ensure(specs, *, runs_dir, root, progress):
        (spec,) = specs
        empty = (spec.row, spec.seed) == ("row 3", 2)
        k = int(spec.row.split()[1])
        cases = [
            {"case": f"c{i}", "dice": 0.0 if empty else 70.0 + k + i, "empty_pred": str(empty)}
            for i in range(4)
        ]
        mean = sum(c["dice"] for c in cases) / 4
        run_dir = Path(runs_dir) / f"la-dycon-cpu-s{spec.seed}-row{k}"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "summary.json").write_text("{}")
        summary = {
            "metrics": {"dice": {"mean": mean, "ci95": [mean, mean]}, "hd95": {"mean": 1.0}},
            "train": {"seconds": 50.0},
            "eval_seconds": 10.0,
        }
        return [experiments.RunResult(spec, run_dir.name, run_dir, summary, cases)]

    monkeypatch.setattr(experiments, "ensure", fake_ensure)
    rendered = []  # the page itself is tested above; rendering it after each run takes minutes
    monkeypatch.setattr(cpu_scale, "render_page", lambda record, page: rendered.append(page))
    out = tmp_path / "bench" / "cpu_scale-table5-cpu.json"
    argv = ["--table", "5", "--data-root", str(tmp_path / "data"), "--seeds", "1-2"]
    argv += ["--out", str(out), "--runs-dir", str(tmp_path / "runs")]
    argv += ["--page", str(tmp_path / "table5-cpu.ipynb")]
    assert cpu_scale.main(argv) == 0
    record = json.loads(out.read_text())
    assert (record["table"], record["planned_runs"], record["complete"]) == (5, 10, True)
    assert record["row_labels"]["row 1"] == "none (MT pipeline)"
    pairs = {(p["a"], p["b"]): p for p in record["paired"]}
    assert len(pairs) == 7 and pairs[("row 3", "row 2")]["collapsed_seeds_left_out"] == [2]
    assert pairs[("row 5", "row 4")]["mean_difference"] == 1.0  # each row one point up per case
    assert pairs[("row 5", "row 4")]["verdict"] == "reproduced"
    paired_csv = (tmp_path / "bench" / "cpu_scale-table5-cpu-paired.csv").read_text()
    assert "a_components" in paired_csv.splitlines()[0]
    assert len((tmp_path / "bench" / "cpu_scale-table5-cpu.csv").read_text().splitlines()) == 11
    assert len(list((tmp_path / "bench" / "cpu_scale-runs").iterdir())) == 10  # Table 4's folder
    assert rendered == [tmp_path / "table5-cpu.ipynb"] * 11  # after each new run, and at the end


def test_page_warns_when_runs_do_not_record_their_copy_of_the_data(tmp_path):
    import cpu_scale

    record = _record(tmp_path)
    page = tmp_path / "page.ipynb"
    assert cpu_scale.render_page(record, page) == 0
    assert "6 of 6 runs do not record which copy of LA 4x trained them" in _outputs(page)
    # a retrain of one of them, kept beside the record, is set against the committed Dice
    data = json.loads(record.read_text())
    first = data["runs"][0]
    first["run_id"] = "la-supervised-cpu-s1-abc"
    record.write_text(json.dumps(data))
    check = tmp_path / "cpu_scale-retrain-check" / first["run_id"]
    check.mkdir(parents=True)
    summary = {"run_id": first["run_id"], "metrics": {"dice": {"mean": 12.5}}}
    (check / "summary.json").write_text(json.dumps(summary))
    (check / "data.json").write_text(json.dumps({"data_version": None, "data_hash": "9ef5"}))
    cases = "".join(f"{case},{dice}\n" for case, dice in first["dice_per_case"].items())
    (check / "per_case.csv").write_text("case,dice\n" + cases)
    assert cpu_scale.render_page(record, page) == 0
    out = _outputs(page)
    assert f"gives 12.50 % test Dice against the committed {first['dice']:.2f} %" in out
    assert "data hash <code>9ef5</code>" in out
    for run in data["runs"]:  # every run stamped: no warning
        run["data_hash"] = "9ef5"
    record.write_text(json.dumps(data))
    assert cpu_scale.render_page(record, page) == 0
    out = _outputs(page)
    assert "Which copy of LA" not in out
    # the copy is named where the numbers are described, for a user to compare with theirs
    assert "data hash `9ef5` (`python -m dycon data status` prints your copy's)" in out
    # the retrain on the same copy is set against the kept run, volume by volume
    assert "Retrained from a clean checkout" in out
    same = f"12.50 % against the committed {first['dice']:.2f} %, the same Dice on every test"
    assert same in out
    first_case = next(iter(first["dice_per_case"]))
    per_case = first["dice_per_case"].items()
    rows = [f"{c},{d + (0.5 if c == first_case else 0.0)}" for c, d in per_case]
    # one volume 0.5 points off: the retrain is not the same run
    (check / "per_case.csv").write_text("case,dice\n" + "\n".join(rows) + "\n")
    assert cpu_scale.render_page(record, page) == 0
    assert "per-volume Dice up to 0.5 points apart" in _outputs(page)
