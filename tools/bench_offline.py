"""Offline speed: whole-recording prediction as a multiple of real time, and training throughput.

1. Offline prediction: a recording (a synthetic 30-channel EEG at 1000 Hz, or a CWL subject
   with --data/--subject) goes through the causal preprocessing and the offline read-out of
   ``offline.metrics.predict_offline`` (windows tiled at half a window); the figure is
   recording seconds per wall-clock second (goal >= 200x on CPU). With --bundle the bundle's
   model and preprocessing are used, otherwise a freshly initialised model of the config.
2. Training throughput: windows per second of full training steps (forward, MSE, backward,
   AdamW) for the fused model (``beira_rt.models.BEIRA``) and the same weights as separate
   heads (``beira_rt.models.split_heads``, the reference layout), fp32 and bf16 autocast.

The minimum over repeats is the robust figure on a shared machine; the median is printed too.

    .venv/bin/python tools/bench_offline.py                       # the default model, 300 s
    .venv/bin/python tools/bench_offline.py --config configs/paper.yaml   # the paper model
    .venv/bin/python tools/bench_offline.py --threads 1 --seconds 600 --train-repeats 3
    .venv/bin/python tools/bench_offline.py --config configs/fast_test.yaml --skip-train
    .venv/bin/python tools/bench_offline.py --skip-predict --skip-train --histories runs/*/history.jsonl

   A causal model (``--variant causal``) also times the live read-out over the whole recording
   (``predict_at``, the trainer's look-ahead evaluation) at the live hop and at every sample: the
   window path (shared levels, ``window_columns``) against one streaming pass
   (``stream_columns``, each sample computed once); and read-out (a) in one pass
   (``offline.metrics.predict_causal_pass``) against the tiled windows: speed, NRMSE, and with
   --bundle and --data the test-block r of both.

   With ``training.fit: closed_form`` (the read-out default) there is no gradient step to time:
   the fit itself is timed instead (SPoC front end, batch-norm statistics, ridge read-out) on a
   synthetic CWL subject (written to a temporary folder; or --data/--subject), with the
   validation r it reaches; the closed form reaches its final r when it ends.

3. With --histories: from the history.jsonl of real training runs, the time (and steps) each run
   took to reach 90 % (--fraction) of its best validation r.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from beira_rt.config import BeiraConfig, load_config, override  # noqa: E402
from beira_rt.models import BEIRA, build_model, split_heads  # noqa: E402
from beira_rt.models.shared_windows import window_columns  # noqa: E402
from beira_rt.models.streaming import stream_columns  # noqa: E402
from beira_rt.preprocessing import Normalizer, preprocess_recording  # noqa: E402
from offline.metrics import pearson_r, predict_causal_pass, predict_live, predict_offline  # noqa: E402


def _times(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _recording(args: argparse.Namespace, cfg: BeiraConfig) -> tuple[np.ndarray, float]:
    if args.data:
        from offline.loader import load_cwl_subject

        rec = load_cwl_subject(
            args.data, args.subject, cfg.data, args.atlas, args.atlas_labels, cfg.preprocessing.sfreq
        )
        return rec.eeg, rec.sfreq
    rng = np.random.default_rng(0)
    sfreq = 1000.0
    return rng.standard_normal((30, int(args.seconds * sfreq))) * 1e-5, sfreq


def bench_prediction(args: argparse.Namespace, cfg: BeiraConfig) -> None:
    """Print preprocessing + offline read-out speed as a multiple of real time."""
    eeg, sfreq = _recording(args, cfg)
    seconds = eeg.shape[1] / sfreq
    if args.bundle:
        from beira_rt.bundle import load_bundle

        bundle = load_bundle(args.bundle)
        cfg, model, norm = bundle.config, bundle.build_model(), bundle.normalizer
        eeg = eeg[: bundle.n_chans]
    else:
        torch.manual_seed(0)
        model = build_model(cfg.model, eeg.shape[0], args.n_rois, cfg.preprocessing.sfreq).eval()
        norm = None
    state: dict[str, np.ndarray] = {}

    def preprocess() -> None:
        z = preprocess_recording(eeg, sfreq, cfg.preprocessing)
        n = norm or Normalizer.fit(z)
        state["z"] = n.apply(z).astype(np.float32)

    def predict() -> None:
        predict_offline(model, state["z"], cfg.model.n_times, cfg.model.variant, batch_size=args.eval_batch)

    t_pre = _times(preprocess, args.repeats, warmup=0)
    t_pred = _times(predict, args.repeats)
    total = min(t_pre) + min(t_pred)
    n_windows = int(np.ceil(state["z"].shape[1] / (cfg.model.n_times // 2))) + 1
    print(
        f"offline prediction of {seconds:.0f} s ({eeg.shape[0]} channels at {sfreq:g} Hz), "
        f"{cfg.model.variant} model, ~{n_windows} windows of {cfg.model.n_times}:"
    )
    print(
        f"  preprocessing   min {min(t_pre):7.2f} s  median {statistics.median(t_pre):7.2f} s  -> x{seconds / min(t_pre):7.0f} real time"
    )
    print(
        f"  model read-out  min {min(t_pred):7.2f} s  median {statistics.median(t_pred):7.2f} s  -> x{seconds / min(t_pred):7.0f} real time"
    )
    print(f"  whole pipeline  {total:7.2f} s -> x{seconds / total:.0f} real time (goal >= 200x)")
    la = round((args.lookahead if args.lookahead is not None else 0.0) * cfg.preprocessing.sfreq)
    mode: list[str] = []

    def live() -> None:
        mode[:] = [
            predict_live(model, state["z"], 0, state["z"].shape[1], la, batch_size=args.eval_batch, step=1)[2]
        ]

    t_live = _times(live, args.repeats)
    print(
        f"  live read-out at every sample (predict_live, beira-train evaluate's 'live'), look-ahead {la}: "
        f"{mode[0]}, min {min(t_live):6.2f} s -> x{seconds / min(t_live):6.0f} real time (goal >= 1000x)"
    )
    if cfg.model.variant == "causal" and isinstance(model, BEIRA):  # the U-Net's streaming and window paths
        bench_live_readout(args, cfg, model, state["z"], seconds)
        bench_one_pass(args, cfg, model, state["z"], seconds)


def bench_live_readout(
    args: argparse.Namespace, cfg: BeiraConfig, model: BEIRA, z: np.ndarray, seconds: float
) -> None:
    """Print the live read-out over a whole recording (``predict_at``'s work) as a multiple of real
    time: each window's shared-level pass (the window path) against one streaming pass."""
    zt = torch.from_numpy(np.ascontiguousarray(z))
    W, sfreq = cfg.model.n_times, cfg.preprocessing.sfreq
    la = round((args.lookahead if args.lookahead is not None else 0.0) * sfreq)
    print(f"live read-out over the recording (predict_at), causal model, look-ahead {la} samples:")
    for hop in sorted({max(1, round(cfg.live.hop * sfreq)), 1}, reverse=True):
        ends = np.arange(W - 1, zt.shape[1], hop, dtype=np.int64)
        old = _times(lambda ends=ends: window_columns(model, zt, ends, W - 1 - la), args.repeats)
        new = _times(lambda ends=ends: stream_columns(model, zt, torch.from_numpy(ends), la), args.repeats)
        print(
            f"  every {hop:2d} samples: windows (shared levels) min {min(old):6.2f} s -> x{seconds / min(old):6.0f}"
            f" | streaming min {min(new):6.2f} s -> x{seconds / min(new):6.0f} real time (goal >= 1000x)"
        )


def _nrmse(a: np.ndarray, b: np.ndarray) -> float:
    """RMS of ``a - b`` over the RMS of ``b`` (all ROIs together)."""
    return float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b**2)))


