"""`make demo`: run the most complete path that exists and say what it did.

Grows with the project. Today: load and validate the default configuration,
and show the console scripts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    from beira_rt.config import load_config, to_dict

    cfg = load_config(REPO / "configs" / "default.yaml")
    print("beira-rt demo")
    print(
        f"  configuration configs/default.yaml is valid: {len(to_dict(cfg))} sections, "
        f"{len(cfg.data.rois)} ROIs, window {cfg.model.n_times} samples at {cfg.preprocessing.sfreq:g} Hz"
    )
    bin_dir = Path(sys.executable).parent
    for script in ("beira-train", "beira-rt", "beira-replay"):
        out = subprocess.run([str(bin_dir / script), "--help"], capture_output=True, text=True)
        first = out.stdout.splitlines()[0] if out.stdout else out.stderr.strip()
        print(f"  {script} --help -> exit {out.returncode}: {first}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
