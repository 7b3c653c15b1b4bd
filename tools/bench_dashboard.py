"""Does the dashboard slow the engine? Engine latency p50/p99 with and without the dashboard running.

On a private LSL session (loopback only) it starts:

1. a 30-channel 1000 Hz EEG source (a subprocess of this script; the channel
   labels are the bundle's, the signal alpha-band oscillations plus noise);
2. the engine, ``beira-rt run --model BUNDLE --source NAME`` (default bundle:
   the reference architecture with untrained weights: latency depends on the
   architecture, not on the weights), for the whole measurement;
3. in alternating blocks (ABBA order, so that a drift of the machine's load hits
   both conditions alike), ``beira-rt dashboard --predictions ... --eeg ...
   --screenshot ... --duration S`` (offscreen, at its configured redraw rate).

The latency of every prediction is measured where it arrives, in this process:
arrival time minus (its stamp + look-ahead), i.e. the engine's latency (push
time minus the newest EEG used) plus LSL loopback transport (~0.3 ms). The
first and last seconds of each block (the dashboard starting and exiting) are
left out. It prints each block, the pooled p50/p99 per condition, the p99 rise
with a block-bootstrap interval, and the engine's own status figures; PASS when
the p99 rise is at most ``--limit-ms`` (2 ms).

Usage::

    .venv/bin/python tools/bench_dashboard.py [--model model.beira] [--blocks 12] [--block-seconds 30]

The figures depend on the machine and on what else runs on it: the script
prints the CPU count, the load average per block, and the CPU used by the
engine and the dashboard.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# --------------------------------------------------------------------------- the EEG source (subprocess)


def serve_source(name: str, labels: list[str], sfreq: float, seconds: float, chunk: int, seed: int) -> int:
    """Publish synthetic EEG in real time: array chunks of shape (chunk, n_channels), µV, float32."""
    import pylsl

    from beira_rt.lsl import write_channels

    info = pylsl.StreamInfo(name, "EEG", len(labels), sfreq, "float32", f"{name}-sid")
    write_channels(info, labels, ["EEG"] * len(labels), ["microvolts"] * len(labels))
    outlet = pylsl.StreamOutlet(info, chunk_size=chunk, max_buffered=60)
    rng = np.random.default_rng(seed)
    n_ch = len(labels)
    gains = rng.uniform(5.0, 20.0, n_ch)
    phases = rng.uniform(0, 2 * np.pi, n_ch)
    t0 = pylsl.local_clock()
    n = 0
    total = int(seconds * sfreq)
    while n < total:
        due = t0 + (n + chunk - 1) / sfreq
        delay = due - pylsl.local_clock()
        if delay > 0:
            time.sleep(delay)
        t = (n + np.arange(chunk)) / sfreq
        alpha = np.sin(2 * np.pi * 10.0 * t[:, None] + phases[None, :]) * gains[None, :]
        x = alpha + 10.0 * rng.standard_normal((chunk, n_ch))
        outlet.push_chunk(x.astype(np.float32), timestamp=due)
        n += chunk
    return 0


# --------------------------------------------------------------------------- a stand-in model


#: The 30 EEG channels of the CWL recordings.
CWL_EEG = (
    "Fp1",
    "Fp2",
    "F3",
    "F4",
    "C3",
    "C4",
    "P3",
    "P4",
    "O1",
    "O2",
    "F7",
    "F8",
    "T7",
    "T8",
    "P7",
    "P8",
    "Fz",
    "Cz",
    "Pz",
    "Oz",
    "FC1",
    "FC2",
    "CP1",
    "CP2",
    "FC5",
    "FC6",
    "CP5",
    "CP6",
    "TP9",
    "TP10",
)


def untrained_bundle(path: Path, seed: int = 0) -> Path:
    """Save a bundle of the default (reference) architecture with freshly initialised weights.

    Latency depends on the architecture, not on the weights, so this stands in
    for a trained bundle when none is given.
    """
    import torch

    from beira_rt.bundle import ModelBundle, save_bundle
    from beira_rt.config import BeiraConfig
    from beira_rt.models import build_model

    cfg = BeiraConfig()
    n_rois = len(cfg.data.rois)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build_model(cfg.model, len(CWL_EEG), n_rois, cfg.preprocessing.sfreq)
    bundle = ModelBundle(
        config=cfg,
        ch_names=CWL_EEG,
        sfreq_in=1000.0,
        rois=tuple(cfg.data.rois),
        norm_mean=np.zeros(len(CWL_EEG)),
        norm_std=np.full(len(CWL_EEG), 10.0),
        target_mean=np.zeros(n_rois),
        target_std=np.ones(n_rois),
        lookahead=0.0,
        metrics={},
        state_dict=model.state_dict(),
    )
    save_bundle(bundle, path)
    return path


# --------------------------------------------------------------------------- consumers in this process


@dataclass
class Collector:
    """Read one stream of the engine in a thread (status JSON or predictions)."""

    name: str
    is_status: bool
    stop: threading.Event = field(default_factory=threading.Event)
    messages: list[tuple[float, dict]] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (arrival clock, latency s)
    error: str | None = None

    def run(self) -> None:
        import pylsl

        found: list = []
        deadline = time.monotonic() + 60.0
        while not found and not self.stop.is_set() and time.monotonic() < deadline:
            found = pylsl.resolve_byprop("name", self.name, 1, 1.0)
        if not found:
            self.error = f"stream {self.name!r} not found"
            return
        inlet = pylsl.StreamInlet(
            found[0], max_buflen=60, recover=False, processing_flags=pylsl.proc_clocksync
        )
        lookahead = 0.0
        if not self.is_status:
            value = inlet.info(5.0).desc().child("beira").child_value("lookahead")
            lookahead = float(value) if value else 0.0
        try:
            while not self.stop.is_set():
                sample, stamp = inlet.pull_sample(timeout=0.2)  # returns as soon as a sample arrives
                if stamp is None:
                    continue
                now = pylsl.local_clock()
                if self.is_status:
                    self.messages.append((now, json.loads(sample[0])))
                else:
                    self.latencies.append((now, now - (stamp + lookahead)))
        except pylsl.util.LostError:
            pass
        finally:
            inlet.close_stream()


def _cpu_seconds(proc) -> float:
    import psutil

    try:
        p = psutil.Process(proc.pid)
        total = sum(p.cpu_times()[:2])
        for child in p.children(recursive=True):
            total += sum(child.cpu_times()[:2])
        return total
    except psutil.Error:
        return math.nan


# --------------------------------------------------------------------------- the blocks


@dataclass
class Block:
    """One block of the engine run: with or without the dashboard."""

    with_dashboard: bool
    start: float  # LSL clock, s (after the settling time)
    end: float
    engine_cpu: float = math.nan  # fraction of one core
    dashboard_cpu: float = math.nan
    dashboard_line: str = ""
    status: dict = field(default_factory=dict)  # the engine's last status message in the block

    def latencies(self, collector: Collector) -> np.ndarray:
        """Consumer-side latencies (s) of the predictions that arrived in this block."""
        return np.array([v for t, v in collector.latencies if self.start <= t <= self.end])


def _p(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) * 1e3 if x.size else math.nan


def run_blocks(args: argparse.Namespace, labels: list[str], tmp: Path) -> tuple[list[Block], Collector]:
    """One engine run; the dashboard is started and stopped in alternating blocks (ABBA order)."""
    import pylsl

    tag = uuid.uuid4().hex[:8]
    src_name, out_name = f"bench-eeg-{tag}", f"BENCH-{tag}"
    cfg = tmp / f"bench-{tag}.yaml"
    cfg.write_text(f"live:\n  outlet_name: {out_name}\n  device: cpu\n", encoding="utf-8")
    total = args.blocks * args.block_seconds
    src = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve-source",
            src_name,
            "--labels",
            ",".join(labels),
            "--sfreq",
            str(args.sfreq),
            "--seconds",
            str(total + 600),
        ],
        cwd=REPO,
    )
    status, preds = Collector(f"{out_name}-status", True), Collector(out_name, False)
    threads = [threading.Thread(target=c.run, daemon=True) for c in (status, preds)]
    for t in threads:
        t.start()
    engine = subprocess.Popen(
        [
            str(BIN / "beira-rt"),
            "run",
            "--model",
            str(args.model),
            "--source",
            src_name,
            "--config",
            str(cfg),
            "-q",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    blocks: list[Block] = []
    dash = None
    try:
        deadline = time.monotonic() + 180  # the first prediction needs a full window (20 s by default)
        while not preds.latencies and time.monotonic() < deadline and engine.poll() is None:
            time.sleep(0.1)
        if not preds.latencies:
            raise RuntimeError(
                f"the engine published no prediction (exit code {engine.poll()}); "
                "run the same beira-rt run command by hand to see why."
            )
        time.sleep(args.settle)  # the engine's own start-up transient
        pattern = (False, True, True, False)  # ABBA: a linear drift in the load hits both alike
        for i in range(args.blocks):
            with_dash = pattern[i % 4]
            dash = None
            if with_dash:
                dash = subprocess.Popen(
                    [
                        str(BIN / "beira-rt"),
                        "dashboard",
                        "--predictions",
                        out_name,
                        "--eeg",
                        src_name,
                        "--screenshot",
                        str(tmp / f"dash-{tag}-{i}.png"),
                        "--duration",
                        str(args.block_seconds - 0.5),
                        "-q",
                    ],
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            time.sleep(args.settle)  # the dashboard starts up (imports, inlets): not the steady state
            cpu_e0, cpu_d0, t0 = _cpu_seconds(engine), _cpu_seconds(dash) if dash else 0.0, time.monotonic()
            block = Block(with_dash, pylsl.local_clock(), math.nan)
            time.sleep(args.block_seconds - 2 * args.settle)
            block.end = pylsl.local_clock()
            wall = time.monotonic() - t0
            block.engine_cpu = (_cpu_seconds(engine) - cpu_e0) / wall
            block.dashboard_cpu = ((_cpu_seconds(dash) - cpu_d0) / wall) if dash else 0.0
            block.status = status.messages[-1][1] if status.messages else {}
            if dash is not None:
                out, _ = dash.communicate(timeout=60)
                block.dashboard_line = (
                    out.strip().splitlines()[-1] if out.strip() else f"exit {dash.returncode}"
                )
            else:
                time.sleep(args.settle)
            blocks.append(block)
            lat = block.latencies(preds)
            print(
                f"  block {i + 1:2d} {'with   ' if with_dash else 'without'} dashboard: "
                f"p50 {_p(lat, 50):6.2f} ms, p99 {_p(lat, 99):6.2f} ms, max {_p(lat, 100):6.2f} ms "
                f"({lat.size} predictions) | CPU engine {block.engine_cpu:.0%}, "
                f"dashboard {block.dashboard_cpu:.0%} of one core | load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if block.dashboard_line:
                print(f"      {block.dashboard_line}", flush=True)
    finally:
        for proc in (dash, engine, src):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # the engine stops cleanly on SIGINT
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        status.stop.set()
        preds.stop.set()
        for t in threads:
            t.join(timeout=5)
    return blocks, preds


def _bootstrap_p99_rise(
    with_: list[np.ndarray], without: list[np.ndarray], seed: int = 0
) -> tuple[float, float]:
    """95 % interval of p99(with) - p99(without) in ms, resampling whole blocks."""
    rng = np.random.default_rng(seed)
    rises = []
    for _ in range(2000):
        a = np.concatenate([with_[i] for i in rng.integers(0, len(with_), len(with_))])
        b = np.concatenate([without[i] for i in rng.integers(0, len(without), len(without))])
        rises.append(_p(a, 99) - _p(b, 99))
    lo, hi = np.percentile(rises, [2.5, 97.5])
    return float(lo), float(hi)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--model", type=Path, help="model bundle (default: the reference architecture with untrained weights)"
    )
    p.add_argument(
        "--blocks", type=int, default=12, help="blocks, alternating without/with (ABBA); default 12"
    )
    p.add_argument("--block-seconds", type=float, default=30.0, help="length of a block (default 30 s)")
    p.add_argument(
        "--settle",
        type=float,
        default=4.0,
        help="seconds left out at the start and end of each block (dashboard start-up and exit)",
    )
    p.add_argument("--sfreq", type=float, default=1000.0)
    p.add_argument("--limit-ms", type=float, default=2.0, help="allowed rise of the engine's p99")
    p.add_argument("--serve-source", metavar="NAME", help=argparse.SUPPRESS)
    p.add_argument("--labels", help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_source:
        try:
            return serve_source(args.serve_source, args.labels.split(","), args.sfreq, args.seconds, 10, 0)
        except KeyboardInterrupt:  # the bench stops its source with SIGINT
            return 0
    if args.model is not None and not args.model.is_file():
        p.error(f"--model must name an existing bundle file; {args.model} does not exist.")
    if args.blocks < 2 or args.block_seconds <= 2 * args.settle + 1:
        p.error("use at least 2 blocks, each longer than twice --settle plus 1 s.")

    import psutil

    from beira_rt.bundle import load_bundle
    from beira_rt.lsl import use_loopback_config

    use_loopback_config()  # children inherit LSLAPICFG: a private session
    with tempfile.TemporaryDirectory(prefix="bench-dash-") as tmp:
        if args.model is None:
            args.model = untrained_bundle(Path(tmp) / "untrained.beira")
        bundle = load_bundle(args.model)
        labels = list(bundle.ch_names)
        print(
            f"bench_dashboard: model {args.model.name} ({len(labels)} channels, hash {bundle.content_hash[:12]}), "
            f"source {len(labels)} ch at {args.sfreq:g} Hz; {args.blocks} blocks of {args.block_seconds:g} s "
            f"(first and last {args.settle:g} s of each left out)"
        )
        load_before = os.getloadavg()
        print(f"machine: {psutil.cpu_count()} CPUs, load average before {load_before}")
        blocks, preds = run_blocks(args, labels, Path(tmp))
    print(f"machine: load average after {os.getloadavg()}")
    with_ = [b.latencies(preds) for b in blocks if b.with_dashboard]
    without = [b.latencies(preds) for b in blocks if not b.with_dashboard]
    a, b = np.concatenate(with_), np.concatenate(without)
    rise = _p(a, 99) - _p(b, 99)
    lo, hi = _bootstrap_p99_rise(with_, without)
    cpu = np.mean([blk.dashboard_cpu for blk in blocks if blk.with_dashboard])
    print("latency (arrival at a consumer - newest EEG used; = engine latency + LSL transport):")
    print(f"  without dashboard: p50 {_p(b, 50):.2f} ms, p99 {_p(b, 99):.2f} ms ({b.size} predictions)")
    print(
        f"  with dashboard:    p50 {_p(a, 50):.2f} ms, p99 {_p(a, 99):.2f} ms ({a.size} predictions); "
        f"dashboard CPU {cpu:.0%} of one core"
    )
    print(
        f"  p99 rise {rise:+.2f} ms (95 % block-bootstrap interval {lo:+.2f} .. {hi:+.2f} ms), "
        f"p50 rise {_p(a, 50) - _p(b, 50):+.2f} ms; limit {args.limit_ms:g} ms"
    )
    last = blocks[-1].status
    if last:
        print(
            f"  engine status at the end: p50 {last.get('latency_p50_ms')} ms, p99 {last.get('latency_p99_ms')} ms "
            f"(its last 600 updates), skipped updates {last.get('skipped_updates')}"
        )
    busy = max(os.getloadavg()[0], max(load_before)) > psutil.cpu_count()
    if busy:
        print(
            f"  caution: the load average exceeded the {psutil.cpu_count()} CPUs (other work on the machine); "
            "block-to-block noise is then larger than the effect measured: compare the interval, not the point."
        )
    ok = rise <= args.limit_ms
    print("PASS" if ok else "FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