def bench_one_pass(
    args: argparse.Namespace, cfg: BeiraConfig, model: BEIRA, z: np.ndarray, seconds: float
) -> None:
    """Print read-out (a) of a causal model in one pass (``predict_causal_pass``, each sample once)
    against the tiled windows (``predict_offline``): speed and deviation (NRMSE); with --bundle
    and --data also the test-block r against the truth of both."""
    W = cfg.model.n_times
    old = _times(lambda: predict_offline(model, z, W, "causal", batch_size=args.eval_batch), args.repeats)
    new = _times(lambda: predict_causal_pass(model, z, 0, z.shape[1]), args.repeats)
    tiled = predict_offline(model, z, W, "causal", batch_size=args.eval_batch)
    one = predict_causal_pass(model, z, 0, z.shape[1])
    print("offline read-out (a) of the causal model: tiled windows vs one pass (an approximation):")
    print(
        f"  tiled windows min {min(old):6.2f} s -> x{seconds / min(old):6.0f} | one pass min {min(new):6.2f} s "
        f"-> x{seconds / min(new):6.0f} real time; NRMSE one pass vs windows {_nrmse(one, tiled):.4f}"
    )
    if not (args.bundle and args.data):
        return
    from beira_rt.bundle import load_bundle
    from offline.evaluate import bundle_on_recording
    from offline.loader import load_cwl_subject

    bundle = load_bundle(args.bundle)
    rec = load_cwl_subject(
        args.data, args.subject, bundle.config.data, args.atlas, args.atlas_labels, cfg.preprocessing.sfreq
    )
    _, data, model = bundle_on_recording(bundle, rec, "cpu")
    test = data.split.test
    tiled = predict_offline(model, data.eeg, W, "causal")[:, test.slice]
    one = predict_causal_pass(model, data.eeg, 0, data.eeg.shape[1])[:, test.slice]
    true = data.target[:, test.slice]
    r_tiled, r_one = np.nanmean(pearson_r(tiled, true)), np.nanmean(pearson_r(one, true))
    print(
        f"  test block: mean r tiled {r_tiled:.4f}, one pass {r_one:.4f} (difference {r_one - r_tiled:+.4f}); "
        f"NRMSE {_nrmse(one, tiled):.4f}"
    )


