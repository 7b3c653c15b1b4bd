"""ChannelMonitor: flat and railed channels are found, named, replaced, and let go again."""

from __future__ import annotations

import numpy as np
import pytest

from beira_rt.config import PreprocessingConfig
from beira_rt.engine.channels import ChannelMonitor
from beira_rt.preprocessing import CausalPreprocessor

CH = ("Fp1", "Fp2", "C3", "C4", "Cz", "P3", "P4", "O1", "O2")


def _eeg(n, seed=0):
    return 20 * np.random.default_rng(seed).standard_normal((n, len(CH)))


def _feed(mon, x, chunk=50):
    out, restarts = [], []
    for i in range(0, x.shape[0], chunk):
        y, r = mon.process(x[i : i + chunk])
        out.append(y)
        if r is not None:
            restarts.append((i, np.flatnonzero(r).tolist()))
    return np.concatenate(out), restarts


def test_railed_is_caught_in_its_first_chunk_flat_after_a_block_and_both_recover():
    sfreq = 1000.0
    x = _eeg(6000)
    x[1000:3000, CH.index("Cz")] = 0.0  # flat for 2 s
    x[1520:3000, CH.index("O1")] = 187_500.0  # pinned at the rail from sample 1520
    mon = ChannelMonitor(CH, sfreq)
    y, restarts = _feed(mon, x)
    o1, cz = CH.index("O1"), CH.index("Cz")
    # the railed samples never come out: replaced from the chunk that holds the first one (1500)
    assert np.abs(y[1500:3000, o1]).max() < 1000
    assert not np.allclose(y[1500:3000, o1], 0.0)  # interpolated from its neighbours, not zeroed
    assert (1500, [o1]) in restarts
    # flat: found at the end of its first whole block (1000:1500), replaced from then on
    assert (1450, [cz]) in restarts  # the chunk 1450:1500 ends that block
    assert np.abs(y[1500:3000, cz]).max() > 1.0
    # both good again after two blocks with a signal (3000 .. 4000), left as they are after that
    assert mon.bad == {} and mon.changes >= 3
    np.testing.assert_array_equal(y[4500:], x[4500:])
    np.testing.assert_array_equal(y[:1000], x[:1000])


def test_names_and_kinds_while_bad_and_report_only_mode():
    x = _eeg(2000, seed=1)
    x[:, CH.index("C3")] = 3.0  # flat at a small offset
    x[:, CH.index("P4")] = -9000.0  # beyond the rail, constant
    mon = ChannelMonitor(CH, 1000.0, repair=False)
    y, restarts = _feed(mon, x)
    assert mon.bad == {"C3": "flat", "P4": "railed"}
    assert restarts == []  # nothing replaced, nothing to restart
    np.testing.assert_array_equal(y, x)
    assert mon.method.startswith("nothing")


def test_without_positions_the_mean_of_the_good_channels_stands_in():
    names = ("A", "B", "C", "D")
    mon = ChannelMonitor(names, 500.0)
    assert mon.method == "mean of the good channels"
    x = np.random.default_rng(2).standard_normal((500, 4)) * 10
    x[:, 2] = 1e6
    y, _ = mon.process(x)
    np.testing.assert_allclose(y[:, 2], x[:, [0, 1, 3]].mean(axis=1))


def test_restarted_channels_do_not_ring_through_the_band_pass():
    """A channel switching from railed to its interpolation: no transient after the restart."""
    cfg = PreprocessingConfig()
    sfreq = 1000.0
    pre_a, pre_b = CausalPreprocessor(cfg, sfreq, 3), CausalPreprocessor(cfg, sfreq, 3)
    x = 10 * np.random.default_rng(3).standard_normal((3, 4000))
    stepped = x.copy()
    stepped[0, :2000] += 50_000.0  # a big DC offset that disappears at sample 2000
    pre_a.process(stepped[:, :2000])
    pre_b.process(stepped[:, :2000])
    pre_b.restart_channels(np.array([True, False, False]))
    ya, yb = pre_a.process(stepped[:, 2000:]), pre_b.process(stepped[:, 2000:])
    assert np.abs(ya).max() > 1000  # without a restart the step rings through the filters
    assert np.abs(yb).max() < 200  # with it, channel 0 starts at steady state


@pytest.mark.parametrize("bad", [np.array([True, False, False]), np.array([0])])
def test_restart_accepts_a_mask_or_indices(bad):
    pre = CausalPreprocessor(PreprocessingConfig(), 1000.0, 3)
    pre.process(np.ones((3, 10)))
    pre.restart_channels(bad)
    assert pre.process(np.zeros((3, 5))).shape[0] == 3
