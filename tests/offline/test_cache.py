"""The preprocessing cache (offline/cache.py): a hit gives the same arrays, a changed input or config misses."""

from __future__ import annotations

import numpy as np
import pytest

from beira_rt.config import override
from offline.cache import cached_recording, cwl_inputs
from offline.dataset import prepare_recording
from offline.loader import cwl_paths, load_cwl_subject
from offline.synthetic import make_synthetic_subject


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    return make_synthetic_subject(tmp_path_factory.mktemp("cwl"), "trio1", duration=60.0, seed=0)


@pytest.fixture(scope="module")
def cfg(fast_cfg):
    return fast_cfg


def _load(subject, cfg, cache_dir, calls):
    inputs = cwl_inputs(subject.data_dir, "trio1", subject.atlas, subject.atlas_labels)

    def load():
        calls.append(1)
        return load_cwl_subject(subject.data_dir, "trio1", cfg.data, subject.atlas, subject.atlas_labels,
                                cfg.preprocessing.sfreq)  # fmt: skip

    return cached_recording(inputs, load, cfg, "trio1", cache_dir)


def test_second_load_hits_and_gives_the_same_arrays(subject, cfg, tmp_path):
    calls: list[int] = []
    first = _load(subject, cfg, tmp_path, calls)
    second = _load(subject, cfg, tmp_path, calls)
    assert calls == [1]  # the loader ran once
    assert first.cache["hit"] is False and second.cache["hit"] is True
    assert isinstance(second.preprocessed, np.memmap) and isinstance(second.bold, np.memmap)
    np.testing.assert_array_equal(second.preprocessed, first.preprocessed)
    np.testing.assert_array_equal(second.bold, first.bold)
    assert second.ch_names == first.ch_names and second.roi_names == first.roi_names
    assert second.provenance == first.provenance and second.data_hash == first.data_hash
    assert second.duration == first.duration and second.warnings == first.warnings
    # the trainer's arrays from the cache equal those from the raw recording, bit for bit
    direct = load_cwl_subject(subject.data_dir, "trio1", cfg.data, subject.atlas, subject.atlas_labels,
                              cfg.preprocessing.sfreq)  # fmt: skip
    a, b = prepare_recording(direct, cfg), prepare_recording(second, cfg)
    np.testing.assert_array_equal(a.eeg, b.eeg)
    np.testing.assert_array_equal(a.target, b.target)
    assert a.split == b.split
    # no temporary folder is left behind: one entry
    assert [p.name for p in tmp_path.iterdir()] == [first.cache["path"].rsplit("/", 1)[1]]


def test_changed_config_or_input_misses(subject, cfg, tmp_path):
    calls: list[int] = []
    base = _load(subject, cfg, tmp_path, calls)
    other_pre = _load(subject, override(cfg, {"preprocessing.l_freq": 2.0}), tmp_path, calls)
    other_data = _load(subject, override(cfg, {"data.smoothing_fwhm": 5.0}), tmp_path, calls)
    assert calls == [1, 1, 1]
    assert len({base.cache["key"], other_pre.cache["key"], other_data.cache["key"]}) == 3
    assert not np.array_equal(base.preprocessed, other_pre.preprocessed)
    # a changed input file (same name, other bytes) misses too
    motion = cwl_paths(subject.data_dir, "trio1").motion
    original = motion.read_bytes()
    try:
        motion.write_bytes(original.replace(b"0", b"1", 1))
        changed = _load(subject, cfg, tmp_path, calls)
    finally:
        motion.write_bytes(original)
    assert calls == [1, 1, 1, 1] and changed.cache["key"] != base.cache["key"]
    assert _load(subject, cfg, tmp_path, calls).cache["hit"] and len(calls) == 4
