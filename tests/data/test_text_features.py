"""TextFeatures: a free-text column as a few dense numbers (TF-IDF, then truncated SVD) that every learner can use."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from automl.data.text_features import TextFeatures

SPORT = ["the striker scored a late goal", "the keeper saved the penalty kick", "a goal in the final minute",
         "the team won the league match", "the referee gave a penalty to the team", "fans cheered the winning goal"]
FOOD = ["bake the bread in a hot oven", "add salt and pepper to the soup", "the recipe needs butter and flour",
        "simmer the soup for an hour", "slice the bread and add butter", "the oven must be hot for the recipe"]


def _column(texts) -> pd.DataFrame:
    return pd.DataFrame({"review": texts})


def test_text_becomes_a_dense_matrix_of_at_most_n_components_columns():
    features = TextFeatures(n_components=4)
    out = features.fit_transform(_column(SPORT + FOOD))
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    assert out.shape == (12, 4) and np.isfinite(out).all()
    assert features.transform(_column(["a late goal", "hot soup"])).shape == (2, 4)
    assert list(features.get_feature_names_out()) == [f"review.text{i}" for i in range(4)]


def test_texts_on_the_same_topic_end_up_closer_than_texts_on_different_ones():
    features = TextFeatures(n_components=4).fit(_column(SPORT + FOOD))
    out = features.transform(_column(SPORT + FOOD))
    unit = out / np.linalg.norm(out, axis=1, keepdims=True)
    similarity = unit @ unit.T
    same = np.mean([similarity[i, j] for i in range(12) for j in range(12) if i != j and (i < 6) == (j < 6)])
    across = np.mean([similarity[i, j] for i in range(6) for j in range(6, 12)])
    assert same > across + 0.2


def test_a_classifier_on_the_features_tells_the_topics_of_new_texts_apart():
    model = make_pipeline(TextFeatures(n_components=4), LogisticRegression())
    model.fit(_column(SPORT + FOOD), [0] * 6 + [1] * 6)
    assert list(model.predict(_column(["the penalty goal won the match", "butter the bread for the soup"]))) == [0, 1]


def test_a_small_vocabulary_keeps_its_tfidf_columns():
    features = TextFeatures(n_components=24)
    out = features.fit_transform(_column(["red", "blue", "red blue"]))
    assert features.svd_ is None and out.shape == (3, 2)  # two words: fewer than two components are worth an SVD
    assert len(features.get_feature_names_out()) == 2


def test_rows_without_a_single_word_give_one_constant_column():
    features = TextFeatures()
    out = features.fit_transform(_column(["", None, np.nan, "  "]))
    assert out.shape == (4, 1) and not out.any()
    assert not features.transform(_column(["now with words"])).any()
    assert list(features.get_feature_names_out()) == ["review.text0"]


def test_missing_values_read_as_empty_text():
    features = TextFeatures(n_components=3).fit(_column(SPORT + FOOD))
    out = features.transform(_column([None, np.nan, "", "words nobody used"]))
    assert np.allclose(out, 0.0)  # no known word: the origin, like an empty text


def test_the_same_seed_gives_the_same_features_and_clones_are_unfitted():
    texts = _column(SPORT + FOOD)
    first = TextFeatures(n_components=3, seed=1).fit_transform(texts)
    again = TextFeatures(n_components=3, seed=1).fit_transform(texts)
    assert np.array_equal(first, again)
    fresh = clone(TextFeatures(max_terms=50, n_components=3))
    assert fresh.get_params() == {"max_terms": 50, "n_components": 3, "seed": 0} and not hasattr(fresh, "svd_")


def test_max_terms_caps_the_vocabulary():
    features = TextFeatures(max_terms=5, n_components=2).fit(_column(SPORT + FOOD))
    assert len(features.vectorizer_.vocabulary_) == 5


def test_a_plain_array_or_list_of_texts_is_read_as_the_column():
    features = TextFeatures(n_components=3).fit(np.array(SPORT + FOOD, dtype=object).reshape(-1, 1))
    from_list = features.transform(["a late goal", "hot soup"])
    from_frame = features.transform(_column(["a late goal", "hot soup"]))
    assert np.allclose(from_list, from_frame)
    assert list(features.get_feature_names_out()) == ["text.text0", "text.text1", "text.text2"]
