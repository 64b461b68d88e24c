"""Where a knowledge base lives: an SQLite file (a path) or a PostgreSQL server (a URL), and how to name it safely.

A team shares one base on a database server; one user keeps one in a file.
Both are written as the user types them (``kb=``, ``--kb``, ``$AUTOML_KB``):

>>> database_url("~/kb.sqlite") is None
True
>>> database_url("postgresql://team:secret@db.example:5432/automl")
'postgresql+psycopg://team:secret@db.example:5432/automl'
>>> mask_secrets("could not reach postgresql://team:secret@db.example:5432/automl")
'could not reach postgresql://team:***@db.example:5432/automl'
"""

from __future__ import annotations

import re
from pathlib import Path

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
DRIVER = "postgresql+psycopg"  # psycopg 3, the driver the `postgres` extra installs

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]+)(?P<tail>@)")
SQLITE_URL = re.compile(r"^sqlite:///(?P<path>.+)$")


class LocationError(ValueError):
    """A knowledge-base location that names no store automl can use; the message says what would."""


def database_url(location: str | Path) -> str | None:
    """The SQLAlchemy URL of a database server named by ``location``, or None for a file path.

    ``postgres://`` and ``postgresql://`` mean PostgreSQL through psycopg 3. An ``sqlite:///PATH`` URL is the file
    ``PATH`` (None here). Any other scheme is refused with the schemes that work.
    """
    if isinstance(location, Path):
        return None
    match = _URL.match(location.strip())
    if match is None or SQLITE_URL.match(location.strip()):
        return None
    if match["scheme"].lower() not in POSTGRES_SCHEMES:
        raise LocationError(
            f"a knowledge base at {mask_secrets(location)!r} is not supported: give a file path (SQLite) or "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    return with_driver(location)


def with_driver(url: str) -> str:
    """``url`` with PostgreSQL's schemes naming the driver automl installs (psycopg 3); other URLs as they are.

    >>> with_driver("postgres://team@db/automl")
    'postgresql+psycopg://team@db/automl'
    """
    match = _URL.match(url.strip())
    if match is None or match["scheme"].lower() not in POSTGRES_SCHEMES:
        return url
    return DRIVER + url.strip()[match.end("scheme"):]


def file_path(location: str | Path) -> Path:
    """The file of an SQLite base named by a path or an ``sqlite:///PATH`` URL."""
    match = SQLITE_URL.match(str(location).strip()) if isinstance(location, str) else None
    return Path(match["path"] if match else location).expanduser()


def mask_secrets(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***`` (for logs, errors, reports, files)."""
    return _PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", str(text))

