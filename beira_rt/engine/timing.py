"""Timestamps of the input: gap detection and a gap-aware de-jitter.

liblsl's own de-jitter (``proc_dejitter``) fits one recursive least-squares
line over the whole life of an inlet with a 90 s half-life: a gap in the
input is smoothed away (a 1 s jump shows up as a few milliseconds spread over
the following minute). The engine therefore asks liblsl only for clock
synchronisation, detects gaps on the received timestamps, and de-jitters
each gap-free segment itself with :class:`Dejitterer`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Dejitterer", "find_gaps"]


def find_gaps(stamps: np.ndarray, previous: float | None, period: float, gap_factor: float) -> np.ndarray:
    """Positions where the timestamps jump by more than ``gap_factor`` sample periods.

    A step backwards by more than ``gap_factor`` periods (a clock jump) counts too.

    Parameters
    ----------
    stamps : ndarray, shape (n_samples,)
        Timestamps in seconds.
    previous : float | None
        Timestamp of the sample before ``stamps[0]``; ``None`` when there is none.
    period : float
        Nominal sample period in seconds.
    gap_factor : float
        Threshold in sample periods.

    Returns
    -------
    ndarray of int
        Positions ``i`` such that there is a gap between sample ``i - 1`` and
        sample ``i`` (0 refers to ``previous``), ascending.
    """
    stamps = np.asarray(stamps, dtype=np.float64)
    if stamps.size == 0:
        return np.empty(0, dtype=np.intp)
    if previous is None:
        steps = np.diff(stamps)
        offset = 1
    else:
        steps = np.diff(stamps, prepend=previous)
        offset = 0
    limit = gap_factor * period
    return np.flatnonzero((steps > limit) | (steps < -limit)) + offset


class Dejitterer:
    """Exponentially weighted straight-line fit of timestamps against sample index.

    Within one gap-free segment the timestamps of a regularly sampled stream
    lie on a line ``t = a + b * k`` (``k`` the sample index, ``b`` the true
    period). The fit forgets old samples with a half-life of ``halftime``
    seconds and pulls the slope towards the nominal period while few samples
    have been seen. Call :meth:`reset` at every gap.

    Parameters
    ----------
    sfreq : float
        Nominal sampling rate in Hz.
    halftime : float
        Half-life of the exponential forgetting in seconds.
    """

    def __init__(self, sfreq: float, halftime: float = 30.0) -> None:
        self.period = 1.0 / float(sfreq)
        self._lam = 0.5 ** (1.0 / (float(sfreq) * float(halftime)))
        # prior weight on the nominal slope, in sample-index units squared (about 1 s of samples)
        self._rho = float(sfreq) ** 2
        self.reset()

    def reset(self) -> None:
        """Forget the segment (call at a gap)."""
        self._n = 0  # samples seen in this segment
        self._t0 = 0.0  # timestamp baseline of the segment
        # weighted sums about the newest index c = n - 1: sum w, w*u, w*u^2, w*t, w*u*t (u = k - c)
        self._s0 = self._s1 = self._s2 = self._t = self._tu = 0.0

    @property
    def n_seen(self) -> int:
        """Samples seen since the last reset."""
        return self._n

    def process(self, stamps: np.ndarray) -> np.ndarray:
        """Include a chunk of received timestamps and return them de-jittered.

        Parameters
        ----------
        stamps : ndarray, shape (n_samples,)
            Received timestamps (seconds), consecutive samples of one segment.

        Returns
        -------
        ndarray, shape (n_samples,)
            The fitted timestamps of these samples (after including them in the fit).
        """
        stamps = np.asarray(stamps, dtype=np.float64)
        m = stamps.size
        if m == 0:
            return stamps.copy()
        if self._n == 0:
            self._t0 = float(stamps[0])
        t = stamps - self._t0
        # shift the sums from the old newest index to the new one (u -> u - m) and decay them
        d = float(m)
        s0, s1, s2, st, stu = self._s0, self._s1, self._s2, self._t, self._tu
        s2 = s2 - 2 * d * s1 + d * d * s0
        s1 = s1 - d * s0
        stu = stu - d * st
        decay = self._lam**m
        s0, s1, s2, st, stu = (x * decay for x in (s0, s1, s2, st, stu))
        # the chunk's own contribution, u = -(m-1) .. 0
        u = np.arange(-(m - 1), 1, dtype=np.float64)
        w = self._lam ** (-u)
        s0 += w.sum()
        s1 += (w * u).sum()
        s2 += (w * u * u).sum()
        st += (w * t).sum()
        stu += (w * u * t).sum()
        self._s0, self._s1, self._s2, self._t, self._tu = s0, s1, s2, st, stu
        self._n += m
        b0 = self.period
        slope = (s0 * stu - s1 * st + self._rho * s0 * b0) / (s0 * s2 - s1 * s1 + self._rho * s0)
        intercept = (st - slope * s1) / s0  # fitted time of the newest sample (u = 0)
        return self._t0 + intercept + slope * u
