"""Bounded, preallocated ring buffers shared between an LSL reader thread and the GUI.

The reader thread writes chunks; the GUI thread takes copies of the newest
samples. Writes never allocate and never block for longer than a copy; a
buffer never grows: the oldest samples are overwritten.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

__all__ = ["RingBuffer", "Snapshot"]


@dataclass(frozen=True)
class Snapshot:
    """A copy of the newest samples of a stream, oldest first.

    Attributes
    ----------
    stamps : array of shape (n_samples,)
        LSL timestamps in seconds (local clock after clock synchronisation), float64.
    data : array of shape (n_samples, n_channels)
        The samples, float32.
    n_written : int
        Samples written to the buffer since it was created (the newest sample has
        index ``n_written - 1``), to tell whether anything new arrived.
    """

    stamps: np.ndarray
    data: np.ndarray
    n_written: int

    def __len__(self) -> int:
        return int(self.stamps.shape[0])

    def since(self, t_min: float) -> Snapshot:
        """The samples stamped at or after ``t_min`` (s); a view, not a copy."""
        start = int(np.searchsorted(self.stamps, t_min, side="left")) if _is_sorted(self.stamps) else None
        if start is None:
            keep = self.stamps >= t_min
            return Snapshot(self.stamps[keep], self.data[keep], self.n_written)
        return Snapshot(self.stamps[start:], self.data[start:], self.n_written)


def _is_sorted(x: np.ndarray) -> bool:
    return x.size < 2 or bool(np.all(x[1:] >= x[:-1]))


class RingBuffer:
    """A fixed-capacity circular buffer of multichannel samples with timestamps.

    Thread-safe for one writer and any number of readers: :meth:`write` and
    :meth:`snapshot` hold a lock only for the duration of a copy.

    Parameters
    ----------
    capacity : int
        Samples kept; older samples are overwritten. Must be at least 1.
    n_channels : int
        Channels per sample. Must be at least 1.
    """

    def __init__(self, capacity: int, n_channels: int) -> None:
        if int(capacity) < 1:
            raise ValueError(f"A ring buffer needs a capacity of at least 1 sample; got {capacity}.")
        if int(n_channels) < 1:
            raise ValueError(f"A ring buffer needs at least 1 channel; got {n_channels}.")
        self.capacity = int(capacity)
        self.n_channels = int(n_channels)
        self._data = np.zeros((self.capacity, self.n_channels), dtype=np.float32)
        self._stamps = np.zeros(self.capacity, dtype=np.float64)
        self._n_written = 0
        self._lock = threading.Lock()

    @property
    def n_written(self) -> int:
        """Samples written since creation (also those already overwritten)."""
        return self._n_written

    def __len__(self) -> int:
        return min(self._n_written, self.capacity)

    def write(self, data: np.ndarray, stamps: np.ndarray) -> None:
        """Append samples, overwriting the oldest ones when full.

        Parameters
        ----------
        data : array of shape (n_samples, n_channels)
            New samples (any real dtype; stored as float32).
        stamps : array of shape (n_samples,)
            Their timestamps in seconds.
        """
        data = np.asarray(data)
        stamps = np.asarray(stamps, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != self.n_channels or data.shape[0] != stamps.shape[0]:
            raise ValueError(
                f"Expected data of shape (n, {self.n_channels}) with n timestamps; "
                f"got data {data.shape} and {stamps.shape[0]} timestamps."
            )
        n = data.shape[0]
        if n == 0:
            return
        if n > self.capacity:  # only the newest `capacity` samples can be kept
            data, stamps = data[-self.capacity :], stamps[-self.capacity :]
        with self._lock:
            start = (self._n_written + n - data.shape[0]) % self.capacity
            first = min(data.shape[0], self.capacity - start)
            self._data[start : start + first] = data[:first]
            self._stamps[start : start + first] = stamps[:first]
            rest = data.shape[0] - first
            if rest:
                self._data[:rest] = data[first:]
                self._stamps[:rest] = stamps[first:]
            self._n_written += n

    def snapshot(self, n_last: int | None = None, channels: np.ndarray | list[int] | None = None) -> Snapshot:
        """Copy the newest samples in time order.

        Parameters
        ----------
        n_last : int | None
            At most this many of the newest samples; ``None`` = all that are kept.
        channels : sequence of int | None
            Channel indices to copy; ``None`` = all.

        Returns
        -------
        Snapshot
            Copies (the buffer may be overwritten right after).
        """
        with self._lock:
            n_avail = min(self._n_written, self.capacity)
            n = n_avail if n_last is None else max(0, min(int(n_last), n_avail))
            end = self._n_written % self.capacity
            start = (end - n) % self.capacity
            if n == 0:
                idx = np.empty(0, dtype=np.intp)
            elif start < end:
                idx = np.arange(start, end)
            else:
                idx = np.concatenate((np.arange(start, self.capacity), np.arange(0, end)))
            stamps = self._stamps[idx]
            data = self._data[idx] if channels is None else self._data[np.ix_(idx, np.asarray(channels))]
            n_written = self._n_written
        return Snapshot(stamps, data, n_written)
