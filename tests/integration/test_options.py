"""One options object for every way into a search: fit, work, the estimators and the CLI."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import tomllib
from setuptools import find_packages

import automl
from automl import cli, engine
from automl.errors import ConfigError
from automl.options import FitOptions
from tests.conftest import ROOT


def test_fit_keywords_are_exactly_the_options():
    keywords = set(inspect.signature(automl.fit).parameters) - {"data", "y"}
    assert keywords == {field.name for field in dataclasses.fields(FitOptions)}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ensemble_size": 0}, "ensemble_size"),
        ({"time_budget": -1}, "time_budget"),
        ({"time_budget": None, "n_trials": None}, "time_budget"),
        ({"trial_time_limit": 0}, "trial_time_limit"),
        ({"warm_start": -2}, "warm_start"),
        ({"n_jobs": 0}, "n_jobs"),
    ],
)
def test_bad_options_are_refused_when_built_with_the_fix(changes, message):
    with pytest.raises(ConfigError, match=message):
        FitOptions(**changes)


def test_unknown_options_are_named():
    with pytest.raises(ConfigError, match="time_budgt"):
        FitOptions.build(time_budgt=3)
    with pytest.raises(ConfigError, match="ensemble"):
        engine.work("sklearn:iris", storage="unused.db", ensemble=3)


def test_estimators_and_cli_build_the_same_options(monkeypatch, tmp_path):
    built: list[FitOptions] = []

    def capture(data, y, options):
        built.append(options)
        raise ConfigError("captured")

    monkeypatch.setattr("automl.estimators.fit_with_options", capture)
    monkeypatch.setattr("automl.cli.commands.fit_with_options", capture)
    with pytest.raises(ConfigError):
        automl.AutoMLClassifier(time_budget=7, ensemble_size=2, seed=3).fit([[0], [1]] * 5, [0, 1] * 5)
    assert cli.main(["fit", "sklearn:iris", "--time", "7", "--ensemble", "2", "--seed", "3", "-q",
                     "--out", str(tmp_path / "m.pkl")]) == 2
    from_estimator, from_cli = built
    assert from_estimator.time_budget == from_cli.time_budget == 7
    assert from_estimator.ensemble_size == from_cli.ensemble_size == 2
    assert from_estimator.seed == from_cli.seed == 3
    assert from_estimator.task == from_cli.task == "classification"


def test_the_benchmarks_are_not_installed_with_the_package_but_run_from_a_checkout(capsys):
    setuptools_config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = setuptools_config["packages"]["find"]["include"]
    packages = find_packages(str(ROOT), include=include)
    assert "automl" in packages and not any(name.split(".")[0] == "benchmarks" for name in packages)
    with pytest.raises(SystemExit) as done:
        cli.main(["bench", "--help"])
    assert done.value.code == 0
    assert "--budgets" in capsys.readouterr().out
