"""BEIRA, the model: fused ROI heads (:class:`BEIRA`, the paper's encoder-decoder), the separate-head
form for comparison, and the read-out back end (:class:`BEIRAReadout`); :func:`build_model` builds
the one a configuration names."""

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
from beira_rt.models.readout import BEIRAReadout

__all__ = [
    "BEIRA",
    "BEIRAHead",
    "BEIRAReadout",
    "BEIRASeparateHeads",
    "BEIRASpec",
    "build_model",
    "check_architecture",
    "copy_head_",
    "decoder_channels",
    "fused_from_heads",
    "load_heads_",
    "split_heads",
]


def build_model(model_cfg, n_chans: int, n_outputs: int, sfreq: float) -> BEIRA | BEIRAReadout:
    """The model of a ``model`` configuration section (``model.backbone``), in training mode.

    Parameters
    ----------
    model_cfg : beira_rt.config.ModelConfig
    n_chans, n_outputs : int
        EEG channels and ROIs.
    sfreq : float
        Model rate in Hz.
    """
    cls = BEIRAReadout if model_cfg.backbone == "readout" else BEIRA
    return cls.from_config(model_cfg, n_chans, n_outputs, sfreq)
