"""The tree keeps the shape the README's "Where things are" describes: imports flow one way, old import paths work.

The import contracts live in ``pyproject.toml`` (``[tool.importlinter]``): the stages of ``automl/`` import only the
stages below them and not their siblings, ``metaknowledge`` and ``searchspaces`` know nothing of the engine, and no
package holds an import cycle, function-level imports included.
"""

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_imports_keep_the_contracts_of_pyproject():
    linter = pytest.importorskip("importlinter.cli")
    exit_code = linter.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert exit_code == 0, "an import breaks a contract: run lint-imports for the chain"


def test_lines_are_at_most_120_columns():
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "E501", "--output-format", "concise",
                           "automl", "metaknowledge", "searchspaces", "benchmarks", "tests", "examples"],
                          cwd=ROOT, capture_output=True, text=True)
    if "No module named ruff" in ruff.stderr:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    assert ruff.returncode == 0, ruff.stdout[-2000:]


def test_old_import_paths_still_work():
    import automl.series
    from automl.learn2learn import series

    assert automl.series.sinusoid is series.sinusoid and automl.series.TaskSeries is series.TaskSeries
    pytest.importorskip("torch")
    import automl.meta_model
    from automl.learn2learn.meta_fit import meta_fit
    from automl.learn2learn.meta_model import MetaModel

    assert automl.meta_model.meta_fit is meta_fit and automl.meta_model.MetaModel is MetaModel


def test_every_model_a_user_loads_shares_one_base():
    from automl.model import AutoModel
    from automl.model_file import SavedModel
    from automl.serving.distill import DistilledModel

    assert issubclass(AutoModel, SavedModel) and issubclass(DistilledModel, SavedModel)
    assert {AutoModel.kind, DistilledModel.kind} == {"model", "student"}
    pytest.importorskip("torch")
    from automl.learn2learn.meta_model import MetaModel

    assert issubclass(MetaModel, SavedModel) and MetaModel.kind == "meta-model"


def test_importing_metaknowledge_loads_neither_optuna_ray_nor_torch():
    code = ("import sys, metaknowledge.warmstart, metaknowledge.store, metaknowledge.shipped; "
            "print(sorted(m for m in ('optuna', 'ray', 'torch', 'automl') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
