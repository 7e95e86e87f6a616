r"""How many seeds a paired comparison needs: the seed x case variance of a paired difference.

The paired bootstrap (:func:`dycon.metrics.paired_bootstrap`) resamples seeds and test cases of
the differences :math:`d_{si} = a_{si} - b_{si}` together. Read as a two-way random-effects model,

.. math::

    d_{si} = \mu + \sigma_S\,u_s + \sigma_C\,v_i + \sigma_E\,e_{si},

the mean over :math:`S` seeds and :math:`N` cases has variance
:math:`\sigma_S^2 / S + \sigma_C^2 / N + \sigma_E^2 / (S N)`. More seeds shrink the first and the
last term only: with a fixed test list the case term sets a floor under the CI's width that no
number of seeds removes (LA's test list has 20 volumes). The components come from the usual
ANOVA estimates of the additive two-way layout with one observation per cell:
:math:`\hat\sigma_E^2` = residual mean square,
:math:`\hat\sigma_S^2 = \max(0, \operatorname{var}(\bar d_{s\cdot}) - \hat\sigma_E^2 / N)`,
:math:`\hat\sigma_C^2 = \max(0, \operatorname{var}(\bar d_{\cdot i}) - \hat\sigma_E^2 / S)`
(sample variances, ``ddof = 1``). A 95 % interval is about :math:`2 \cdot 1.96` standard errors
wide.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

Z95 = 1.959964  # two-sided 95 % normal quantile


class PairedVariance(NamedTuple):
    """Variance components of a (seeds, cases) table of paired differences."""

    seed: float  # sigma_S^2: how much a method pair's difference moves from seed to seed
    case: float  # sigma_C^2: how much it moves from test case to test case
    residual: float  # sigma_E^2: seed x case interaction and noise
    n_seeds: int
    n_cases: int

    def ci_width(self, seeds: int | float) -> float:
        """Approximate width of the 95 % CI of the mean difference with ``seeds`` seeds and
        the same test cases; ``math.inf`` seeds gives the floor set by the cases."""
        if not seeds > 0:
            raise ValueError(f"seeds must be > 0, got {seeds!r}")
        n = self.n_cases
        var = self.seed / seeds + self.case / n + self.residual / (seeds * n)
        return 2.0 * Z95 * math.sqrt(var)

    def seeds_for_width(self, width: float) -> int | None:
        """The fewest seeds whose CI is narrower than ``width``; None when the case floor
        (:meth:`ci_width` at infinitely many seeds) is already at least ``width``."""
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width!r}")
        room = (width / (2.0 * Z95)) ** 2 - self.case / self.n_cases  # what seeds may use
        if room <= 0:
            return None
        per_seed = self.seed + self.residual / self.n_cases
        return max(1, math.ceil(per_seed / room)) if per_seed > 0 else 1


def paired_variance(diff: object) -> PairedVariance:
    """Variance components of paired differences ``diff[s, i]`` (seed ``s``, test case ``i``).

    Args:
        diff: (S, N) finite differences, S >= 2 seeds and N >= 2 cases (the seed component is
            not identified from one seed).

    Returns:
        ``PairedVariance`` with the ANOVA estimates described in the module docstring.

    Raises:
        ValueError: not 2-D, fewer than 2 seeds or cases, or a non-finite value.
    """
    d = np.asarray(diff, dtype=float)
    if d.ndim != 2 or d.shape[0] < 2 or d.shape[1] < 2:
        raise ValueError(f"diff must be (seeds >= 2, cases >= 2), got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("diff holds NaN or infinity: drop those cases first")
    s, n = d.shape
    seed_means, case_means = d.mean(axis=1), d.mean(axis=0)  # (S,), (N,)
    fitted = seed_means[:, None] + case_means[None, :] - d.mean()  # (S, N)
    residual = float(((d - fitted) ** 2).sum() / ((s - 1) * (n - 1)))
    seed = max(0.0, float(seed_means.var(ddof=1)) - residual / n)
    case = max(0.0, float(case_means.var(ddof=1)) - residual / s)
    return PairedVariance(seed, case, residual, s, n)
