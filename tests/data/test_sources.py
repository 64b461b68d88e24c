"""Reading data where users keep it: CSV/TSV (compressed or not) and Parquet files, PMLB metadata, bundled
scikit-learn datasets, and a clear DataError for what cannot be read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl.data import sources
from automl.errors import DataError

FRAME = pd.DataFrame({"x": [1.5, 2.0, np.nan, 4.25], "colour": ["red", "blue", "red", "green"], "target": [0, 1, 0, 1]})


def _same(read: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(read.reset_index(drop=True), FRAME, check_dtype=False)


@pytest.mark.parametrize("name, sep", [("data.csv", ","), ("data.tsv", "\t"), ("data.tab", "\t"),
                                       ("data.csv.gz", ","), ("data.tsv.gz", "\t"), ("data.CSV.BZ2", ",")])
def test_delimited_files_are_read_whatever_their_compression(tmp_path, name, sep):
    path = tmp_path / name
    FRAME.to_csv(path, sep=sep, index=False)
    _same(sources.read_table(path))


def test_a_txt_file_has_its_separator_guessed(tmp_path):
    path = tmp_path / "data.txt"
    FRAME.to_csv(path, sep=";", index=False)
    _same(sources.read_table(path))


@pytest.mark.parametrize("name", ["data.parquet", "data.pq"])
def test_parquet_files_keep_their_types(tmp_path, name):
    path = tmp_path / name
    typed = FRAME.astype({"colour": "category"})
    typed.to_parquet(path)
    read = sources.read_table(str(path))  # a string path works as well as a Path
    pd.testing.assert_frame_equal(read, typed)


def test_a_missing_file_is_a_data_error_that_names_it(tmp_path):
    with pytest.raises(DataError, match="no such file.*nowhere.csv"):
        sources.read_table(tmp_path / "nowhere.csv")


def test_a_directory_is_not_a_data_file(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        sources.read_table(tmp_path)


@pytest.mark.parametrize("name", ["data.xlsx", "data", "data.json.gz"])
def test_an_unknown_suffix_names_the_supported_ones(tmp_path, name):
    path = tmp_path / name
    path.write_text("x,y\n1,2\n")
    with pytest.raises(DataError, match=r"cannot tell how to read.*\.csv.*\.parquet"):
        sources.read_table(path)


def test_an_empty_or_broken_file_is_a_data_error_not_a_pandas_one(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="could not read .*empty.csv.* as a csv table"):
        sources.read_table(empty)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="as a parquet table"):
        sources.read_table(broken)


def test_dataset_names_drop_data_and_compression_suffixes(tmp_path):
    assert sources.dataset_name(tmp_path / "iris.tsv.gz") == "iris"
    assert sources.dataset_name(tmp_path / "sales.2024.csv") == "sales.2024"
    assert sources.dataset_name(tmp_path / "table.parquet") == "table"


def test_a_file_without_metadata_needs_its_target_named(tmp_path):
    path = tmp_path / "plain.csv"
    FRAME.to_csv(path, index=False)
    raw = sources.read_file(path, target="colour")
    assert raw.target == "colour" and raw.name == "plain" and raw.task is None and raw.categorical == []
    with pytest.raises(DataError, match=r"which column of 'plain.csv' is the target.*'x', 'colour', 'target'"):
        sources.read_file(path, target=None)


def test_pmlb_metadata_gives_the_target_the_categorical_columns_and_the_task(tmp_path):
    path = tmp_path / "colours.tsv.gz"
    FRAME.to_csv(path, sep="\t", index=False)
    (tmp_path / "colours.yaml").write_text(
        "task: classification\nfeatures:\n  - name: x\n    type: continuous\n  - name: colour\n    type: nominal\n"
    )
    raw = sources.read_file(path, target=None)
    assert raw.target == "target" and raw.categorical == ["colour"] and raw.task == "classification"
    assert raw.name == "colours"
    _same(raw.frame)


def test_a_bundle_of_arrays_gets_its_feature_names():
    bunch = {"data": np.arange(6.0).reshape(3, 2), "target": np.array([0, 1, 0]), "feature_names": ["p", "q"]}
    raw = sources.read_bunch(bunch)
    assert list(raw.frame.columns) == ["p", "q"] and raw.name == "bunch"
    assert list(raw.target) == [0, 1, 0]


def test_bundled_sklearn_datasets_are_read_by_name():
    assert sources.is_sklearn_spec("sklearn:iris") and not sources.is_sklearn_spec("iris.csv")
    raw = sources.read_sklearn("sklearn:iris")
    assert raw.name == "iris" and raw.frame.shape == (150, 4) and len(raw.target) == 150


def test_an_unknown_spec_is_a_data_error_that_lists_the_choices():
    with pytest.raises(DataError, match="unknown bundled dataset 'nope'.*'iris'"):
        sources.read_sklearn("sklearn:nope")
    assert sources.is_openml_spec("openml:31") and sources.is_openml_spec("openml-task:59")
    assert not sources.is_openml_spec("openml")
    with pytest.raises(DataError, match="expected 'openml:<number>'"):
        sources.read_openml("openml:iris")  # refused before anything is fetched
