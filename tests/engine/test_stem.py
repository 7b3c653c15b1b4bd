"""StemCache and StreamReadout: incremental live inference equals the whole-window model pass."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from beira_rt.config import ModelConfig
from beira_rt.engine.device_window import DeviceWindow
from beira_rt.engine.stem import StemCache
from beira_rt.engine.streaming import StreamReadout
from beira_rt.models import BEIRA
from tests.engine.conftest import TINY_MODEL


def _model(cfg: ModelConfig, n_chans: int, n_rois: int, seed: int) -> BEIRA:
    torch.manual_seed(seed)
    model = BEIRA.from_config(cfg, n_chans, n_rois, 100.0).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-trivial norm statistics, so that padding effects are visible
        for name, buf in model.named_buffers():
            if "running_mean" in name:
                buf.copy_(torch.randn(buf.shape, generator=gen) * 0.1)
    return model


@pytest.mark.parametrize("variant", ["reference", "causal"])
def test_incremental_equals_whole_window_for_any_chunking(variant):
    torch.set_num_threads(1)
    cfg = dataclasses.replace(TINY_MODEL, variant=variant)
    model = _model(cfg, 4, 2, seed=1)
    win = DeviceWindow(4, cfg.n_times)
    cache = StemCache(model, win)
    assert cache.usable
    rng = np.random.default_rng(0)
    checked = 0
    for step in range(150):
        if step == 80:
            win.reset()  # a gap: the cache must start over with the window
        win.append(rng.standard_normal((4, int(rng.integers(0, 25)))).astype(np.float32))
        if win.full:
            with torch.inference_mode():
                expected = model(win.view().unsqueeze(0))[0]
                got = cache.forward()
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
            checked += 1
    assert checked > 100


def test_reference_architecture_incremental_equals_whole_window():
    """The U-Net of the earlier CPU default (30 channels, 2048 samples, stem padding 53 each side, stride 8)."""
    torch.set_num_threads(1)
    cfg = ModelConfig(backbone="unet", variant="reference", n_filters=16, dropout=0.3)
    model = _model(cfg, 30, 8, seed=2)
    win = DeviceWindow(30, cfg.n_times)
    cache = StemCache(model, win)
    assert (cache.left, cache.right, cache.stride) == (*model.stem_padding, 8)
    rng = np.random.default_rng(1)
    win.append(rng.standard_normal((30, 2100)).astype(np.float32))
    for k in (10, 7, 13):
        win.append(rng.standard_normal((30, k)).astype(np.float32))
        with torch.inference_mode():
            expected = model(win.view().unsqueeze(0))[0]
            got = cache.forward()
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)


def test_streaming_readout_follows_the_window_through_resets_and_long_appends():
    """StreamReadout (the engine's streaming path) equals the whole window at every update,
    for any chunking, after a reset of the window and after more than a window at once."""
    torch.set_num_threads(1)
    cfg = dataclasses.replace(TINY_MODEL, variant="causal", n_times=64)
    model = _model(cfg, 4, 2, seed=3)
    win = DeviceWindow(4, cfg.n_times)
    readout = StreamReadout(model, win, 10)
    assert readout.exact
    rng = np.random.default_rng(2)
    checked = 0
    for step in range(160):
        if step == 70:
            win.reset()  # a gap: the stream must start over with the window
        m = 150 if step == 120 else int(rng.integers(0, 25))  # once more than a whole window
        win.append(rng.standard_normal((4, m)).astype(np.float32))
        if win.full:
            with torch.inference_mode():
                expected = model(win.view().unsqueeze(0))[0, :, cfg.n_times - 1 - 10]
                got = readout.forward()
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
            checked += 1
    assert checked > 100
