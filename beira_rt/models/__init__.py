"""BEIRA, the model: fused ROI heads (:class:`BEIRA`) and the separate-head form for comparison."""

from beira_rt.models.architecture import BEIRASpec
from beira_rt.models.beira import BEIRA
from beira_rt.models.checks import check_architecture, decoder_channels
from beira_rt.models.heads import (
    BEIRAHead,
    BEIRASeparateHeads,
    copy_head_,
    fused_from_heads,
    load_heads_,
    split_heads,
)

__all__ = [
    "BEIRA",
    "BEIRAHead",
    "BEIRASeparateHeads",
    "BEIRASpec",
    "check_architecture",
    "copy_head_",
    "decoder_channels",
    "fused_from_heads",
    "load_heads_",
    "split_heads",
]
