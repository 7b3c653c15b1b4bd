"""Finding the EEG stream and mapping its channels onto the model's.

:func:`resolve_source` finds the stream by name, type and/or source id (an
error lists what was found instead); :func:`map_channels` maps the channel
labels of the stream description onto the model channels, case-insensitively
and whatever their order; :func:`open_inlet` opens a pylsl inlet with the
configured post-processing. The acquisition thread is in
:mod:`beira_rt.engine.acquisition`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pylsl

from beira_rt._logging import logger
from beira_rt.units import stream_scales

__all__ = [
    "MAX_SFREQ",
    "MIN_SFREQ",
    "ChannelMismatchError",
    "SourceNotFoundError",
    "SourceQuery",
    "StreamSpec",
    "UnsupportedStreamError",
    "channel_labels",
    "check_compatible",
    "close_inlet",
    "connect",
    "liblsl_flags",
    "map_channels",
    "resolve_source",
    "stream_spec",
]

#: Input sampling rates the engine accepts (Hz).
MIN_SFREQ = 250.0
MAX_SFREQ = 5000.0

#: liblsl post-processing flags by config name. ``dejitter`` is absent on purpose: the engine
#: de-jitters per gap-free segment itself (see beira_rt.engine.timing).
_LIBLSL_FLAGS = {
    "clocksync": pylsl.proc_clocksync,
    "monotonize": pylsl.proc_monotonize,
    "threadsafe": pylsl.proc_threadsafe,
}


class SourceNotFoundError(RuntimeError):
    """No LSL stream matches the requested name / type / source id."""


class ChannelMismatchError(RuntimeError):
    """The stream lacks model channels, or its channel set changed."""


class UnsupportedStreamError(RuntimeError):
    """The stream is not numeric, or its nominal rate is irregular or outside 250 Hz to 5 kHz."""


@dataclass(frozen=True)
class SourceQuery:
    """Which EEG stream to use; every given field must match.

    Attributes
    ----------
    name, stype, source_id : str | None
        Stream name, stream type (e.g. ``EEG``) and source id.
    """

    name: str | None = None
    stype: str | None = None
    source_id: str | None = None

    def __post_init__(self) -> None:
        if not (self.name or self.stype or self.source_id):
            raise ValueError("give the EEG stream's name, type or source id (e.g. --source NAME).")

    def matches(self, info: pylsl.StreamInfo) -> bool:
        """Whether a resolved stream fits this query."""
        return (
            (not self.name or info.name() == self.name)
            and (not self.stype or info.type() == self.stype)
            and (not self.source_id or info.source_id() == self.source_id)
        )

    def describe(self) -> str:
        parts = [
            f"{k}={v!r}"
            for k, v in (("name", self.name), ("type", self.stype), ("source_id", self.source_id))
            if v
        ]
        return ", ".join(parts)

    def predicate(self) -> str:
        """An XPath predicate for :func:`pylsl.resolve_bypred`."""
        parts = []
        for key, value in (("name", self.name), ("type", self.stype), ("source_id", self.source_id)):
            if value:
                if "'" in value:
                    raise ValueError(
                        f"the stream {key} {value!r} contains a single quote, which LSL queries cannot hold."
                    )
                parts.append(f"{key}='{value}'")
        return " and ".join(parts)


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


def _describe_found(infos: list[pylsl.StreamInfo]) -> str:
    if not infos:
        return "no LSL streams were found at all"
    rows = [
        f"{i.name()!r} (type {i.type()!r}, source id {i.source_id()!r}, {i.channel_count()} channels, "
        f"{i.nominal_srate():g} Hz)"
        for i in infos
    ]
    return "streams found: " + "; ".join(rows)


def resolve_source(query: SourceQuery, timeout: float) -> pylsl.StreamInfo:
    """Find the stream that matches ``query``.

    Parameters
    ----------
    query : SourceQuery
        Name / type / source id to match.
    timeout : float
        Seconds to wait for a matching stream.

    Returns
    -------
    pylsl.StreamInfo
        The first matching stream (a warning names the others if several match).

    Raises
    ------
    SourceNotFoundError
        When nothing matches within ``timeout``; the message lists the streams found.
    """
    found = pylsl.resolve_bypred(query.predicate(), 1, timeout)
    found = [i for i in found if query.matches(i)]
    if not found:
        everything = pylsl.resolve_streams(wait_time=min(1.0, timeout))
        raise SourceNotFoundError(
            f"no LSL stream with {query.describe()} was found within {timeout:g} s; "
            f"{_describe_found(everything)}. Check the name (--source), type (--source-type) or source id "
            "(--source-id), and that the source is running on this network."
        )
    if len(found) > 1:
        logger.warning(
            "%d streams match %s; using the first: %s", len(found), query.describe(), _describe_found(found)
        )
    return found[0]


def channel_labels(info: pylsl.StreamInfo) -> list[str]:
    """Channel labels from a stream description (``desc/channels/channel/label``).

    Raises
    ------
    ChannelMismatchError
        When the description carries no label for some channel.
    """
    labels = info.get_channel_labels()
    if labels is None or len(labels) != info.channel_count() or any(not lab for lab in labels):
        raise ChannelMismatchError(
            f"the stream {info.name()!r} has no channel labels in its description "
            "(desc/channels/channel/label) for each of its "
            f"{info.channel_count()} channels, so its channels cannot be matched to the model's; "
            "configure the source to publish channel labels."
        )
    return [str(lab) for lab in labels]


def map_channels(
    labels: list[str] | tuple[str, ...], ch_names: tuple[str, ...] | list[str], stream: str = "the stream"
) -> np.ndarray:
    """Indices of the model channels among the stream's channel labels.

    Matching is case-insensitive and ignores surrounding blanks; the order of
    the stream does not matter and extra stream channels are ignored.

    Parameters
    ----------
    labels : list of str
        Channel labels of the stream, in stream order.
    ch_names : sequence of str
        Model channels, in model order.
    stream : str
        Stream name for messages.

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


