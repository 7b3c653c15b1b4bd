"""The session runner: predictions in, the feedback signal and the session markers out.

A process of its own (``beira-rt session PROTOCOL.yaml --predictions BEIRA``). It reads
the engine's prediction stream by name (any engine on the network), and for every
prediction publishes one sample of ``BEIRA-feedback`` (type ``Feedback``, double64,
channels :data:`~beira_rt.session.feedback.FEEDBACK_CHANNELS`), stamped when it was
computed. ``BEIRA-session`` (type ``Markers``) carries JSON strings: ``session_start``,
``block_start`` / ``block_end`` (stamped with the scheduled boundary), ``baseline`` (the
statistics, once a baseline block ends), ``signal_lost`` / ``signal_back`` (no prediction
for ``no_signal_after`` s: the display shows "no signal", never stale feedback),
``runner_restarted`` and ``session_end``.

Block boundaries are processed in order with the predictions: a prediction received at
``t`` belongs to the block running at ``t``. A state file (``--state``) is rewritten at
every boundary; a runner restarted with ``--resume`` after a crash continues the same
session on the same schedule (LSL's clock is the machine's monotonic clock, shared by
processes) with the baseline statistics it had.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pylsl

from beira_rt._logging import logger
from beira_rt._signals import StopFlag
from beira_rt.lsl import (
    MARKERS_TYPE,
    PREDICTION_TYPE,
    QUALITY_LABEL,
    StreamMeta,
    StreamQuery,
    StreamReader,
    StreamRefused,
    write_channels,
    write_values,
)

from .feedback import FEEDBACK_CHANNELS, FeedbackComputer
from .protocol import Block, Protocol

__all__ = ["FEEDBACK_TYPE", "SessionRunner"]

FEEDBACK_TYPE = "Feedback"
#: Seconds the runner waits, its streams open and a recorder on them, before it publishes (see run()).
RECORDER_SETTLE = 2.0


class _Predictions(StreamReader):
    def __init__(self, runner: SessionRunner, name: str) -> None:
        super().__init__(
            StreamQuery(name=name, stype=PREDICTION_TYPE),
            role="predictions",
            # the stamps as the engine published them (as a recorder keeps them): the feedback's
            # eeg_time then finds its prediction in the recording exactly
            processing_flags=0,
            pull_timeout=0.005,  # a prediction is handed on as soon as it arrives
            poll_interval=0.0,
            stale_seconds=runner.no_signal_after,
        )
        self.runner = runner

    def accept(self, meta: StreamMeta) -> None:
        self.runner.check_stream(meta)

    def ingest(self, data, stamps, arrival) -> None:
        for row, stamp in zip(data, stamps, strict=True):
            self.runner.on_prediction(row, float(stamp))


class SessionRunner:
    """Run one protocol against a prediction stream (see the module docstring).

    Parameters
    ----------
    protocol : Protocol
    predictions : str
        Name of the engine's prediction stream.
    feedback_name, session_name : str
        Names of the two streams published.
    state_path : str | Path | None
        Where the session state is kept (for ``resume``).
    resume : bool
        Continue the session of ``state_path`` if it is still running.
    no_signal_after : float
        Seconds without a prediction after which the signal is lost.
    """

    def __init__(
        self,
        protocol: Protocol,
        predictions: str,
        *,
        feedback_name: str = "BEIRA-feedback",
        session_name: str = "BEIRA-session",
        state_path: str | Path | None = None,
        resume: bool = False,
        no_signal_after: float = 1.0,
    ) -> None:
        self.protocol = protocol
        self.predictions = predictions
        self.feedback_name = feedback_name
        self.session_name = session_name
        self.state_path = Path(state_path) if state_path else None
        self.resume = resume
        self.no_signal_after = float(no_signal_after)
        self.protocol_hash = hashlib.sha256(protocol.text.encode()).hexdigest()[:16]
        self.computer: FeedbackComputer | None = None
        self.sham = _load_sham(protocol.feedback.sham) if protocol.feedback.sham else None
        self.t0 = math.nan
        self.lookahead = math.nan
        self.n_feedback = 0
        self.n_rewards = 0
        self.latencies: list[float] = []  # feedback push - (prediction stamp + look-ahead), s
        self._lock = threading.Lock()
        self._next = 0  # index of the next boundary event to publish
        self._events: list[tuple[float, str, Block]] = []
        self._signal = True
        self._last_prediction = math.nan
        self._baseline_values: list[float] = []
        self._baseline_block = -1
        self._quality_col = -1
        self._feedback: pylsl.StreamOutlet | None = None
        self._markers: pylsl.StreamOutlet | None = None

    # ------------------------------------------------------------------ stream checks
    def check_stream(self, meta: StreamMeta) -> None:
        """Refuse a prediction stream without the target ROIs, or at another look-ahead."""
        try:
            self.protocol.check_rois(meta.labels, f"the prediction stream {meta.name!r}")
        except ValueError as err:
            raise StreamRefused(str(err)) from None
        la = float(meta.extra.get("lookahead", "nan"))
        want = self.protocol.feedback.lookahead
        if want is not None and not (math.isfinite(la) and abs(la - want) < 1e-6):
            raise StreamRefused(
                f"the prediction stream {meta.name!r} is at look-ahead {la:g} s but the protocol asks for "
                f"{want:g} s (feedback.lookahead); run the engine with --lookahead {want:g}."
            )
        columns = {meta.labels.index(roi): w for roi, w in self.protocol.weights.items()}
        fb = self.protocol.feedback
        self.lookahead = la if math.isfinite(la) else 0.0
        self._quality_col = meta.labels.index(QUALITY_LABEL) if QUALITY_LABEL in meta.labels else -1
        with self._lock:
            if self.computer is None:
                self.computer = FeedbackComputer(
                    columns, fb.smoothing, fb.normalise, fb.threshold, fb.direction
                )
                if self._baseline_values:
                    self.computer.restore(self._baseline_values, self._baseline_block)

    # ------------------------------------------------------------------ outlets
    def _open_outlets(self, source: str) -> None:
        fb = self.protocol.feedback
        info = pylsl.StreamInfo(
            self.feedback_name, FEEDBACK_TYPE, len(FEEDBACK_CHANNELS), pylsl.IRREGULAR_RATE, "double64",
            f"{self.feedback_name}-{self.protocol.info.name}",
        )  # fmt: skip
        units = ("a.u.", "a.u.", "a.u.", "bool", "bool", "s", "ratio")
        write_channels(info, FEEDBACK_CHANNELS, ["Feedback"] * len(FEEDBACK_CHANNELS), units)
        write_values(
            info,
            "beira",
            {
                "protocol": self.protocol.info.name,
                "protocol_hash": self.protocol_hash,
                "target": fb.target,
                "smoothing": float(fb.smoothing),
                "normalise": fb.normalise,
                "threshold": "" if fb.threshold is None else float(fb.threshold),
                "predictions": source,
            },
        )
        self._feedback = pylsl.StreamOutlet(info, chunk_size=1, max_buffered=60)
        minfo = pylsl.StreamInfo(
            self.session_name, MARKERS_TYPE, 1, pylsl.IRREGULAR_RATE, "string",
            f"{self.session_name}-{self.protocol.info.name}",
        )  # fmt: skip
        write_channels(minfo, ["event"], [MARKERS_TYPE], ["JSON"])
        self._markers = pylsl.StreamOutlet(minfo)

    def _mark(self, event: str, stamp: float, **fields: Any) -> None:
        text = json.dumps({"event": event, **fields}, allow_nan=False, default=_jsonable)
        self._markers.push_sample([text], stamp)
        logger.info("session: %s", text if len(text) < 200 else text[:200] + "...")

    # ------------------------------------------------------------------ schedule
    def _build_events(self) -> None:
        self._events = []
        for b in self.protocol.blocks:
            self._events.append((b.start, "block_start", b))
            self._events.append((b.end, "block_end", b))
        self._events.sort(key=lambda e: (e[0], e[1] == "block_start"))  # an end before the next start

    def _advance(self, now: float) -> None:
        """Publish every boundary up to ``now`` (LSL clock), in order; caller holds the lock."""
        while self._next < len(self._events) and self.t0 + self._events[self._next][0] <= now:
            t, kind, block = self._events[self._next]
            self._next += 1
            stamp = self.t0 + t
            if kind == "block_start":
                self._mark("block_start", stamp, **block.describe())
                if block.kind == "baseline" and self.computer is not None:
                    self.computer.begin_baseline(block.index)
            else:
                self._mark("block_end", stamp, index=block.index, name=block.name, kind=block.kind)
                if block.kind == "baseline" and self.computer is not None:
                    stats = self.computer.end_baseline()
                    if stats is not None:
                        self._baseline_values = stats.values.tolist()
                        self._baseline_block = block.index
                        self._mark("baseline", stamp, **stats.describe())
            self._save_state()

    # ------------------------------------------------------------------ predictions
    def on_prediction(self, row: np.ndarray, stamp: float) -> None:
        """One prediction (from the reader thread): feedback computed and pushed at once."""
        with self._lock:
            now = pylsl.local_clock()
            self._advance(now)
            if self.computer is None or not math.isfinite(self.t0) or self._next >= len(self._events):
                return
            block = self.protocol.block_at(now - self.t0)
            kind = block.kind if block else None
            value, target, smoothed, reward = self.computer.step(row, stamp, kind)
            if self.sham is not None:
                value = _sham_value(self.sham, now - self.t0)
                fb = self.protocol.feedback
                reward = int(
                    fb.threshold is not None and kind in ("feedback", "transfer") and math.isfinite(value)
                    and (value > fb.threshold if fb.direction == "up" else value < fb.threshold)
                )  # fmt: skip
            quality = float(row[self._quality_col]) if self._quality_col >= 0 else 1.0
            shown = 1.0 if kind == "feedback" else 0.0
            t_push = pylsl.local_clock()
            self._feedback.push_sample([value, target, smoothed, float(reward), shown, stamp, quality], now)
            self.latencies.append(t_push - (stamp + self.lookahead))
            self.n_feedback += 1
            self.n_rewards += reward
            if not self._signal:
                self._signal = True
                self._mark("signal_back", now)
            self._last_prediction = now

    # ------------------------------------------------------------------ state (resume)
    def _save_state(self) -> None:
        if self.state_path is None:
            return
        state = {
            "t0": self.t0,
            "protocol_hash": self.protocol_hash,
            "baseline_values": self._baseline_values,
            "baseline_block": getattr(self, "_baseline_block", -1),
            "next_event": self._next,
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def _load_state(self) -> bool:
        if not (self.resume and self.state_path and self.state_path.is_file()):
            return False
        state = json.loads(self.state_path.read_text(encoding="utf-8"))
        if state.get("protocol_hash") != self.protocol_hash:
            logger.warning(
                "the state file %s is of another protocol; starting a new session", self.state_path
            )
            return False
        if pylsl.local_clock() >= state["t0"] + self.protocol.duration:
            logger.warning("the session of %s has already ended; starting a new one", self.state_path)
            return False
        self.t0 = float(state["t0"])
        self._baseline_values = list(state.get("baseline_values") or [])
        self._baseline_block = int(state.get("baseline_block", -1))
        return True

    # ------------------------------------------------------------------ run
    def run(
        self,
        connect_timeout: float = 30.0,
        stop: threading.Event | StopFlag | None = None,
        wait_consumer: float = 0.0,
    ) -> dict[str, Any]:
        """Connect, run the whole protocol (or the rest of it), return a summary.

        ``wait_consumer``: seconds to wait, with the outlets open, for a consumer of both (the
        recorder) before the session clock starts.
        """
        stop = stop or threading.Event()
        reader = _Predictions(self, self.predictions)
        meta = reader.connect(connect_timeout)
        self._open_outlets(meta.name)
        if wait_consumer > 0:  # (a restarted runner too: the recorder re-joins its streams)
            for outlet in (self._markers, self._feedback):
                if not outlet.wait_for_consumers(wait_consumer):
                    logger.warning(
                        "nobody records the session streams after %.0f s; starting anyway", wait_consumer
                    )
        self._build_events()
        resumed = self._load_state()
        if not resumed:  # an engine still filling its first window publishes nothing yet
            logger.info("waiting for the first prediction from %r", meta.name)
            if not reader.wait_for_data(connect_timeout + 120.0, stop):
                raise RuntimeError(
                    f"the prediction stream {meta.name!r} sent nothing; no session was started."
                )
        if resumed and self._baseline_values and self.computer is not None:
            self.computer.restore(self._baseline_values, self._baseline_block)
        if wait_consumer > 0:
            # LabRecorder opens its inlets one by one (and re-joins a stream that returns with its
            # source id within about a second): a consumer on these two outlets does not prove its
            # inlet on the prediction stream is open yet, and what is pushed before is not recorded
            stop.wait(RECORDER_SETTLE)
        with self._lock:
            if resumed:
                now = pylsl.local_clock()
                # boundaries already passed were published by the runner that died
                while self._next < len(self._events) and self.t0 + self._events[self._next][0] <= now:
                    self._next += 1
                block = self.protocol.block_at(now - self.t0)
                self._mark("runner_restarted", now, t0=self.t0, block=block.describe() if block else None)
                if block is not None and block.kind == "baseline" and self.computer is not None:
                    self.computer.begin_baseline(block.index)  # the rest of the interrupted baseline
            else:
                self.t0 = pylsl.local_clock()
                self._mark(
                    "session_start", self.t0, protocol=self.protocol.info.name, target=self.protocol.feedback.target,
                    protocol_hash=self.protocol_hash, sham=self.sham is not None, blocks=len(self.protocol.blocks),
                )  # fmt: skip
            self._last_prediction = pylsl.local_clock()
            self._save_state()
        dropped = reader.flush()  # predictions queued while waiting are older than the session
        logger.debug("dropped %d predictions from before the session start", dropped)
        reader.start()
        end = self.t0 + self.protocol.duration
        try:
            while not stop.is_set():
                now = pylsl.local_clock()
                with self._lock:
                    self._advance(now)
                    if self._signal and now - self._last_prediction > self.no_signal_after and now < end:
                        self._signal = False
                        self._mark("signal_lost", now, seconds=now - self._last_prediction)
                if now >= end:
                    break
                stop.wait(0.005)
        finally:
            reader.stop()
        with self._lock:
            self._advance(pylsl.local_clock())
            self._mark(
                "session_end", pylsl.local_clock(), feedback_samples=self.n_feedback, rewards=self.n_rewards
            )
        time.sleep(0.3)  # let the last markers reach the recorder
        lat = np.array(self.latencies) * 1e3
        return {
            "feedback_samples": self.n_feedback,
            "rewards": self.n_rewards,
            "resumed": resumed,
            "eeg_to_feedback_ms_p50": float(np.percentile(lat, 50)) if lat.size else math.nan,
            "eeg_to_feedback_ms_p99": float(np.percentile(lat, 99)) if lat.size else math.nan,
        }

    def close(self) -> None:
        self._feedback = self._markers = None


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


def _load_sham(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(seconds since that session's start, fed-back value) of an earlier session's XDF."""
    import pyxdf

    streams, _ = pyxdf.load_xdf(path)
    fb = next((s for s in streams if s["info"]["type"][0] == FEEDBACK_TYPE), None)
    marks = next(
        (
            s
            for s in streams
            if s["info"]["type"][0] == MARKERS_TYPE and '"session_start"' in str(s["time_series"])
        ),
        None,
    )
    if fb is None or marks is None or not len(fb["time_stamps"]):
        raise ValueError(
            f"{path} holds no feedback stream with its session markers; it cannot drive a sham session."
        )
    t0 = next(
        t
        for t, m in zip(marks["time_stamps"], marks["time_series"], strict=True)
        if '"session_start"' in m[0]
    )
    return np.asarray(fb["time_stamps"]) - t0, np.asarray(fb["time_series"])[:, 0].astype(np.float64)


def _sham_value(sham: tuple[np.ndarray, np.ndarray], t: float) -> float:
    times, values = sham
    i = int(np.searchsorted(times, t, side="right")) - 1
    return float(values[i]) if i >= 0 else math.nan
