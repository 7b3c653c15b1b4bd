"""A session on real processes: replay -> engine -> session runner -> LabRecorder (+ display)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import mne
import numpy as np
import pytest

from tests.conftest import REPO, unique_name
from tests.engine.conftest import CH_NAMES, saved_bundle

BIN = Path(sys.executable).parent


def write_recording(path: Path, seconds: float, sfreq: float = 500.0, seed: int = 0) -> Path:
    """An EEGLAB .set with the tiny bundle's channels (+ an EOG), EEG-like noise and alpha, in volts."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sfreq)
    t = np.arange(n) / sfreq
    names = [*CH_NAMES, "EOG"]
    data = 10e-6 * rng.standard_normal((len(names), n))
    data[:-1] += 15e-6 * np.sin(2 * np.pi * 10 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.05 * t))
    info = mne.create_info(names, sfreq, ["eeg"] * len(CH_NAMES) + ["eog"])
    mne.io.RawArray(data, info, verbose="error").export(path, fmt="eeglab", overwrite=True, verbose="error")
    return path


PROTOCOL = """
protocol: {{name: {name}, seed: 1}}
feedback:
  target: Left Putamen - Right Putamen
  smoothing: 0.5
  normalise: zscore
  threshold: 0.0
blocks:
{blocks}
"""


def protocol_text(name: str, blocks: list[tuple[str, str, float]]) -> str:
    rows = "\n".join(
        f"  - {{name: {n}, kind: {k}, duration: {d}, instruction: {n} now}}" for n, k, d in blocks
    )
    return PROTOCOL.format(name=name, blocks=rows)


@dataclass
class Pipeline:
    """The processes of one session and the names of their streams."""

    tmp: Path
    eeg: str
    predictions: str
    feedback: str
    session: str
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def streams(self) -> list[str]:
        return [self.eeg, self.predictions, f"{self.predictions}-status", self.feedback, self.session]

    def start(self, role: str, *args: str) -> subprocess.Popen:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        log = open(self.tmp / f"{role}.log", "w")
        proc = subprocess.Popen(
            list(args), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.procs[role] = proc
        return proc

    def output(self, role: str) -> str:
        return (self.tmp / f"{role}.log").read_text()

    def runner(self, protocol: Path, *extra: str) -> subprocess.Popen:
        return self.start(
            "runner" if "runner" not in self.procs else f"runner-{len(self.procs)}",
            str(BIN / "beira-rt"), "session", str(protocol), "--predictions", self.predictions,
            "--feedback-name", self.feedback, "--session-name", self.session,
            "--state", str(self.tmp / "state.json"), *extra,
        )  # fmt: skip

    def begin(self, name: str, blocks: list[tuple[str, str, float]]) -> tuple[subprocess.Popen, Path, Path]:
        """Runner and recorder on a protocol of ``blocks``: (runner, xdf, protocol file)."""
        protocol = self.tmp / "protocol.yaml"
        protocol.write_text(protocol_text(name, blocks))
        wait_file_text(self.tmp / "engine.log", "engine:", 90, "the engine running")
        runner = self.runner(protocol, "--wait-recorder", "60")
        # the runner's streams are open (it waits for the recorder)
        wait_streams([self.feedback, self.session], 60, runner, lambda: self.output("runner"))
        xdf = self.tmp / "session.xdf"
        recording = [a for s in self.streams for a in ("--stream", s)]
        self.start(
            "recorder", str(BIN / "beira-rt"), "record", str(xdf), *recording, "--protocol", str(protocol)
        )
        return runner, xdf, protocol

    def stop(self, role: str, timeout: float = 30.0) -> int:
        proc = self.procs[role]
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def wait_file_text(path: Path, text: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and text in path.read_text():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} not reached within {timeout} s:\n{path.read_text() if path.is_file() else ''}")


def wait_streams(names: list[str], timeout: float, proc: subprocess.Popen, output) -> None:
    """Wait until every stream of ``names`` can be resolved; fail if ``proc`` exits or ``timeout`` passes."""
    import pylsl

    deadline = time.monotonic() + timeout
    for name in names:
        while not pylsl.resolve_byprop("name", name, 1, 2.0):  # returns once found
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the stream {name!r} did not appear within {timeout} s:\n{output()}")


@pytest.fixture
def pipeline(tmp_path):
    """Replay (with a sample-index channel) and engine running; the test adds runner and recorder."""
    eeg, sid = unique_name("beira-ses-eeg")
    pred, _ = unique_name("BEIRA-ses")
    pipe = Pipeline(tmp_path, eeg, pred, unique_name("BEIRA-feedback")[0], unique_name("BEIRA-session")[0])
    rec = write_recording(tmp_path / "rec.set", 300.0)
    bundle = saved_bundle(tmp_path / "tiny.beira")
    (tmp_path / "live.yaml").write_text(f"live:\n  outlet_name: {pred}\n  device: cpu\n  hop: 0.05\n")
    pipe.start(
        "replay",
        str(BIN / "beira-replay"),
        str(rec),
        "--name",
        eeg,
        "--source-id",
        sid,
        "--index-channel",
        "-q",
    )
    pipe.start(
        "engine", str(BIN / "beira-rt"), "run", "--model", str(bundle), "--source", eeg,
        "--config", str(tmp_path / "live.yaml"),
    )  # fmt: skip
    yield pipe
    for role in reversed(list(pipe.procs)):
        pipe.stop(role, timeout=20)
