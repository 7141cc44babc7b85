"""NB-LR (Wang & Manning 2012, "NBSVM" with logistic regression): binary n-gram features
scaled by their naive-Bayes log-count ratio r = log((p / |p|1) / (q / |q|1)), where p and q
count the positive and negative reviews that contain each n-gram (plus `alpha`), then a
logistic regression. The ratio tells the regression which n-grams lean which way before it
starts, which beats TF-IDF weighting on short reviews. Four hashed views: characters, words,
Kiwi morphemes with tags and without (reprolab.workloads.sentiment.morphemes).

Since w · (x ⊙ r) = (w ⊙ r) · x, the ratio is folded into the regression's weights after
training: the saved model is a plain scikit-learn pipeline (morphemes, hashing, logistic
regression) with the `mlflow.sklearn` flavour whose pyfunc returns (n, 2) probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np

from reprolab.core.model import Model, StepLogger
from reprolab.core.saving import save_sklearn
from reprolab.workloads.sentiment.morphemes import TEXT, morpheme_views, with_morphemes

KIWI = ("kiwipiepy", "kiwipiepy-model")  # what the saved model needs beyond scikit-learn


def log_count_ratio(x: Any, y: np.ndarray, alpha: float) -> np.ndarray:
    """r per column of the binary matrix `x` (reviews x n-grams) for labels `y` in {0, 1}."""
    p = alpha + np.asarray(x[y == 1].sum(axis=0)).ravel()
    q = alpha + np.asarray(x[y == 0].sum(axis=0)).ravel()
    return np.log((p / p.sum()) / (q / q.sum()))


def views(p: Any) -> Any:
    """Binary hashed n-grams of the text (characters, words) and of its morphemes."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import HashingVectorizer

    hashing = {"n_features": 2**p.hash_bits, "alternate_sign": False, "norm": None}
    hashing |= {"binary": True}
    char = HashingVectorizer(analyzer="char", ngram_range=tuple(p.char_ngrams), **hashing)
    word = HashingVectorizer(
        analyzer="word", ngram_range=tuple(p.word_ngrams), token_pattern=r"(?u)\b\w+\b", **hashing
    )
    morph = morpheme_views(tuple(p.morph_ngrams), **hashing)
    return ColumnTransformer([("char", char, TEXT), ("word", word, TEXT), *morph])


class NbLogReg(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.estimator: Any = None

    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        import scipy.sparse as sp
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer

        p = self.params
        y = np.asarray(train.y).astype(int)
        frame = with_morphemes(train.X)
        hashed = views(p).fit(frame.head(1))  # hashing is stateless: nothing to learn
        x = hashed.transform(frame).tocsr()
        ratio = log_count_ratio(x, y, p.alpha)
        # dual liblinear: the primal's optimum, several times faster with millions of columns
        logreg = LogisticRegression(
            C=p.C, solver="liblinear", dual=True, max_iter=p.max_iter, random_state=self.seed
        )
        logreg.fit(x @ sp.diags(ratio), y)
        logreg.coef_ = logreg.coef_ * ratio  # fold r in: the same scores on binary n-grams
        morphemes = FunctionTransformer(with_morphemes).fit(train.X.head(1))
        steps = [("morphemes", morphemes), ("views", hashed), ("logreg", logreg)]
        self.estimator = Pipeline(steps)
        if run is not None:  # no iterations worth a curve: one point of train/valid accuracy
            run.log_step(
                1,
                {
                    "train_accuracy": float(np.mean(logreg.predict(x) == y)),
                    "valid_accuracy": self._accuracy(valid),
                },
            )
        return self

    def _accuracy(self, split: Any) -> float:
        return float(np.mean(self.estimator.predict(split.X) == np.asarray(split.y)))

    def predict(self, inputs: Any) -> np.ndarray:
        """(n, 2) class probabilities, like the saved pyfunc."""
        return self.estimator.predict_proba(inputs)

    def save(self, path: Path, input_example: Any) -> None:
        # with_morphemes travels as the model's code; Kiwi and its model as pinned packages
        save_sklearn(
            self.estimator, path, input_example, self.predict, "predict_proba", requires=KIWI
        )
