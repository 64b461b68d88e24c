"""A real PostgreSQL server for tests, started from Debian's server programs in a temporary folder.

The server listens on a loopback address of its own (127.0.0.2; nothing leaves
the machine), asks for a password (so that tests see a URL with a secret in
it, as a team's would be), runs as the ``postgres`` user when the tests run as
root (the server refuses root), and is stopped and deleted at the end.
``.ci/run`` installs the programs where they are missing, so these tests never
skip in CI; elsewhere a missing server fails with what to install.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

HOST = "127.0.0.2"
USER = "automl"


def _programs() -> dict[str, str]:
    search = os.pathsep.join([*sorted(str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")),
                              os.environ.get("PATH", "")])
    found = {name: shutil.which(name, path=search) for name in ("initdb", "pg_ctl")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise RuntimeError(f"PostgreSQL's server programs {missing} are not installed; these tests need them: "
                           "apt install postgresql (.ci/run does)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class PostgresServer:
    """A running server: :meth:`new_database` gives each test a database of its own."""

    def __init__(self, port: int, password: str):
        self.port, self.password = port, password

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@{HOST}:{self.port}/{database}"

    def new_database(self, name: str) -> str:
        """Create the database ``name`` (empty) and return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a server for the length of the block."""
    programs = _programs()
    as_user: list[str] = []
    home = Path(tempfile.mkdtemp(prefix="automl-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(home, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_hex(8)
    (home / "password").write_text(password)
    if as_user:
        os.chown(home / "password", owner.pw_uid, owner.pw_gid)
    data, port = home / "data", _free_port()
    try:
        subprocess.run(as_user + [programs["initdb"], "-D", str(data), "-U", USER, "--auth=scram-sha-256",
                                  f"--pwfile={home / 'password'}"], check=True, capture_output=True)
        subprocess.run(as_user + [programs["pg_ctl"], "-D", str(data), "-l", str(home / "log"), "-w", "start", "-o",
                                  f"-p {port} -k {home} -c listen_addresses={HOST} -c max_connections=200 "
                                  "-c fsync=off"], check=True, capture_output=True)
        yield PostgresServer(port, password)
    finally:
        subprocess.run(as_user + [programs["pg_ctl"], "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
