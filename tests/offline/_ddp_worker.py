"""A tiny BEIRA trained by :func:`offline.train.train_model` on deterministic synthetic arrays.

Run by tests/offline/test_distributed.py in the test's process, as a separate process (killed
after a checkpoint), and under ``torchrun`` (2 gloo processes)::

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/offline/_ddp_worker.py OUT EPOCHS [legacy-ddp]

``legacy-ddp`` takes the DDP path of torch before 2.13 (``broadcast_buffers``; see ``offline.train._ddp``).

Rank 0 writes ``OUT/final.pt`` (the trained model's state dict) and ``OUT/history.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from beira_rt.config import BeiraConfig, load_config, override
from beira_rt.models import BEIRA
from offline.dataset import PreparedData, prepare_data
from offline.distributed import process_group
from offline.train import train_model

REPO = Path(__file__).resolve().parents[2]
SFREQ_IN = 200.0


def config(epochs: int) -> BeiraConfig:
    """fast_test.yaml without dropout or time budget: the run is a function of the seed alone."""
    return override(load_config(REPO / "configs" / "fast_test.yaml"), {
        "model.dropout": 0.0, "training.max_minutes": None, "training.checkpoint": "mean",
        "training.max_epochs": epochs, "training.steps_per_epoch": 3, "training.patience": 10,
        "training.batch_size": 8, "preprocessing.h_freq": 45.0, "preprocessing.notch_freq": None,
    })  # fmt: skip


def make_data(cfg: BeiraConfig, seed: int = 5, gain: float = 1.0) -> PreparedData:
    """70 s, 4 channels; ROI 0 follows the 10 Hz envelope of channel 1, ROI 1 is a random walk.

    ``seed`` draws another subject; ``gain`` scales its EEG (another amplitude).
    """
    rng = np.random.default_rng(seed)
    n = int(70 * SFREQ_IN)
    t = np.arange(n) / SFREQ_IN
    env = np.exp(np.convolve(rng.standard_normal(n), np.hanning(800), mode="same") / 8.0)
    eeg = rng.standard_normal((4, n))
    eeg[1] += env * np.sin(2 * np.pi * 10 * t)
    t_model = np.arange(7000) / 100.0
    bold = np.stack([np.interp(t_model - 6.0, t, np.log(env)), rng.standard_normal(7000).cumsum() * 0.1])
    return prepare_data(gain * eeg, SFREQ_IN, bold, cfg, [f"c{i}" for i in range(4)], ["alpha", "walk"])


def train(out: Path, epochs: int, resume: bool = False) -> dict[str, torch.Tensor]:
    """Train on one CPU thread; rank 0 writes ``final.pt`` and ``history.json``; returns the weights."""
    torch.set_num_threads(1)
    with process_group("cpu") as ctx:
        cfg = config(epochs)
        data = make_data(cfg)
        torch.manual_seed(cfg.training.seed)
        model = BEIRA.from_config(cfg.model, data.n_chans, data.n_rois, data.sfreq)
        out.mkdir(parents=True, exist_ok=True)
        result = train_model(model, data, cfg, device=torch.device("cpu"), progress=False,
                             checkpoint_path=out / "checkpoint.pt", resume=resume)  # fmt: skip
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if ctx.is_main:
            torch.save(state, out / "final.pt")
            (out / "history.json").write_text(json.dumps(result.history))
    return state


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[3] == "legacy-ddp":  # the DDP path of torch before 2.13
        import offline.train

        offline.train._HAS_FORWARD_SYNC_BUFFERS = False
    train(Path(sys.argv[1]), int(sys.argv[2]))
