"""Stream descriptions: writing and reading channel labels, types and units and ``desc`` values.

Channel metadata sits under ``desc/channels/channel/{label,type,unit}`` (the XDF
convention that mne-lsl, LabRecorder and pyxdf read); beira-rt's own values sit
under ``desc/<node>`` as text (e.g. ``desc/beira/model_hash``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: liblsl's channel format codes (``pylsl.cf_*``), here so that writing a description needs no pylsl.
CF_FLOAT32, CF_STRING = 1, 3

__all__ = ["StreamMeta", "write_channels", "write_values"]


def write_channels(info: Any, labels: Sequence[str], types: Sequence[str], units: Sequence[str]) -> None:
    """Describe every channel of ``info`` (one label, type and unit each, in stream order)."""
    if not len(labels) == len(types) == len(units) == info.channel_count():
        raise ValueError(
            f"a stream of {info.channel_count()} channels needs as many labels, types and units; "
            f"got {len(labels)}, {len(types)} and {len(units)}."
        )
    chans = info.desc().append_child("channels")
    for label, ctype, unit in zip(labels, types, units, strict=True):
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("type", ctype)
        ch.append_child_value("unit", unit)


def write_values(info: Any, node: str, values: Mapping[str, object]) -> None:
    """Write ``values`` as text children of ``desc/<node>`` (floats with full precision)."""
    parent = info.desc().append_child(node)
    for key, value in values.items():
        text = repr(float(value)) if isinstance(value, float) else str(value)
        parent.append_child_value(key, text)


@dataclass(frozen=True)
class StreamMeta:
    """A stream as its full description tells it.

    Attributes
    ----------
    name, stype, source_id, uid, hostname : str
        LSL identity of the stream (``uid`` changes when its outlet is re-created).
    sfreq : float
        Nominal rate in Hz (0 for an irregular stream).
    labels, types, units : tuple of str
        One per channel: ``labels`` from the description (``ch1``... where none is given; see
        :attr:`labelled`), types and units (empty where none is given).
    labelled : bool
        Whether the description gave every channel a label.
    is_string : bool
        True for a string stream (markers, status).
    extra : dict
        Values under ``desc/beira`` (model hash, BOLD delay, look-ahead...), as strings.
    """

    name: str
    stype: str
    source_id: str
    uid: str
    hostname: str
    sfreq: float
    labels: tuple[str, ...]
    units: tuple[str, ...]
    is_string: bool
    extra: dict[str, str] = field(default_factory=dict)
    types: tuple[str, ...] = ()
    labelled: bool = True
    channel_format: int = CF_FLOAT32

    @property
    def n_channels(self) -> int:
        return len(self.labels)

    def describe(self) -> str:
        return (
            f"{self.name!r} (type {self.stype!r}, source id {self.source_id!r}, {self.sfreq:g} Hz, "
            f"{self.n_channels} channels)"
        )

    @classmethod
    def from_info(cls, info: Any) -> StreamMeta:
        """Read a full ``pylsl.StreamInfo`` (one returned by ``inlet.info()``)."""
        n = info.channel_count()
        labels, types, units = [""] * n, [""] * n, [""] * n
        ch = info.desc().child("channels").child("channel")
        for i in range(n):
            if ch.empty():
                break
            labels[i], types[i], units[i] = (
                ch.child_value("label"),
                ch.child_value("type"),
                ch.child_value("unit"),
            )
            ch = ch.next_sibling()
        labelled = all(labels)
        extra = {}  # every text child of desc/beira (the contract's BEIRA_DESC_KEYS and any other)
        node = info.desc().child("beira").first_child()
        while not node.empty():
            if node.child_value():
                extra[node.name()] = node.child_value()
            node = node.next_sibling()
        return cls(
            name=info.name(),
            stype=info.type(),
            source_id=info.source_id(),
            uid=info.uid(),
            hostname=info.hostname(),
            sfreq=float(info.nominal_srate()),
            labels=tuple(lab or f"ch{i + 1}" for i, lab in enumerate(labels)),
            units=tuple(units),
            is_string=info.channel_format() == CF_STRING,
            extra=extra,
            types=tuple(types),
            labelled=labelled,
            channel_format=info.channel_format(),
        )
