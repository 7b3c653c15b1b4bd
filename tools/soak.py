"""Soak: replay (looped, a radio dropout every 10 minutes) -> engine -> dashboard, for an hour.

Runs three processes as a user would (``beira-replay --loop --outage``,
``beira-rt run``, ``beira-rt dashboard`` offscreen) on a private loopback LSL
session, with an external consumer of the predictions and the status in this
process, and reports:

- RSS, threads and open file descriptors of each process at the start (after
  a warm-up), every ``--sample`` seconds, and at the end;
- latency at the consumer (arrival minus the newest EEG time used) p50 / p99
  per block of ``--block`` minutes;
- predictions published against the number expected (one per hop of source
  data, less the start-up window and what the injected outages explain: the
  outage, the gap confirmation and the resume delay) and every silence that no
  outage explains;
- the engine's resets and their causes, gaps, bridged samples, skipped updates.

    .venv/bin/python tools/soak.py --minutes 60 [--outage-every 600 --outage-seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "tools"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from beira_rt.lsl import use_loopback_config  # noqa: E402

BUNDLE = REPO / "beira_rt" / "data" / "demo.beira"


def usage(pid: int) -> dict:
    import psutil

    p = psutil.Process(pid)
    with p.oneshot():
        return {"rss_mb": p.memory_info().rss / 2**20, "threads": p.num_threads(), "fds": p.num_fds()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--outage-every", type=float, default=600.0, help="seconds between injected outages")
    ap.add_argument("--outage-seconds", type=float, default=5.0)
    ap.add_argument("--block", type=float, default=10.0, help="minutes per latency block")
    ap.add_argument("--sample", type=float, default=60.0, help="seconds between resource samples")
    ap.add_argument(
        "--warmup", type=float, default=120.0, help="seconds before the reference resource sample"
    )
    ap.add_argument("--model", default=str(BUNDLE))
    ap.add_argument("--out", default=str(REPO / "runs" / "soak.json"))
    a = ap.parse_args()

    from bench_latency import Pull
    from demo import DATA, SUBJECT, ensure_recording

    session = f"beira-soak-{uuid.uuid4().hex[:8]}"
    use_loopback_config(session)  # sets LSLAPICFG for this process and the children
    recording = ensure_recording(DATA, SUBJECT, 300.0, 0)
    name, outlet = f"soak-eeg-{session[-8:]}", f"BEIRA-soak-{session[-8:]}"
    tmp = Path(tempfile.mkdtemp(prefix="beira-soak-"))
    cfg = tmp / "soak.yaml"
    cfg.write_text(f"live:\n  outlet_name: {outlet}\n  status_interval: 1.0\n")
    duration = a.minutes * 60.0
    bin_ = Path(sys.executable).parent
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    procs: dict[str, subprocess.Popen] = {}
    logs = {k: open(tmp / f"{k}.log", "w") for k in ("replay", "engine", "dashboard")}
    try:
        procs["replay"] = subprocess.Popen(
            [str(bin_ / "beira-replay"), str(recording), "--name", name, "--source-id", name, "--loop",
             "--no-markers", "--outage", f"{a.outage_every}:{a.outage_seconds}", "-q"],
            stdout=logs["replay"], stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        procs["engine"] = subprocess.Popen(
            [str(bin_ / "beira-rt"), "run", "--model", a.model, "--source", name, "--config", str(cfg)],
            stdout=subprocess.PIPE, stderr=logs["engine"], env=env, text=True,
        )  # fmt: skip
        pred = Pull(f"name='{outlet}' and type='sBOLD'", 120.0, keep_values=True)
        status = Pull(f"name='{outlet}-status'", 120.0, keep_values=True)
        pred.start()
        status.start()
        procs["dashboard"] = subprocess.Popen(
            [str(bin_ / "beira-rt"), "dashboard", "--predictions", outlet, "--eeg", name, "-q"],
            stdout=logs["dashboard"], stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        import pylsl

        la = float(pred.info.desc().child("beira").child_value("lookahead") or 0.0)
        hop = 1.0 / pred.info.nominal_srate()
        t_start = time.monotonic()
        lsl_start = pylsl.local_clock()
        samples: list[dict] = []
        ref_taken = False
        print(f"soak: {a.minutes:g} min, outage {a.outage_seconds:g} s every {a.outage_every:g} s; logs in {tmp}",
              flush=True)  # fmt: skip
        while (elapsed := time.monotonic() - t_start) < duration:
            for k, p in procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"the {k} process exited early with code {p.returncode}")
            time.sleep(min(a.sample, duration - elapsed, max(0.0, a.warmup - elapsed) or a.sample))
            row = {"t": round(time.monotonic() - t_start, 1)}
            row.update({k: usage(p.pid) for k, p in procs.items()})
            row["predictions"] = len(pred.stamps)
            samples.append(row)
            if not ref_taken and row["t"] >= a.warmup:
                ref_taken = True
            e = row["engine"]
            print(f"  {row['t'] / 60:5.1f} min: engine RSS {e['rss_mb']:.1f} MB, {e['threads']} threads, "
                  f"{e['fds']} fds; predictions {row['predictions']}", flush=True)  # fmt: skip
        end_usage = {k: usage(p.pid) for k, p in procs.items()}
        procs["engine"].send_signal(signal.SIGINT)
        final, _ = procs["engine"].communicate(timeout=60)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        for f in logs.values():
            f.close()
    time.sleep(0.5)
    for c in (pred, status):
        c.halt.set()
        c.join(5)

    arrival, stamps = np.asarray(pred.arrival), np.asarray(pred.stamps)
    quality = np.asarray(pred.values)[:, -1]
    latency = (arrival - (stamps + la)) * 1e3
    statuses = [json.loads(v[0]) for v in status.values]
    last = statuses[-1] if statuses else {}
    # blocks of --block minutes (by arrival time since the start)
    rel = arrival - lsl_start
    blocks = []
    for b0 in np.arange(0.0, duration, a.block * 60.0):
        m = (rel >= b0) & (rel < b0 + a.block * 60.0)
        if m.sum() > 10:
            blocks.append({"from_min": b0 / 60, "n": int(m.sum()), "p50_ms": float(np.percentile(latency[m], 50)),
                           "p99_ms": float(np.percentile(latency[m], 99))})  # fmt: skip
    # silences: arrival gaps longer than 3 hops; each must overlap an injected outage
    first_t = stamps[0] + la  # EEG time of the first prediction
    src_t0 = first_t - 20.48  # the window fill at the start (approximately)
    gaps = np.flatnonzero(np.diff(arrival) > 3 * hop)
    explained, unexplained = 0, []
    for g in gaps:
        t_a, t_b = stamps[g] + la - src_t0, stamps[g + 1] + la - src_t0  # EEG seconds of the replay
        k = np.floor(t_b / a.outage_every)
        if k >= 1 and t_a <= k * a.outage_every + 0.5 and t_b >= k * a.outage_every:
            explained += 1
        else:
            unexplained.append((float(t_a), float(t_b)))
    n_out = int((duration - 20.48) // a.outage_every)
    src_seconds = stamps[-1] - stamps[0]
    expected = src_seconds / hop - n_out * (a.outage_seconds + 0.2 + 0.5) / hop
    ref = next((s for s in samples if s["t"] >= a.warmup), samples[0])
    report = {
        "minutes": a.minutes,
        "predictions": int(stamps.size),
        "expected_min": float(expected),
        "outages_injected": n_out,
        "silences_explained": explained,
        "silences_unexplained": unexplained,
        "bridged_predictions": int((quality < 1).sum()),
        "latency_blocks": blocks,
        "usage_ref": ref,
        "usage_end": end_usage,
        "engine_status": last,
        "engine_final": final,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({**report, "samples": samples}, indent=1))
    print("\nsoak report")
    print(f"  predictions {stamps.size} (expected at least {expected:.0f}: {src_seconds:.0f} s of source at "
          f"hop {hop:g} s less {n_out} outage(s)); silences explained by outages {explained}, "
          f"unexplained {len(unexplained)} {unexplained[:5]}")  # fmt: skip
    print(f"  predictions from bridged windows: {report['bridged_predictions']}")
    for b in blocks:
        print(f"  block from {b['from_min']:4.0f} min: n {b['n']}, latency p50 {b['p50_ms']:.1f} ms, "
              f"p99 {b['p99_ms']:.1f} ms")  # fmt: skip
    if len(blocks) >= 2:
        print(f"  p99 last block / first block: {blocks[-1]['p99_ms'] / blocks[0]['p99_ms']:.3f}")
    for k in procs:
        r0, r1 = ref[k], end_usage[k]
        print(f"  {k}: RSS {r0['rss_mb']:.1f} -> {r1['rss_mb']:.1f} MB ({100 * (r1['rss_mb'] / r0['rss_mb'] - 1):+.1f} %"
              f" after warm-up), threads {r0['threads']} -> {r1['threads']}, fds {r0['fds']} -> {r1['fds']}")  # fmt: skip
    print(f"  engine resets {last.get('resets')}, gaps {last.get('gaps')}, bridged samples "
          f"{last.get('bridged_samples')}, skipped updates {last.get('skipped_updates')}, "
          f"clock steps {last.get('clock_steps')}")  # fmt: skip
    print("  engine final statistics:\n    " + "\n    ".join(final.strip().splitlines()))
    print(f"  written {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
