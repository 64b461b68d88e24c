"""Reading and validating training data: every accepted form, every bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from automl.data.dataset import load_dataset
from automl.data.schema import FeatureSchema
from automl.errors import DataError
from tests.conftest import pmlb_path


def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


GOOD = frame(a=[1.0, 2, 3, 4, 5, 6], b=["x", "y", "x", "y", "x", "y"], t=[0, 1, 0, 1, 0, 1])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: load_dataset(GOOD.iloc[:0], target="t"), "no rows"),
        (lambda: load_dataset(GOOD[["t"]], target="t"), "no feature columns"),
        (lambda: load_dataset(GOOD, target="label"), "no target column 'label'"),
        (lambda: load_dataset(GOOD, target="tt"), "Did you mean"),
        (lambda: load_dataset(GOOD.assign(t=np.nan), target="t"), "every target value is missing"),
        (lambda: load_dataset(GOOD.assign(t="same"), target="t"), "single class"),
        (lambda: load_dataset(np.ones((6, 2)), np.arange(5)), "X has 6 rows but y has 5"),
        (lambda: load_dataset(GOOD.assign(c=[1j] * 6), target="t"), "complex"),
        (lambda: load_dataset(GOOD.assign(l=[[1]] * 6), target="t"), "list values"),
        (lambda: load_dataset("no/such/file.csv", target="t"), "no such file"),
        (lambda: load_dataset(pd.DataFrame([[1, 2, 0]] * 6, columns=["a", "a", "t"]), target="t"), "duplicate column"),
        (lambda: load_dataset(np.ones(6), np.arange(6)), "must be 2-D"),
        (lambda: load_dataset(GOOD.iloc[:3], target="t"), "at least 5 rows"),
        (lambda: load_dataset(GOOD.assign(t=list("abcabc")), target="t", task="regression"), "must be numeric"),
        (lambda: load_dataset(GOOD, target="t", categorical=["zz"]), "not in the data"),
        (lambda: load_dataset(GOOD), "no target given"),
        (lambda: load_dataset(GOOD, y=[1] * 6, target="t"), "either y or target"),
        (lambda: load_dataset("openml:abc"), "expected 'openml:<number>'"),
        (lambda: load_dataset("sklearn:nope"), "unknown bundled dataset"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(DataError, match=message):
        call()


def test_unknown_file_suffix_and_missing_target_in_files(tmp_path):
    weird = tmp_path / "data.xlsx"
    weird.write_text("a")
    with pytest.raises(DataError, match="cannot tell how to read"):
        load_dataset(weird, target="t")
    plain = tmp_path / "data.csv"
    GOOD.to_csv(plain, index=False)
    with pytest.raises(DataError, match="which column"):
        load_dataset(plain)


def test_rows_with_missing_target_are_dropped_with_a_warning():
    data = pd.concat([GOOD.assign(t=[0, 1, np.nan, 1, 0, 1]), GOOD]).reset_index(drop=True)
    with pytest.warns(UserWarning, match="dropped 1 of 12 rows"):
        dataset = load_dataset(data, target="t")
    assert len(dataset.X) == 11


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".tsv.gz", ".parquet"])
def test_files_of_every_supported_format(tmp_path, suffix):
    path = tmp_path / f"train{suffix}"
    if suffix == ".parquet":
        GOOD.to_parquet(path)
    else:
        GOOD.to_csv(path, sep="\t" if ".tsv" in suffix else ",", index=False)
    dataset = load_dataset(path, target="t")
    assert dataset.task == "binary" and dataset.categorical == ("b",)
    assert list(dataset.X.columns) == ["a", "b"]


def test_pmlb_files_default_to_target_and_read_feature_types():
    dataset = load_dataset(pmlb_path("mushroom"))
    assert dataset.target == "target" and dataset.task == "binary"
    assert "odor" in dataset.categorical  # declared 'nominal' in mushroom.yaml
    regression = load_dataset(pmlb_path("1030_ERA"))
    assert regression.task == "regression"  # integer target, but the yaml says regression


def test_task_inference_and_override():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    assert load_dataset(X, rng.normal(size=40)).task == "regression"
    assert load_dataset(X, rng.integers(0, 3, 40)).task == "multiclass"
    assert load_dataset(X, np.arange(40)).task == "regression"  # many distinct integers
    assert load_dataset(X, rng.integers(0, 3, 40), task="regression").task == "regression"
    assert load_dataset(X, np.array(["yes", "no"] * 20)).task == "binary"


def test_categorical_override_by_name_and_position():
    data = GOOD.assign(code=[3, 1, 2, 3, 1, 2])
    assert "code" not in load_dataset(data, target="t").categorical
    assert "code" in load_dataset(data, target="t", categorical=["code"]).categorical
    assert "code" in load_dataset(data.drop(columns="t"), y=data["t"], categorical=[2]).categorical


def test_bunch_and_numpy_inputs():
    dataset = load_dataset(load_iris())
    assert dataset.task == "multiclass" and dataset.X.shape == (150, 4)
    assert load_dataset(load_iris(as_frame=True)).X.columns[0] == "sepal length (cm)"
    assert load_dataset("sklearn:wine").task == "multiclass"


def test_column_vector_targets_are_flattened():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = load_dataset(np.ones((6, 2)) * np.arange(6)[:, None], np.array([[0], [1]] * 3))
    assert dataset.y.shape == (6,)
    assert any("column-vector y" in str(w.message) for w in caught)


def test_schema_prepares_new_data_like_the_training_data():
    dataset = load_dataset(GOOD.assign(code=[3, 1, 2, 3, 1, 2]), target="t", categorical=["code"])
    schema: FeatureSchema = dataset.schema
    new = pd.DataFrame({"code": [3.0, 7.0], "b": ["y", "q"], "a": [1, 2], "extra": [0, 0]})
    prepared = schema.prepare(new)
    assert list(prepared.columns) == ["a", "b", "code"]
    assert prepared["code"].tolist() == ["3", "7"]  # 3.0 reads as the training level "3"
    with pytest.raises(DataError, match="lacks 1 column"):
        schema.prepare(new.drop(columns="a"))
    with pytest.raises(DataError, match="expecting 3 features"):
        schema.prepare(np.ones((2, 4)))


def test_openml_without_network_says_so(monkeypatch):
    openml = pytest.importorskip("openml")
    import requests

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Failed to resolve 'www.openml.org'")

    monkeypatch.setattr(openml.datasets, "get_dataset", offline)
    with pytest.raises(DataError, match="no internet access"):
        load_dataset("openml:31")
