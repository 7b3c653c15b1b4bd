"""Replay an XDF recording (LabRecorder's format) as the LSL streams it recorded.

A neurofeedback session recorded with LabRecorder holds every stream of the session: the EEG,
the predictions, the feedback, markers, status strings. :class:`XdfPlayer` publishes each
recorded stream again under its original name, type, channel count and format, nominal rate,
source id and full ``desc`` tree (channel labels, types and units and any other node, e.g.
``desc/beira/...``), plus a first node ``desc/beira_replay`` (``source`` = the XDF file, the
``speed``, the XDF ``stream_id``) so that a consumer can tell a replay from the live stream.

Time stamps: with ``first`` the earliest recorded stamp of the replayed streams and ``t0`` the
LSL clock at the start, recorded sample ``(stamp)`` is stamped ``t0 + (stamp - first) / speed``
and pushed once ``local_clock()`` has reached that time (each due time is computed from
``t0``, never by accumulating sleeps, so nothing drifts, and nothing is pushed early). One
thread merges the samples of every stream in time order; a regular numeric stream goes out in
chunks of at most ``chunk_seconds`` of recording (pushed when their last sample is due), an
irregular or string stream sample by sample. A stream whose recorded stamps ever go back keeps
its sample order: such a sample is pushed with the later one before it, still with its own stamp.

Reading (:func:`load_xdf_recording`): ``pyxdf.load_xdf`` with ``dejitter_timestamps=False``
(dejittering would move every stamp of a regular stream onto a fitted grid: the replay keeps
the stamps as recorded) and, by default, ``synchronize_clocks=True``: the recorder's clock
offset measurements map each stream's stamps onto the recorder's clock, which is what keeps
streams from different machines aligned with each other (on one machine the offsets are a few
microseconds). ``synchronize_clocks=False`` replays the stamps as each source wrote them. A file
whose writer was killed ends inside a chunk: the complete chunks are replayed (with a warning).
The ``desc`` tree is copied from the stream header XML as written, in its order.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from beira_rt._logging import logger
from beira_rt.replay.pacing import PacedPlayer
from beira_rt.replay.recording import ReplayError
from beira_rt.replay.stats import PushLog

__all__ = [
    "XDF_SUFFIXES",
    "XdfPlayer",
    "XdfRecording",
    "XdfReplayStats",
    "XdfStream",
    "is_xdf",
    "load_xdf_recording",
]

#: File names that ``beira-replay`` reads as XDF (``.xdfz`` and ``.xdf.gz`` are gzip-compressed).
XDF_SUFFIXES = (".xdf", ".xdfz", ".xdf.gz")
#: Default length of recording in one pushed chunk of a regular numeric stream.
CHUNK_SECONDS = 0.02
#: When behind schedule, one wake-up pushes every chunk already due, up to this many.
CATCH_UP_PUSHES = 256

_MAGIC = b"XDF:"
_STREAM_HEADER = 2
_NUMERIC = {
    "float32": np.float32,
    "double64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
}


def is_xdf(path: str | Path) -> bool:
    """True when ``path`` is named like an XDF file (``.xdf``, ``.xdfz``, ``.xdf.gz``)."""
    return str(path).lower().endswith(XDF_SUFFIXES)


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class XdfStream:
    """One recorded stream: its LSL header, ``desc`` tree, samples and time stamps.

    Attributes
    ----------
    stream_id : int
        The stream's id in the XDF file.
    name, stype, source_id, channel_format : str
        As recorded (``channel_format`` one of float32, double64, int8/16/32/64, string).
    channel_count : int
    nominal_srate : float
        0 for an irregular stream.
    desc : xml.etree.ElementTree.Element
        The recorded ``<desc>`` element (empty when the header had none).
    stamps : array of shape (n_samples,)
        Recorded time stamps (seconds, recorder clock when clocks are synchronised).
    values : array of shape (n_samples, channel_count) | list of list of str
        The samples, in the recorded format (a list of string lists for a string stream).
    """

    stream_id: int
    name: str
    stype: str
    source_id: str
    channel_count: int
    nominal_srate: float
    channel_format: str
    desc: ET.Element
    stamps: np.ndarray
    values: np.ndarray | list = field(repr=False)

    @property
    def n_samples(self) -> int:
        return int(self.stamps.size)

    @property
    def is_string(self) -> bool:
        return self.channel_format == "string"

    def channels(self, key: str = "label") -> list[str]:
        """``desc/channels/channel/<key>`` of every described channel ("" where missing)."""
        node = self.desc.find("channels")
        if node is None:
            return []
        return [(ch.findtext(key) or "") for ch in node.findall("channel")]

    def describe(self) -> str:
        rate = "irregular" if self.nominal_srate == 0 else f"{self.nominal_srate:g} Hz"
        return (
            f"{self.name!r} (type {self.stype!r}, {self.channel_count} x {self.channel_format}, {rate}, "
            f"{self.n_samples} samples)"
        )


@dataclass(frozen=True)
class XdfRecording:
    """The streams of an XDF file.

    Attributes
    ----------
    source : str
        The file's absolute path.
    streams : tuple of XdfStream
        In file order.
    truncated_bytes : int
        Bytes after the last complete chunk (a killed writer), left out; 0 for a complete file.
    """

    source: str
    streams: tuple[XdfStream, ...]
    truncated_bytes: int = 0

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.streams]

    def select(self, names: list[str] | tuple[str, ...] | None) -> list[XdfStream]:
        """The streams named in ``names`` (every stream of that name), all when ``None``."""
        if names is None:
            return list(self.streams)
        wanted = [n.strip() for n in names if n.strip()]
        unknown = [n for n in wanted if n not in self.names]
        if unknown or not wanted:
            raise ReplayError(
                f"{self.source} holds no stream named {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"it holds {', '.join(map(repr, self.names)) or 'no stream'}."
            )
        return [s for s in self.streams if s.name in wanted]

    def first_stamp(self, streams: list[XdfStream] | None = None) -> float | None:
        """The earliest recorded stamp of ``streams`` (all), None when none holds a sample."""
        firsts = [float(s.stamps.min()) for s in (streams or self.streams) if s.n_samples]
        return min(firsts) if firsts else None


def _open(path: Path):
    if path.name.lower().endswith((".xdfz", ".gz")):
        return gzip.open(path, "rb")
    return open(path, "rb")  # closed by the caller


def _read_exact(f, n: int) -> bytes | None:
    """``n`` bytes, or None at the end of the data (also a truncated gzip stream)."""
    try:
        data = f.read(n)
    except EOFError:
        return None
    return data if len(data) == n else None


def _scan(f) -> tuple[int, dict[int, bytes]]:
    """Walk the chunks after the magic: (end of the last complete chunk, header XML by stream id).

    An XDF chunk is ``[NumLengthBytes: 1, 4 or 8][Length][Tag: uint16][Content]`` with
    ``Length`` counting the tag and the content.
    """
    end = len(_MAGIC)
    headers: dict[int, bytes] = {}
    while True:
        nbytes = _read_exact(f, 1)
        if nbytes is None or nbytes[0] not in (1, 4, 8):
            return end, headers
        raw = _read_exact(f, nbytes[0])
        if raw is None:
            return end, headers
        length = int.from_bytes(raw, "little")
        body = length
        if length >= 2 + 4:
            head = _read_exact(f, 6)
            if head is None:
                return end, headers
            tag, stream_id = struct.unpack("<HI", head)
            body -= 6
            if tag == _STREAM_HEADER:
                xml = _read_exact(f, body)
                if xml is None:
                    return end, headers
                headers[stream_id] = xml
                body = 0
        if body:
            if _read_exact(f, body) is None:  # seek would pass the end silently
                return end, headers
        end += 1 + nbytes[0] + length


def _desc_from_dict(tag: str, value: object) -> ET.Element:
    """An element from pyxdf's dict-of-lists form (used only without the header XML)."""
    el = ET.Element(tag)
    if isinstance(value, dict):
        for key, items in value.items():
            for item in items:
                el.append(_desc_from_dict(key, item))
    elif value is not None:
        el.text = str(value)
    return el


