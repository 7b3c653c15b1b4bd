"""Small recordings written with the real writers (eeglabio .set, MNE .fif) for the replay tests.

Channel ``c`` of sample ``i`` holds ``value_uv(i, c)`` microvolts, so a consumer can check any
sample it receives against the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CH_NAMES = ("Fp1", "Fz", "Cz", "Oz", "EOG")
CH_TYPES = ("eeg", "eeg", "eeg", "eeg", "eog")


def value_uv(i: np.ndarray, c: int) -> np.ndarray:
    """Published value (µV) of channel ``c`` at file samples ``i``: an exact, distinct ramp."""
    return (np.asarray(i) % 1000) * 0.5 + 1000.0 * c


def make_raw(
    seconds: float = 2.0,
    sfreq: float = 1000.0,
    annotations: tuple[tuple[float, str], ...] = ((0.25, "mri"), (0.5003, "R"), (1.25, "mri")),
    ch_types: tuple[str, ...] = CH_TYPES,
):
    """A RawArray of ``len(ch_types)`` channels (data in volts) with point annotations."""
    import mne

    n = round(seconds * sfreq)
    names = (
        list(CH_NAMES[: len(ch_types)])
        if len(ch_types) <= len(CH_NAMES)
        else [f"C{c}" for c in range(len(ch_types))]
    )
    data = np.stack([value_uv(np.arange(n), c) for c in range(len(ch_types))]) * 1e-6
    raw = mne.io.RawArray(data, mne.create_info(names, sfreq, list(ch_types)), verbose="error")
    annotations = tuple(a for a in annotations if a[0] < seconds)
    if annotations:
        onsets, labels = zip(*annotations, strict=True)
        raw.set_annotations(mne.Annotations(list(onsets), [0.0] * len(onsets), list(labels)))
    return raw


def write_set(path: Path, raw) -> Path:
    """EEGLAB .set through MNE's exporter (eeglabio), as CWL ships its EEG."""
    raw.export(path, fmt="eeglab", overwrite=True, verbose="error")
    return path


def write_fif(path: Path, raw) -> Path:
    raw.save(path, overwrite=True, verbose="error")
    return path


def write_volume_tsv(path: Path, rois: tuple[str, ...], bold: np.ndarray) -> Path:
    """One row per volume, a header of ROI names."""
    lines = ["\t".join(rois)] + ["\t".join(repr(float(v)) for v in row) for row in bold]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_brainvision(path: Path, raw) -> Path:
    """BrainVision triplet (.vhdr / .vmrk / .eeg, IEEE float32, µV) written per the format spec.

    The point annotations become ``Stimulus`` markers, which MNE reads back as
    ``Stimulus/<description>``.
    """
    stem = path.with_suffix("")
    data_uv = raw.get_data() * 1e6
    data_uv.T.astype("<f4").tofile(stem.with_suffix(".eeg"))
    sfreq = raw.info["sfreq"]
    lines = [
        "Brain Vision Data Exchange Header File Version 1.0",
        "[Common Infos]",
        "Codepage=UTF-8",
        f"DataFile={stem.name}.eeg",
        f"MarkerFile={stem.name}.vmrk",
        "DataFormat=BINARY",
        "DataOrientation=MULTIPLEXED",
        f"NumberOfChannels={len(raw.ch_names)}",
        f"SamplingInterval={1e6 / sfreq:g}",
        "[Binary Infos]",
        "BinaryFormat=IEEE_FLOAT_32",
        "[Channel Infos]",
    ] + [f"Ch{i + 1}={name},,1,µV" for i, name in enumerate(raw.ch_names)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    marks = ["Brain Vision Data Exchange Marker File, Version 1.0", "[Common Infos]", "Codepage=UTF-8",
             f"DataFile={stem.name}.eeg", "[Marker Infos]", "Mk1=New Segment,,1,1,0"]  # fmt: skip
    for i, (onset, desc) in enumerate(zip(raw.annotations.onset, raw.annotations.description, strict=True)):
        marks.append(f"Mk{i + 2}=Stimulus,{desc},{round(onset * sfreq) + 1},1,0")  # 1-based positions
    stem.with_suffix(".vmrk").write_text("\n".join(marks) + "\n", encoding="utf-8")
    return path