def stream_spec(info: pylsl.StreamInfo, ch_names: tuple[str, ...]) -> StreamSpec:
    """Check a stream's rate and channels against the model and describe it.

    ``info`` must carry the full description (from :meth:`pylsl.StreamInlet.info`).

    Raises
    ------
    UnsupportedStreamError, ChannelMismatchError
    """
    sfreq = float(info.nominal_srate())
    if sfreq == pylsl.IRREGULAR_RATE or not MIN_SFREQ <= sfreq <= MAX_SFREQ:
        raise UnsupportedStreamError(
            f"the stream {info.name()!r} has a nominal rate of {sfreq:g} Hz; the engine needs a regular "
            f"rate between {MIN_SFREQ:g} and {MAX_SFREQ:g} Hz."
        )
    if info.channel_format() in (pylsl.cf_string, pylsl.cf_undefined):
        raise UnsupportedStreamError(
            f"the stream {info.name()!r} does not carry numbers (channel format {info.channel_format()}); "
            "the engine needs a numeric EEG stream."
        )
    labels = channel_labels(info)
    picks = map_channels(labels, ch_names, stream=f"the stream {info.name()!r}")
    units = info.get_channel_units()
    picked_units = [units[i] if units is not None else None for i in picks]
    scale = stream_scales(picked_units, [labels[i] for i in picks], f"the stream {info.name()!r}")
    return StreamSpec(
        name=info.name(),
        stype=info.type(),
        source_id=info.source_id(),
        uid=info.uid(),
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


def connect(
    info: pylsl.StreamInfo,
    ch_names: tuple[str, ...],
    processing_flags: tuple[str, ...],
    max_buflen: float,
    timeout: float,
    first: StreamSpec | None = None,
) -> tuple[pylsl.StreamInlet, StreamSpec]:
    """Open an inlet on a resolved stream, check it against the model and subscribe.

    The inlet has no automatic recovery: the engine reconnects itself so that
    it can check the channels of a returning stream.

    Parameters
    ----------
    info : pylsl.StreamInfo
        The resolved stream.
    ch_names : tuple of str
        Model channels, in model order.
    processing_flags : tuple of str
        Configured flags (see :class:`~beira_rt.config.LiveConfig`).
    max_buflen : float
        Seconds liblsl may buffer for this inlet.
    timeout : float
        Seconds to wait for the description and for the connection.
    first : StreamSpec | None
        The stream the engine started with, when this is a reconnection: a
        different channel set or rate is refused.

    Returns
    -------
    inlet : pylsl.StreamInlet
        Subscribed inlet.
    spec : StreamSpec
        The stream and its channel picks.

    Raises
    ------
    ChannelMismatchError, UnsupportedStreamError
        The stream does not fit the model (or the first stream).
    pylsl.util.TimeoutError, pylsl.util.LostError
        The stream did not answer in time or went away.
    """
    inlet = pylsl.StreamInlet(
        info,
        max_buflen=max(1, int(np.ceil(max_buflen))),
        recover=False,
        processing_flags=liblsl_flags(processing_flags),
    )
    try:
        spec = stream_spec(inlet.info(timeout=timeout), ch_names)
        if first is not None:
            check_compatible(first, spec)
        inlet.open_stream(timeout=timeout)
    except BaseException:
        close_inlet(inlet)
        raise
    return inlet, spec


def close_inlet(inlet: pylsl.StreamInlet | None) -> None:
    """Unsubscribe an inlet (it is destroyed when the last reference goes)."""
    if inlet is not None:
        inlet.close_stream()
