"""The LSL layer every beira-rt client is built on (engine, dashboard, replay, sessions).

Bottom up:

* :mod:`~beira_rt.lsl.contract` — stream names, types and channel labels (the outlet contract).
* :mod:`~beira_rt.lsl.query` — :class:`StreamQuery` and :func:`resolve_stream`.
* :mod:`~beira_rt.lsl.description` — channel labels/types/units and ``desc`` values, written
  (:func:`write_channels`, :func:`write_values`) and read (:class:`StreamMeta`).
* :mod:`~beira_rt.lsl.ring` — :class:`SampleRing`, the bounded sample store.
* :mod:`~beira_rt.lsl.reader` — :class:`StreamReader`, the reconnecting reader thread.
* :mod:`~beira_rt.lsl.loopback` — :func:`use_loopback_config` for tests, benchmarks and demos.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module that defines it. Loaded on first use: the stream contract and the
#: description writers do not import pylsl, so ``beira-replay --help`` stays fast.
_WHERE = {
    **dict.fromkeys(
        (
            "BEIRA_DESC_KEYS", "EEG_TYPE", "INDEX_CHANNEL", "INDEX_MODULO", "MARKERS_TYPE",
            "PREDICTION_TYPE", "QUALITY_LABEL", "STATUS_TYPE", "TRUTH_TYPE", "markers_name",
            "roi_columns", "status_name", "truth_name",
        ),
        "contract",
    ),
    **dict.fromkeys(("StreamMeta", "write_channels", "write_values"), "description"),
    "use_loopback_config": "loopback",
    **dict.fromkeys(("SourceNotFoundError", "StreamQuery", "StreamRefused", "describe_streams", "resolve_stream"), "query"),
    **dict.fromkeys(("RESOLVE_INTERVAL", "StreamReader"), "reader"),
    **dict.fromkeys(("Block", "SampleRing", "Snapshot"), "ring"),
}  # fmt: skip

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
