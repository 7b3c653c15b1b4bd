"""From a loaded recording to model-ready arrays, and random training windows.

:func:`prepare_data` runs the live engine's causal preprocessing over the whole
recording (:func:`beira_rt.preprocessing.preprocess_recording`), aligns the BOLD
targets with the BOLD delay, splits chronologically and z-scores EEG and
targets with training-block statistics (see :mod:`offline.split` for the
rules). :class:`WindowSampler` draws random training windows that lie wholly
inside the training block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from beira_rt._logging import logger
from beira_rt.config import BeiraConfig
from beira_rt.preprocessing import Normalizer, preprocess_recording

from .split import Block, Split, align_targets, chronological_split, delay_samples, valid_span

__all__ = [
    "GroupData",
    "GroupSampler",
    "PreparedData",
    "WindowSampler",
    "fit_target_stats",
    "prepare_data",
    "prepare_recording",
]


@dataclass(frozen=True)
class PreparedData:
    """Model-rate EEG and targets of one recording, split and normalised.

    Attributes
    ----------
    eeg : array of shape (n_chans, n_eeg), float32
        Preprocessed EEG z-scored with training-block statistics. May run past
        the last target (``n_eeg >= split.n_samples``).
    target : array of shape (n_rois, L), float32
        Delay-aligned BOLD, z-scored with training-block statistics; ``L = split.n_samples``.
        NaN before ``split.train.start`` (no volume yet).
    target_raw : array of shape (n_rois, L), float64
        Delay-aligned BOLD in the loader's units.
    split : Split
    normalizer : Normalizer
        EEG statistics of the training block.
    target_mean, target_std : arrays of shape (n_rois,)
        BOLD statistics of the training block (0 and 1 when
        ``data.standardize_bold`` is false).
    ch_names, rois : tuple of str
    sfreq_in : float
        Rate of the raw EEG in Hz.
    sfreq : float
        Model rate in Hz.
    """

    eeg: np.ndarray
    target: np.ndarray
    target_raw: np.ndarray
    split: Split
    normalizer: Normalizer
    target_mean: np.ndarray
    target_std: np.ndarray
    ch_names: tuple[str, ...]
    rois: tuple[str, ...]
    sfreq_in: float
    sfreq: float

    @property
    def n_chans(self) -> int:
        """Number of EEG channels."""
        return int(self.eeg.shape[0])

    @property
    def n_rois(self) -> int:
        """Number of ROIs (model outputs)."""
        return int(self.target.shape[0])


def fit_target_stats(target: np.ndarray, block: Block, standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-ROI mean and std of the targets in ``block`` (``0, 1`` when ``standardize`` is false).

    Raises
    ------
    ValueError
        When a ROI is constant (or not finite) in the block.
    """
    n_rois = target.shape[0]
    if not standardize:
        return np.zeros(n_rois), np.ones(n_rois)
    part = np.asarray(target[:, block.slice], dtype=np.float64)
    if not np.isfinite(part).all():
        bad = np.flatnonzero(~np.isfinite(part).all(axis=1)).tolist()
        raise ValueError(
            f"the BOLD series of ROI indices {bad} hold non-finite values in the {block.name} block."
        )
    mean, std = part.mean(axis=1), part.std(axis=1)
    if np.any(std <= 0):
        bad = np.flatnonzero(std <= 0).tolist()
        raise ValueError(
            f"the BOLD series of ROI indices {bad} are constant in the {block.name} block; "
            "check the atlas and the ROI names in data.rois."
        )
    return mean, std


