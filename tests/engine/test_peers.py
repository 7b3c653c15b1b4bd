"""The engine with LSL peers written elsewhere: mne-lsl's player as the EEG source, mne-lsl's
stream as a reader of the predictions (names, types, the quality channel)."""

from __future__ import annotations

import time

import mne
import numpy as np
import pytest

from beira_rt.bundle import load_bundle, save_bundle
from beira_rt.config import LiveConfig
from tests.conftest import unique_name
from tests.engine._harness import EngineRun, wait_for
from tests.engine.conftest import make_bundle
from tests.faults.conftest import AUX, CWL_EEG, recording

pytestmark = pytest.mark.slow


def _raw(seconds: float) -> mne.io.RawArray:
    names = [*CWL_EEG, *AUX]
    info = mne.create_info(names, 1000.0, ["eeg"] * len(CWL_EEG) + ["eog", "ecg"] + ["misc"] * 6)
    data = recording(seconds, seed=31)[:, : len(names)].T * 1e-6  # volts, as MNE keeps EEG
    return mne.io.RawArray(data, info, verbose=False)


def test_mne_lsl_player_as_the_source_and_stream_as_a_reader(worker_threads, tmp_path):
    from mne_lsl.player import PlayerLSL
    from mne_lsl.stream import StreamLSL

    save_bundle(make_bundle(ch_names=CWL_EEG, lookahead=0.1), tmp_path / "cwl.beira")
    cwl_bundle = load_bundle(tmp_path / "cwl.beira")
    fault_live = LiveConfig(
        device="cpu", hop=0.05, outlet_name=unique_name("BEIRA-peer")[0], status_interval=0.25
    )

    path = tmp_path / "peer_raw.fif"
    _raw(30.0).save(path, verbose=False)
    name, sid = unique_name("mne-lsl-player")
    player = PlayerLSL(path, chunk_size=16, name=name, source_id=sid)
    player.start()
    stream = None
    try:
        run = EngineRun(cwl_bundle, fault_live, sid, worker_threads)
        wait_for(lambda: len(run.pred.stamps) >= 60, timeout=30, what="predictions from mne-lsl's player")
        stream = StreamLSL(bufsize=5.0, name=fault_live.outlet_name, stype="sBOLD").connect(timeout=10)
        assert stream.ch_names == [*cwl_bundle.rois, "quality"]
        time.sleep(1.5)
        data, stamps = stream.get_data()
        assert np.isfinite(data).all() and np.all(np.diff(stamps[stamps > 0]) > 0)
        np.testing.assert_allclose(data[-1, stamps > 0], 1.0)  # quality: whole windows of real data
        run.finish(settle=0.2)
    finally:
        if stream is not None:
            stream.disconnect()
        player.stop()
    st = run.engine.stats
    # mne-lsl stamps each chunk one chunk ahead of the clock: jitter-free, regular; nothing resets
    assert st.gaps == 0 and st.clock_steps == 0 and not st.resets
    assert run.engine.status()["input_rate"] == pytest.approx(1000.0, rel=1e-3)
    assert np.all(np.diff(np.asarray(run.pred.stamps)) > 0)
