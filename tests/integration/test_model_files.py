"""Model files saved by earlier versions keep loading and predict what they predicted when saved.

The files in ``tests/fixtures/models`` were written by ``make_models.py`` with the engine of their suffix: a fitted
model (warm-started, with a categorical column), its distilled student and a meta-model of sinusoids.
"""


import numpy as np
import pandas as pd
import pytest

import automl
from automl.errors import ExportError
from automl.model_file import SavedModel
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "models"
VERSIONS = sorted(path.stem.removeprefix("automodel_") for path in FIXTURES.glob("automodel_*.pkl"))


@pytest.mark.parametrize("version", VERSIONS)
def test_a_saved_model_and_its_student_predict_as_they_did(version):
    rows = pd.read_csv(FIXTURES / f"rows_{version}.csv")
    expected = pd.read_csv(FIXTURES / f"expected_{version}.csv")
    model = automl.load(FIXTURES / f"automodel_{version}.pkl")
    student = automl.load(FIXTURES / f"student_{version}.pkl")
    model_columns = [c for c in expected.columns if c.startswith("model_")]
    np.testing.assert_allclose(model.predict_proba(rows), expected[model_columns].to_numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(student.predict_proba(rows), expected[[c.replace("model_", "student_")
                                                                       for c in model_columns]].to_numpy(),
                               rtol=1e-6, atol=1e-9)
    labels = [column.removeprefix("model_")
              for column in np.asarray(model_columns)[expected[model_columns].to_numpy().argmax(1)]]
    assert [str(label) for label in model.predict(rows)] == labels
    assert len(model.leaderboard()) == model.summary.n_trials
    assert (model.kind, student.kind) == ("model", "student")
    warm = model.summary.warm_start  # files before 0.2 pickled the warm start's internals: read back as plain data
    assert (warm.method and warm.suggestions
            and all(s.config.learner in ("linear", "lightgbm") for s in warm.suggestions))


@pytest.mark.parametrize("version", VERSIONS)
def test_a_saved_meta_model_adapts_as_it_did(version):
    pytest.importorskip("torch")
    expected = pd.read_csv(FIXTURES / f"meta_expected_{version}.csv")
    meta = automl.load(FIXTURES / f"metamodel_{version}.pkl")
    points = expected["x"].to_numpy(dtype=np.float32).reshape(-1, 1)
    adapted = meta.adapt(points[:5], np.sin(points[:5, 0]), steps=2)
    np.testing.assert_allclose(adapted.predict(points), expected["adapted"].to_numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(meta.predict(points, support=(points[:5], np.sin(points[:5, 0])), steps=2),
                               expected["adapted"].to_numpy(), rtol=1e-5, atol=1e-6)
    assert meta.kind == "meta-model"
    with pytest.raises(ExportError, match="meta-model cannot be exported"):
        meta.export(FIXTURES / "never_written.onnx")


def test_a_model_saved_now_loads_as_the_kind_it_is(tmp_path):
    rows = pd.read_csv(FIXTURES / f"rows_{VERSIONS[0]}.csv")
    student = automl.load(FIXTURES / f"student_{VERSIONS[0]}.pkl")
    path = student.save(tmp_path / "student.pkl")
    again = automl.load(path)
    assert isinstance(again, SavedModel) and again.kind == "student"
    np.testing.assert_array_equal(again.predict_proba(rows), student.predict_proba(rows))
