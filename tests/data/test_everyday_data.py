"""Everyday columns: dates, free text, ID-like columns and infinite values, from fit to predict."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import automl
from automl.cli.commands import main
from automl.data.column_kinds import ColumnNote, is_date_column, is_id_column, is_text_column
from automl.data.dataset import load_dataset
from automl.data.schema import FeatureSchema
from automl.pipeline.preprocessing import make_preprocessor
from metaknowledge.features import extract
from searchspaces import Preprocessing

FAST = dict(n_trials=3, learners=["lightgbm", "linear"], warm_start=False, remember=False, verbose=0)
GOOD_WORDS = ["great", "excellent", "love", "wonderful", "perfect", "superb"]
BAD_WORDS = ["awful", "terrible", "hate", "broken", "poor", "useless"]
NEUTRAL = ["the", "product", "arrived", "today", "box", "was", "and", "it", "seems", "item", "colour", "size", "my",
           "order"]


def reviews(labels: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Sentences of neutral words and two words that give the label away."""
    out = []
    for label in labels:
        words = list(rng.choice(NEUTRAL, 6)) + list(rng.choice(GOOD_WORDS if label else BAD_WORDS, 2))
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


def everyday_frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """An ID, a date, a review whose words carry the label, a number with an infinity."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = pd.DataFrame(
        {
            "customer_id": rng.permutation(n) + 1000,
            "signup_date": pd.date_range("2019-01-03", periods=n, freq="D").astype(str),
            "review": reviews(y, rng),
            "x": rng.normal(size=n),
        }
    )
    X.loc[3, "x"] = np.inf
    return X, y


def test_dates_text_ids_and_infinities_fit_and_predict_end_to_end():
    X, y = everyday_frame()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = automl.fit(X.iloc[:300], y[:300], **FAST)
    messages = " ".join(str(w.message) for w in caught)
    assert "dropped ID-like column(s) ['customer_id']" in messages and "infinite values read as missing" in messages
    notes = {note.column: note for note in model.column_notes}
    assert all(isinstance(note, ColumnNote) for note in notes.values())
    assert notes["customer_id"].action == "dropped"
    assert str(notes["signup_date"]) == ("signup_date: date -> year, month, day, weekday (0 = Monday, 6 = Sunday), "
                                         "days since 2019-01-03")
    assert notes["review"].action == "text" and notes["x"].action == "infinite"
    assert model.leaderboard().attrs["column_notes"] == [str(note) for note in model.column_notes]

    new = X.iloc[300:].drop(columns="customer_id").reset_index(drop=True)  # the ID column may be absent
    new.loc[0, "signup_date"] = "not a date"
    new.loc[1, "review"] = None
    new.loc[2, "x"] = -np.inf
    with pytest.warns(UserWarning, match="infinite values read as missing in column\\(s\\) 'x'"):
        proba = model.predict_proba(new)
    assert proba.shape == (100, 2) and np.isfinite(proba).all()
    with pytest.warns(UserWarning, match="infinite"):
        assert (model.predict(new) == y[300:]).mean() > 0.9
    assert model.predict(X.iloc[300:]).shape == (100,)  # ... or present, and ignored


def test_text_features_learn_a_target_that_depends_only_on_text():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    X = pd.DataFrame({"review": reviews(y, rng), "noise": rng.normal(size=500)})
    model = automl.fit(X.iloc[:350], y[:350], **FAST)
    assert [note.action for note in model.column_notes] == ["text"]
    accuracy = (model.predict(X.iloc[350:]) == y[350:]).mean()
    assert accuracy > 0.9  # chance is 0.5


def test_date_detection_does_not_take_numbers_or_labels_for_dates():
    assert is_date_column(pd.Series(pd.date_range("2020", periods=5, tz="Europe/Paris")))
    assert is_date_column(pd.Series(["2020-01-03", "03/04/2021", "Jan 5 2019", None, "2021-12-31 10:30"]))
    assert not is_date_column(pd.Series(["2019", "2020", "2021", "2022"]))  # years alone
    assert not is_date_column(pd.Series([2019, 2020, 2021, 2022]))
    assert not is_date_column(pd.Series(["10-19", "20-29", "30-39", "40-49"]))  # age bands
    assert not is_date_column(pd.Series(["Mon", "Tue", "Wed"]))


def test_date_parts_hours_and_time_zones_are_learned_at_fit_and_reused():
    stamps = pd.Series(pd.date_range("2021-03-01 06:00", periods=24, freq="7h", tz="America/New_York"))
    X = pd.DataFrame({"when": stamps, "x": np.arange(24) % 5})
    dataset = load_dataset(X, np.arange(24) % 2)
    schema = dataset.schema
    assert list(dataset.X.columns) == ["when.year", "when.month", "when.day", "when.weekday", "when.hour", "when.days",
                                       "x"]
    assert dataset.X["when.days"].iloc[0] == 0 and dataset.X["when.hour"].iloc[0] == 11  # 06:00 New York is 11:00 UTC
    new = schema.prepare(pd.DataFrame({"when": ["2021-03-02 11:00", "garbage"], "x": [1, 2]}))
    assert new["when.days"].iloc[0] == 1.0 and new["when.hour"].iloc[0] == 11
    assert new.iloc[1, :6].isna().all()  # not a date: missing
    midnight = load_dataset(pd.DataFrame({"d": pd.date_range("2020", periods=6), "x": range(6)}), [0, 1] * 3)
    assert "d.hour" not in midnight.X.columns


def test_id_detection_rules():
    n = 50
    rng = np.random.default_rng(0)
    assert is_id_column("row", pd.Series(rng.permutation(n)))  # integers numbering the rows, shuffled
    assert is_id_column("customer_id", pd.Series(rng.choice(10**9, n, replace=False)))  # sparse, but named like one
    assert not is_id_column("income", pd.Series(rng.choice(10**9, n, replace=False)))  # sparse integers: a measurement
    assert not is_id_column("weight", pd.Series(rng.normal(size=n)))  # fractions: a measurement
    assert is_id_column("code", pd.Series([f"A{i:05d}" for i in range(n)]))
    assert not is_id_column("small", pd.Series(range(10)))  # too few rows to tell
    sentences = pd.Series([f"this is sentence number {i} about things" for i in range(n)])
    assert is_text_column(sentences) and not is_id_column("note", sentences)


def test_declared_categorical_columns_are_left_alone_and_one_feature_is_always_kept():
    X = pd.DataFrame({"id": range(40), "x": [0, 1] * 20})
    declared = load_dataset(X, [0, 1] * 20, categorical=["id"])
    assert "id" in declared.categorical and declared.schema.notes == ()
    with pytest.warns(UserWarning, match="ID-like"):
        assert list(load_dataset(X, [0, 1] * 20).X.columns) == ["x"]
    only = load_dataset(pd.DataFrame({"id": range(40)}), [0, 1] * 20)
    assert list(only.X.columns) == ["id"]  # dropping it would leave nothing to learn from


def test_predict_time_junk_in_a_numeric_column_reads_as_missing_with_a_warning():
    schema = load_dataset(pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6], "b": list("xyxyxy")}), [0, 1] * 3).schema
    with pytest.warns(UserWarning, match="not numbers read as missing in numeric column\\(s\\) 'a' \\(e.g. 'oops'\\)"):
        prepared = schema.prepare(pd.DataFrame({"a": ["1.5", "oops", None], "b": ["x", "y", "z"]}))
    assert prepared["a"].tolist()[0] == 1.5 and prepared["a"].isna().tolist() == [False, True, True]
    mixed = load_dataset(pd.DataFrame({"a": [1, 2, "oops", 4, 5, 6], "b": list("xyxyxy")}), [0, 1] * 3)
    assert "a" in mixed.categorical  # at fit time, a column mixing numbers and words is categorical


def test_schemas_of_older_models_still_prepare_and_arrays_line_up_without_dropped_columns():
    old = FeatureSchema(("a", "b"), ("b",))
    old = pickle.loads(pickle.dumps(old))
    assert old.dates == () and old.inputs == ("a", "b")
    assert list(old.prepare(pd.DataFrame({"b": ["x"], "a": [1]})).columns) == ["a", "b"]
    X = pd.DataFrame({"id": range(30), "x": np.linspace(0, 1, 30)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schema = load_dataset(X, [0, 1] * 15).schema
    assert schema.prepare(np.ones((2, 2))).columns.tolist() == ["x"]  # as wide as the training data
    assert schema.prepare(np.ones((2, 1))).columns.tolist() == ["x"]  # without the ID column


@pytest.mark.parametrize("mode", ["native", "ordinal", "onehot"])
def test_text_branch_gives_numbers_for_every_categorical_mode(mode):
    X, y = everyday_frame(120)
    X["colour"] = np.random.default_rng(0).choice(["r", "g", "b"], 120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = load_dataset(X, y)
    transformer, n_native = make_preprocessor(Preprocessing(mode, scale=mode == "onehot"), dataset.X,
                                              dataset.categorical)
    out = transformer.fit_transform(dataset.X.iloc[:80])
    assert out.dtype == np.float64 and np.isfinite(out[:, n_native:]).all()
    assert out.shape[1] > 6 + 20 and transformer.transform(dataset.X.iloc[80:]).shape == (40, out.shape[1])


def test_meta_features_describe_text_columns():
    X, y = everyday_frame(120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = load_dataset(X, y)
    values = extract(dataset.X, dataset.encoded_target(), dataset.task, dataset.categorical)
    assert values["simple.n_categorical"] == 1.0  # the review


def test_info_lists_the_columns_and_plain_classes(tmp_path, capsys):
    X, y = everyday_frame(120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = automl.fit(X, y, **FAST)
    assert all(type(label) is int for label in model.task.classes)
    path = model.save(tmp_path / "m.pkl")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "classes:   [0, 1]" in out
    assert ("columns:\n  customer_id: dropped" in out
            and "signup_date: date -> year, month, day, weekday (0 = Monday, 6 = Sunday), days since 2019-01-03" in out)


def test_features_from_load_dataset_given_back_mean_the_raw_data_again():
    """``fit(dataset.X, dataset.y)`` (as ``automl fit --test-size`` does) keeps the raw schema and its notes."""
    X, y = everyday_frame(200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = load_dataset(X, y)
        model = automl.fit(dataset.X.iloc[:150], dataset.y.iloc[:150], **FAST)
        assert model.schema == dataset.schema and len(model.column_notes) == 4
        assert model.predict(X.iloc[150:]).shape == (50,)  # raw rows
        assert model.score(dataset.X.iloc[150:], dataset.y.iloc[150:]) > 0.9  # prepared rows
