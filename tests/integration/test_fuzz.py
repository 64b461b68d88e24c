"""Robustness, measured: generated junk thrown at fit, predict, predict_proba, score, load and the CLI.

Every input must end in a result (a model; predictions of the right shape) or
in an error raised on purpose: an :class:`automl.errors.AutoMLError` with a
message (for the CLI: exit code 2 and one ``error:`` line, no traceback).
A raw library exception is a defect.

The property tests are marked slow (``pytest tests/test_fuzz.py -m slow``);
they count what they tried in :data:`OUTCOMES`, print the figures at the end
and keep them in pytest's cache (``.pytest_cache/v/automl/fuzz``). The
regression tests at the bottom replay each defect the fuzzing found, and run
with the default suite. Set ``AUTOML_FUZZ_RANDOM=1`` for fresh random
examples instead of the reproducible ones.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import automl
from automl.cli.commands import main
from automl.errors import AutoMLError
from automl.model import AutoModel

OUTCOMES: Counter[str] = Counter()
MESSAGES: Counter[str] = Counter()  # the package errors by the start of their message, to see what the inputs hit
FIT = dict(n_trials=1, warm_start=False, remember=False, verbose=0, ensemble_size=1, time_budget=20)
FAST_LEARNERS = ["lightgbm", "linear"]


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not os.environ.get("AUTOML_FUZZ_RANDOM"),
        suppress_health_check=list(HealthCheck),
    )


class Defect(AssertionError):
    """A raw exception where a result or an AutoMLError was due."""


def attempt(target: str, call: Callable[[], Any]) -> tuple[bool, Any]:
    """Run ``call``, count how it ended; (True, result) or (False, the package error). A raw exception fails."""
    OUTCOMES["inputs"] += 1
    OUTCOMES[f"{target}: inputs"] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
    except AutoMLError as error:
        assert str(error).strip(), f"{target} raised {type(error).__name__} without a message"
        OUTCOMES["package error"] += 1
        OUTCOMES[f"{target}: package error"] += 1
        MESSAGES[f"{target}: {type(error).__name__}: {re.sub(r'[0-9]+', 'N', str(error))[:50]}"] += 1
        if isinstance(error, automl.SearchFailed):  # every trial failed: worth a look, it may hide a defect
            MESSAGES[f"{target}: SearchFailed in full: {error}"] += 1
        return False, error
    except Exception as error:
        OUTCOMES["raw exception"] += 1
        raise Defect(f"{target} raised a raw {type(error).__name__}: {error}") from error
    OUTCOMES["result"] += 1
    OUTCOMES[f"{target}: result"] += 1
    return True, result


@pytest.fixture(scope="module", autouse=True)
def figures(request):
    """Print and keep the counts once the module's tests have run."""
    yield
    if not any(item.get_closest_marker("slow") for item in request.session.items):
        return  # only the regression tests ran
    request.config.cache.set("automl/fuzz", dict(OUTCOMES))
    request.config.cache.set("automl/fuzz_messages", dict(MESSAGES.most_common()))
    lines = [f"fuzz: {OUTCOMES['inputs']} inputs, {OUTCOMES['result']} results, "
             f"{OUTCOMES['package error']} package errors, {OUTCOMES['raw exception']} raw exceptions"]
    lines += [f"  {key}: {value}" for key, value in sorted(OUTCOMES.items()) if ":" in key]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print("\n" + "\n".join(lines))


# -- reference models, fitted once -------------------------------------------------------------------------------

WORDS = ["good", "bad", "fine", "item", "box", "fast", "slow", "late", "broken", "great", "the", "was", "very"]


def reference_frame(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "when": pd.date_range("2020-01-01", periods=n, freq="36h").astype(str),
            "note": [" ".join(rng.choice(WORDS, 5)) for _ in range(n)],
            "row_id": np.arange(n),
        }
    )
    X.loc[::11, "a"] = np.nan
    y = ((X["a"].fillna(0) + (X["colour"] == "red")) > 0.3).astype(int).to_numpy()
    return X, y


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Any]:
    X, y = reference_frame()
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        binary = automl.fit(X, y, learners=["lightgbm"], **{**FIT, "n_trials": 2, "ensemble_size": 2})
        labels = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, len(y))]
        multi = automl.fit(X, labels, learners=["linear"], **FIT)
        regression = automl.fit(X.drop(columns="note"), X["b"] * 1.5 + rng.normal(size=len(y)), learners=["lightgbm"],
                                **FIT)
    folder = tmp_path_factory.mktemp("models")
    return {
        "binary": binary,
        "multi": multi,
        "regression": regression,
        "X": X,
        "folder": folder,
        "files": {name: model.save(folder / f"{name}.pkl") for name, model in
                  (("binary", binary), ("multi", multi), ("regression", regression))},
    }


