"""The report's statistics over seeds: a cell's mean with its 95% confidence interval, a gain as a paired
difference, and a claim's verdict. Pure functions of plain numbers; scipy does the distributions.

Seeds are few (3 by default), so the interval is Student's t, not a normal or a bootstrap one: with
n = 3 the t quantile is 4.30 against the normal's 1.96, and a bootstrap over 3 values has 10 distinct
resamples. A gain is paired over seeds because seed s of every method shares its split and its
pre-trained stages (DESIGN.md, "Comparisons and verdicts"): the seed-to-seed spread they share cancels in
the difference, which a difference of two means would count twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
from scipy import stats

CONFIDENCE = 0.95

REPRODUCED = "reproduced"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run"


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` seeds with the half-width of its 95% t confidence interval (NaN when n < 2)."""

    mean: float
    half: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half

    def text(self, signed: bool = False) -> str:
        """``72.00 ± 4.97 (n=3)``; ``72.00 (n=1, no CI)``; ``—`` without data."""
        if self.n == 0:
            return "—"
        mean = f"{self.mean:+.2f}" if signed else f"{self.mean:.2f}"
        if math.isnan(self.half):
            return f"{mean} (n={self.n}, no CI)"
        return f"{mean} ± {self.half:.2f} (n={self.n})"


def _finite(values: Iterable[float]) -> np.ndarray:
    x = np.asarray(list(values), dtype=float)
    return x[np.isfinite(x)]


def mean_ci(values: Iterable[float]) -> Estimate:
    """Mean ± t.ppf(0.975, n - 1) * sd / sqrt(n) of the finite values (a missing metric is NaN, not 0)."""
    x = _finite(values)
    if len(x) == 0:
        return Estimate(math.nan, math.nan, 0)
    if len(x) == 1:  # one seed: no spread to estimate
        return Estimate(float(x[0]), math.nan, 1)
    # NOTE: not stats.t.interval(scale=sem): it returns NaN when every seed agrees (sem 0), where the
    # interval is the point itself.
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(x) - 1) * stats.sem(x)
    return Estimate(float(x.mean()), float(half), len(x))


def paired(a: Mapping[int, float], b: Mapping[int, float]) -> Estimate:
    """a - b over the seeds both have a finite value for: the mean ± t CI of the per-seed differences."""
    seeds = sorted(s for s in set(a) & set(b) if np.isfinite(a[s]) and np.isfinite(b[s]))
    return mean_ci([a[s] - b[s] for s in seeds])


def verdict(differences: Iterable[Estimate]) -> str:
    """The verdict on a claim from its comparisons, each a difference in the claimed direction (> 0: the
    claim holds there): reproduced when every CI lies strictly above 0, contradicted when any lies
    strictly below, inconclusive otherwise (one seed has no CI), not run when no comparison has data."""
    tested = [d for d in differences if d.n > 0]
    if not tested:
        return NOT_RUN
    if any(d.n > 1 and d.high < 0 for d in tested):
        return CONTRADICTED
    if all(d.n > 1 and d.low > 0 for d in tested):
        return REPRODUCED
    return INCONCLUSIVE
