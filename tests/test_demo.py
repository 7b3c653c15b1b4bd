"""``make demo`` headless, shortened: replay + engine with the shipped bundle + the summary.

Runs tools/demo.py as a user would (subprocesses, a private loopback LSL session of its
own), on the demo recording (written once per test run), for a few seconds of predictions.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_headless_demo_prints_a_summary_with_predictions_and_correlations(demo_subject_dir, tmp_path):
    png = tmp_path / "dash.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "demo.py"), "--headless", "--seconds", "6",
         "--data", str(demo_subject_dir), "--screenshot", str(png)],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "beira-rt demo summary" in text, text
    n = int(re.search(r"predictions received (\d+)", text).group(1))
    assert n >= 30, text  # 6 s at a 0.1 s hop
    p50, p99 = map(float, re.search(r"p50 ([\d.]+) ms, p99 ([\d.]+) ms;", text).groups())
    assert 0 < p50 <= p99 < 1000, text
    rs = re.findall(r"^  (?:Left|Right) \w+ +r ([+-][\d.]+)", text, flags=re.M)
    assert len(rs) == 8, text
    assert "predictions published" in text  # the engine's own final statistics
    assert png.stat().st_size > 10_000  # the offscreen dashboard rendered something
