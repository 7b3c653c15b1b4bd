"""The live engine: LSL EEG in, causal preprocessing, device-resident BEIRA, sBOLD predictions out.

Layers, bottom up: :mod:`.ringbuffer` (bounded sample store), :mod:`.timing`
(gaps, de-jitter), :mod:`.inlet` (finding the stream, channel mapping),
:mod:`.acquisition` (the acquisition thread), :mod:`.window` (the model window
on the device), :mod:`.pipeline` (raw blocks to the window), :mod:`.outlet`
(prediction and status streams), :mod:`.stats` and :mod:`.engine` (the
processing thread that ties them together).
"""

from .engine import Engine, EngineError, resolve_device
from .inlet import ChannelMismatchError, SourceNotFoundError, SourceQuery, UnsupportedStreamError

__all__ = [
    "ChannelMismatchError",
    "Engine",
    "EngineError",
    "SourceNotFoundError",
    "SourceQuery",
    "UnsupportedStreamError",
    "resolve_device",
]
