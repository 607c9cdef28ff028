"""The statistics of a sweep over seeds: mean, spread and confidence interval per configuration, and
paired comparisons with the best one. Plain Python (no scipy): a report imports no heavy library."""

import math
from dataclasses import dataclass


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    x = df / (df + t * t)
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, x)  # P(T > |t|)
    return 1 - tail if t > 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The t with P(T <= t) = p (bisection on t_cdf: a report needs a handful)."""
    lo, hi = -1e4, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz's method)."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on this side only
        return 1 - _incomplete_beta(b, a, 1 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2 == 0:
            numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 + numerator * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + numerator / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1 - c * d) < 1e-14:
            break
    return front * (f - 1)


@dataclass
class Summary:
    """Mean, sample standard deviation, n and the half-width of the 95% confidence interval of the mean."""

    mean: float
    std: float
    n: int
    ci95: float


def summarise(values: list[float]) -> Summary:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return Summary(mean, math.nan, n, math.nan)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return Summary(mean, std, n, t_quantile(0.975, n - 1) * std / math.sqrt(n))


@dataclass
class Comparison:
    """The best configuration minus another, paired by seed: the mean difference and its 95% CI,
    the two-sided p-value of the paired t-test, and whether it holds after Holm's correction."""

    difference: Summary
    p: float
    distinguishable: bool = False


def paired(best: dict[int, float], other: dict[int, float]) -> Comparison:
    """`best` and `other` map seed -> value; only the seeds both ran are compared."""
    seeds = sorted(best.keys() & other.keys())
    diff = summarise([best[s] - other[s] for s in seeds]) if seeds else Summary(math.nan, math.nan, 0, math.nan)
    if diff.n < 2:
        return Comparison(diff, math.nan)
    if diff.std == 0:  # every seed gives the same difference
        return Comparison(diff, 0.0 if diff.mean != 0 else 1.0)
    t = diff.mean / (diff.std / math.sqrt(diff.n))
    return Comparison(diff, 2 * (1 - t_cdf(abs(t), diff.n - 1)))


def holm(comparisons: list[Comparison], alpha: float = 0.05) -> None:
    """Mark which comparisons are distinguishable with the family-wise error rate held at `alpha`
    (Holm-Bonferroni: the k-th smallest p-value of m is compared with alpha / (m - k + 1))."""
    ranked = sorted((c for c in comparisons if not math.isnan(c.p)), key=lambda c: c.p)
    m = len(ranked)
    for k, comparison in enumerate(ranked):
        if comparison.p > alpha / (m - k):
            break
        comparison.distinguishable = True
