"""The flattened forest the wine route serves gives scikit-learn's numbers to the bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge

from reprolab.serve.forest import FlatForest


def _data(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, 5)), columns=list("abcde"))
    y = X["a"] * 2 + np.sin(X["b"] * 3) + rng.normal(scale=0.1, size=rows)
    return X, y.to_numpy()


@pytest.mark.parametrize("kind", [RandomForestRegressor, ExtraTreesRegressor])
def test_the_walk_gives_sklearns_predictions_exactly(kind):
    X, y = _data(400)
    forest = kind(n_estimators=25, max_features=0.6, random_state=0, n_jobs=1).fit(X, y)
    flat = FlatForest.of(forest)
    assert flat is not None
    test, _ = _data(300, seed=1)
    test = test[list("ecabd")]  # the frame's own column order does not matter
    assert np.array_equal(flat.predict(test), forest.predict(test[list("abcde")]))
    one = test.iloc[[7]]
    assert np.array_equal(flat.predict(one), forest.predict(one[list("abcde")]))


def test_other_models_keep_their_own_predict():
    X, y = _data(50)
    assert FlatForest.of(Ridge().fit(X, y)) is None
    assert FlatForest.of(RandomForestRegressor(n_estimators=3).fit(X, np.c_[y, y])) is None
    assert FlatForest.of(None) is None
