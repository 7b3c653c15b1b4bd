"""Throughput of the causal preprocessing, live (100 ms chunks) and over a whole recording.

Usage::

    .venv/bin/python tools/bench_preprocessing.py [--channels 30] [--seconds 300] [--rates 1000 250 5000]

Prints, for each input rate, the speed in multiples of real time for 100 ms
chunks (with the median and 99th-percentile cost of one chunk) and for the
whole recording at once (``preprocess_recording``), then the measured gain of
the default chain at a few frequencies.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _eeg(n_channels: int, n_samples: int, sfreq: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / sfreq
    x = rng.normal(0.0, 10.0, (n_channels, n_samples))
    x += rng.uniform(-5000, 5000, (n_channels, 1))
    x += 40 * np.sin(2 * np.pi * 50 * t)
    return x


def bench_rate(cfg, sfreq_in: float, n_channels: int, seconds: float) -> None:
    from beira_rt.preprocessing import CausalPreprocessor, preprocess_recording

    n = round(seconds * sfreq_in)
    x = _eeg(n_channels, n, sfreq_in)
    chunk = max(1, round(0.1 * sfreq_in))

    pre = CausalPreprocessor(cfg, sfreq_in, n_channels)
    costs = []
    outs = []
    t_all = time.perf_counter()
    for start in range(0, n, chunk):
        t0 = time.perf_counter()
        outs.append(pre.process(x[:, start : start + chunk]))
        costs.append(time.perf_counter() - t0)
    live_s = time.perf_counter() - t_all
    live = np.concatenate(outs, axis=1)

    t0 = time.perf_counter()
    whole = preprocess_recording(x, sfreq_in, cfg)
    whole_s = time.perf_counter() - t0
    diff = float(np.abs(live - whole).max() / np.abs(whole).max())
    costs_ms = 1e3 * np.array(costs)
    print(
        f"{n_channels} ch at {sfreq_in:g} Hz, {seconds:g} s: "
        f"100 ms chunks {seconds / live_s:7.0f} x real time "
        f"(per chunk median {np.median(costs_ms):.3f} ms, p99 {np.percentile(costs_ms, 99):.3f} ms); "
        f"whole recording {whole_s:.3f} s = {seconds / whole_s:7.0f} x real time; "
        f"max relative difference live vs whole {diff:.1e}"
    )


def response_table(cfg, sfreq_in: float) -> None:
    from beira_rt.preprocessing import design_filters

    design = design_filters(cfg, sfreq_in)
    print(f"design at {sfreq_in:g} Hz: {design.describe()}")
    freqs = np.array([0.2, 0.5, 1.0, 2.0, 10.0, 30.0, 40.0, 45.0, 50.0, 60.0, 100.0, 150.0])
    gains = 20 * np.log10(np.maximum(np.abs(design.frequency_response(freqs)), 1e-15))
    cells = [
        f"{f:g} Hz {g:.1f}" if g > -200 else f"{f:g} Hz < -200" for f, g in zip(freqs, gains, strict=True)
    ]
    print("  gain (dB): " + ", ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--rates", type=float, nargs="+", default=[1000.0, 250.0, 512.0, 5000.0])
    args = parser.parse_args()

    from beira_rt.config import PreprocessingConfig

    cfg = PreprocessingConfig()
    for rate in args.rates:
        bench_rate(cfg, rate, args.channels, args.seconds)
    response_table(cfg, 1000.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
