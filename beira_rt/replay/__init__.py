"""Replay recordings as real-time LSL streams (``beira-replay``).

* :mod:`~beira_rt.replay.recording` — open any file MNE reads; channels, units, annotations.
* :mod:`~beira_rt.replay.truth` — the delay-aligned ROI truth (TSV; ``beira-train truth`` writes one).
* :mod:`~beira_rt.replay.outlets` — the LSL stream descriptions.
* :mod:`~beira_rt.replay.player` — :class:`Player`, drift-free pacing on the LSL clock.
* :mod:`~beira_rt.replay.xdf` — :class:`XdfPlayer`: every stream of an XDF file (LabRecorder's
  format) with its name, description and recorded timing.
"""

from beira_rt.lsl import INDEX_CHANNEL
from beira_rt.replay.player import Player
from beira_rt.replay.recording import ReplayError, ReplayRecording, load_recording
from beira_rt.replay.stats import ReplayStats
from beira_rt.replay.truth import (
    TruthSeries,
    read_truth_tsv,
    truth_from_volumes,
)
from beira_rt.replay.xdf import XdfPlayer, XdfRecording, is_xdf, load_xdf_recording

__all__ = [
    "INDEX_CHANNEL",
    "Player",
    "ReplayError",
    "ReplayRecording",
    "ReplayStats",
    "TruthSeries",
    "XdfPlayer",
    "XdfRecording",
    "is_xdf",
    "load_recording",
    "load_xdf_recording",
    "read_truth_tsv",
    "truth_from_volumes",
]