def _quiet_segments(record: logging.LogRecord) -> bool:
    """Leave out pyxdf's 'Segments and clock-segments differ': always so without dejittering."""
    return "clock-segments differ" not in record.getMessage()


def _first(info: dict, key: str, default: str = "") -> str:
    value = info.get(key, [default])
    value = value[0] if isinstance(value, list) and value else value
    return default if value is None else str(value)


def load_xdf_recording(path: str | Path, *, synchronize_clocks: bool = True) -> XdfRecording:
    """Read every stream of an XDF file (see the module docstring for the time stamps).

    Raises
    ------
    ReplayError
        The file does not exist, is not XDF, or cannot be read.
    """
    import pyxdf

    path = Path(path).expanduser()
    if not path.is_file():
        raise ReplayError(f"{path} does not exist (or is not a file).")
    gz = path.name.lower().endswith((".xdfz", ".gz"))
    try:
        with _open(path) as f:
            if _read_exact(f, len(_MAGIC)) != _MAGIC:
                raise ReplayError(f"{path} is not an XDF file (it does not start with 'XDF:').")
            end, headers = _scan(f)
            # a gzip file's decompressed size shows only on reading it to its end
            truncated = _rest(f) - end if gz else path.stat().st_size - end
        source: Path | io.BytesIO = path
        if truncated:
            logger.warning(
                "%s ends inside a chunk (its writer stopped without closing it?): replaying its %d "
                "complete bytes, leaving %d out",
                path,
                end,
                truncated,
            )
            with _open(path) as f:
                source = io.BytesIO(_read_exact(f, end) or b"")
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ReplayError(f"could not read {path}: {err}") from err
    pyxdf_log = logging.getLogger("pyxdf.pyxdf")
    pyxdf_log.addFilter(_quiet_segments)
    try:
        raw_streams, _header = pyxdf.load_xdf(
            source if isinstance(source, io.BytesIO) else str(source),
            synchronize_clocks=synchronize_clocks,
            dejitter_timestamps=False,
        )
    except Exception as err:  # pyxdf raises plain Exception / IOError / struct.error
        raise ReplayError(f"could not read {path} as XDF: {err}") from err
    finally:
        pyxdf_log.removeFilter(_quiet_segments)
    streams = []
    for s in raw_streams:
        info = s["info"]
        sid = int(info["stream_id"])
        fmt = _first(info, "channel_format", "float32")
        n_ch = int(_first(info, "channel_count", "1"))
        if sid in headers:
            try:
                desc = ET.fromstring(headers[sid]).find("desc")
            except ET.ParseError:
                desc = None
        else:
            desc = None
        if desc is None:
            recorded = (info.get("desc") or [None])[0]
            desc = _desc_from_dict("desc", recorded)
        stamps = np.asarray(s["time_stamps"], dtype=np.float64)
        if fmt == "string":
            values: np.ndarray | list = [list(v) for v in s["time_series"]]
        elif fmt in _NUMERIC:
            values = np.asarray(s["time_series"], dtype=_NUMERIC[fmt]).reshape(len(stamps), n_ch)
        else:
            raise ReplayError(
                f"{path}: stream {_first(info, 'name')!r} has an unknown channel format {fmt!r}."
            )
        streams.append(
            XdfStream(
                stream_id=sid,
                name=_first(info, "name"),
                stype=_first(info, "type"),
                source_id=_first(info, "source_id"),
                channel_count=n_ch,
                nominal_srate=float(_first(info, "nominal_srate", "0") or 0),
                channel_format=fmt,
                desc=desc,
                stamps=stamps,
                values=values,
            )
        )
    if not streams:
        raise ReplayError(f"{path} holds no stream.")
    return XdfRecording(str(path.resolve()), tuple(streams), truncated)