def prepare_data(
    eeg: np.ndarray,
    sfreq_in: float,
    bold: np.ndarray,
    cfg: BeiraConfig,
    ch_names: tuple[str, ...] | list[str],
    rois: tuple[str, ...] | list[str],
    *,
    normalizer: Normalizer | None = None,
    target_stats: tuple[np.ndarray, np.ndarray] | None = None,
    preprocessed: bool = False,
) -> PreparedData:
    """Preprocess, align, split and normalise one recording.

    Parameters
    ----------
    eeg : array of shape (n_chans, n_samples)
        Raw EEG at ``sfreq_in`` (the loader's units, e.g. µV); with ``preprocessed``, the
        output of :func:`beira_rt.preprocessing.preprocess_recording` of it (model rate).
    sfreq_in : float
        EEG sampling rate in Hz.
    bold : array of shape (n_rois, n_bold)
        ROI BOLD at the model rate on the EEG's time grid (sample ``k`` at ``k / sfreq`` s);
        NaN where no volume covers the time (before the first, after the last onset).
    cfg : BeiraConfig
    ch_names, rois : sequence of str
        Names of the EEG channels and of the ROIs, in array order.
    normalizer : Normalizer or None
        EEG statistics to use (a bundle's); None fits them on the training block.
    target_stats : (mean, std) or None
        Target statistics to use, arrays of shape (n_rois,); None fits them on the training block.
    preprocessed : bool
        ``eeg`` is already preprocessed (from :mod:`offline.cache`).

    Returns
    -------
    PreparedData
    """
    sfreq = cfg.preprocessing.sfreq
    z = (
        np.asarray(eeg)
        if preprocessed
        else preprocess_recording(np.asarray(eeg), sfreq_in, cfg.preprocessing)
    )
    target_raw = align_targets(
        np.asarray(bold, dtype=np.float64), z.shape[1], delay_samples(cfg.model.bold_delay, sfreq)
    )
    first, stop = valid_span(target_raw)
    target_raw = target_raw[:, :stop]
    split = chronological_split(
        stop, sfreq, cfg.training.test_seconds, cfg.training.val_seconds, cfg.model.n_times, start=first
    )
    logger.info("split (aligned EEG/BOLD, %.1f s): %s", split.n_samples / sfreq, split.describe())
    if normalizer is None:
        normalizer = Normalizer.fit(z[:, split.train.slice])
    if target_stats is None:
        t_mean, t_std = fit_target_stats(target_raw, split.train, cfg.data.standardize_bold)
    else:
        t_mean, t_std = (np.asarray(a, dtype=np.float64) for a in target_stats)
    return PreparedData(
        eeg=normalizer.apply(z).astype(np.float32),
        target=((target_raw - t_mean[:, None]) / t_std[:, None]).astype(np.float32),
        target_raw=target_raw,
        split=split,
        normalizer=normalizer,
        target_mean=t_mean,
        target_std=t_std,
        ch_names=tuple(ch_names),
        rois=tuple(rois),
        sfreq_in=float(sfreq_in),
        sfreq=float(sfreq),
    )


def prepare_recording(recording: Any, cfg: BeiraConfig) -> PreparedData:
    """:func:`prepare_data` of a loaded :class:`~offline.loader.Recording` or a cached
    :class:`~offline.cache.PreprocessedRecording` (whose EEG is preprocessed already)."""
    pre = getattr(recording, "preprocessed", None)
    return prepare_data(
        recording.eeg if pre is None else pre, recording.sfreq, recording.bold, cfg, recording.ch_names,
        recording.roi_names, preprocessed=pre is not None,
    )  # fmt: skip


