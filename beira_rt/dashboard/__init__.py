"""The live dashboard: EEG, sBOLD predictions with truth overlays, and engine status, from LSL.

Layers, bottom up: :mod:`~beira_rt.dashboard.compute` (decimation, matched
correlation) is plain NumPy; :mod:`~beira_rt.dashboard.streams` keeps streams for
display with the shared reader and ring of :mod:`beira_rt.lsl`;
:mod:`~beira_rt.dashboard.widgets`, :mod:`~beira_rt.dashboard.panel` and
:mod:`~beira_rt.dashboard.main_window` are the Qt side; :mod:`~beira_rt.dashboard.app`
runs it for the CLI. Importing this package does not import Qt.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Dashboard", "DashboardSources", "run_dashboard"]


def __getattr__(name: str) -> Any:
    if name in ("Dashboard", "DashboardSources"):
        from beira_rt.dashboard import main_window

        return getattr(main_window, name)
    if name == "run_dashboard":
        from beira_rt.dashboard.app import run_dashboard

        return run_dashboard
    raise AttributeError(f"module 'beira_rt.dashboard' has no attribute {name!r}")
