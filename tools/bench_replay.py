"""Benchmark beira-replay: drift at speed 1, and the highest speed sustained without falling behind.

Run: ``.venv/bin/python tools/bench_replay.py [--minutes 10] [--sweep-seconds 3] [--chunk-size 10]``

1. Drift: a synthetic 30-channel, 1000 Hz recording (60 s, looped) replayed at speed 1 for
   ``--minutes`` (default 1; the issue asks for 10: pass ``--minutes 10``), with a consumer in
   another process (a plain pylsl inlet). Printed: the push lag (``local_clock()`` at push minus
   the stamp of the chunk's last sample; never negative by construction) at the start, over the
   run and at the end, its trend per minute, and what the consumer saw (every sample once, the
   stamp of the last sample against ``t0 + (N - 1) / sfreq``, transport latency start vs end).
2. Speed sweep: the same 30 channels at 1000 Hz and at 5000 Hz, at increasing speed factors,
   each for ``--sweep-seconds`` of wall time with a consumer attached. A speed is *sustained*
   when the median push lag over the last tenth of the run's chunks is under 2 ms (a replay
   that cannot keep up has a lag that keeps growing, to hundreds of ms; a momentary spike on
   a busy CPU is caught up and does not count); the sweep stops after two failures in a row.
   When behind, the player pushes every due sample at once (up to 64 chunks), so the ceiling
   is set by the per-sample cost, not only by the per-chunk cost.

Everything runs on this machine's loopback (own LSL session id); the machine's load is printed
because the figures depend on it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_CHANNELS = 30


def _raw(sfreq: float, seconds: float):
    import mne

    n = round(seconds * sfreq)
    rng = np.random.default_rng(0)
    data = rng.standard_normal((N_CHANNELS, n)).astype(np.float64) * 10e-6
    info = mne.create_info([f"EEG{c:02d}" for c in range(N_CHANNELS)], sfreq, "eeg")
    return mne.io.RawArray(data, info, verbose="error")


def _consume(source_id: str, done, results, chunk_hint: int) -> None:
    """Consumer process: pull everything, check the index channel, measure transport latency."""
    import pylsl

    found = pylsl.resolve_byprop("source_id", source_id, 1, 30)
    if not found:
        results.put({"error": f"stream {source_id} not found"})
        return
    inlet = pylsl.StreamInlet(found[0], max_buflen=360, max_chunklen=0)
    inlet.open_stream(timeout=30)
    n_ch = inlet.info().channel_count()
    buf = np.empty((max(4096, 64 * chunk_hint), n_ch), dtype=np.float32)
    stamps = np.empty(buf.shape[0])
    expected, received, jumps = None, 0, 0
    lat_t, lat = [], []
    last_stamp = None
    idle_since = None
    while True:
        # poll (no blocking wait for a full buffer) so that arrival times mean something
        _, ts = inlet.pull_chunk(timeout=0.0, max_samples=buf.shape[0], dest_obj=buf)
        now = pylsl.local_clock()
        n = len(ts)
        if n == 0:
            if done.is_set():
                idle_since = idle_since or now
                if now - idle_since > 1.5:
                    break
            time.sleep(0.0005)
            continue
        idle_since = None
        stamps[:n] = ts
        idx = buf[:n, -1].astype(np.int64)
        prev = np.concatenate([[idx[0] if expected is None else expected], idx[:-1] + 1])
        jumps += int(np.count_nonzero(idx != prev % 2**24))  # a sample missing, repeated or reordered
        expected = (idx[-1] + 1) % 2**24
        received += n
        last_stamp = stamps[n - 1]
        if len(lat) < 2_000_000:
            lat_t.append(stamps[n - 1])
            lat.append(now - stamps[n - 1])
    inlet.close_stream()
    results.put({"received": received, "index_errors": jumps, "last_stamp": last_stamp,
                 "lat_t": np.asarray(lat_t), "lat": np.asarray(lat)})  # fmt: skip


def _replay(sfreq: float, speed: float, seconds_wall: float, chunk: int, tag: str) -> dict:
    from beira_rt.replay import Player

    raw = _raw(sfreq, 60.0)
    name = f"bench-{tag}-{os.getpid()}"
    player = Player(
        raw, name, name, speed=speed, chunk_size=chunk, loop=True, markers=False, index_channel=True
    )
    player.open()
    ctx = mp.get_context("spawn")
    done, results = ctx.Event(), ctx.Queue()
    consumer = ctx.Process(target=_consume, args=(name, done, results, chunk), daemon=True)
    consumer.start()
    if not player.wait_for_consumers(60):
        raise RuntimeError("the consumer did not connect within 60 s")
    trace: list[tuple[float, float]] = []  # (elapsed s, median lag of the chunks of that second)
    player.start(duration=seconds_wall * speed)
    seen_chunks = 0
    while not player.wait(timeout=1.0):
        s = player.stats
        new = s.chunks_pushed - seen_chunks
        seen_chunks = s.chunks_pushed
        if new > 0:
            trace.append((s.elapsed, float(np.median(player.recent_lags(new)))))
    stats = player.stats
    tail = float(np.median(player.recent_lags(max(10, min(stats.chunks_pushed // 10, 65536)))))
    done.set()
    seen = results.get(timeout=120)
    consumer.join(30)
    player.stop()
    return {
        "stats": stats,
        "seen": seen,
        "trace": trace,
        "tail": tail,
        "t0": player.t0,
        "period": player.period,
    }


def _ms(x: float) -> str:
    return f"{x * 1e3:.3f} ms"


def drift(minutes: float, chunk: int) -> None:
    print(f"\n1. drift: 30 channels at 1000 Hz, speed 1, chunks of {chunk}, {minutes:g} min "
          f"({'the full 10-minute run' if minutes >= 10 else 'a SHORTENED run; --minutes 10 for the full one'})")  # fmt: skip
    r = _replay(1000.0, 1.0, minutes * 60.0, chunk, "drift")
    s, seen = r["stats"], r["seen"]
    trace = np.asarray(r["trace"])
    print(
        f"   pushed {s.samples_pushed} samples ({s.stream_seconds:.1f} s) in {s.elapsed:.1f} s of LSL clock"
    )
    print(f"   push lag behind the stamps: median {_ms(s.lag_p50)}, p99 {_ms(s.lag_p99)}, "
          f"max {_ms(s.lag_max)}, at the end {_ms(s.lag_last)}")  # fmt: skip
    if trace.shape[0] > 4:
        slope = np.polyfit(trace[2:, 0] / 60.0, trace[2:, 1], 1)[0]  # after the first 2 s (start-up)
        print(f"   median lag per second: first {_ms(trace[0, 1])}, last {_ms(trace[-1, 1])}, "
              f"linear trend {slope * 1e6:+.2f} us per minute")  # fmt: skip
    if "error" in seen:
        print(f"   consumer: {seen['error']}")
        return
    want_last = r["t0"] + (s.samples_pushed - 1) * r["period"]
    print(f"   consumer (pylsl inlet, other process): {seen['received']} samples, "
          f"{seen['index_errors']} breaks in the sample index (dropped / duplicated / reordered)")  # fmt: skip
    print(
        f"   stamp of the last sample - (t0 + (N-1)/sfreq): {(seen['last_stamp'] - want_last) * 1e9:.1f} ns"
    )
    lat_t, lat = seen["lat_t"], seen["lat"]
    if lat.size > 100:
        t_rel = lat_t - lat_t[0]
        first, last = lat[t_rel < 10.0], lat[t_rel > t_rel[-1] - 10.0]
        print(f"   arrival (0.5 ms polling) - stamp at the consumer: median {_ms(np.median(first))} over the first 10 s, "
              f"{_ms(np.median(last))} over the last 10 s; min {_ms(lat.min())} (never negative)")  # fmt: skip
    final = max(s.lag_last, 0.0)
    print(f"   => cumulative drift after {s.elapsed / 60:.1f} min: {_ms(final)} behind real time at the end "
          f"({'under' if final < 1e-3 else 'NOT under'} 1 ms)")  # fmt: skip


def sweep(sfreq: float, seconds: float, chunk: int, speeds: list[float]) -> None:
    print(
        f"\n2. speed sweep: 30 channels at {sfreq:g} Hz, chunks of {chunk}, {seconds:g} s of wall time each"
    )
    best, fails = None, 0
    for speed in speeds:
        r = _replay(sfreq, speed, seconds, chunk, f"sweep{int(sfreq)}")
        s, seen = r["stats"], r["seen"]
        ok = r["tail"] < 0.002
        got = seen.get("received", 0)
        print(f"   speed {speed:>6g}: {s.samples_pushed / max(s.elapsed, 1e-9) / 1e3:9.1f} k samples/s, lag "
              f"median {_ms(s.lag_p50)}, p99 {_ms(s.lag_p99)}, last tenth {_ms(r['tail'])}; consumer got "
              f"{got}/{s.samples_pushed}, {seen.get('index_errors', '?')} index breaks -> "
              f"{'sustained' if ok else 'FALLS BEHIND'}")  # fmt: skip
        if ok:
            best, fails = speed, 0
        else:
            fails += 1
            if fails == 2:
                break
    if best is None:
        print(f"   => no speed of the sweep was sustained at {sfreq:g} Hz")
    else:
        print(f"   => highest speed sustained at {sfreq:g} Hz: {best:g}x "
              f"({best * sfreq * N_CHANNELS / 1e6:.1f} M values/s"
              f"{'; the top of the sweep, the ceiling may be higher' if best == speeds[-1] else ''})")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=1.0, help="length of the drift run (the issue: 10)")
    p.add_argument("--sweep-seconds", type=float, default=3.0, help="wall seconds per speed in the sweep")
    p.add_argument("--chunk-size", type=int, default=10, help="samples per chunk (replay.chunk_size)")
    p.add_argument(
        "--speeds", default="1,2,5,10,20,50,100,200,500,1000", help="comma-separated speed factors"
    )
    p.add_argument("--skip-drift", action="store_true")
    p.add_argument("--skip-sweep", action="store_true")
    a = p.parse_args(argv)

    from beira_rt.lsl import use_loopback_config

    use_loopback_config()
    import pylsl

    from beira_rt._logging import set_log_level

    set_log_level(quiet=1)
    print(f"beira-replay benchmark: {' '.join(sys.argv)}")
    print(f"   machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (1 min); "
          f"pylsl {pylsl.__version__}, liblsl {pylsl.library_version()}")  # fmt: skip
    if not a.skip_drift:
        drift(a.minutes, a.chunk_size)
    if not a.skip_sweep:
        speeds = [float(x) for x in a.speeds.split(",")]
        for sfreq in (1000.0, 5000.0):
            sweep(sfreq, a.sweep_seconds, a.chunk_size, speeds)
    print(f"\n   load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
