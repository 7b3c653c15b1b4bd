"""The engine's EEG source: which stream, how its channels map onto the model's, and its reader.

:class:`EegReader` is the :class:`~beira_rt.lsl.StreamReader` of the engine: it
accepts a stream only when its rate is regular and in range, it carries every
model channel (by label, case-insensitively, in any order, extra channels
ignored) and, after a loss, when the returning stream has the same channel set
and rate as the first one. It keeps the model channels in model order,
converts them to microvolts (:mod:`beira_rt.units`) and writes them with their
timestamps and arrival times into its :class:`~beira_rt.lsl.SampleRing`; a
reconnection marks a break there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pylsl

from beira_rt.lsl import SampleRing, StreamMeta, StreamQuery, StreamReader, StreamRefused
from beira_rt.units import stream_scales

__all__ = [
    "MAX_SFREQ",
    "MIN_SFREQ",
    "PULL_TIMEOUT",
    "ChannelMismatchError",
    "EegReader",
    "StreamSpec",
    "UnsupportedStreamError",
    "check_compatible",
    "liblsl_flags",
    "map_channels",
    "stream_spec",
]

#: Input sampling rates the engine accepts (Hz).
MIN_SFREQ = 250.0
MAX_SFREQ = 5000.0
#: Longest a pull blocks when no sample arrives (s): a stop request is seen this quickly.
PULL_TIMEOUT = 0.01
#: Seconds without samples after which the source is ``stalled`` (still connected).
STALL_SECONDS = 2.0

#: liblsl post-processing flags by config name. ``dejitter`` is absent on purpose: the engine
#: de-jitters itself (see beira_rt.engine.timing).
_LIBLSL_FLAGS = {
    "clocksync": pylsl.proc_clocksync,
    "monotonize": pylsl.proc_monotonize,
    "threadsafe": pylsl.proc_threadsafe,
}
#: The engine's words for the reader's states (docs/CONTRACTS.md, status ``state``).
_ENGINE_STATE = {"lost": "waiting"}


@dataclass(frozen=True)
class StreamSpec:
    """What the engine needs to know about the EEG stream it reads.

    Attributes
    ----------
    name, stype, source_id, uid : str
        Identity of the stream (``uid`` changes when its outlet is re-created).
    sfreq : float
        Nominal sampling rate in Hz.
    labels : tuple of str
        Channel labels in stream order.
    picks : ndarray of int, shape (n_model_channels,)
        Stream channel index of each model channel, in model order.
    scale : ndarray of float32, shape (n_model_channels,)
        Factor from each picked channel's unit (``desc/channels/channel/unit``) to
        microvolts, the unit the model was trained in (:mod:`beira_rt.units`).
    """

    name: str
    stype: str
    source_id: str
    uid: str
    sfreq: float
    labels: tuple[str, ...]
    picks: np.ndarray
    scale: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.scale is None:
            object.__setattr__(self, "scale", np.ones(len(self.picks), dtype=np.float32))

    @property
    def needs_scaling(self) -> bool:
        """Whether some picked channel is not already in microvolts."""
        return bool(np.any(self.scale != 1.0))

    def describe(self) -> str:
        return f"{self.name!r} (type {self.stype!r}, source id {self.source_id!r}, {self.sfreq:g} Hz, {len(self.labels)} channels)"


class ChannelMismatchError(StreamRefused):
    """The stream lacks model channels, or its channel set changed."""


class UnsupportedStreamError(StreamRefused):
    """The stream is not numeric, or its nominal rate is irregular or outside 250 Hz to 5 kHz."""


def map_channels(
    labels: list[str] | tuple[str, ...], ch_names: tuple[str, ...] | list[str], stream: str = "the stream"
) -> np.ndarray:
    """Indices of the model channels among the stream's channel labels.

    Matching is case-insensitive and ignores surrounding blanks; the order of
    the stream does not matter and extra stream channels are ignored.

    Returns
    -------
    ndarray of int, shape (len(ch_names),)
        ``labels[picks[i]]`` is model channel ``ch_names[i]``.

    Raises
    ------
    ChannelMismatchError
        When a model channel is missing (all missing names are listed) or a
        label occurs twice.
    """
    keys = [lab.strip().casefold() for lab in labels]
    seen: dict[str, int] = {}
    dupes = set()
    for i, key in enumerate(keys):
        if key in seen:
            dupes.add(labels[i])
        seen.setdefault(key, i)
    missing = [ch for ch in ch_names if ch.strip().casefold() not in seen]
    if missing:
        raise ChannelMismatchError(
            f"{stream} lacks {len(missing)} of the model's {len(ch_names)} channels: {', '.join(missing)} "
            f"(stream channels: {', '.join(labels)}). Use a bundle trained on these channels, or a stream "
            "that carries them."
        )
    picks = np.array([seen[ch.strip().casefold()] for ch in ch_names], dtype=np.intp)
    clash = sorted(d for d in dupes if d.strip().casefold() in {c.strip().casefold() for c in ch_names})
    if clash:
        raise ChannelMismatchError(
            f"{stream} has more than one channel labelled {', '.join(clash)}, so the model channel cannot be "
            "chosen; give every channel a distinct label."
        )
    return picks


def stream_spec(meta: StreamMeta, ch_names: tuple[str, ...]) -> StreamSpec:
    """Check a stream's rate and channels against the model and describe it.

    Raises
    ------
    UnsupportedStreamError, ChannelMismatchError
    """
    sfreq = meta.sfreq
    if sfreq == pylsl.IRREGULAR_RATE or not MIN_SFREQ <= sfreq <= MAX_SFREQ:
        raise UnsupportedStreamError(
            f"the stream {meta.name!r} has a nominal rate of {sfreq:g} Hz; the engine needs a regular "
            f"rate between {MIN_SFREQ:g} and {MAX_SFREQ:g} Hz."
        )
    if meta.channel_format in (pylsl.cf_string, pylsl.cf_undefined):
        raise UnsupportedStreamError(
            f"the stream {meta.name!r} does not carry numbers (channel format {meta.channel_format}); "
            "the engine needs a numeric EEG stream."
        )
    if not meta.labelled:
        raise ChannelMismatchError(
            f"the stream {meta.name!r} has no channel labels in its description "
            "(desc/channels/channel/label) for each of its "
            f"{meta.n_channels} channels, so its channels cannot be matched to the model's; "
            "configure the source to publish channel labels."
        )
    labels = list(meta.labels)
    picks = map_channels(labels, ch_names, stream=f"the stream {meta.name!r}")
    picked_units = [meta.units[i] or None for i in picks]
    scale = stream_scales(picked_units, [labels[i] for i in picks], f"the stream {meta.name!r}")
    return StreamSpec(
        name=meta.name,
        stype=meta.stype,
        source_id=meta.source_id,
        uid=meta.uid,
        sfreq=sfreq,
        labels=tuple(labels),
        picks=picks,
        scale=np.asarray(scale, dtype=np.float32),
    )


def check_compatible(first: StreamSpec, returning: StreamSpec) -> None:
    """Refuse a returning stream whose channel set or rate differs from the first one.

    Raises
    ------
    ChannelMismatchError
        When the channel labels (as a set, case-insensitive) or the rate differ.
    """
    old = sorted(lab.strip().casefold() for lab in first.labels)
    new = sorted(lab.strip().casefold() for lab in returning.labels)
    if old != new:
        gone = sorted(set(old) - set(new))
        added = sorted(set(new) - set(old))
        raise ChannelMismatchError(
            f"the returning stream {returning.name!r} (source id {returning.source_id!r}) has a different "
            f"channel set than the one the engine started with (missing: {', '.join(gone) or 'none'}; "
            f"new: {', '.join(added) or 'none'}); it is refused and the engine keeps waiting for the "
            "original stream. Restart the engine to use the new one."
        )
    if returning.sfreq != first.sfreq:
        raise ChannelMismatchError(
            f"the returning stream {returning.name!r} runs at {returning.sfreq:g} Hz, not the "
            f"{first.sfreq:g} Hz the engine started with; it is refused and the engine keeps waiting. "
            "Restart the engine to use it."
        )


def liblsl_flags(processing_flags: tuple[str, ...]) -> int:
    """The liblsl post-processing bit mask for the configured flags (``dejitter`` excluded)."""
    mask = 0
    for flag in processing_flags:
        mask |= _LIBLSL_FLAGS.get(flag, 0)
    return mask


class EegReader(StreamReader):
    """The engine's EEG reader: model channels, in microvolts, into a ring of ``buffer_seconds``.

    Parameters
    ----------
    query : StreamQuery
        Which EEG stream. A returning stream must have the first one's name and
        (if it had one) source id, whatever the query.
    ch_names : tuple of str
        Model channels, in model order.
    processing_flags : tuple of str
        Configured inlet flags (see :class:`~beira_rt.config.LiveConfig`).
    buffer_seconds : float
        Seconds liblsl and the ring may hold.
    on_error : callable | None
        Called with an unexpected exception of the reader thread.
    """

    def __init__(
        self,
        query: StreamQuery,
        ch_names: tuple[str, ...],
        processing_flags: tuple[str, ...],
        buffer_seconds: float,
        on_error=None,
    ) -> None:
        super().__init__(
            query,
            role="EEG",
            processing_flags=liblsl_flags(processing_flags),
            max_buflen=buffer_seconds,
            stale_seconds=STALL_SECONDS,
            pull_timeout=PULL_TIMEOUT,
            poll_interval=0.0,
        )
        self.ch_names = tuple(ch_names)
        self.buffer_seconds = float(buffer_seconds)
        self._on_error = on_error
        self.spec: StreamSpec | None = None  #: the stream read now
        self.first_spec: StreamSpec | None = None  #: the stream the engine started with
        self.ring: SampleRing | None = None  #: where the samples go (made at the first connection)
        self._pending: StreamSpec | None = None

    # engine words for the counters
    @property
    def samples_received(self) -> int:
        return self.n_received

    @property
    def reconnects(self) -> int:
        return max(0, self.n_connects - 1)

    @property
    def losses(self) -> int:
        return self.n_lost

    @property
    def refused(self) -> int:
        return self.n_refused

    @property
    def engine_state(self) -> str:
        """The reader's state in the engine's status words (``waiting`` after a loss)."""
        state = self.state
        return _ENGINE_STATE.get(state, state)

    def accept(self, meta: StreamMeta) -> None:
        spec = stream_spec(meta, self.ch_names)
        if self.first_spec is not None:
            check_compatible(self.first_spec, spec)
        self._pending = spec

    def on_connect(self, meta: StreamMeta, first: bool) -> None:
        spec, self._pending = self._pending, None
        assert spec is not None
        if first:
            self.first_spec = spec
            self.ring = SampleRing(max(1, math.ceil(self.buffer_seconds * spec.sfreq)), len(self.ch_names))
            # a returning stream must be the same source: same name and (if it had one) source id
            self.query = StreamQuery(name=spec.name, source_id=spec.source_id or None)
        else:
            self.ring.mark_break()
        self.spec = spec
        self.max_chunk = max(64, int(spec.sfreq))  # at most 1 s per pull

    def ingest(self, data, stamps, arrival) -> None:
        picked = data[:, self.spec.picks]
        if self.spec.needs_scaling:  # e.g. a stream in volts: the model works in microvolts
            picked = picked * self.spec.scale
        self.ring.write(picked, stamps, arrival)

    def on_error(self, err: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(err)
