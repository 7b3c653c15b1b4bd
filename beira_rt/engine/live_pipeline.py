"""Raw EEG blocks in, the model-rate window, its timestamp and its quality out: the engine's signal path.

:class:`LivePipeline` takes each block read from the ring buffer and

1. times it with a :class:`~beira_rt.engine.timing.StreamClock`: jitter and
   backward steps of the stamps change nothing; missing samples (a *gap*:
   fewer samples than the de-jittered elapsed time implies, beyond the
   tolerance) and clock steps are reported as events;
2. treats non-finite samples as missing (dropped, never filtered);
3. repairs flat and railed channels (:class:`~beira_rt.engine.channels.ChannelMonitor`);
4. runs every good raw sample through the stateful
   :class:`~beira_rt.preprocessing.CausalPreprocessor`, normalises the
   model-rate output and appends it to the device-resident
   :class:`~beira_rt.engine.device_window.DeviceWindow`;
5. **bridges** a missing span (a gap, a NaN run, an outage with or without
   a reconnection) of up to ``max_bridge`` seconds when the data return: the
   missing model-rate samples are filled (``bridge``: ``repeat`` the newest
   real samples before the span, or ``zeros`` = the training mean), the
   filters restart at steady state on the first returning sample, and the
   window goes on. Publishing resumes ``resume`` seconds after the return;
   :attr:`quality` says which share of the window is real data. A longer
   outage (or ``bridge: reset``) resets everything and waits for a whole
   new window, as at the start.

The timestamp of the newest model-rate sample (the parity contract of
docs/CONTRACTS.md) is the fitted clock time of its input position.
"""

from __future__ import annotations

import itertools
import math
from collections import deque

import numpy as np

from beira_rt._logging import logger
from beira_rt.lsl import Block

from .channels import ChannelMonitor
from .device_window import DeviceWindow
from .stats import EngineStats
from .timing import DEFAULT_TOLERANCE, ClockEvent, StreamClock

__all__ = ["BRIDGES", "LivePipeline"]

#: How a missing span is filled (see the module docstring).
BRIDGES = ("repeat", "zeros", "reset")


