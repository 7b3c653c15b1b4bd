"""``make session-demo``: a short neurofeedback session on the replayed synthetic recording, end to end.

Headless, from one command (private loopback LSL session; nothing leaves the machine):

1. ``beira-replay`` on the demo recording (the synthetic CWL subject of ``make demo``,
   written on first run) with a sample-index channel;
2. ``beira-rt run`` with the shipped bundle;
3. ``beira-rt session configs/protocols/demo_short.yaml`` (baseline 10 s, feedback 10 s,
   rest 5 s, feedback 10 s), which waits for the engine's first prediction (20.5 s: the
   bundle's window) and for the recorder;
4. ``beira-rt record`` (LabRecorder) of the EEG, predictions, engine status, feedback and
   session markers to ``runs/session_demo/session.xdf`` (+ ``session.json``);
5. the participant display and the dashboard with its session panel, offscreen, each
   saving a screenshot during the second feedback block;
6. ``beira-rt report`` of the recording; then a summary: feedback samples, latency EEG
   sample -> feedback sample (the runner) beside the engine's own latency, feedback sample
   -> frame (the display), the report's figures.

Usage::

    make session-demo
    .venv/bin/python tools/session_demo.py [--out runs/session_demo] [--protocol YAML]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo import BUNDLE, DATA, SUBJECT, ensure_recording

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EEG, PRED, FEEDBACK, SESSION = "beira-session-eeg", "BEIRA", "BEIRA-feedback", "BEIRA-session"


def _start(out: Path, role: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    log = open(out / f"{role}.log", "w")
    return subprocess.Popen(list(args), stdout=log, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)


def _wait_text(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and text in path.read_text():
            return
        time.sleep(0.2)
    raise RuntimeError(
        f"{path.name}: {text!r} did not appear within {timeout:g} s:\n{path.read_text()[-2000:]}"
    )


def _stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "runs" / "session_demo")
    p.add_argument("--protocol", type=Path, default=REPO / "configs" / "protocols" / "demo_short.yaml")
    p.add_argument("--data", type=Path, default=DATA)
    a = p.parse_args(argv)
    from beira_rt.lsl import use_loopback_config
    from beira_rt.session.protocol import load_protocol

    use_loopback_config()  # children inherit it: a private LSL session
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    protocol = load_protocol(a.protocol)
    eeg_file = ensure_recording(a.data, SUBJECT, 300.0, 0)
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs["replay"] = _start(out, "replay", str(BIN / "beira-replay"), str(eeg_file), "--name", EEG, "--loop",
                                 "--index-channel", "-q")  # fmt: skip
        procs["engine"] = _start(
            out, "engine", str(BIN / "beira-rt"), "run", "--model", str(BUNDLE), "--source", EEG
        )
        procs["runner"] = _start(out, "runner", str(BIN / "beira-rt"), "session", str(a.protocol), "--predictions",
                                 PRED, "--state", str(out / "state.json"), "--wait-recorder", "120")  # fmt: skip
        _wait_text(out / "engine.log", "engine:", 120)
        time.sleep(3.0)  # the runner's streams are open
        xdf = out / "session.xdf"
        streams = [EEG, PRED, f"{PRED}-status", FEEDBACK, SESSION]
        procs["recorder"] = _start(out, "recorder", str(BIN / "beira-rt"), "record", str(xdf),
                                   *[x for s in streams for x in ("--stream", s)], "--protocol", str(a.protocol))  # fmt: skip
        print(f"session demo: recording to {xdf}; waiting for the engine's first prediction ...", flush=True)
        _wait_text(out / "runner.log", "session_start", 180)
        shot_at = protocol.blocks[-1].start + protocol.blocks[-1].duration / 2  # mid last block
        procs["display"] = _start(out, "display", str(BIN / "beira-rt"), "display", "--duration", f"{shot_at:g}",
                                  "--screenshot", str(out / "participant.png"))  # fmt: skip
        procs["dashboard"] = _start(out, "dashboard", str(BIN / "beira-rt"), "dashboard", "--eeg", EEG, "--session",
                                    "--duration", f"{shot_at:g}", "--screenshot", str(out / "operator.png"))  # fmt: skip
        print(f"session demo: session started ({protocol.duration:g} s)", flush=True)
        procs["runner"].wait(protocol.duration + 120)
        for role in ("display", "dashboard"):
            procs[role].wait(60)
        time.sleep(1.0)
        _stop(procs["recorder"])
    finally:
        for role in ("recorder", "display", "dashboard", "runner", "engine", "replay"):
            if role in procs:
                _stop(procs[role])
    from beira_rt.session.report import write_report

    doc = write_report(xdf, out)
    runner = (out / "runner.log").read_text()
    engine = (out / "engine.log").read_text()
    display = (out / "display.log").read_text()
    fig = lambda pat, text: float(m.group(1)) if (m := re.search(pat, text)) else float("nan")  # noqa: E731
    summary = {
        "feedback_samples": doc["summary"]["feedback_samples"],
        "eeg_to_feedback_ms_p50": fig(r"eeg_to_feedback_ms_p50 ([0-9.]+)", runner),
        "eeg_to_feedback_ms_p99": fig(r"eeg_to_feedback_ms_p99 ([0-9.]+)", runner),
        "engine_latency_ms_p50": fig(r"latency \(push - newest EEG used\) p50 ([0-9.]+) ms", engine),
        "engine_latency_ms_p99": fig(
            r"latency \(push - newest EEG used\) p50 [0-9.]+ ms, p99 ([0-9.]+) ms", engine
        ),
        "feedback_to_frame_ms_p50": fig(r"feedback_to_frame_ms_p50 ([0-9.]+)", display),
        "feedback_to_frame_ms_p99": fig(r"feedback_to_frame_ms_p99 ([0-9.]+)", display),
        "report": doc["summary"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print("beira-rt session demo summary (synthetic recording, this machine)")
    print(json.dumps(summary, indent=1))
    print(f"files: {out}/session.xdf, session.json, session.report.png/json, participant.png, operator.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
