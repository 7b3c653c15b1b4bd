"""Time BEIRA with fused heads against the same weights as separate heads.

Prints, for each torch thread count, the forward time of one [1, n_chans, n_times] window
(inference mode) and the time of one training step (forward, MSE loss, backward, AdamW
step) on a batch, for the fused model (:class:`beira_rt.models.BEIRA`) and for the
separate-head model holding the same weights (:func:`beira_rt.models.split_heads`, the
layout of the paper's reference code). Figures are the median and minimum wall-clock time
and the minimum process CPU time (all threads) over the repeats, in milliseconds; on a shared
machine the minima are the robust figures.

    .venv/bin/python tools/bench_model.py                 # paper settings, threads 1 and 2
    .venv/bin/python tools/bench_model.py --variant causal --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from beira_rt.config import ModelConfig
from beira_rt.models import BEIRA, split_heads


def _times(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2
) -> dict[str, tuple[float, ...]]:
    """Median and minimum wall-clock time and minimum process CPU time of each function, in ms.

    The functions run interleaved (a, b, a, b, ...) so that a change in the load of a shared
    machine hits them alike.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append((time.perf_counter() - start) * 1e3)
            cpu[name].append((time.process_time() - start_cpu) * 1e3)
    return {name: (statistics.median(wall[name]), min(wall[name]), min(cpu[name])) for name in fns}


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=3e-4)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default 1,2)")
    parser.add_argument("--variant", choices=("reference", "causal"), default="reference")
    parser.add_argument("--n-chans", type=int, default=30)
    parser.add_argument("--n-rois", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16, help="training batch size (default 16)")
    parser.add_argument("--repeats", type=int, default=20, help="forward repeats (default 20)")
    parser.add_argument("--train-repeats", type=int, default=5, help="training-step repeats (default 5)")
    args = parser.parse_args(argv)

    cfg = ModelConfig(backbone="unet", variant=args.variant)
    torch.manual_seed(0)
    fused = BEIRA.from_config(cfg, args.n_chans, args.n_rois, 100.0)
    separate = split_heads(fused)
    n_params = sum(p.numel() for p in fused.parameters())
    per_head = sum(p.numel() for p in separate.heads[0].parameters())
    print(
        f"BEIRA {args.variant}: {args.n_rois} heads x {per_head:,} parameters = {n_params:,}; "
        f"window [1, {args.n_chans}, {cfg.n_times}], training batch {args.batch}; torch {torch.__version__}"
    )
    gen = torch.Generator().manual_seed(1)
    x1 = torch.randn(1, args.n_chans, cfg.n_times, generator=gen)
    xb = torch.randn(args.batch, args.n_chans, cfg.n_times, generator=gen)
    yb = torch.randn(args.batch, args.n_rois, cfg.n_times, generator=gen)

    for n_threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(n_threads)
        fused.eval(), separate.eval()
        with torch.inference_mode():
            forward = _times({"fused": lambda: fused(x1), "separate": lambda: separate(x1)}, args.repeats)
        train = _times(
            {"fused": _train_step(fused, xb, yb), "separate": _train_step(separate, xb, yb)},
            args.train_repeats,
            warmup=1,
        )
        rows = {(name, "forward"): forward[name] for name in forward}
        rows.update({(name, "train"): train[name] for name in train})
        print(f"\ntorch.set_num_threads({n_threads})")
        for what, label in (("forward", "forward [1, C, T]"), ("train", f"train step, batch {args.batch}")):
            f_med, f_min, f_cpu = rows["fused", what]
            s_med, s_min, s_cpu = rows["separate", what]
            print(
                f"  {label:<22} fused {f_med:8.1f} ms (min {f_min:8.1f}, CPU {f_cpu:8.1f})   "
                f"separate {s_med:8.1f} ms (min {s_min:8.1f}, CPU {s_cpu:8.1f})   "
                f"speed-up x{s_min / f_min:.2f} wall, x{s_cpu / f_cpu:.2f} CPU"
            )


if __name__ == "__main__":
    main()