class LivePipeline:
    """Stateful signal path from raw samples to the model window.

    Parameters
    ----------
    preprocessor : CausalPreprocessor
        Made for the stream's rate (``bundle.make_preprocessor(sfreq_in)``).
    normalizer : Normalizer
        The bundle's per-channel z-scoring.
    window : DeviceWindow
        The model-rate window (``W`` samples on the inference device).
    sfreq_in : float
        Nominal input rate in Hz.
    sfreq : float
        Model rate in Hz.
    stats : EngineStats
        Where the counters go.
    tolerance : float
        Gap tolerance in seconds (:class:`~beira_rt.engine.timing.StreamClock`).
    dejitter : bool
        Stamp model-rate samples with the fitted clock (True) or by interpolating
        the received stamps (False).
    bridge : str
        One of :data:`BRIDGES`.
    max_bridge : float
        Longest missing span (s) that is bridged; a longer one resets.
    resume : float
        Seconds of returning data before predictions resume after a bridged span.
    monitor : ChannelMonitor | None
        Flat / railed channel detection and repair (None: off).
    """

    def __init__(
        self,
        preprocessor,
        normalizer,
        window: DeviceWindow,
        sfreq_in: float,
        sfreq: float,
        stats: EngineStats,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        dejitter: bool = True,
        bridge: str = "repeat",
        max_bridge: float = 15.0,
        resume: float = 0.5,
        monitor: ChannelMonitor | None = None,
    ) -> None:
        if bridge not in BRIDGES:
            raise ValueError(f"bridge must be one of {', '.join(BRIDGES)}; got {bridge!r}.")
        self._pre = preprocessor
        self._norm = normalizer
        self.window = window
        self.sfreq_in = float(sfreq_in)
        self.sfreq = float(sfreq)
        self._ratio = self.sfreq_in / self.sfreq
        self.clock = StreamClock(self.sfreq_in, tolerance)
        self._dejitter = bool(dejitter)
        self._bridge = bridge
        self._max_bridge = float(max_bridge)
        self._resume = max(0, round(float(resume) * self.sfreq))
        self.monitor = monitor
        self._stats = stats
        self._held = np.empty((0, window.n_chans))  # samples the clock has not decided yet
        self._held_t = np.empty(0)  # and their received stamps
        self._hist_len = max(16, 4 * math.ceil(self._ratio))
        self._hist_k = np.empty(0)  # count indices and received stamps of recent samples (no dejitter)
        self._hist_t = np.empty(0)
        self._invalid: deque[tuple[int, int]] = deque(maxlen=256)  # bridged spans, window sample indices
        self.total_out = 0  #: real model-rate samples produced since the start (never reset)
        self.resets = 0  #: full resets since the start
        self.bridges = 0  #: missing spans bridged since the start
        self.time_base = 0  #: changes of time base (a returning stream whose times went back)
        self._start_state()

    def _start_state(self) -> None:
        self._k_r = None  # count index of the first input sample since the preprocessor's reset
        self._missing = False  # a missing span is open (nothing reaches the filters)
        self._resume_at = 0  # window sample count from which predictions may be published
        self.n_out = 0  #: model-rate samples (real and bridged) in the window since the last full reset
        self.newest_stamp = math.nan  #: timestamp of the newest real model-rate sample (s)

    # ------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        """Whether a prediction may be published from the current window."""
        return self.window.full and self.window.count >= self._resume_at and not self._missing

    @property
    def quality(self) -> float:
        """Share of the window (0..1) that is real data, not a bridged span."""
        W, end = self.window.n_times, self.window.count
        lo = end - W
        bad = sum(max(0, min(b, end) - max(a, lo)) for a, b in self._invalid)
        return max(0.0, 1.0 - bad / W)

    def reset(self, why: str = "reset", keep_clock: bool = False) -> None:
        """Forget the filters and the window (and the clock, unless ``keep_clock``)."""
        self._pre.reset()
        if not keep_clock:
            self.clock.reset()
            self._held, self._held_t = self._held[:0], self._held_t[:0]
        self.window.reset()
        self._stats.rate.reset()
        self._hist_k, self._hist_t = np.empty(0), np.empty(0)
        self._invalid.clear()
        self._start_state()
        self.resets += 1
        self._stats.count_reset(why)

    @property
    def n_held(self) -> int:
        """Input samples fed but not yet decided by the clock (no model-rate output from them yet)."""
        return int(self._held.shape[0])

    # ------------------------------------------------------------------ blocks
    def feed(self, block: Block) -> None:
        """Process one block read from the ring buffer (of any size, including empty)."""
        n = len(block)
        if block.lost:
            self._stats.lost_samples += block.lost
            logger.warning(
                "ring buffer overflow: %d samples were overwritten before processing; they are bridged "
                "(raise live.buffer_seconds or lighten the load)",
                block.lost,
            )
        if n == 0:
            return
        arrivals = block.arrivals
        cuts = sorted(set(block.breaks) | {0, n})
        for a, b in itertools.pairwise(cuts):
            if a in block.breaks:
                self._new_connection()
            self._push(block.data[a:b], block.stamps[a:b], None if arrivals is None else arrivals[a:b])

    def poll(self, now: float) -> None:
        """Decide samples the clock held back for too long (the source went quiet after them)."""
        times, events = self.clock.decide_pending(now)
        if times.size:
            self._run(times, events)

    def _new_connection(self) -> None:
        """A new inlet: decide what the old one left, open a missing span, restart the clock."""
        if self.clock.n_pending:
            times, events = self.clock.decide_pending(math.inf)
            self._run(times, events)
        self._stats.breaks += 1
        if self._k_r is not None:  # samples went through the filters since the last reset
            self._missing = True
        self._hist_k, self._hist_t = np.empty(0), np.empty(0)
        self.clock.reset()
        self._held, self._held_t = self._held[:0], self._held_t[:0]  # all decided above: none left
        logger.info("new connection to the source: the clock restarts, the outage is bridged if short")

    def _push(self, data: np.ndarray, stamps: np.ndarray, arrivals: np.ndarray | None) -> None:
        self._held = np.concatenate([self._held, data]) if self._held.size else data
        self._held_t = np.concatenate([self._held_t, stamps])
        times, events = self.clock.push(stamps, arrivals)
        self._run(times, events)

    def _run(self, times: np.ndarray, events: list[ClockEvent]) -> None:
        """Process the decided samples (the oldest ``times.size`` held ones)."""
        m = times.size
        if m == 0:
            return
        data, self._held = self._held[:m], self._held[m:]
        raw, self._held_t = self._held_t[:m], self._held_t[m:]
        k_first = self.clock.count - m - sum(e.missing for e in events)
        cuts = sorted({e.at for e in events} | {0, m})
        by_at = {e.at: e for e in events}
        k = k_first
        for a, b in itertools.pairwise(cuts):
            if a in by_at:
                k += self._event(by_at[a])
            self._segment(data[a:b], times[a:b], raw[a:b], k)
            k += b - a
        if m in by_at:
            self._event(by_at[m])

    def _event(self, ev: ClockEvent) -> int:
        if ev.kind == "step":
            self._stats.clock_steps += 1
            logger.warning(
                "the source's clock stepped by %+.1f ms (no samples missing); published times stay continuous",
                ev.seconds * 1e3,
            )
            return 0
        self._stats.gaps += 1
        self._stats.missing_samples += ev.missing
        logger.warning(
            "gap: %d samples (%.1f ms) missing from the input; the span is %s",
            ev.missing,
            ev.missing / self.sfreq_in * 1e3,
            "bridged" if self._bridge != "reset" else "reset",
        )
        if self._k_r is not None:  # samples went through the filters since the last reset
            self._missing = True
        return ev.missing

    def _segment(self, x: np.ndarray, t: np.ndarray, raw: np.ndarray, k0: int) -> None:
        """Samples ``x`` (n, n_chans), fitted times ``t``, received ``raw``, count indices from ``k0``."""
        bad = ~np.isfinite(x).all(axis=1)
        if not bad.any():
            self._good(x, t, raw, k0)
            return
        edges = np.flatnonzero(np.diff(bad.astype(np.int8))) + 1
        cuts = [0, *edges.tolist(), bad.size]
        for a, b in itertools.pairwise(cuts):
            if bad[a]:
                if not self._missing:
                    logger.warning("non-finite EEG samples at t=%.3f s: dropped and bridged", t[a])
                    self._stats.nan_resets += 1
                self._stats.nan_samples += b - a
                if self._k_r is not None:  # samples went through the filters since the last reset
                    self._missing = True
            else:
                self._good(x[a:b], t[a:b], raw[a:b], k0 + a)

    def _good(self, x: np.ndarray, t: np.ndarray, raw: np.ndarray, k0: int) -> None:
        if self._missing:
            self._close_span(float(t[0]), k0)
        if self._k_r is None:
            self._k_r = k0
        if self.monitor is not None:
            x, restart = self.monitor.process(x)
            if restart is not None:
                self._pre.restart_channels(restart)
        m = x.shape[0]
        y = self._pre.process(np.ascontiguousarray(x.T))
        self._stats.samples_processed += m
        self._stats.rate.add(float(t[-1]), self._stats.samples_processed)
        if not self._dejitter:
            self._hist_k = np.concatenate([self._hist_k, k0 + np.arange(m, dtype=np.float64)])[
                -self._hist_len :
            ]
            self._hist_t = np.concatenate([self._hist_t, raw])[-self._hist_len :]
        n = y.shape[1]
        if n:
            self.window.append(self._norm.apply(y))
            self.n_out += n
            self.total_out += n
            pos = self._k_r + (self._pre.n_out - 1) * self._ratio  # count index of the newest output
            t_new = float(self._time_at(pos))
            if math.isfinite(self.newest_stamp):  # the clock fit moved back a little: stay monotonic
                t_new = max(t_new, self.newest_stamp + 1e-3 / self.sfreq)
            self.newest_stamp = t_new

    def _time_at(self, pos: float) -> float:
        if self._dejitter or self._hist_k.size < 2:
            return float(self.clock.time_at(pos))
        return float(np.interp(pos, self._hist_k, self._hist_t))

    def _close_span(self, t_return: float, k_return: int) -> None:
        """Data are back after a missing span: bridge it into the window, or reset."""
        self._missing = False
        last = self.newest_stamp
        span = t_return - last if math.isfinite(last) else math.inf
        if span < 0:  # a returning stream on another clock (e.g. a source restarted on another host)
            logger.warning(
                "the returning stream's times are %.3f s before the last ones (another clock): everything "
                "restarts on the new time base",
                -span,
            )
            self.reset("clock", keep_clock=True)
            self.time_base += 1
            return
        if self._bridge == "reset" or span > self._max_bridge + 1.0 / self.sfreq:
            logger.warning(
                "%s: the filters and the window restart (a whole window is needed again)",
                f"an outage of {span:.2f} s is longer than live.max_bridge ({self._max_bridge:g} s)"
                if math.isfinite(span) and self._bridge != "reset"
                else "missing data",
            )
            self.reset("outage", keep_clock=True)  # the clock already knows where the returning samples are
            return
        n_fill = max(0, round(span * self.sfreq) - 1)
        fill = self._fill(n_fill)
        start = self.window.count
        if n_fill:
            self.window.append(fill)
            self.n_out += n_fill
        self._invalid.append((start, start + n_fill + self._resume))
        self._resume_at = self.window.count + self._resume
        self._pre.reset()
        self._k_r = k_return
        self.bridges += 1
        self._stats.bridged_samples += n_fill
        logger.info(
            "bridged %.2f s of missing data (%s); predictions resume after %.2f s",
            n_fill / self.sfreq,
            self._bridge,
            self._resume / self.sfreq,
        )

    def _fill(self, n: int) -> np.ndarray:
        """``n`` model-rate samples for a missing span, shape (n_chans, n)."""
        C = self.window.n_chans
        if n == 0:
            return np.zeros((C, 0))
        if self._bridge == "zeros":
            return np.zeros((C, n))
        have = min(self.window.count, self.window.n_times)
        recent = self.window.latest(have).detach().to("cpu").numpy().astype(np.float64)
        reps = math.ceil(n / have)
        return np.tile(recent, reps)[:, -n:]
