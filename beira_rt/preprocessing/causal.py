"""The causal, stateful, chunk-invariant EEG preprocessor.

One implementation serves the offline trainer (:func:`preprocess_recording`)
and the live engine (:class:`CausalPreprocessor`, fed chunk by chunk): any
split of a recording into chunks gives the same output as the whole
recording at once. The chain, all at the input rate until the last step:

notch(es) -> band-pass -> common average reference -> anti-alias low-pass
-> linear-interpolation resampling to the model rate.

NaN and Inf are the caller's job: a non-finite sample poisons the filter
state until :meth:`CausalPreprocessor.reset` (the live engine resets on NaN).
"""

from __future__ import annotations

import numbers
from fractions import Fraction

import numpy as np
import scipy.signal

from beira_rt._logging import logger
from beira_rt.config import PreprocessingConfig

from .design import FilterDesign, design_filters
from .resample import LinearResampler, n_outputs

__all__ = ["CausalPreprocessor", "SosCascade", "preprocess_recording"]

#: Input samples per block in :func:`preprocess_recording` (bounds temporary memory).
RECORDING_BLOCK = 1 << 16


class SosCascade:
    """A causal SOS filter with state, started at steady state on its first sample.

    Parameters
    ----------
    sos : array of shape (n_sections, 6)
        Second-order sections (may be empty: then the cascade copies its input).
    n_channels : int
        Channels filtered in parallel (the rows of each chunk).

    Notes
    -----
    On the first sample after construction or :meth:`reset` the state is set
    to ``sosfilt_zi(sos) * x0`` per channel: the filter behaves as if the
    input had been constant at that first sample forever, so an amplifier DC
    offset does not ring through the filter.
    """

    def __init__(self, sos: np.ndarray, n_channels: int) -> None:
        self.sos = np.array(sos, dtype=np.float64, order="C")  # a writable copy: sosfilt needs one
        self.n_channels = n_channels
        self._zi_unit = scipy.signal.sosfilt_zi(self.sos) if len(self.sos) else None
        self._zi: np.ndarray | None = None
        self._restart: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the state; the next sample restarts the filter at steady state."""
        self._zi = None
        self._restart = None

    def restart_channels(self, channels: np.ndarray) -> None:
        """Restart the given channels (bool mask or indices) at steady state on their next sample."""
        mask = np.zeros(self.n_channels, dtype=bool)
        mask[channels] = True
        self._restart = mask if self._restart is None else (self._restart | mask)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter the next chunk.

        Parameters
        ----------
        x : array of shape (n_channels, n_samples), float64

        Returns
        -------
        array of shape (n_channels, n_samples), float64
            A new array (``x`` is not modified).
        """
        if self._zi_unit is None:
            return x.copy()
        if x.shape[1] == 0:
            return np.empty_like(x)
        if self._zi is None:
            # (n_sections, 1, 2) * (1, n_channels, 1) -> (n_sections, n_channels, 2)
            self._zi = self._zi_unit[:, None, :] * x[None, :, 0, None]
        elif self._restart is not None:
            r = self._restart
            self._zi[:, r, :] = self._zi_unit[:, None, :] * x[None, r, 0, None]
        self._restart = None
        y, self._zi = scipy.signal.sosfilt(self.sos, x, axis=-1, zi=self._zi)
        return y


def _check_n_channels(n_channels: object, car: bool) -> int:
    if isinstance(n_channels, bool) or not isinstance(n_channels, numbers.Integral) or n_channels < 1:
        raise ValueError(f"n_channels must be a positive integer, got {n_channels!r}.")
    if car and n_channels < 2:
        raise ValueError(
            f"A common average reference needs at least 2 channels, got n_channels={n_channels}; "
            "set preprocessing.car to false for a single channel."
        )
    return int(n_channels)