def _rest(f) -> int:
    """Read ``f`` (gzip) to its end; its decompressed size (+ 1 when the gzip stream is cut short)."""
    try:
        while f.read(2**20):
            pass
    except EOFError:  # a gzip stream cut short: its end is lost
        return f.tell() + 1
    return f.tell()


# ---------------------------------------------------------------------------- publishing


def copy_desc(src: ET.Element, dst) -> None:
    """Append the children of ``src`` (an XML element) under ``dst`` (a ``pylsl.XMLElement``)."""
    for child in src:
        if len(child):
            copy_desc(child, dst.append_child(child.tag))
        elif child.text is None:
            dst.append_child(child.tag)
        else:
            dst.append_child_value(child.tag, child.text)


def stream_info(stream: XdfStream, *, source: str, speed: float, name_suffix: str = ""):
    """A ``pylsl.StreamInfo`` re-created from the recorded header, desc copied, replay node first."""
    import pylsl

    info = pylsl.StreamInfo(
        stream.name + name_suffix,
        stream.stype,
        stream.channel_count,
        stream.nominal_srate,
        stream.channel_format,
        stream.source_id + name_suffix if stream.source_id else "",
    )
    desc = info.desc()
    copy_desc(stream.desc, desc)
    node = desc.prepend_child("beira_replay")
    for key, value in (
        ("source", source),
        ("speed", repr(float(speed))),
        ("stream_id", str(stream.stream_id)),
        ("name", stream.name),
    ):
        node.append_child_value(key, value)
    return info


