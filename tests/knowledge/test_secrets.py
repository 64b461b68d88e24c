"""A password in a database URL stays secret: not in logs, the leaderboard, the report, ``automl kb info``, the model
file or any error, the CLI's usage errors included."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys

import pandas as pd
import pytest

import automl
from automl.cli.commands import main
from metaknowledge.location import mask_secrets
from metaknowledge.store import KnowledgeBase, KnowledgeBaseError
from tests.conftest import ROOT


def test_mask_secrets_hides_only_the_password():
    assert mask_secrets("postgresql://team:s3cr%40t@db:5432/automl and sqlite:///x.db") == \
        "postgresql://team:***@db:5432/automl and sqlite:///x.db"
    assert mask_secrets("postgresql://team@db/automl") == "postgresql://team@db/automl"


def test_a_fit_on_a_shared_base_and_study_never_shows_the_password(postgres, small_binary, tmp_path, caplog, capsys):
    url = postgres.new_database("secret_fit")
    secret = postgres.password
    X, y = small_binary
    caplog.set_level(logging.DEBUG)
    model = automl.fit(X, y, kb=url, storage=url, study_name="s", time_budget=None, n_trials=3, warm_start=3,
                       learners=["linear", "knn"], report=str(tmp_path / "report.html"), verbose=2)
    path = model.save(tmp_path / "model.pkl")
    seen = {
        "logs": caplog.text,
        "console": "".join(capsys.readouterr()),
        "leaderboard": model.leaderboard().to_string(),
        "model": str(model),
        "report": (tmp_path / "report.html").read_text(),
        "kb info": _cli(["kb", "info", "--kb", url], capsys),
    }
    assert KnowledgeBase(url).info()["runs"] == 3  # the fit did use the base
    assert secret.encode() not in path.read_bytes()
    for where, text in seen.items():
        assert secret not in text, f"the password shows in the {where}"


def test_errors_about_a_shared_base_never_show_the_password(postgres, tmp_path, capsys):
    wrong = postgres.url("nowhere").replace(postgres.password, "Wr0ngPassw0rd")
    with pytest.raises(KnowledgeBaseError) as refused:
        KnowledgeBase(wrong)
    assert "Wr0ngPassw0rd" not in str(refused.value) and "***" in str(refused.value)
    data = tmp_path / "data.csv"
    pd.DataFrame({"x": range(40), "y": [0, 1] * 20}).to_csv(data, index=False)
    outputs = [
        _cli(["kb", "info", "--kb", wrong], capsys),  # the engine's own error
        _cli(["fit", str(data), "--target", "y", "--kb", "mysql://team:Wr0ngPassw0rd@db/x"], capsys),
    ]
    # argparse's usage errors name the arguments they did not understand
    usage = subprocess.run([sys.executable, "-m", "automl.cli", "predict", "m.pkl", "d.csv", "--kb", wrong],
                           capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    outputs.append(usage.stderr)
    assert "unrecognized arguments" in usage.stderr
    for text in outputs:
        assert "Wr0ngPassw0rd" not in text and "***" in text and "Traceback" not in text


def _cli(argv: list[str], capsys) -> str:
    main(argv)
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_a_pickled_estimator_keeps_no_password():
    url = "postgresql://team:Sup3rSecret@db.example:5432/automl"
    estimator = automl.AutoMLClassifier(kb=url, storage=url, time_budget=5)
    copy = pickle.loads(pickle.dumps(estimator))
    assert b"Sup3rSecret" not in pickle.dumps(estimator)
    assert copy.kb == "postgresql://team:***@db.example:5432/automl" and estimator.kb == url  # the original keeps it
