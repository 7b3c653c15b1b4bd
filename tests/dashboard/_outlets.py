"""Test outlets for the dashboard, built from docs/CONTRACTS.md ("LSL streams").

Predictions (type sBOLD, ROI-labelled, ``desc/beira``), truth (type sBOLDTruth),
and the engine status (type BEIRAStatus, JSON strings). Each publisher runs in a
worker thread until its stop event is set; then its outlet is destroyed, which
consumers see as a lost stream.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from beira_rt.config import DEFAULT_ROIS
from beira_rt.lsl import QUALITY_LABEL
from tests._lsl_source import labelled_info

MODEL_HASH = "0123456789abcdef" * 4


def roi_signal(t: np.ndarray, n_rois: int = len(DEFAULT_ROIS)) -> np.ndarray:
    """A smooth, distinct test waveform per ROI, array of shape (len(t), n_rois)."""
    periods = 6.0 + 1.7 * np.arange(n_rois)
    return np.sin(2 * np.pi * t[:, None] / periods[None, :] + np.arange(n_rois)[None, :])


def _labelled_info(name: str, stype: str, labels: tuple[str, ...], rate: float, source_id: str):
    n = len(labels)
    return labelled_info(name, stype, list(labels), rate, "float32", source_id, ["a.u."] * n, [stype] * n)


@dataclass
class RoiPublisher:
    """Publish predictions (and optionally truth) at ``rate`` Hz in real time.

    Predictions are ``roi_signal(t)``; the truth carries the same ROIs in
    reversed channel order, multiplied per ROI by ``truth_signs``, at stamps
    shifted by ``truth_offset`` s (so matching needs labels and interpolation).
    """

    name: str
    source_id: str
    rate: float = 10.0
    truth_name: str | None = None
    truth_signs: dict[str, float] = field(default_factory=dict)
    truth_offset: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    pushed: int = 0

    def run(self) -> int:
        import pylsl

        # as the engine publishes: the ROIs, then its window quality (docs/CONTRACTS.md)
        info = _labelled_info(self.name, "sBOLD", (*DEFAULT_ROIS, QUALITY_LABEL), self.rate, self.source_id)
        beira = info.desc().append_child("beira")
        for key, value in (
            ("model_hash", MODEL_HASH),
            ("bold_delay", "6.0"),
            ("lookahead", "0.5"),
            ("sfreq_model", "100.0"),
            ("device", "cpu"),
        ):
            beira.append_child_value(key, value)
        outlet = pylsl.StreamOutlet(info, chunk_size=1)
        truth_out = None
        truth_labels = DEFAULT_ROIS[::-1]
        signs = np.array([self.truth_signs.get(label, 1.0) for label in truth_labels])
        if self.truth_name is not None:
            tinfo = _labelled_info(
                self.truth_name, "sBOLDTruth", truth_labels, self.rate, self.source_id + "-truth"
            )
            truth_out = pylsl.StreamOutlet(tinfo, chunk_size=1)
        t0 = pylsl.local_clock()
        k = 0
        try:
            while not self.stop.is_set():
                stamp = t0 + k / self.rate
                delay = stamp - pylsl.local_clock()
                if delay > 0:
                    self.stop.wait(delay)
                sample = np.append(roi_signal(np.array([k / self.rate]))[0], 1.0).astype(np.float32)
                outlet.push_sample(sample, stamp)
                if truth_out is not None:
                    t_truth = k / self.rate + self.truth_offset
                    values = roi_signal(np.array([t_truth]))[0][::-1] * signs
                    truth_out.push_sample(values.astype(np.float32), t0 + t_truth)
                k += 1
                self.pushed = k
        finally:
            del outlet, truth_out
        return k


@dataclass
class StatusPublisher:
    """Publish the engine status as JSON every ``interval`` s; set :attr:`state` to change it."""

    name: str
    source_id: str
    state: str = "waiting"
    interval: float = 0.2
    extra: dict[str, Any] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    pushed: int = 0

    def message(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "source": "test-eeg",
            "input_rate": 1000.0,
            "samples_received": 1000 * self.pushed,
            "gaps": 1,
            "overflows": 2,
            "nan_resets": 0,
            "updates": 10 * self.pushed,
            "skipped_updates": 3,
            "latency_p50_ms": 4.25,
            "latency_p99_ms": 9.5,
            "model_hash": MODEL_HASH,
            "device": "cpu",
            "lookahead": 0.5,
            **self.extra,
        }

    def run(self) -> int:
        import pylsl

        info = pylsl.StreamInfo(self.name, "BEIRAStatus", 1, pylsl.IRREGULAR_RATE, "string", self.source_id)
        outlet = pylsl.StreamOutlet(info)
        try:
            while not self.stop.is_set():
                outlet.push_sample([json.dumps(self.message())])
                self.pushed += 1
                self.stop.wait(self.interval)
        finally:
            del outlet
        return self.pushed


def push_strings(name: str, source_id: str, texts: list[str], stop: threading.Event) -> None:
    """Publish raw strings on a BEIRAStatus stream, repeated until ``stop`` (for malformed messages)."""
    import pylsl

    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "BEIRAStatus", 1, 0.0, "string", source_id))
    try:
        while not stop.is_set():
            for text in texts:
                outlet.push_sample([text])
            time.sleep(0.1)
    finally:
        del outlet
