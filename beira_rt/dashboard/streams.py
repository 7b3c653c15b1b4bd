"""LSL readers of the dashboard: one worker thread per stream, bounded buffers, reconnection.

Each :class:`StreamReader` owns its inlet (the engine never knows about it),
resolves its stream with a non-blocking :class:`pylsl.ContinuousResolver`,
drains the inlet into a preallocated :class:`~beira_rt.dashboard.buffers.RingBuffer`
and, when the stream vanishes (:class:`pylsl.util.LostError`), says ``lost`` and
resolves it again until it returns. The GUI only reads snapshots and counters.

States: ``waiting`` (never found yet), ``connected``, ``stalled`` (connected,
but no sample for ``stale_seconds``), ``lost`` (was connected, gone; resolving
again), ``stopped``.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from beira_rt._logging import logger
from beira_rt.dashboard.buffers import RingBuffer, Snapshot

__all__ = ["StatusReader", "StreamMeta", "StreamReader", "StreamSelector"]

#: Children of ``desc/beira`` read from the prediction stream (docs/CONTRACTS.md; ``source`` is the engine's extra).
BEIRA_DESC_KEYS = ("model_hash", "bold_delay", "lookahead", "sfreq_model", "device", "source")
#: Capacity of the buffer of a stream with an irregular rate.
IRREGULAR_CAPACITY = 4096
_OPEN_TIMEOUT = 2.0


@dataclass(frozen=True)
class StreamSelector:
    """Which stream a reader looks for: an LSL property and its value.

    Attributes
    ----------
    prop : str
        ``"name"``, ``"type"`` or ``"source_id"``.
    value : str
        The value it must have.
    """

    prop: str
    value: str

    def __post_init__(self) -> None:
        if self.prop not in ("name", "type", "source_id"):
            raise ValueError(f"A stream is selected by 'name', 'type' or 'source_id', not {self.prop!r}.")
        if not self.value:
            raise ValueError(f"The {self.prop} of a stream to show must not be empty.")

    def describe(self) -> str:
        return f"{self.prop} {self.value!r}"


@dataclass(frozen=True)
class StreamMeta:
    """What the dashboard knows about a connected stream (from its full stream info).

    Attributes
    ----------
    name, stype, source_id, uid, hostname : str
        LSL identity of the stream.
    sfreq : float
        Nominal rate in Hz (0 for an irregular stream).
    labels : tuple of str
        One label per channel (``ch1``... where the stream gives none).
    units : tuple of str
        One unit per channel (empty where the stream gives none).
    is_string : bool
        True for a string stream (the status stream).
    extra : dict
        Values under ``desc/beira`` (model hash, BOLD delay, look-ahead...), as strings.
    """

    name: str
    stype: str
    source_id: str
    uid: str
    hostname: str
    sfreq: float
    labels: tuple[str, ...]
    units: tuple[str, ...]
    is_string: bool
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        return len(self.labels)

    @classmethod
    def from_info(cls, info: Any) -> StreamMeta:
        """Read a full ``pylsl.StreamInfo`` (one returned by ``inlet.info()``)."""
        import pylsl

        n = info.channel_count()
        labels = [f"ch{i + 1}" for i in range(n)]
        units = [""] * n
        ch = info.desc().child("channels").child("channel")
        for i in range(n):
            if ch.empty():
                break
            labels[i] = ch.child_value("label") or labels[i]
            units[i] = ch.child_value("unit")
            ch = ch.next_sibling()
        beira = info.desc().child("beira")
        extra = (
            {}
            if beira.empty()
            else {k: beira.child_value(k) for k in BEIRA_DESC_KEYS if beira.child_value(k)}
        )
        return cls(
            name=info.name(),
            stype=info.type(),
            source_id=info.source_id(),
            uid=info.uid(),
            hostname=info.hostname(),
            sfreq=float(info.nominal_srate()),
            labels=tuple(labels),
            units=tuple(units),
            is_string=info.channel_format() == pylsl.cf_string,
            extra=extra,
        )


class StreamReader:
    """Read one LSL stream in a worker thread into a bounded ring buffer.

    Parameters
    ----------
    role : str
        What the stream is to the dashboard (``"eeg"``, ``"predictions"``...), for messages.
    selector : StreamSelector
        The stream to look for.
    buffer_seconds : float
        Seconds of samples kept for display (the capacity of the ring buffer is
        this times the nominal rate; :data:`IRREGULAR_CAPACITY` samples for an
        irregular stream).
    stale_seconds : float
        A connected stream without a sample for this long is shown as ``stalled``.
    dejitter : bool
        Smooth the timestamps (regular streams such as EEG); clock synchronisation is always on.
    poll_interval : float
        Seconds the thread sleeps when the inlet had nothing new.
    """

    def __init__(
        self,
        role: str,
        selector: StreamSelector,
        buffer_seconds: float,
        *,
        stale_seconds: float = 3.0,
        dejitter: bool = False,
        poll_interval: float = 0.02,
    ) -> None:
        if buffer_seconds <= 0:
            raise ValueError(f"buffer_seconds must be positive; got {buffer_seconds}.")
        self.role = role
        self.selector = selector
        self.buffer_seconds = float(buffer_seconds)
        self.stale_seconds = float(stale_seconds)
        self.dejitter = dejitter
        self.poll_interval = float(poll_interval)
        self.meta: StreamMeta | None = None
        self.buffer: RingBuffer | None = None
        self.n_received = 0
        self.n_connects = 0
        self.n_lost = 0
        self.n_gaps = 0
        self.measured_rate = math.nan
        self._state = "waiting"
        self._last_data_clock = math.nan
        self._last_stamp = math.nan
        self._rate_clock = math.nan
        self._rate_count = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ public, any thread

    @property
    def state(self) -> str:
        """``waiting``, ``connected``, ``stalled``, ``lost`` or ``stopped``."""
        if self._state == "connected" and self.seconds_since_data() > self.stale_seconds:
            return "stalled"
        return self._state

    def seconds_since_data(self) -> float:
        """Seconds since the last sample arrived (or since connecting); inf when never connected."""
        import pylsl

        if math.isnan(self._last_data_clock):
            return math.inf
        return pylsl.local_clock() - self._last_data_clock

    def snapshot(self, seconds: float | None = None, channels: list[int] | None = None) -> Snapshot | None:
        """Copy the newest samples (about ``seconds`` of them at the nominal rate); None before any connection."""
        buf, meta = self.buffer, self.meta
        if buf is None or meta is None or buf.n_channels != meta.n_channels:
            return None  # never, or just now reconnected to a stream of another shape
        if channels is not None and max(channels, default=-1) >= buf.n_channels:
            return None
        n_last = None
        if seconds is not None and meta.sfreq > 0:
            n_last = math.ceil(seconds * meta.sfreq * 1.05) + 2
        return buf.snapshot(n_last, channels)

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is not None:
            raise RuntimeError(f"The {self.role} reader was already started; create a new reader instead.")
        self._thread = threading.Thread(target=self._run, name=f"dashboard-{self.role}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker thread and close the inlet."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("the %s reader thread did not stop within %.1f s", self.role, timeout)
        self._state = "stopped"

    # ------------------------------------------------------------------ worker thread

    def _run(self) -> None:
        import pylsl
        from pylsl.util import LostError

        resolver = pylsl.ContinuousResolver(
            prop=self.selector.prop, value=self.selector.value, forget_after=2.0
        )
        dead: set[str] = set()  # uids of instances that were lost or failed to open
        inlet = None
        try:
            while not self._stop.is_set():
                if inlet is None:
                    found = resolver.results()
                    dead &= {info.uid() for info in found}
                    candidates = [info for info in found if info.uid() not in dead]
                    if not candidates:
                        self._stop.wait(0.1)
                        continue
                    try:
                        inlet = self._connect(candidates[0])
                    except (TimeoutError, LostError) as err:
                        logger.info(
                            "%s stream %s could not be opened (%s); retrying",
                            self.role,
                            self.selector.describe(),
                            err,
                        )
                        dead.add(candidates[0].uid())
                    except ValueError as err:  # a stream of the wrong kind: never retried
                        logger.error("%s Pass the name of the right stream.", err)
                        dead.add(candidates[0].uid())
                    continue
                try:
                    got = self._drain(inlet)
                except LostError:
                    logger.warning(
                        "%s stream %s was lost; waiting for it to return", self.role, self.selector.describe()
                    )
                    assert self.meta is not None
                    dead.add(self.meta.uid)
                    self.n_lost += 1
                    self._state = "lost"
                    inlet.close_stream()
                    inlet = None
                    continue
                if not got:
                    self._stop.wait(self.poll_interval)
        finally:
            if inlet is not None:
                inlet.close_stream()
            self._state = "stopped"

    def _connect(self, info: Any) -> Any:
        import pylsl

        flags = pylsl.proc_clocksync | (pylsl.proc_dejitter if self.dejitter else 0)
        inlet = pylsl.StreamInlet(
            info, max_buflen=max(10, math.ceil(self.buffer_seconds)), recover=False, processing_flags=flags
        )
        try:
            meta = StreamMeta.from_info(inlet.info(timeout=_OPEN_TIMEOUT))
            self._on_connect(meta)
            inlet.open_stream(timeout=_OPEN_TIMEOUT)
        except BaseException:
            inlet.close_stream()
            raise
        self.n_connects += 1
        self._last_data_clock = pylsl.local_clock()
        self._rate_clock, self._rate_count = self._last_data_clock, 0
        self._last_stamp = math.nan
        self._state = "connected"
        logger.info(
            "%s stream %r connected (%d channels, %g Hz, host %s)",
            self.role,
            meta.name,
            meta.n_channels,
            meta.sfreq,
            meta.hostname,
        )
        return inlet

    def _on_connect(self, meta: StreamMeta) -> None:
        """Keep the buffer across reconnections of the same shape; else allocate a new one."""
        if meta.is_string:
            raise ValueError(
                f"The {self.role} stream {meta.name!r} carries strings; the dashboard expects numbers there."
            )
        same_shape = self.meta is not None and (self.meta.n_channels, self.meta.sfreq) == (
            meta.n_channels,
            meta.sfreq,
        )
        if self.buffer is None or not same_shape:
            cap = math.ceil(self.buffer_seconds * meta.sfreq) + 1 if meta.sfreq > 0 else IRREGULAR_CAPACITY
            self.buffer = RingBuffer(cap, meta.n_channels)
        self.meta = meta

    def _drain(self, inlet: Any) -> int:
        """Pull everything available now; returns the number of samples."""
        import pylsl

        total = 0
        while True:
            data, stamps = inlet.pull_chunk(timeout=0.0, max_samples=4096, as_numpy=True)
            n = len(stamps)
            if n == 0:
                break
            self._store(data, np.asarray(stamps, dtype=np.float64))
            total += n
            if n < 4096:
                break
        now = pylsl.local_clock()
        if total:
            self.n_received += total
            self._last_data_clock = now
            self._rate_count += total
        if now - self._rate_clock >= 1.0:
            self.measured_rate = self._rate_count / (now - self._rate_clock)
            self._rate_clock, self._rate_count = now, 0
        return total

    def _store(self, data: np.ndarray, stamps: np.ndarray) -> None:
        assert self.buffer is not None and self.meta is not None
        if self.meta.sfreq > 0:
            steps = np.diff(np.concatenate(([self._last_stamp], stamps)))
            self.n_gaps += int(np.sum(steps > 2.0 / self.meta.sfreq))
        self._last_stamp = float(stamps[-1])
        self.buffer.write(data, stamps)


class StatusReader(StreamReader):
    """Read the engine's status stream (JSON strings, see docs/CONTRACTS.md).

    Keeps the newest message and a bounded history of the last messages.
    """

    def __init__(self, selector: StreamSelector, *, stale_seconds: float = 3.0, history: int = 64) -> None:
        super().__init__("status", selector, 60.0, stale_seconds=stale_seconds)
        self.latest: dict[str, Any] | None = None
        self.history: deque[tuple[float, dict[str, Any]]] = deque(maxlen=history)
        self.n_bad = 0
        self._lock = threading.Lock()

    def messages(self) -> list[tuple[float, dict[str, Any]]]:
        """A copy of the recent (timestamp, message) pairs, oldest first."""
        with self._lock:
            return list(self.history)

    def _on_connect(self, meta: StreamMeta) -> None:
        if not meta.is_string:
            raise ValueError(
                f"The status stream {meta.name!r} carries numbers; the engine's status stream carries JSON strings."
            )
        with self._lock:
            self.latest = None  # a message of an earlier connection says nothing about this one
        self.meta = meta

    def _drain(self, inlet: Any) -> int:
        import pylsl

        samples, stamps = inlet.pull_chunk(timeout=0.0, max_samples=256)
        for sample, stamp in zip(samples, stamps, strict=True):
            self._parse(sample[0] if sample else "", stamp)
        if stamps:
            self.n_received += len(stamps)
            self._last_data_clock = pylsl.local_clock()
        return len(stamps)

    def _parse(self, text: str, stamp: float) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            self.n_bad += 1
            if self.n_bad == 1:
                logger.warning("the status stream sent a message that is not a JSON object: %.80r", text)
            return
        with self._lock:
            self.latest = message
            self.history.append((float(stamp), message))
