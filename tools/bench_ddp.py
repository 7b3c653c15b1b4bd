"""Many subjects: the preprocessing cache's effect on start-up, and DDP training throughput.

1. Start-up for --subjects (default 4) synthetic CWL subjects: load + preprocess every subject
   into a fresh cache (cold), then read them all again (warm, memory-mapped), then the same
   without the cache; each followed by ``prepare_recording`` (split, normalisation), i.e. all
   ``beira-train`` does before its first step.
2. Training throughput, windows/s: ``train_model`` of one epoch of --steps steps with the global
   batch of the config, in 1 process and under ``torchrun --standalone --nproc-per-node 2``
   (gloo, one torch thread per process), timed on rank 0 from start to end of the epoch
   (including its one validation pass).

    .venv/bin/python tools/bench_ddp.py --data /tmp/cwl4            # writes 4 subjects if missing
    .venv/bin/python tools/bench_ddp.py --data /tmp/cwl4 --config configs/fast_test.yaml --steps 40

Prints the figures; on a shared CPU, run it when the machine is otherwise idle (the load
average is printed beside them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from beira_rt._logging import set_log_level  # noqa: E402
from beira_rt.config import BeiraConfig, load_config, override  # noqa: E402
from offline.synthetic import ATLAS_FILE, ATLAS_LABELS_FILE, make_synthetic_dataset  # noqa: E402


def _subjects(data: Path, n: int, duration: float) -> list[str]:
    names = [f"trio{k}" for k in range(1, n + 1)]
    missing = [s for s in names if not (data / s).is_dir()]
    if missing:
        print(f"writing synthetic subjects {missing} ({duration:g} s) into {data}")
        make_synthetic_dataset(data, missing, duration=duration, seed=0)
    return names


def _startup(cfg: BeiraConfig, data: Path, subjects: list[str], cache_dir: Path | None) -> float:
    """Seconds to load (through the cache when given one) and prepare every subject."""
    from offline.cache import cached_recording, cwl_inputs
    from offline.dataset import prepare_recording
    from offline.loader import load_cwl_subject

    atlas, labels = data / "atlas" / ATLAS_FILE, data / "atlas" / ATLAS_LABELS_FILE
    t = time.perf_counter()
    for s in subjects:

        def load(s: str = s) -> object:
            return load_cwl_subject(data, s, cfg.data, atlas, labels, cfg.preprocessing.sfreq)

        rec = cached_recording(cwl_inputs(data, s, atlas, labels), load, cfg, s, cache_dir)
        prepare_recording(rec, cfg)
    return time.perf_counter() - t


def _worker(args: argparse.Namespace) -> None:
    """One rank of the throughput run (started by torchrun, or alone for 1 process)."""
    from beira_rt.models import build_model
    from offline.cache import cached_recording, cwl_inputs
    from offline.dataset import prepare_recording
    from offline.distributed import process_group
    from offline.loader import load_cwl_subject
    from offline.train import train_model

    torch.set_num_threads(1)
    with process_group("cpu") as ctx:
        cfg = _config(args)
        data = Path(args.data)
        atlas, labels = data / "atlas" / ATLAS_FILE, data / "atlas" / ATLAS_LABELS_FILE
        rec = cached_recording(
            cwl_inputs(data, "trio1", atlas, labels),
            lambda: load_cwl_subject(data, "trio1", cfg.data, atlas, labels, cfg.preprocessing.sfreq),
            cfg, "trio1", Path(args.cache),
        )  # fmt: skip
        prepared = prepare_recording(rec, cfg)
        torch.manual_seed(0)
        model = build_model(cfg.model, prepared.n_chans, prepared.n_rois, prepared.sfreq)
        result = train_model(model, prepared, cfg, device=torch.device("cpu"), progress=False)
        if ctx.is_main:
            Path(args.result).write_text(json.dumps({"steps": result.n_steps, "seconds": result.seconds}))


def _config(args: argparse.Namespace) -> BeiraConfig:
    return override(load_config(args.config), {
        "training.fit": "gradient",  # what is measured: gradient steps (the default fits in closed form)
        "training.max_epochs": 1, "training.steps_per_epoch": args.steps, "training.max_minutes": None,
        "training.num_threads": 1, "training.device": "cpu",
    })  # fmt: skip


def _throughput(args: argparse.Namespace, processes: int, cache: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        worker = [__file__, "--worker", "--data", args.data, "--config", args.config, "--steps", str(args.steps),
                  "--cache", str(cache), "--result", str(result)]  # fmt: skip
        if processes == 1:
            cmd = [sys.executable, *worker]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                   str(processes), *worker]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{processes} processes failed:\n{done.stderr[-3000:]}")
        return json.loads(result.read_text())


def main() -> None:
    """Parse the arguments and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/tmp/beira-bench-cwl", help="data folder (synthetic subjects)")
    parser.add_argument("--subjects", type=int, default=4, help="subjects for the start-up figure")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds per synthetic subject")
    parser.add_argument("--config", default=str(REPO / "configs" / "default.yaml"))
    parser.add_argument("--steps", type=int, default=20, help="training steps per throughput run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    set_log_level(0, 2)  # errors only (the loader warns about the synthetic extra volumes)
    if args.worker:
        _worker(args)
        return
    torch.set_num_threads(1)
    data = Path(args.data)
    subjects = _subjects(data, args.subjects, args.duration)
    cfg = _config(args)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        cold = _startup(cfg, data, subjects, cache)
        warm = _startup(cfg, data, subjects, cache)
        none = _startup(cfg, data, subjects, None)
        print(f"start-up, {len(subjects)} subjects x {args.duration:g} s (load + preprocess + prepare):")
        print(f"  no cache {none:.2f} s, cold cache (build) {cold:.2f} s, warm cache (memory-mapped) "
              f"{warm:.2f} s: {none / warm:.1f}x faster")  # fmt: skip
        print(f"training throughput ({args.config}, global batch {cfg.training.batch_size}, "
              f"{args.steps} steps + 1 validation, 1 torch thread per process):")  # fmt: skip
        for processes in (1, 2):
            r = _throughput(args, processes, cache)
            rate = r["steps"] * cfg.training.batch_size / r["seconds"]
            print(f"  {processes} process{'es' if processes > 1 else ''}: {rate:.1f} windows/s "
                  f"({r['steps']} steps in {r['seconds']:.1f} s)")  # fmt: skip
    print(f"cpu count {os.cpu_count()}, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
