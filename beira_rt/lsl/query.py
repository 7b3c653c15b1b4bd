"""Which stream to use: one query (name, type, source id) and one way to resolve it."""

from __future__ import annotations

from dataclasses import dataclass

import pylsl

from beira_rt._logging import logger

__all__ = ["SourceNotFoundError", "StreamQuery", "StreamRefused", "describe_streams", "resolve_stream"]


class SourceNotFoundError(RuntimeError):
    """No LSL stream matches the query."""


class StreamRefused(RuntimeError):
    """A stream was found but does not fit (wrong kind, channels or rate); the message says why."""


@dataclass(frozen=True)
class StreamQuery:
    """A stream to look for; every given field must match.

    Attributes
    ----------
    name, stype, source_id : str | None
        Stream name, stream type (e.g. ``EEG``) and source id.
    """

    name: str | None = None
    stype: str | None = None
    source_id: str | None = None

    def __post_init__(self) -> None:
        for key, value in (("name", self.name), ("type", self.stype), ("source id", self.source_id)):
            if value is not None and not value:
                raise ValueError(f"the stream {key} to look for must not be empty.")
        if not (self.name or self.stype or self.source_id):
            raise ValueError("give the stream's name, type or source id (e.g. --source NAME).")
        for key, value in (("name", self.name), ("type", self.stype), ("source_id", self.source_id)):
            if value and "'" in value:
                raise ValueError(
                    f"the stream {key} {value!r} contains a single quote, which LSL queries cannot hold."
                )

    def matches(self, info: pylsl.StreamInfo) -> bool:
        """Whether a resolved stream fits this query."""
        return (
            (not self.name or info.name() == self.name)
            and (not self.stype or info.type() == self.stype)
            and (not self.source_id or info.source_id() == self.source_id)
        )

    def describe(self) -> str:
        """``name 'EEG', type 'EEG'``: for messages."""
        return ", ".join(
            f"{k} {v!r}"
            for k, v in (("name", self.name), ("type", self.stype), ("source_id", self.source_id))
            if v
        )

    def predicate(self) -> str:
        """An XPath predicate for :func:`pylsl.resolve_bypred`."""
        return " and ".join(
            f"{k}='{v}'"
            for k, v in (("name", self.name), ("type", self.stype), ("source_id", self.source_id))
            if v
        )

    def find(self, timeout: float) -> list[pylsl.StreamInfo]:
        """The matching streams that answer within ``timeout`` seconds (returns at the first one)."""
        return [i for i in pylsl.resolve_bypred(self.predicate(), 1, timeout) if self.matches(i)]


def describe_streams(infos: list[pylsl.StreamInfo]) -> str:
    """The streams found, in words (for error messages)."""
    if not infos:
        return "no LSL streams were found at all"
    rows = [
        f"{i.name()!r} (type {i.type()!r}, source id {i.source_id()!r}, {i.channel_count()} channels, "
        f"{i.nominal_srate():g} Hz)"
        for i in infos
    ]
    return "streams found: " + "; ".join(rows)


def resolve_stream(query: StreamQuery, timeout: float) -> pylsl.StreamInfo:
    """Find the stream that matches ``query``.

    Returns
    -------
    pylsl.StreamInfo
        The first matching stream (a warning names the others if several match).

    Raises
    ------
    SourceNotFoundError
        When nothing matches within ``timeout``; the message lists the streams found.
    """
    found = query.find(timeout)
    if not found:
        everything = pylsl.resolve_streams(wait_time=min(1.0, timeout))
        raise SourceNotFoundError(
            f"no LSL stream with {query.describe()} was found within {timeout:g} s; "
            f"{describe_streams(everything)}. Check the name (--source), type (--source-type) or source id "
            "(--source-id), and that the source is running on this network."
        )
    if len(found) > 1:
        logger.warning(
            "%d streams match %s; using the first: %s", len(found), query.describe(), describe_streams(found)
        )
    return found[0]
