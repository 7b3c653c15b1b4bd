"""``make demo``: replay a recording, run the live engine on the shipped bundle, show or summarise it.

What it runs (three processes on a private loopback LSL session, so nothing
leaves the machine and nothing else on the network is seen):

1. ``beira-replay`` on the demo recording — a synthetic CWL subject (300 s,
   seed 0) written on first run to ``data/synthetic/`` by the trainer's generator —
   with its ROI truth stream, starting 20 s before the held-out test block and
   looping;
2. ``beira-rt run`` with the shipped bundle ``beira_rt/data/demo.beira`` (trained
   on that recording with ``beira-train``, see README "The demo bundle");
3. with a display, the dashboard window (``beira-rt dashboard``) until it is
   closed; without one, the dashboard offscreen (saved as ``runs/demo_dashboard.png``)
   and a headless consumer of the prediction, truth and status streams for
   ``--seconds`` (60) after the first prediction, then a summary:
   predictions received, added latency p50/p99 (arrival minus the EEG time stamp
   the prediction carries, plus its look-ahead), the engine's own statistics and
   the running correlation per ROI against the truth.

Usage::

    make demo                                  # window if there is a display, else headless
    .venv/bin/python tools/demo.py --headless --seconds 60 [--screenshot PNG | --no-dashboard]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from beira_rt.lsl import use_loopback_config  # noqa: E402

DATA = REPO / "data" / "synthetic"
SUBJECT = "trio1"
BUNDLE = REPO / "beira_rt" / "data" / "demo.beira"
EEG_NAME = "beira-demo"
OUTLET = "BEIRA"


def ensure_recording(data: Path, subject: str, duration: float, seed: int) -> Path:
    """The demo subject's .set file, generated (deterministically) when missing."""
    from offline.loader.cwl import cwl_paths

    paths = cwl_paths(data, subject)
    if paths.eeg.is_file() and paths.nifti.is_file() and any((data / "atlas").glob("*.nii")):
        return paths.eeg
    from offline.synthetic import make_synthetic_subject

    print(
        f"demo: writing the synthetic recording {subject} ({duration:g} s, seed {seed}) to {data} ...",
        flush=True,
    )
    t = time.perf_counter()
    make_synthetic_subject(data, subject, duration=duration, seed=seed)
    print(f"demo: written in {time.perf_counter() - t:.0f} s", flush=True)
    return cwl_paths(data, subject).eeg


class Consumer(threading.Thread):
    """Pull one LSL stream (short timeouts) and keep arrival times, time stamps and values."""

    def __init__(self, pred: str, timeout: float) -> None:
        import pylsl

        super().__init__(daemon=True)
        found = pylsl.resolve_bypred(pred, 1, timeout)
        if not found:
            raise RuntimeError(f"the stream {pred} did not appear within {timeout:g} s")
        self.inlet = pylsl.StreamInlet(found[0], max_buflen=30)
        self.info = self.inlet.info(timeout)
        self.arrival: list[float] = []
        self.stamps: list[float] = []
        self.values: list = []
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        import pylsl
        from pylsl.util import LostError

        while not self.halt.is_set():
            try:
                data, ts = self.inlet.pull_chunk(timeout=0.0, max_samples=1024)
            except LostError:
                return
            if ts:
                now = pylsl.local_clock()
                with self.lock:
                    self.arrival.extend([now] * len(ts))
                    self.stamps.extend(ts)
                    self.values.extend(data)
            else:
                time.sleep(0.005)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, list]:
        with self.lock:
            return np.asarray(self.arrival), np.asarray(self.stamps), list(self.values)


def _desc_value(info, key: str) -> str:
    return info.desc().child("beira").child_value(key)


