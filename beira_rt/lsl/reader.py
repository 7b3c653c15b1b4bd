"""One reconnecting LSL reader thread, shared by the engine, the dashboard and the session tools.

A :class:`StreamReader` owns its inlet and its thread. Lifecycle, the same for
every threaded part of beira-rt (reader, :class:`~beira_rt.engine.Engine`,
:class:`~beira_rt.replay.Player`): an optional first step in the caller's thread
whose errors are raised there (here :meth:`~StreamReader.connect`; the player's
``open``), then :meth:`~StreamReader.start`, :meth:`~StreamReader.wait` (until it
ends or a timeout passes) and :meth:`~StreamReader.stop`; or a ``with`` block.

The thread pulls with a short timeout (or polls, for display readers), hands
every chunk to :meth:`~StreamReader.ingest`, and while it has no stream (not
found yet, or lost: :class:`pylsl.util.LostError`) it watches a
:class:`pylsl.ContinuousResolver` every :data:`RESOLVE_INTERVAL` seconds. A
continuous resolver, not repeated one-shot resolves: each one-shot resolve
starts its query wave over, and a short one never reaches an outlet whose port
lies late in liblsl's port range (seen on a busy machine). Each stream it connects to
is first shown to :meth:`~StreamReader.accept`, which may refuse it
(:class:`StreamRefused`: that stream instance is never tried again).

States (:attr:`~StreamReader.state`): ``waiting`` (not found yet), ``connected``,
``stalled`` (connected, no sample for ``stale_seconds``), ``lost`` (was
connected, gone, looking for it again), ``reconnecting`` (opening a returning
stream), ``stopped``.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pylsl
from pylsl.util import LostError
from pylsl.util import TimeoutError as LslTimeoutError

from beira_rt._logging import logger
from beira_rt._signals import StopFlag

from .description import StreamMeta
from .query import StreamQuery, StreamRefused, resolve_stream

__all__ = ["RESOLVE_INTERVAL", "StreamReader"]

#: Seconds between looks at the resolver's results while the stream is missing.
RESOLVE_INTERVAL = 0.1
#: Seconds the resolver keeps listing a stream that stopped answering.
FORGET_AFTER = 2.0
#: Seconds before a stream that did not answer an open is tried again.
RETRY_AFTER = 1.0
#: Seconds to wait for a stream's full description and for its data connection.
OPEN_TIMEOUT = 2.0


class StreamReader:
    """Read one LSL stream in a worker thread, reconnecting after loss.

    Parameters
    ----------
    query : StreamQuery
        The stream to read. A returning stream must match it too.
    role : str
        What the stream is to its reader (``"EEG"``, ``"predictions"``...), for messages.
    processing_flags : int
        liblsl post-processing flags of the inlet (``pylsl.proc_clocksync`` by default).
    max_buflen : float
        Seconds liblsl may buffer for the inlet.
    stale_seconds : float
        A connected stream without a sample for this long is ``stalled`` (and logged once).
    pull_timeout : float
        Longest one pull blocks waiting for a sample (s). The engine pulls with a short
        timeout so that a sample is handed on as soon as it arrives.
    poll_interval : float
        Seconds the thread sleeps after a pull that brought nothing (display readers poll).
    max_chunk : int
        Most samples one pull takes.
    strings : bool
        Pull lists of strings (markers, status) instead of numeric arrays.
    """

    def __init__(
        self,
        query: StreamQuery,
        *,
        role: str = "stream",
        processing_flags: int = pylsl.proc_clocksync,
        max_buflen: float = 10.0,
        stale_seconds: float = 3.0,
        pull_timeout: float = 0.0,
        poll_interval: float = 0.02,
        max_chunk: int = 4096,
        strings: bool = False,
    ) -> None:
        self.query = query
        self.role = role
        self.processing_flags = int(processing_flags)
        self.max_buflen = float(max_buflen)
        self.stale_seconds = float(stale_seconds)
        self.pull_timeout = float(pull_timeout)
        self.poll_interval = float(poll_interval)
        self.max_chunk = int(max_chunk)
        self.strings = strings
        self.meta: StreamMeta | None = None  #: the stream connected now (or last)
        self.first: StreamMeta | None = None  #: the first stream connected
        self.n_received = 0  #: samples handed to :meth:`ingest`
        self.n_connects = 0  #: successful connections (the first included)
        self.n_lost = 0  #: times the stream was lost
        self.n_refused = 0  #: stream instances refused by :meth:`accept`
        self.measured_rate = math.nan  #: samples per second received, over about the last second
        self._rate_clock, self._rate_count = math.nan, 0
        self._inlet: pylsl.StreamInlet | None = None
        self._refused: set[str] = set()
        self._dead: set[str] = set()  # uids lost, skipped while the resolver still lists them
        self._retry: dict[str, float] = {}  # uid -> local_clock() before which it is not tried again
        self._resolver: pylsl.ContinuousResolver | None = None
        self._resolver_pred = ""
        self._state = "waiting"
        self._stalled = False
        self._last_data = math.nan  # local_clock() of the newest sample (or of the connection)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None  #: what ended the thread, if it failed

    # ------------------------------------------------------------------ hooks
    def accept(self, meta: StreamMeta) -> None:
        """Check a stream before it is subscribed; raise :class:`StreamRefused` to refuse it."""

    def on_connect(self, meta: StreamMeta, first: bool) -> None:
        """Called in the reader thread (or in :meth:`connect`) once a stream is subscribed."""

    def ingest(self, data: Any, stamps: np.ndarray, arrival: float) -> None:
        """Take one pulled chunk: ``data`` (n, n_channels) array, or a list of samples of strings.

        ``arrival`` is ``local_clock()`` right after the pull.
        """

    def on_error(self, err: BaseException) -> None:
        """Called in the reader thread with an unexpected exception before the thread ends."""

    # ------------------------------------------------------------------ public, any thread
    @property
    def state(self) -> str:
        """``waiting``, ``connected``, ``stalled``, ``lost``, ``reconnecting`` or ``stopped``."""
        if self._state == "connected" and self.seconds_since_data() > self.stale_seconds:
            return "stalled"
        return self._state

    @property
    def alive(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def seconds_since_data(self) -> float:
        """Seconds since the last sample arrived (or since connecting); inf before any connection."""
        return math.inf if math.isnan(self._last_data) else pylsl.local_clock() - self._last_data

    def connect(self, timeout: float) -> StreamMeta:
        """Resolve, check and subscribe in the caller's thread (before :meth:`start`).

        Raises
        ------
        SourceNotFoundError
            Nothing matches within ``timeout`` (the message lists what was found).
        StreamRefused
            The stream does not fit (from :meth:`accept`).
        pylsl.util.TimeoutError, pylsl.util.LostError
            It did not answer or went away.
        """
        if self._thread is not None or self._inlet is not None:
            raise RuntimeError(f"the {self.role} reader is already connected or running.")
        self._open(resolve_stream(self.query, timeout), timeout)
        assert self.meta is not None
        return self.meta

    def wait_for_data(self, timeout: float, stop: threading.Event | StopFlag | None = None) -> bool:
        """Before :meth:`start`: wait until the inlet has a sample queued; True if one came in time."""
        stop = stop or threading.Event()
        deadline = pylsl.local_clock() + timeout
        while self._inlet is not None and pylsl.local_clock() < deadline:
            if self._inlet.samples_available() > 0:
                return True
            if stop.wait(0.01):
                return False
        return False

    def flush(self) -> int:
        """Drop what the inlet has queued so far (before :meth:`start`); returns how many samples."""
        return int(self._inlet.flush()) if self._inlet is not None and self._thread is None else 0

    def start(self) -> None:
        """Start the thread (once); without :meth:`connect` it waits for the stream."""
        if self._thread is not None:
            raise RuntimeError(f"the {self.role} reader was already started; make a new reader instead.")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"beira-{self.role}-reader", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread ends (a failure or :meth:`stop`) or ``timeout`` passes; True if it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the inlet."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("the %s reader thread did not stop within %.1f s", self.role, timeout)
        elif self._inlet is not None:  # connected but never started
            self._close()
        self._state = "stopped"

    def __enter__(self) -> StreamReader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ connection
    def _open(self, info: pylsl.StreamInfo, timeout: float) -> None:
        inlet = pylsl.StreamInlet(
            info,
            max_buflen=max(1, math.ceil(self.max_buflen)),
            recover=False,  # the reader reconnects itself, so that it can check a returning stream
            processing_flags=self.processing_flags,
        )
        try:
            meta = StreamMeta.from_info(inlet.info(timeout=timeout))
            self.accept(meta)
            inlet.open_stream(timeout=timeout)
        except BaseException:
            inlet.close_stream()
            raise
        first = self.first is None
        self._inlet, self.meta = inlet, meta
        if first:
            self.first = meta
        self._last_data, self._stalled = pylsl.local_clock(), False
        self._rate_clock, self._rate_count = self._last_data, 0
        self.on_connect(meta, first)
        # counted after the hook has built what the new stream needs, so that whoever sees the count
        # also sees the new buffers
        self.n_connects += 1
        self._state = "connected"

    def _close(self) -> None:
        if self._inlet is not None:
            self._inlet.close_stream()
            self._inlet = None

    def _candidates(self) -> list[pylsl.StreamInfo]:
        pred = self.query.predicate()
        if self._resolver is None or pred != self._resolver_pred:  # (the engine narrows its query)
            self._resolver = pylsl.ContinuousResolver(pred=pred, forget_after=FORGET_AFTER)
            self._resolver_pred = pred
        found = [i for i in self._resolver.results() if self.query.matches(i)]
        self._dead &= {i.uid() for i in found}
        now = pylsl.local_clock()
        return [
            i
            for i in found
            if i.uid() not in self._dead
            and i.uid() not in self._refused
            and self._retry.get(i.uid(), 0) <= now
        ]

    def _find(self) -> None:
        """One look while disconnected: open the first matching stream that fits."""
        for info in self._candidates():
            if self._stop.is_set():
                return
            if self._state == "lost":
                self._state = "reconnecting"
            try:
                self._open(info, OPEN_TIMEOUT)
            except StreamRefused as err:
                logger.error("%s The %s stream is refused; still waiting for one that fits.", err, self.role)
                self._refused.add(info.uid())
                self.n_refused += 1
            except (LslTimeoutError, LostError, TimeoutError) as err:
                logger.info(
                    "the %s stream %r did not answer (%s); still waiting", self.role, info.name(), err
                )
                self._retry[info.uid()] = pylsl.local_clock() + RETRY_AFTER
            else:
                verb = "reconnected" if self.n_connects > 1 else "connected"
                logger.info("%s to the %s stream %s", verb, self.role, self.meta.describe())
                return
            finally:
                if self._state == "reconnecting":
                    self._state = "lost"
        self._stop.wait(RESOLVE_INTERVAL)

    def _lost(self) -> None:
        if self.meta is not None:
            self._dead.add(self.meta.uid)
        self._close()
        self.n_lost += 1
        self._state = "lost"
        logger.warning("lost the %s stream; waiting for %s to return", self.role, self.query.describe())

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._inlet is None:
                    self._find()
                    continue
                try:
                    got = self._pull()
                except LostError:
                    self._lost()
                    continue
                if got:
                    if self._stalled:
                        logger.info("samples from the %s stream are flowing again", self.role)
                        self._stalled = False
                else:
                    if not self._stalled and self.seconds_since_data() > self.stale_seconds:
                        logger.warning(
                            "no samples from the %s stream for %.0f s (still connected)",
                            self.role,
                            self.stale_seconds,
                        )
                        self._stalled = True
                    if self.poll_interval > 0:
                        self._stop.wait(self.poll_interval)
        except BaseException as err:
            logger.exception("the %s reader thread failed", self.role)
            self.error = err
            self.on_error(err)
        finally:
            self._close()
            self._resolver = None
            self._state = "stopped"

    def _pull(self) -> int:
        """Pull what is there (up to ``max_chunk`` samples per chunk); returns the number of samples."""
        assert self._inlet is not None
        total = 0
        while True:
            if self.strings:
                data, stamps = self._inlet.pull_chunk(timeout=self.pull_timeout, max_samples=self.max_chunk)
                stamps = np.asarray(stamps, dtype=np.float64)
            else:
                data, stamps = self._inlet.pull_chunk(  # returns at the first sample, not at max_samples
                    timeout=self.pull_timeout, max_samples=self.max_chunk, min_samples=1, as_numpy=True
                )
            n = len(stamps)
            if n == 0:
                break
            arrival = pylsl.local_clock()
            self.ingest(data, np.asarray(stamps, dtype=np.float64), arrival)
            self.n_received += n
            self._last_data = arrival
            total += n
            if n < self.max_chunk or self.pull_timeout > 0:
                break
        self._rate_count += total
        now = pylsl.local_clock()
        if now - self._rate_clock >= 1.0:
            self.measured_rate = self._rate_count / (now - self._rate_clock)
            self._rate_clock, self._rate_count = now, 0
        return total
