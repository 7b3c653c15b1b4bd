"""Latency of the live engine, end to end, measured by an external LSL consumer.

Three processes on loopback LSL (a private LSL session, nothing leaves the machine):

- a 30-channel 1000 Hz EEG source (this script with ``--role source``), pushing
  chunks at real-time pace with exact timestamps ``t0 + i / sfreq``;
- the engine, ``beira-rt run`` with the look-ahead set to 0, on CPU by default;
- this process: a pylsl consumer of the prediction stream and of the status
  stream (as a neurofeedback display would read them), plus psutil on the engine process;
- a transport probe (this script with ``--role transport``): a consumer of the EEG stream
  that measures the LSL transport latency in the same run. In a process of its own: pulling
  the EEG sample by sample in the consumer's interpreter would hold its lock while a
  prediction arrives, and add that wait to the figure being measured.

Printed: p50 / p99 of the added latency (arrival at the consumer minus the
EEG timestamp the prediction carries), of the LSL transport latency (arrival
of an EEG chunk minus the timestamp of its newest sample), the engine's CPU
use, and the share of skipped update slots, all over the measurement window
(after the engine's window has filled).

Without ``--model`` the architecture of ``--config`` (default: the built-in defaults),
with ``--variant`` when given, is built with random weights (timing does not depend on
the weights) and saved as a temporary bundle with the 30 CWL EEG channels and the 8 ROIs.

``--inference compare`` runs the engine twice, with the whole window (``live.inference:
window``, stem cache on) and streaming (either variant of the U-Net, the read-out back end),
and prints the two side by
side: update compute p50/p99 (the engine's own figures), added latency p50/p99 at the
external consumer, CPU share. ``--compute-only N`` times N updates of each path in this
process (no LSL; the engine's DeviceWindow, StemCache and StreamReadout on random EEG).

Usage::

    python tools/bench_latency.py                 # 60 s, reference model, CPU, hop 0.1 s
    python tools/bench_latency.py --seconds 20 --model runs/trio1/model.beira --device cuda
    python tools/bench_latency.py --variant causal --inference compare --seconds 30
    python tools/bench_latency.py --config configs/paper.yaml --inference compare --seconds 30
    python tools/bench_latency.py --config configs/paper.yaml --compute-only 300
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from beira_rt.lsl import use_loopback_config  # noqa: E402

#: The 30 EEG channels of the CWL recordings (10-20 system).
CWL_CHANNELS = tuple(
    "Fp1 Fp2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T7 T8 P7 P8 Fz Cz Pz Oz FC1 FC2 CP1 CP2 FC5 FC6 CP5 CP6 TP9 TP10".split()
)


# ---------------------------------------------------------------------------- source process
def run_source(
    name: str,
    source_id: str,
    sfreq: float,
    seconds: float,
    chunk: int,
    n_channels: int,
    labels: list[str] | None = None,
    linger: float = 0.5,
) -> int:
    """Publish synthetic EEG at real-time pace until ``seconds`` of data were pushed.

    Prints ``SOURCE pushed N late_max_ms X`` at the end (how far behind its schedule it fell),
    then keeps the outlet ``linger`` seconds for the last chunks to leave.
    """
    import pylsl

    from beira_rt.lsl import write_channels

    if labels is None:
        labels = list(CWL_CHANNELS[:n_channels]) + [f"X{i}" for i in range(n_channels - len(CWL_CHANNELS))]
    info = pylsl.StreamInfo(name, "EEG", n_channels, sfreq, "float32", source_id)
    write_channels(info, labels, ["EEG"] * n_channels, ["microvolts"] * n_channels)
    outlet = pylsl.StreamOutlet(info, max_buffered=60)
    rng = np.random.default_rng(0)
    block = (20.0 * rng.standard_normal((int(sfreq) * 2, n_channels))).astype(np.float32)  # 2 s, looped
    if not outlet.wait_for_consumers(120.0):
        print("source: nobody connected within 120 s", file=sys.stderr)
        return 1
    time.sleep(0.5)  # the consumer's inlet settles before the clock starts
    n_total = int(seconds * sfreq)
    period = 1.0 / sfreq
    t0 = pylsl.local_clock()
    pushed, late = 0, 0.0
    while pushed < n_total:
        end = min(pushed + chunk, n_total)
        due = t0 + (end - 1) * period
        delay = due - pylsl.local_clock()
        if delay > 0:
            time.sleep(delay)
        else:
            late = max(late, -delay)
        idx = np.arange(pushed, end) % block.shape[0]
        outlet.push_chunk(block[idx], timestamp=due)
        pushed = end
    print(f"SOURCE pushed {pushed} late_max_ms {late * 1e3:.1f}", flush=True)
    time.sleep(linger)
    return 0


def run_transport(source_id: str, out: Path, seconds: float) -> int:
    """Pull the EEG stream for ``seconds``; save (arrival, newest stamp) per chunk to ``out`` (.npy)."""
    import pylsl

    found = pylsl.resolve_byprop("source_id", source_id, 1, 60.0)
    if not found:
        print(f"transport: stream {source_id} not found", file=sys.stderr)
        return 1
    inlet = pylsl.StreamInlet(found[0], max_buflen=30, recover=False)
    inlet.open_stream(60.0)
    rows: list[tuple[float, float]] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _, ts = inlet.pull_chunk(timeout=0.05, max_samples=4096, min_samples=1)
        if ts:
            rows.append((pylsl.local_clock(), ts[-1]))
    np.save(out, np.asarray(rows, dtype=np.float64).reshape(-1, 2))
    return 0


# ---------------------------------------------------------------------------- bundle
def random_bundle(
    path: Path, channels: int | list[str], config: str | None = None, variant: str | None = None
) -> Path:
    """Save the architecture of ``config`` (default: the built-in defaults), ``model.variant``
    replaced by ``variant`` when given, with random weights as a bundle; ``channels``: labels,
    or a number of the CWL channels."""
    import torch

    from beira_rt.bundle import ModelBundle, save_bundle
    from beira_rt.config import load_config, override
    from beira_rt.models import build_model

    cfg = override(load_config(config), {"model.variant": variant})
    ch_names = tuple(CWL_CHANNELS[:channels]) if isinstance(channels, int) else tuple(channels)
    rois = tuple(cfg.data.rois)
    torch.manual_seed(0)
    model = build_model(cfg.model, len(ch_names), len(rois), cfg.preprocessing.sfreq)
    bundle = ModelBundle(
        config=cfg,
        ch_names=ch_names,
        sfreq_in=1000.0,
        rois=rois,
        norm_mean=np.zeros(len(ch_names)),
        norm_std=np.full(len(ch_names), 10.0),
        target_mean=np.zeros(len(rois)),
        target_std=np.ones(len(rois)),
        lookahead=0.0,
        metrics={},
        state_dict=model.state_dict(),
    )
    save_bundle(bundle, path)
    return path


# ---------------------------------------------------------------------------- consumer
class Pull(threading.Thread):
    """Pull one stream and keep (arrival time, timestamps of the chunk) pairs."""

    def __init__(self, pred: str, timeout: float, keep_values: bool = False) -> None:
        import pylsl

        super().__init__(daemon=True)
        found = pylsl.resolve_bypred(pred, 1, timeout)
        if not found:
            raise SystemExit(f"stream {pred} not found within {timeout} s")
        self.inlet = pylsl.StreamInlet(found[0], max_buflen=30, recover=False)
        self.info = self.inlet.info(timeout)
        self.inlet.open_stream(timeout)
        self.keep_values = keep_values
        self.arrival: list[float] = []
        self.stamps: list[float] = []
        self.values: list = []
        self.halt = threading.Event()

    def run(self) -> None:
        import pylsl
        from pylsl.util import LostError

        while not self.halt.is_set():
            try:
                data, ts = self.inlet.pull_chunk(timeout=0.05, max_samples=4096, min_samples=1)
            except LostError:
                return
            if ts:
                now = pylsl.local_clock()
                self.arrival.extend([now] * len(ts))
                self.stamps.extend(ts)
                if self.keep_values:
                    self.values.extend(data)
        self.inlet.close_stream()


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else float("nan")


def compute_only(
    bundle_path: Path, hop: float, updates: int, threads: int, device: str = "cpu"
) -> dict[str, dict[str, float]]:
    """Update compute in this process, without LSL: the engine's own parts on a window of random
    EEG advanced by one hop per update; p50 / p99 in ms for each inference path the bundle allows.
    On CUDA the window lives on the GPU and each update is timed to a synchronisation."""
    import torch

    from beira_rt.bundle import load_bundle
    from beira_rt.engine.device_window import DeviceWindow
    from beira_rt.engine.stem import StemCache
    from beira_rt.engine.streaming import choose_inference
    from beira_rt.inference import resolve_device
    from beira_rt.models import BEIRA

    torch.set_num_threads(threads)
    dev = resolve_device(device)
    bundle = load_bundle(bundle_path)
    model = bundle.build_model(dev)
    W, sfreq = bundle.config.model.n_times, bundle.config.preprocessing.sfreq
    step = max(1, round(hop * sfreq))
    rng = np.random.default_rng(0)
    window = DeviceWindow(bundle.n_chans, W, dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    _mode, stream = choose_inference("auto", model, window, 0)
    paths = {"whole window": lambda: model(window.view().unsqueeze(0))}
    if isinstance(model, BEIRA):  # the U-Net's full-rate stem reused between updates
        paths["stem cache"] = StemCache(model, window).forward
    if stream is not None:
        paths["streaming"] = stream.forward
    window.append(rng.standard_normal((bundle.n_chans, W)).astype(np.float32))
    for fn in paths.values():
        with torch.inference_mode():
            fn()
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(updates):
        window.append(rng.standard_normal((bundle.n_chans, step)).astype(np.float32))
        for name, fn in paths.items():  # every path sees the same windows, in turn
            t = time.perf_counter()
            with torch.inference_mode():
                fn()
            sync()
            times[name].append(time.perf_counter() - t)
    return {
        name: {"p50": _pct(np.asarray(t), 50) * 1e3, "p99": _pct(np.asarray(t), 99) * 1e3}
        for name, t in times.items()
    }


def measure(a: argparse.Namespace, bundle_path: Path, inference: str, tmp: Path) -> dict[str, float | str]:
    """One end-to-end run (source, engine, consumers); prints its figures and returns them."""
    import psutil
    import pylsl

    from beira_rt.bundle import load_bundle

    bundle = load_bundle(bundle_path)
    window_s = bundle.config.model.n_times / bundle.config.preprocessing.sfreq
    tag = uuid.uuid4().hex[:8]
    src_name, src_id, out_name = f"bench-eeg-{tag}", f"bench-eeg-sid-{tag}", f"BEIRA-bench-{tag}"
    live_yaml = tmp / f"live-{tag}.yaml"
    live_yaml.write_text(
        f"live:\n  outlet_name: {out_name}\n  hop: {a.hop}\n  device: {a.device}\n"
        f"  stem_cache: {'false' if a.no_stem_cache else 'true'}\n  inference: {inference}\n"
    )
    warm = window_s + 5.0
    total = warm + a.seconds + 3.0
    print(
        f"bench: {a.channels} ch at {a.sfreq:g} Hz, chunks of {a.chunk}; model window {window_s:g} s "
        f"({bundle.config.model.variant}, {bundle_path.name}); hop {a.hop:g} s; device {a.device}; "
        f"live.inference {inference}, stem cache {'off' if a.no_stem_cache else 'on'}; "
        f"warm-up {warm:.1f} s then {a.seconds:g} s measured",
        flush=True,
    )
    source = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--role",
            "source",
            "--name",
            src_name,
            "--source-id",
            src_id,
            "--sfreq",
            str(a.sfreq),
            "--source-seconds",
            str(total + 5.0),
            "--chunk",
            str(a.chunk),
            "--channels",
            str(a.channels),
        ],
        cwd=REPO,
    )
    engine = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "beira_rt.cli.rt",
            "run",
            "--model",
            str(bundle_path),
            "--source-id",
            src_id,
            "--config",
            str(live_yaml),
            "--lookahead",
            "0",
            "--duration",
            str(total),
            "-q",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    transport_file = tmp / f"transport-{tag}.npy"
    probe = subprocess.Popen(
        [sys.executable, __file__, "--role", "transport", "--source-id", src_id, "--transport-out",
         str(transport_file), "--source-seconds", str(total + 2.0)],
        cwd=REPO,
    )  # fmt: skip
    try:
        pred = Pull(f"name='{out_name}' and type='sBOLD'", 60.0)
        status = Pull(f"name='{out_name}-status'", 60.0, keep_values=True)
        for t in (pred, status):
            t.start()
        proc = psutil.Process(engine.pid)
        while not pred.arrival and engine.poll() is None:
            time.sleep(0.05)
        time.sleep(2.0)  # let the first updates settle
        n_pred0, n_stat0 = len(pred.arrival), len(status.values)
        clock0 = pylsl.local_clock()
        cpu0, wall0 = proc.cpu_times(), time.monotonic()
        psutil.cpu_percent(None)
        load0 = os.getloadavg()
        time.sleep(a.seconds)
        cpu1, wall1 = proc.cpu_times(), time.monotonic()
        machine_cpu = psutil.cpu_percent(None)
        n_pred1, n_stat1 = len(pred.arrival), len(status.values)
        clock1 = pylsl.local_clock()
        load1 = os.getloadavg()
    finally:
        out, _ = engine.communicate(timeout=total + 60)
        source.wait(timeout=60)
        probe.wait(timeout=60)
    for t in (pred, status):
        t.halt.set()
        t.join(5)

    added = np.asarray(pred.arrival[n_pred0:n_pred1]) - np.asarray(pred.stamps[n_pred0:n_pred1])
    # transport: per chunk pulled by the probe in the measurement window, arrival minus the stamp
    # of its newest sample (local_clock is the same clock in every process of this machine)
    rows = np.load(transport_file) if transport_file.is_file() else np.empty((0, 2))
    rows = rows[(rows[:, 0] >= clock0) & (rows[:, 0] <= clock1)]
    transport = rows[:, 0] - rows[:, 1]
    st0 = json.loads(status.values[max(n_stat0 - 1, 0)][0])
    st1 = json.loads(status.values[n_stat1 - 1][0])
    slots = st1["update_slots"] - st0["update_slots"]
    skipped = st1["skipped_updates"] - st0["skipped_updates"]
    cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    print(f"measured {wall1 - wall0:.1f} s: {added.size} predictions, {transport.size} EEG chunks")
    print(
        f"added latency  (arrival - EEG stamp of prediction): p50 {_pct(added, 50) * 1e3:7.2f} ms   p99 {_pct(added, 99) * 1e3:7.2f} ms"
    )
    print(
        f"LSL transport  (EEG chunk arrival - newest stamp):  p50 {_pct(transport, 50) * 1e3:7.2f} ms   p99 {_pct(transport, 99) * 1e3:7.2f} ms"
    )
    print(
        f"engine CPU: {100 * cpu_s / (wall1 - wall0):.1f} % of one core ({psutil.cpu_count()} cores); whole machine {machine_cpu:.0f} % busy; load average {load0[0]:.2f} -> {load1[0]:.2f}"
    )
    print(
        f"update slots {slots}, skipped {skipped} ({100 * skipped / max(slots, 1):.2f} %); engine update compute p50 {st1['update_p50_ms']:.1f} ms (status)"
    )
    print("engine final statistics:\n" + "\n".join("  " + line for line in out.strip().splitlines()))
    compute = re.search(r"update compute p50 ([\d.]+) ms, p99 ([\d.]+) ms", out)
    return {
        "mode": st1.get("inference", "?"),
        "added_p50": _pct(added, 50) * 1e3,
        "added_p99": _pct(added, 99) * 1e3,
        "update_p50": float(compute.group(1)) if compute else float("nan"),
        "update_p99": float(compute.group(2)) if compute else float("nan"),
        "cpu": 100 * cpu_s / (wall1 - wall0),
        "skipped": 100 * skipped / max(slots, 1),
        "ok": engine.returncode == 0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="measurement window (after the window fills)")
    p.add_argument("--model", help="a real bundle (default: the --config architecture, random weights)")
    p.add_argument("--config", help="architecture of the random bundle (default: the built-in defaults)")
    p.add_argument("--variant", choices=("reference", "causal"), help="model.variant of the random bundle")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--hop", type=float, default=0.1, help="seconds between updates")
    p.add_argument("--chunk", type=int, default=10, help="samples per pushed EEG chunk")
    p.add_argument("--sfreq", type=float, default=1000.0)
    p.add_argument("--channels", type=int, default=30)
    p.add_argument(
        "--no-stem-cache", action="store_true", help="run the whole window through the model at every update"
    )
    p.add_argument(
        "--inference",
        default="auto",
        help="live.inference: auto | streaming | window, or 'compare' to run window and streaming in turn",
    )
    p.add_argument(
        "--compute-only",
        type=int,
        metavar="UPDATES",
        help="no LSL: time this many updates of each inference path in this process, then stop",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads for --compute-only (the engine's 1)")
    p.add_argument(
        "--role", default="bench", choices=("bench", "source", "transport"), help=argparse.SUPPRESS
    )
    p.add_argument("--transport-out", help=argparse.SUPPRESS)
    p.add_argument("--name", help=argparse.SUPPRESS)
    p.add_argument("--source-id", help=argparse.SUPPRESS)
    p.add_argument("--source-seconds", type=float, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.role == "source":
        return run_source(a.name, a.source_id, a.sfreq, a.source_seconds, a.chunk, a.channels)
    if a.role == "transport":
        return run_transport(a.source_id, Path(a.transport_out), a.source_seconds)

    use_loopback_config()  # children inherit LSLAPICFG: a private session on loopback
    tmp = Path(tempfile.mkdtemp(prefix="beira-bench-"))
    if a.model:
        bundle_path = Path(a.model)
    else:
        bundle_path = random_bundle(tmp / "random.beira", a.channels, a.config, a.variant)
    if a.compute_only:
        figures = compute_only(bundle_path, a.hop, a.compute_only, a.threads, a.device)
        print(
            f"update compute, {a.compute_only} updates of {a.hop:g} s, device {a.device}, {a.threads} thread(s), "
            f"{bundle_path.name}:"
        )
        for name, f in figures.items():
            print(f"  {name:13s} p50 {f['p50']:8.3f} ms   p99 {f['p99']:8.3f} ms")
        return 0
    modes = ("window", "streaming") if a.inference == "compare" else (a.inference,)
    results = {mode: measure(a, bundle_path, mode, tmp) for mode in modes}
    if len(results) > 1:
        print("side by side (ms; CPU in % of one core):")
        print(
            f"  {'path':22s} {'update p50':>10s} {'update p99':>10s} {'added p50':>10s} {'added p99':>10s} {'CPU':>6s}"
        )
        for r in results.values():
            print(
                f"  {r['mode']:22s} {r['update_p50']:10.2f} {r['update_p99']:10.2f} "
                f"{r['added_p50']:10.2f} {r['added_p99']:10.2f} {r['cpu']:6.1f}"
            )
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
