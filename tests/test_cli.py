"""The three console scripts exist, answer --help, and report bad configs by key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("script", "words"),
    [("beira-train", "Train BEIRA"), ("beira-rt", "Live BEIRA"), ("beira-replay", "Replay a recording")],
)
def test_help(script, words):
    out = subprocess.run([str(BIN / script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert words in out.stdout


def test_bad_config_exits_2_and_names_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("live:\n  hop: -3\n")
    out = subprocess.run(
        [str(BIN / "beira-rt"), "run", "--config", str(cfg), "--model", "x.beira", "--source", "none"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "live.hop" in out.stderr