# -- strategies ---------------------------------------------------------------------------------------------------

ODD_STRINGS = ["", " ", "nan", "NaN", "inf", "-inf", "1e400", "3.5", "red", "RED", "2020-01-01", "not a date",
               "🙂", "a,b", '"', "\x00", "None", "True", "12:00", "1/2/2021"]
CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.text(max_size=12),
    st.sampled_from(ODD_STRINGS),
    st.none(),
    st.booleans(),
    st.binary(max_size=4),
    st.lists(st.integers(0, 3), max_size=2),
    st.complex_numbers(max_magnitude=10, allow_nan=False),
    st.datetimes().map(pd.Timestamp),
    st.just(pd.NA),
    st.just(pd.NaT),
)


@st.composite
def columns(draw: st.DrawFn, n: int) -> Any:
    """One column of ``n`` values: typed (floats with NaN/inf, integers, strings, dates, booleans) or mixed junk."""
    kind = draw(st.sampled_from(["float", "int", "string", "date", "bool", "category", "mixed", "mixed", "constant"]))
    if kind == "float":
        return np.array(draw(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=n,
                                      max_size=n)), dtype=float)
    if kind == "int":
        return np.array(draw(st.lists(st.integers(-(10**9), 10**9), min_size=n, max_size=n)), dtype=np.int64)
    if kind == "string":
        return pd.Series(draw(st.lists(st.one_of(st.text(max_size=40), st.sampled_from(ODD_STRINGS)), min_size=n,
                                       max_size=n)), dtype=object)
    if kind == "date":
        return pd.Series(draw(st.lists(st.datetimes(), min_size=n, max_size=n)), dtype="datetime64[us]")
    if kind == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if kind == "category":
        return pd.Categorical(draw(st.lists(st.sampled_from(["red", "green", "blue", "violet"]), min_size=n,
                                            max_size=n)))
    if kind == "constant":
        return [draw(CELLS)] * n
    return pd.Series(draw(st.lists(CELLS, min_size=n, max_size=n)), dtype=object)


@st.composite
def prediction_inputs(draw: st.DrawFn, reference: pd.DataFrame) -> Any:
    """Something a user might pass to predict: mostly frames shaped like the training data, mutated."""
    n = draw(st.sampled_from([0, 1, 2, 5, 17]))
    rows = reference.sample(n=n, replace=True, random_state=draw(st.integers(0, 1000))).reset_index(drop=True)
    frame = rows.copy()
    for name in draw(st.lists(st.sampled_from(list(frame.columns)), max_size=3, unique=True)):
        frame[name] = draw(columns(n))
    mutation = draw(st.sampled_from(["none", "none", "drop", "extra", "duplicate", "reorder", "int names", "unseen",
                                     "strings"]))
    if mutation == "drop":
        frame = frame.drop(columns=draw(st.sampled_from(list(frame.columns))))
    elif mutation == "extra":
        frame[draw(st.one_of(st.text(max_size=5), st.just("zz")))] = draw(columns(n))
    elif mutation == "duplicate":
        frame = pd.concat([frame, frame.iloc[:, :1]], axis=1)
    elif mutation == "reorder":
        frame = frame[list(reversed(frame.columns))]
    elif mutation == "int names":
        frame.columns = range(frame.shape[1])
    elif mutation == "unseen":
        frame["colour"] = draw(st.lists(st.text(max_size=6), min_size=n, max_size=n))
    elif mutation == "strings":
        frame = frame.map(str)  # every value a string, as a careless CSV reader leaves them
    form = draw(st.sampled_from(["frame"] * 6 + ["array", "lists", "dict", "series", "scalar", "none", "1d", "3d",
                                                 "no rows"]))
    if form == "array":
        return frame.to_numpy()
    if form == "lists":
        return frame.to_numpy().tolist()
    if form == "dict":
        return {str(c): list(frame.iloc[:, i]) for i, c in enumerate(frame.columns)}
    if form == "series":
        return frame.iloc[:, 0] if frame.shape[1] else pd.Series([], dtype=float)
    if form == "scalar":
        return draw(CELLS)
    if form == "none":
        return None
    if form == "1d":
        return np.arange(n)
    if form == "3d":
        return np.zeros((n, 2, 2))
    if form == "no rows":
        return frame.iloc[:0]
    return frame


