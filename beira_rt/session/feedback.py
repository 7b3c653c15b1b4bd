"""The feedback signal: the target of the predictions, smoothed, normalised against the baseline.

For each prediction (ROI values ``x``, stamp ``s``):

1. ``target = sum_r w_r x_r`` (the protocol's weights);
2. ``smoothed``: exponential smoothing on the prediction stamps,
   ``y_k = y_{k-1} + a_k (target_k - y_{k-1})``, ``a_k = 1 - exp(-(s_k - s_{k-1}) / tau)``
   (``y_0 = target_0``; ``tau = 0``: no smoothing);
3. ``value``: ``smoothed`` normalised against the latest finished baseline block — z-score
   ``(y - mean) / std`` of the smoothed values of that block, or the percentile rank
   ``#(baseline <= y) / n`` (0..1); NaN before any baseline; ``y`` itself with ``none``;
4. ``reward``: 1 in feedback and transfer blocks when ``value`` is above the threshold
   (``direction: up``; below it for ``down``), else 0.

Everything needed to recompute it is recorded: the predictions, the feedback stream's
``eeg_time`` (the stamp of the prediction each feedback sample comes from) and the
``baseline`` markers.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["FEEDBACK_CHANNELS", "BaselineStats", "FeedbackComputer"]

#: Channels of the feedback stream (double64), in order.
FEEDBACK_CHANNELS = ("value", "target", "smoothed", "reward", "shown", "eeg_time", "quality")


class BaselineStats:
    """The statistics of one baseline block's smoothed values."""

    def __init__(self, values: np.ndarray, block: int) -> None:
        v = np.sort(np.asarray(values, dtype=np.float64))
        v = v[np.isfinite(v)]
        self.block = block
        self.values = v
        self.n = int(v.size)
        self.mean = float(v.mean()) if v.size else math.nan
        self.std = float(v.std()) if v.size > 1 else math.nan

    def normalise(self, y: float, how: str) -> float:
        if how == "none":
            return y
        if self.n < 2:
            return math.nan
        if how == "zscore":
            return (y - self.mean) / self.std if self.std > 0 else math.nan
        return float(np.searchsorted(self.values, y, side="right")) / self.n  # percentile rank

    def describe(self) -> dict:
        q = np.percentile(self.values, [5, 25, 50, 75, 95]).tolist() if self.n else []
        return {
            "block": self.block,
            "n": self.n,
            "mean": self.mean,
            "std": self.std,
            "percentiles_5_25_50_75_95": q,
        }


class FeedbackComputer:
    """Feedback from predictions, one at a time (see the module docstring).

    Parameters
    ----------
    columns : dict of int -> float
        Prediction-stream column -> weight.
    smoothing : float
        Time constant (s).
    normalise : str
        ``zscore``, ``percentile`` or ``none``.
    threshold : float | None
        Reward threshold in the units of ``value``.
    direction : str
        ``up`` or ``down``.
    """

    def __init__(
        self,
        columns: dict[int, float],
        smoothing: float,
        normalise: str,
        threshold: float | None,
        direction: str,
    ) -> None:
        self.cols = np.array(sorted(columns), dtype=np.intp)
        self.w = np.array([columns[c] for c in sorted(columns)], dtype=np.float64)
        self.tau = float(smoothing)
        self.normalise = normalise
        self.threshold = threshold
        self.direction = direction
        self.baseline: BaselineStats | None = None
        self._y = math.nan
        self._last = math.nan
        self._collect: list[float] | None = None
        self._collect_block = -1

    def step(self, values: np.ndarray, stamp: float, kind: str | None) -> tuple[float, float, float, int]:
        """One prediction -> (value, target, smoothed, reward); ``kind`` is the running block's kind."""
        target = float(np.dot(self.w, np.asarray(values, dtype=np.float64)[self.cols]))
        if not math.isfinite(self._y) or self.tau <= 0 or not math.isfinite(self._last):
            y = target
        else:
            a = 1.0 - math.exp(-max(stamp - self._last, 0.0) / self.tau)
            y = self._y + a * (target - self._y)
        self._y, self._last = y, stamp
        if self._collect is not None:
            self._collect.append(y)
        value = (
            self.baseline.normalise(y, self.normalise)
            if self.baseline
            else (y if self.normalise == "none" else math.nan)
        )
        reward = 0
        if self.threshold is not None and kind in ("feedback", "transfer") and math.isfinite(value):
            reward = int(value > self.threshold if self.direction == "up" else value < self.threshold)
        return value, target, y, reward

    def begin_baseline(self, block: int) -> None:
        """Collect the smoothed values from now on (a baseline block starts)."""
        self._collect, self._collect_block = [], block

    def end_baseline(self) -> BaselineStats | None:
        """Close the baseline being collected; its statistics now normalise the feedback."""
        if self._collect is None:
            return None
        stats = BaselineStats(np.array(self._collect), self._collect_block)
        self._collect = None
        self.baseline = stats
        return stats

    def restore(self, values: list[float], block: int) -> None:
        """Take the baseline of an earlier run of this session (a restarted runner)."""
        self.baseline = BaselineStats(np.array(values), block)
