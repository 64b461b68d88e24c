"""The ``automl`` command line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from automl.cli.commands import main
from automl.model import load as automl_load
from tests.conftest import pmlb_path


def test_help_lists_commands_and_examples():
    executable = shutil.which("automl") or f"{sys.executable} -m automl.cli"
    done = subprocess.run(f"{executable} --help", shell=True, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for word in ("fit", "predict", "info", "kb", "examples:"):
        assert word in done.stdout


def test_fit_predict_info_round_trip(tmp_path, capsys):
    data = pd.read_csv(pmlb_path("prnn_crabs"), sep="\t").sample(frac=1, random_state=0)
    train, new = tmp_path / "train.csv", tmp_path / "new.csv"
    data.iloc[:150].to_csv(train, index=False)
    data.iloc[150:].to_csv(new, index=False)
    model = tmp_path / "model.pkl"
    assert main(["fit", str(train), "--target", "target", "--time", "4", "--test-size", "0.25", "--out", str(model),
                 "-q"]) == 0
    out = capsys.readouterr().out
    assert "rank" in out and "held-out test" in out and "roc_auc" in out and model.exists()

    predictions = tmp_path / "predictions.csv"
    assert main(["predict", str(model), str(new), "--out", str(predictions), "--proba"]) == 0
    written = pd.read_csv(predictions)
    assert list(written.columns) == ["prediction", "proba_0", "proba_1"] and len(written) == 50
    assert "roc_auc on" in capsys.readouterr().out  # the file had the target column, so it is scored

    assert main(["info", str(model)]) == 0
    info = capsys.readouterr().out
    assert "binary" in info and "best:" in info and "trials" in info


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "missing.csv", "--target", "y"], "no such file"),
        (["fit", "sklearn:iris", "--time", "0"], "--time must be a positive"),
        (["fit", "sklearn:iris", "--metric", "rmse"], "is for regression"),
        (["predict", "missing.pkl", "x.csv"], "no such model file"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_meta_fit_and_evaluate_from_the_shell(tmp_path, capsys):
    pytest.importorskip("torch")
    meta_file = tmp_path / "sine.pkl"
    assert main(["meta", "fit", "sinusoid", "--algorithm", "fomaml", "--time", "2", "--out", str(meta_file), "-q"]) == 0
    assert "validation mse" in capsys.readouterr().out and meta_file.exists()
    assert main(["meta", "evaluate", str(meta_file), "sinusoid", "--shots", "5", "--episodes", "20"]) == 0
    assert re.search(r"^mse [\d.]+ ± [\d.]+ \(95 % CI, 20 episodes\)$", capsys.readouterr().out, re.M)
    assert main(["meta", "evaluate", str(meta_file)]) == 2
    assert "--omniglot-runs" in capsys.readouterr().err
    assert main(["meta", "fit", str(tmp_path / "nowhere"), "--time", "1", "-q"]) == 2
    assert "neither a file nor a folder" in capsys.readouterr().err


def test_meta_fit_resumes_from_its_file_and_writes_a_report(tmp_path, capsys):
    pytest.importorskip("torch")
    run = tmp_path / "run.pkl"
    assert main(["meta", "fit", "sinusoid", "--algorithm", "reptile", "--time", "2", "--out", str(run), "-q"]) == 0
    first = automl_load(run)
    assert main(["meta", "fit", "sinusoid", "--time", "4", "--resume", str(run), "--report", str(tmp_path / "r.html"),
                 "-q"]) == 0
    out = capsys.readouterr().out
    resumed = automl_load(run)  # written back to the file it resumed
    assert resumed.algorithm == "reptile" and resumed.progress.steps > first.progress.steps
    assert 3.5 < resumed.seconds < 6 and "report: " in out and (tmp_path / "r.html").exists()
    assert main(["meta", "fit", "sinusoid", "--algorithm", "maml", "--time", "6", "--resume", str(run), "-q"]) == 2
    assert "reptile run" in capsys.readouterr().err


def test_meta_evaluate_scores_the_official_one_shot_runs(tmp_path, capsys):
    pytest.importorskip("torch")
    from tests.omniglot_zips import drawing, make_background

    make_background(tmp_path / "images_background_small1.zip", "images_background_small1", alphabets=5, characters=4)
    with zipfile.ZipFile(tmp_path / "all_runs.zip", "w") as z:
        pairs = [(f"run01/test/item{i:02d}.png", f"run01/training/class{i:02d}.png") for i in range(4)]
        z.writestr("run01/class_labels.txt", "\n".join(f"{a} {b}" for a, b in pairs))
        for i, (item, cls) in enumerate(pairs):
            z.writestr(item, drawing(10 * i + 1))
            z.writestr(cls, drawing(10 * i + 1))
    meta_file = tmp_path / "omni.pkl"
    assert main(["meta", "fit", f"omniglot:{tmp_path}", "--algorithm", "protonet", "--ways", "2", "--shots", "1",
                 "--query", "1", "--time", "2", "--out", str(meta_file), "-q"]) == 0
    assert main(["meta", "evaluate", str(meta_file), "--omniglot-runs", str(tmp_path / "all_runs.zip")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"official 20-way one-shot runs: error [\d.]+ % \(\d+ of 4 test drawings wrong\)", out), out


def test_meta_fit_on_a_folder_of_tables_each_a_task(tmp_path, capsys):
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    (tmp_path / "sites").mkdir()
    for site in range(4):
        X = rng.normal(size=(60, 3))
        frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=X @ rng.normal(size=3))
        frame.to_csv(tmp_path / "sites" / f"site{site}.csv", index=False)
    meta_file = tmp_path / "sites.pkl"
    assert main(["meta", "fit", str(tmp_path / "sites"), "--target", "y", "--shots", "10", "--time", "2",
                 "--out", str(meta_file), "-q"]) == 0
    assert main(["meta", "evaluate", str(meta_file), str(tmp_path / "sites" / "site0.csv"),
                 str(tmp_path / "sites" / "site1.csv"), "--target", "y", "--shots", "10", "--episodes", "10"]) == 0
    assert "mse" in capsys.readouterr().out
