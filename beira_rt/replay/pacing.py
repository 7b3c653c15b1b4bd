"""What every replay player shares: the lifecycle and drift-free pacing on the LSL clock.

Lifecycle (the same words as the rest of beira-rt): ``open`` (the outlets, in the caller's
thread, so consumers can connect first), ``start`` (a background thread) or ``run`` (the
calling thread), ``wait``, ``stop`` (closes and re-raises an error of the streaming thread),
``close`` (the same without raising), ``request_stop`` (safe from signal handlers); or a
``with`` block. A subclass provides ``open``, ``_prepare(duration)`` (what its streaming
loop needs), ``_stream(plan)`` and ``stats``; its loop waits with :meth:`_sleep_until`, which
computes nothing incrementally: each due time comes from the start, so nothing drifts.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from beira_rt._logging import logger
from beira_rt._signals import POLL_S
from beira_rt.replay.recording import ReplayError

__all__ = ["PacedPlayer"]


class PacedPlayer:
    """Base of :class:`~beira_rt.replay.Player` and :class:`~beira_rt.replay.xdf.XdfPlayer`."""

    name: str
    _outlets: dict[str, Any]

    def _init_pacing(self) -> None:
        self._stop_event = threading.Event()
        self._stop_requested = False  # request_stop's flag: a signal handler must not take a lock
        self._thread: threading.Thread | None = None
        self._started = False
        self._finished = threading.Event()
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ to provide
    def open(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, duration: float | None) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _stream(self, plan: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def stats(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ control
    def start(self, duration: float | None = None):
        """Stream in a background thread; returns at once.

        Parameters
        ----------
        duration : float | None
            Seconds of recording to stream (``duration / speed`` seconds of wall time); ``None``
            streams to the end (or forever, for a looping player).
        """
        plan = self._begin(duration)
        self._thread = threading.Thread(target=self._run_safely, args=(plan,), name=f"replay-{self.name}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def run(self, duration: float | None = None):
        """Stream in the calling thread until the end, ``duration``, or :meth:`request_stop`.

        The outlets stay open afterwards (consumers may still be reading); :meth:`stop` closes them.
        """
        self._run_safely(self._begin(duration))
        self._raise_error()
        return self.stats

    def request_stop(self) -> None:
        """Ask the streaming loop to end after the current push; safe from signal handlers.

        It only sets a flag (``Event.set`` from a handler can deadlock, see
        :mod:`beira_rt._signals`); the loop looks at it at least every :data:`POLL_S` s.
        """
        self._stop_requested = True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background stream to finish; re-raises its error. True when it finished."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        self._raise_error()
        return self._finished.is_set()

    def stop(self):
        """Stop streaming, close the outlets and re-raise any error of the streaming thread."""
        self.close()
        self._raise_error()
        return self.stats

    def close(self) -> None:
        """Stop streaming and close the outlets without raising (see :attr:`error`)."""
        self._stop_event.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._outlets.clear()  # pylsl destroys an outlet with its last reference

    @property
    def running(self) -> bool:
        """True while samples are being streamed."""
        return self._started and not self._finished.is_set()

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the streaming loop, if any."""
        return self._error

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ streaming
    def _begin(self, duration: float | None) -> Any:
        if self._started:
            raise ReplayError(
                f"this player has already streamed; create a new {type(self).__name__} to replay again."
            )
        if duration is not None and not (math.isfinite(duration) and duration > 0):
            raise ReplayError(f"duration must be a positive number of seconds, got {duration!r}.")
        self.open()
        self._started = True
        return self._prepare(duration)

    def _run_safely(self, plan: Any) -> None:
        try:
            self._stream(plan)
        except BaseException as err:  # kept, logged, and re-raised by stop() / wait() / run()
            self._error = err
            logger.error("replay %r stopped by an error: %r", self.name, err)
        finally:
            self._finished.set()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _sleep_until(self, due: float) -> bool:
        """Sleep until ``local_clock() >= due``; False when a stop was requested meanwhile."""
        import pylsl

        while True:
            delay = due - pylsl.local_clock()
            if delay <= 0:
                return not self._stopping()
            if self._stop_event.wait(min(delay, POLL_S)) or self._stop_requested:
                return False

    def _stopping(self) -> bool:
        """A stop was asked for, by :meth:`close` or by :meth:`request_stop`."""
        return self._stop_requested or self._stop_event.is_set()
