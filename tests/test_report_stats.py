"""The report's statistics, written without scipy, against scipy's."""

import math

import pytest

from src.report.stats import Comparison, Summary, holm, paired, summarise, t_cdf, t_quantile

stats = pytest.importorskip("scipy.stats")  # (scikit-learn, in the dev extra, brings scipy)


@pytest.mark.parametrize("df", [1, 2, 3, 7, 30, 200])
def test_student_t_matches_scipy(df):
    for t in (-8.0, -2.1, -0.4, 0.0, 0.9, 2.5, 15.0):
        assert t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-12)
    assert t_quantile(0.975, df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-9)


def test_summary_and_paired_test_match_scipy():
    a, b = [0.912, 0.905, 0.921, 0.899], [0.901, 0.903, 0.909, 0.902]
    s = summarise(a)
    assert (s.mean, s.std, s.n) == pytest.approx((sum(a) / 4, stats.tstd(a), 4))
    low, high = stats.t.interval(0.95, 3, loc=s.mean, scale=stats.sem(a))
    assert s.ci95 == pytest.approx((high - low) / 2)
    c = paired(dict(enumerate(a)), dict(enumerate(b)))
    assert c.p == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert c.difference.mean == pytest.approx(sum(x - y for x, y in zip(a, b)) / 4)


def test_pairs_are_the_seeds_both_ran_and_one_seed_says_nothing():
    c = paired({0: 1.0, 1: 2.0, 2: 4.0}, {1: 1.5, 2: 3.0, 7: 0.0})  # seeds 1 and 2
    assert c.difference.n == 2 and c.difference.mean == pytest.approx(0.75)
    assert math.isnan(paired({0: 1.0}, {0: 0.5}).p) and math.isnan(summarise([0.3]).ci95)


def test_holm_holds_the_family_wise_error_rate():
    def comparison(p):
        return Comparison(Summary(0.0, 1.0, 3, 1.0), p)

    # m = 3: 0.01 <= 0.05/3 passes, 0.03 > 0.05/2 stops, and so 0.04 fails though it is below 0.05.
    ranked = [comparison(0.04), comparison(0.01), comparison(0.03)]
    holm(ranked)
    assert [c.distinguishable for c in ranked] == [False, True, False]
    ranked = [comparison(0.02), comparison(0.01)]  # 0.01 <= 0.025, then 0.02 <= 0.05
    holm(ranked)
    assert all(c.distinguishable for c in ranked)
