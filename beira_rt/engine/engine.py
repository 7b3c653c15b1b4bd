"""The live engine: EEG stream in, BEIRA on the device, sBOLD predictions out.

Threads:

- EEG reader (:class:`~beira_rt.engine.source.EegReader`, a
  :class:`~beira_rt.lsl.StreamReader`): inlet -> ring of samples, first
  connection and reconnections after loss; it wakes the processing thread once
  it has written the samples the next hop boundary needs;
- processing (this module): sleeps until those samples arrived (and at least every
  hop without them), feeds them through the
  :class:`~beira_rt.engine.live_pipeline.LivePipeline` at once, and when the
  model-rate sample count reaches the next hop boundary (every
  ``round(hop * sfreq)`` samples: the grid is tied to the samples, not to the wall
  clock) runs one model pass on the newest window (for a causal bundle, by default,
  the new samples streamed through the model instead: :mod:`beira_rt.engine.streaming`,
  the same output) and pushes one prediction; the status stream goes out every
  ``status_interval`` seconds.

An update slot is a hop boundary passed by the model-rate count. When one read
passed several (samples arrived while an update was running), one update runs on
the newest window and the older slots are counted as skipped: no queue builds up. A wake-up that reaches no boundary publishes
nothing (nothing stale is ever published), except when the source has been
quiet for ``QUIET_HOPS`` hops: then the samples it sent after the last boundary
are published once (the end of a stream, the start of an outage).

At the start nothing is published until ``W`` model-rate samples have filled
the window (``W / sfreq`` seconds: 20.48 s for the reference model). After
that, missing data (a gap, an outage with or without a reconnection, a run of
non-finite samples, samples lost to an overflow) are bridged when the data
return (:mod:`beira_rt.engine.live_pipeline`, ``live.bridge``): predictions resume
``live.resume_seconds`` after the return, and the ``quality`` channel says
which share of each window is real data. Nothing is published while data are
missing, and published times never go back.

A prediction for the window ending at model-rate sample ``n`` is
``model(window)[:, W - 1 - la]`` de-normalised with the bundle's target
statistics (``la = round(lookahead * sfreq)``), stamped with the timestamp of
sample ``n`` minus the look-ahead: the parity contract of docs/CONTRACTS.md.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pylsl
import torch

from beira_rt._logging import logger
from beira_rt.config import LiveConfig
from beira_rt.inference import WindowPredictor, resolve_device
from beira_rt.lsl import StreamQuery
from beira_rt.models import BEIRA

from .channels import ChannelMonitor
from .device_window import DeviceWindow
from .live_pipeline import LivePipeline
from .outlet import PredictionOutlet, StatusOutlet
from .source import EegReader, StreamSpec
from .stats import EngineStats, HopCounter, HopSchedule
from .stem import StemCache
from .streaming import StreamReadout, choose_inference

__all__ = ["Engine", "EngineError"]


#: Seconds the outlets stay open after the final status, when someone listens.
STOP_LINGER = 0.2
#: Hops without a new sample after which samples short of the next hop boundary are published.
QUIET_HOPS = 2


class EngineError(RuntimeError):
    """The engine cannot start with these settings (the message says why and what to do)."""


class Engine:
    """Live BEIRA on one EEG stream.

    Parameters
    ----------
    bundle : ModelBundle
        Trained model, channels, preprocessing and normalisation.
    live : LiveConfig
        Engine settings; ``live.lookahead`` (when not None) overrides the bundle's look-ahead.
    query : StreamQuery
        Which EEG stream to read.

    Examples
    --------
    >>> with Engine(bundle, cfg.live, StreamQuery(name="EEG")) as engine:  # doctest: +SKIP
    ...     engine.wait(60.0)
    >>> print(engine.summary())  # doctest: +SKIP
    """

    def __init__(self, bundle, live: LiveConfig, query: StreamQuery) -> None:
        self.bundle = bundle
        self.live = live
        self.query = query
        cfg = bundle.config
        self.sfreq = float(cfg.preprocessing.sfreq)
        self.n_times = int(cfg.model.n_times)
        self.lookahead = float(bundle.lookahead if live.lookahead is None else live.lookahead)
        self.la_samples = round(self.lookahead * self.sfreq)
        if not 0 <= self.la_samples <= self.n_times - 1:
            raise EngineError(
                f"a look-ahead of {self.lookahead:g} s is {self.la_samples} model-rate samples, but the model "
                f"window holds only {self.n_times} ({self.n_times / self.sfreq:g} s); choose a look-ahead "
                f"between 0 and {(self.n_times - 1) / self.sfreq:g} s."
            )
        try:
            self.device = resolve_device(live.device)
        except (ValueError, RuntimeError) as err:
            raise EngineError(f"live.device: {err}") from err
        self.stats = EngineStats()
        self.spec: StreamSpec | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._acq: EegReader | None = None
        self._outlet: PredictionOutlet | None = None
        self._status: StatusOutlet | None = None
        self._started_at = math.nan
        self._stopped_at = math.nan
        self._last_total = 0
        self._last_stamp = -math.inf
        self._time_base = 0
        self._data_at = -math.inf  # time.monotonic() of the newest read that brought samples
        self.state = "stopped"
        #: the inference path: 'streaming' (exact), 'window, stem cache' or 'window' (set at start)
        self.inference = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Resolve the stream, check its channels, load the model and start the threads.

        Raises
        ------
        SourceNotFoundError, ChannelMismatchError, UnsupportedStreamError, EngineError
            With a message that names the problem.
        """
        if self._thread is not None:
            raise EngineError("Engine.start() was called twice; make a new Engine to run again.")
        live, bundle = self.live, self.bundle
        reader = EegReader(
            self.query, tuple(bundle.ch_names), live.processing_flags, live.buffer_seconds, self._fail
        )
        reader.connect(live.resolve_timeout)
        try:
            self._setup(reader)
        except BaseException:
            reader.stop()
            self._close_outlets()
            raise

    def _setup(self, reader: EegReader) -> None:
        live, bundle = self.live, self.bundle
        spec: StreamSpec = reader.spec
        self.spec = spec
        torch.set_num_threads(live.num_threads)
        self._predictor = WindowPredictor(bundle, self.device, self.lookahead, warmup=False)
        self._model = self._predictor.model
        n_chans = len(bundle.ch_names)
        window = DeviceWindow(n_chans, self.n_times, self.device)
        self._pipeline = LivePipeline(
            bundle.make_preprocessor(spec.sfreq),
            bundle.normalizer,
            window,
            spec.sfreq,
            self.sfreq,
            self.stats,
            tolerance=live.gap_tolerance_ms / 1e3,
            dejitter="dejitter" in live.processing_flags,
            bridge=live.bridge,
            max_bridge=live.max_bridge,
            resume=live.resume_seconds,
            monitor=ChannelMonitor(
                tuple(bundle.ch_names), spec.sfreq, live.flat_uv, live.rail_uv, repair=live.repair_channels
            ),
        )
        try:
            self.inference, self._stream = choose_inference(
                live.inference, self._model, window, self.la_samples
            )
        except ValueError as err:
            raise EngineError(str(err)) from err
        stem = live.stem_cache and self._stream is None and isinstance(self._model, BEIRA)
        self._stem = StemCache(self._model, window) if stem else None
        if self._stem is not None and not self._stem.usable:
            logger.info("the stem padding covers the whole window; every update runs the whole model")
            self._stem = None
        if self._stem is not None:
            self.inference = "window, stem cache"
        self._warm_up(n_chans)
        self._ring = reader.ring
        self._outlet = PredictionOutlet(
            live.outlet_name,
            tuple(bundle.rois),
            live.hop,
            bundle.content_hash,
            bundle.config.model.bold_delay,
            self.lookahead,
            self.sfreq,
            self.device.type,
            spec.name,
        )
        self._status = StatusOutlet(
            live.outlet_name, f"{live.outlet_name}-{bundle.content_hash[:12]}-{spec.name}"
        )
        self._acq = reader
        logger.info(
            "engine: %s -> %s (%s, %s, window %d samples = %.2f s, look-ahead %.2f s, hop %.3f s)",
            spec.describe(),
            live.outlet_name,
            self.device,
            self.inference,
            self.n_times,
            self.n_times / self.sfreq,
            self.lookahead,
            live.hop,
        )
        self._started_at = time.monotonic()
        self.state = "connected"
        self._acq.start()
        self._thread = threading.Thread(target=self._run, name="beira-processing", daemon=True)
        self._thread.start()

    def _warm_up(self, n_chans: int) -> None:
        """One pass on zeros so that the first live update does not pay for allocations."""
        with torch.inference_mode():
            self._model(torch.zeros((1, n_chans, self.n_times), device=self.device))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _fail(self, err: BaseException) -> None:
        if self.error is None:
            self.error = err
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the engine stops (error or :meth:`stop`) or ``timeout`` passes; True if it stopped."""
        return self._stop.wait(timeout)

    def stop(self) -> None:
        """Stop the threads, publish a last status, close the outlets. Safe to call twice."""
        self._stop.set()
        if getattr(self, "_ring", None) is not None:
            self._ring.notify()  # wake the processing thread now
        if self._thread is not None:
            self._thread.join(10.0)
        if self._acq is not None:
            self._acq.stop()
        if math.isnan(self._stopped_at):
            self._stopped_at = time.monotonic()
        self.state = "stopped"
        if self._status is not None:
            self._status.push(self.status())
            if self._status.have_consumers():
                time.sleep(STOP_LINGER)  # let the final status reach its subscribers
        self._close_outlets()

    def _close_outlets(self) -> None:
        for out in (self._outlet, self._status):
            if out is not None:
                out.close()

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ processing thread
    def _run(self) -> None:
        stats = self.stats
        ring = self._ring
        timer = HopSchedule(self.live.hop, time.monotonic())  # wake at least every hop without data
        next_status = timer.next_slot
        self._hops = HopCounter(max(1, round(self.live.hop * self.sfreq)))
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                wait = timer.wait(now)
                if wait > 0:
                    ring.wait(wait, self._samples_needed())  # enough new samples, a stop, or the timer
                    if self._stop.is_set():
                        break
                    now = time.monotonic()
                if timer.wait(now) == 0:
                    timer.take(now)
                t0 = time.perf_counter()
                published = self._update()
                with stats.lock:
                    stats.wakeups += 1
                    if published:
                        stats.update_seconds.add(time.perf_counter() - t0)
                if now >= next_status and self._status is not None:
                    self._status.push(self.status())
                    next_status = now + self.live.status_interval
        except BaseException as err:  # reported: the engine stops and the caller sees engine.error
            logger.exception("the processing thread failed")
            self._fail(err)

    def _samples_needed(self) -> int:
        """Input samples that surely do not yet reach the next hop boundary, plus one.

        A lower bound (one model-rate sample of slack for the resampler's phase, less what the
        clock holds undecided): the thread then wakes once for most of a hop instead of at
        every write of a source that pushes sample by sample.
        """
        pipe = self._pipeline
        need = self._hops.next_boundary - pipe.total_out
        return max(1, math.floor((need - 1) * pipe.sfreq_in / pipe.sfreq) - pipe.n_held)

    def _update(self) -> bool:
        """Process the new samples; run the model and publish if they reached a hop boundary."""
        block = self._ring.read()
        pipe, hops = self._pipeline, self._hops
        pipe.feed(block)  # at once: the thread slept until the samples could reach a boundary
        pipe.poll(pylsl.local_clock())  # samples the clock held back too long (the source went quiet)
        if isinstance(self._stream, StreamReadout) and not pipe.window.full:
            self._stream.advance()  # the stream follows the window as it fills
        # a boundary is a slot, but a single pull over several boundaries is one (the source's
        # chunks are longer than a hop: nothing the engine could have published was skipped)
        slots = min(hops.passed(pipe.total_out, pipe.ready), max(1, block.n_pulls))
        now = time.monotonic()
        if len(block):
            self._data_at = now
        elif (
            not slots
            and pipe.ready
            and pipe.total_out != self._last_total
            and now - self._data_at >= QUIET_HOPS * self.live.hop
        ):
            slots = 1  # the source went quiet mid-hop (it ended, or an outage): its newest samples, once
        if slots:
            with self.stats.lock:
                self.stats.ticks += slots
                self.stats.skipped_updates += (
                    slots - 1
                )  # older boundaries of this read: the newest window serves
        elif not len(block):
            with self.stats.lock:
                self.stats.idle_updates += 1
        if not slots or not pipe.ready or pipe.total_out == self._last_total:
            return False
        self._last_total = pipe.total_out
        if pipe.time_base != self._time_base:  # the source came back on another clock: new time base
            self._time_base, self._last_stamp = pipe.time_base, -math.inf
        stamp = pipe.newest_stamp - self.lookahead
        if stamp <= self._last_stamp:  # never publish a time that is not after the last one
            with self.stats.lock:
                self.stats.non_monotonic += 1
            return False
        values = self._predict(pipe.window.view())
        self._outlet.push(values, stamp, pipe.quality)
        self._last_stamp = stamp
        latency = pylsl.local_clock() - pipe.newest_stamp
        with self.stats.lock:
            self.stats.updates += 1
            self.stats.latency.add(latency)
            if pipe.quality < 1.0:
                self.stats.bridged_updates += 1
        return True

    def _predict(self, window: torch.Tensor) -> np.ndarray:
        """De-normalised prediction at ``W - 1 - la`` for one window (n_chans, W) on the device."""
        with torch.inference_mode():
            if self._stream is not None:  # the read-out column alone
                return self._predictor.read_out(self._stream.forward()[:, None], column=0)
            out = self._stem.forward() if self._stem is not None else self._model(window.unsqueeze(0))[0]
            return self._predictor.read_out(out)

    # ------------------------------------------------------------------ reporting
    def status(self) -> dict:
        """The status object published on ``<outlet>-status`` (see docs/CONTRACTS.md)."""
        st, acq, ring = self.stats, self._acq, getattr(self, "_ring", None)
        pipe = getattr(self, "_pipeline", None)
        with st.lock:
            p50, p99 = st.latency.recent(50), st.latency.recent(99)
            state = self.state if acq is None or self.state == "stopped" else acq.engine_state
            return {
                "state": state,
                "source": self.spec.name if self.spec else self.query.describe(),
                "input_rate": pipe.clock.rate if pipe is not None and pipe.clock.started else st.rate.rate,
                "samples_received": acq.samples_received if acq else 0,
                "samples_processed": st.samples_processed,
                "gaps": st.gaps,
                "missing_samples": st.missing_samples,
                "clock_steps": st.clock_steps,
                "bridged_samples": st.bridged_samples,
                "resets": dict(st.resets),
                "quality": pipe.quality if pipe is not None else 0.0,
                "overflows": ring.overflows if ring else 0,
                "lost_samples": ring.lost_samples if ring else 0,
                "nan_resets": st.nan_resets,
                "nan_samples": st.nan_samples,
                "bad_channels": pipe.monitor.bad if pipe is not None and pipe.monitor else {},
                "bad_channel_action": pipe.monitor.method if pipe is not None and pipe.monitor else "",
                "reconnects": acq.reconnects if acq else 0,
                "refused_streams": acq.refused if acq else 0,
                "updates": st.updates,
                "skipped_updates": st.skipped_updates,
                "update_slots": st.ticks,
                "skipped_share": st.skip_share(),
                "window_fill": min(1.0, self._pipeline.window.count / self.n_times)
                if hasattr(self, "_pipeline")
                else 0.0,
                "latency_p50_ms": p50 * 1e3,
                "latency_p99_ms": p99 * 1e3,
                "update_p50_ms": st.update_seconds.recent(50) * 1e3,
                "model_hash": self.bundle.content_hash,
                "device": self.device.type,
                "lookahead": self.lookahead,
                "inference": self.inference,
            }

    def summary(self) -> str:
        """Final statistics in plain words (the CLI prints this at exit)."""
        st, acq, ring = self.stats, self._acq, getattr(self, "_ring", None)
        end = self._stopped_at if not math.isnan(self._stopped_at) else time.monotonic()
        ran = end - self._started_at if not math.isnan(self._started_at) else 0.0
        with st.lock:
            lines = [
                f"ran {ran:.1f} s on {self.device.type}; source {self.spec.describe() if self.spec else '-'}",
                f"samples received {acq.samples_received if acq else 0}, processed {st.samples_processed}, "
                f"non-finite dropped {st.nan_samples}",
                f"predictions published {st.updates}; update slots (hop boundaries passed) {st.ticks}, "
                f"skipped {st.skipped_updates} ({100 * st.skip_share():.2f} %); wake-ups {st.wakeups}, "
                f"without new data {st.idle_updates}",
                f"gaps {st.gaps} ({st.missing_samples} samples missing), clock steps {st.clock_steps}, "
                f"NaN runs {st.nan_resets} ({st.nan_samples} samples), overflows {ring.overflows if ring else 0} "
                f"({ring.lost_samples if ring else 0} samples lost), losses {acq.losses if acq else 0}, "
                f"reconnects {acq.reconnects if acq else 0}, refused streams {acq.refused if acq else 0}",
                f"bridged {st.bridged_samples} model-rate samples; predictions from bridged windows "
                f"{st.bridged_updates}; full resets {sum(st.resets.values())} "
                f"({', '.join(f'{k} {v}' for k, v in sorted(st.resets.items())) or 'none'})",
                f"latency (push - newest EEG used) p50 {st.latency.overall(50) * 1e3:.1f} ms, "
                f"p99 {st.latency.overall(99) * 1e3:.1f} ms; update compute p50 "
                f"{st.update_seconds.overall(50) * 1e3:.1f} ms, p99 {st.update_seconds.overall(99) * 1e3:.1f} ms",
            ]
        return "\n".join(lines)
