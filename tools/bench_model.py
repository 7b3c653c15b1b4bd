"""Time BEIRA with fused heads against the same weights as separate heads.

Prints, for each torch thread count, the forward time of one [1, n_chans, n_times] window
(inference mode) and the time of one training step (forward, MSE loss, backward, AdamW
step) on a batch, for the fused model (:class:`beira_rt.models.BEIRA`) and for the
separate-head model holding the same weights (:func:`beira_rt.models.split_heads`, the
layout of the paper's reference code). Figures are the median and minimum wall-clock time
and the minimum process CPU time (all threads) over the repeats, in milliseconds; on a shared
machine the minima are the robust figures.

    .venv/bin/python tools/bench_model.py                 # configs/paper.yaml, threads 1 and 2
    .venv/bin/python tools/bench_model.py --variant causal --threads 1
    python tools/bench_model.py --device cuda --precisions fp32,bf16   # on a GPU (threads ignored)

On CUDA each timed call ends with ``torch.cuda.synchronize()``, so the figures are whole
kernels-done latencies; the CPU-time column is the host's share. The numerics are those of
``beira-train`` and the engine (no TF32, deterministic cuDNN) unless ``--torch-numerics``: the
H200 figures of docs/gpu_check_h200.txt were taken before that default, i.e. with torch's.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from bench_offline import training_step

from beira_rt.config import load_config
from beira_rt.inference import strict_cuda_numerics
from beira_rt.models import BEIRA, split_heads

REPO = Path(__file__).resolve().parents[1]


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


def _synced(fn: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """``fn`` followed by a CUDA synchronisation on a GPU (kernels are asynchronous)."""
    if device.type != "cuda":
        return fn  # type: ignore[return-value]

    def call() -> None:
        fn()
        torch.cuda.synchronize(device)

    return call


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default 1,2)")
    parser.add_argument(
        "--config",
        default=str(REPO / "configs" / "paper.yaml"),
        help="YAML config (default: configs/paper.yaml)",
    )
    parser.add_argument("--variant", choices=("reference", "causal"), default="reference")
    parser.add_argument("--n-chans", type=int, default=30)
    parser.add_argument("--n-rois", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16, help="training batch size (default 16)")
    parser.add_argument("--repeats", type=int, default=20, help="forward repeats (default 20)")
    parser.add_argument("--train-repeats", type=int, default=5, help="training-step repeats (default 5)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--precisions", default="fp32", help="comma-separated: fp32, bf16 (autocast of the training step)"
    )
    parser.add_argument(
        "--torch-numerics",
        action="store_true",
        help="CUDA: keep PyTorch's defaults (TF32 convolutions, cuDNN's free choice of algorithms) instead of "
        "the strict numerics that beira-train and the engine set (beira_rt.inference.strict_cuda_numerics)",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA GPU")
    if device.type == "cuda" and not args.torch_numerics:
        strict_cuda_numerics()

    model_cfg = load_config(args.config).model
    if model_cfg.backbone != "unet":
        parser.error(f"{args.config}: backbone {model_cfg.backbone!r}; this benchmark times the U-Net")
    cfg = dataclasses.replace(model_cfg, variant=args.variant)
    torch.manual_seed(0)
    fused = BEIRA.from_config(cfg, args.n_chans, args.n_rois, 100.0).to(device)
    separate = split_heads(fused).to(device)
    n_params = sum(p.numel() for p in fused.parameters())
    per_head = sum(p.numel() for p in separate.heads[0].parameters())
    print(
        f"BEIRA {args.variant}: {args.n_rois} heads x {per_head:,} parameters = {n_params:,}; "
        f"window [1, {args.n_chans}, {cfg.n_times}], training batch {args.batch}; torch {torch.__version__}, "
        + (torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU")
    )
    gen = torch.Generator().manual_seed(1)
    x1 = torch.randn(1, args.n_chans, cfg.n_times, generator=gen).to(device)
    xb = torch.randn(args.batch, args.n_chans, cfg.n_times, generator=gen).to(device)
    yb = torch.randn(args.batch, args.n_rois, cfg.n_times, generator=gen).to(device)

    precisions = args.precisions.split(",")
    thread_counts = [int(t) for t in args.threads.split(",")] if device.type == "cpu" else [None]
    for n_threads in thread_counts:
        if n_threads is not None:
            torch.set_num_threads(n_threads)
        fused.eval(), separate.eval()
        with torch.inference_mode():
            forward = _times(
                {
                    "fused": _synced(lambda: fused(x1), device),
                    "separate": _synced(lambda: separate(x1), device),
                },
                args.repeats,
            )
        rows = {(name, "forward"): forward[name] for name in forward}
        labels = [("forward", "forward [1, C, T]")]
        for precision in precisions:
            train = _times(
                {
                    "fused": _synced(training_step(fused, xb, yb, precision == "bf16"), device),
                    "separate": _synced(training_step(separate, xb, yb, precision == "bf16"), device),
                },
                args.train_repeats,
                warmup=1,
            )
            rows.update({(name, precision): train[name] for name in train})
            labels.append((precision, f"train {precision}, batch {args.batch}"))
        print(f"\ntorch.set_num_threads({n_threads})" if n_threads is not None else f"\n{device}")
        for what, label in labels:
            f_med, f_min, f_cpu = rows["fused", what]
            s_med, s_min, s_cpu = rows["separate", what]
            rate = f"   fused {args.batch / f_min * 1e3:,.0f} windows/s" if what != "forward" else ""
            print(
                f"  {label:<22} fused {f_med:8.1f} ms (min {f_min:8.1f}, CPU {f_cpu:8.1f})   "
                f"separate {s_med:8.1f} ms (min {s_min:8.1f}, CPU {s_cpu:8.1f})   "
                f"speed-up x{s_min / f_min:.2f} wall, x{s_cpu / f_cpu:.2f} CPU{rate}"
            )


if __name__ == "__main__":
    main()
