"""Time offline prediction over a whole recording (the parity-contract windows).

A randomly initialised BEIRA with the paper's settings predicts every ``hop`` samples of a
``seconds``-long random 30-channel signal at 100 Hz, at one look-ahead, with the shared
stem (:mod:`beira_rt.models.shared_windows`, what :func:`beira_rt.inference.predict_at` does by
default); the window-by-window definition is timed on the first ``--exact-windows``
windows and extrapolated, and the two are compared on those windows. Wall-clock and process
CPU times are printed (the CPU time is the steadier figure on a shared machine).

    .venv/bin/python tools/bench_predict.py                       # 300 s, hop 10, 1 thread
    .venv/bin/python tools/bench_predict.py --threads 2 --variant causal
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from beira_rt.config import ModelConfig
from beira_rt.inference import lookahead_column
from beira_rt.models import BEIRA
from beira_rt.models.shared_windows import window_columns


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=300.0, help="recording length (default 300)")
    parser.add_argument("--hop", type=int, default=10, help="model-rate samples between updates (default 10)")
    parser.add_argument("--lookahead", type=float, default=0.0, help="seconds (default 0)")
    parser.add_argument("--variant", choices=("reference", "causal"), default="reference")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--exact-windows", type=int, default=32, help="windows timed without sharing")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = ModelConfig(backbone="unet", variant=args.variant)
    torch.manual_seed(0)
    model = BEIRA.from_config(cfg, 30, 8, 100.0).eval()
    n = round(args.seconds * 100.0)
    z = torch.randn(30, n, generator=torch.Generator().manual_seed(1))
    ends = np.arange(cfg.n_times - 1, n, args.hop)
    column = lookahead_column(cfg.n_times, 100.0, args.lookahead)
    print(
        f"BEIRA {args.variant}, {args.seconds:g} s at 100 Hz, hop {args.hop} -> {len(ends)} windows of "
        f"{cfg.n_times}; look-ahead {args.lookahead:g} s; {args.threads} thread(s), batch {args.batch_size}"
    )
    window_columns(model, z, ends[:4], column, share=False)  # warm-up
    k = min(args.exact_windows, len(ends))
    exact, e_wall, e_cpu = _timed(
        lambda: window_columns(model, z, ends[:k], column, batch_size=args.batch_size, share=False)
    )
    shared, s_wall, s_cpu = _timed(
        lambda: window_columns(model, z, ends, column, batch_size=args.batch_size, share=True)
    )
    diff = float((shared[:k] - exact).abs().max())
    scale = float(exact.abs().max())
    per = len(ends) / k
    print(
        f"  window by window : {e_wall / k * 1e3:7.1f} ms/window wall, {e_cpu / k * 1e3:7.1f} ms CPU "
        f"-> whole recording ~{e_wall * per:6.1f} s wall (extrapolated from {k} windows)"
    )
    print(
        f"  shared levels    : {s_wall / len(ends) * 1e3:7.1f} ms/window wall, {s_cpu / len(ends) * 1e3:7.1f} ms CPU "
        f"-> whole recording  {s_wall:6.1f} s wall, {s_cpu:6.1f} s CPU"
    )
    print(f"  max |shared - window by window| on {k} windows: {diff:.2e} (outputs up to {scale:.2f})")


if __name__ == "__main__":
    main()
