"""Prediction at a look-ahead: the parity contract between the trainer and the live engine.

Let ``z`` be the preprocessed, normalised model-rate EEG, of shape (n_chans, N), since the
last reset, ``W = config.model.n_times`` and ``la = round(lookahead * sfreq)``. The
prediction for update index ``n`` (the newest model-rate sample in the window,
``n >= W - 1``) is ``model(z[:, n-W+1 : n+1])[:, W-1-la]``, de-normalised with the bundle's
``target_mean`` / ``target_std``. It is stamped with the time of model-rate sample ``n``
minus ``lookahead``, and estimates the sBOLD ``bold_delay`` seconds after that time.

- :func:`predict_at`: that definition for many ``n`` at once (the trainer, the replay
  truth, the tests of the live engine).
- :func:`predict_recording`: a whole raw recording through the bundle's preprocessing.
- :class:`WindowPredictor`: one window at a time, for the live engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from beira_rt._logging import logger
from beira_rt.bundle import ModelBundle
from beira_rt.models import BEIRA
from beira_rt.models.readout import BEIRAReadout
from beira_rt.models.shared_windows import check_ends, window_columns
from beira_rt.models.streaming import stream_columns, streams_exactly

__all__ = [
    "WindowPredictor",
    "lookahead_column",
    "predict_at",
    "predict_recording",
    "resolve_device",
    "strict_cuda_numerics",
]


def strict_cuda_numerics() -> None:
    """float32 on a GPU computed as float32 (no TF32), with cuDNN's deterministic algorithms.

    PyTorch lets cuDNN convolutions use TF32 (10-bit mantissa) and pick non-deterministic
    algorithms by default. Measured on an H200 with the paper's model before this was set: a
    bundle trained on the GPU and evaluated on the CPU gave test predictions up to 0.02 apart;
    after it they agree within 1e-4 (tests/offline/test_train_pipeline.py). Training is still
    not bit-reproducible on a GPU (two same-seed runs ~1e-3 apart in validation r: some backward
    kernels add atomically). The cost, measured on the H200: the paper model's training step
    (batch 16) 26.9 ms against 16.6 ms with TF32 (`tools/bench_model.py --torch-numerics`);
    ``training.precision: bf16`` (14.4 ms) remains the fast mixed-precision option. Sets process-wide flags (``torch.backends``); called by
    :func:`resolve_device` for CUDA.
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``'auto'`` / ``None`` -> CUDA when available, else CPU; otherwise ``torch.device(device)``.

    A CUDA device also gets :func:`strict_cuda_numerics` (no TF32, deterministic cuDNN).

    Raises
    ------
    ValueError
        If CUDA is asked for but not available.
    """
    if device is None or device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was requested but torch sees no CUDA GPU (no CUDA device is available); "
                "use 'cpu' or 'auto'."
            )
    if dev.type == "cuda":
        strict_cuda_numerics()
    return dev


def lookahead_column(n_times: int, sfreq: float, lookahead: float) -> int:
    """Output column of a look-ahead: ``n_times - 1 - round(lookahead * sfreq)``.

    Parameters
    ----------
    n_times : int
        Window length in samples.
    sfreq : float
        Model rate in Hz.
    lookahead : float
        Seconds (``>= 0``, shorter than the window).

    Raises
    ------
    ValueError
        If the look-ahead is negative or does not fit in the window.
    """
    la = round(float(lookahead) * sfreq)
    if lookahead < 0 or la >= n_times:
        raise ValueError(
            f"look-ahead {lookahead} s must be >= 0 and shorter than the window ({n_times / sfreq:g} s at "
            f"{sfreq:g} Hz)."
        )
    return n_times - 1 - la


def _model_and_stats(
    source: ModelBundle | BEIRA, device: str | torch.device | None
) -> tuple[BEIRA, np.ndarray | None, np.ndarray | None]:
    if isinstance(source, ModelBundle):
        model = source.build_model("cpu" if device is None else resolve_device(device))
        return model, source.target_mean, source.target_std
    if isinstance(source, (BEIRA, BEIRAReadout)):
        model = source
        if device is not None:
            model = model.to(resolve_device(device))
        if model.training:
            raise ValueError("predict_at needs the model in eval mode; call model.eval() first.")
        return model, None, None
    raise TypeError(f"predict_at needs a ModelBundle or a BEIRA model, got {type(source).__name__}.")


@torch.inference_mode()
def _readout_columns(
    model: BEIRAReadout, z: torch.Tensor, ends: np.ndarray, column: int, batch_size: int
) -> torch.Tensor:
    """Column ``column`` of the windows ending at ``ends`` for the read-out back end: one pass
    over the signal when the column holds its receptive field (the same values), else each window."""
    W = model.n_times
    check_ends(ends, z.shape[1], W)
    if not ends.size:
        return torch.zeros((0, model.n_outputs), device=z.device)
    if column >= model.receptive_field - 1:
        at = ends - (W - 1 - column)
        lo, hi = int(at.min()), int(at.max()) + 1
        return model.one_pass(z, lo, hi)[:, torch.from_numpy(at - lo).to(z.device)].T
    out = []
    for i in range(0, ends.size, batch_size):
        idx = torch.from_numpy(ends[i : i + batch_size] - W + 1).to(z.device)
        windows = z[:, idx[:, None] + torch.arange(W, device=z.device)].permute(1, 0, 2)
        out.append(model(windows)[:, :, column])
    return torch.cat(out)


def predict_at(
    source: ModelBundle | BEIRA,
    z: np.ndarray,
    ends: Sequence[int] | np.ndarray,
    lookahead: float,
    device: str | torch.device | None = None,
    batch_size: int = 16,
    *,
    exact_windows: bool = False,
) -> np.ndarray:
    """Predictions at a look-ahead for the windows ending at ``ends`` (the parity contract).

    Parameters
    ----------
    source : ModelBundle or BEIRA
        A bundle (predictions de-normalised with its target statistics) or a model in
        eval mode (raw model outputs, for the trainer's own evaluation).
    z : array of shape (n_chans, N)
        Preprocessed, normalised EEG at the model rate.
    ends : sequence of int, length n_updates
        Update indices ``n`` (newest sample of each window), ``W - 1 <= n < N``.
    lookahead : float
        Seconds; output column ``W - 1 - round(lookahead * sfreq)``.
    device : str | torch.device | None
        Where the model runs (``'auto'``: CUDA if available). ``None``: CPU for a bundle,
        the model's own device for a model.
    batch_size : int
        Windows per model call.
    exact_windows : bool
        ``True``: run every window through the whole model (the definition). ``False``
        (default): a causal model whose read-out fits the window is streamed over ``z`` once
        (:func:`beira_rt.models.streaming.stream_columns`, each sample computed once); other
        models share the first encoder levels between overlapping windows
        (:mod:`beira_rt.models.shared_windows`). Both give the same numbers (to float32
        rounding) many times faster.

    Returns
    -------
    array of shape (n_updates, n_rois), float64
    """
    model, mean, std = _model_and_stats(source, device)
    column = lookahead_column(model.n_times, model.sfreq, lookahead)
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[0] != model.n_chans:
        raise ValueError(f"z must have shape (n_chans={model.n_chans}, n_samples), got {z.shape}.")
    if not np.all(np.isfinite(z)):
        raise ValueError("z contains NaN or infinite values; predict only over finite stretches of EEG.")
    dev = next(model.parameters()).device
    zt = torch.as_tensor(z, dtype=torch.float32).to(dev)
    ends_arr = np.asarray(ends, dtype=np.int64) if len(ends) else np.zeros(0, dtype=np.int64)
    if isinstance(model, BEIRAReadout):
        out = _readout_columns(model, zt, ends_arr, column, batch_size)
    elif not exact_windows and streams_exactly(model, model.n_times - 1 - column):
        check_ends(ends_arr, z.shape[1], model.n_times)
        out = stream_columns(model, zt, torch.from_numpy(ends_arr), model.n_times - 1 - column)
    else:
        share = False if exact_windows else None
        out = window_columns(model, zt, ends_arr, column, batch_size=batch_size, share=share)
    pred = out.cpu().numpy().astype(np.float64)
    if mean is not None and std is not None:
        pred = pred * std + mean
    return pred


def predict_recording(
    bundle: ModelBundle,
    eeg: np.ndarray,
    sfreq_in: float,
    lookahead: float | None = None,
    hop: int = 10,
    *,
    device: str | torch.device | None = None,
    batch_size: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Predict over a whole raw recording, every ``hop`` model-rate samples.

    The recording goes through the bundle's causal preprocessing
    (:func:`beira_rt.preprocessing.preprocess_recording`) and normalisation, then
    :func:`predict_at` at ``ends = W-1, W-1+hop, ...``.

    Parameters
    ----------
    bundle : ModelBundle
        The model.
    eeg : array of shape (n_chans, n_samples)
        Raw EEG at ``sfreq_in``, channels in ``bundle.ch_names`` order, in the unit of the
        training recording.
    sfreq_in : float
        Rate of ``eeg`` in Hz.
    lookahead : float | None
        Seconds; default the bundle's.
    hop : int
        Model-rate samples between updates.
    device, batch_size
        As :func:`predict_at`.

    Returns
    -------
    ends : array of int, shape (n_updates,)
        Update indices ``n`` (model-rate samples from the start of the recording; sample
        ``n`` is at ``n / sfreq`` seconds; the prediction is stamped ``n / sfreq - lookahead``).
    preds : array of shape (n_updates, n_rois), float64
    """
    from beira_rt.preprocessing import preprocess_recording

    if isinstance(hop, bool) or not isinstance(hop, int | np.integer) or hop < 1:
        raise ValueError(f"hop must be a positive number of model-rate samples, got {hop!r}.")
    eeg = np.asarray(eeg)
    if eeg.ndim != 2 or eeg.shape[0] != bundle.n_chans:
        raise ValueError(
            f"eeg must have shape (n_chans={bundle.n_chans}, n_samples) with channels {list(bundle.ch_names)}; "
            f"got shape {eeg.shape}."
        )
    la = bundle.lookahead if lookahead is None else lookahead
    z = bundle.normalizer.apply(preprocess_recording(eeg, sfreq_in, bundle.config.preprocessing))
    n_times = bundle.config.model.n_times
    ends = np.arange(n_times - 1, z.shape[1], int(hop), dtype=np.int64)
    if not len(ends):
        logger.warning(
            "the recording gives %d model-rate samples, fewer than one window (%d); no predictions",
            z.shape[1],
            n_times,
        )
    return ends, predict_at(bundle, z, ends, la, device=device, batch_size=batch_size)


class WindowPredictor:
    """Repeated single-window prediction for the live engine.

    Holds the model on its device in eval mode and an input buffer there; every call runs
    under ``torch.inference_mode``.

    Parameters
    ----------
    bundle : ModelBundle
        The model.
    device : str | torch.device | None
        ``'auto'``/``None``: CUDA if available, else CPU.
    lookahead : float | None
        Default look-ahead in seconds (default: the bundle's).
    warmup : bool
        Run one window at construction so the first live update is not slowed by one-off
        kernel set-up.
    """

    def __init__(
        self,
        bundle: ModelBundle,
        device: str | torch.device | None = None,
        lookahead: float | None = None,
        *,
        warmup: bool = True,
    ) -> None:
        self.bundle = bundle
        self.device = resolve_device(device)
        self.model = bundle.build_model(self.device)
        self.n_chans, self.n_times = bundle.n_chans, bundle.config.model.n_times
        self.column = self.column_for(bundle.lookahead if lookahead is None else lookahead)
        self.input = torch.zeros(1, self.n_chans, self.n_times, device=self.device)
        self._mean = bundle.target_mean
        self._std = bundle.target_std
        if warmup:
            self.predict(self.input)

    def column_for(self, lookahead: float) -> int:
        """Output column of a look-ahead in seconds."""
        return lookahead_column(self.n_times, self.bundle.sfreq, lookahead)

    @torch.inference_mode()
    def predict(self, window: torch.Tensor, column: int | None = None) -> np.ndarray:
        """sBOLD of every ROI at one output column of one window.

        Parameters
        ----------
        window : torch.Tensor
            Shape (n_chans, n_times) or (1, n_chans, n_times), normalised EEG, on
            :attr:`device`.
        column : int | None
            Output column (default: the look-ahead given at construction).

        Returns
        -------
        array of shape (n_rois,), float64
            De-normalised predictions.
        """
        if window.dim() == 2:
            window = window.unsqueeze(0)
        if tuple(window.shape) != (1, self.n_chans, self.n_times):
            raise ValueError(
                f"a window must have shape ({self.n_chans}, {self.n_times}) or (1, {self.n_chans}, "
                f"{self.n_times}); got {tuple(window.shape)}."
            )
        return self.read_out(self.model(window)[0], column)

    def read_out(self, output: torch.Tensor, column: int | None = None) -> np.ndarray:
        """The one read-out rule: column ``column`` of a model output (n_rois, n_times), de-normalised.

        The live engine calls it on outputs it computed itself (e.g. through its stem cache).
        """
        col = self.column if column is None else column
        return output[:, col].to("cpu", torch.float64).numpy() * self._std + self._mean

    def predict_numpy(self, window: np.ndarray, column: int | None = None) -> np.ndarray:
        """As :meth:`predict` for a NumPy window of shape (n_chans, n_times), copied into :attr:`input`."""
        self.input[0].copy_(torch.as_tensor(window, dtype=torch.float32))
        return self.predict(self.input, column)
