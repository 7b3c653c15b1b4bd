"""A recording prepared for replay: channels, units, annotations and block-wise sample access.

Any file :func:`mne.io.read_raw` reads can be replayed (EEGLAB ``.set`` as in CWL, ``.fif``,
``.edf``, ``.bdf``, ``.vhdr``, ...), as can an in-memory :class:`mne.io.BaseRaw`.

Units: every channel whose unit in the file is volts (EEG, EOG, ECG, EMG, ...) is published in
microvolts, the LSL convention for EEG, and its ``unit`` in the stream description is
``microvolts`` (mne-lsl's StreamLSL reads it back as a x1e-6 scale, and the live engine reads
the same key). Other channels keep their file value and their unit name (``none`` when the
file gives none). Stim channels are left out: events reach the consumer as markers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from beira_rt._logging import logger

__all__ = ["ReplayError", "ReplayRecording", "load_recording"]

#: Above this many bytes (float32) the samples are read from the file block by block
#: while streaming instead of all at once before the first push.
PRELOAD_LIMIT_BYTES = 512 * 2**20
#: Samples per block when streaming block by block.
BLOCK_SAMPLES = 2**15

#: LSL / XDF spelling of the MNE channel types (anything else is upper-cased).
_LSL_TYPES = {"eeg": "EEG", "eog": "EOG", "ecg": "ECG", "emg": "EMG", "misc": "MISC", "resp": "RESP"}


class ReplayError(ValueError):
    """The recording, the truth series or the replay settings cannot be used; the message says why."""


@dataclass
class ReplayRecording:
    """A recording ready to be streamed.

    Attributes
    ----------
    raw : mne.io.BaseRaw
        The recording (data possibly not loaded).
    source : str
        Where it came from (the file path, or ``"<in-memory Raw>"``).
    picks : array of shape (n_channels,)
        Indices of the streamed channels in ``raw``.
    ch_names, ch_types, units : tuple of str
        Label, LSL type (``"EEG"``, ``"EOG"``, ...) and unit name of each streamed channel.
    scales : array of shape (n_channels,)
        Factor from the file's SI value to the published value (1e6 for volts -> microvolts).
    sfreq : float
        Sampling rate of the file in Hz.
    marker_times : array of shape (n_markers,)
        Onset of each annotation in seconds from the first sample of the file, sorted.
    marker_samples : array of shape (n_markers,)
        The nearest sample index of each onset (a marker is sent with that sample).
    marker_labels : tuple of str
        The annotation descriptions, in the same order.
    """

    raw: object
    source: str
    picks: np.ndarray
    ch_names: tuple[str, ...]
    ch_types: tuple[str, ...]
    units: tuple[str, ...]
    scales: np.ndarray
    sfreq: float
    marker_times: np.ndarray
    marker_samples: np.ndarray
    marker_labels: tuple[str, ...]
    _block: np.ndarray | None = field(default=None, repr=False)
    _block_start: int = field(default=0, repr=False)

    @property
    def n_times(self) -> int:
        """Number of samples in the file."""
        return int(self.raw.n_times)

    @property
    def n_channels(self) -> int:
        """Number of streamed channels."""
        return len(self.ch_names)

    @property
    def duration(self) -> float:
        """Length of the recording in seconds (``n_times / sfreq``)."""
        return self.n_times / self.sfreq

    def volume_onsets(self, marker: str) -> np.ndarray:
        """Onsets in seconds (from the first sample) of the annotations named ``marker``.

        Raises
        ------
        ReplayError
            When the recording has no annotation of that name; the message lists the names it has.
        """
        labels = np.asarray(self.marker_labels, dtype=object)
        found = self.marker_times[labels == marker] if labels.size else np.empty(0)
        if found.size == 0:
            have = ", ".join(repr(x) for x in sorted(set(self.marker_labels))) or "none"
            raise ReplayError(
                f"{self.source} has no annotation named {marker!r} to align the truth series with "
                f"(annotations found: {have}); give the volume marker name with --volume-marker."
            )
        return found

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` in published units.

        Parameters
        ----------
        start, stop : int
            Sample range, ``0 <= start <= stop <= n_times``.

        Returns
        -------
        array of shape (stop - start, n_channels), float32
            A view into the current block: copy it before the next call if it must be kept.
        """
        block = self._block
        if block is None or start < self._block_start or stop > self._block_start + block.shape[0]:
            self._load_block(start, stop)
            block = self._block
        return block[start - self._block_start : stop - self._block_start]

    def preload(self) -> None:
        """Read all samples now when they fit in :data:`PRELOAD_LIMIT_BYTES`, else the first block."""
        self._load_block(0, min(self.n_times, BLOCK_SAMPLES))

    def _load_block(self, start: int, stop: int) -> None:
        whole = self.n_times * self.n_channels * 4 <= PRELOAD_LIMIT_BYTES
        if whole:
            start, stop = 0, self.n_times
        else:
            stop = min(self.n_times, max(stop, start + BLOCK_SAMPLES))
        try:
            data = self.raw.get_data(picks=self.picks, start=start, stop=stop)
        except Exception as err:
            # as in _read_raw: the reader's own error type says nothing more than "unreadable"
            raise ReplayError(
                f"could not read samples {start}-{stop} of {self.source} ({type(err).__name__}: {err}); "
                "the file may be truncated or changed since it was opened."
            ) from err
        block = np.empty((stop - start, self.n_channels), dtype=np.float32)
        np.multiply(data.T, self.scales, out=block, casting="same_kind")
        self._block, self._block_start = block, start


