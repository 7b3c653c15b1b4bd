"""Counters and push-lag statistics of a replay, updated by the streaming thread, read by anyone."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

__all__ = ["PushLog", "ReplayStats"]

#: Push lags kept for the percentiles (the most recent ones).
LAG_HISTORY = 2**16


@dataclass(frozen=True)
class ReplayStats:
    """What a replay has done so far.

    Attributes
    ----------
    samples_pushed, chunks_pushed, markers_pushed, truth_pushed : int
        Counts since the start (across loops).
    loops : int
        Completed passes through the replayed segment.
    stream_seconds : float
        Seconds of recording pushed (``samples_pushed / sfreq``).
    elapsed : float
        LSL-clock seconds from ``t0`` (stamp of the first sample) to the last push.
    lag_p50, lag_p99, lag_max, lag_last : float
        Seconds between the stamp of a chunk's last sample and ``local_clock()`` when the chunk
        was pushed (never negative: nothing is stamped ahead of the clock), over the last
        65536 chunks for the percentiles. ``lag_last`` is the drift of the stream at its end:
        time stamps come from the sample count, so lags do not accumulate.
    """

    samples_pushed: int
    chunks_pushed: int
    markers_pushed: int
    truth_pushed: int
    loops: int
    stream_seconds: float
    elapsed: float
    lag_p50: float
    lag_p99: float
    lag_max: float
    lag_last: float

    def summary(self) -> str:
        """One paragraph for a person."""
        return (
            f"pushed {self.samples_pushed} samples ({self.stream_seconds:.2f} s of recording) in "
            f"{self.chunks_pushed} chunks over {self.elapsed:.2f} s, {self.loops} complete pass(es), "
            f"{self.markers_pushed} markers, {self.truth_pushed} truth samples; push lag behind the "
            f"time stamps: median {self.lag_p50 * 1e3:.3f} ms, p99 {self.lag_p99 * 1e3:.3f} ms, "
            f"max {self.lag_max * 1e3:.3f} ms, at the end {self.lag_last * 1e3:.3f} ms"
        )


class PushLog:
    """Thread-safe counters and a bounded history of push lags (preallocated)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lags = np.zeros(LAG_HISTORY)
        self._n_lags = 0
        self._lag_max = 0.0
        self._lag_last = 0.0
        self._last_push: float | None = None
        self._counts = {"samples": 0, "chunks": 0, "markers": 0, "truth": 0, "loops": 0}

    def chunk(self, pushed_at: float, lag: float, n: int, n_markers: int, n_truth: int) -> None:
        """Record one pushed EEG chunk of ``n`` samples (and the markers / truth rows sent with it)."""
        with self._lock:
            self._last_push = pushed_at
            self._lags[self._n_lags % LAG_HISTORY] = lag
            self._n_lags += 1
            self._lag_max = max(self._lag_max, lag)
            self._lag_last = lag
            c = self._counts
            c["samples"] += n
            c["chunks"] += 1
            c["markers"] += n_markers
            c["truth"] += n_truth

    def recent_lags(self, n: int | None = None) -> np.ndarray:
        """The push lags (s) of the last ``n`` chunks (all kept when None), oldest first."""
        with self._lock:
            kept = min(self._n_lags, LAG_HISTORY)
            n = kept if n is None else min(n, kept)
            end = self._n_lags % LAG_HISTORY
            idx = (np.arange(end - n, end)) % LAG_HISTORY
            return self._lags[idx].copy()

    def loop_done(self) -> int:
        """Count one complete pass; returns the number of passes so far."""
        with self._lock:
            self._counts["loops"] += 1
            return self._counts["loops"]

    def snapshot(self, sfreq: float, t0: float | None) -> ReplayStats:
        """A consistent :class:`ReplayStats` (``sfreq`` of the file, ``t0`` the first stamp)."""
        with self._lock:
            c = dict(self._counts)
            lags = self._lags[: min(self._n_lags, LAG_HISTORY)].copy()
            lag_max, lag_last, last_push = self._lag_max, self._lag_last, self._last_push
        p50, p99 = np.percentile(lags, [50, 99]) if lags.size else (0.0, 0.0)
        return ReplayStats(
            samples_pushed=c["samples"],
            chunks_pushed=c["chunks"],
            markers_pushed=c["markers"],
            truth_pushed=c["truth"],
            loops=c["loops"],
            stream_seconds=c["samples"] / sfreq,
            elapsed=0.0 if t0 is None or last_push is None else last_push - t0,
            lag_p50=float(p50),
            lag_p99=float(p99),
            lag_max=lag_max,
            lag_last=lag_last,
        )
