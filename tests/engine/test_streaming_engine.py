"""The engine's streaming path (causal and reference bundles, the read-out back end) on real LSL: the
same predictions as the whole window."""

from __future__ import annotations

import dataclasses
import json

import pytest

from beira_rt.engine import Engine, EngineError, StreamQuery
from beira_rt.engine.device_window import DeviceWindow
from beira_rt.engine.streaming import choose_inference
from tests.conftest import unique_name
from tests.engine._harness import match, offline, run_at_once, start_source
from tests.engine.conftest import CH_NAMES, STREAM_LABELS, STREAM_PICKS, TINY_CAUSAL_MODEL, eeg, make_bundle


def _run_against_each_window(bundle, live, worker_threads, cases, mode):
    """Real LSL sources of 2 s of EEG, one per case ``(sfreq, chunk)``, each into an engine of its own
    (``mode``: their inference path), all at once (:func:`run_at_once`). The published predictions
    of each must equal each window through the whole model within 1e-4 (>= 5 of them) and use the
    source's last sample. Returns, per case, the run, the reference predictions and the matched
    update indices."""
    datas = [
        eeg(int(2.0 * sfreq), sfreq, len(STREAM_LABELS), seed=int(sfreq) + chunk) for sfreq, chunk in cases
    ]
    started = run_at_once(
        bundle, worker_threads, [(live, d, sfreq, chunk) for d, (sfreq, chunk) in zip(datas, cases, strict=True)],
        STREAM_LABELS,
    )  # fmt: skip
    started = [(d, src, run) for d, (src, run) in zip(datas, started, strict=True)]
    results = []
    for (sfreq, chunk), (data, src, run) in zip(cases, started, strict=True):
        reference = offline(bundle, data[:, STREAM_PICKS], sfreq, bundle.lookahead, exact_windows=True)
        n = match(run.pred.stamps, run.pred.values, src.t0, bundle.lookahead, bundle, reference, atol=1e-4)
        assert n.size >= 5, (sfreq, chunk)
        last = reference.shape[0] + bundle.config.model.n_times - 2
        assert n.max() == last, (sfreq, chunk)  # the source's last sample was used
        st = json.loads(run.status.values[-1][0])
        assert st["inference"] == mode and st["updates"] == n.size, (sfreq, chunk)
        results.append((run, reference, n))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("sfreq", [250.0, 1000.0, 5000.0])
def test_streaming_engine_equals_whole_window_prediction(tiny_causal_bundle, live_cfg, worker_threads, sfreq):
    """Published predictions of the streaming engine (causal bundle) equal the whole-window definition
    (each window through the whole model, ``predict_at(exact_windows=True)``) within 1e-4, with chunks
    of 1, 7 and 32 samples, and the status says the engine streams."""
    _run_against_each_window(
        tiny_causal_bundle, live_cfg, worker_threads, [(sfreq, c) for c in (1, 7, 32)], "streaming"
    )


@pytest.mark.slow
@pytest.mark.parametrize("sfreq", [250.0, 1000.0, 5000.0])
def test_reference_bundle_streams_equal_to_each_window(tiny_bundle, live_cfg, worker_threads, sfreq):
    """The reference variant ('same' padding, linear up-sampling: the paper's model) streams too
    (ReferenceStream: the newest blocks recomputed with the window's right padding); over real LSL
    its published predictions equal each window through the whole model within 1e-4, with chunks of
    1, 7 and 32 samples."""
    _run_against_each_window(
        tiny_bundle, live_cfg, worker_threads, [(sfreq, c) for c in (1, 7, 32)], "streaming"
    )


@pytest.mark.parametrize(
    ("variant", "setting", "la", "expected"),
    [
        ("causal", "auto", 10, "streaming"),
        ("causal", "streaming", 0, "streaming"),
        ("causal", "window", 10, "window"),
        ("causal", "auto", 25, "window"),  # the read-out reaches 67 samples back: beyond the window
        ("reference", "auto", 10, "streaming"),
        ("reference", "streaming", 40, "streaming"),
        ("reference", "auto", 44, "window"),  # 'same' padding: 67 samples back from the window's end
        ("causal", "streaming", 25, "67 samples"),
        ("reference", "streaming", 44, "67 samples"),
    ],
)
def test_inference_setting_chooses_the_path(variant, setting, la, expected):
    """'auto' streams a bundle (either variant) only where that is exact; 'streaming' refuses what it
    cannot do (the tiny models with a 64-sample window)."""
    model_cfg = (
        TINY_CAUSAL_MODEL if variant == "causal" else dataclasses.replace(TINY_CAUSAL_MODEL, variant=variant)
    )
    model = make_bundle(model=model_cfg).build_model()
    window = DeviceWindow(len(CH_NAMES), model_cfg.n_times)
    if expected not in ("streaming", "window"):
        with pytest.raises(ValueError, match=expected):
            choose_inference(setting, model, window, la)
        return
    mode, readout = choose_inference(setting, model, window, la)
    assert mode == expected and (readout is not None) == (mode == "streaming")


def test_engine_refuses_streaming_it_cannot_do(tiny_bundle, live_cfg, worker_threads):
    """``live.inference: streaming`` at a look-ahead whose read-out needs more than the window (the
    tiny reference bundle: 35 samples at 0.14 s, the window holds 32): start() fails naming why."""
    data = eeg(500, 250.0, len(STREAM_LABELS))
    name, sid = unique_name()
    src = start_source(worker_threads, data, 250.0, name, sid, STREAM_LABELS)
    live = dataclasses.replace(live_cfg, inference="streaming", lookahead=0.14)
    engine = Engine(tiny_bundle, live, StreamQuery(source_id=sid))
    with pytest.raises(EngineError, match="35 samples"):
        engine.start()
    src.go.set()


