"""dycon: a reference reproduction of DyCON (Assefa et al., CVPR 2025).

DyCON = Dynamic Uncertainty-aware Consistency and Contrastive learning for semi-supervised
medical image segmentation.

Data flows one way (DESIGN.md), and ``tests/test_layers.py`` walks every import to keep it so:

    files -> data -> engine (+ methods, losses, models) -> run folder -> report -> notebook -> book

* ``data``: readers per on-disk format, ``prepare`` (official download -> training files),
  splits, the synthetic isles-sim, patches and the two-stream sampler. ``data/files.py`` is the
  one atomic-file module (temp file + rename, folder swaps, checksums) that results use.
* ``losses`` (Eqs. 1-5), ``models`` (``build_model``, the one place a network is built),
  ``metrics``; ``config``: typed dataclass configs from YAML, ``--set`` overrides, the hash.
* ``methods``: one small file per method, mapping a batch to named loss terms. A method
  declares its networks (trainable, EMA copies), its stages (e.g. labeled-only pre-training)
  and a batch transform; it never sees the optimizers or the loop.
* ``engine``: the run of one configuration, ``pipeline.run_config`` (the CLI's and the
  notebooks' one path): run id -> claim ``results/runs/<run id>/`` -> ``trainer.train``
  (one-screen steps, no branch on the method) -> ``evaluate`` -> ``summary.json``.
* ``experiments`` (the runs of each table, reused by run id), ``analysis`` (lesion sizes,
  Grad-CAM maps), ``report`` and ``claims`` (tables and verdicts next to ``paper``),
  ``figures``; then the entry points ``reproduce`` (papermill: notebooks -> book pages) and
  ``cli``.

Where a new thing is declared (the rest is derived from the declaration):

* method: a module in ``methods/``, a row of ``methods/__init__.py``'s ``METHODS``, and its
  preset ``configs/methods/<name>.yaml``;
* table: its entry in ``experiments.TABLES`` (rows, percents, dataset), checked against
  ``paper.TABLES``; one template, ``notebooks/table.ipynb``, renders every table;
* figure: a ``Figure`` at the end of its module in ``figures/``, listed in
  ``figures/registry.py``'s ``FIGURES``, with its notebook ``notebooks/fig_<name>.ipynb``;
* dataset: a ``Dataset`` in ``data/datasets.py``'s ``DATASETS`` (its preparer, prepared
  format, case-file layout, ``--raw`` placeholder, split sizes, synthetic or not), its preparer
  module ``data/prepare/<name>.py`` and ``configs/datasets/<name>.yaml``. ``PREPARERS``,
  ``READERS``, ``CASE_FILES``, ``COMMANDS``, the name lists (``prepare.DATASETS``, the CLI's
  choices), ``engine.datasets.SYNTHETIC`` and ``bench/paper_cost.py``'s case counts are derived
  from it; a new on-disk format also needs its reader in ``data/readers/h5.py``.
"""

__version__ = "0.1.0"
