"""The prediction and status outlets as an external pylsl client sees them."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pylsl

from beira_rt.engine.outlet import PredictionOutlet, StatusOutlet
from beira_rt.lsl import QUALITY_LABEL, roi_columns
from tests.conftest import unique_name

ROIS = ("Left Putamen", "Right Putamen", "Left Caudate")


def _inlet(name: str, stype: str) -> pylsl.StreamInlet:
    found = pylsl.resolve_bypred(f"name='{name}' and type='{stype}'", 1, 10.0)
    assert found, f"{name} not found"
    inlet = pylsl.StreamInlet(found[0], recover=False)
    inlet.open_stream(10.0)
    return inlet


def _pull(inlet, n, timeout=10.0):
    vals, stamps = [], []
    deadline = time.monotonic() + timeout
    while len(stamps) < n and time.monotonic() < deadline:
        v, t = inlet.pull_chunk(timeout=0.05)
        vals.extend(v)
        stamps.extend(t)
    return vals, stamps


def test_prediction_stream_carries_names_metadata_and_stamps():
    name, _ = unique_name("BEIRA-test")
    out = PredictionOutlet(name, ROIS, 0.1, "ab" * 32, 6.0, 0.5, 100.0, "cpu", "amp")
    inlet = _inlet(name, "sBOLD")
    try:
        info = inlet.info(10.0)
        assert info.channel_count() == 4 and info.nominal_srate() == 10.0
        assert info.channel_format() == pylsl.cf_float32
        assert info.get_channel_labels() == [*ROIS, QUALITY_LABEL]
        assert info.get_channel_types() == ["sBOLD"] * 3 + ["MISC"]
        assert info.get_channel_units() == ["a.u."] * 3 + ["ratio"]
        meta = info.desc().child("beira")
        assert meta.child_value("model_hash") == "ab" * 32
        assert float(meta.child_value("bold_delay")) == 6.0
        assert float(meta.child_value("lookahead")) == 0.5
        assert float(meta.child_value("sfreq_model")) == 100.0
        assert meta.child_value("device") == "cpu"
        assert out.have_consumers()  # our inlet is subscribed
        stamp = pylsl.local_clock() - 3.25
        out.push(np.array([0.5, -1.0, 2.25]), stamp, quality=0.75)
        vals, stamps = _pull(inlet, 1)
        np.testing.assert_array_equal(vals[0], [0.5, -1.0, 2.25, 0.75])
        assert roi_columns(info.get_channel_labels()) == [0, 1, 2]
        assert abs(stamps[0] - stamp) < 1e-9  # no clocksync on this inlet: the stamp as pushed
    finally:
        inlet.close_stream()
        out.close()


def test_status_stream_is_json_with_null_for_nan():
    name, _ = unique_name("BEIRA-test")
    out = StatusOutlet(name, "sid")
    inlet = _inlet(f"{name}-status", "BEIRAStatus")
    try:
        assert inlet.info(10.0).nominal_srate() == pylsl.IRREGULAR_RATE
        out.push({"state": "waiting", "latency_p50_ms": math.nan, "updates": 3})
        vals, _ = _pull(inlet, 1)
        assert json.loads(vals[0][0]) == {"state": "waiting", "latency_p50_ms": None, "updates": 3}
    finally:
        inlet.close_stream()
        out.close()