def training_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool) -> Callable[[], None]:
    """One full training step (forward, MSE, backward, AdamW) on ``x`` / ``y``, bf16 autocast of the
    forward when asked, on the device of ``x`` (also used by tools/bench_model.py)."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=3e-4)
    model.train()

    def step() -> None:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        loss = torch.nn.functional.mse_loss(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def bench_training(args: argparse.Namespace, cfg: BeiraConfig) -> None:
    """Print training windows per second, fused vs separate heads (the U-Net), fp32 and bf16.

    A window is what the trainer draws: ``n_times`` samples, lengthened by the receptive field
    for the read-out back end (its loss is on the last ``n_times``)."""
    torch.manual_seed(0)
    fused = build_model(cfg.model, 30, args.n_rois, cfg.preprocessing.sfreq)
    models = (
        {"fused": fused, "separate": split_heads(fused)} if isinstance(fused, BEIRA) else {"fused": fused}
    )
    n = cfg.model.n_times + getattr(fused, "receptive_field", 1) - 1
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 30, n, generator=gen)
    y = torch.randn(args.batch, args.n_rois, n, generator=gen)
    print(f"\ntraining steps, batch {args.batch} x [30, {n}], {args.n_rois} heads ({cfg.model.backbone}):")
    for precision in args.precisions.split(","):
        for name, model in models.items():
            t = _times(training_step(model, x, y, precision == "bf16"), args.train_repeats)
            print(
                f"  {name:8s} {precision}: step min {min(t):6.2f} s median {statistics.median(t):6.2f} s"
                f" -> {args.batch / min(t):6.1f} windows/s"
            )


def bench_closed_form(args: argparse.Namespace, cfg: BeiraConfig) -> None:
    """Print the time of each stage of a closed-form fit (``training.fit: closed_form``) on the
    training block of a CWL subject, and the validation r it reaches."""
    import tempfile

    from offline.dataset import prepare_recording
    from offline.loader import load_cwl_subject
    from offline.metrics import predict_block
    from offline.pipeline import fresh_model
    from offline.ridge import fit_readout_with
    from offline.synthetic import load_synthetic_subject
    from offline.train import set_batch_norm_stats

    if args.data:
        rec = load_cwl_subject(
            args.data, args.subject, cfg.data, args.atlas, args.atlas_labels, cfg.preprocessing.sfreq
        )
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rec = load_synthetic_subject(
                tmp, cfg.data, cfg.preprocessing.sfreq, duration=args.seconds, seed=0
            )
    data = prepare_recording(rec, cfg)
    train, val = data.split.train, data.split.val
    stages: dict[str, list[float]] = {
        "front end (SPoC)": [],
        "batch-norm statistics": [],
        "ridge read-out": [],
    }
    r_val = []
    for _ in range(args.train_repeats):
        t0 = time.perf_counter()
        model = fresh_model(cfg, [data], torch.device("cpu"))
        t1 = time.perf_counter()
        set_batch_norm_stats(model, [(data.eeg, train)])
        t2 = time.perf_counter()
        fit_readout_with(model, [(data.eeg, data.target, train)], cfg.training)
        t3 = time.perf_counter()
        for name, t in zip(stages, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            stages[name].append(t)
        pred, truth = predict_block(model, data, cfg, val)
        r_val.append(float(np.nanmean(pearson_r(pred, truth))))
    total = [sum(v) for v in zip(*stages.values(), strict=True)]
    train_s = len(train) / data.sfreq
    print(
        f"\nclosed-form fit (training.fit {cfg.fit}) on the {train_s:.0f}-s training block of "
        f"{'synthetic subject seed 0' if not args.data else args.subject}, {args.train_repeats} repeat(s):"
    )
    for name, t in stages.items():
        print(f"  {name:24s} min {min(t):6.2f} s median {statistics.median(t):6.2f} s")
    print(
        f"  {'whole fit':24s} min {min(total):6.2f} s median {statistics.median(total):6.2f} s -> "
        f"{train_s / min(total):.0f} s of EEG per second; validation r {r_val[0]:.3f} "
        f"(all of it when the fit ends: 100 % after {min(total):.1f} s)"
    )


def time_to_fraction(path: Path, fraction: float = 0.9) -> dict[str, float]:
    """From a training run's ``history.jsonl``: when the validation r first reached ``fraction`` of its best.

    Returns the best mean validation r over the epochs, and the seconds and steps of training at the
    first epoch whose validation r was at least ``fraction`` of it (validation time included).
    """
    records = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]
    best = max(r["val_r_mean"] for r in records)
    first = next(r for r in records if r["val_r_mean"] >= fraction * best)
    return {
        "best_val_r": best,
        "seconds": first["seconds"],
        "step": first["step"],
        "total_seconds": records[-1]["seconds"],
        "total_steps": records[-1]["step"],
    }


def bench_histories(paths: list[str], fraction: float) -> None:
    """Print, per training run, the time to reach ``fraction`` of its best validation r."""
    print(f"\ntime to {fraction:.0%} of the best validation r (from history.jsonl of real training runs):")
    for path in paths:
        t = time_to_fraction(Path(path), fraction)
        print(
            f"  {path}: best val r {t['best_val_r']:.3f}; {fraction:.0%} of it after {t['seconds']:.0f} s "
            f"({t['step']} steps) of a {t['total_seconds']:.0f} s, {t['total_steps']}-step run"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="YAML config (default: built-in defaults, the paper's model)")
    parser.add_argument("--variant", choices=("reference", "causal"), help="override model.variant")
    parser.add_argument("--bundle", help="time this bundle's model instead of a fresh one")
    parser.add_argument("--data", help="CWL data folder (default: a synthetic random recording)")
    parser.add_argument("--subject", default="trio1")
    parser.add_argument("--atlas")
    parser.add_argument("--atlas-labels")
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the synthetic recording")
    parser.add_argument("--n-rois", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="prediction repeats")
    parser.add_argument(
        "--lookahead", type=float, help="causal models: look-ahead (s) of the live read-out timed (default 0)"
    )
    parser.add_argument("--eval-batch", type=int, default=16, help="windows per forward pass")
    parser.add_argument("--batch", type=int, default=16, help="training batch")
    parser.add_argument("--train-repeats", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--skip-train", action="store_true", help="only the prediction benchmark")
    parser.add_argument("--skip-predict", action="store_true", help="no prediction benchmark")
    parser.add_argument(
        "--histories",
        nargs="*",
        default=[],
        metavar="HISTORY",
        help="history.jsonl files of training runs: print the time each took to reach --fraction of its "
        "best validation r",
    )
    parser.add_argument("--fraction", type=float, default=0.9)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    cfg = override(cfg, {"model.variant": args.variant})
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    if not args.skip_predict:
        bench_prediction(args, cfg)
    if not args.skip_train:
        if cfg.gradient_steps:
            bench_training(args, cfg)
        else:
            bench_closed_form(args, cfg)
    if args.histories:
        bench_histories(args.histories, args.fraction)


if __name__ == "__main__":
    main()
