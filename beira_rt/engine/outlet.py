"""The engine's LSL outlets: sBOLD predictions and a low-rate JSON status stream.

Both follow docs/CONTRACTS.md ("LSL streams"). The prediction stream has one
float32 channel per ROI, labelled with the ROI name, and carries the model
hash, BOLD delay, look-ahead, model rate and device in its description so that
LabRecorder and mne-lsl show them.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pylsl

from beira_rt.lsl import (
    PREDICTION_TYPE,
    QUALITY_LABEL,
    STATUS_TYPE,
    status_name,
    write_channels,
    write_values,
)

__all__ = ["PredictionOutlet", "StatusOutlet"]


class PredictionOutlet:
    """The ``sBOLD`` prediction stream.

    Parameters
    ----------
    name : str
        Stream name (``BEIRA`` by default).
    rois : tuple of str
        ROI names, one channel each, in model output order.
    hop : float
        Seconds between predictions (nominal rate ``1 / hop``).
    model_hash : str
        Content hash of the bundle.
    bold_delay : float
        Haemodynamic delay in seconds: a prediction is the sBOLD expected this
        long after the EEG timestamp it carries (+ the look-ahead).
    lookahead : float
        Look-ahead in seconds (predictions are stamped this much before the newest EEG used).
    sfreq_model : float
        Model rate in Hz.
    device : str
        Inference device.
    source : str
        Name of the EEG stream the predictions come from.
    """

    def __init__(
        self,
        name: str,
        rois: tuple[str, ...],
        hop: float,
        model_hash: str,
        bold_delay: float,
        lookahead: float,
        sfreq_model: float,
        device: str,
        source: str,
    ) -> None:
        source_id = f"{name}-{model_hash[:12]}-{source}"
        info = pylsl.StreamInfo(name, PREDICTION_TYPE, len(rois) + 1, 1.0 / hop, "float32", source_id)
        n = len(rois)
        write_channels(
            info, [*rois, QUALITY_LABEL], [PREDICTION_TYPE] * n + ["MISC"], ["a.u."] * n + ["ratio"]
        )
        write_values(
            info,
            "beira",
            {
                "model_hash": model_hash,
                "bold_delay": float(bold_delay),
                "lookahead": float(lookahead),
                "sfreq_model": float(sfreq_model),
                "device": device,
                "source": source,
            },
        )
        self.name = name
        self.n_rois = len(rois)
        self._outlet: pylsl.StreamOutlet | None = pylsl.StreamOutlet(info, chunk_size=1, max_buffered=60)

    def push(self, values: np.ndarray, stamp: float, quality: float = 1.0) -> None:
        """Publish one prediction.

        Parameters
        ----------
        values : ndarray, shape (n_rois,)
            sBOLD per ROI (de-normalised, a.u.).
        stamp : float
            LSL timestamp in seconds: the newest EEG sample used, minus the look-ahead.
        quality : float
            Share of the model window that is real data (0..1), the last channel.
        """
        if self._outlet is None:
            raise RuntimeError("PredictionOutlet.push() was called after close().")
        sample = np.empty(self.n_rois + 1, dtype=np.float32)
        sample[: self.n_rois] = values
        sample[self.n_rois] = quality
        self._outlet.push_sample(sample, timestamp=stamp)

    def have_consumers(self) -> bool:
        return self._outlet is not None and self._outlet.have_consumers()

    def close(self) -> None:
        """Destroy the outlet (consumers see the stream end)."""
        self._outlet = None


def _finite_or_none(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class StatusOutlet:
    """The ``<name>-status`` stream: one JSON object per message, irregular rate.

    Parameters
    ----------
    name : str
        Name of the prediction stream; the status stream is ``<name>-status``.
    source_id : str
        Source id suffix (the prediction stream's context).
    """

    def __init__(self, name: str, source_id: str) -> None:
        info = pylsl.StreamInfo(
            status_name(name), STATUS_TYPE, 1, pylsl.IRREGULAR_RATE, "string", f"{source_id}-status"
        )
        write_channels(info, ["status"], ["JSON"], ["none"])
        self._outlet: pylsl.StreamOutlet | None = pylsl.StreamOutlet(info)

    def push(self, status: dict) -> None:
        """Publish one status object (non-finite numbers become ``null``)."""
        if self._outlet is None:
            raise RuntimeError("StatusOutlet.push() was called after close().")
        text = json.dumps({k: _finite_or_none(v) for k, v in status.items()}, allow_nan=False)
        self._outlet.push_sample([text], timestamp=pylsl.local_clock())

    def have_consumers(self) -> bool:
        return self._outlet is not None and self._outlet.have_consumers()

    def close(self) -> None:
        """Destroy the outlet."""
        self._outlet = None
