"""Every message the command line shows a user is a plain line or two in the CLI's own words: the flag that fixes a
mistake, never Python's argument syntax, a source line or another library's exception name."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from automl.cli.commands import main
from tests.data.test_everyday_data import everyday_frame

PYTHON = re.compile(r"\w+='|\w+=\[|\w\.\w+\(|\.py:\d+|Traceback|\b[A-Z]\w*(Error|Warning)\b|\(\)")


def plain(text: str, lines: int = 2) -> str:
    """``text`` after checking it is 1 to ``lines`` lines and speaks no Python."""
    shown = [line for line in text.strip().splitlines() if line.strip()]
    assert 1 <= len(shown) <= lines, text
    assert not PYTHON.search(text), text
    return text


@pytest.fixture(scope="module")
def customers(tmp_path_factory) -> dict:
    """A churn CSV (an ID, a date, free text, a number), and a model fitted on it by the CLI."""
    folder = tmp_path_factory.mktemp("customers")
    X, y = everyday_frame(300)
    X["x"] = X["x"].replace(np.inf, 0.0)
    frame = X.assign(churn=y)
    train, new = folder / "train.csv", folder / "new.csv"
    frame.iloc[:240].to_csv(train, index=False)
    frame.iloc[240:].drop(columns="churn").to_csv(new, index=False)
    model = folder / "model.pkl"
    assert main(["fit", str(train), "--target", "churn", "--trials", "3", "--learners", "linear", "--out",
                 str(model), "-q"]) == 0
    return {"train": train, "new": new, "model": model, "folder": folder}


@pytest.mark.parametrize("argv, flag", [
    (["fit", "data.csv", "--time", "-5"], "--time"),
    (["fit", "data.csv", "--time", "10", "--jobs", "0"], "--jobs"),
    (["fit", "data.csv", "--ensemble", "0"], "--ensemble"),
    (["fit", "data.csv", "--max-predict-ms", "-1"], "--max-predict-ms"),
    (["fit", "data.csv", "--test-size", "2"], "--test-size"),
])
def test_a_wrong_flag_is_refused_before_the_data_is_read_and_named_as_a_flag(argv, flag, capsys):
    assert main(argv) == 2  # data.csv does not exist: the flag is checked first
    err = plain(capsys.readouterr().err)
    assert flag in err and "no such file" not in err


def test_a_single_class_target_names_the_task_flag(tmp_path, capsys):
    path = tmp_path / "one.csv"
    pd.DataFrame({"a": [i % 5 for i in range(30)], "y": [1.0] * 30}).to_csv(path, index=False)
    assert main(["fit", str(path), "--target", "y", "--trials", "2"]) == 2
    err = plain(capsys.readouterr().err)
    assert "--task regression" in err


def test_a_file_that_is_no_model_is_refused_without_the_unpicklers_words(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("not a model\n")
    assert main(["predict", str(path), str(path)]) == 2
    err = plain(capsys.readouterr().err)
    assert "is not a model saved by automl" in err and "automl fit" in err


def test_a_warning_is_one_plain_line(customers, capsys):
    model = customers["folder"] / "again.pkl"
    assert main(["fit", str(customers["train"]), "--target", "churn", "--trials", "2", "--learners", "linear",
                 "--out", str(model), "-q"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert any("dropped ID-like column(s) ['customer_id']" in line for line in warned), warned
    for line in warned:
        assert line.startswith("automl fit: warning: ")
        plain(line, lines=1)


def test_the_export_refusal_names_the_cli_way_to_a_student(customers, capsys):
    assert main(["export", str(customers["model"]), "--data", str(customers["new"]),
                 "--out", str(customers["folder"] / "m.onnx")]) == 2
    err = plain(capsys.readouterr().err)
    assert "--distill" in err and "automl export" in err


def test_predictions_carry_the_id_column_and_the_columns_asked_for(customers, capsys):
    out = customers["folder"] / "predictions.csv"
    assert main(["predict", str(customers["model"]), str(customers["new"]), "--out", str(out)]) == 0
    written = pd.read_csv(out)
    new = pd.read_csv(customers["new"])
    assert list(written.columns) == ["customer_id", "prediction"]  # ID-like: kept by default
    assert written["customer_id"].tolist() == new["customer_id"].tolist()
    assert main(["predict", str(customers["model"]), str(customers["new"]), "--out", str(out),
                 "--keep", "signup_date", "customer_id", "--proba"]) == 0
    assert list(pd.read_csv(out).columns) == ["signup_date", "customer_id", "prediction", "proba_0", "proba_1"]
    capsys.readouterr()
    assert main(["predict", str(customers["model"]), str(customers["new"]), "--keep", "order_no"]) == 2
    err = plain(capsys.readouterr().err)
    assert "--keep order_no" in err and "customer_id" in err


def test_info_ends_its_output_with_a_newline(customers, capsys):
    assert main(["info", str(customers["model"])]) == 0
    assert capsys.readouterr().out.endswith("\n")


def test_a_student_that_leaves_out_the_text_says_so(customers, capsys):
    model = customers["folder"] / "distilled.pkl"
    assert main(["fit", str(customers["train"]), "--target", "churn", "--trials", "2", "--learners", "linear",
                 "--out", str(model), "-q", "--distill", "3"]) == 0
    captured = capsys.readouterr()
    assert "ignores 'review'" in captured.out
    warned = [line for line in captured.err.splitlines() if "does not read text column 'review'" in line]
    assert len(warned) == 1 and plain(warned[0], lines=1)
    assert main(["info", str(model.with_suffix(".student.pkl"))]) == 0
    assert "ignores:   it does not read text column 'review'" in capsys.readouterr().out


def test_the_help_says_what_the_defaults_do(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a small LightGBM or a linear model" in text  # the student may be linear
    assert "XGBoost and CatBoost" in text  # the boosters join the default learners from 10 s
