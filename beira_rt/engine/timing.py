"""Input timestamps as noisy observations of a regular clock: de-jitter, gaps and clock steps.

Amplifier LSL apps stamp each chunk with ``local_clock()`` when they push it:
the stamps of a regular 1 kHz stream jitter by milliseconds and now and then
step backwards, and the source's clock may be off the nominal rate by up to
0.1 %. The samples themselves are regular. :class:`StreamClock` therefore
counts samples and fits a straight line ``t = a + b * k`` of the received
stamps against the sample count ``k`` (exponentially forgetting, slope
pulled towards the nominal period while few samples were seen). A stamp
that lies within ``tolerance`` of the line is jitter, whatever its step
from the previous stamp. A stamp further off is an *anomaly*, decided only
once samples from a later pull of the inlet confirm or refute it:

- refuted (the later samples are back on the line): the anomalous samples
  were stamped late or early (an outlier); they are kept, timed by their count;
- confirmed ahead of the line (``r > tolerance``): either samples are
  missing - a **gap** of ``round(r * sfreq)`` samples, the count jumps over
  them - or the source's clock jumped forward with no sample lost - a
  **clock step**. A jump shows in the arrival times: the stamps ran ahead of
  the receiver's clock (latency ``arrival - stamp`` fell below anything seen
  recently by more than half the step), which missing samples cannot cause;
- confirmed behind the line (``r < -tolerance``): more samples than the
  elapsed time allows, so nothing is missing; the source's clock stepped back
  (a **clock step**).

A clock step changes an offset between the source's stamps and the fitted
line; the line (and so every time the engine publishes) stays continuous and
monotonic. liblsl's own ``proc_dejitter`` is not used: it smooths a gap away
over a minute instead of reporting it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_TOLERANCE", "ClockEvent", "StreamClock"]

#: Default gap tolerance in seconds (``live.gap_tolerance_ms``): see the README, "Connect a real amplifier".
DEFAULT_TOLERANCE = 0.05
#: Seconds of samples an anomaly must last (and reach a later pull) to be a gap or a clock step.
CONFIRM = 0.2
#: An anomaly not confirmed or refuted by a later pull within this many seconds is decided alone.
DECIDE_AFTER = 0.25
#: Seconds of arrival history for the latency floor (the forward clock-step test).
LATENCY_MEMORY = 10.0
#: Seconds of samples after a clock step used to measure the new offset (the line is not fitted then).
REFINE = 2.0
#: A step between stamps within this many seconds of the nominal period continues a chunk.
EXACT = 1e-7
#: Longest run of stamps on the nominal grid before its newest sample is taken as an observation (s).
MAX_RUN = 1.0
#: Smallest step between returned times, in sample periods (times never go back).
MIN_STEP = 1e-3


@dataclass(frozen=True)
class ClockEvent:
    """Something the timestamps say happened before sample ``at`` of the decided samples.

    Attributes
    ----------
    kind : str
        ``"gap"`` (samples missing) or ``"step"`` (the source's clock stepped; nothing missing).
    at : int
        Index, among the samples returned by the same call, of the first sample after the event.
    missing : int
        Samples missing (gaps only; 0 for a step).
    seconds : float
        Size of the event: how far the stamps were off the line (s, signed).
    """

    kind: str
    at: int
    missing: int
    seconds: float


class StreamClock:
    """Sample clock of one input stream.

    Parameters
    ----------
    sfreq : float
        Nominal sampling rate in Hz.
    tolerance : float
        Seconds a stamp may lie off the fitted line and still count as jitter.
    halftime : float
        Half-life of the line fit's forgetting, in seconds of samples.

    Notes
    -----
    Call :meth:`push` with each block of received samples' stamps (and the
    time each was pulled); it returns the times of the samples it could decide
    (possibly fewer than pushed: an anomaly waits for a later pull) and the
    events among them. :meth:`decide_pending` forces a decision on samples held
    longer than :data:`DECIDE_AFTER` (the source went quiet after them).
    """

    def __init__(self, sfreq: float, tolerance: float = DEFAULT_TOLERANCE, halftime: float = 30.0) -> None:
        if not tolerance > 0:
            raise ValueError(f"the gap tolerance must be > 0 s, got {tolerance!r}.")
        self.sfreq = float(sfreq)
        self.period = 1.0 / self.sfreq
        self.tolerance = float(tolerance)
        self._lam = 0.5 ** (1.0 / (self.sfreq * float(halftime)))
        self._rho = self.sfreq**2  # prior weight on the nominal slope (about 1 s of samples)
        self._confirm = max(2, round(CONFIRM * self.sfreq))
        self._max_run = max(1, round(MAX_RUN * self.sfreq))
        self.gaps = 0  #: gaps detected
        self.steps = 0  #: clock steps detected
        self.outliers = 0  #: runs of samples stamped off the line, refuted by later samples
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget everything (a new stream, or a reset of the engine's state)."""
        self._n = 0  # samples in the fit since the reset
        self._k = 0  # count index of the next sample (missing samples included)
        self._c = -1  # count index the sums are centred on
        self._t0 = math.nan  # stamp baseline
        self._s0 = self._s1 = self._s2 = self._t = self._tu = 0.0
        self.offset = 0.0  #: accumulated clock steps (source stamp minus line), seconds
        self._lat: deque[tuple[float, float]] = deque(maxlen=4096)  # (arrival, latency)
        self._pending_stamps = np.empty(0)
        self._pending_arrivals = np.empty(0)
        self._pull = 0  # counter standing in for arrival times when none are given
        self._last_out = -math.inf  # newest time returned
        self._refine_until, self._refine_n = -1, 0  # offset refinement after a clock step
        self._tentative: tuple[int, float, float] | None = None  # last sample fitted, maybe mid-chunk
        self._last_obs = self._prev_obs = -1  # count index of the newest observation (and the one before)

    @property
    def n_pending(self) -> int:
        """Samples pushed but not decided yet."""
        return int(self._pending_stamps.size)

    @property
    def count(self) -> int:
        """Count index of the next decided sample (missing samples included)."""
        return self._k

    @property
    def started(self) -> bool:
        """Whether the line has been anchored (a sample decided since the reset)."""
        return self._n > 0

    # ------------------------------------------------------------------ line
    def _slope_intercept(self) -> tuple[float, float]:
        s0, s1, s2, st, stu = self._s0, self._s1, self._s2, self._t, self._tu
        b0 = self.period
        slope = (s0 * stu - s1 * st + self._rho * s0 * b0) / (s0 * s2 - s1 * s1 + self._rho * s0)
        return slope, (st - slope * s1) / s0

    @property
    def rate(self) -> float:
        """The source's actual sampling rate as fitted (Hz; NaN before the first sample)."""
        if not self.started:
            return math.nan
        return 1.0 / self._slope_intercept()[0]

    def time_at(self, k: float | np.ndarray) -> float | np.ndarray:
        """Fitted time (s) of count index ``k`` (fractional indices allowed)."""
        if not self.started:
            raise RuntimeError("StreamClock.time_at() was called before any sample was decided.")
        slope, intercept = self._slope_intercept()
        return self._t0 + intercept + slope * (np.asarray(k, dtype=np.float64) - self._c)

    def _fit(self, k: np.ndarray, t: np.ndarray, m: np.ndarray) -> None:
        """Include observations ``t`` (stamps minus offset) at count indices ``k`` (ascending).

        ``m`` weighs each observation by the samples it stands for: only the newest sample of
        each pull is an observation, because liblsl back-dates the other samples of a chunk
        at the *nominal* rate, which would pull the fitted slope towards it.
        """
        if k.size == 0:
            return
        if self._n == 0:
            self._t0 = float(t[0])
            self._c = int(k[-1])
        d = float(k[-1] - self._c)
        s0, s1, s2, st, stu = self._s0, self._s1, self._s2, self._t, self._tu
        s2 = s2 - 2 * d * s1 + d * d * s0
        s1 = s1 - d * s0
        stu = stu - d * st
        decay = self._lam**d
        s0, s1, s2, st, stu = (x * decay for x in (s0, s1, s2, st, stu))
        u = (k - k[-1]).astype(np.float64)
        w = self._lam ** (-u) * m
        tt = t - self._t0
        self._s0 = s0 + w.sum()
        self._s1 = s1 + (w * u).sum()
        self._s2 = s2 + (w * u * u).sum()
        self._t = st + (w * tt).sum()
        self._tu = stu + (w * u * tt).sum()
        self._c = int(k[-1])
        self._n += int(m.sum())

    # ------------------------------------------------------------------ input
    def push(
        self, stamps: np.ndarray, arrivals: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[ClockEvent]]:
        """Add received samples and decide what can be decided.

        Parameters
        ----------
        stamps : ndarray, shape (n_samples,)
            Received LSL timestamps (s), in order of arrival.
        arrivals : ndarray, shape (n_samples,) | None
            Receiver clock (``local_clock()``) when each sample was pulled. Without
            them each call counts as one pull and forward clock steps cannot be told
            from gaps (every one is a gap).

        Returns
        -------
        times : ndarray, shape (n_decided,)
            Fitted times of the decided samples, oldest first. The decided samples
            are the oldest ``n_decided`` of all pushed and not yet decided; the
            rest wait (:attr:`n_pending`).
        events : list of ClockEvent
            Gaps and clock steps among them (``at`` indexes ``times``).
        """
        stamps = np.asarray(stamps, dtype=np.float64)
        if arrivals is None:
            self._pull += 1
            arrivals = np.full(stamps.shape, math.nan)
            pulls = np.full(stamps.shape, float(self._pull))
        else:
            pulls = np.asarray(arrivals, dtype=np.float64)
        self._pending_stamps = np.concatenate([self._pending_stamps, stamps])
        self._pending_arrivals = np.concatenate([self._pending_arrivals, pulls])
        self._have_arrivals = not np.isnan(arrivals).any() if arrivals.size else True
        return self._decide(force=False)

    def decide_pending(self, now: float) -> tuple[np.ndarray, list[ClockEvent]]:
        """Decide samples held for longer than :data:`DECIDE_AFTER` (receiver time ``now``; inf: all)."""
        if not self.n_pending:
            return np.empty(0), []
        if math.isfinite(now) and (not self._have_arrivals or now - self._pending_arrivals[0] < DECIDE_AFTER):
            return np.empty(0), []  # (``now = inf``: decide whatever is held, e.g. before a reset)
        return self._decide(force=True)

    def _decide(self, force: bool) -> tuple[np.ndarray, list[ClockEvent]]:
        times: list[np.ndarray] = []
        events: list[ClockEvent] = []
        done = 0
        while self._pending_stamps.size:
            st, ar = self._pending_stamps, self._pending_arrivals
            if not self.started:
                self._accept(st.size, fit=True, times=times)
                done += st.size
                continue
            k = self._k + np.arange(st.size)
            r = (st - self.offset) - self.time_at(k)
            bad = np.flatnonzero(np.abs(r) > self.tolerance)
            if bad.size == 0:
                self._accept(st.size, fit=True, times=times)
                done += st.size
                continue
            i0 = int(bad[0])
            if i0:
                self._accept(i0, fit=True, times=times)
                done += i0
                continue
            r0 = float(r[0])
            back = np.abs(r) <= self.tolerance  # on the line again
            other = (np.abs(r - r0) > self.tolerance) & ~back  # off the line, but elsewhere
            stop = np.flatnonzero(back | other)
            e = int(stop[0]) if stop.size else st.size
            if e < self._confirm or (e < st.size and not force and ar[e] <= ar[0]):
                if e < st.size:  # the anomaly did not last: those samples were stamped off the line
                    if back[e]:
                        self.outliers += 1
                    self._accept(e, fit=False, times=times)
                    done += e
                    continue
            if e >= self._confirm and ar[e - 1] > ar[0]:
                span = r[:e]  # lasted long enough, and into a later pull: confirmed
            elif force:
                span = r[:e]  # the source went quiet: decide on what there is
            else:
                break  # wait for more samples
            events.append(self._event(float(np.median(span)), st[0], ar[0], done))
            force = False  # one forced decision per call; the rest is judged against the new line
        out = np.concatenate(times) if times else np.empty(0)
        return out, events

    def _event(self, r0: float, stamp: float, arrival: float, at: int) -> ClockEvent:
        latency = arrival - (stamp - self.offset)
        if r0 < 0 or (self._have_arrivals and self._latency_floor(arrival) - latency > r0 / 2):
            self.offset += r0
            self.steps += 1
            self._refine_until, self._refine_n = self._k + round(REFINE * self.sfreq), 0
            return ClockEvent("step", at, 0, r0)
        missing = max(1, round(r0 * self.sfreq))
        self._k += missing
        self._last_obs = -1  # the missing samples are not observed
        self.gaps += 1
        return ClockEvent("gap", at, missing, r0)

    def _latency_floor(self, now: float) -> float:
        """Lowest latency of the last :data:`LATENCY_MEMORY` seconds of data received before ``now``.

        Measured back from the newest data, not from ``now``: after an outage longer than the
        memory, the floor is still that of the data before it (an empty history would make every
        gap look like a clock step).
        """
        while self._lat and self._lat[-1][0] - self._lat[0][0] > LATENCY_MEMORY:
            self._lat.popleft()
        return min((lat for _, lat in self._lat), default=-math.inf)

    def _observe(self, k: np.ndarray, st: np.ndarray) -> None:
        """Fit the stamps that are observations: the last sample of each chunk the source pushed.

        liblsl stamps the other samples of a chunk by counting back from its stamp at the *nominal*
        rate, so they repeat that stamp and would pull the fitted slope towards the nominal rate.
        A chunk ends where the step to the next stamp is not exactly the nominal period. The last
        sample given is fitted at once, tentatively: when the next samples continue its chunk, it
        is taken out again. A run longer than :data:`MAX_RUN` seconds (a source that stamps every
        sample on the nominal grid) is observed at that interval.
        """
        t = st - self.offset
        if self._tentative is not None:  # did the last sample of the previous call end its chunk?
            k0, t0, m0 = self._tentative
            continues = abs(t[0] - t0 - (k[0] - k0) * self.period) <= EXACT
            if continues and k0 - self._prev_obs < self._max_run:
                self._unfit(k0, t0, m0)
                self._last_obs = self._prev_obs
            self._tentative = None
        ends = np.flatnonzero(np.abs(np.diff(t) - self.period) > EXACT)  # last samples of whole chunks
        obs, last = [], self._last_obs
        for e in ends.tolist():
            obs.append(e)
            last = int(k[e])
        if not obs or obs[-1] != k.size - 1:
            obs.append(k.size - 1)
        o = np.array(obs)
        weights = np.maximum(np.diff(k[o], prepend=self._last_obs if self._last_obs >= 0 else k[0] - 1), 1)
        self._prev_obs = last
        self._fit(k[o], t[o], weights.astype(np.float64))
        self._last_obs = int(k[-1])
        self._tentative = (int(k[-1]), float(t[-1]), float(weights[-1]))

    def _unfit(self, k0: int, t0: float, m0: float) -> None:
        """Take one observation back out of the fit (its weight decayed as the fit moved on)."""
        u = float(k0 - self._c)
        w = m0 * self._lam ** (-u)
        tt = t0 - self._t0
        self._s0 -= w
        self._s1 -= w * u
        self._s2 -= w * u * u
        self._t -= w * tt
        self._tu -= w * u * tt
        self._n -= int(m0)

    def _accept(self, n: int, fit: bool, times: list[np.ndarray]) -> None:
        st = self._pending_stamps[:n]
        ar = self._pending_arrivals[:n]
        k = self._k + np.arange(n)
        if fit and n and k[-1] < self._refine_until:
            # after a clock step: measure the new offset on the samples that follow (not the line)
            r = float(np.mean((st - self.offset) - self.time_at(k)))
            self._refine_n += 1
            self.offset += r / self._refine_n if self._refine_n > 1 else r
            fit = False
        if fit and n:
            self._observe(k, st)
            if self._have_arrivals:
                self._lat.append((float(ar[-1]), float(ar[-1] - (st[-1] - self.offset))))
        elif n:
            # interrupted: whatever the tentative sample was, it stays in the fit; and the next
            # observation stands for its own chunk only, not for the samples left out here
            self._tentative, self._last_obs = None, -1
        t = np.asarray(self.time_at(k), dtype=np.float64)
        if n and math.isfinite(self._last_out):  # the line moved back a little: never return earlier times
            t = np.maximum(t, self._last_out + MIN_STEP * self.period * np.arange(1, n + 1))
        if n:
            self._last_out = float(t[-1])
        times.append(t)
        self._k += n
        self._pending_stamps = self._pending_stamps[n:]
        self._pending_arrivals = self._pending_arrivals[n:]
