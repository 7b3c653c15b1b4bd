"""The acquisition thread: EEG from the inlet into the ring buffer, reconnecting after loss.

The thread pulls with a short timeout (it returns as soon as a sample is
there, and at the latest after :data:`PULL_TIMEOUT` so that a stop request is
seen quickly), keeps only the model channels in model order, and writes them
with their timestamps into the :class:`~beira_rt.engine.ringbuffer.RingBuffer`.

When the source disappears the thread keeps running: it logs that it is
waiting, resolves the stream by name / source id every
:data:`RESOLVE_INTERVAL` seconds, refuses a returning stream whose channel set
or rate differs (with a message, once per stream), and on a good one marks a
discontinuity in the ring buffer and carries on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pylsl
from pylsl.util import LostError
from pylsl.util import TimeoutError as LslTimeoutError

from beira_rt._logging import logger

from .inlet import (
    ChannelMismatchError,
    SourceQuery,
    StreamSpec,
    UnsupportedStreamError,
    close_inlet,
    connect,
)
from .ringbuffer import RingBuffer

__all__ = ["PULL_TIMEOUT", "RESOLVE_INTERVAL", "Acquisition"]

#: Longest a pull blocks when no sample arrives (s).
PULL_TIMEOUT = 0.01
#: Seconds each resolve attempt waits while the source is gone.
RESOLVE_INTERVAL = 0.25
#: Seconds without samples after which a warning is logged (the stream is still connected).
STALL_WARNING = 2.0


class Acquisition:
    """Pulls the EEG stream into a ring buffer in its own thread.

    Parameters
    ----------
    inlet : pylsl.StreamInlet
        A subscribed inlet (from :func:`~beira_rt.engine.inlet.connect`).
    spec : StreamSpec
        The stream it reads; a returning stream must have the same channel set and rate.
    ring : RingBuffer
        Where the model channels go, in model order.
    ch_names : tuple of str
        Model channels.
    processing_flags : tuple of str
        Inlet post-processing flags for reconnections.
    max_buflen : float
        Seconds liblsl may buffer per inlet.
    on_error : callable | None
        Called with an unexpected exception before the thread ends.
    """

    def __init__(
        self,
        inlet: pylsl.StreamInlet,
        spec: StreamSpec,
        ring: RingBuffer,
        ch_names: tuple[str, ...],
        processing_flags: tuple[str, ...],
        max_buflen: float,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._inlet: pylsl.StreamInlet | None = inlet
        self.first = spec
        self.spec = spec
        self._ring = ring
        self._ch_names = ch_names
        self._flags = processing_flags
        self._buflen = max_buflen
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refused: set[str] = set()
        self._max_chunk = max(64, int(spec.sfreq))  # at most 1 s per pull
        self.state = "connected"  #: connected | stalled (no samples for 2 s) | waiting | reconnecting
        self.samples_received = 0  #: samples written to the ring buffer
        self.reconnects = 0  #: successful reconnections
        self.refused = 0  #: returning streams refused (different channels or rate)
        self.losses = 0  #: times the source was lost
        # a returning stream must have the same name and (if it had one) source id
        self._rejoin = SourceQuery(name=spec.name, source_id=spec.source_id or None)

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        """Start the thread."""
        if self._thread is not None:
            raise RuntimeError("Acquisition.start() was called twice; make a new Acquisition instead.")
        self._thread = threading.Thread(target=self._run, name="beira-acquisition", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait for it; the inlet is closed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("the acquisition thread did not stop within %.1f s", timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        try:
            last_data = time.monotonic()
            stalled = False
            while not self._stop.is_set():
                if self._inlet is None:
                    self._try_reconnect()
                    last_data, stalled = time.monotonic(), False
                    continue
                try:
                    data, stamps = self._inlet.pull_chunk(
                        timeout=PULL_TIMEOUT, max_samples=self._max_chunk, min_samples=1, as_numpy=True
                    )
                except LostError:
                    self._lost()
                    continue
                if stamps.size:
                    picked = data[:, self.spec.picks]
                    if self.spec.needs_scaling:  # e.g. a stream in volts: the model works in microvolts
                        picked = picked * self.spec.scale
                    self._ring.write(picked, stamps, pylsl.local_clock())
                    self.samples_received += int(stamps.size)
                    last_data = time.monotonic()
                    if stalled:
                        logger.info("samples from %r are flowing again", self.spec.name)
                        stalled = False
                        self.state = "connected"
                elif not stalled and time.monotonic() - last_data > STALL_WARNING:
                    logger.warning(
                        "no samples from %r for %.0f s (still connected)", self.spec.name, STALL_WARNING
                    )
                    stalled = True
                    self.state = "stalled"
        except BaseException as err:  # reported to the engine, which stops and re-raises it
            logger.exception("the acquisition thread failed")
            if self._on_error is not None:
                self._on_error(err)
        finally:
            close_inlet(self._inlet)
            self._inlet = None

    def _lost(self) -> None:
        close_inlet(self._inlet)
        self._inlet = None
        self.losses += 1
        self.state = "waiting"
        sid = f", source id {self.spec.source_id!r}" if self.spec.source_id else ""
        logger.warning("lost the EEG stream; waiting for stream %r%s to return", self.spec.name, sid)

    def _try_reconnect(self) -> None:
        found = pylsl.resolve_bypred(self._rejoin.predicate(), 1, RESOLVE_INTERVAL)
        for info in found:
            if self._stop.is_set():
                return
            if info.uid() in self._refused or not self._rejoin.matches(info):
                continue
            self.state = "reconnecting"
            try:
                inlet, spec = connect(
                    info, self._ch_names, self._flags, self._buflen, timeout=2.0, first=self.first
                )
            except (ChannelMismatchError, UnsupportedStreamError) as err:
                logger.error(
                    "%s The returning stream is refused; the engine keeps waiting for one that fits.", err
                )
                self._refused.add(info.uid())
                self.refused += 1
                self.state = "waiting"
                continue
            except (LslTimeoutError, LostError) as err:
                logger.info("stream %r did not answer (%s); still waiting", info.name(), err)
                self.state = "waiting"
                continue
            self._ring.mark_break()
            self._inlet, self.spec = inlet, spec
            self.reconnects += 1
            self.state = "connected"
            logger.info("reconnected to %s", spec.describe())
            return
        if not found:
            # resolve_bypred returned early without a match only if it timed out; nothing else to do
            return
        # every match was refused: do not spin on it
        self._stop.wait(RESOLVE_INTERVAL)
