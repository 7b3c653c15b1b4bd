"""Stopping on SIGINT / SIGTERM without deadlocking.

A Python signal handler runs in the main thread between two bytecodes, possibly while that
thread is inside ``threading.Event.wait``: just after its wait timed out, the event's
(non-reentrant) condition lock is held again, and a handler that calls ``Event.set`` then
waits for that lock forever. The process hangs on the very signal that was meant to stop it
(seen as a replay that ignored SIGINT once in a few hundred runs). So a handler here only
assigns attributes; :class:`StopFlag` is waited for by polling it in short sleeps.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["POLL_S", "StopFlag", "stop_on_signals"]

#: Longest sleep between two looks at a :class:`StopFlag`; a stop is noticed within it.
POLL_S = 0.02


class StopFlag:
    """A stop request that a signal handler (or any thread) may set; ``threading.Event``-like.

    ``set`` only assigns attributes, so it is safe inside a signal handler; ``wait`` polls
    in sleeps of at most :data:`POLL_S`.
    """

    def __init__(self) -> None:
        self._set = False
        #: The name of the first signal that set the flag (``"SIGINT"``), or None.
        self.signal_name: str | None = None

    def set(self) -> None:
        """Request the stop."""
        self._set = True

    def is_set(self) -> bool:
        """True once a stop was requested."""
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s (forever when None) for the stop; True when it was requested."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self._set:
            if end is None:
                time.sleep(POLL_S)
                continue
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(POLL_S, left))
        return True


@contextmanager
def stop_on_signals(on_stop: Callable[[], None] | None = None) -> Iterator[StopFlag]:
    """SIGINT and SIGTERM set the yielded :class:`StopFlag` for the ``with`` block.

    Parameters
    ----------
    on_stop : callable | None
        Also called by the handler, once per signal; it must be signal-safe as well (assign
        attributes; no locks, no ``Event.set``, no I/O).

    The previous handlers are restored at the end of the block. Only the main thread can
    install handlers (a :class:`ValueError` from :func:`signal.signal` otherwise).
    """
    flag = StopFlag()

    def handler(signum: int, _frame: object) -> None:
        if flag.signal_name is None:
            flag.signal_name = signal.Signals(signum).name
        flag.set()
        if on_stop is not None:
            on_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
