"""The runtime package stands alone: every ``beira_rt`` module imports without the trainer."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = r"""
import importlib, pkgutil, sys
sys.modules["offline"] = None  # any `import offline...` now raises ImportError
import beira_rt
names = sorted(m.name for m in pkgutil.walk_packages(beira_rt.__path__, "beira_rt."))
for name in names:
    importlib.import_module(name)
print(len(names), "modules")
assert not any(k == "offline" or k.startswith("offline.") for k, v in sys.modules.items() if v is not None)
"""


def test_every_runtime_module_imports_without_offline():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    n = int(done.stdout.split()[0])
    assert n > 40  # every module of the package was imported, not a handful


def test_no_runtime_source_names_the_trainer():
    """Not even a lazy import: the replay reads the trainer's TSV instead."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "beira_rt"
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if any(
            line.strip().startswith(("import offline", "from offline"))
            for line in p.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []
