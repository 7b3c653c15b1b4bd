"""LSL stream descriptions of a replay: the EEG, its markers and the ROI truth.

All three follow docs/CONTRACTS.md ("Replay"): the EEG stream has the type ``EEG`` and the
given name, the markers ``<name>-markers`` (type ``Markers``), the truth ``<name>-truth``
(type ``sBOLDTruth``). Channel metadata sits under ``channels/channel/{label,type,unit}`` so
that mne-lsl, LabRecorder and the live engine show and map channels by name.
"""

from __future__ import annotations

from beira_rt.lsl import (
    EEG_TYPE,
    INDEX_CHANNEL,
    MARKERS_TYPE,
    TRUTH_TYPE,
    markers_name,
    truth_name,
    write_channels,
    write_values,
)
from beira_rt.replay.recording import ReplayRecording
from beira_rt.replay.truth import TruthSeries

__all__ = ["eeg_info", "marker_info", "truth_info"]


def _replay_desc(info, recording: ReplayRecording, speed: float, start: float, loop: bool) -> None:
    # time stamps advance by 1 / (sfreq * speed) per sample; nominal_srate stays the file's rate
    write_values(
        info,
        "beira_replay",
        {
            "source": recording.source,
            "sfreq_file": float(recording.sfreq),
            "speed": float(speed),
            "start": float(start),
            "loop": "true" if loop else "false",
        },
    )


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
    info = pylsl.StreamInfo(name, EEG_TYPE, len(labels), recording.sfreq, pylsl.cf_float32, source_id)
    write_channels(info, labels, types, units)
    info.desc().append_child("acquisition").append_child_value("manufacturer", "beira-replay")
    _replay_desc(info, recording, speed, start, loop)
    return info


def marker_info(name: str, source_id: str):
    """The marker stream's info: one string channel, irregular rate."""
    import pylsl

    info = pylsl.StreamInfo(
        markers_name(name), MARKERS_TYPE, 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, f"{source_id}-markers"
    )
    write_channels(info, ["Marker"], [MARKERS_TYPE], ["none"])
    return info


def truth_info(name: str, source_id: str, truth: TruthSeries, *, speed: float):
    """The truth stream's info: one float32 channel per ROI at the model rate."""
    import pylsl

    n = len(truth.rois)
    info = pylsl.StreamInfo(
        truth_name(name), TRUTH_TYPE, n, truth.sfreq, pylsl.cf_float32, f"{source_id}-truth"
    )
    write_channels(info, list(truth.rois), [TRUTH_TYPE] * n, ["a.u."] * n)
    write_values(
        info,
        "beira",
        {"bold_delay": float(truth.bold_delay), "sfreq_model": float(truth.sfreq), "speed": float(speed)},
    )
    return info
