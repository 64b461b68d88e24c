"""Replaying recorded OpenML server responses through the real openml client.

Requests made by the ``openml`` package (through ``requests``) are answered
from files in ``tests/fixtures/openml``, named after the URL path: the API call
``/api/v1/xml/task/990001`` is ``task_990001.xml``; a file download
``/data/v1/download/990201/blobs.arff`` is ``download_990201_blobs.arff``.
A request with no recording fails like an unreachable server, naming the file
it looked for.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import requests

FIXTURES = Path(__file__).parent / "fixtures" / "openml"
API_PREFIX = "/api/v1/xml/"


def recording_name(url: str) -> str:
    path = urlparse(url).path
    if API_PREFIX in path:
        return re.sub(r"[/,]", "_", path.split(API_PREFIX, 1)[1]) + ".xml"
    return re.sub(r"[/,]", "_", path.split("/data/v1/", 1)[-1].lstrip("/"))


@contextmanager
def replay_openml(monkeypatch, cache_dir: Path, fixtures: Path = FIXTURES):
    import openml

    requested: list[str] = []

    def get(self, url, params=None, headers=None, **kwargs):
        name = recording_name(url)
        requested.append(name)
        path = fixtures / name
        if not path.exists():
            raise requests.exceptions.ConnectionError(f"no recorded OpenML response {name} for {url}")
        response = requests.Response()
        response.status_code = 200
        response._content = path.read_bytes()
        response.url = url
        response.encoding = "utf-8"
        response.headers["Content-Encoding"] = "gzip"  # as the server sends it; requests already inflated it
        return response

    monkeypatch.setattr(requests.Session, "get", get)
    monkeypatch.setattr(openml.config, "connection_n_retries", 1)
    monkeypatch.setattr(openml.config, "server", "https://www.openml.org/api/v1/xml")
    openml.config.set_root_cache_directory(str(cache_dir))
    yield requested
