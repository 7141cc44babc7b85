import numpy as np
import pandas as pd
import pytest

from reprolab.core import paired


def table(actual, predicted) -> pd.DataFrame:
    return pd.DataFrame({"actual": actual, "predicted": predicted, "group": "g"})


def test_point_values_match_the_metrics():
    t = table([1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.0, 4.0])
    ones = np.ones((1, 4))
    assert paired.statistic("rmse", t)(ones)[0] == pytest.approx(np.sqrt((0.25 + 1) / 4))
    assert paired.statistic("mae", t)(ones)[0] == pytest.approx(1.5 / 4)
    assert paired.statistic("accuracy", t)(ones)[0] == pytest.approx(0.5)
    dice = pd.DataFrame({"dice": [0.2, 0.4]})
    assert paired.statistic("dice", dice)(np.ones((1, 2)))[0] == pytest.approx(0.3)
    lm = pd.DataFrame({"nll": [2.0, 4.0], "tokens": [2, 2]})
    assert paired.statistic("perplexity", lm)(np.ones((1, 2)))[0] == pytest.approx(np.exp(1.5))
    assert paired.statistic("f1", t) is None


def test_noise_is_not_an_improvement_and_a_real_gain_is():
    rng = np.random.default_rng(1)
    actual = rng.integers(0, 2, 2000)
    old = np.where(rng.random(2000) < 0.80, actual, 1 - actual)
    noisy = old.copy()  # 5 errors fixed, 3 made: +0.001 in accuracy, as a reseeded rerun moves
    wrong, right = np.flatnonzero(old != actual), np.flatnonzero(old == actual)
    noisy[wrong[:5]] = actual[wrong[:5]]
    noisy[right[:3]] = 1 - actual[right[:3]]
    base = paired.statistic("accuracy", table(actual, old))
    small = paired.bootstrap(paired.statistic("accuracy", table(actual, noisy)), base, True)
    assert small.gain == pytest.approx(0.001) and small.low <= 0 < small.high
    better = np.where(rng.random(2000) < 0.5, actual, old)  # fixes half the errors: ~ +0.10
    big = paired.bootstrap(paired.statistic("accuracy", table(actual, better)), base, True)
    assert big.low > 0.05
    assert "paired bootstrap over 2000 validation examples" in big.line()


def test_minimizing_counts_a_lower_error_as_a_gain_and_is_repeatable():
    actual = np.linspace(3, 8, 400)
    old = paired.statistic("rmse", table(actual, actual + 0.5))
    new = paired.statistic("rmse", table(actual, actual + 0.1))
    first = paired.bootstrap(new, old, maximize=False, samples=300)
    assert first.gain == pytest.approx(0.4) and first.low > 0
    assert paired.bootstrap(new, old, maximize=False, samples=300) == first


def test_tables_of_other_examples_are_not_paired():
    a = table([1, 0, 1], [1, 1, 1])
    assert paired.same_examples(a, a) is None
    assert "3 vs 2" in paired.same_examples(a, a.head(2))
    other = table([0, 0, 1], [1, 1, 1])
    assert paired.same_examples(a, other) == "the tables' 'actual' columns differ"
