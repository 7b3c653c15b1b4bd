"""BEIRA's architecture: one frozen description, and the layer layout built from it.

:class:`BEIRASpec` holds every hyper-parameter with the paper's defaults and is checked once
(:func:`~beira_rt.models.checks.check_architecture`). :class:`BEIRALayout` lays out the blocks
of a model from a spec, in one order; the fused model (:class:`~beira_rt.models.beira.BEIRA`)
and the separate head (:class:`~beira_rt.models.heads.BEIRAHead`) only say which layers make
up a block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from torch import nn

from beira_rt.models.checks import check_architecture, decoder_channels
from beira_rt.models.layers import UpBlock

if TYPE_CHECKING:
    from beira_rt.config import ModelConfig

__all__ = ["BEIRALayout", "BEIRASpec"]

#: Fields of :class:`BEIRASpec` that :func:`check_architecture` checks.
_CHECKED = (
    "n_chans",
    "n_outputs",
    "n_times",
    "n_filters",
    "filter_size",
    "envelope_size",
    "channels",
    "kernel_sizes",
    "strides",
    "decoder_reduce",
    "dropout",
)
#: Fields of :class:`BEIRASpec` that :meth:`BEIRASpec.from_config` does not read from a ``ModelConfig``.
_NOT_IN_CONFIG = ("n_chans", "n_outputs", "sfreq", "causal")


@dataclasses.dataclass(frozen=True, kw_only=True)
class BEIRASpec:
    """BEIRA's hyper-parameters, checked when the spec is made.

    The fields, in this order, are the ``hparams`` of a model (see :meth:`hparams`).

    Parameters
    ----------
    n_chans : int
        EEG channels of the input.
    n_outputs : int
        Outputs (ROIs); one independent head each. 1 for a separate head.
    n_times : int
        Window length in samples at ``sfreq``; a multiple of ``prod(strides)``.
    n_filters : int
        Spatial branches per head in the interpretable block (the reference's
        ``hidden_channels``).
    filter_size, envelope_size : int
        Taps of the learned band-pass and envelope filters.
    channels : sequence of int
        Encoder widths per head; ``channels[0]`` after the feature block, then one per stride.
    kernel_sizes : sequence of int
        Encoder (and mirrored decoder) kernel sizes, one per stride.
    strides : sequence of int
        Max-pooling factors of the encoder, mirrored by the decoder's up-sampling.
    decoder_reduce : int
        Decoder widths are ``channels[:-1] // decoder_reduce`` (see :func:`decoder_channels`).
    dropout : float
        Dropout after every convolutional block.
    sfreq : float
        Model sampling rate in Hz (documentation of the time axis; the layers count samples).
    causal : bool
        ``False`` (reference): 'same' padding and linear up-sampling, as the paper's code.
        ``True``: left padding, block-hold up-sampling; output sample ``t`` depends only on
        input samples ``<= t`` (see :mod:`beira_rt.models.functional`). This holds in eval
        mode; in training, batch norm normalises with statistics of the whole batch.
    envelope_log : bool
        Compress each branch's envelope with ``sign(x) log(1 + |x|)`` (``model.envelope_log``).

    Raises
    ------
    ValueError
        Naming the first bad hyper-parameter (see :func:`check_architecture`).

    Notes
    -----
    The defaults are the paper's settings, 245,057 parameters per head. The sequences are
    stored as tuples, ``dropout`` and ``sfreq`` as floats, ``causal`` and ``envelope_log`` as
    bools.
    """

    n_chans: int
    n_outputs: int = 1
    n_times: int
    n_filters: int = 16
    filter_size: int = 51
    envelope_size: int = 51
    channels: tuple[int, ...] = (128, 128, 128, 128)
    kernel_sizes: tuple[int, ...] = (5, 5, 3)
    strides: tuple[int, ...] = (8, 8, 4)
    decoder_reduce: int = 4
    dropout: float = 0.3
    sfreq: float = 100.0
    causal: bool = False
    envelope_log: bool = False

    def __post_init__(self) -> None:
        for name in ("channels", "kernel_sizes", "strides"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "dropout", float(self.dropout))
        check_architecture(**{name: getattr(self, name) for name in _CHECKED})
        object.__setattr__(self, "sfreq", float(self.sfreq))
        object.__setattr__(self, "causal", bool(self.causal))
        object.__setattr__(self, "envelope_log", bool(self.envelope_log))

    @classmethod
    def from_config(cls, model_cfg: ModelConfig, n_chans: int, n_outputs: int, sfreq: float) -> BEIRASpec:
        """The spec of the ``model`` section of a :class:`beira_rt.config.BeiraConfig`.

        Parameters
        ----------
        model_cfg : ModelConfig
            Architecture; ``variant == 'causal'`` selects the causal model.
        n_chans, n_outputs : int
            EEG channels and ROIs.
        sfreq : float
            Model sampling rate in Hz (``preprocessing.sfreq``).

        Returns
        -------
        BEIRASpec
        """
        options = {
            f.name: getattr(model_cfg, f.name)
            for f in dataclasses.fields(cls)
            if f.name not in _NOT_IN_CONFIG
        }
        return cls(
            n_chans=n_chans,
            n_outputs=n_outputs,
            sfreq=sfreq,
            causal=model_cfg.variant == "causal",
            **options,
        )

    def hparams(self, *, n_outputs: bool = True) -> dict[str, Any]:
        """The ``hparams`` dict of a model of this spec: the fields in order.

        ``envelope_log`` only when set, so that older models' hparams stay as they were.

        Parameters
        ----------
        n_outputs : bool
            Include ``n_outputs`` (the fused model); ``False`` for a separate head.

        Returns
        -------
        dict
            Keyword arguments that rebuild the model.
        """
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if not n_outputs:
            del out["n_outputs"]
        if not self.envelope_log:
            del out["envelope_log"]
        return out

    @property
    def decoder_channels(self) -> tuple[int, ...]:
        """Widths of the decoder levels per head (see :func:`decoder_channels`)."""
        return decoder_channels(self.channels, self.decoder_reduce)

    def encoder_levels(self) -> Iterator[tuple[int, int, int, int]]:
        """``(in_channels, out_channels, kernel_size, stride)`` per head of each encoder block, in order."""
        for i, stride in enumerate(self.strides):
            yield self.channels[i], self.channels[i + 1], self.kernel_sizes[i], stride

    def decoder_levels(self) -> Iterator[tuple[int, int, int, int]]:
        """``(in_channels, out_channels, kernel_size, scale)`` per head of each decoder block, deepest first.

        The decoder mirrors the encoder: block ``i`` up-samples by ``strides[i]`` with
        ``kernel_sizes[i]``, from ``decoder_channels[i + 1]`` to ``decoder_channels[i]`` channels.
        """
        dec = self.decoder_channels
        for i in reversed(range(len(self.strides))):
            yield dec[i + 1], dec[i], self.kernel_sizes[i], self.strides[i]


class BEIRALayout(nn.Module):
    """The blocks of one BEIRA model, laid out from a :class:`BEIRASpec`.

    Interpretable block (``n_filters`` per head) -> feature block (``channels[0]``, kernel 3)
    -> encoder blocks (pooling by ``strides``) -> decoder blocks (a convolutional block, then
    up-sampling, deepest first) -> output layer (1x1 convolution to one output per head). The
    blocks are built in this order, so that a seed gives the same weights to every model of a
    spec. Subclasses say which layers make up a block.

    Parameters
    ----------
    spec : BEIRASpec
        The architecture.
    per_head : bool
        A separate head: ``hparams`` leaves out ``n_outputs`` (which is 1).

    Attributes
    ----------
    spec : BEIRASpec
        The architecture.
    hparams : dict
        ``spec.hparams()``: keyword arguments that rebuild the model.
    """

    def __init__(self, spec: BEIRASpec, *, per_head: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.hparams: dict[str, Any] = spec.hparams(n_outputs=not per_head)
        self.interpretable = self._interpretable_block()
        self.feature_block = self._conv_block(spec.n_filters, spec.channels[0], 3, 1)
        self.encoder = nn.ModuleList(self._conv_block(*level) for level in spec.encoder_levels())
        self.decoder = nn.ModuleList(
            UpBlock(self._conv_block(c_in, c_out, kernel_size, 1), scale, spec.causal)
            for c_in, c_out, kernel_size, scale in spec.decoder_levels()
        )
        self.final_layer = self._output_layer(spec.decoder_channels[0])

    def _interpretable_block(self) -> nn.Module:
        """The interpretable front end of ``self.spec``."""
        raise NotImplementedError

    def _conv_block(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.Module:
        """Convolution -> layer norm -> GELU -> dropout -> max pool by ``stride``; widths per head."""
        raise NotImplementedError

    def _output_layer(self, in_channels: int) -> nn.Module:
        """The 1x1 convolution from ``in_channels`` per head to one output per head."""
        raise NotImplementedError