@dataclass(frozen=True)
class XdfReplayStats:
    """What an XDF replay has done so far.

    Attributes
    ----------
    samples : tuple of (str, int)
        Samples pushed per stream (published name), in replay order.
    pushes : int
        Push wake-ups (each pushes every chunk already due).
    recording_seconds : float
        Recorded time covered: stamp of the last pushed sample minus the first stamp.
    elapsed : float
        LSL-clock seconds from ``t0`` to the last push.
    lag_p50, lag_p99, lag_max : float
        Seconds between the due time of a wake-up's earliest chunk and its push (never negative).
    """

    samples: tuple[tuple[str, int], ...]
    pushes: int
    recording_seconds: float
    elapsed: float
    lag_p50: float
    lag_p99: float
    lag_max: float

    @property
    def samples_pushed(self) -> int:
        return sum(n for _, n in self.samples)

    def summary(self) -> str:
        per = ", ".join(f"{name!r} {n}" for name, n in self.samples)
        return (
            f"pushed {self.samples_pushed} samples ({per}; {self.recording_seconds:.2f} s of recording) "
            f"in {self.pushes} pushes over {self.elapsed:.2f} s; push lag behind the time stamps: "
            f"median {self.lag_p50 * 1e3:.3f} ms, p99 {self.lag_p99 * 1e3:.3f} ms, max {self.lag_max * 1e3:.3f} ms"
        )


