"""Several processes sharing one Optuna study without Ray (``automl worker``)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import automl
from tests.conftest import ROOT, pmlb_path


def _workers(storage: str, data: str, count: int, trials: int) -> list[subprocess.Popen]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "automl.cli", "worker", data, "--storage", storage, "--study", "shared",
               "--trials", str(trials), "--time", "120", "--learners", "linear", "knn", "-q"]
    return [subprocess.Popen(command + ["--seed", str(i)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
            for i in range(count)]


def _check_shared(storage: str) -> None:
    data = str(pmlb_path("prnn_crabs"))
    processes = _workers(storage, data, count=2, trials=4)
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        assert "worker added 4 trials" in out
    model = automl.fit(data, storage=storage, study_name="shared", n_trials=2, time_budget=None,
                       learners=["linear", "knn"], verbose=0, remember=False)
    board = model.leaderboard()
    assert len(board) == 10  # both workers' trials, and the final fit's own
    assert model.best_score_ == board["score"].max()


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_workers_and_a_final_fit_share_one_study(tmp_path, kind):
    storage = str(tmp_path / ("study.db" if kind == "sqlite" else "study.log"))
    _check_shared(storage)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_workers_share_a_postgresql_study():
    """Started by the test itself; skipped when PostgreSQL or its Python driver is not installed."""
    search = os.pathsep.join([os.environ.get("PATH", ""),
                              *sorted(str(p) for p in Path("/usr/lib/postgresql").glob("*/bin"))])
    found = {b: shutil.which(b, path=search) for b in ("initdb", "pg_ctl")}
    if not all(found.values()):
        pytest.skip("PostgreSQL is not installed (initdb and pg_ctl not found): "
                    "apt install postgresql to run this test")
    pytest.importorskip("psycopg",
                        reason="the PostgreSQL driver is not installed: pip install 'automl-engine[postgres]'")
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
    home = Path(tempfile.mkdtemp(prefix="automl-pg-"))
    if as_user:
        os.chown(home, owner.pw_uid, owner.pw_gid)
    data_dir, port, user = home / "data", _free_port(), "automl"
    subprocess.run(as_user + [found["initdb"], "-D", str(data_dir), "-U", user, "--auth=trust"], check=True,
                   capture_output=True)
    subprocess.run(as_user + [found["pg_ctl"], "-D", str(data_dir), "-o",
                              f"-p {port} -k {home} -c listen_addresses=127.0.0.1",
                              "-l", str(home / "log"), "-w", "start"], check=True, capture_output=True)
    try:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=port, user=user, dbname="postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE automl")
        _check_shared(f"postgresql://{user}@127.0.0.1:{port}/automl")
    finally:
        subprocess.run(as_user + [found["pg_ctl"], "-D", str(data_dir), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
