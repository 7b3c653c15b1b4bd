"""Synthetic EEG-like test signals (seeded, no global random state)."""

from __future__ import annotations

import numpy as np


def eeg_like(n_channels: int, n_samples: int, sfreq: float, seed: int = 0) -> np.ndarray:
    """EEG-like data in µV: per-channel DC offsets (mV range), 1/f noise, alpha, 50 Hz line.

    Returns
    -------
    array of shape (n_channels, n_samples)
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / sfreq
    white = rng.standard_normal((n_channels, n_samples))
    # 1/f-ish noise: a leaky integrator of white noise
    pink = np.cumsum(white, axis=1) * 0.05
    pink -= np.linspace(0, 1, n_samples) * pink[:, -1:]
    offsets = rng.uniform(-5000, 5000, size=(n_channels, 1))
    alpha = 15 * np.sin(2 * np.pi * 10.3 * t + rng.uniform(0, 2 * np.pi, (n_channels, 1)))
    line = 40 * np.sin(2 * np.pi * 50 * t + 0.3)
    return offsets + 10 * white + pink + alpha + line


def amplitude_at(y: np.ndarray, freq: float, sfreq: float) -> np.ndarray:
    """Amplitude and phase of a sinusoid of ``freq`` Hz in ``y`` (least squares, last axis).

    Returns
    -------
    array of shape y.shape[:-1], complex
        ``a`` such that ``y ~ Re(a * exp(2j pi f t))`` with ``t = arange(n) / sfreq``.
    """
    t = np.arange(y.shape[-1]) / sfreq
    basis = np.stack([np.cos(2 * np.pi * freq * t), -np.sin(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, np.atleast_2d(y).T, rcond=None)
    return (coef[0] + 1j * coef[1]).reshape(y.shape[:-1])


def random_chunks(n_samples: int, seed: int, max_chunk: int) -> list[int]:
    """Chunk sizes covering ``n_samples``, with many 0s and 1s mixed into random sizes."""
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    total = 0
    while total < n_samples:
        kind = rng.integers(4)
        size = 0 if kind == 0 else 1 if kind == 1 else int(rng.integers(2, max_chunk))
        size = min(size, n_samples - total)
        sizes.append(size)
        total += size
    return sizes
