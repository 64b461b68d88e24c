"""A Ctrl-C during a search is never lost, even when it lands in code run by the garbage collector."""

from __future__ import annotations

import os
import signal

import pytest

from automl.search.interrupts import CtrlC


class PressesCtrlCWhenCollected:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)


def test_a_ctrl_c_that_lands_in_a_finalizer_is_still_seen_by_the_search():
    before = signal.getsignal(signal.SIGINT)
    with CtrlC() as ctrl_c:
        dropped = PressesCtrlCWhenCollected()
        del dropped  # its finalizer runs now: a KeyboardInterrupt raised there would be printed and lost
        assert ctrl_c.pressed
        with pytest.raises(KeyboardInterrupt):
            ctrl_c.check()  # where the search loop looks, and stops with its trials kept
    assert signal.getsignal(signal.SIGINT) is before


def test_a_second_ctrl_c_stops_at_once():
    with CtrlC(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