def rows_of(X: Any) -> int | None:
    """The rows a prediction must have when it succeeds (None when the input is not a table)."""
    if isinstance(X, pd.DataFrame):
        return len(X)
    if isinstance(X, np.ndarray):
        return len(X) if X.ndim == 2 else None
    if isinstance(X, list) and X and all(isinstance(row, list) for row in X):
        return len(X)
    return None


# -- predict, predict_proba, score -------------------------------------------------------------------------------


@pytest.mark.slow
@fuzz_settings(1000)
@given(data=st.data())
def test_predict_and_predict_proba_on_junk(models, data):
    name = data.draw(st.sampled_from(["binary", "binary", "multi", "regression"]))
    model: AutoModel = models[name]
    X = data.draw(prediction_inputs(models["X"]))
    ok, predictions = attempt("predict", lambda: model.predict(X))
    if ok:
        assert isinstance(predictions, np.ndarray) and predictions.shape == (rows_of(X),)
    if name != "regression":
        ok, proba = attempt("predict_proba", lambda: model.predict_proba(X))
        if ok:
            assert proba.shape == (rows_of(X), len(model.classes_))
            assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0)
    if data.draw(st.booleans()) and rows_of(X) is not None:
        n = rows_of(X) + data.draw(st.sampled_from([0, 0, 0, 1, -1]))
        y = data.draw(st.one_of(st.lists(CELLS, min_size=max(n, 0), max_size=max(n, 0)),
                                st.lists(st.sampled_from(list(model.task.classes) or [1.5]), min_size=max(n, 0),
                                         max_size=max(n, 0))))
        ok, value = attempt("score", lambda: model.score(X, y))
        if ok:
            assert isinstance(value, float)


# -- load -----------------------------------------------------------------------------------------------------------

