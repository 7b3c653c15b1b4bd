"""Raw EEG blocks in, the model-rate window and its timestamp out: the engine's signal path.

:class:`LivePipeline` takes each block read from the ring buffer and

1. cuts it at discontinuities: marks from the ring buffer (a reconnection,
   lost samples), timestamp gaps (a step above ``gap_factor`` sample periods)
   and runs of non-finite samples;
2. resets everything at a cut (filter state, timestamp fit, window): after a
   reset nothing is published until a full window of ``W`` model-rate samples
   has been rebuilt from new data, because a prediction from a partly filled
   window would not be the prediction the model was trained and evaluated to
   make; non-finite samples are dropped and never reach the filters;
3. runs every raw sample through the stateful
   :class:`~beira_rt.preprocessing.CausalPreprocessor` (raw samples are never
   skipped: the filters carry state), normalises the model-rate output and
   appends it to the device-resident :class:`~beira_rt.engine.window.DeviceWindow`;
4. keeps the timestamp of the newest model-rate sample ``n`` (the input
   timestamp at position ``n * sfreq_in / sfreq`` since the reset, interpolated
   between the de-jittered input timestamps), as the parity contract in
   docs/CONTRACTS.md defines it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from beira_rt._logging import logger

from .ringbuffer import Block
from .stats import EngineStats
from .timing import Dejitterer, find_gaps
from .window import DeviceWindow

__all__ = ["LivePipeline"]


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
    gap_factor : float
        A timestamp step above this many input periods is a gap.
    dejitter : bool
        Whether to de-jitter input timestamps (per gap-free segment).
    stats : EngineStats
        Where the counters go.
    """

    def __init__(
        self,
        preprocessor,
        normalizer,
        window: DeviceWindow,
        sfreq_in: float,
        sfreq: float,
        gap_factor: float,
        dejitter: bool,
        stats: EngineStats,
    ) -> None:
        self._pre = preprocessor
        self._norm = normalizer
        self.window = window
        self.sfreq_in = float(sfreq_in)
        self.sfreq = float(sfreq)
        self._ratio = self.sfreq_in / self.sfreq
        self._period = 1.0 / self.sfreq_in
        self._gap_factor = float(gap_factor)
        self._dejitter = Dejitterer(self.sfreq_in) if dejitter else None
        self._stats = stats
        # input timestamps of the most recent samples, for interpolation at model-rate positions
        self._hist_len = max(16, 4 * math.ceil(self._ratio))
        self._last_raw: float | None = None  # received timestamp of the last sample seen
        self._in_nan_run = False
        self.n_in = 0  #: input samples processed since the last reset
        self.n_out = 0  #: model-rate samples produced since the last reset
        self.total_out = 0  #: model-rate samples produced since the start (never reset)
        self.newest_stamp = math.nan  #: timestamp of model-rate sample n_out - 1 (s)
        self.resets = 0  #: resets since the start
        self._hist = np.empty(0)

    @property
    def ready(self) -> bool:
        """Whether a full window of model-rate samples exists since the last reset."""
        return self.window.full

    def reset(self) -> None:
        """Forget all state (filters, timestamp fit, window); the next sample starts afresh."""
        self._pre.reset()
        if self._dejitter is not None:
            self._dejitter.reset()
        self.window.reset()
        self._stats.rate.reset()
        self.n_in = 0
        self.n_out = 0
        self._hist = np.empty(0)
        self.newest_stamp = math.nan
        self.resets += 1

    # ------------------------------------------------------------------ blocks
    def feed(self, block: Block) -> None:
        """Process one block read from the ring buffer (of any size, including empty)."""
        n = len(block)
        if n == 0:
            return
        data, stamps = block.data, block.stamps
        bad = ~np.isfinite(data).all(axis=1)
        breaks = set(block.breaks)
        previous = None if 0 in breaks else self._last_raw
        gaps = set(find_gaps(stamps, previous, self._period, self._gap_factor).tolist()) - breaks
        edges = np.flatnonzero(np.diff(bad.astype(np.int8))) + 1  # starts and ends of bad runs
        cuts = sorted(breaks | gaps | set(edges.tolist()) | {0, n})
        for a, b in itertools.pairwise(cuts):
            if a in breaks:
                self._reset_for("break", stamps[a])
            elif a in gaps:
                step = stamps[a] - (stamps[a - 1] if a else self._last_raw)
                self._reset_for("gap", stamps[a], step)
            if bad[a]:
                if not self._in_nan_run:
                    self._in_nan_run = True
                    self._reset_for("nan", stamps[a])
                self._stats.nan_samples += b - a
                continue
            self._in_nan_run = False
            self._process(data[a:b], stamps[a:b])
        self._last_raw = float(stamps[-1])

    def _reset_for(self, why: str, stamp: float, step: float = 0.0) -> None:
        if why == "gap":
            self._stats.gaps += 1
            logger.warning(
                "gap of %.1f ms in the input timestamps at t=%.3f s (more than %g sample periods); "
                "filters and window reset",
                step * 1e3,
                stamp,
                self._gap_factor,
            )
        elif why == "nan":
            self._stats.nan_resets += 1
            logger.warning("non-finite EEG samples at t=%.3f s; dropped, filters and window reset", stamp)
        else:
            self._stats.breaks += 1
            logger.info("input discontinuity (reconnection or lost samples) at t=%.3f s; state reset", stamp)
        self.reset()

    def _process(self, x: np.ndarray, t: np.ndarray) -> None:
        """Run consecutive good samples ``x`` (n, n_chans) with timestamps ``t`` (n,)."""
        m = t.shape[0]
        ts = self._dejitter.process(t) if self._dejitter is not None else t
        y = self._pre.process(np.ascontiguousarray(x.T))
        first_idx = self.n_in - self._hist.shape[0]  # input index of self._hist[0]
        hist = np.concatenate([self._hist, ts])
        self.n_in += m
        self._stats.samples_processed += m
        self._stats.rate.add(float(t[-1]), self._stats.samples_processed)
        k = y.shape[1]
        if k:
            self.window.append(self._norm.apply(y))
            self.n_out += k
            self.total_out += k
            pos = (self.n_out - 1) * self._ratio - first_idx
            if not -1e-9 <= pos <= hist.shape[0] - 1 + 1e-9:
                raise RuntimeError(
                    f"model-rate sample {self.n_out - 1} lies at input position "
                    f"{(self.n_out - 1) * self._ratio:.2f}, outside the input timestamps kept "
                    f"(positions {first_idx} to {self.n_in - 1}); the preprocessor did not emit when "
                    "docs/CONTRACTS.md says it does."
                )
            self.newest_stamp = float(np.interp(pos, np.arange(hist.shape[0]), hist))
        self._hist = hist[-self._hist_len :]
