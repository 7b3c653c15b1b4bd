"""Delay alignment of EEG and BOLD, and the chronological train / validation / test split.

Time bases
----------
Everything here is at the model rate (``preprocessing.sfreq``, 100 Hz by
default). Model-rate sample ``i`` of the preprocessed EEG is the signal at time
``t_i = i / sfreq`` from the start of the recording; the loader gives the ROI
BOLD series on the same grid. The *target* of EEG sample ``i`` is the BOLD
``bold_delay`` seconds later::

    target[:, i] = bold[:, i + d],    d = round(bold_delay * sfreq)

so the model learns "the sBOLD that this EEG will cause". Aligned pairs exist
for ``i < L = min(n_eeg, n_bold - d)``. The loader leaves the BOLD undefined
(NaN) before the first and after the last volume onset; only the span of
aligned samples with a finite target (:func:`valid_span`) is split.

The split (principle 2, honest evaluation)
------------------------------------------
The valid span ``[first, L')`` of aligned samples is cut chronologically: the last
``test_seconds`` are the test block, the ``val_seconds`` before it the
validation block, the rest the training block. The blocks partition the
*targets*:

- training windows lie wholly inside the training block, so the loss only ever
  sees training targets, and normalisation statistics (EEG and BOLD) come from
  the training block only;
- early stopping, checkpoint choice, the baseline's regularisation and the
  default live look-ahead are chosen on validation targets only;
- test targets are used once, for the final report.

EEG is input, not a label: the prediction for a validation or test target may
use EEG recorded before its block (the live engine has that history) and, for a
read-out with look-ahead or from the centre of a window, EEG a few seconds after
the target's own sample - exactly the EEG the live engine would have at that
look-ahead. No target of another block enters any prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from beira_rt.targets import delay_samples  # the contract shared with the replay

__all__ = ["Block", "Split", "align_targets", "chronological_split", "delay_samples", "valid_span"]


@dataclass(frozen=True)
class Block:
    """A half-open range ``[start, stop)`` of aligned model-rate samples."""

    name: str
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def slice(self) -> slice:
        """``slice(start, stop)`` for indexing the time axis."""
        return slice(self.start, self.stop)


@dataclass(frozen=True)
class Split:
    """The three chronological blocks over ``n_samples`` aligned samples at ``sfreq``."""

    train: Block
    val: Block
    test: Block
    sfreq: float

    @property
    def n_samples(self) -> int:
        """End of the split span: targets exist for aligned samples ``< n_samples``."""
        return self.test.stop

    def blocks(self) -> tuple[Block, Block, Block]:
        """``(train, val, test)``."""
        return (self.train, self.val, self.test)

    def describe(self) -> str:
        """One line such as ``train 0-180.0 s, val 180.0-240.0 s, test 240.0-300.0 s``."""
        return ", ".join(
            f"{b.name} {b.start / self.sfreq:.1f}-{b.stop / self.sfreq:.1f} s" for b in self.blocks()
        )

    def to_dict(self) -> dict[str, object]:
        """Block bounds in samples and seconds (for ``metrics.json``)."""
        return {
            b.name: {
                "start": b.start,
                "stop": b.stop,
                "start_s": b.start / self.sfreq,
                "stop_s": b.stop / self.sfreq,
            }
            for b in self.blocks()
        } | {"sfreq": self.sfreq}


def align_targets(bold: np.ndarray, n_eeg: int, delay: int) -> np.ndarray:
    """Shift the BOLD series so that column ``i`` is the target of EEG sample ``i``.

    Parameters
    ----------
    bold : array of shape (n_rois, n_bold)
        ROI BOLD series at the model rate, on the EEG's time grid.
    n_eeg : int
        Number of model-rate EEG samples.
    delay : int
        BOLD delay in model-rate samples (see :func:`delay_samples`).

    Returns
    -------
    array of shape (n_rois, L)
        ``bold[:, i + delay]`` for ``i < L = min(n_eeg, n_bold - delay)`` (a view).

    Raises
    ------
    ValueError
        When no EEG sample has a target (the BOLD series is shorter than the delay).
    """
    if bold.ndim != 2:
        raise ValueError(f"bold must be an array of shape (n_rois, n_samples); got shape {bold.shape}.")
    if delay < 0:
        raise ValueError(f"the BOLD delay must be >= 0 samples; got {delay}.")
    n_aligned = min(n_eeg, bold.shape[1] - delay)
    if n_aligned <= 0:
        raise ValueError(
            f"no EEG sample has a BOLD target: the BOLD series holds {bold.shape[1]} model-rate samples, "
            f"the delay is {delay} and the EEG holds {n_eeg}; check model.bold_delay and the recording."
        )
    return bold[:, delay : delay + n_aligned]


def valid_span(target: np.ndarray) -> tuple[int, int]:
    """The span ``[start, stop)`` of columns where every ROI's target is finite.

    Parameters
    ----------
    target : array of shape (n_rois, L)

    Raises
    ------
    ValueError
        When no column is finite, or a non-finite value lies inside the span (a gap in
        the BOLD series that the split cannot honour).
    """
    finite = np.isfinite(target).all(axis=0)
    idx = np.flatnonzero(finite)
    if idx.size == 0:
        raise ValueError(
            "the aligned BOLD targets hold no finite sample; check the volume markers and the delay."
        )
    start, stop = int(idx[0]), int(idx[-1]) + 1
    if idx.size != stop - start:
        raise ValueError(
            f"the aligned BOLD targets have {stop - start - idx.size} non-finite samples between samples "
            f"{start} and {stop}; the ROI series must be finite between the first and last volume."
        )
    return start, stop


def chronological_split(
    n_samples: int, sfreq: float, test_seconds: float, val_seconds: float, n_times: int, start: int = 0
) -> Split:
    """Cut ``[start, n_samples)`` into training, validation and test blocks, in that order.

    Parameters
    ----------
    n_samples : int
        End of the span of aligned model-rate samples with targets.
    sfreq : float
        Model rate in Hz.
    test_seconds, val_seconds : float
        Lengths of the test block (the last one) and of the validation block (just before it).
    n_times : int
        Window length in samples; the training block must hold at least one window.
    start : int
        First aligned sample with a target (see :func:`valid_span`).

    Returns
    -------
    Split

    Raises
    ------
    ValueError
        When the training block would be shorter than one window.
    """
    n_test = round(test_seconds * sfreq)
    n_val = round(val_seconds * sfreq)
    if n_test < 1 or n_val < 1:
        raise ValueError(
            f"the test and validation blocks must hold at least one sample; got {n_test} and {n_val} "
            f"samples for test_seconds={test_seconds} and val_seconds={val_seconds} at {sfreq} Hz."
        )
    train_stop = n_samples - n_test - n_val
    if train_stop - start < n_times:
        raise ValueError(
            f"the recording gives {(n_samples - start) / sfreq:.1f} s of aligned EEG and BOLD; after the "
            f"last {test_seconds:g} s (test) and the {val_seconds:g} s before it (validation) the training "
            f"block holds {max(train_stop - start, 0) / sfreq:.1f} s, shorter than one window "
            f"({n_times / sfreq:.2f} s). Use a longer recording or reduce training.test_seconds, "
            "training.val_seconds or model.n_times."
        )
    return Split(
        train=Block("train", start, train_stop),
        val=Block("val", train_stop, train_stop + n_val),
        test=Block("test", train_stop + n_val, n_samples),
        sfreq=float(sfreq),
    )