JUNK_OBJECTS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10), st.binary(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def junk_files(draw: st.DrawFn, models: dict[str, Any]) -> Path:
    """A file that may or may not be a model: random bytes, an empty file, a table, a pickle of something else,
    a dict that imitates the model file's header, a model file cut short, or a real model."""
    folder: Path = models["folder"]
    kind = draw(st.sampled_from(["bytes", "empty", "csv", "pickle", "joblib header", "truncated", "model", "missing",
                                 "folder"]))
    path = folder / f"junk{draw(st.integers(0, 10**9))}{draw(st.sampled_from(['.pkl', '.csv', '', '.parquet']))}"
    if kind == "bytes":
        path.write_bytes(draw(st.binary(min_size=1, max_size=300)))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "csv":
        models["X"].head(draw(st.integers(0, 5))).to_csv(path, index=False)
    elif kind == "pickle":
        path.write_bytes(pickle.dumps(draw(JUNK_OBJECTS)))
    elif kind == "joblib header":
        header = {"format": draw(st.sampled_from(["automl-model", "automl-meta-model", "other"])),
                  "version": draw(st.one_of(st.integers(-1, 9), st.text(max_size=3), st.none())),
                  "sklearn": draw(st.one_of(st.none(), st.text(max_size=5)))}
        if draw(st.booleans()):
            header["model"] = draw(JUNK_OBJECTS)
        joblib.dump(header, path)
    elif kind == "truncated":
        content = models["files"]["binary"].read_bytes()
        path.write_bytes(content[: draw(st.integers(0, len(content) - 1))])
    elif kind == "model":
        return models["files"][draw(st.sampled_from(["binary", "multi", "regression"]))]
    elif kind == "missing":
        return folder / "no" / "such.pkl"
    elif kind == "folder":
        return folder
    return path


@pytest.mark.slow
@fuzz_settings(300)
@given(data=st.data())
def test_load_on_junk_files(models, data):
    path = data.draw(junk_files(models))
    ok, model = attempt("load", lambda: automl.load(path))
    if ok:
        assert isinstance(model, AutoModel)
        assert model.predict(models["X"].head(3)).shape == (3,)


# -- the command line -----------------------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``automl <argv>``: the exit code and what it wrote to stderr. A raw exception is a defect."""
    OUTCOMES["inputs"] += 1
    command = f"cli {argv[0]}"
    OUTCOMES[f"{command}: inputs"] += 1
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(argv)
    except Exception as error:
        OUTCOMES["raw exception"] += 1
        raise Defect(f"automl {' '.join(argv)} raised a raw {type(error).__name__}: {error}") from error
    message = err.getvalue()
    if code == 0:
        OUTCOMES["result"] += 1
        OUTCOMES[f"{command}: result"] += 1
    else:
        assert code == 2, f"automl {' '.join(argv)} exited with {code}: {message}"
        lines = [line for line in message.splitlines() if line.strip()]
        assert lines and lines[-1].startswith(f"automl {argv[0]}: error: "), message
        assert "Traceback" not in message and len(lines) == 1, message
        OUTCOMES["package error"] += 1
        OUTCOMES[f"{command}: package error"] += 1
    return code, message


@pytest.mark.slow
@fuzz_settings(250)
@given(data=st.data())
def test_cli_on_junk_files(models, data):
    folder: Path = models["folder"]
    command = data.draw(st.sampled_from(["fit", "info", "predict", "fit", "info", "predict", "predict"]))
    if command == "info":
        run_cli(["info", str(data.draw(st.one_of(st.sampled_from(list(models["files"].values())),
                                                 junk_files(models))))])
    elif command == "predict":
        model_path = data.draw(st.one_of(st.sampled_from(list(models["files"].values())), junk_files(models)))
        table = folder / f"rows{data.draw(st.integers(0, 10**9))}.csv"
        X = data.draw(prediction_inputs(models["X"]))
        if isinstance(X, pd.DataFrame):
            X.to_csv(table, index=False)
        else:
            table = data.draw(junk_files(models))
        argv = ["predict", str(model_path), str(table), "--out", str(folder / "predictions.csv")]
        run_cli(argv + (["--proba"] if data.draw(st.booleans()) else []))
    else:
        table = data.draw(st.one_of(junk_files(models),
                                    st.builds(lambda n: _training_csv(folder, models["X"], n), st.integers(0, 40))))
        target = data.draw(st.sampled_from(["target", "a", "colour", "nope"]))
        run_cli(["fit", str(table), "--target", target, "--trials", "1", "--learners", "linear", "--time", "10",
                 "--ensemble", "1", "-q", "--out", str(folder / "fitted.pkl")])


def _training_csv(folder: Path, X: pd.DataFrame, n: int) -> Path:
    path = folder / f"train{n}.csv"
    frame = X.head(n).assign(target=np.arange(n) % 2)
    frame.to_csv(path, index=False)
    return path


# -- fit ------------------------------------------------------------------------------------------------------------


@st.composite
def training_inputs(draw: st.DrawFn) -> tuple[Any, Any, dict[str, Any]]:
    """(X, y, extra keyword arguments) for fit: junk frames, targets of every kind, misaligned, duplicate names."""
    n = draw(st.sampled_from([0, 1, 6, 12, 30, 30, 30]))
    width = draw(st.sampled_from([0, 1, 2, 2, 3, 4]))
    unique = draw(st.sampled_from([True, True, True, True, False]))  # duplicate names now and then
    names = draw(st.lists(st.one_of(st.text(max_size=4), st.integers(0, 3)), min_size=width, max_size=width,
                          unique_by=str if unique else None))
    X = pd.DataFrame({i: draw(columns(n)) for i in range(width)}, index=range(n))
    X.columns = names
    target_kind = draw(st.sampled_from(["binary", "multiclass", "float", "strings", "junk", "nan", "constant"]))
    if target_kind == "binary":
        y = list(np.arange(n) % 2)
    elif target_kind == "multiclass":
        y = list(np.arange(n) % 3)
    elif target_kind == "float":
        y = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n))
    elif target_kind == "strings":
        y = draw(st.lists(st.sampled_from(["yes", "no", "maybe"]), min_size=n, max_size=n))
    elif target_kind == "nan":
        y = [np.nan] * n
    elif target_kind == "constant":
        y = [1] * n
    else:
        y = draw(st.lists(CELLS, min_size=n, max_size=n))
    shift = draw(st.sampled_from([0] * 8 + [1, -1]))  # a misaligned target now and then
    y = y[: max(n + shift, 0)] if shift < 0 else y + [0] * shift
    extra: dict[str, Any] = {"learners": [draw(st.sampled_from(FAST_LEARNERS))]}
    if draw(st.booleans()):
        extra["task"] = draw(st.sampled_from(["classification", "regression", "binary", "multiclass"]))
    form = draw(st.sampled_from(["pandas", "pandas", "numpy", "target column"]))
    if form == "numpy":
        return X.to_numpy(), np.asarray(y, dtype=object), extra
    if form == "target column" and len(y) == n:
        frame = X.copy()
        frame["the target"] = y
        extra["target"] = draw(st.sampled_from(["the target", "the target", "the target", "missing"]))
        return frame, None, extra
    return X, y, extra


@pytest.mark.slow
@fuzz_settings(300)
@given(case=training_inputs())
def test_fit_on_junk(case):
    X, y, extra = case
    ok, model = attempt("fit", lambda: automl.fit(X, y, **FIT, **extra))
    if ok:
        assert isinstance(model, AutoModel)
        data = X.drop(columns=[extra["target"]]) if "target" in extra else X
        ok, predictions = attempt("predict", lambda: model.predict(data))
        if ok:
            assert predictions.shape == (len(data),)


