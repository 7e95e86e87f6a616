"""What a run reports while it trains: ``log.jsonl`` (one line per logged step) and a bar."""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm


class TrainLog:
    """log.jsonl, cut back to the resumed step so a resumed run logs each step once."""

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = path
        keep = []
        if path.exists():
            keep = [
                ln
                for ln in path.read_text().splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= resume_step
            ]
        path.write_text("".join(ln + "\n" for ln in keep))
        self.file = path.open("a")

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def progress_bar(*, total: int, initial: int, enabled: bool) -> tqdm:
    return tqdm(total=total, initial=initial, disable=not enabled, dynamic_ncols=True)


def show_step(bar: tqdm, record: dict) -> None:
    bar.update(1)
    bar.set_postfix(
        {k: f"{v:.3g}" for k, v in record["terms"].items()}
        | {k: f"{v:.3g}" for k, v in record["logs"].items()}
    )
