"""Input throughput of the live engine: many channels at a high rate, sustained, no sample dropped.

Three processes on loopback LSL (a private LSL session, nothing leaves the machine):

- a source (this script with ``--role source``): ``--channels`` (64) channels of synthetic EEG
  at ``--sfreq`` (5000 Hz) in chunks of ``--chunk`` samples (50: 10 ms), pushed at real-time
  pace with exact timestamps for ``--seconds``; it prints how many samples it pushed;
- the engine, ``beira-rt run`` on CPU (1 torch thread, the default ``live`` settings) with a
  bundle of the default architecture (``--config``/``--variant`` to change it) made for
  **all** the stream's channels (10-20 names, random weights: the cost does not depend on the
  weights), so that every channel goes through the preprocessing (notch, band-pass, common
  average, resampling to the model rate) and the model;
- this process: psutil on the engine process (its CPU share), a consumer of its status stream
  and of its predictions.

Printed: samples pushed by the source against the engine's ``samples_received`` and
``samples_processed`` (status stream, final), overflows / lost samples / gaps, the engine's CPU
share over the run (% of one core) and per minute, predictions received and their added
latency (arrival - EEG stamp). "No drops" means pushed = received = processed, 0 lost, 0 gaps.

Usage::

    python tools/bench_throughput.py                       # 64 ch at 5 kHz for 10 minutes
    python tools/bench_throughput.py --seconds 120         # shorter
    python tools/bench_throughput.py --variant causal --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from bench_latency import Pull, _pct, random_bundle, run_source  # noqa: E402

from beira_rt.lsl import use_loopback_config  # noqa: E402


def channel_names(n: int) -> list[str]:
    """``n`` EEG channel names of the 10-05 system (positions known: bad-channel repair works)."""
    import mne

    from beira_rt.engine.channels import standard_montage

    names = [c for c in mne.channels.make_standard_montage(standard_montage()).ch_names if c[0] != "A"]
    if n > len(names):
        raise SystemExit(f"at most {len(names)} channels")
    return names[:n]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=600.0, help="seconds of EEG pushed (default 10 min)")
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--sfreq", type=float, default=5000.0)
    p.add_argument("--chunk", type=int, default=50, help="samples per pushed chunk")
    p.add_argument("--config", help="architecture of the bundle (default: the built-in defaults)")
    p.add_argument("--variant", choices=("reference", "causal"), help="model.variant of the bundle")
    p.add_argument("--role", default="bench", choices=("bench", "source"), help=argparse.SUPPRESS)
    p.add_argument("--name", help=argparse.SUPPRESS)
    p.add_argument("--source-id", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.role == "source":
        return run_source(
            a.name,
            a.source_id,
            a.sfreq,
            a.seconds,
            a.chunk,
            a.channels,
            channel_names(a.channels),
            linger=2.0,
        )

    import psutil

    use_loopback_config()  # children inherit LSLAPICFG: a private session on loopback
    tmp = Path(tempfile.mkdtemp(prefix="beira-throughput-"))
    labels = channel_names(a.channels)
    bundle_path = random_bundle(tmp / "throughput.beira", labels, a.config, a.variant)
    tag = uuid.uuid4().hex[:8]
    src_name, src_id, out_name = f"tp-eeg-{tag}", f"tp-eeg-sid-{tag}", f"BEIRA-tp-{tag}"
    live_yaml = tmp / "live.yaml"
    live_yaml.write_text(f"live:\n  outlet_name: {out_name}\n  device: cpu\n")
    print(
        f"throughput: {a.channels} ch at {a.sfreq:g} Hz in chunks of {a.chunk}, {a.seconds:g} s; "
        f"engine on CPU, {a.variant or 'default'} variant of {a.config or 'the default config'}; "
        f"{psutil.cpu_count()} cores",
        flush=True,
    )
    source = subprocess.Popen(
        [sys.executable, __file__, "--role", "source", "--name", src_name, "--source-id", src_id,
         "--sfreq", str(a.sfreq), "--seconds", str(a.seconds), "--chunk", str(a.chunk),
         "--channels", str(a.channels)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    engine = subprocess.Popen(
        [sys.executable, "-m", "beira_rt.cli.rt", "run", "--model", str(bundle_path), "--source-id", src_id,
         "--config", str(live_yaml), "-q"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    per_minute: list[float] = []
    try:
        status = Pull(f"name='{out_name}-status'", 60.0, keep_values=True)
        pred = Pull(f"name='{out_name}' and type='sBOLD'", 60.0)
        for t in (status, pred):
            t.start()
        proc = psutil.Process(engine.pid)
        cpu0, wall0 = proc.cpu_times(), time.monotonic()
        last_cpu, last_wall = cpu0, wall0
        while source.poll() is None:
            time.sleep(1.0)
            if engine.poll() is not None:
                print("the engine ended early", file=sys.stderr)
                break
            now = time.monotonic()
            if now - last_wall >= 60.0:
                c = proc.cpu_times()
                per_minute.append(
                    100 * ((c.user + c.system) - (last_cpu.user + last_cpu.system)) / (now - last_wall)
                )
                last_cpu, last_wall = c, now
        time.sleep(3.0)  # the last samples through the engine
        cpu1, wall1 = proc.cpu_times(), time.monotonic()
        engine.send_signal(2)  # SIGINT: a clean stop, final status and statistics
        out, _ = engine.communicate(timeout=60)
        src_out, _ = source.communicate(timeout=60)
        time.sleep(0.5)
    finally:
        for proc_ in (engine, source):
            if proc_.poll() is None:
                proc_.kill()
    for t in (status, pred):
        t.halt.set()
        t.join(5)
    pushed = int(src_out.split("SOURCE pushed ")[1].split()[0]) if "SOURCE pushed" in src_out else -1
    late = src_out.split("late_max_ms ")[1].split()[0] if "late_max_ms" in src_out else "?"
    final = json.loads(status.values[-1][0]) if status.values else {}
    cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    added = np.asarray(pred.arrival) - np.asarray(pred.stamps)
    received, processed = final.get("samples_received"), final.get("samples_processed")
    print(f"source pushed       {pushed} samples ({a.channels} ch; source at most {late} ms behind its pace)")
    print(f"engine received     {received}")
    print(f"engine processed    {processed}")
    print(
        f"overflows {final.get('overflows')}, lost samples {final.get('lost_samples')}, gaps {final.get('gaps')} "
        f"({final.get('missing_samples')} samples), resets {final.get('resets')}, state {final.get('state')}"
    )
    print(
        f"engine CPU: {100 * cpu_s / (wall1 - wall0):.1f} % of one core over {wall1 - wall0:.0f} s "
        f"({psutil.cpu_count()} cores); per minute: {', '.join(f'{c:.0f}' for c in per_minute) or '-'}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"predictions {added.size}; added latency p50 {_pct(added, 50) * 1e3:.1f} ms, p99 "
        f"{_pct(added, 99) * 1e3:.1f} ms; updates {final.get('updates')}, slots {final.get('update_slots')}, "
        f"skipped {final.get('skipped_updates')}"
    )
    print("engine final statistics:\n" + "\n".join("  " + line for line in out.strip().splitlines()))
    ok = pushed == received == processed and not final.get("lost_samples") and not final.get("gaps")
    print("NO DROPS" if ok else "DROPS OR MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
