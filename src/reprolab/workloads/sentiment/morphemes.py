"""Korean morphemes for the sparse models' n-grams. Korean glues endings and particles to
stems (재미없다, 재미없었다, 재미없어서), so word n-grams split one meaning across many
forms; Kiwi (kiwipiepy, with its packaged model: nothing is downloaded) cuts a review into
morphemes (재미/NNG 없/VA 다/EF), and n-grams over them carry what word n-grams miss: +0.8
points of NSMC validation accuracy over character and word n-grams alone (docs/sentiment.md).

`with_morphemes` is a plain function of a frame, so a saved scikit-learn pipeline refers to it
by name (a FunctionTransformer) and the model's shipped code provides it where it loads."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

TEXT = "text"  # the input column (reprolab.workloads.sentiment.data.TEXT)
MORPH = "morph"  # morphemes with their part-of-speech tag: "재미/NNG 없/VA 다/EF"
FORM = "form"  # the same morphemes without tags: "재미 없 다"


@cache
def analyzer() -> Any:
    """One Kiwi per process (loading its model takes about a second). Each review is analysed
    on its own, so the tokens are the same whatever the number of worker threads."""
    from kiwipiepy import Kiwi

    return Kiwi(num_workers=-1)


def with_morphemes(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's `text` column, and its morphemes with and without tags."""
    import pandas as pd

    texts = frame[TEXT].astype(str).tolist()
    tagged, forms = [], []
    for tokens in analyzer().tokenize(texts):
        tagged.append(" ".join(f"{t.form}/{t.tag}".replace(" ", "_") for t in tokens))
        forms.append(" ".join(t.form.replace(" ", "_") for t in tokens))
    return pd.DataFrame({TEXT: texts, MORPH: tagged, FORM: forms}, index=frame.index)


def morpheme_views(ngrams: tuple[int, int], **hashing: Any) -> list[tuple[str, Any, str]]:
    """ColumnTransformer entries that hash morpheme n-grams of both columns."""
    from sklearn.feature_extraction.text import HashingVectorizer

    words = {"analyzer": "word", "token_pattern": r"\S+", "lowercase": False}
    return [
        (column, HashingVectorizer(ngram_range=ngrams, **words, **hashing), column)
        for column in (MORPH, FORM)
    ]
