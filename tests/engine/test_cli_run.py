"""``beira-rt run`` as a user runs it: a subprocess on a real LSL source; exit codes and messages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, unique_name
from tests.engine._streams import RecordingSource, eeg_outlet
from tests.engine.conftest import STREAM_LABELS, eeg, make_bundle


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "beira_rt.cli.rt", "run", *args]


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # for --dashboard
    return subprocess.run(_cli(*args), cwd=REPO, capture_output=True, text=True, timeout=120, env=env)


def _config(tmp_path, outlet: str, **extra) -> str:
    lines = [f"  outlet_name: {outlet}", "  device: cpu", "  hop: 0.05"] + [
        f"  {k}: {v}" for k, v in extra.items()
    ]
    path = tmp_path / "live.yaml"
    path.write_text("live:\n" + "\n".join(lines) + "\n")
    return str(path)


# a signal stopping the CLI engine cleanly: tests/faults/test_processes.py (on an amplifier-like source)


@pytest.mark.slow
def test_duration_run_prints_statistics(tmp_path, tiny_bundle_path, worker_threads):
    name, sid = unique_name()
    outlet_name, _ = unique_name("BEIRA-cli")
    src = RecordingSource(eeg(5000, 1000.0, 5), 1000.0, name, sid, STREAM_LABELS, wait_consumer=60)
    worker_threads(src.run, "source")
    args = ["--model", str(tiny_bundle_path), "--source-id", sid, "--duration", "2.5", "--lookahead", "0"]
    out = _run_cli(*args, "--config", _config(tmp_path, outlet_name))
    src.stop.set()
    assert out.returncode == 0, out.stderr
    assert "look-ahead 0 s" in out.stdout
    published = int(out.stdout.split("predictions published ")[1].split(";")[0])
    assert published > 0, out.stdout


@pytest.mark.slow
def test_run_with_dashboard_shows_this_engines_streams_and_closes_it(
    tmp_path, tiny_bundle_path, worker_threads
):
    """``run --dashboard``: a dashboard child process reads the engine's streams and stops with it."""
    name, sid = unique_name()
    outlet_name, _ = unique_name("BEIRA-cli")
    src = RecordingSource(eeg(12_000, 1000.0, 5), 1000.0, name, sid, STREAM_LABELS, wait_consumer=60)
    worker_threads(src.run, "source")
    args = ["--model", str(tiny_bundle_path), "--source", name, "--duration", "8", "--dashboard"]
    out = _run_cli(*args, "--config", _config(tmp_path, outlet_name))
    src.stop.set()
    assert out.returncode == 0, out.stderr
    published = int(out.stdout.split("predictions published ")[1].split(";")[0])
    assert published > 0, out.stdout
    # the dashboard's own summary line: it received this engine's predictions and EEG
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("dashboard:"))
    predictions = int(line.split("predictions ")[1].split(" ")[0])
    eeg_samples = int(line.split("eeg ")[1].split(" ")[0])
    assert predictions > 0 and eeg_samples > 0, line


def test_bundle_for_other_channels_exits_1_listing_them(tmp_path):
    from beira_rt.bundle import save_bundle

    path = tmp_path / "other.beira"
    save_bundle(make_bundle(ch_names=("Fp1", "Cz", "T7", "FT10")), path)
    name, sid = unique_name()
    outlet = eeg_outlet(name, sid, STREAM_LABELS, 500.0)
    try:
        out = _run_cli("--model", str(path), "--source", name, "--config", _config(tmp_path, "BEIRA-unused"))
    finally:
        del outlet
    assert out.returncode == 1
    assert "lacks 2 of the model's 4 channels: T7, FT10" in out.stderr


@pytest.mark.slow
def test_missing_stream_exits_1_listing_found_streams(tmp_path, tiny_bundle_path):
    name, sid = unique_name()
    outlet = eeg_outlet(name, sid, STREAM_LABELS, 500.0)
    try:
        config = _config(tmp_path, "BEIRA-unused", resolve_timeout=1.0)
        out = _run_cli("--model", str(tiny_bundle_path), "--source", "no-such-eeg", "--config", config)
    finally:
        del outlet
    assert out.returncode == 1
    assert "no-such-eeg" in out.stderr and name in out.stderr and "streams found" in out.stderr


def test_unreadable_bundle_exits_1(tmp_path):
    bad = tmp_path / "bad.beira"
    bad.write_bytes(b"not a bundle")
    out = _run_cli("--model", str(bad), "--source", "x")
    assert out.returncode == 1
    assert "error:" in out.stderr and "bad.beira" in out.stderr


def test_no_stream_named_exits_2(tiny_bundle_path):
    out = _run_cli("--model", str(tiny_bundle_path))
    assert out.returncode == 2
    assert "--source" in out.stderr
