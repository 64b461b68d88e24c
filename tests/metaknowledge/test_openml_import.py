"""OpenML import through the real openml client, replaying recorded server responses."""

from __future__ import annotations

import pytest

from metaknowledge.features import EXTRACTOR_VERSION
from metaknowledge.openml_import import QUALITIES_VERSION, import_openml
from metaknowledge.store import KnowledgeBase
from searchspaces import get_learner

openml = pytest.importorskip("openml")

from tests.openml_replay import replay_openml  # noqa: E402


@pytest.fixture
def replay(monkeypatch, tmp_path):
    with replay_openml(monkeypatch, tmp_path / "openml-cache") as requested:
        yield requested


def test_classification_task_runs_are_mapped_or_kept_as_foreign(replay, tmp_path):
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    report = import_openml(kb, [990001])
    assert report.tasks == ["openml-task/990001"] and report.mapped_runs == 3 and report.foreign_runs == 2
    task = kb.tasks().set_index("name").loc["openml-task/990001"]
    assert task["task_type"] == "binary" and task["metric"] == "roc_auc" and task["openml_dataset_id"] == 990101
    assert kb.snapshot().meta_feature_table(QUALITIES_VERSION, source="openml").loc[
        "openml-task/990001", "NumberOfInstances"] == 60
    runs = kb.runs().set_index("origin")
    svm = runs.loc["openml-run/8800003"]
    assert svm["learner"] == "svm" and '"gamma_scale": 0.2' in svm["params"]  # gamma 0.05 x 4 features
    assert runs.loc["openml-run/8800002", "learner"] == "random_forest"
    assert runs.loc["openml-run/8800005", "learner"] == "openml-flow:8365"  # max_depth=5: not representable
    assert runs.loc["openml-run/8800004", "learner"] == "openml-flow:8367"  # a gradient-boosting pipeline
    for row in runs[runs["learner"] == "random_forest"].itertuples():
        import json

        assert not get_learner("random_forest", "classification").space.problems(json.loads(row.params))


def test_regression_task_and_our_meta_features_from_the_downloaded_data(replay, tmp_path):
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    report = import_openml(kb, [990002], metric="root_mean_squared_error", datasets=[990102])
    assert report.mapped_runs == 2 and report.described_datasets == [990102]
    assert kb.tasks().loc[0, "task_type"] == "regression"
    assert set(kb.runs()["learner"]) == {"random_forest", "linear"}
    ours = kb.snapshot().meta_feature_table(EXTRACTOR_VERSION)
    assert ours.loc["openml-task/990002", "simple.n_rows"] == 60
    assert any(name.endswith(".arff") for name in replay)  # the data really went through the download path


def test_importing_twice_adds_nothing(replay, tmp_path):
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    import_openml(kb, [990001])
    import_openml(kb, [990001])
    assert len(kb.runs()) == 5


def test_without_a_recording_the_error_is_a_connection_error(replay, tmp_path):
    import requests

    with pytest.raises(requests.exceptions.ConnectionError, match="task_424242"):
        import_openml(KnowledgeBase(tmp_path / "kb.sqlite"), [424242])
