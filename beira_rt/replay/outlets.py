"""LSL stream descriptions of a replay: the EEG, its markers and the ROI truth.

All three follow docs/CONTRACTS.md ("Replay"): the EEG stream has the type ``EEG`` and the
given name, the markers ``<name>-markers`` (type ``Markers``), the truth ``<name>-truth``
(type ``sBOLDTruth``). Channel metadata sits under ``channels/channel/{label,type,unit}`` so
that mne-lsl, LabRecorder and the live engine show and map channels by name.
"""

from __future__ import annotations

from beira_rt.replay.recording import ReplayRecording
from beira_rt.replay.truth import TruthSeries

__all__ = ["INDEX_CHANNEL", "eeg_info", "marker_info", "truth_info"]

#: Label of the optional sample-index channel (type MISC, unit none).
INDEX_CHANNEL = "SAMPLE_INDEX"
#: The index channel counts modulo this (float32 holds every integer below it exactly).
INDEX_MODULO = 2**24


def _channels(info, labels, types, units) -> None:
    chans = info.desc().append_child("channels")
    for label, ctype, unit in zip(labels, types, units, strict=True):
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("type", ctype)
        ch.append_child_value("unit", unit)


def _replay_desc(info, recording: ReplayRecording, speed: float, start: float, loop: bool) -> None:
    node = info.desc().append_child("beira_replay")
    node.append_child_value("source", recording.source)
    node.append_child_value("sfreq_file", repr(recording.sfreq))
    # time stamps advance by 1 / (sfreq * speed) per sample; nominal_srate stays the file's rate
    node.append_child_value("speed", repr(float(speed)))
    node.append_child_value("start", repr(float(start)))
    node.append_child_value("loop", "true" if loop else "false")


def eeg_info(
    recording: ReplayRecording,
    name: str,
    source_id: str,
    *,
    speed: float,
    start: float,
    loop: bool,
    index_channel: bool,
):
    """The EEG stream's info: float32, nominal rate = the file's rate, one channel per file channel.

    With ``index_channel`` a last channel ``SAMPLE_INDEX`` (type MISC, unit none) carries the
    replay's sample counter modulo 2**24 (continuous across loops).
    """
    import pylsl

    labels, types, units = list(recording.ch_names), list(recording.ch_types), list(recording.units)
    if index_channel:
        labels.append(INDEX_CHANNEL)
        types.append("MISC")
        units.append("none")
    info = pylsl.StreamInfo(name, "EEG", len(labels), recording.sfreq, pylsl.cf_float32, source_id)
    _channels(info, labels, types, units)
    info.desc().append_child("acquisition").append_child_value("manufacturer", "beira-replay")
    _replay_desc(info, recording, speed, start, loop)
    return info


def marker_info(name: str, source_id: str):
    """The marker stream's info: one string channel, irregular rate."""
    import pylsl

    info = pylsl.StreamInfo(
        f"{name}-markers", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, f"{source_id}-markers"
    )
    _channels(info, ["Marker"], ["Markers"], ["none"])
    return info


def truth_info(name: str, source_id: str, truth: TruthSeries, *, speed: float):
    """The truth stream's info: one float32 channel per ROI at the model rate."""
    import pylsl

    info = pylsl.StreamInfo(
        f"{name}-truth", "sBOLDTruth", len(truth.rois), truth.sfreq, pylsl.cf_float32, f"{source_id}-truth"
    )
    _channels(info, list(truth.rois), ["sBOLDTruth"] * len(truth.rois), ["a.u."] * len(truth.rois))
    node = info.desc().append_child("beira")
    node.append_child_value("bold_delay", repr(truth.bold_delay))
    node.append_child_value("sfreq_model", repr(truth.sfreq))
    node.append_child_value("speed", repr(float(speed)))
    return info
