"""Real LSL sources and consumers for the engine tests (no mocks: pylsl outlets and inlets on loopback)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import numpy as np
import pylsl

from tests._lsl_source import labelled_info


def eeg_outlet(
    name: str,
    source_id: str,
    labels: list[str],
    sfreq: float,
    stype: str = "EEG",
    units: list[str | None] | None = None,
) -> pylsl.StreamOutlet:
    """A float64 EEG outlet whose description carries the channel labels and units (default microvolts)."""
    info = labelled_info(name, stype, labels, sfreq, "double64", source_id, units)
    return pylsl.StreamOutlet(info, max_buffered=60)


@contextlib.contextmanager
def eeg_stream(name: str, source_id: str, labels: list[str], sfreq: float) -> Iterator[pylsl.StreamOutlet]:
    """:func:`eeg_outlet` for the length of a ``with`` block (a failing test's traceback does not keep it)."""
    outlet = eeg_outlet(name, source_id, labels, sfreq)
    try:
        yield outlet
    finally:
        del outlet


class RecordingSource:
    """Push a recording through a real outlet at real-time pace, with exact timestamps.

    Sample ``i`` is stamped ``t0 + i / sfreq`` (``t0`` is set just before the
    first push, after a consumer connected). Chunks are pushed with the
    timestamp of their last sample; liblsl back-dates the others at the
    nominal rate.

    Parameters
    ----------
    data : ndarray, shape (n_samples, n_channels)
        The recording, in stream channel order.
    offsets : ndarray, shape (n_samples,) | None
        Timestamps relative to ``t0`` (default ``i / sfreq``); when given,
        every sample is pushed with its own timestamp (gaps can be made).
    go : threading.Event | None
        When given, pushing starts only once it is set (after a consumer connected).
    """

    def __init__(
        self,
        data: np.ndarray,
        sfreq: float,
        name: str,
        source_id: str,
        labels: list[str],
        chunk_size: int = 10,
        wait_consumer: float = 20.0,
        linger: float = 0.3,
        offsets: np.ndarray | None = None,
        go: threading.Event | None = None,
    ) -> None:
        self.data = data
        self.sfreq = sfreq
        self.name, self.source_id, self.labels = name, source_id, labels
        self.chunk_size = chunk_size
        self.wait_consumer = wait_consumer
        self.linger = linger
        self.offsets = offsets
        self.go = go
        self.created_at: float | None = None  # local_clock() when the outlet was made
        self.t0: float | None = None  # stamp of sample 0
        self.started = threading.Event()  # set when t0 is known
        self.finished_at: float | None = None  # local_clock() after the last push
        self.stop = threading.Event()

    def run(self) -> int:
        self.created_at = pylsl.local_clock()
        outlet = eeg_outlet(self.name, self.source_id, self.labels, self.sfreq)
        try:
            if not outlet.wait_for_consumers(self.wait_consumer):
                raise RuntimeError(f"no consumer connected to {self.name!r} within {self.wait_consumer} s")
            if self.go is not None and not self.go.wait(self.wait_consumer):
                raise RuntimeError(f"source {self.name!r} was never told to go")
            time.sleep(0.05)
            period = 1.0 / self.sfreq
            self.t0 = pylsl.local_clock()
            self.started.set()
            n = self.data.shape[0]
            rel = self.offsets if self.offsets is not None else np.arange(n) * period
            pushed = 0
            while pushed < n and not self.stop.is_set():
                end = min(pushed + self.chunk_size, n)
                due = self.t0 + rel[end - 1]
                delay = due - pylsl.local_clock()
                if delay > 0:
                    time.sleep(delay)
                chunk = np.ascontiguousarray(self.data[pushed:end])
                if self.offsets is None:
                    outlet.push_chunk(chunk, timestamp=due)
                else:
                    outlet.push_chunk(chunk, timestamp=list(self.t0 + rel[pushed:end]))
                pushed = end
            self.finished_at = pylsl.local_clock()
            time.sleep(self.linger)  # let the last chunk leave before the outlet goes
            return pushed
        finally:
            del outlet


class Consumer:
    """Collect every sample of a stream in a thread (an external pylsl client).

    ``arrivals`` holds ``pylsl.local_clock()`` when each sample was pulled.
    """

    def __init__(self, name: str, stype: str | None = None, timeout: float = 20.0) -> None:
        pred = f"name='{name}'" + (f" and type='{stype}'" if stype else "")
        found = pylsl.resolve_bypred(pred, 1, timeout)
        if not found:
            raise RuntimeError(f"stream {name!r} not found within {timeout} s")
        self.inlet = pylsl.StreamInlet(found[0], max_buflen=60, recover=False)
        self.info = self.inlet.info(timeout=timeout)
        self.inlet.open_stream(timeout=timeout)
        self.values: list = []
        self.stamps: list[float] = []
        self.arrivals: list[float] = []
        self.lost = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        from pylsl.util import LostError

        try:
            while not self.stop.is_set():
                try:
                    data, ts = self.inlet.pull_chunk(timeout=0.01, max_samples=256, min_samples=1)
                except LostError:
                    self.lost.set()
                    return
                if ts:
                    now = pylsl.local_clock()
                    self.values.extend(data)
                    self.stamps.extend(ts)
                    self.arrivals.extend([now] * len(ts))
        finally:
            self.inlet.close_stream()
