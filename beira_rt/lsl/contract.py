"""The stream contract of beira-rt: names, types and channel labels every part agrees on.

docs/CONTRACTS.md ("LSL streams", "Replay") describes them in words; code names
them only through this module.

========================  =================  ==========================================
stream                    type               name
========================  =================  ==========================================
EEG (replay, amplifier)   ``EEG``            any (``--source``)
replay markers            ``Markers``        ``<eeg>-markers``
replay ROI truth          ``sBOLDTruth``     ``<eeg>-truth``
engine predictions        ``sBOLD``          ``BEIRA`` (``live.outlet_name``)
engine status (JSON)      ``BEIRAStatus``    ``<predictions>-status``
========================  =================  ==========================================
"""

from __future__ import annotations

__all__ = [
    "BEIRA_DESC_KEYS",
    "EEG_TYPE",
    "INDEX_CHANNEL",
    "INDEX_MODULO",
    "MARKERS_TYPE",
    "PREDICTION_TYPE",
    "QUALITY_LABEL",
    "STATUS_TYPE",
    "TRUTH_TYPE",
    "markers_name",
    "roi_columns",
    "status_name",
    "truth_name",
]

EEG_TYPE = "EEG"
MARKERS_TYPE = "Markers"
TRUTH_TYPE = "sBOLDTruth"
PREDICTION_TYPE = "sBOLD"
STATUS_TYPE = "BEIRAStatus"

#: Label of the prediction stream's last channel (type ``MISC``): the share of the model window
#: that is real data (1.0; less after a bridged outage). Consumers map channels by label.
QUALITY_LABEL = "quality"
#: Label of the replay's optional sample-index channel (type MISC, unit none).
INDEX_CHANNEL = "SAMPLE_INDEX"
#: The index channel counts modulo this (float32 holds every integer below it exactly).
INDEX_MODULO = 2**24
#: Children of ``desc/beira`` on the prediction stream (``source`` is the EEG stream's name).
BEIRA_DESC_KEYS = ("model_hash", "bold_delay", "lookahead", "sfreq_model", "device", "source")


def status_name(predictions: str) -> str:
    """Name of the engine's status stream for a prediction stream ``predictions``."""
    return f"{predictions}-status"


def truth_name(eeg: str) -> str:
    """Name of the replay's ROI truth stream for an EEG stream ``eeg``."""
    return f"{eeg}-truth"


def markers_name(eeg: str) -> str:
    """Name of the replay's marker stream for an EEG stream ``eeg``."""
    return f"{eeg}-markers"


def roi_columns(labels: list[str] | tuple[str, ...]) -> list[int]:
    """Columns of a prediction stream that hold ROI values (every channel but :data:`QUALITY_LABEL`)."""
    return [i for i, lab in enumerate(labels) if lab != QUALITY_LABEL]