def _stop(proc: subprocess.Popen, what: str, timeout: float = 20.0) -> str:
    """SIGINT a child (clean stop), wait, return what it printed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        print(f"demo: {what} did not stop within {timeout:g} s and was killed", file=sys.stderr)
    return out or ""


def _has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "") == "offscreen":
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform == "darwin"


def headless(args: argparse.Namespace, bundle, engine: subprocess.Popen) -> dict:
    """Consume predictions, truth and status for ``args.seconds``; return the summary figures."""
    from beira_rt.dashboard.compute import matched_correlation
    from beira_rt.lsl import roi_columns

    pred = Consumer(f"name='{OUTLET}' and type='sBOLD'", 120.0)
    truth = Consumer(f"name='{EEG_NAME}-truth'", 60.0)
    status = Consumer(f"name='{OUTLET}-status'", 60.0)
    for c in (pred, truth, status):
        c.start()
    lookahead = float(_desc_value(pred.info, "lookahead") or 0.0)
    t_wait = time.monotonic()
    while not pred.stamps:
        if engine.poll() is not None:
            raise RuntimeError("the engine exited before publishing a prediction")
        if time.monotonic() - t_wait > 120:
            raise RuntimeError("no prediction within 120 s")
        time.sleep(0.05)
    print(
        f"demo: first prediction after {time.monotonic() - t_wait:.1f} s of waiting for the window to fill; "
        f"measuring for {args.seconds:g} s ...",
        flush=True,
    )
    screenshot = None
    if not args.no_dashboard:
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "beira-rt"),
                "dashboard",
                "--eeg",
                EEG_NAME,
                "--truth",
                f"{EEG_NAME}-truth",
                "--screenshot",
                str(args.screenshot),
                "--duration",
                str(args.seconds),
                "-q",
            ],
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
            stdout=subprocess.PIPE,
            text=True,
        )
    time.sleep(args.seconds)
    for c in (pred, truth, status):
        c.halt.set()
        c.join(5)
    arrival, stamps, values = pred.arrays()
    _, t_truth, truth_values = truth.arrays()
    added = (arrival - (stamps + lookahead)) * 1e3  # the prediction carries the EEG stamp minus look-ahead
    # map by label: the prediction stream ends with the engine's quality channel, the truth may differ in order
    pred_labels, truth_labels = pred.info.get_channel_labels(), truth.info.get_channel_labels()
    rois = [pred_labels[i] for i in roi_columns(pred_labels)]
    r = matched_correlation(
        stamps,
        np.asarray(values)[:, roi_columns(pred_labels)],
        t_truth,
        np.asarray(truth_values)[:, [truth_labels.index(roi) for roi in rois]],
    )
    last_status = json.loads(status.values[-1][0]) if status.values else {}
    out = {
        "predictions": int(stamps.size),
        "seconds_of_predictions": float(stamps[-1] - stamps[0]) if stamps.size > 1 else 0.0,
        "lookahead": lookahead,
        "added_latency_ms": {"p50": float(np.percentile(added, 50)), "p99": float(np.percentile(added, 99))},
        "status": last_status,
        "r_per_roi": dict(zip(rois, (float(v) for v in r), strict=True)),
        "r_mean": float(np.nanmean(r)) if np.isfinite(r).any() else float("nan"),
    }
    if screenshot is not None:
        line, _ = screenshot.communicate(timeout=60)
        out["screenshot"] = str(args.screenshot) if screenshot.returncode == 0 else None
        out["dashboard"] = line.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--headless", action="store_true", help="no window even if there is a display")
    p.add_argument("--seconds", type=float, default=60.0, help="headless: seconds measured (default 60)")
    p.add_argument(
        "--model", type=Path, default=BUNDLE, help="bundle to run (default: the shipped demo bundle)"
    )
    p.add_argument("--data", type=Path, default=DATA, help="folder of the demo recording (created)")
    p.add_argument(
        "--screenshot",
        type=Path,
        default=REPO / "runs" / "demo_dashboard.png",
        help="headless: the dashboard runs offscreen and is saved to this PNG (default %(default)s)",
    )
    p.add_argument("--no-dashboard", action="store_true", help="headless: no offscreen dashboard")
    p.add_argument("--start", type=float, help="replay start in s (default: 20 s before the test block)")
    args = p.parse_args(argv)
    use_loopback_config()  # children inherit LSLAPICFG: a private LSL session on loopback

    from beira_rt.bundle import load_bundle

    if not args.model.is_file():
        print(f"demo: no bundle at {args.model}; see README 'The demo bundle' to train it.", file=sys.stderr)
        return 1
    bundle = load_bundle(args.model)
    eeg_file = ensure_recording(args.data, SUBJECT, 300.0, 0)
    tcfg = bundle.config.training
    window = bundle.config.model.n_times / bundle.config.preprocessing.sfreq
    # the test block is the last test_seconds of the delay-aligned recording (300 s - bold delay)
    test_start = 300.0 - bundle.bold_delay - tcfg.test_seconds
    start = args.start if args.start is not None else max(0.0, test_start - window)
    bin_dir = Path(sys.executable).parent
    atlas = args.data / "atlas"
    print(
        f"demo: bundle {args.model.name} ({bundle.config.model.variant}, {len(bundle.rois)} ROIs, "
        f"look-ahead {bundle.lookahead:g} s, stored test r {bundle.metrics.get('test', {}).get('r_mean', float('nan')):.3f}); "
        f"replaying {eeg_file.name} from {start:.0f} s (test block from {test_start:.0f} s) with its truth",
        flush=True,
    )
    # the ROI truth of the subject, written by the trainer (the runtime never imports it): `beira-train
    # truth`, called here rather than as a process of its own (torch is already imported here)
    from offline.cli import main as train_main

    truth_tsv = args.data / f"{SUBJECT}-truth.tsv"
    if train_main(
        ["truth", str(args.data / SUBJECT), "--out", str(truth_tsv),
         "--atlas", str(next(atlas.glob("*.nii"))), "--atlas-labels", str(next(atlas.glob("*.tsv"))), "-q"]
    ) != 0:  # fmt: skip
        print("demo: beira-train truth failed", file=sys.stderr)
        return 1
    replay = subprocess.Popen(
        [str(bin_dir / "beira-replay"), str(eeg_file), "--name", EEG_NAME, "--start", f"{start:g}", "--loop",
         "--truth", str(truth_tsv), "-q"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    engine = subprocess.Popen(
        [str(bin_dir / "beira-rt"), "run", "--model", str(args.model), "--source", EEG_NAME, "-q"],
        stdout=subprocess.PIPE,
        text=True,
    )
    code = 0
    try:
        if not args.headless and _has_display():
            print("demo: opening the dashboard; close the window to stop.", flush=True)
            dash = subprocess.run(
                [str(bin_dir / "beira-rt"), "dashboard", "--eeg", EEG_NAME, "--truth", f"{EEG_NAME}-truth"]
            )
            code = dash.returncode
            summary = None
        else:
            summary = headless(args, bundle, engine)
    except (RuntimeError, KeyboardInterrupt) as err:
        print(f"demo: {err or 'interrupted'}", file=sys.stderr)
        summary, code = None, 1
    finally:
        engine_out = _stop(engine, "the engine")
        _stop(replay, "the replay")
    if engine.returncode not in (0, None) and code == 0:
        code = 1
    if summary is not None:
        st = summary["status"]
        print("\n=== beira-rt demo summary (synthetic recording, CPU) ===")
        print(
            f"predictions received {summary['predictions']} over {summary['seconds_of_predictions']:.1f} s "
            f"(look-ahead {summary['lookahead']:g} s); engine: state {st.get('state')}, device {st.get('device')}, "
            f"updates {st.get('updates')}, skipped {100 * st.get('skipped_share', 0):.2f} %, gaps {st.get('gaps')}"
        )
        lat = summary["added_latency_ms"]
        print(
            f"added latency at the consumer (arrival - newest EEG stamp used): p50 {lat['p50']:.1f} ms, "
            f"p99 {lat['p99']:.1f} ms; engine's own (push - newest EEG): p50 {st.get('latency_p50_ms', float('nan')):.1f} ms, "
            f"p99 {st.get('latency_p99_ms', float('nan')):.1f} ms"
        )
        print(
            "running correlation with the truth over the demo (a short stretch; the bundle's test r beside):"
        )
        test_r = bundle.metrics.get("test", {}).get("r_per_roi", {})
        for roi, r in summary["r_per_roi"].items():
            stored = test_r.get(roi) if isinstance(test_r, dict) else None
            print(
                f"  {roi:<16} r {r:+.2f}"
                + (f"   (test block, offline: {stored:+.2f})" if stored is not None else "")
            )
        print(f"  mean             r {summary['r_mean']:+.2f}")
        if summary.get("dashboard"):
            print(f"dashboard (offscreen): {summary['dashboard']}")
        print(
            "engine final statistics:\n" + "\n".join("  " + ln for ln in engine_out.strip().splitlines()[-5:])
        )
        if summary["predictions"] == 0:
            code = 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
