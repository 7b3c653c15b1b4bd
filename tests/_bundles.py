"""Small, real model bundles for tests (a few milliseconds per window)."""

from __future__ import annotations

import numpy as np
import torch

from beira_rt.bundle import ModelBundle
from beira_rt.config import from_dict
from beira_rt.models import BEIRA

#: A small BEIRA with every block: window 128 samples (1.28 s at 100 Hz), total stride 16.
SMALL_MODEL = {
    "backbone": "unet",
    "n_times": 128,
    "n_filters": 3,
    "filter_size": 7,
    "envelope_size": 5,
    "channels": [8, 8, 12, 16],
    "kernel_sizes": [3, 5, 3],
    "strides": [2, 4, 2],
    "decoder_reduce": 2,
    "dropout": 0.3,
    # the settings these tests were written for (before the CPU default of issue 14)
    "bold_delay": 6.0,
    "filter_init": "random",
    "envelope_log": False,
}
CH_NAMES = ("Fp1", "Fz", "Cz", "Pz", "O1")
ROIS = ("Left Caudate", "Right Caudate", "Left Putamen")
SFREQ_IN = 250.0


def randomise_statistics(model: torch.nn.Module, seed: int = 0) -> None:
    """Give batch norms non-trivial running statistics and layer norms non-trivial affines,
    so that equality tests also cover them (fresh models have mean 0, var 1, weight 1, bias 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=gen))
            elif name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape, generator=gen) + 0.5)
        for name, param in model.named_parameters():
            if ".norm." in name:
                param.copy_(torch.randn(param.shape, generator=gen))


def make_small_bundle(
    seed: int = 0, variant: str = "reference", lookahead: float = 0.2, n_times: int = SMALL_MODEL["n_times"]
) -> ModelBundle:
    """A bundle of a randomly initialised small model (window ``n_times``) with non-trivial statistics.

    Batch-norm running statistics and layer-norm affines are randomised so that they
    matter; channel and target statistics are arbitrary but fixed by ``seed``.
    """
    config = from_dict(
        {
            "data": {"rois": list(ROIS), "eeg_channels": list(CH_NAMES)},
            "model": {**SMALL_MODEL, "variant": variant, "n_times": n_times},
        }
    )
    torch.manual_seed(seed)
    model = BEIRA.from_config(config.model, len(CH_NAMES), len(ROIS), config.preprocessing.sfreq)
    randomise_statistics(model, seed)
    rng = np.random.default_rng(seed)
    return ModelBundle(
        config=config,
        ch_names=CH_NAMES,
        sfreq_in=SFREQ_IN,
        rois=ROIS,
        norm_mean=rng.normal(0.0, 1.0, len(CH_NAMES)),
        norm_std=rng.uniform(5.0, 20.0, len(CH_NAMES)),
        target_mean=rng.normal(0.0, 1.0, len(ROIS)),
        target_std=rng.uniform(0.5, 2.0, len(ROIS)),
        lookahead=lookahead,
        metrics={"r_mean": 0.42, "r": {"Left Caudate": 0.5}, "epochs": 3},
        state_dict={k: v.clone() for k, v in model.state_dict().items()},
    )
