"""EEG side of the loader: read the file, pick the model channels, find volume markers."""

from __future__ import annotations

import fnmatch
from collections import Counter
from pathlib import Path

import mne
import numpy as np

from beira_rt._logging import logger
from beira_rt.config import DataConfig
from offline.loader.recording import DataError, MissingFileError


def read_eeg(path: str | Path, *, eeglab: bool = False) -> mne.io.BaseRaw:
    """Read an EEG file with MNE (data preloaded).

    Parameters
    ----------
    path : str or Path
        Any file :func:`mne.io.read_raw` understands (EEGLAB .set, BrainVision
        .vhdr, EDF, FIF, ...).
    eeglab : bool
        Use :func:`mne.io.read_raw_eeglab` directly (the CWL files).

    Raises
    ------
    MissingFileError
        If the file does not exist.
    DataError
        If MNE cannot read it.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"EEG file {path.resolve()} does not exist.")
    try:
        if eeglab:
            return mne.io.read_raw_eeglab(path, preload=True, verbose="error")
        return mne.io.read_raw(path, preload=True, verbose="error")
    except (ValueError, OSError, KeyError, TypeError) as err:
        raise DataError(f"MNE could not read the EEG file {path}: {err}") from err


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name.upper(), p.upper()) for p in patterns)


def pick_eeg_channels(raw: mne.io.BaseRaw, cfg: DataConfig) -> list[str]:
    """Names of the EEG channels the model uses, in order.

    Channels whose name matches a ``cfg.drop_channels`` pattern (case-insensitive
    fnmatch: ``*EOG*``, ``ECG*``, ``EKG*``, ``EMG*``, ``CW*``) are dropped whatever their type (the CWL
    files type every channel as EEG); so are channels MNE types as anything other
    than EEG. With ``cfg.eeg_channels`` set, exactly those channels are used, in
    that order.

    Raises
    ------
    DataError
        If a requested channel is missing, or fewer than ``cfg.min_eeg_channels``
        EEG channels remain.
    """
    types = dict(zip(raw.ch_names, raw.get_channel_types(), strict=True))
    if cfg.eeg_channels is not None:
        missing = [c for c in cfg.eeg_channels if c not in types]
        if missing:
            raise DataError(
                f"EEG channel(s) {missing} requested by data.eeg_channels are not in the recording; "
                f"it has {list(raw.ch_names)}."
            )
        names = list(cfg.eeg_channels)
    else:
        dropped = [c for c in raw.ch_names if _matches(c, cfg.drop_channels) or types[c] != "eeg"]
        names = [c for c in raw.ch_names if c not in dropped]
        if dropped:
            logger.debug("dropped non-EEG channels %s", dropped)
    if len(names) < cfg.min_eeg_channels:
        raise DataError(
            f"only {len(names)} EEG channel(s) left after dropping {list(cfg.drop_channels)} "
            f"({names}); at least data.min_eeg_channels = {cfg.min_eeg_channels} are needed. "
            f"The file has {list(raw.ch_names)}: check data.drop_channels / data.eeg_channels."
        )
    return names


def relative_annotations(raw: mne.io.BaseRaw) -> mne.Annotations:
    """The file's annotations with onsets in s from the first EEG sample (``orig_time=None``)."""
    ann = raw.annotations
    onsets = np.asarray(ann.onset, dtype=float)
    if ann.orig_time is not None:
        onsets = onsets - raw.first_time
    return mne.Annotations(onsets, ann.duration, ann.description, orig_time=None)


def volume_onsets(annotations: mne.Annotations, marker: str, source: str | Path) -> np.ndarray:
    """Onsets (s) of the volume-marker annotations, sorted, shape (n_markers,).

    Raises
    ------
    DataError
        If there are fewer than 2 such markers; the message lists the annotation
        names found and how often each occurs.
    """
    desc = np.asarray(annotations.description)
    onsets = np.sort(np.asarray(annotations.onset, dtype=float)[desc == marker])
    if onsets.size < 2:
        found = Counter(desc.tolist())
        listing = ", ".join(f"{k!r} x{v}" for k, v in sorted(found.items())) or "none"
        raise DataError(
            f"{source} has {onsets.size} '{marker}' annotation(s) marking fMRI volumes; at least 2 are "
            f"needed. Annotations found: {listing}. Set data.volume_marker to the name that marks volumes."
        )
    return onsets


def check_tr(onsets: np.ndarray, warnings: list[str]) -> float:
    """Repetition time (median marker interval, s); irregular intervals add a warning."""
    diffs = np.diff(onsets)
    tr = float(np.median(diffs))
    if tr <= 0:
        raise DataError(f"volume markers do not advance in time (median interval {tr} s).")
    odd = np.flatnonzero(np.abs(diffs - tr) > 0.1 * tr)
    if odd.size:
        message = (
            f"{odd.size} of {diffs.size} volume-marker intervals differ from the median TR {tr:.3f} s by "
            f"more than 10% (first at marker {odd[0]}: {diffs[odd[0]]:.3f} s); a marker may be missing."
        )
        logger.warning(message)
        warnings.append(message)
    return tr
