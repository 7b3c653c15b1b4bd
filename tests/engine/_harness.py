"""Run the engine against a real LSL source and collect what an external consumer receives."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from beira_rt.engine import Engine, StreamQuery
from beira_rt.preprocessing import preprocess_recording
from tests.conftest import unique_name
from tests.engine._streams import Consumer, RecordingSource


def wait_for(cond, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``cond`` until true; fail the test after ``timeout`` seconds (a deadline, not a timing check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    pytest.fail(f"{what} not reached within {timeout} s")


def offline(
    bundle, data_model: np.ndarray, sfreq_in: float, lookahead: float, *, exact_windows: bool = False
) -> np.ndarray:
    """Offline predictions for every window end ``n >= W - 1``: array (n_out - W + 1, n_rois).

    ``data_model`` is the raw recording in model channel order, shape (n_samples, n_chans);
    ``exact_windows`` as :func:`~beira_rt.inference.predict_at` (True: each window through the whole model).
    """
    from beira_rt.inference import predict_at

    z = bundle.normalizer.apply(preprocess_recording(data_model.T, sfreq_in, bundle.config.preprocessing))
    W = bundle.config.model.n_times
    ends = np.arange(W - 1, z.shape[1])
    return predict_at(bundle, z, ends, lookahead, device="cpu", batch_size=64, exact_windows=exact_windows)


def match(
    stamps, values, t0: float, lookahead: float, bundle, reference: np.ndarray, atol: float = 1e-4
) -> np.ndarray:
    """Map published stamps to model-rate sample indices ``n`` and compare with the offline reference.

    Returns the indices ``n`` (since ``t0``, the stamp of the segment's first input sample).
    """
    sfreq = bundle.config.preprocessing.sfreq
    W = bundle.config.model.n_times
    stamps = np.asarray(stamps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    assert values.shape[1] == reference.shape[1] + 1  # the ROIs, then the quality channel
    np.testing.assert_array_equal(values[:, -1], 1.0)  # whole windows of real data
    values = values[:, :-1]
    assert np.isfinite(reference).all() and np.isfinite(values).all()
    # predictions that actually vary, so that matching them within atol means something: every ROI by
    # more than twice the tolerance, one of them by 1e-3 (a random tiny model over a short stream can
    # vary little on one ROI: 0.00096 was seen once; a constant output varies by ~0). Over a few
    # predictions two close values are no sign of a constant.
    spread = values.std(axis=0)
    assert values.shape[0] < 5 or (spread.min() > 2 * atol and spread.max() > 1e-3), (values.shape[0], spread)
    pos = (stamps + lookahead - t0) * sfreq
    n = np.rint(pos).astype(np.int64)
    assert np.abs(pos - n).max() < 0.2, "a prediction is not stamped on a model-rate sample time"
    assert n.min() >= W - 1, "a prediction was published from a partly filled window"
    assert np.all(np.diff(n) > 0), "predictions repeat or go back in time"
    assert n.max() - (W - 1) < reference.shape[0]
    np.testing.assert_allclose(values, reference[n - (W - 1)], rtol=0, atol=atol)
    return n


class EngineRun:
    """An engine on a source, a consumer of its prediction stream and one of its status stream."""

    def __init__(self, bundle, live, source_id: str, worker_threads) -> None:
        self.engine = Engine(bundle, live, StreamQuery(source_id=source_id))
        self.engine.start()
        try:
            self.pred = Consumer(live.outlet_name, "sBOLD")
            self.status = Consumer(f"{live.outlet_name}-status", "BEIRAStatus")
        except BaseException:
            self.engine.stop()
            raise
        worker_threads(self.pred.run, "prediction-consumer")
        worker_threads(self.status.run, "status-consumer")

    def state(self) -> str:
        return self.engine.status()["state"]

    def finish(self, settle: float = 0.3) -> None:
        """Let the last samples through, close the prediction consumer, stop the engine.

        The status consumer stays subscribed until the engine's final ('stopped') status
        arrived or the stream ended.
        """
        time.sleep(settle)
        self.pred.stop.set()
        time.sleep(0.1)
        self.engine.stop()
        wait_for(
            lambda: (
                self.status.lost.is_set() or (self.status.values and '"stopped"' in self.status.values[-1][0])
            ),
            timeout=10,
            what="the final status",
        )
        self.status.stop.set()
        assert self.engine.error is None, f"engine failed: {self.engine.error!r}"


def start_source(
    worker_threads, data, sfreq, name, sid, labels, chunk_size=10, offsets=None
) -> RecordingSource:
    src = RecordingSource(
        data, sfreq, name, sid, labels, chunk_size=chunk_size, offsets=offsets, go=threading.Event()
    )
    worker_threads(src.run, f"source-{name}")
    return src


def run_at_once(bundle, worker_threads, cases, labels):
    """Several engines of ``bundle``, each on a real LSL source of its own, run at the same time.

    ``cases``: ``(live, data, sfreq, chunk)`` each (the engine settings, the recording (n_samples,
    n_labels), its rate, its chunk size); each engine gets an outlet name of its own. The engines
    start (resolving their sources) in parallel, the sources play at once, and each run is
    finished once its engine noticed the end. Returns ``(src, run)`` per case; the cases share
    the wall time, their outputs are compared by the caller, each on its own.
    """

    def start(case):
        live, data, sfreq, chunk = case
        name, sid = unique_name()
        src = start_source(worker_threads, data, sfreq, name, sid, labels, chunk_size=chunk)
        own = dataclasses.replace(live, outlet_name=unique_name("BEIRA-test")[0])
        return src, EngineRun(bundle, own, sid, worker_threads)

    with ThreadPoolExecutor(len(cases)) as pool:
        started = list(pool.map(start, cases))
    for src, _ in started:
        src.go.set()
    for (_, _, sfreq, chunk), (src, run) in zip(cases, started, strict=True):
        wait_for(
            lambda src=src: src.finished_at is not None, what=f"the source at {sfreq:g} Hz/{chunk} ending"
        )
        wait_for(
            lambda run=run: run.state() == "waiting", what=f"the engine at {sfreq:g} Hz/{chunk} noticing it"
        )
    with ThreadPoolExecutor(len(cases)) as pool:
        list(pool.map(lambda r: r.finish(), [run for _, run in started]))
    return started
