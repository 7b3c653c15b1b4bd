"""A preallocated, bounded ring of samples, their timestamps and arrival times.

One writer (a :class:`~beira_rt.lsl.reader.StreamReader` thread) appends chunks.
Readers take either

- everything written since the previous :meth:`SampleRing.read` (one consuming
  reader: the engine's processing thread), with overflows and breaks reported;
  :meth:`SampleRing.wait` blocks that reader until the next write (the engine's
  updates are driven by the data, not by a timer); or
- a copy of the newest samples, :meth:`SampleRing.snapshot` (any number of
  readers: the dashboard's GUI thread), which consumes nothing.

Samples and timestamps live side by side in preallocated arrays; a write copies
the chunk into place (at most two slice copies, never a roll). A lock guards
every update and every read; nothing allocates on the writer's side.

When the writer overtakes data the consuming reader has not read yet, the
oldest unread samples are lost: this is counted (``overflows``,
``lost_samples``) and the next read reports it, so that the reader can treat it
as a discontinuity. The writer can also mark a discontinuity of its own (a new
connection) with :meth:`SampleRing.mark_break`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Block", "SampleRing", "Snapshot"]


@dataclass(frozen=True)
class Block:
    """The samples one read returned.

    Attributes
    ----------
    data : ndarray, shape (n_samples, n_channels)
        The samples, oldest first (a copy the reader owns).
    stamps : ndarray, shape (n_samples,)
        Their timestamps in seconds (LSL clock).
    start : int
        Absolute index of ``data[0]`` (samples written since the buffer was made).
    breaks : tuple of int
        Positions ``i`` in this block where the writer marked a new
        connection between ``data[i - 1]`` and ``data[i]`` (position 0
        means "before this block"). Lost samples are not a break: the
        timestamps show them (``lost`` counts them).
    lost : int
        Samples lost to overflow just before this block (0 when none).
    arrivals : ndarray, shape (n_samples,) | None
        Receiver clock (``local_clock()``, s) when each sample was pulled from the inlet;
        None when the writer did not give them.
    """

    data: np.ndarray
    stamps: np.ndarray
    start: int
    breaks: tuple[int, ...] = field(default=())
    lost: int = 0
    arrivals: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.stamps.shape[0])

    @property
    def n_pulls(self) -> int:
        """How many writes (pulls of the writer) the samples came in: the arrival time changes."""
        if len(self) == 0:
            return 0
        if self.arrivals is None:
            return 1
        return 1 + int(np.count_nonzero(np.diff(self.arrivals)))


@dataclass(frozen=True)
class Snapshot:
    """A copy of the newest samples of a stream, oldest first.

    Attributes
    ----------
    stamps : ndarray, shape (n_samples,)
        LSL timestamps in seconds, float64.
    data : ndarray, shape (n_samples, n_channels)
        The samples, in the ring's dtype.
    n_written : int
        Samples written to the ring since it was made (the newest sample has
        index ``n_written - 1``), to tell whether anything new arrived.
    """

    stamps: np.ndarray
    data: np.ndarray
    n_written: int

    def __len__(self) -> int:
        return int(self.stamps.shape[0])

    def since(self, t_min: float) -> Snapshot:
        """The samples stamped at or after ``t_min`` (s); a view, not a copy."""
        if self.stamps.size < 2 or bool(np.all(self.stamps[1:] >= self.stamps[:-1])):
            start = int(np.searchsorted(self.stamps, t_min, side="left"))
            return Snapshot(self.stamps[start:], self.data[start:], self.n_written)
        keep = self.stamps >= t_min
        return Snapshot(self.stamps[keep], self.data[keep], self.n_written)


class SampleRing:
    """Bounded ring of multichannel samples with timestamps: one writer, readers as above.

    Parameters
    ----------
    capacity : int
        Samples kept (e.g. ``buffer_seconds * sfreq``); older ones are overwritten.
    n_channels : int
        Channels per sample.
    dtype : numpy dtype
        Sample type (float64 by default; the dashboard keeps float32).
    """

    def __init__(self, capacity: int, n_channels: int, dtype: np.dtype | type = np.float64) -> None:
        if int(capacity) < 1:
            raise ValueError(f"a sample ring needs a capacity of at least 1 sample; got {capacity}.")
        if int(n_channels) < 1:
            raise ValueError(f"a sample ring needs at least 1 channel; got {n_channels}.")
        self.n_channels = int(n_channels)
        self.capacity = int(capacity)
        self._data = np.zeros((self.capacity, self.n_channels), dtype=dtype)
        self._stamps = np.zeros(self.capacity, dtype=np.float64)
        self._arrivals = np.full(self.capacity, np.nan)
        self._lock = threading.Lock()
        self._written = 0  # absolute count of samples written
        self._read = 0  # absolute index of the next sample to read
        self._breaks: deque[int] = deque(maxlen=1024)  # absolute indices, bounded
        self._new = threading.Event()  # set by every write (and break): wakes a waiting reader
        self._notified = False  # notify() called since the last wait
        self._want = 1  # unread samples the waiting reader needs before a write wakes it
        self.overflows = 0  #: reads that found lost samples
        self.lost_samples = 0  #: samples overwritten before they were read

    # ------------------------------------------------------------------ writer
    def write(self, data: np.ndarray, stamps: np.ndarray, arrival: float = np.nan) -> None:
        """Append a chunk.

        Parameters
        ----------
        data : ndarray, shape (n_samples, n_channels)
            Samples, oldest first.
        stamps : ndarray, shape (n_samples,)
            Their timestamps in seconds.
        arrival : float
            Receiver clock when the chunk was pulled (s); NaN when unknown.
        """
        data = np.asarray(data)
        stamps = np.asarray(stamps, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != self.n_channels or stamps.shape != (data.shape[0],):
            raise ValueError(
                f"a chunk must be an array of shape (n_samples, {self.n_channels}) with one timestamp per "
                f"sample; got data {data.shape} and stamps {stamps.shape}."
            )
        n = data.shape[0]
        if n == 0:
            return
        with self._lock:
            skip = max(0, n - self.capacity)  # a chunk longer than the buffer keeps its newest part
            self._copy_in(data[skip:], stamps[skip:], self._written + skip, float(arrival))
            self._written += n
            wake = self._written - self._read >= self._want
        if wake:  # only when the waiting reader has what it asked for: it sleeps through the rest
            self._new.set()

    def mark_break(self) -> None:
        """Mark a discontinuity before the next sample written (e.g. a new connection)."""
        with self._lock:
            self._breaks.append(self._written)
        self._new.set()

    def notify(self) -> None:
        """Wake a reader blocked in :meth:`wait` (e.g. to stop it), whatever it waits for."""
        self._notified = True
        self._new.set()

    def wait(self, timeout: float | None = None, min_new: int = 1) -> bool:
        """Block until ``min_new`` samples are unread (or a :meth:`notify`), or ``timeout`` passes.

        For the one consuming reader: call it, then :meth:`read`. Returns True when the samples
        are there or on a notification, False on the timeout. ``min_new`` lets a reader that
        knows how many samples its next step needs sleep through the writes before them (a
        source that pushes one sample at a time would otherwise wake it for every sample).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                self._new.clear()  # before the check: a write after it wakes the wait below
                if self._notified:
                    self._notified = False
                    return True
                with self._lock:
                    if self._written - self._read >= min_new:
                        return True
                    self._want = max(1, int(min_new))
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._new.wait(remaining)
        finally:
            self._want = 1

    def _copy_in(self, data: np.ndarray, stamps: np.ndarray, at: int, arrival: float) -> None:
        n = data.shape[0]
        pos = at % self.capacity
        first = min(n, self.capacity - pos)
        self._data[pos : pos + first] = data[:first]
        self._stamps[pos : pos + first] = stamps[:first]
        self._arrivals[pos : pos + first] = arrival
        if first < n:
            self._data[: n - first] = data[first:]
            self._stamps[: n - first] = stamps[first:]
            self._arrivals[: n - first] = arrival

    # ------------------------------------------------------------------ reader
    @property
    def available(self) -> int:
        """Samples written and not read yet (may exceed the capacity before an overflow is read)."""
        with self._lock:
            return self._written - self._read

    @property
    def n_written(self) -> int:
        """Samples written since the ring was made (also those already overwritten)."""
        with self._lock:
            return self._written

    def __len__(self) -> int:
        """Samples held (at most the capacity)."""
        with self._lock:
            return min(self._written, self.capacity)

    def snapshot(self, n_last: int | None = None, channels: np.ndarray | list[int] | None = None) -> Snapshot:
        """Copy the newest samples in time order, consuming nothing.

        Parameters
        ----------
        n_last : int | None
            At most this many of the newest samples; ``None`` = all that are held.
        channels : sequence of int | None
            Channel indices to copy; ``None`` = all.
        """
        with self._lock:
            held = min(self._written, self.capacity)
            n = held if n_last is None else max(0, min(int(n_last), held))
            idx = (self._written - n + np.arange(n)) % self.capacity
            stamps = self._stamps[idx]
            data = self._data[idx] if channels is None else self._data[np.ix_(idx, np.asarray(channels))]
            return Snapshot(stamps, data, self._written)

    def read(self) -> Block:
        """Take every sample written since the last read.

        Returns
        -------
        Block
            The new samples (possibly none), with discontinuities and lost
            samples reported.
        """
        with self._lock:
            lost = 0
            if self._written - self._read > self.capacity:
                lost = self._written - self._read - self.capacity
                self._read = self._written - self.capacity
                self.overflows += 1
                self.lost_samples += lost
            start, stop = self._read, self._written
            n = stop - start
            data = np.empty((n, self.n_channels), dtype=self._data.dtype)
            stamps = np.empty(n, dtype=np.float64)
            arrivals = np.empty(n, dtype=np.float64)
            pos = start % self.capacity
            first = min(n, self.capacity - pos)
            data[:first] = self._data[pos : pos + first]
            stamps[:first] = self._stamps[pos : pos + first]
            arrivals[:first] = self._arrivals[pos : pos + first]
            if first < n:
                data[first:] = self._data[: n - first]
                stamps[first:] = self._stamps[: n - first]
                arrivals[first:] = self._arrivals[: n - first]
            breaks = sorted({b - start for b in self._breaks if start <= b < stop})
            while self._breaks and self._breaks[0] < stop:
                self._breaks.popleft()
            self._read = stop
        if n and np.isnan(arrivals).any():
            arrivals = None
        return Block(
            data=data, stamps=stamps, start=start, breaks=tuple(breaks), lost=lost, arrivals=arrivals
        )
