"""beira_rt/_signals.py: SIGINT / SIGTERM set a flag that is waited for by polling (no lock in the handler)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from beira_rt._signals import POLL_S, StopFlag, stop_on_signals


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_sets_the_flag_calls_back_and_the_handlers_come_back(sig):
    before = signal.getsignal(sig)
    calls = []
    with stop_on_signals(lambda: calls.append(1)) as stop:
        assert not stop.is_set() and stop.signal_name is None
        threading.Timer(0.2, os.kill, (os.getpid(), sig)).start()
        t0 = time.monotonic()
        assert stop.wait(10.0)
        waited = time.monotonic() - t0
        os.kill(os.getpid(), signal.SIGINT)  # a second signal: called back again, the first name kept
        assert stop.wait(1.0)
    assert 0.15 < waited < 0.2 + 10 * POLL_S + 1.0
    assert stop.signal_name == sig.name
    assert calls == [1, 1]
    assert signal.getsignal(sig) is before


def test_the_flag_waits_its_timeout_and_is_set_from_another_thread():
    flag = StopFlag()
    t0 = time.monotonic()
    assert flag.wait(0.1) is False
    assert 0.1 <= time.monotonic() - t0 < 0.1 + 10 * POLL_S
    threading.Timer(0.1, flag.set).start()
    assert flag.wait() is True and flag.is_set()
    assert flag.signal_name is None
