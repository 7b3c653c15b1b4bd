"""The dashboard's LSL readers: the shared :class:`~beira_rt.lsl.StreamReader`, kept for display.

A :class:`DisplayReader` keeps the newest ``buffer_seconds`` of a numeric stream
in a float32 :class:`~beira_rt.lsl.SampleRing` (a new one when a returning
stream has another shape), counts gaps and measures the arrival rate; the GUI
only takes snapshots and reads counters. :class:`StatusReader` keeps the
engine's newest status message and a short history. Both poll their inlet
(the GUI draws at a frame rate; there is no hurry within a frame).

States are those of :class:`~beira_rt.lsl.StreamReader`: ``waiting`` (never
found yet), ``connected``, ``stalled``, ``lost`` (resolving again), ``stopped``.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from typing import Any

import numpy as np
import pylsl

from beira_rt._logging import logger
from beira_rt.lsl import SampleRing, Snapshot, StreamMeta, StreamQuery, StreamReader, StreamRefused

__all__ = ["DisplayReader", "StatusReader"]

#: Capacity of the buffer of a stream with an irregular rate.
IRREGULAR_CAPACITY = 4096


class DisplayReader(StreamReader):
    """Read one numeric LSL stream in a worker thread into a bounded ring for display.

    Parameters
    ----------
    role : str
        What the stream is to the dashboard (``"eeg"``, ``"predictions"``...), for messages.
    query : StreamQuery
        The stream to look for.
    buffer_seconds : float
        Seconds of samples kept (the ring holds this times the nominal rate;
        :data:`IRREGULAR_CAPACITY` samples for an irregular stream).
    stale_seconds : float
        A connected stream without a sample for this long is ``stalled``.
    dejitter : bool
        Smooth the timestamps (regular streams such as EEG); clock synchronisation is always on.
    poll_interval : float
        Seconds the thread sleeps when the inlet had nothing new.
    """

    def __init__(
        self, role: str, query: StreamQuery, buffer_seconds: float, *,
        stale_seconds: float = 3.0, dejitter: bool = False, poll_interval: float = 0.02,
    ) -> None:  # fmt: skip
        if buffer_seconds <= 0:
            raise ValueError(f"buffer_seconds must be positive; got {buffer_seconds}.")
        super().__init__(
            query,
            role=role,
            processing_flags=pylsl.proc_clocksync | (pylsl.proc_dejitter if dejitter else 0),
            max_buflen=max(10.0, buffer_seconds),
            stale_seconds=stale_seconds,
            poll_interval=poll_interval,
        )
        self.buffer_seconds = float(buffer_seconds)
        self.buffer: SampleRing | None = None
        self.n_gaps = 0
        self._sfreq = math.nan
        self._last_stamp = math.nan

    def snapshot(self, seconds: float | None = None, channels: list[int] | None = None) -> Snapshot | None:
        """Copy the newest samples (about ``seconds`` of them at the nominal rate); None before any connection."""
        buf, meta = self.buffer, self.meta
        if buf is None or meta is None or buf.n_channels != meta.n_channels:
            return None  # never, or just now reconnected to a stream of another shape
        if channels is not None and max(channels, default=-1) >= buf.n_channels:
            return None
        n_last = None
        if seconds is not None and meta.sfreq > 0:
            n_last = math.ceil(seconds * meta.sfreq * 1.05) + 2
        return buf.snapshot(n_last, channels)

    def accept(self, meta: StreamMeta) -> None:
        if meta.is_string:
            raise StreamRefused(
                f"The {self.role} stream {meta.name!r} carries strings; the dashboard expects numbers there. "
                "Pass the name of the right stream."
            )

    def on_connect(self, meta: StreamMeta, first: bool) -> None:
        """Keep the ring across reconnections of the same shape; else make a new one."""
        old = self.buffer
        if old is None or old.n_channels != meta.n_channels or self._sfreq != meta.sfreq:
            cap = math.ceil(self.buffer_seconds * meta.sfreq) + 1 if meta.sfreq > 0 else IRREGULAR_CAPACITY
            self.buffer = SampleRing(cap, meta.n_channels, dtype=np.float32)
        self._sfreq = meta.sfreq
        self._last_stamp = math.nan

    def ingest(self, data: Any, stamps: np.ndarray, arrival: float) -> None:
        assert self.buffer is not None and self.meta is not None
        if self.meta.sfreq > 0:
            steps = np.diff(np.concatenate(([self._last_stamp], stamps)))
            self.n_gaps += int(np.sum(steps > 2.0 / self.meta.sfreq))
        self._last_stamp = float(stamps[-1])
        self.buffer.write(data, stamps)


class StatusReader(StreamReader):
    """Read the engine's status stream (JSON strings, see docs/CONTRACTS.md).

    Keeps the newest message and a bounded history of the last messages.
    """

    def __init__(self, query: StreamQuery, *, stale_seconds: float = 3.0, history: int = 64) -> None:
        super().__init__(query, role="status", stale_seconds=stale_seconds, max_chunk=256, strings=True)
        self.latest: dict[str, Any] | None = None
        self.history: deque[tuple[float, dict[str, Any]]] = deque(maxlen=history)
        self.n_bad = 0
        self._lock = threading.Lock()

    def messages(self) -> list[tuple[float, dict[str, Any]]]:
        """A copy of the recent (timestamp, message) pairs, oldest first."""
        with self._lock:
            return list(self.history)

    def accept(self, meta: StreamMeta) -> None:
        if not meta.is_string:
            raise StreamRefused(
                f"The status stream {meta.name!r} carries numbers; the engine's status stream carries JSON "
                "strings. Pass the name of the right stream."
            )

    def on_connect(self, meta: StreamMeta, first: bool) -> None:
        with self._lock:
            self.latest = None  # a message of an earlier connection says nothing about this one

    def ingest(self, data: Any, stamps: np.ndarray, arrival: float) -> None:
        for sample, stamp in zip(data, stamps, strict=True):
            self._parse(sample[0] if sample else "", float(stamp))

    def _parse(self, text: str, stamp: float) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            self.n_bad += 1
            if self.n_bad == 1:
                logger.warning("the status stream sent a message that is not a JSON object: %.80r", text)
            return
        with self._lock:
            self.latest = message
            self.history.append((stamp, message))
