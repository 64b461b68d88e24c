"""The HTML report, feature importance, ``automl report``, and what a stored study shows in optuna-dashboard."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import automl
from automl.cli.commands import main
from automl.knowledge.describe import describe
from automl.reporting.param_importance import param_importances
from automl.reporting.report import SECTIONS
from automl.search.backends.driver import DASHBOARD_ATTRS
from automl.search.evaluation import OK, TrialResult
from automl.search.metrics import get_metric
from searchspaces import Config, get_learner
from tests.knowledge_builders import synthetic_knowledge, write_knowledge

PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _breast_cancer_with_noise() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :8].copy()  # fewer columns: quicker shuffles
    X["noise"] = np.random.default_rng(0).normal(size=len(X))
    return X, y


def _knowledge_like(X, y, path) -> None:
    """A knowledge base whose tasks look like ``(X, y)`` (half of them), so that fit starts warm with neighbours."""
    from metaknowledge.features import EXTRACTOR_VERSION

    meta = describe(automl.data.dataset.load_dataset(X, y))
    knowledge = synthetic_knowledge()
    rows = []
    for row in knowledge.meta_features.itertuples():
        values = dict(meta) if int(row.task[1:]) % 2 == 0 else {k: v * 5 + 10 for k, v in meta.items()}
        rows.append({"task": row.task, "version": EXTRACTOR_VERSION, "source": "automl", "seconds": 0.1,
                     "features": json.dumps(values)})
    knowledge.meta_features = pd.DataFrame(rows)
    write_knowledge(path, knowledge)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One warm-started search, stored in SQLite, whose fit writes its report (with out-of-fold feature importance)."""
    folder = tmp_path_factory.mktemp("report")
    X, y = _breast_cancer_with_noise()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    with pytest.MonkeyPatch.context() as patch:  # the module's fixture runs before the autouse one that sets these
        patch.setenv("AUTOML_KB", str(folder / "own.sqlite"))
        patch.setenv("AUTOML_SHIPPED_KB", "none")
        patch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
        _knowledge_like(X_train, y_train, folder / "kb.sqlite")
        model = automl.fit(X_train, y_train, n_trials=8, time_budget=None, learners=["linear", "random_forest"],
                           warm_start=3, kb=folder / "kb.sqlite", storage=str(folder / "runs.db"), remember=False,
                           verbose=0, report=str(folder / "fit.html"))
    return {"model": model, "folder": folder, "test": (X_test, y_test), "columns": list(X.columns)}


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(data) for data in PNG.findall(text)]


def test_the_fit_time_report_has_every_section_and_stands_alone(fitted):
    from PIL import Image

    text = (fitted["folder"] / "fit.html").read_text()
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in text
    assert "could not be drawn" not in text
    images = _images(text)
    # progress, scores per learner, budget, feature importance, and member weights or parameters
    assert len(images) >= 5
    for png in images:
        with Image.open(io.BytesIO(png)) as picture:
            picture.load()
            assert picture.format == "PNG" and picture.size[0] > 200 and picture.size[1] > 50
    assert not re.search(r"https?://", text) and "<script" not in text and "<link" not in text
    assert not re.search(r'src="(?!data:)', text)
    board = fitted["model"].leaderboard()
    first_row = re.search(r"<tbody><tr[^>]*><td[^>]*>1</td><td>([^<]+)</td>", text)
    assert first_row and first_row.group(1) == board["learner"].iloc[0]


def test_the_report_shows_the_warm_starts_provenance(fitted):
    text = (fitted["folder"] / "fit.html").read_text()
    warm = fitted["model"].summary.warm_start
    assert warm is not None and warm.neighbours
    assert "Nearest known datasets" in text and f"<td>{warm.neighbours[0].name}</td>" in text
    assert f"method <b>{warm.method}</b>" in text
    assert "warm start (" in text or "warm:" in text  # the trials' origins appear in the legend or on the leaderboard


def test_out_of_fold_importance_is_kept_on_the_model(fitted, tmp_path):
    frame = fitted["model"].summary.feature_importance
    assert frame is not None and sorted(frame["feature"]) == sorted(fitted["columns"])
    assert frame.attrs["source"] == "out-of-fold" and 1 <= frame.attrs["splits"] <= 3
    path = fitted["model"].save(tmp_path / "model.pkl")
    again = automl.load(path).report(tmp_path / "again.html")  # a later report of the saved model shows it
    assert "out of fold at the end of the fit" in again.read_text()


def test_held_out_rows_give_feature_importance_in_the_report(fitted, tmp_path):
    X_test, y_test = fitted["test"]
    path = fitted["model"].report(tmp_path / "held_out.html", X_test, y_test)
    text = path.read_text()
    assert f"on {len(X_test)} held-out rows" in text and "noise" in text
    with pytest.raises(automl.DataError, match="both X and y"):
        fitted["model"].report(tmp_path / "half.html", X_test)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_feature_importance_ranks_a_useful_column_above_noise(task):
    rng = np.random.default_rng(1)
    n = 400
    X = pd.DataFrame({"signal": rng.normal(size=n), "weak": rng.normal(size=n), "noise": rng.normal(size=n)})
    value = 3 * X["signal"] + 0.5 * X["weak"] + rng.normal(scale=0.3, size=n)
    y = (value > 0).astype(int) if task == "classification" else value
    metric = "log_loss" if task == "classification" else "rmse"  # losses: importance must still be positive when useful
    model = automl.fit(X.iloc[:300], y.iloc[:300], n_trials=2, time_budget=None, learners=["linear"], metric=metric,
                       warm_start=False, remember=False, verbose=0)
    frame = model.feature_importance(X.iloc[300:], y.iloc[300:], n_repeats=4)
    assert list(frame.columns) == ["feature", "importance", "std"] and len(frame) == 3
    assert frame["feature"].iloc[0] == "signal" and frame["importance"].iloc[0] > 0.1
    by_name = frame.set_index("feature")["importance"]
    assert by_name["signal"] > by_name["weak"] > by_name["noise"] and abs(by_name["noise"]) < 0.05
    assert (frame["std"] >= 0).all()


