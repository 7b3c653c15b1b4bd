"""The live engine: LSL EEG in, causal preprocessing, device-resident BEIRA, sBOLD predictions out.

Where a sample goes, file by file:

1. :mod:`.source` — :class:`EegReader` (a :class:`beira_rt.lsl.StreamReader`) pulls the
   stream, keeps the model channels in model order, in microvolts, and writes them into a
   :class:`beira_rt.lsl.SampleRing`; it owns the first connection and every reconnection.
2. :mod:`.engine` — the processing thread reads the ring every hop and hands the block to
3. :mod:`.live_pipeline` — :mod:`.timing` (the stream's clock: jitter, gaps, clock steps),
   :mod:`.channels` (flat / railed channels), causal filters and resampling
   (:mod:`beira_rt.preprocessing`), normalisation, bridging of missing spans, and the model
   window on the device (:mod:`.device_window`);
4. :mod:`.engine` — one model pass (:mod:`.stem` caches the first level) read out by
   :class:`beira_rt.inference.WindowPredictor`; :mod:`.outlet` publishes it; :mod:`.stats`
   counts.
"""

from beira_rt.lsl import SourceNotFoundError, StreamQuery

from .engine import Engine, EngineError
from .source import ChannelMismatchError, UnsupportedStreamError

__all__ = [
    "ChannelMismatchError",
    "Engine",
    "EngineError",
    "SourceNotFoundError",
    "StreamQuery",
    "UnsupportedStreamError",
]
