"""A known-data LSL source for tests: run in a thread or as ``python -m tests._lsl_source``.

Channel 0 carries the sample index (as float64 exactly representable up to
2**53), the others a deterministic waveform of the index, so a consumer can
check that nothing was dropped, duplicated or reordered.
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SourceSpec:
    """What a test source publishes."""

    name: str
    source_id: str
    n_channels: int = 4
    sfreq: float = 1000.0
    n_samples: int = 2000
    chunk_size: int = 10
    stype: str = "EEG"

    def args(self) -> list[str]:
        return [
            "--name",
            self.name,
            "--source-id",
            self.source_id,
            "--n-channels",
            str(self.n_channels),
            "--sfreq",
            str(self.sfreq),
            "--n-samples",
            str(self.n_samples),
            "--chunk-size",
            str(self.chunk_size),
            "--type",
            self.stype,
        ]


def expected_data(start: int, stop: int, n_channels: int) -> np.ndarray:
    """The samples ``start:stop`` a source publishes, array of shape (n_samples, n_channels)."""
    idx = np.arange(start, stop, dtype=np.float64)
    out = np.empty((idx.size, n_channels), dtype=np.float64)
    out[:, 0] = idx
    for c in range(1, n_channels):
        out[:, c] = np.sin(2 * np.pi * idx * c / 97.0) * c
    return out


def channel_labels(n_channels: int) -> list[str]:
    return ["IDX"] + [f"C{c}" for c in range(1, n_channels)]


def labelled_info(name, stype, labels, rate, fmt, source_id, units=None, types=None):
    """A stream info whose description names every channel, written with raw pylsl.

    On purpose not :func:`beira_rt.lsl.write_channels`: the tests' sources are written the way
    other LSL apps write them (label, unit, type; a unit left out where ``units[i]`` is None).
    """
    import pylsl

    units = units if units is not None else ["microvolts"] * len(labels)
    types = types if types is not None else ["EEG"] * len(labels)
    info = pylsl.StreamInfo(name, stype, len(labels), rate, fmt, source_id)
    chans = info.desc().append_child("channels")
    for label, unit, kind in zip(labels, units, types, strict=True):
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        if unit is not None:
            ch.append_child_value("unit", unit)
        ch.append_child_value("type", kind)
    return info


def make_outlet(spec: SourceSpec):
    import pylsl

    labels = channel_labels(spec.n_channels)
    info = labelled_info(spec.name, spec.stype, labels, spec.sfreq, "double64", spec.source_id)
    return pylsl.StreamOutlet(info, chunk_size=spec.chunk_size, max_buffered=60)


def publish(spec: SourceSpec, stop: threading.Event | None = None, wait_consumer: float = 10.0) -> int:
    """Publish ``spec.n_samples`` known samples at real-time pace; returns how many were pushed."""
    import pylsl

    outlet = make_outlet(spec)
    try:
        if not outlet.wait_for_consumers(wait_consumer):
            raise RuntimeError(f"no consumer connected to {spec.name!r} within {wait_consumer} s")
        data = expected_data(0, spec.n_samples, spec.n_channels)
        period = 1.0 / spec.sfreq
        t0 = pylsl.local_clock()
        pushed = 0
        while pushed < spec.n_samples and not (stop is not None and stop.is_set()):
            end = min(pushed + spec.chunk_size, spec.n_samples)
            due = t0 + (end - 1) * period
            delay = due - pylsl.local_clock()
            if delay > 0:
                time.sleep(delay)
            outlet.push_chunk(data[pushed:end], timestamp=t0 + (end - 1) * period)
            pushed = end
        # give the last chunk time to leave before the outlet goes away
        time.sleep(0.2)
        return pushed
    finally:
        del outlet


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--source-id", required=True)
    p.add_argument("--n-channels", type=int, default=4)
    p.add_argument("--sfreq", type=float, default=1000.0)
    p.add_argument("--n-samples", type=int, default=2000)
    p.add_argument("--chunk-size", type=int, default=10)
    p.add_argument("--type", default="EEG")
    a = p.parse_args(argv)
    spec = SourceSpec(a.name, a.source_id, a.n_channels, a.sfreq, a.n_samples, a.chunk_size, a.type)
    pushed = publish(spec)
    print(f"pushed {pushed}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