def test_a_report_without_rows_says_how_to_get_feature_importance(tmp_path, small_binary):
    X, y = small_binary
    model = automl.fit(X, y, n_trials=2, time_budget=None, learners=["linear"], warm_start=False, remember=False,
                       verbose=0)
    text = model.report(tmp_path / "plain.html").read_text()
    assert "automl report MODEL --data test.csv" in text and "model.report(path, X_test, y_test)" in text
    assert "Cold start" in text and "too few trials" in text


def test_parameter_importance_finds_the_parameter_the_score_follows():
    rng = np.random.default_rng(0)
    results = []
    for i in range(20):
        C, weight = float(10 ** rng.uniform(-3, 2)), str(rng.choice(["balanced", "none"]))
        value = 0.7 + 0.05 * np.log10(C) + rng.normal(scale=0.002)
        results.append(TrialResult(Config("linear", {"C": C, "class_weight": weight}), OK, value, finished_at=i))
    results += [TrialResult(Config("knn", {"n_neighbors": k}), OK, 0.8) for k in (3, 5)]
    found = {item.learner: item for item in param_importances(results, get_metric("roc_auc", "binary"),
                                                              {"linear": get_learner("linear", "classification")})}
    assert list(found["linear"].importances)[0] == "C" and found["linear"].importances["C"] > 0.5
    assert abs(sum(found["linear"].importances.values()) - 1) < 1e-6
    assert found["knn"].importances == {} and "too few trials" in found["knn"].reason


def test_a_stored_study_shows_learner_origin_and_status_in_the_dashboard(fitted):
    storage = f"sqlite:///{fitted['folder'] / 'runs.db'}"
    names = optuna.get_all_study_names(storage)
    assert len(names) == 1
    study = optuna.load_study(study_name=names[0], storage=storage)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) >= 8
    statuses = {"ok", "failed", "timeout", "pruned", "crashed", "interrupted"}
    for trial in finished:
        assert set(DASHBOARD_ATTRS) <= set(trial.user_attrs)
        assert trial.user_attrs["learner"] in ("linear", "random_forest")
        assert trial.user_attrs["status"] in statuses
        assert trial.user_attrs["origin"]
        assert trial.user_attrs["learner"] == trial.params["learner"]
    origins = {t.user_attrs["origin"] for t in finished}
    assert any(origin.startswith("warm:") for origin in origins) and "default" in origins


def test_automl_report_writes_the_file_and_fails_cleanly(fitted, tmp_path, capsys):
    model_path = fitted["model"].save(tmp_path / "model.pkl")
    X_test, y_test = fitted["test"]
    data = tmp_path / "test.csv"
    X_test.assign(target=y_test.to_numpy()).to_csv(data, index=False)
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(model_path), "--out", str(out), "--data", str(data)]) == 0
    assert str(out) in capsys.readouterr().out and "held-out rows" in out.read_text()
    assert main(["report", str(tmp_path / "missing.pkl"), "--out", str(tmp_path / "x.html")]) == 2
    assert "no such model file" in capsys.readouterr().err
    X_test.to_csv(tmp_path / "no_target.csv", index=False)
    assert main(["report", str(model_path), "--data", str(tmp_path / "no_target.csv"), "--out",
                 str(tmp_path / "y.html")]) == 2
    assert "target" in capsys.readouterr().err


@pytest.mark.slow
def test_the_report_renders_in_a_headless_browser(fitted, tmp_path):
    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless browser: apt-get install -y chromium (Debian) to run this test")
    shot = tmp_path / "shot.png"
    page = (fitted["folder"] / "fit.html").resolve()
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri()],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    with Image.open(shot) as picture:
        rgb = picture.convert("RGB")
        colours = rgb.getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50  # text, tables and figures, not a blank page
        top = np.asarray(rgb.crop((0, 0, 1280, 1500)))
        assert (top < 128).all(axis=2).mean() > 0.005  # some dark ink (text) in the first screen


def test_without_matplotlib_the_report_keeps_its_tables(fitted, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "automl.reporting.plots", None)  # as if matplotlib were missing
    text = fitted["model"].report(tmp_path / "plain.html").read_text()
    assert not _images(text) and "pip install &#x27;automl-engine[report]&#x27;" not in text
    assert "automl-engine[report]" in text and all(f"<h2>{title}</h2>" in text for title in SECTIONS)
    assert "could not be drawn" not in text and "<td>noise</td>" in text


def test_counts_in_the_report_read_as_english():
    from automl.reporting.report import counted

    assert counted(1, "weaker trial") == "1 weaker trial" and counted(2, "weaker trial") == "2 weaker trials"
