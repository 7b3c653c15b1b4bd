"""The session markers as a reader keeps them: the running block, the events so far."""

from __future__ import annotations

import json
import threading
from typing import Any

from beira_rt.lsl import StreamMeta, StreamQuery, StreamReader, StreamRefused

__all__ = ["MarkerReader"]


class MarkerReader(StreamReader):
    """The session markers: the running block (with the stamp it started at), the baseline, the signal state."""

    def __init__(self, query: StreamQuery) -> None:
        super().__init__(query, role="session markers", strings=True, max_chunk=64)
        self.lock = threading.Lock()
        self.block: dict[str, Any] | None = None
        self.ended = False
        self.events: list[dict[str, Any]] = []

    def accept(self, meta: StreamMeta) -> None:
        if not meta.is_string:
            raise StreamRefused(f"the session stream {meta.name!r} carries numbers, not markers.")

    def ingest(self, data, stamps, arrival) -> None:
        for sample, stamp in zip(data, stamps, strict=True):
            try:
                event = json.loads(sample[0])
            except (json.JSONDecodeError, IndexError):
                continue
            with self.lock:
                self.events.append({**event, "stamp": float(stamp)})
                if event.get("event") == "block_start":
                    self.block = {**event, "stamp": float(stamp)}
                elif (
                    event.get("event") == "block_end"
                    and self.block
                    and event.get("index") == self.block.get("index")
                ):
                    self.block = None
                elif event.get("event") == "runner_restarted":
                    b = event.get("block")
                    self.block = {**b, "stamp": event["t0"] + b["start"]} if b else None
                elif event.get("event") == "session_end":
                    self.ended, self.block = True, None