class WindowSampler:
    """Random windows of ``n_times`` samples lying wholly inside one block.

    Parameters
    ----------
    eeg : array of shape (n_chans, n_eeg)
        Normalised EEG.
    target : array of shape (n_rois, L)
        Normalised targets.
    block : Block
        The block the windows (inputs and targets) must lie in, usually the training block.
    n_times : int
        Window length in samples.
    rng : numpy.random.Generator
        Source of the window positions.

    Raises
    ------
    ValueError
        When the block is shorter than one window.
    """

    def __init__(
        self, eeg: np.ndarray, target: np.ndarray, block: Block, n_times: int, rng: np.random.Generator
    ) -> None:
        if len(block) < n_times:
            raise ValueError(
                f"the {block.name} block holds {len(block)} samples, fewer than one window of {n_times}."
            )
        self.block = block
        self.n_times = n_times
        self.rng = rng
        # views over the block only: a window can never reach outside it
        self._x = torch.from_numpy(np.ascontiguousarray(eeg[:, block.slice], dtype=np.float32))
        self._y = torch.from_numpy(np.ascontiguousarray(target[:, block.slice], dtype=np.float32))

    @property
    def n_positions(self) -> int:
        """Number of distinct window positions."""
        return len(self.block) - self.n_times + 1

    def starts(self, batch_size: int) -> np.ndarray:
        """``batch_size`` random window starts, absolute sample indices."""
        return self.block.start + self.rng.integers(0, self.n_positions, size=batch_size)

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch of random windows.

        Returns
        -------
        x : tensor of shape (batch_size, n_chans, n_times), float32
        y : tensor of shape (batch_size, n_rois, n_times), float32
        """
        return self.windows(self.starts(batch_size))

    def windows(self, starts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The windows that start at the given absolute sample indices (inside the block)."""
        rel = np.asarray(starts, dtype=np.int64) - self.block.start
        if rel.size and (rel.min() < 0 or rel.max() > self.n_positions - 1):
            raise ValueError(f"window starts {starts} reach outside the {self.block.name} block.")
        idx = torch.from_numpy(rel)
        x = self._x.unfold(1, self.n_times, 1)[:, idx].permute(1, 0, 2).contiguous()
        y = self._y.unfold(1, self.n_times, 1)[:, idx].permute(1, 0, 2).contiguous()
        return x, y


@dataclass(frozen=True)
class GroupData:
    """Several subjects' prepared recordings, each normalised with its own training-block statistics.

    A group model trains on windows from every subject's training block
    (:class:`GroupSampler`) and is validated on the mean over the subjects of each ROI's
    validation r (:func:`offline.train.train_model` takes a ``GroupData`` where it takes a
    :class:`PreparedData`).

    Attributes
    ----------
    parts : tuple of PreparedData
        One per subject, same channels and ROIs.
    subjects : tuple of str
    """

    parts: tuple[PreparedData, ...]
    subjects: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.parts or len(self.parts) != len(self.subjects):
            raise ValueError("a group needs at least one subject, and one name per subject.")
        first = self.parts[0]
        for name, part in zip(self.subjects, self.parts, strict=True):
            if part.ch_names != first.ch_names or part.rois != first.rois or part.sfreq != first.sfreq:
                raise ValueError(
                    f"subject {name} has other channels, ROIs or rate than {self.subjects[0]}: a group model "
                    "needs the same inputs and outputs for every subject."
                )

    @property
    def n_chans(self) -> int:
        """Number of EEG channels."""
        return self.parts[0].n_chans

    @property
    def n_rois(self) -> int:
        """Number of ROIs."""
        return self.parts[0].n_rois

    @property
    def sfreq(self) -> float:
        """Model rate in Hz."""
        return self.parts[0].sfreq

    @property
    def rois(self) -> tuple[str, ...]:
        """ROI names."""
        return self.parts[0].rois


class GroupSampler:
    """Random windows from the training blocks of several subjects, none across a subject's bounds.

    A window position is drawn uniformly over all subjects' positions together (a subject
    weighs by its training block's length). Same interface as :class:`WindowSampler`:
    :meth:`starts` returns flat position indices, :meth:`windows` the windows at them.
    """

    def __init__(self, group: GroupData, n_times: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.samplers = [WindowSampler(p.eeg, p.target, p.split.train, n_times, rng) for p in group.parts]
        self._offsets = np.cumsum([0] + [s.n_positions for s in self.samplers])

    @property
    def n_positions(self) -> int:
        """Number of distinct window positions over all subjects."""
        return int(self._offsets[-1])

    def starts(self, batch_size: int) -> np.ndarray:
        """``batch_size`` random flat positions (subject offset + position in its training block)."""
        return self.rng.integers(0, self.n_positions, size=batch_size)

    def windows(self, flat: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The windows at flat positions, in their order (see :meth:`WindowSampler.windows`)."""
        flat = np.asarray(flat, dtype=np.int64)
        which = np.searchsorted(self._offsets, flat, side="right") - 1
        xs, ys = [], []
        for k in range(flat.size):
            sampler = self.samplers[which[k]]
            x, y = sampler.windows(np.array([sampler.block.start + flat[k] - self._offsets[which[k]]]))
            xs.append(x)
            ys.append(y)
        return torch.cat(xs), torch.cat(ys)
