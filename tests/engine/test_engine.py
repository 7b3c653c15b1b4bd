"""The live engine on real LSL: parity with the offline prediction, reconnection, bad input."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pylsl
import pytest
import torch

from beira_rt.engine import ChannelMismatchError, Engine, EngineError, SourceNotFoundError, StreamQuery
from tests.conftest import unique_name
from tests.engine._harness import EngineRun, match, offline, run_at_once, start_source, wait_for
from tests.engine.conftest import STREAM_LABELS, STREAM_PICKS, eeg, make_bundle


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sfreq", "cases"),
    [(1000.0, [(1, None), (7, None), (32, 0.0)]), (250.0, [(1, None), (7, 0.25), (32, None)])],
)
def test_parity_with_offline_prediction(tiny_bundle, live_cfg, worker_threads, sfreq, cases):
    """Published predictions equal predict_at on the whole recording at the same timestamps, for
    chunks of 1, 7 and 32 samples and look-aheads (None: the bundle's), each case an engine of its
    own on a source of its own, the cases at once."""
    runs = [
        (dataclasses.replace(live_cfg, lookahead=la), eeg(int(2.0 * sfreq), sfreq, len(STREAM_LABELS), seed=int(sfreq) + c), sfreq, c)
        for c, la in cases
    ]  # fmt: skip
    started = run_at_once(tiny_bundle, worker_threads, runs, STREAM_LABELS)
    for (live, data, _, chunk), (src, run) in zip(runs, started, strict=True):
        la = tiny_bundle.lookahead if live.lookahead is None else live.lookahead
        reference = offline(tiny_bundle, data[:, STREAM_PICKS], sfreq, la)
        n = match(run.pred.stamps, run.pred.values, src.t0, la, tiny_bundle, reference)
        # one prediction per hop (or per chunk, when chunks come less often); half of that at least
        assert n.size >= (2.0 - 0.32) / max(live.hop, chunk / sfreq) / 2, chunk
        assert (
            n.max() == reference.shape[0] + tiny_bundle.config.model.n_times - 2
        )  # the last sample was used
        st = json.loads(run.status.values[-1][0])
        assert st["state"] == "stopped" and st["updates"] == n.size and st["gaps"] == 0
        assert st["samples_received"] == st["samples_processed"] == data.shape[0]
        assert st["lookahead"] == la and st["model_hash"] == tiny_bundle.content_hash
        # the reference bundle streams where that is exact (its read-out reaches 31 samples back up to a
        # look-ahead of 10 samples, the window holds 32), else the whole window with the stem cache
        assert st["inference"] == ("streaming" if la <= 0.1 else "window, stem cache")


@pytest.mark.slow
def test_updates_follow_the_samples_on_a_hop_grid_of_the_sample_index(tiny_bundle, live_cfg, worker_threads):
    """Data-driven updates: a prediction when the model-rate count reaches a multiple of the hop
    (not at wall-clock slots), and the samples after the last boundary once the source is quiet."""
    sfreq = 1000.0
    hop_n = round(live_cfg.hop * tiny_bundle.config.preprocessing.sfreq)  # 5 model-rate samples
    data = eeg(2037, sfreq, len(STREAM_LABELS), seed=11)  # 204 model-rate samples: 4 after the last boundary
    name, sid = unique_name()
    src = start_source(worker_threads, data, sfreq, name, sid, STREAM_LABELS, chunk_size=10)
    run = EngineRun(tiny_bundle, live_cfg, sid, worker_threads)
    src.go.set()
    wait_for(lambda: src.finished_at is not None, what="the source pushing everything")
    wait_for(lambda: run.state() == "waiting", what="the engine noticing the end of the source")
    run.finish()
    la = tiny_bundle.lookahead
    reference = offline(tiny_bundle, data[:, STREAM_PICKS], sfreq, la)
    n = match(run.pred.stamps, run.pred.values, src.t0, la, tiny_bundle, reference)
    W = tiny_bundle.config.model.n_times
    on_grid = (n[:-1] + 1) % hop_n == 0  # n + 1 model-rate samples were in when the update ran
    assert on_grid.all(), f"predictions off the sample grid at n = {n[:-1][~on_grid]}"
    assert n[-1] == 203  # the tail, published once the source went quiet
    assert n.size >= (204 - W) // hop_n // 2  # most boundaries got their update
    st = json.loads(run.status.values[-1][0])
    assert st["updates"] == n.size and st["update_slots"] >= st["updates"]
    assert st["updates"] + st["skipped_updates"] <= st["update_slots"]


@pytest.mark.slow
def test_reconnect_resumes_and_publishes_nothing_while_the_source_is_gone(
    tiny_bundle, live_cfg, worker_threads
):
    sfreq = 500.0
    labels = STREAM_LABELS
    first, second = eeg(1000, sfreq, 5, seed=1), eeg(1000, sfreq, 5, seed=2)
    name, sid = unique_name()
    src1 = start_source(worker_threads, first, sfreq, name, sid, labels)
    # an absence longer than live.max_bridge: the state resets (a shorter one is bridged: tests/faults)
    run = EngineRun(tiny_bundle, dataclasses.replace(live_cfg, max_bridge=1.0), sid, worker_threads)
    src1.go.set()
    wait_for(lambda: src1.finished_at is not None, what="the first source finishing")
    wait_for(lambda: run.state() == "waiting", what="the engine noticing the loss")
    lost_at = pylsl.local_clock()
    n_before = len(run.pred.stamps)
    time.sleep(3.0)  # the source stays away for a while
    assert len(run.pred.stamps) == n_before  # nothing published while it is gone
    src2 = start_source(worker_threads, second, sfreq, name, sid, labels[::-1])  # same stream, new order
    src2.go.set()
    wait_for(lambda: src2.finished_at is not None, what="the returning source finishing")
    run.finish()

    la = tiny_bundle.lookahead
    stamps, values, arrivals = (np.asarray(x) for x in (run.pred.stamps, run.pred.values, run.pred.arrivals))
    seg1, seg2 = stamps + la < src2.t0 - 1.0, stamps + la >= src2.t0
    assert np.all(seg1 | seg2)
    assert not np.any((arrivals > lost_at) & (arrivals < src2.created_at))  # silent during the absence
    # resumed within 2 s of the restart (window 0.32 s + reconnection)
    assert arrivals[seg2].min() - src2.created_at < 2.0
    # both segments equal the offline prediction of each segment on its own (state reset in between)
    picks2 = [labels[::-1].index(labels[p]) for p in STREAM_PICKS]
    match(
        stamps[seg1],
        values[seg1],
        src1.t0,
        la,
        tiny_bundle,
        offline(tiny_bundle, first[:, STREAM_PICKS], sfreq, la),
    )
    match(
        stamps[seg2],
        values[seg2],
        src2.t0,
        la,
        tiny_bundle,
        offline(tiny_bundle, second[:, picks2], sfreq, la),
    )
    states = [json.loads(v[0])["state"] for v in run.status.values]
    assert "waiting" in states and states[-1] == "stopped"
    assert run.engine.status()["reconnects"] == 1


@pytest.mark.slow
def test_gap_and_nan_reset_and_never_reach_the_output(tiny_bundle, live_cfg, worker_threads):
    """With ``bridge: reset``, a gap and a run of NaNs each reset; no partial window is published."""
    sfreq = 500.0
    n = 1500
    data = eeg(n, sfreq, 5, seed=3)
    g, a, b = 500, 1000, 1040  # gap before sample g; NaN in samples a..b-1
    data[a:b, STREAM_PICKS[1]] = np.nan
    data[200, 0] = np.inf  # garbage on the extra channel (EOG) is ignored: not a model channel
    offsets = np.arange(n) / sfreq
    offsets[g:] += 0.4  # 200 samples missing from the timestamps
    name, sid = unique_name()
    src = start_source(worker_threads, data, sfreq, name, sid, STREAM_LABELS, chunk_size=10, offsets=offsets)
    run = EngineRun(tiny_bundle, dataclasses.replace(live_cfg, bridge="reset"), sid, worker_threads)
    src.go.set()
    wait_for(lambda: src.finished_at is not None, what="the source finishing")
    wait_for(lambda: run.state() == "waiting", what="the engine noticing the end")
    run.finish()

    la = tiny_bundle.lookahead
    st = run.engine.stats
    assert st.gaps == 1 and st.nan_resets == 1 and st.nan_samples == b - a
    assert st.resets == {"outage": 2}
    values = np.asarray(run.pred.values)
    stamps = np.asarray(run.pred.stamps)
    assert np.isfinite(values).all()
    t = stamps + la - src.t0  # EEG time of each prediction relative to t0
    segs = [(0, g), (g, a), (b, n)]
    model = data[:, STREAM_PICKS]
    for lo, hi in segs:
        inside = (t >= offsets[lo] - 1e-6) & (t <= offsets[hi - 1] + 1e-6)
        ref = offline(tiny_bundle, model[lo:hi], sfreq, la)
        match(stamps[inside], values[inside], src.t0 + offsets[lo], la, tiny_bundle, ref)
        assert inside.sum() >= 3
    covered = sum(((t >= offsets[lo] - 1e-6) & (t <= offsets[hi - 1] + 1e-6)).sum() for lo, hi in segs)
    assert covered == t.size  # nothing stamped inside the gap or the NaN run


def test_stream_without_the_bundle_channels_is_refused(live_cfg):
    bundle = make_bundle(ch_names=("Fp1", "Cz", "T7", "T8"))
    name, sid = unique_name()
    from tests.engine._streams import eeg_outlet

    outlet = eeg_outlet(name, sid, STREAM_LABELS, 500.0)
    try:
        engine = Engine(bundle, live_cfg, StreamQuery(name=name))
        with pytest.raises(ChannelMismatchError, match=r"lacks 2 of the model's 4 channels: T7, T8"):
            engine.start()
        engine.stop()
    finally:
        del outlet


def test_missing_stream_lists_the_streams_found(tiny_bundle, live_cfg):
    name, sid = unique_name()
    from tests.engine._streams import eeg_outlet

    outlet = eeg_outlet(name, sid, STREAM_LABELS, 500.0)
    try:
        engine = Engine(
            tiny_bundle, dataclasses.replace(live_cfg, resolve_timeout=1.0), StreamQuery(name="absent")
        )
        with pytest.raises(SourceNotFoundError, match=name):
            engine.start()
    finally:
        del outlet


def test_lookahead_longer_than_the_window_is_refused(tiny_bundle, live_cfg):
    with pytest.raises(EngineError, match=r"look-ahead of 0.5 s is 50 model-rate samples.*only 32"):
        Engine(tiny_bundle, dataclasses.replace(live_cfg, lookahead=0.5), StreamQuery(name="x"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_refused(tiny_bundle, live_cfg):
    with pytest.raises(EngineError, match="no CUDA device"):
        Engine(tiny_bundle, dataclasses.replace(live_cfg, device="cuda"), StreamQuery(name="x"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_engine_runs_on_cuda(tiny_bundle, live_cfg, worker_threads):
    """Window and model on the GPU; predictions equal the offline CPU prediction (TF32 tolerance)."""
    live = dataclasses.replace(live_cfg, device="cuda")
    sfreq = 1000.0
    data = eeg(2000, sfreq, len(STREAM_LABELS), seed=5)
    name, sid = unique_name()
    src = start_source(worker_threads, data, sfreq, name, sid, STREAM_LABELS, chunk_size=10)
    run = EngineRun(tiny_bundle, live, sid, worker_threads)
    assert run.engine.device.type == "cuda"
    assert run.engine._pipeline.window._buf.is_cuda  # the window is GPU-resident
    assert run.pred.info.desc().child("beira").child_value("device") == "cuda"
    src.go.set()
    wait_for(lambda: src.finished_at is not None, what="the source finishing")
    wait_for(lambda: run.state() == "waiting", what="the engine noticing the end")
    run.finish()
    la = tiny_bundle.lookahead
    reference = offline(tiny_bundle, data[:, STREAM_PICKS], sfreq, la)
    n = match(run.pred.stamps, run.pred.values, src.t0, la, tiny_bundle, reference, atol=1e-3)
    assert n.size >= 15


class _Slow(torch.nn.Module):
    """The real model, plus a fixed delay: every update then spans several hops."""

    def __init__(self, model: torch.nn.Module, delay: float) -> None:
        super().__init__()
        self.model, self.delay = model, delay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        return self.model(x)


@pytest.mark.slow
def test_slow_updates_skip_to_the_newest_window(tiny_bundle, live_cfg, worker_threads):
    """Updates longer than the hop: slots are skipped and counted, each update uses the newest window."""
    # the whole-window path, slowed
    live = dataclasses.replace(live_cfg, hop=0.02, stem_cache=False, inference="window")
    sfreq = 500.0
    data = eeg(1000, sfreq, len(STREAM_LABELS), seed=7)
    name, sid = unique_name()
    src = start_source(worker_threads, data, sfreq, name, sid, STREAM_LABELS)
    run = EngineRun(tiny_bundle, live, sid, worker_threads)
    run.engine._model = _Slow(run.engine._model, 0.05)  # 2.5 hops per model pass
    src.go.set()
    wait_for(lambda: src.finished_at is not None, what="the source finishing")
    wait_for(lambda: run.state() == "waiting", what="the engine noticing the end")
    run.finish()
    st = run.engine.stats
    assert st.updates >= 5
    assert st.skipped_updates >= st.updates  # at least one slot lost per 50 ms update
    la = tiny_bundle.lookahead
    n = match(
        run.pred.stamps,
        run.pred.values,
        src.t0,
        la,
        tiny_bundle,
        offline(tiny_bundle, data[:, STREAM_PICKS], sfreq, la),
    )
    assert np.median(np.diff(n)) >= 4  # consecutive predictions are >= 40 ms of EEG apart: no backlog
