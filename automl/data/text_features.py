"""Free text as a few dense numbers: TF-IDF of the words, reduced by truncated SVD.

One :class:`TextFeatures` handles one text column. It is a step of the
per-learner preprocessing (:func:`automl.pipeline.preprocessing.make_preprocessor`), so
its vocabulary and components are fitted inside every fold, on training rows
only, like any other preprocessing. The output is always a dense float matrix
of at most ``n_components`` columns, whatever the learner, so every learner
(trees, linear models, neighbours, networks) can use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

MAX_TERMS = 2000  # the most frequent words kept
N_COMPONENTS = 24  # SVD components per text column


class TextFeatures(TransformerMixin, BaseEstimator):
    """TF-IDF of a text column (the most frequent ``max_terms`` words), then ``n_components`` SVD components.

    Small vocabularies keep their TF-IDF columns as they are; a fold without
    a single word gives one constant column. Missing values read as "".
    """

    def __init__(self, max_terms: int = MAX_TERMS, n_components: int = N_COMPONENTS, seed: int = 0):
        self.max_terms = max_terms
        self.n_components = n_components
        self.seed = seed

    def fit(self, X: Any, y: Any = None) -> TextFeatures:
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        texts = _texts(X)
        self.name_ = str(X.columns[0]) if isinstance(X, pd.DataFrame) else "text"
        self.vectorizer_: TfidfVectorizer | None = TfidfVectorizer(max_features=self.max_terms, sublinear_tf=True,
                                                                   dtype=np.float64)
        self.svd_: TruncatedSVD | None = None
        try:
            tfidf = self.vectorizer_.fit_transform(texts)
        except ValueError:  # no word at all in these rows
            self.vectorizer_ = None
            self.n_out_ = 1
            return np.zeros((len(texts), 1))
        components = min(self.n_components, tfidf.shape[1] - 1, tfidf.shape[0] - 1)
        if components < 2:
            self.n_out_ = tfidf.shape[1]
            return tfidf.toarray()
        self.svd_ = TruncatedSVD(n_components=components, random_state=self.seed)
        out = self.svd_.fit_transform(tfidf)
        self.n_out_ = out.shape[1]
        return out

    def transform(self, X: Any) -> np.ndarray:
        texts = _texts(X)
        if self.vectorizer_ is None:
            return np.zeros((len(texts), 1))
        tfidf = self.vectorizer_.transform(texts)
        return tfidf.toarray() if self.svd_ is None else self.svd_.transform(tfidf)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([f"{self.name_}.text{i}" for i in range(self.n_out_)], dtype=object)


def _texts(X: Any) -> list[str]:
    """The single column of ``X`` as strings, missing values as ""."""
    values = (X.iloc[:, 0] if isinstance(X, pd.DataFrame)
              else pd.Series(np.asarray(X, dtype=object).reshape(len(X), -1)[:, 0]))
    return ["" if _missing(v) else str(v) for v in values]


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