class CausalPreprocessor:
    """Causal EEG preprocessing from the input rate to the model rate, with state.

    Parameters
    ----------
    cfg : PreprocessingConfig
        Filter settings and the model rate ``cfg.sfreq``.
    sfreq_in : float
        Sampling rate of the input in Hz (>= ``cfg.sfreq``; any ratio).
    n_channels : int
        Number of channels of every chunk (the model channels, in order; the
        common average reference is taken over exactly these).

    Attributes
    ----------
    design : FilterDesign
        The filters in use (logged once at INFO on construction).
    n_in, n_out : int
        Input samples consumed and output samples produced since the last reset.

    Notes
    -----
    Output sample ``k`` (since the last reset) is the filtered signal at input
    position ``k * sfreq_in / cfg.sfreq`` (see :attr:`ratio`), emitted as soon
    as input sample ``ceil(k * sfreq_in / cfg.sfreq)`` has been processed.
    """

    def __init__(self, cfg: PreprocessingConfig, sfreq_in: float, n_channels: int) -> None:
        self.design: FilterDesign = design_filters(cfg, sfreq_in)
        self.cfg = cfg
        self.n_channels = _check_n_channels(n_channels, cfg.car)
        self._band = SosCascade(self.design.sos_band, self.n_channels)
        self._aa = SosCascade(self.design.sos_aa, self.n_channels)
        self._resampler = LinearResampler(self.design.ratio, self.n_channels)
        car = "; common average reference" if cfg.car else "; no re-referencing"
        logger.info("Preprocessing %d channels: %s%s.", self.n_channels, self.design.describe(), car)

    @property
    def sfreq_in(self) -> float:
        """Input sampling rate in Hz."""
        return self.design.sfreq_in

    @property
    def sfreq(self) -> float:
        """Output (model) sampling rate in Hz."""
        return self.design.sfreq

    @property
    def ratio(self) -> Fraction:
        """Input samples per output sample, exact (:class:`fractions.Fraction`)."""
        return self.design.ratio

    @property
    def n_in(self) -> int:
        """Input samples consumed since the last reset."""
        return self._resampler.n_in

    @property
    def n_out(self) -> int:
        """Output samples produced since the last reset."""
        return self._resampler.n_out

    def n_out_after(self, n_in: int) -> int:
        """Output samples produced in total once ``n_in`` input samples have been processed."""
        return n_outputs(n_in, self.design.ratio)

    def reset(self) -> None:
        """Forget all state (after a gap or a NaN); counters restart at 0.

        The filters restart at steady state on the next sample.
        """
        self._band.reset()
        self._aa.reset()
        self._resampler.reset()

    def restart_channels(self, channels: np.ndarray) -> None:
        """Restart the filters of some channels at steady state on their next sample.

        Used when a channel's input changes source (a flat or railed channel replaced by its
        interpolation, or back): the step would otherwise ring through the band-pass and,
        by the common average, into every channel.

        Parameters
        ----------
        channels : ndarray of bool, shape (n_channels,), or of int
            The channels to restart.
        """
        self._band.restart_channels(channels)  # before the common average: only these channels change

    def process(self, x: np.ndarray) -> np.ndarray:
        """Preprocess the next chunk.

        Parameters
        ----------
        x : array of shape (n_channels, n_samples)
            The next samples at ``sfreq_in`` (µV or V, any real dtype; must be
            finite). ``n_samples`` may be 0.

        Returns
        -------
        array of shape (n_channels, n_new), float64
            The output samples at ``cfg.sfreq`` that became available, in the
            input's unit. Concatenating the outputs of any chunking of a
            recording gives the same array.

        Raises
        ------
        ValueError
            If ``x`` is not 2-D with ``n_channels`` rows or is not real-valued.
        """
        x = self._check_chunk(x)
        if x.shape[1] == 0:
            return np.empty((self.n_channels, 0))
        y = self._band.process(x)
        if self.cfg.car:
            y -= y.mean(axis=0, keepdims=True)
        y = self._aa.process(y)
        return self._resampler.process(y)

    def _check_chunk(self, x: np.ndarray) -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype.kind not in "fiu":
            raise ValueError(
                f"EEG chunks must hold real numbers, got dtype {arr.dtype}; convert to float first."
            )
        if arr.ndim != 2 or arr.shape[0] != self.n_channels:
            raise ValueError(
                f"EEG chunks must have shape (n_channels, n_samples) = ({self.n_channels}, n); "
                f"got shape {arr.shape}. Pass channels as rows, in the model's channel order."
            )
        return np.ascontiguousarray(arr, dtype=np.float64)


def preprocess_recording(data: np.ndarray, sfreq_in: float, cfg: PreprocessingConfig) -> np.ndarray:
    """Run the causal preprocessing once over a whole recording.

    The same :class:`CausalPreprocessor` as the live engine, fed in blocks
    (bounded temporary memory; the output does not depend on the blocks).

    Parameters
    ----------
    data : array of shape (n_channels, n_samples)
        The recording at ``sfreq_in`` (µV or V).
    sfreq_in : float
        Sampling rate of ``data`` in Hz.
    cfg : PreprocessingConfig
        Preprocessing settings.

    Returns
    -------
    array of shape (n_channels, n_out), float64
        The preprocessed recording at ``cfg.sfreq``; ``n_out`` is
        ``floor((n_samples - 1) * cfg.sfreq / sfreq_in) + 1``.
    """
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise ValueError(
            f"A recording must be an array of shape (n_channels, n_samples), got shape {arr.shape}."
        )
    pre = CausalPreprocessor(cfg, sfreq_in, arr.shape[0])
    out = np.empty((arr.shape[0], pre.n_out_after(arr.shape[1])))
    for start in range(0, arr.shape[1], RECORDING_BLOCK):
        y = pre.process(arr[:, start : start + RECORDING_BLOCK])
        out[:, pre.n_out - y.shape[1] : pre.n_out] = y
    if pre.n_out != out.shape[1]:  # pragma: no cover - an internal inconsistency
        raise RuntimeError(f"preprocess_recording produced {pre.n_out} samples, expected {out.shape[1]}.")
    return out
