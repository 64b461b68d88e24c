"""Ctrl-C during a search, noticed wherever it lands.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread happens
to be. When that is a weak-reference callback or a ``__del__`` run by the
garbage collector, the exception is printed ("Exception ignored in ...") and
lost: the search would run on as if the key had never been pressed. So while
a search or a meta-training run goes on, Ctrl-C only marks the request, which
its loop reads at every turn (a fraction of a second) and answers by stopping
with what it has finished kept. A second Ctrl-C raises at once, for a user who
will not wait.

>>> with CtrlC() as ctrl_c:
...     ctrl_c.pressed
False
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any


class CtrlC:
    """While entered (on the main thread; elsewhere signals cannot be caught and nothing changes), SIGINT sets
    ``pressed`` instead of raising; the handler before it comes back on exit."""

    def __init__(self) -> None:
        self.pressed = False
        self._previous: Any = None

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` here, at a point the search handles it, if Ctrl-C was pressed."""
        if self.pressed:
            raise KeyboardInterrupt

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True
