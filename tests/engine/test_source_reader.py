"""The engine's EEG reader on real LSL: model channels in order, loss, refusal, reconnection."""

from __future__ import annotations

import time

import numpy as np
import pylsl

from beira_rt.engine.source import EegReader
from beira_rt.lsl import StreamQuery
from tests.conftest import unique_name
from tests.engine._harness import wait_for
from tests.engine._streams import eeg_outlet

MODEL = ("Fp1", "Cz", "O2")


def _push(outlet, start, stop, n_channels, sfreq, t0):
    idx = np.arange(start, stop, dtype=np.float64)
    data = np.stack([idx + 1000.0 * c for c in range(n_channels)], axis=1)
    outlet.push_chunk(data, timestamp=t0 + (stop - 1) / sfreq)


def test_pulls_model_channels_then_survives_loss_refusal_and_return(caplog):
    name, sid = unique_name()
    sfreq = 500.0
    labels = ["EOG", "o2", "FP1", "cz"]  # model channel c is stream channel picks[c]
    outlet = eeg_outlet(name, sid, labels, sfreq)
    errors = []
    acq = EegReader(StreamQuery(source_id=sid), MODEL, ("clocksync",), 10.0, on_error=errors.append)
    acq.connect(10.0)
    ring = acq.ring
    acq.start()
    try:
        assert outlet.wait_for_consumers(10.0)
        t0 = pylsl.local_clock()
        for start in range(0, 300, 30):
            _push(outlet, start, start + 30, 4, sfreq, t0)
        wait_for(lambda: acq.samples_received == 300, what="300 samples")
        block = ring.read()
        # stream channel s carries idx + 1000 s; model order Fp1, Cz, O2 = stream 2, 3, 1
        np.testing.assert_array_equal(block.data[:, 0], np.arange(300) + 2000.0)
        np.testing.assert_array_equal(block.data[:, 1], np.arange(300) + 3000.0)
        np.testing.assert_array_equal(block.data[:, 2], np.arange(300) + 1000.0)
        np.testing.assert_allclose(np.diff(block.stamps), 1 / sfreq, atol=1e-6)

        del outlet  # the source goes away
        wait_for(lambda: acq.engine_state == "waiting", what="state 'waiting'")
        assert acq.losses == 1 and acq.state == "lost"
        assert any("waiting for name" in r.getMessage() for r in caplog.records)

        wrong = eeg_outlet(name, sid, ["Fp1", "Cz", "O2", "ECG"], sfreq)  # same name/id, other channels
        wait_for(lambda: acq.refused == 1, what="refusal")
        assert acq.engine_state == "waiting" and acq.reconnects == 0
        assert any("different channel set" in r.getMessage() for r in caplog.records)
        time.sleep(1.0)
        assert acq.refused == 1  # refused once, not again on every resolve
        del wrong

        back = eeg_outlet(name, sid, ["cz", "FP1", "O2", "EOG"], sfreq)  # same set, new order
        wait_for(lambda: acq.state == "connected" and acq.reconnects == 1, what="reconnection")
        assert back.wait_for_consumers(10.0)
        t1 = pylsl.local_clock()
        _push(back, 0, 50, 4, sfreq, t1)
        wait_for(lambda: acq.samples_received == 350, what="samples after the reconnection")
        block = ring.read()
        assert block.breaks == (0,)  # the reconnection is a discontinuity for the processing
        np.testing.assert_array_equal(block.data[:, 0], np.arange(50) + 1000.0)  # FP1 is now channel 1
        np.testing.assert_array_equal(block.data[:, 1], np.arange(50) + 0.0)
        np.testing.assert_array_equal(block.data[:, 2], np.arange(50) + 2000.0)
    finally:
        acq.stop()
    assert not acq.alive
    assert errors == []
    del back


def test_stream_in_volts_reaches_the_model_in_microvolts(caplog):
    """The model works in microvolts; a stream whose description says volts (or mV) is scaled."""
    name, sid = unique_name()
    sfreq = 250.0
    labels = ["Fp1", "Cz", "O2", "X1"]
    outlet = eeg_outlet(name, sid, labels, sfreq, units=["V", "millivolts", None, "µV"])
    errors = []
    acq = EegReader(StreamQuery(source_id=sid), MODEL, ("clocksync",), 10.0, on_error=errors.append)
    spec = acq.connect(10.0) and acq.spec
    np.testing.assert_array_equal(spec.scale, np.array([1e6, 1e3, 1.0], dtype=np.float32))
    assert any(
        "taking them as microvolts" in r.getMessage() and "O2" in r.getMessage() for r in caplog.records
    )
    ring = acq.ring
    acq.start()
    try:
        assert outlet.wait_for_consumers(10.0)
        _push(outlet, 0, 40, 4, sfreq, pylsl.local_clock())
        wait_for(lambda: acq.samples_received == 40, what="40 samples")
        block = ring.read()
        idx = np.arange(40, dtype=np.float64)
        np.testing.assert_allclose(block.data[:, 0], idx * 1e6, rtol=1e-6)  # Fp1 in volts
        np.testing.assert_allclose(block.data[:, 1], (idx + 1000.0) * 1e3, rtol=1e-6)  # Cz in mV
        np.testing.assert_array_equal(block.data[:, 2], idx + 2000.0)  # O2: no unit -> as is
    finally:
        acq.stop()
    assert errors == []
    del outlet
