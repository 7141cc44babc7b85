"""TF-IDF over character and word n-grams into logistic regression: the strong, cheap
sentiment baseline. Korean is agglutinative, so character n-grams carry most of the signal
that word n-grams split across inflected forms.

With `morphemes`, n-grams of Kiwi morphemes (reprolab.workloads.sentiment.morphemes) join
them, each view weighted by its own TF-IDF.

Saved with the real `mlflow.sklearn` flavour whose pyfunc calls `predict_proba`: it takes a
frame with a `text` column and returns (n, 2) probabilities [P(0), P(1)], the contract every
sentiment model follows (reprolab.workloads.sentiment.data, reprolab.workloads.sentiment.api)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np

from reprolab.core.model import Model, StepLogger
from reprolab.core.saving import save_sklearn
from reprolab.workloads.sentiment.morphemes import FORM, MORPH, TEXT, with_morphemes
from reprolab.workloads.sentiment.nb_logreg import KIWI


def _hashed_tfidf(p: Any, **analyzer: Any):
    """Hashed n-gram counts, then TF-IDF. Hashing instead of a vocabulary: NSMC's 800k
    n-grams as a vocabulary dict made a 676 MB skops file (87.29 % test accuracy); hashed
    into 2**20 columns it is 34 MB (87.12 %), 2**21 67 MB (87.35 %)."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        HashingVectorizer(n_features=2**p.hash_bits, alternate_sign=False, norm=None, **analyzer),
        TfidfTransformer(sublinear_tf=p.sublinear_tf),
    )


class TfidfLogReg(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.estimator = self._make_estimator()

    def _make_estimator(self):
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        p = self.params
        char = _hashed_tfidf(p, analyzer="char", ngram_range=tuple(p.char_ngrams))
        word = _hashed_tfidf(
            p, analyzer="word", ngram_range=tuple(p.word_ngrams), token_pattern=r"(?u)\b\w+\b"
        )
        views = [("char", char, TEXT), ("word", word, TEXT)]
        if p.morphemes:
            words = {"analyzer": "word", "token_pattern": r"\S+", "lowercase": False}
            ngrams = {"ngram_range": tuple(p.morph_ngrams), **words}
            views += [(c, _hashed_tfidf(p, **ngrams), c) for c in (MORPH, FORM)]
        # a string column name (not a list) hands each vectorizer the 1-D texts
        vectorizers = ColumnTransformer(views)
        classifier = LogisticRegression(
            C=p.C, max_iter=p.max_iter, solver="liblinear", random_state=self.seed
        )
        return Pipeline([("tfidf", vectorizers), ("logreg", classifier)])

    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer

        y = np.asarray(train.y).astype(int)
        frame = with_morphemes(train.X) if self.params.morphemes else train.X  # once, not per use
        self.estimator.fit(frame, y)
        train_accuracy = float(np.mean(self.estimator.predict(frame) == y))
        if self.params.morphemes:
            morphemes = FunctionTransformer(with_morphemes).fit(train.X.head(1))
            self.estimator = Pipeline([("morphemes", morphemes), *self.estimator.steps])
        if run is not None:  # no iterations worth a curve: one point of train/valid accuracy
            run.log_step(
                1, {"train_accuracy": train_accuracy, "valid_accuracy": self._accuracy(valid)}
            )
        return self

    def _accuracy(self, split: Any) -> float:
        return float(np.mean(self.estimator.predict(split.X) == np.asarray(split.y)))

    def predict(self, inputs: Any) -> np.ndarray:
        """(n, 2) class probabilities, like the saved pyfunc."""
        return self.estimator.predict_proba(inputs)

    def save(self, path: Path, input_example: Any) -> None:
        # the pyfunc returns probabilities, not labels
        requires = KIWI if self.params.morphemes else ()
        save_sklearn(
            self.estimator, path, input_example, self.predict, "predict_proba", requires=requires
        )
