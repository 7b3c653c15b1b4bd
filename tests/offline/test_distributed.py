"""Distributed training (offline/distributed.py) and resuming from a checkpoint (offline/train.py).

Both drive :func:`offline.train.train_model` through tests/offline/_ddp_worker.py: real
processes (``torchrun`` with 2 gloo processes on this CPU; a process SIGKILLed after a
checkpoint), real checkpoint files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from beira_rt.models import split_heads
from offline.train import KILL_AFTER_CHECKPOINT_ENV

from . import _ddp_worker as worker

#: The bias of each head's spatial unmixing feeds an affine-free batch norm: its true gradient is 0,
#: its computed one is rounding noise that AdamW scales to steps of about lr, differently in any two
#: runs; it changes no training-mode output. It and the running mean that follows it are compared
#: through the outputs instead.
PRE_NORM = ("unmix.bias", "bn_unmix.running_mean")
#: Weights and buffers after the last step: 1 process with the global batch of 8 and 2 processes
#: with 4 windows each agree to float32 rounding (measured: at most 6e-7 after 6 steps).
PARAM_ATOL = 1e-5
#: Training-mode outputs (batch statistics, in which the pre-norm bias cancels) on 8 windows.
OUTPUT_ATOL = 1e-4


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(worker.REPO), "OMP_NUM_THREADS": "1", **extra}


def _heads(state=None):
    """The trained module of the CPU layout (separate heads), with ``state`` loaded."""
    cfg = worker.config(1)
    torch.manual_seed(cfg.training.seed)
    net = split_heads(worker.BEIRA.from_config(cfg.model, 4, 2, 100.0))
    if state is not None:
        net.load_state_dict(state)
    return net


def _train_mode_outputs(state):
    data = worker.make_data(worker.config(1))
    net = _heads(state).train()  # batch statistics; dropout is 0 in this config
    n = 8 * worker.config(1).model.n_times
    x = torch.from_numpy(data.eeg[:, :n].copy()).view(data.n_chans, 8, -1).transpose(0, 1).contiguous()
    with torch.no_grad():
        return net(x)


def _last_weights(folder):
    return torch.load(folder / "checkpoint.pt", weights_only=True)["net"]


@pytest.mark.parametrize("ddp_path", ["current", "legacy-ddp"])
def test_two_gloo_processes_equal_one_process_with_the_global_batch(tmp_path, ddp_path):
    """Also through the DDP arguments of torch before 2.13 (``broadcast_buffers``, buffers sent by
    hand; ``offline.train._ddp``), here on the pinned torch."""
    epochs = 2  # 6 steps
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(worker.REPO / "tests" / "offline" / "_ddp_worker.py"), str(tmp_path / "two"), str(epochs), ddp_path],
        env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    worker.train(tmp_path / "one", epochs)
    one, two = _last_weights(tmp_path / "one"), _last_weights(tmp_path / "two")
    start = _heads().state_dict()
    compared = [k for k in one if not k.endswith(PRE_NORM)]
    moved = max((one[k].float() - start[k].float()).abs().max().item() for k in compared)
    assert moved > 100 * PARAM_ATOL  # the steps changed the weights far beyond the tolerance
    for key in compared:
        torch.testing.assert_close(two[key], one[key], atol=PARAM_ATOL, rtol=0, msg=key)
    assert two["heads.0.interpretable.bn_unmix.num_batches_tracked"].item() == 2 * 3
    torch.testing.assert_close(_train_mode_outputs(two), _train_mode_outputs(one), atol=OUTPUT_ATOL, rtol=0)
    # rank 0 validated each epoch and wrote the history
    history = json.loads((tmp_path / "two" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


def test_a_run_killed_after_a_checkpoint_resumes_to_the_same_result(tmp_path):
    epochs = 3
    killed = subprocess.run(
        [sys.executable, str(worker.REPO / "tests" / "offline" / "_ddp_worker.py"), str(tmp_path / "run"),
         str(epochs)],
        env=_env(**{KILL_AFTER_CHECKPOINT_ENV: "2"}), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "run" / "final.pt").exists()  # it died mid-way ...
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert saved["loop"]["epoch"] == 2 and saved["result"]["n_steps"] == 6  # ... after epoch 2's checkpoint
    resumed = worker.train(tmp_path / "run", epochs, resume=True)
    straight = worker.train(tmp_path / "straight", epochs)
    for key in straight:  # the kept (best) model, and the last weights, are the same to the bit
        torch.testing.assert_close(resumed[key], straight[key], atol=0, rtol=0, msg=key)
    last_resumed, last_straight = _last_weights(tmp_path / "run"), _last_weights(tmp_path / "straight")
    for key in last_straight:
        torch.testing.assert_close(last_resumed[key], last_straight[key], atol=0, rtol=0, msg=key)
    h_resumed = json.loads((tmp_path / "run" / "history.json").read_text())
    h_straight = json.loads((tmp_path / "straight" / "history.json").read_text())
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in h_straight]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in h_resumed] == strip
    assert len(h_resumed) == epochs


def test_process_group_is_single_process_without_torchrun_and_leaves_a_callers_group_open(
    tmp_path, monkeypatch
):
    """offline.distributed.process_group: without torchrun's environment nothing is joined; a group
    the caller opened is used and left open (only a group it joined itself is destroyed)."""
    import torch.distributed as dist

    from offline.distributed import process_group

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with process_group("cpu") as ctx:
        assert not ctx.active and ctx.is_main and not dist.is_initialized()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        with process_group("cpu") as ctx:
            assert ctx.world_size == 1
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()
