"""Confidence intervals and Welch's test for replicated runs: Student's t, without scipy.

The t distribution's CDF is written with the regularized incomplete beta function,
evaluated by its continued fraction (Lentz's method, as in Numerical Recipes
section 6.4), and inverted by bisection.

Examples
--------
>>> round(t_quantile(0.975, 2), 4), round(t_quantile(0.975, 10), 4)
(4.3027, 2.2281)
>>> m, h = mean_ci([1.0, 2.0, 3.0])  # 4.3027 * 1 / sqrt(3)
>>> m, round(h, 6)
(2.0, 2.484138)
>>> t, df, p = welch([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])  # t = -3 / sqrt(2/3)
>>> round(t, 3), df, round(p, 4)
(-3.674, 4.0, 0.0213)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from model.errors import ConfigError


def _betacf(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lnfront = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
               + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lnfront) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lnfront) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ConfigError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def mean_ci(x: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean of ``x`` and the half-width of its two-sided ``confidence`` interval
    (NaN half-width for fewer than two values)."""
    n = len(x)
    mean = math.fsum(x) / n
    if n < 2:
        return mean, float("nan")
    var = math.fsum((v - mean) ** 2 for v in x) / (n - 1)
    return mean, t_quantile(0.5 + confidence / 2.0, n - 1) * math.sqrt(var / n)


#: Samples above a percentile for it to describe a tail: fewer, and it is the value of a
#: handful of requests (the CLI marks such a percentile).
TAIL_SAMPLES = 10


def thin_tail(n: int, q: float) -> bool:
    """Whether the ``q`` quantile (0.99 for p99) of ``n`` samples rests on fewer than
    :data:`TAIL_SAMPLES` samples above it: a p99 needs 1,000 samples, a p99.9 10,000.

    Examples
    --------
    >>> thin_tail(100, 0.99), thin_tail(1000, 0.99), thin_tail(20, 0.5)
    (True, False, False)
    """
    return n * (1.0 - q) < TAIL_SAMPLES - 1e-9


def welch(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """Welch's two-sided t-test of ``mean(x) == mean(y)``.

    Parameters
    ----------
    x, y : sequence of float
        At least two values each.

    Returns
    -------
    (t, df, p) : tuple of float
        The statistic ``(mean(x) - mean(y)) / sqrt(s_x^2/n_x + s_y^2/n_y)``, the
        Welch-Satterthwaite degrees of freedom and the two-sided p-value. With no spread
        on either side, ``t`` is infinite and ``p`` 0 if the means differ (``t`` 0 and
        ``p`` 1 if not), and ``df`` is ``n_x + n_y - 2``.

    Examples
    --------
    >>> t, df, p = welch([10.0, 11.0, 12.0, 13.0], [12.0, 14.0, 16.0])
    >>> round(t, 4), round(df, 3), round(p, 4)  # B's spread is larger: df < 5
    (-1.8898, 3.235, 0.1485)
    """
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        raise ConfigError(f"Welch's test needs two values or more on each side ({nx}, {ny})")
    mx, my = math.fsum(x) / nx, math.fsum(y) / ny
    vx, vy = (0.0 if min(v) == max(v) else  # exactly: not the rounding of the mean
              math.fsum((u - m) ** 2 for u in v) / (n - 1) / n
              for v, m, n in ((x, mx, nx), (y, my, ny)))
    se2 = vx + vy
    if se2 == 0.0:
        if mx == my:
            return 0.0, float(nx + ny - 2), 1.0
        return math.copysign(math.inf, mx - my), float(nx + ny - 2), 0.0
    t = (mx - my) / math.sqrt(se2)
    df = se2 ** 2 / (vx ** 2 / (nx - 1) + vy ** 2 / (ny - 1))
    return t, df, min(1.0, 2.0 * t_cdf(-abs(t), df))
