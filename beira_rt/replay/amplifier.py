"""An LSL source that times its samples as real amplifier apps do, with faults on request.

:class:`~beira_rt.replay.player.Player` stamps every sample exactly. Real
amplifier apps do not: they push a chunk when the driver hands it over and
stamp it with ``local_clock()`` at that moment, so chunk stamps jitter by
milliseconds and sometimes step backwards, chunk sizes vary, the crystal runs
slightly off its nominal rate, radio links drop out, and channels go flat or
rail. :class:`AmplifierSimulator` reproduces that on purpose, for fault
tests, soak runs and trying a setup without hardware:

- ``jitter`` (s): each chunk is stamped ``local_clock()`` at its push plus
  a uniform error in ``[-jitter, +jitter]`` (liblsl back-dates the rest of the
  chunk at the nominal rate); ``backward_every`` chunks the stamp is
  ``backward`` s earlier than that. With ``stamp_at="schedule"`` the base is
  the time the push was due instead of the moment it happened: the stamps keep
  the same jitter whatever delays the simulator's own thread (a loaded test
  machine), so that a test's "true" times stay the source's;
- ``chunk_size``: an int, or ``(lo, hi)`` for random sizes;
- ``rate_error``: the true rate is ``sfreq * (1 + rate_error)`` (the stream
  still declares ``sfreq``);
- ``clock_offset`` (s) added to every stamp (a host whose clock differs,
  read without clock synchronisation); ``clock_jump = (at, seconds)`` adds
  ``seconds`` to every stamp from ``at`` seconds on (no sample lost);
- ``outages``: ``(start, duration)`` spans whose samples are never pushed
  (lost in transit; the source goes quiet, then carries on);
- ``nan_bursts``: ``(start, duration)`` spans pushed as NaN on every channel;
- ``flat`` / ``railed``: ``{label: (start, stop)}`` spans where a channel is
  constant (0 V) or pinned at ``rail_value`` µV.

Times are seconds of the recording since its first sample. Sample ``i``
happens at :meth:`true_time` ``(i) = t0 + i / (sfreq (1 + rate_error))``,
which is what a perfect stamp would be. Data are given in microvolts and
published in ``unit`` (``volts`` or ``microvolts``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pylsl

from beira_rt._logging import logger
from beira_rt.lsl import write_channels

__all__ = ["AmplifierSimulator"]

_UNIT_SCALE = {"volts": 1e-6, "V": 1e-6, "microvolts": 1.0, "uV": 1.0}


@dataclass
class AmplifierSimulator:
    """Push ``data`` (n_samples, n_channels, µV) as an amplifier-like LSL stream; loops at the end."""

    data: np.ndarray
    sfreq: float
    labels: list[str]
    name: str
    source_id: str
    unit: str = "volts"
    stype: str = "EEG"
    chunk_size: int | tuple[int, int] = 10
    jitter: float = 0.005
    stamp_at: str = "push"  #: "push" (local_clock() at the push) or "schedule" (when it was due)
    backward_every: int = 0
    backward: float = 0.008
    rate_error: float = 0.0
    clock_offset: float = 0.0
    clock_jump: tuple[float, float] | None = None
    outages: list[tuple[float, float]] = field(default_factory=list)
    nan_bursts: list[tuple[float, float]] = field(default_factory=list)
    flat: dict[str, tuple[float, float]] = field(default_factory=dict)
    railed: dict[str, tuple[float, float]] = field(default_factory=dict)
    rail_value: float = 187_500.0
    duration: float | None = None
    seed: int = 0
    wait_consumer: float = 30.0
    #: When given, sample 0 waits for it (after a consumer connected): several sources start together.
    go: threading.Event | None = None

    def __post_init__(self) -> None:
        if self.stamp_at not in ("push", "schedule"):
            raise ValueError(f"stamp_at must be 'push' or 'schedule'; got {self.stamp_at!r}.")
        if self.unit not in _UNIT_SCALE:
            raise ValueError(f"unit must be one of {', '.join(_UNIT_SCALE)}; got {self.unit!r}.")
        if self.data.ndim != 2 or self.data.shape[1] != len(self.labels):
            raise ValueError(f"data of shape {self.data.shape} does not fit {len(self.labels)} labels.")
        self.stop = threading.Event()
        self.connected = threading.Event()  #: set once a consumer connected
        self.started = threading.Event()  #: set once t0 is known
        self.t0 = float("nan")  #: local_clock() of sample 0
        self.pushed = 0  #: samples pushed (lost ones excluded)
        self.next_index = 0  #: index of the next sample (lost ones included)
        self.error: BaseException | None = None
        self.finished = threading.Event()  #: set when run() returns
        self.backward_steps = 0  #: chunks stamped earlier than the chunk before

    # ------------------------------------------------------------------ truth for the caller
    @property
    def true_rate(self) -> float:
        return self.sfreq * (1.0 + self.rate_error)

    def true_time(self, i: np.ndarray | int) -> np.ndarray | float:
        """When sample ``i`` happened on this machine's LSL clock (a perfect stamp)."""
        return self.t0 + np.asarray(i, dtype=np.float64) / self.true_rate

    def samples(self, i: np.ndarray) -> np.ndarray:
        """Samples ``i`` as pushed (µV, faults applied; lost ones included), shape (len(i), n_channels)."""
        i = np.asarray(i)
        out = self.data[i % self.data.shape[0]].astype(np.float64)
        t = i / self.true_rate
        for start, dur in self.nan_bursts:
            out[(t >= start) & (t < start + dur)] = np.nan
        for spans, value in ((self.flat, 0.0), (self.railed, self.rail_value)):
            for label, (start, stop) in spans.items():
                out[(t >= start) & (t < stop), self.labels.index(label)] = value
        return out

    def lost(self, i: np.ndarray) -> np.ndarray:
        """Whether samples ``i`` fall in an outage (never pushed)."""
        t = np.asarray(i) / self.true_rate
        gone = np.zeros(t.shape, dtype=bool)
        for start, dur in self.outages:
            gone |= (t >= start) & (t < start + dur)
        return gone

    # ------------------------------------------------------------------ stream
    def _outlet(self) -> pylsl.StreamOutlet:
        info = pylsl.StreamInfo(
            self.name, self.stype, len(self.labels), self.sfreq, "float32", self.source_id
        )
        n = len(self.labels)
        write_channels(info, self.labels, ["EEG"] * n, [self.unit] * n)
        return pylsl.StreamOutlet(info, chunk_size=0, max_buffered=60)

    def run(self) -> int:
        """Stream until :attr:`stop` is set or ``duration`` s have passed; returns samples pushed."""
        rng = np.random.default_rng(self.seed)
        outlet = self._outlet()
        scale = _UNIT_SCALE[self.unit]
        try:
            deadline = time.monotonic() + self.wait_consumer
            while not outlet.wait_for_consumers(0.1):
                if self.stop.is_set():
                    return 0
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"no consumer connected to {self.name!r} within {self.wait_consumer} s"
                    )
            self.connected.set()
            while self.go is not None and not self.go.wait(0.1):
                if self.stop.is_set():
                    return 0
            time.sleep(0.05)
            self.t0 = pylsl.local_clock()
            self.started.set()
            n_chunk, last_stamp = 0, -np.inf
            end = None if self.duration is None else round(self.duration * self.true_rate)
            while not self.stop.is_set() and (end is None or self.next_index < end):
                if isinstance(self.chunk_size, tuple):
                    m = int(rng.integers(self.chunk_size[0], self.chunk_size[1] + 1))
                else:
                    m = int(self.chunk_size)
                idx = np.arange(self.next_index, self.next_index + m)
                due = float(self.true_time(idx[-1]))
                delay = due - pylsl.local_clock()
                if delay > 0 and self.stop.wait(delay):
                    break
                self.next_index += m
                keep = ~self.lost(idx)
                if not keep.any():
                    continue
                idx = idx[keep]  # a chunk cut by an outage keeps its samples after the outage
                base = pylsl.local_clock() if self.stamp_at == "push" else due
                stamp = base + rng.uniform(-self.jitter, self.jitter) + self.clock_offset
                n_chunk += 1
                if self.backward_every and n_chunk % self.backward_every == 0:
                    stamp -= self.backward
                if self.clock_jump is not None and idx[-1] / self.true_rate >= self.clock_jump[0]:
                    stamp += self.clock_jump[1]
                if stamp < last_stamp:
                    self.backward_steps += 1
                last_stamp = stamp
                chunk = (self.samples(idx) * scale).astype(np.float32)
                outlet.push_chunk(chunk, stamp)
                self.pushed += idx.size
            time.sleep(0.3)  # let the last chunk leave before the outlet goes
            return self.pushed
        except BaseException as err:
            self.error = err
            logger.exception("the amplifier simulator failed")
            raise
        finally:
            del outlet
            self.finished.set()