def _unit_name(unit: int) -> tuple[str, float]:
    """Published unit name and scale for an MNE/FIFF unit code."""
    from mne.io.constants import FIFF

    if unit == FIFF.FIFF_UNIT_V:
        return "microvolts", 1e6
    if unit == FIFF.FIFF_UNIT_NONE:
        return "none", 1.0
    name = getattr(unit, "_name", str(unit))
    return name.removeprefix("FIFF_UNIT_"), 1.0


def _read_raw(path: Path):
    import mne

    if not path.exists():
        raise ReplayError(f"recording {path} does not exist; check the path.")
    if path.is_dir() and path.suffix.lower() not in (".ds", ".mff"):
        raise ReplayError(f"{path} is a folder, not a recording; give the recording file (e.g. the .set).")
    try:
        return mne.io.read_raw(path, preload=False, verbose="error")
    except Exception as err:
        # MNE's readers raise whatever their parser hits on a damaged or foreign file
        # (ValueError, AttributeError, scipy's MatReadError, ...): every one of them means
        # "cannot read this file", so it is reported as such, with the reader's own words.
        raise ReplayError(
            f"could not read {path} as a recording ({type(err).__name__}: {err}); "
            "give a file MNE reads (.set, .fif, .edf, .bdf, .vhdr, ...)."
        ) from err


def load_recording(recording: str | Path | object) -> ReplayRecording:
    """Open a recording for replay (samples are read later, see :meth:`ReplayRecording.read`).

    Parameters
    ----------
    recording : str | Path | mne.io.BaseRaw
        A file MNE reads, or a Raw already in memory.

    Returns
    -------
    ReplayRecording

    Raises
    ------
    ReplayError
        When the file does not exist or cannot be read, or has no EEG channel.
    """
    import mne

    if isinstance(recording, mne.io.BaseRaw):
        raw, source = recording, "<in-memory Raw>"
    elif isinstance(recording, str | Path):
        raw, source = _read_raw(Path(recording)), str(recording)
    else:
        raise ReplayError(
            f"a recording must be a file path or an mne.io.Raw, got {type(recording).__name__}."
        )
    mne_types = raw.get_channel_types()
    if "eeg" not in mne_types:
        found = ", ".join(sorted(set(mne_types))) or "no channels"
        raise ReplayError(
            f"{source} has no EEG channels (channel types found: {found}); replay needs EEG. "
            "Set the channel types in the file (mne: raw.set_channel_types) and save it again."
        )
    picks = np.array([i for i, t in enumerate(mne_types) if t != "stim"], dtype=np.int64)
    if picks.size < len(mne_types):
        logger.info("%s: %d stim channel(s) left out of the EEG stream", source, len(mne_types) - picks.size)
    names, types, units, scales = [], [], [], []
    for i in picks:
        ch = raw.info["chs"][i]
        unit, scale = _unit_name(ch["unit"])
        names.append(raw.ch_names[i])
        types.append(_LSL_TYPES.get(mne_types[i], mne_types[i].upper()))
        units.append(unit)
        scales.append(scale)
    times, samples, labels = _annotation_samples(raw, source)
    return ReplayRecording(
        raw=raw,
        source=source,
        picks=picks,
        ch_names=tuple(names),
        ch_types=tuple(types),
        units=tuple(units),
        scales=np.asarray(scales, dtype=np.float64),
        sfreq=float(raw.info["sfreq"]),
        marker_times=times,
        marker_samples=samples,
        marker_labels=labels,
    )


def _annotation_samples(raw, source: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Annotation onsets from the first sample of the data: seconds, nearest sample, descriptions.

    MNE keeps onsets on the time axis of ``first_samp`` (a cropped FIF starts at
    ``raw.first_time``, with or without a measurement date), so ``onset - first_time`` is the
    time from the first sample of the data, as in :func:`mne.events_from_annotations`.
    """
    ann = raw.annotations
    if len(ann) == 0:
        return np.empty(0), np.empty(0, dtype=np.int64), ()
    times = np.asarray(ann.onset, dtype=np.float64) - raw.first_time
    idx = np.round(times * raw.info["sfreq"]).astype(np.int64)
    keep = (idx >= 0) & (idx < raw.n_times)
    if not keep.all():
        logger.warning(
            "%s: %d annotation(s) lie outside the recorded samples and will not be sent",
            source,
            (~keep).sum(),
        )
    order = np.argsort(times[keep], kind="stable")
    labels = np.asarray(ann.description, dtype=object)[keep][order]
    return times[keep][order], idx[keep][order], tuple(str(x) for x in labels)
