"""Per-channel z-scoring of the preprocessed EEG.

The statistics come from the training block only (never the validation or
test block) and travel in the model bundle as plain lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["FLAT_RTOL", "Normalizer", "as_stats"]

#: A channel whose standard deviation is below this fraction of the median channel's is flat.
FLAT_RTOL = 1e-9


def as_stats(values: Any, what: str) -> np.ndarray:
    """Per-channel statistics as a read-only, finite, non-empty 1-D float64 array.

    ``what`` names them in error messages (e.g. ``"Normalizer mean"``, ``"bundle norm_std"``).

    Raises
    ------
    ValueError
        Not numbers, not 1-D, empty, or not finite (the message names the indices).
    """
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a list of numbers, got {values!r}.") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{what} must be a non-empty 1-D list (one value per channel), got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr)).tolist()
        raise ValueError(f"{what} has non-finite values at channel indices {bad}.")
    arr.setflags(write=False)
    return arr


class Normalizer:
    """Per-channel z-scoring: ``(y - mean) / std``.

    Parameters
    ----------
    mean : array of shape (n_channels,)
        Channel means (unit of the preprocessed EEG).
    std : array of shape (n_channels,)
        Channel standard deviations, all > 0.

    Raises
    ------
    ValueError
        If the arrays are not 1-D, differ in length, are not finite or a std is not positive.
    """

    def __init__(self, mean: Any, std: Any) -> None:
        self.mean = as_stats(mean, "Normalizer mean")
        self.std = as_stats(std, "Normalizer std")
        if self.mean.shape != self.std.shape:
            raise ValueError(
                f"Normalizer mean and std must have one value per channel each; got {self.mean.size} means "
                f"and {self.std.size} standard deviations."
            )
        if np.any(self.std <= 0):
            bad = np.flatnonzero(self.std <= 0).tolist()
            raise ValueError(f"Normalizer std must be positive; channel indices {bad} have std <= 0.")

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return int(self.mean.size)

    @classmethod
    def fit(cls, y: np.ndarray) -> Normalizer:
        """Per-channel statistics of a block of preprocessed EEG (the training block).

        Parameters
        ----------
        y : array of shape (n_channels, n_samples)
            Preprocessed EEG; finite, at least 2 samples.

        Returns
        -------
        Normalizer

        Raises
        ------
        ValueError
            On a wrong shape, non-finite values, or a flat channel (named by index):
            a flat channel carries no signal and usually means a broken electrode;
            drop it from ``data.eeg_channels``.
        """
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 2 or y.shape[1] < 2:
            raise ValueError(
                f"Normalizer.fit needs an array of shape (n_channels, n_samples) with at least 2 samples, "
                f"got shape {y.shape}."
            )
        finite = np.isfinite(y).all(axis=1)
        if not finite.all():
            raise ValueError(
                f"Normalizer.fit got non-finite values in channel indices {np.flatnonzero(~finite).tolist()}."
            )
        mean = y.mean(axis=1)
        std = y.std(axis=1)
        flat = std <= FLAT_RTOL * np.median(std)
        flat |= std == 0
        if flat.any():
            raise ValueError(
                f"Channel indices {np.flatnonzero(flat).tolist()} are flat in the training block "
                f"(std {std[flat].tolist()} vs median {np.median(std):.3g}); remove them from "
                "data.eeg_channels."
            )
        return cls(mean, std)

    def apply(self, y: np.ndarray) -> np.ndarray:
        """Z-score a block.

        Parameters
        ----------
        y : array of shape (n_channels, n_samples)

        Returns
        -------
        array of shape (n_channels, n_samples), float64
            A new array.
        """
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 2 or y.shape[0] != self.n_channels:
            raise ValueError(
                f"Normalizer.apply needs an array of shape ({self.n_channels}, n_samples), got shape {y.shape}."
            )
        return (y - self.mean[:, None]) / self.std[:, None]

    def to_dict(self) -> dict[str, list[float]]:
        """Plain form for the bundle: ``{"mean": [...], "std": [...]}``."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: Any) -> Normalizer:
        """Rebuild from :meth:`to_dict` output; raises ValueError naming what is wrong."""
        if not isinstance(data, dict) or set(data) != {"mean", "std"}:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"Normalizer data must be a mapping with keys 'mean' and 'std', got {keys}.")
        return cls(data["mean"], data["std"])

    def __repr__(self) -> str:
        return f"Normalizer(n_channels={self.n_channels})"