@pytest.mark.parametrize("quadratic", [False, True])
@pytest.mark.parametrize("la", [0, 10, 24, 30])
def test_read_out_stream_equals_the_window_column(tiny_readout_bundle, la, quadratic):
    """ReadoutStream (the read-out back end streamed: the front end on the new samples only) gives
    the whole window's column ``W - 1 - la`` after appends of 1 to 150 samples and a reset; also
    with the quadratic read-out (``model.readout_quadratic``)."""
    import numpy as np
    import torch

    from beira_rt.engine.streaming import ReadoutStream
    from beira_rt.models import build_model
    from tests._bundles import randomise_statistics

    model = tiny_readout_bundle.build_model().eval()
    if quadratic:
        cfg = dataclasses.replace(tiny_readout_bundle.config.model, readout_quadratic=True)
        model = build_model(cfg, model.n_chans, model.n_outputs, model.sfreq)
        randomise_statistics(model, la)
        with torch.no_grad():
            model.readout.weight.normal_()
            model.square_weight.normal_()
        model.eval()
    win = DeviceWindow(len(CH_NAMES), model.n_times)
    stream = ReadoutStream(model, win, la)
    assert stream.exact == (model.n_times - la >= model.receptive_field)
    rng = np.random.default_rng(la)
    checked = 0
    for step, k in enumerate([70, 1, 1, 5, 13, 64, 2, 150, 9, 30, 1, 40]):
        if step == 8:
            win.reset()
        win.append(rng.standard_normal((len(CH_NAMES), k)).astype(np.float32))
        if not win.full:
            continue
        with torch.no_grad():
            want = model(win.view().unsqueeze(0))[0, :, model.n_times - 1 - la]
        got = stream.forward()
        if stream.exact:
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
            checked += 1
    assert checked >= 5 or not stream.exact


@pytest.mark.parametrize(
    ("setting", "mode", "cases"),
    [("auto", "streaming", [(250.0, 1), (1000.0, 7), (5000.0, 32)]), ("window", "window", [(1000.0, 7)])],
)
def test_read_out_back_end_engine_equals_each_window(
    tiny_readout_bundle, live_cfg, worker_threads, setting, mode, cases
):
    """A bundle of the read-out back end (beira_rt/models/readout.py) streams (or runs the whole
    window at each update); over real LSL its published predictions equal each window through the
    whole model (1e-4)."""
    live = dataclasses.replace(live_cfg, inference=setting)
    _run_against_each_window(tiny_readout_bundle, live, worker_threads, cases, mode)


def test_read_out_back_end_streaming_refuses_a_look_ahead_beyond_the_window(tiny_readout_bundle):
    model = tiny_readout_bundle.build_model().eval()
    assert choose_inference("auto", model, DeviceWindow(4, 80), 24)[0] == "streaming"
    assert choose_inference("auto", model, DeviceWindow(4, 80), 25)[0] == "window"  # 80 - 25 < 56
    with pytest.raises(ValueError, match="56 samples"):
        choose_inference("streaming", model, DeviceWindow(4, 80), 25)


@pytest.mark.parametrize("envelope_log", [True, False])
def test_folded_front_end_equals_the_model_front_end(envelope_log):
    """FoldedFrontEnd (batch norms folded in, filters as sums over unfolded views) gives the
    model's envelopes of the last k samples, also where the model's causal padding reaches in
    (inputs shorter than k + the filters' reach)."""
    import torch

    from beira_rt.engine.streaming import FoldedFrontEnd
    from beira_rt.models import BEIRAReadout
    from tests._bundles import randomise_statistics

    torch.manual_seed(3)
    model = BEIRAReadout(6, 3, 120, 100.0, n_filters=2, filter_size=9, envelope_size=7, readout_step=5,
                         readout_taps=4, dropout=0.0, envelope_log=envelope_log)  # fmt: skip
    randomise_statistics(model, 3)
    model.eval()
    folded = FoldedFrontEnd(model.interpretable)
    x = torch.randn(6, 120)
    with torch.no_grad():
        for length, k in [(120, 1), (120, 10), (24, 10), (16, 10), (30, 30), (5, 5), (120, 120)]:
            want = model.envelopes(x[None, :, -length:])[0, :, -k:]
            torch.testing.assert_close(folded(x[:, -length:], k), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["causal", "reference"])
def test_stream_follows_the_window_while_it_fills(variant):
    """StreamReadout.advance (called by the engine before the window is full) pushes what the window
    received, so that the first read-out pushes a hop, not a whole window; the read-outs equal the
    window's column, also after a reset of the window mid-fill."""
    import numpy as np
    import torch

    from beira_rt.engine.streaming import StreamReadout

    model_cfg = dataclasses.replace(TINY_CAUSAL_MODEL, variant=variant)
    model = make_bundle(model=model_cfg).build_model().eval()
    W, la = model_cfg.n_times, 10
    win = DeviceWindow(len(CH_NAMES), W)
    readout = StreamReadout(model, win, la)
    rng = np.random.default_rng(3)
    checked = 0
    for step, k in enumerate([20, 7, 30, 1, 40, 5, 5, 30, 3, 9, 1, 12, 2]):
        if step == 3:
            win.reset()  # an outage mid-fill: the stream restarts with the window
        win.append(rng.standard_normal((len(CH_NAMES), k)).astype(np.float32))
        if not win.full:
            readout.advance()
            assert readout.stream.count == win.count  # every sample so far is in the stream
            continue
        before = readout.stream.count
        got = readout.forward()
        assert readout.stream.count - before == k  # the new samples only, the first time too
        with torch.no_grad():
            want = model(win.view().unsqueeze(0))[0, :, W - 1 - la]
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        checked += 1
    assert checked >= 5