class XdfPlayer(PacedPlayer):
    """Replay the streams of an XDF file as LSL streams, with their recorded timing.

    Parameters
    ----------
    recording : str | Path | XdfRecording
        The XDF file (or one already read).
    streams : list of str | None
        Names of the streams to replay (every stream of each name); all when ``None``.
    speed : float
        Replay speed factor (> 0): stamps advance ``1 / speed`` s per recorded second; the
        nominal rates stay the recorded ones (``desc/beira_replay/speed`` says so).
    name_suffix : str
        Appended to every stream name and source id (e.g. ``-replay``, so that the replay does
        not mix with live streams of the same names); none by default.
    chunk_seconds : float
        Longest stretch of recording one pushed chunk of a regular numeric stream holds.

    Examples
    --------
    >>> with XdfPlayer("session.xdf") as player:  # doctest: +SKIP
    ...     player.start()
    ...     player.wait()
    ... print(player.stats.summary())
    """

    def __init__(
        self,
        recording: str | Path | XdfRecording,
        streams: list[str] | tuple[str, ...] | None = None,
        *,
        speed: float = 1.0,
        name_suffix: str = "",
        chunk_seconds: float = CHUNK_SECONDS,
    ) -> None:
        rec = recording if isinstance(recording, XdfRecording) else load_xdf_recording(recording)
        if not (isinstance(speed, int | float) and math.isfinite(speed) and speed > 0):
            raise ReplayError(f"speed must be a positive number, got {speed!r}.")
        if not (
            isinstance(chunk_seconds, int | float) and math.isfinite(chunk_seconds) and chunk_seconds >= 0
        ):
            raise ReplayError(f"chunk_seconds must be a number >= 0, got {chunk_seconds!r}.")
        if not isinstance(name_suffix, str):
            raise ReplayError(f"the name suffix must be a string, got {name_suffix!r}.")
        self.recording = rec
        self.selected = rec.select(None if streams is None else list(streams))
        self.speed = float(speed)
        self.name_suffix = name_suffix
        self.chunk_seconds = float(chunk_seconds)
        self.first_stamp = rec.first_stamp(self.selected)
        self.name = Path(rec.source).name
        self._outlets: list[object] = []
        self._init_pacing()
        self._log = PushLog()
        self._counts = [0] * len(self.selected)
        self._last_rel = 0.0
        self._rel: list[np.ndarray] = []
        self.t0: float | None = None

    # ------------------------------------------------------------------ set-up

    def open(self) -> XdfPlayer:
        """Create the LSL outlets (idempotent); consumers can connect before :meth:`start`."""
        import pylsl

        if self._outlets:
            return self
        if self._stopping():
            raise ReplayError("this player was stopped; create a new XdfPlayer to replay again.")
        for s in self.selected:
            info = stream_info(
                s, source=self.recording.source, speed=self.speed, name_suffix=self.name_suffix
            )
            self._outlets.append(pylsl.StreamOutlet(info))
        logger.info(
            "replaying %s at speed %g: %s",
            self.recording.source,
            self.speed,
            "; ".join(s.describe() for s in self.selected),
        )
        return self

    def wait_for_consumers(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until every replayed stream has a consumer; True when they have.

        A consumer only receives the samples pushed after it connected, so a recorder or a
        test that reads every stream should be connected to all of them before :meth:`start`.
        """
        import pylsl

        self.open()
        end = pylsl.local_clock() + timeout
        while True:
            if all(o.have_consumers() for o in self._outlets):
                return True
            left = end - pylsl.local_clock()
            if left <= 0:
                return False
            if self._stop_event.wait(min(0.02, left)) or self._stop_requested:
                return False

    @property
    def streams(self) -> list[tuple[str, str]]:
        """(name, type) of each replayed stream, as published."""
        return [(s.name + self.name_suffix, s.stype) for s in self.selected]

    @property
    def stats(self) -> XdfReplayStats:
        snap = self._log.snapshot(1.0, self.t0)
        names = [name for name, _ in self.streams]
        return XdfReplayStats(
            samples=tuple(zip(names, list(self._counts), strict=True)),
            pushes=snap.chunks_pushed,
            recording_seconds=self._last_rel * self.speed,
            elapsed=snap.elapsed,
            lag_p50=snap.lag_p50,
            lag_p99=snap.lag_p99,
            lag_max=snap.lag_max,
        )

    # ------------------------------------------------------------------ streaming

    def _prepare(self, duration: float | None) -> dict[str, np.ndarray]:
        return self._plan(duration)

    def _plan(self, duration: float | None) -> dict[str, np.ndarray]:
        """Every push of the replay, in due order: stream, sample range, due time from ``t0``.

        A push's due time is the latest relative stamp among its samples and those before it in
        the same stream (the running maximum), so that no sample is pushed before its stamp and
        every stream keeps its recorded sample order.
        """
        first = self.first_stamp
        which, lo, hi, due = [], [], [], []
        self._rel = []
        for j, s in enumerate(self.selected):
            rel = (s.stamps - first) / self.speed if s.n_samples else np.empty(0)
            n = rel.size
            if duration is not None:  # the samples before the first one at or after the cut
                beyond = s.stamps - first >= duration
                n = int(np.argmax(beyond)) if beyond.any() else rel.size
            self._rel.append(rel)
            if n == 0:
                continue
            size = 1
            if s.nominal_srate > 0 and not s.is_string:
                size = max(1, int(s.nominal_srate * self.chunk_seconds + 1e-9))
            starts = np.arange(0, n, size)
            ends = np.minimum(starts + size, n)
            latest = np.maximum.accumulate(rel[:n])
            which.append(np.full(starts.size, j))
            lo.append(starts)
            hi.append(ends)
            due.append(latest[ends - 1])
        if not due:
            return {
                "which": np.empty(0, int),
                "lo": np.empty(0, int),
                "hi": np.empty(0, int),
                "due": np.empty(0),
            }
        due_all = np.concatenate(due)
        order = np.argsort(due_all, kind="stable")
        return {
            "which": np.concatenate(which)[order],
            "lo": np.concatenate(lo)[order],
            "hi": np.concatenate(hi)[order],
            "due": due_all[order],
        }

    def _stream(self, plan: dict[str, np.ndarray]) -> None:
        import pylsl

        which, lo, hi = plan["which"], plan["lo"], plan["hi"]
        n_push = which.size
        t0 = self.t0 = pylsl.local_clock()
        due = t0 + plan["due"]  # absolute due times on the LSL clock
        i = 0
        while i < n_push:
            if not self._sleep_until(float(due[i])):
                break
            now = pylsl.local_clock()
            j = min(max(int(np.searchsorted(due, now, "right")), i + 1), i + CATCH_UP_PUSHES, n_push)
            n_samples = 0
            for k in range(i, j):
                s_idx, a, b = int(which[k]), int(lo[k]), int(hi[k])
                stream, outlet = self.selected[s_idx], self._outlets[s_idx]
                stamps = (t0 + self._rel[s_idx][a:b]).tolist()
                outlet.push_chunk(stream.values[a:b], stamps)  # each sample with its own stamp
                self._counts[s_idx] += b - a
                n_samples += b - a
                self._last_rel = max(self._last_rel, float(self._rel[s_idx][b - 1]))
            self._log.chunk(now, now - float(due[i]), n_samples, 0, 0)
            i = j