# -- each defect the fuzzing found, replayed (these run with the default suite) --------------------------------------


def quiet_fit(X: Any, y: Any, **options: Any) -> AutoModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return automl.fit(X, y, **{**FIT, "learners": ["lightgbm"], **options})


def test_predict_reads_a_string_in_a_numeric_column_as_missing(models):
    X = models["X"].head(3).assign(a=["oops", 0.5, None])
    with pytest.warns(UserWarning, match="'a' \\(e.g. 'oops'\\)"):
        assert models["binary"].predict(X).shape == (3,)  # was NumPy's "could not convert string to float"


@pytest.mark.parametrize("name, shape", [("binary", (0, 2)), ("multi", (0, 3)), ("regression", None)])
def test_no_rows_give_empty_predictions(models, name, shape):
    model = models[name]
    assert model.predict(models["X"].iloc[:0]).shape == (0,)  # was LightGBM's "Found array with 0 sample(s)"
    if shape is not None:
        assert model.predict_proba(models["X"].iloc[:0]).shape == shape


def test_classes_read_as_plain_values(models, capsys):
    assert models["binary"].task.classes == (0, 1) and all(type(c) is int for c in models["binary"].task.classes)
    assert main(["info", str(models["files"]["binary"])]) == 0
    assert "classes:   [0, 1]" in capsys.readouterr().out  # was [np.int64(0), np.int64(1)]
    with pytest.raises(automl.DataError, match=r"single class \(0\)"):
        quiet_fit(np.ones((6, 2)), np.zeros(6, dtype=np.int64))


def test_score_with_junk_targets_or_no_table_is_a_data_error(models):
    X = models["X"].head(2)
    for model, y in [(models["regression"], [pd.NA, 1.0]), (models["regression"], ["", 1.0]),
                     (models["binary"], [pd.NA, 1]), (models["binary"], [[1, 2], [0]])]:
        with pytest.raises(automl.DataError):
            model.score(X if model is not models["regression"] else X.drop(columns="note"), y)
    with pytest.raises(automl.DataError, match="2-D"):
        models["binary"].score(5, [1])  # was TypeError: object of type 'int' has no len()


def test_targets_numpy_cannot_type_are_read_or_refused_plainly():
    X = pd.DataFrame({"a": np.linspace(0, 1, 12)})
    assert quiet_fit(X, [b"\x80", "a"] * 6).predict(X).shape == (12,)  # was UnicodeDecodeError
    with pytest.raises(automl.DataError, match="one label or value per row"):
        quiet_fit(X.head(6), [[1], [1, 2], 0, 1, 0, 1])  # was NumPy's "inhomogeneous shape"


def test_huge_finite_values_do_not_break_scaled_learners():
    X = pd.DataFrame({"a": [1e308, -1e308, 0.0, 5.0] * 8, "b": np.arange(32) % 3})
    model = quiet_fit(X, np.arange(32) % 2, learners=["linear"])  # was SearchFailed: StandardScaler overflowed to NaN
    assert [note.action for note in model.column_notes] == ["infinite"]


def test_cli_predict_proba_with_a_regression_model_is_one_error_line(models):
    table = models["folder"] / "regression_rows.csv"
    models["X"].head(3).to_csv(table, index=False)
    code, message = run_cli(["predict", str(models["files"]["regression"]), str(table), "--proba",
                             "--out", str(models["folder"] / "p.csv")])
    assert code == 2 and "--proba needs a classification model" in message  # was an AttributeError traceback


@pytest.mark.parametrize("header", [
    {"format": "automl-model", "version": "3", "model": None},  # was TypeError: '>' between str and int
    {"format": "automl-model", "version": 3, "model": [1]},  # was returned as if it were a model
    {"format": "automl-meta-model"},  # was KeyError: 'model'
])
def test_load_refuses_files_that_only_imitate_a_model(models, header):
    path = models["folder"] / "imitation.pkl"
    joblib.dump(header, path)
    with pytest.raises(automl.ModelFileError):
        automl.load(path)


def test_column_names_that_collide_as_strings_are_refused(models):
    with pytest.raises(automl.DataError, match="duplicate column names"):
        quiet_fit(pd.DataFrame({1: range(10), "1": range(10)}), [0, 1] * 5)  # was AttributeError inside typing
    with pytest.raises(automl.DataError, match="duplicate column names"):
        models["binary"].predict(pd.concat([models["X"].head(2), models["X"].head(2)[["a"]]], axis=1))
