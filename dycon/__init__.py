"""dycon: a reference reproduction of DyCON (Assefa et al., CVPR 2025).

DyCON = Dynamic Uncertainty-aware Consistency and Contrastive learning for semi-supervised
medical image segmentation.

Layers, lowest first; a module imports only from its own layer or those below it, which
``tests/test_layers.py`` checks on every import:

* ``config``: typed dataclass configs from YAML, ``--set`` overrides, the config hash.
* ``data``: readers per on-disk format, ``prepare``, splits, the synthetic isles-sim, patches
  and the two-stream sampler.
* ``losses`` (Eqs. 1-5; FeCL's paper and reference forms as two functions), ``models`` (the
  backbones and ``build_model``, the one place a network is built), ``metrics``.
* ``methods``: one small file per method. A method declares its networks (trainable ones, EMA
  copies, per-network model overrides), the stages of a run (e.g. a labeled-only pre-training
  stage whose weights start the next), a batch transform, and maps a batch to named loss
  terms; it never sees the optimizers or the loop.
* ``engine``: the run of one configuration. ``trainer.train`` is an outline of one-screen
  steps (build what the method declares, resume, train each stage, bookkeeping after each
  step) that never branches on the method; evaluation, inference, checkpoints, run folders.
* ``analysis`` (lesion sizes, Grad-CAM), ``experiments`` (the runs of each table, by config
  hash), ``report``, ``figures``; then the entry points ``reproduce`` and ``cli``.
"""

__version__ = "0.1.0"
