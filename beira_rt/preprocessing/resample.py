"""Stateful, causal resampling by linear interpolation at exact rational positions.

Output sample ``k`` (counted from the last reset) is the input signal at
input position ``k * ratio``, with ``ratio = sfreq_in / sfreq`` held as a
:class:`fractions.Fraction`. Positions are tracked with integers (a whole
part and a remainder over the ratio's denominator), so after hours of data
there is no floating-point drift. The value is interpolated linearly between
the two neighbouring input samples (an exact pick at integer positions), so
output ``k`` is emitted as soon as input sample ``ceil(k * ratio)`` is in;
the only state carried between chunks is the last input sample and the two
integer counters, which makes the output independent of how the input is
chunked.

The resampler does no anti-alias filtering: the caller low-passes first
(see :mod:`beira_rt.preprocessing.design`).
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np

__all__ = ["MAX_DENOMINATOR", "LinearResampler", "n_outputs", "rational_ratio"]

#: Largest denominator of the resampling ratio (keeps integer products well inside int64).
MAX_DENOMINATOR = 1_000_000


def rational_ratio(sfreq_in: float, sfreq: float) -> Fraction:
    """The exact ratio ``sfreq_in / sfreq`` as a fraction with a small denominator.

    Rates are read through their shortest decimal form (``499.9`` is
    ``4999/10``, not the binary float), and the ratio is the closest fraction
    with a denominator of at most :data:`MAX_DENOMINATOR` (relative error
    below 1e-12 for any rate that is not itself a fraction with a larger
    denominator).

    Parameters
    ----------
    sfreq_in, sfreq : float
        Input and output sampling rates in Hz (positive, finite).

    Returns
    -------
    Fraction
        Input samples per output sample.
    """
    for name, value in (("input", sfreq_in), ("output", sfreq)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"The {name} sampling rate must be a number in Hz, got {value!r}.")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(
                f"The {name} sampling rate must be a positive finite number in Hz, got {value!r}."
            )
    ratio = Fraction(repr(float(sfreq_in))) / Fraction(repr(float(sfreq)))
    return ratio.limit_denominator(MAX_DENOMINATOR)


def n_outputs(n_in: int, ratio: Fraction) -> int:
    """Number of output samples available after ``n_in`` input samples.

    Output ``k`` needs input sample ``ceil(k * ratio)``, so the count is
    ``floor((n_in - 1) / ratio) + 1`` for ``n_in >= 1`` and 0 otherwise.
    """
    if n_in <= 0:
        return 0
    return math.floor((n_in - 1) / ratio) + 1


class LinearResampler:
    """Chunk-invariant resampler from ``sfreq_in`` to ``sfreq`` (``sfreq_in >= sfreq``).

    Parameters
    ----------
    ratio : Fraction
        Input samples per output sample, at least 1 (see :func:`rational_ratio`).
    n_channels : int
        Number of channels (rows) of every chunk.

    Notes
    -----
    Linear interpolation attenuates a component of frequency ``f`` by at most
    ``cos(pi * f / sfreq_in)`` at half-sample positions (0.99 at 10 Hz for a
    250 Hz input, 0.9998 at 1000 Hz); integer ratios are exact picks.
    """

    def __init__(self, ratio: Fraction, n_channels: int) -> None:
        if not isinstance(ratio, Fraction) or ratio < 1:
            raise ValueError(
                f"The resampling ratio must be a Fraction >= 1 (downsampling only), got {ratio!r}."
            )
        if ratio.denominator > MAX_DENOMINATOR:
            raise ValueError(
                f"The resampling ratio {ratio} has a denominator above {MAX_DENOMINATOR}; "
                "build it with rational_ratio()."
            )
        self.ratio = ratio
        self.n_channels = int(n_channels)
        self._num = ratio.numerator
        self._den = ratio.denominator
        self._step_whole, self._step_rem = divmod(self._num, self._den)
        self.reset()

    def reset(self) -> None:
        """Forget all state: the next input sample is input 0, the next output is output 0."""
        self.n_in = 0
        self.n_out = 0
        self._next_whole = 0  # floor of the position of output n_out
        self._next_rem = 0  # remainder (in 1/den units) of that position
        self._last: np.ndarray | None = None  # last input sample, shape (n_channels,)

    def input_position(self, k: int) -> Fraction:
        """Exact input position (in input samples since the reset) of output sample ``k``."""
        return k * self.ratio

    def process(self, x: np.ndarray) -> np.ndarray:
        """Resample the next chunk.

        Parameters
        ----------
        x : array of shape (n_channels, n_samples), float64
            The next input samples (already low-passed); ``n_samples`` may be 0.

        Returns
        -------
        array of shape (n_channels, n_new), float64
            Every output sample whose input position is now covered.
        """
        if x.ndim != 2 or x.shape[0] != self.n_channels:
            raise ValueError(
                f"Chunks must have shape (n_channels, n_samples) = ({self.n_channels}, n), got shape {x.shape}."
            )
        n = x.shape[1]
        if n == 0:
            return np.empty((self.n_channels, 0))
        first = self.n_in
        total_in = first + n
        # outputs j = 0.. with position p_j = next + j * ratio <= total_in - 1 (ceil(p_j) is in)
        slack = (total_in - 1 - self._next_whole) * self._den - self._next_rem
        m = slack // self._num + 1 if slack >= 0 else 0
        if self.ratio == 1:
            out = x.copy()
        else:
            j = np.arange(m, dtype=np.int64)
            rem_total = self._next_rem + j * self._step_rem
            idx = (self._next_whole - first) + j * self._step_whole + rem_total // self._den
            rem = rem_total % self._den
            if self._den == 1:  # integer ratio: exact picks, never before this chunk
                out = x[:, idx]
            else:
                lo = x[:, np.maximum(idx, 0)]
                before = idx < 0  # only output j=0 can fall between the previous chunk and this one
                if np.any(before):
                    lo[:, before] = self._last[:, None]
                hi = x[:, np.minimum(idx + 1, n - 1)]  # weight 0 where the position is a whole sample
                weight = rem.astype(np.float64) / self._den
                out = lo + weight * (hi - lo)
        self._last = x[:, -1].copy()
        self.n_in = total_in
        self.n_out += m
        self._next_whole, self._next_rem = divmod(
            self._next_whole * self._den + self._next_rem + m * self._num, self._den
        )
        return out
