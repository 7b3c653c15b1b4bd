"""beira-rt: live prediction of subcortical sBOLD activity from scalp EEG with BEIRA.

What a user imports (loaded on first use, so that ``import beira_rt.lsl`` stays light)::

    from beira_rt import load_bundle, load_config, Engine, StreamQuery, WindowPredictor

- :func:`load_config`, :class:`BeiraConfig` — the validated configuration (:mod:`beira_rt.config`);
- :func:`load_bundle`, :class:`ModelBundle` — a trained model and what it needs (:mod:`beira_rt.bundle`);
- :class:`WindowPredictor`, :func:`predict_recording` — predictions by the parity contract
  (:mod:`beira_rt.inference`);
- :class:`Engine`, :class:`StreamQuery` — the live engine on an LSL stream (:mod:`beira_rt.engine`);
- :class:`Player` — replay a recording as LSL streams (:mod:`beira_rt.replay`);
- :mod:`beira_rt.lsl` — the LSL layer (stream contract, reader, ring) for clients of one's own.
"""

from __future__ import annotations

from typing import Any

from beira_rt._logging import logger, set_log_level

__version__ = "0.1.0"

_LAZY = {
    "BeiraConfig": "beira_rt.config",
    "load_config": "beira_rt.config",
    "ModelBundle": "beira_rt.bundle",
    "load_bundle": "beira_rt.bundle",
    "WindowPredictor": "beira_rt.inference",
    "predict_recording": "beira_rt.inference",
    "Engine": "beira_rt.engine",
    "StreamQuery": "beira_rt.lsl",
    "Player": "beira_rt.replay",
}

__all__ = ["__version__", "logger", "set_log_level", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'beira_rt' has no attribute {name!r}")
