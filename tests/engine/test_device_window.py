"""DeviceWindow: the last W samples as one view, whatever the chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from beira_rt.engine.device_window import DeviceWindow


def test_view_is_the_last_w_samples_for_any_chunking():
    rng = np.random.default_rng(0)
    win = DeviceWindow(3, 16)
    seen = np.empty((3, 0), dtype=np.float32)
    for _ in range(300):
        m = int(rng.integers(0, 40))
        z = rng.standard_normal((3, m)).astype(np.float32)
        win.append(z)
        seen = np.concatenate([seen, z], axis=1)
        if seen.shape[1] >= 16:
            assert win.full
            np.testing.assert_array_equal(win.view().numpy(), seen[:, -16:])
        else:
            assert not win.full


def test_view_is_a_view_not_a_copy():
    win = DeviceWindow(2, 8)
    win.append(np.arange(20, dtype=np.float32).reshape(2, 10))
    v = win.view()
    base = win._buf
    assert v.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()


def test_reset_and_partial_window():
    win = DeviceWindow(2, 8)
    win.append(np.ones((2, 10), dtype=np.float32))
    win.reset()
    win.append(np.zeros((2, 5), dtype=np.float32))
    assert not win.full
    with pytest.raises(RuntimeError, match="5 of 8 samples"):
        win.view()
    win.append(np.full((2, 3), 2.0, dtype=np.float32))
    np.testing.assert_array_equal(win.view().numpy()[0], [0, 0, 0, 0, 0, 2, 2, 2])


def test_wrong_channel_count_is_refused():
    with pytest.raises(ValueError, match=r"\(2, n_samples\)"):
        DeviceWindow(2, 8).append(np.zeros((3, 4), dtype=np.float32))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_window_lives_on_cuda():
    rng = np.random.default_rng(1)
    win = DeviceWindow(4, 32, "cuda")
    z = rng.standard_normal((4, 50)).astype(np.float32)
    win.append(z)
    assert win.view().is_cuda
    np.testing.assert_array_equal(win.view().cpu().numpy(), z[:, -32:])
