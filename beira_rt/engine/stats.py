"""Counters and latency figures of a running engine, for the status stream and the final report."""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np

__all__ = ["EngineStats", "HopCounter", "HopSchedule", "LatencyTracker", "RateMeter"]


class HopCounter:
    """Hop boundaries on the model-rate sample count: an update is due when the count reaches one.

    The grid is tied to the samples (every ``hop`` model-rate samples), not to the wall clock:
    the processing thread feeds what the reader brought as soon as it is enough to reach the
    next boundary and calls :meth:`passed` after it; each boundary passed is an update slot,
    one update runs at once on the newest window and the older slots of the same read are
    skipped.

    Parameters
    ----------
    hop : int
        Model-rate samples between updates (>= 1).
    """

    def __init__(self, hop: int) -> None:
        if int(hop) < 1:
            raise ValueError(f"a hop must be at least 1 model-rate sample; got {hop}.")
        self.hop = int(hop)
        self._last = 0  # boundaries passed so far (count // hop)

    @property
    def next_boundary(self) -> int:
        """The model-rate count of the next boundary."""
        return (self._last + 1) * self.hop

    def passed(self, count: int, ready: bool = True) -> int:
        """How many new boundaries ``count`` (model-rate samples so far, never decreasing) passed.

        Boundaries passed while not ``ready`` (no prediction could be published) are passed
        all the same: they are not slots (0 is returned).
        """
        b = int(count) // self.hop
        new = max(0, b - self._last)
        self._last = max(self._last, b)
        return new if ready else 0


class HopSchedule:
    """A fixed grid of slots every ``hop`` seconds; late slots are skipped, never queued.

    When work runs past one or more slots, :meth:`take` reports them as
    missed and moves on to the next slot in the future, and the grid stays
    where it was. The engine's processing thread uses it as its timer (it wakes
    at least once a hop without data, to notice gaps and push the status);
    its updates follow the samples (:class:`HopCounter`).

    Parameters
    ----------
    hop : float
        Seconds between slots.
    start : float
        Time of the first slot (any monotonic clock, seconds).
    """

    def __init__(self, hop: float, start: float) -> None:
        self.hop = float(hop)
        self.next_slot = float(start)

    def wait(self, now: float) -> float:
        """Seconds until the next slot is due (0 when it is due or overdue)."""
        return max(0.0, self.next_slot - now)

    def take(self, now: float) -> int:
        """Claim the due slot at time ``now``; return how many further slots already passed (skipped)."""
        if now < self.next_slot:
            raise RuntimeError(
                f"HopSchedule.take() called {self.next_slot - now:.6f} s before the slot was due."
            )
        missed = int((now - self.next_slot) // self.hop)
        self.next_slot += (missed + 1) * self.hop
        return missed


class LatencyTracker:
    """Latency percentiles: recent (a bounded window) and over the whole run (a histogram).

    The whole-run histogram has log-spaced bins from 10 µs to 1000 s
    (:data:`BINS_PER_DECADE` per decade, i.e. about 1 % resolution), so its
    memory stays fixed however long the engine runs.

    Parameters
    ----------
    recent : int
        Number of most recent values the recent percentiles use.
    """

    BINS_PER_DECADE = 200
    LOW, HIGH = 1e-5, 1e3  # seconds

    def __init__(self, recent: int = 600) -> None:
        self._recent: deque[float] = deque(maxlen=recent)
        n_bins = round(math.log10(self.HIGH / self.LOW) * self.BINS_PER_DECADE)
        self._edges = self.LOW * 10 ** (np.arange(n_bins + 1) / self.BINS_PER_DECADE)
        self._counts = np.zeros(n_bins + 2, dtype=np.int64)  # + underflow, overflow
        self.n = 0

    def add(self, seconds: float) -> None:
        """Record one latency in seconds."""
        self._recent.append(seconds)
        self._counts[int(np.searchsorted(self._edges, seconds, side="right"))] += 1
        self.n += 1

    def recent(self, q: float) -> float:
        """Percentile ``q`` (0-100) of the recent values in seconds (NaN when none)."""
        if not self._recent:
            return math.nan
        return float(np.percentile(np.fromiter(self._recent, float), q))

    def overall(self, q: float) -> float:
        """Percentile ``q`` (0-100) over the whole run in seconds, to the bin's geometric centre."""
        if self.n == 0:
            return math.nan
        target = q / 100.0 * self.n
        idx = int(np.searchsorted(np.cumsum(self._counts), max(target, 1), side="left"))
        if idx == 0:
            return self.LOW
        if idx >= len(self._edges):
            return self.HIGH
        return float(math.sqrt(self._edges[idx - 1] * self._edges[idx]))


class RateMeter:
    """Measured input rate from timestamps and sample counts over the last few seconds.

    Parameters
    ----------
    span : float
        Seconds of history used.
    """

    def __init__(self, span: float = 5.0) -> None:
        self._span = span
        self._hist: deque[tuple[float, int]] = deque(maxlen=4096)

    def add(self, stamp: float, count: int) -> None:
        """Record that ``count`` samples (cumulative) had arrived when the newest had timestamp ``stamp``."""
        self._hist.append((stamp, count))
        while len(self._hist) > 2 and self._hist[-1][0] - self._hist[1][0] >= self._span:
            self._hist.popleft()

    def reset(self) -> None:
        """Forget the history (at a gap: timestamps before and after do not compare)."""
        self._hist.clear()

    @property
    def rate(self) -> float:
        """Samples per second of timestamp time (NaN with too little history)."""
        if len(self._hist) < 2:
            return math.nan
        (t0, c0), (t1, c1) = self._hist[0], self._hist[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else math.nan


class EngineStats:
    """Counters of the processing thread (updated under a lock; read with :meth:`snapshot`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.updates = 0  #: predictions published
        self.ticks = 0  #: update slots: hop boundaries the model-rate count passed
        self.skipped_updates = 0  #: slots superseded by a newer pull before their update ran
        self.wakeups = 0  #: times the processing thread woke (new samples or the timer)
        self.idle_updates = 0  #: wake-ups that found no new sample (the timer: gaps, status)
        self.gaps = 0  #: gaps: samples missing from the input (bridged or, when too long, reset)
        self.missing_samples = 0  #: input samples missing in those gaps
        self.clock_steps = 0  #: steps of the source's clock with no sample missing (nothing reset)
        self.breaks = 0  #: new connections seen by the processing
        self.nan_resets = 0  #: runs of non-finite samples (dropped and bridged)
        self.nan_samples = 0  #: non-finite samples dropped
        self.lost_samples = 0  #: samples lost to a ring-buffer overflow (bridged)
        self.bridged_samples = 0  #: model-rate samples filled in for missing spans
        self.resets: dict[str, int] = {}  #: full resets (filters and window) by cause
        self.bridged_updates = 0  #: predictions published from a window with bridged data (quality < 1)
        self.non_monotonic = 0  #: predictions withheld because their time was not after the last one
        self.samples_processed = 0  #: raw samples through the preprocessing
        self.update_seconds = LatencyTracker()  #: compute time of an update that published
        self.latency = LatencyTracker()  #: push time minus the timestamp of the newest model-rate sample
        self.rate = RateMeter()

    def count_reset(self, why: str) -> None:
        """Count one full reset of the signal path, by cause."""
        self.resets[why] = self.resets.get(why, 0) + 1

    def skip_share(self) -> float:
        """Skipped update slots over all slots that came due (0 when none)."""
        return self.skipped_updates / self.ticks if self.ticks else 0.0
