"""The model bundle: exact round trip, and refusal of everything that is not an intact bundle."""

from __future__ import annotations

import dataclasses
import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from beira_rt import _bundle_file
from beira_rt.bundle import BundleError, ModelBundle, _metadata, load_bundle, save_bundle
from beira_rt.config import to_dict
from beira_rt.preprocessing import CausalPreprocessor

from ._bundles import CH_NAMES, ROIS, SFREQ_IN, make_small_bundle

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def saved(tmp_path) -> tuple[ModelBundle, Path]:
    bundle = make_small_bundle(seed=1, variant="causal")
    path = tmp_path / "model.beira"
    save_bundle(bundle, path)
    return bundle, path


def _window(n_chans: int = len(CH_NAMES), n_times: int = 128) -> torch.Tensor:
    return torch.randn(2, n_chans, n_times, generator=torch.Generator().manual_seed(5))


def _craft(
    path: Path, bundle: ModelBundle, meta_changes: dict | None = None, tensors: dict | None = None
) -> Path:
    """Write a file with a *valid* content hash but chosen metadata / tensors."""
    meta = {**_metadata(bundle), **(meta_changes or {})}
    data, _ = _bundle_file.encode(meta, bundle.state_dict if tensors is None else tensors)
    path.write_bytes(data)
    return path


class _CreatesMarker:
    """Unpickling this object creates a file: a stand-in for arbitrary code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# ---------------------------------------------------------------------- round trip


def test_round_trip_keeps_everything_and_predicts_identically(saved):
    bundle, path = saved
    loaded = load_bundle(path)
    assert loaded.content_hash == bundle.content_hash and len(loaded.content_hash) == 64
    assert to_dict(loaded.config) == to_dict(bundle.config)
    assert loaded.ch_names == CH_NAMES and loaded.rois == ROIS
    assert loaded.sfreq_in == SFREQ_IN and loaded.sfreq == 100.0 and loaded.bold_delay == 6.0
    assert loaded.lookahead == bundle.lookahead and loaded.metrics == bundle.metrics
    assert loaded.created == bundle.created
    for name in ("norm_mean", "norm_std", "target_mean", "target_std"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(bundle, name))
    assert loaded.state_dict.keys() == bundle.state_dict.keys()
    for key, value in bundle.state_dict.items():
        assert torch.equal(loaded.state_dict[key], value), key
    x = _window()
    a, b = bundle.build_model(), loaded.build_model()
    assert not b.training and b.causal
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_metadata_is_one_json_string_readable_without_beira(saved):
    bundle, path = saved
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(json.loads(data[8 : 8 + n])["__metadata__"]["beira"])
    assert meta["format"] == "beira-bundle" and meta["format_version"] == 1
    assert meta["content_hash"] == bundle.content_hash
    assert meta["config"]["preprocessing"]["notch_freq"] == 50.0
    assert meta["normalization"]["eeg"]["std"] == bundle.norm_std.tolist()
    assert {"ch_names", "sfreq_in", "sfreq", "rois", "bold_delay", "lookahead", "metrics", "created"} <= set(
        meta
    )


def test_helpers_build_the_preprocessing_of_the_model(saved):
    bundle = load_bundle(saved[1])
    pre = bundle.make_preprocessor(500.0)
    assert isinstance(pre, CausalPreprocessor) and pre.sfreq_in == 500.0 and pre.sfreq == 100.0
    y = np.random.default_rng(0).normal(size=(len(CH_NAMES), 50))
    expected = (y - bundle.norm_mean[:, None]) / bundle.norm_std[:, None]
    np.testing.assert_allclose(bundle.normalizer.apply(y), expected)
    np.testing.assert_allclose(
        bundle.denormalize(np.ones((2, 3))), np.ones((2, 3)) * bundle.target_std + bundle.target_mean
    )
    text = bundle.describe()
    assert bundle.content_hash[:12] in text and "Right Caudate" in text and "causal" in text


# ---------------------------------------------------------------------- refusals


def test_missing_file(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope.beira")


@pytest.mark.parametrize("keep", [0.5, 0.9, 20, 4, 0])
def test_truncated_file(saved, tmp_path, keep):
    _, path = saved
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    cut = tmp_path / "cut.beira"
    cut.write_bytes(data[:n])
    with pytest.raises(BundleError, match="truncated"):
        load_bundle(cut)


def test_files_that_are_not_bundles(tmp_path):
    text = tmp_path / "notes.beira"
    text.write_text("this is a text file, not weights\n" * 10)
    npy = tmp_path / "weights.npy"
    np.save(npy, np.arange(10.0))
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("weights.txt", "1 2 3")
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(safetensors.torch.save({"w": torch.zeros(3)}))
    cases = [(text, ""), (npy, "NumPy"), (archive, "zip archive"), (plain, "without the 'beira' metadata")]
    for path, hint in cases:
        with pytest.raises(BundleError, match="is not a BEIRA bundle") as err:
            load_bundle(path)
        assert hint in str(err.value), (path, str(err.value))


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_pickle_payload_is_never_executed(tmp_path, writer):
    marker = tmp_path / "code-was-executed"
    path = tmp_path / "evil.beira"
    payload = {"state_dict": _CreatesMarker(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=4))
    with pytest.raises(BundleError, match="is not a BEIRA bundle"):
        load_bundle(path)
    assert not marker.exists()
    # control: the payload is live, an unsafe loader would have run it
    if writer == "torch.save":
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()


def test_modified_weights_are_detected(saved, tmp_path):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # one bit of the last tensor
    bad = tmp_path / "bit.beira"
    bad.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="was modified after it was written"):
        load_bundle(bad)


def test_modified_metadata_is_detected(saved, tmp_path):
    bundle, path = saved
    data = path.read_bytes()
    old = f'\\"lookahead\\": {bundle.lookahead}'.encode()
    assert data.count(old) == 1
    bad = tmp_path / "meta.beira"
    bad.write_bytes(data.replace(old, old.replace(b"0.2", b"0.7")))
    with pytest.raises(BundleError, match="was modified after it was written"):
        load_bundle(bad)


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    bundle = make_small_bundle()
    other = make_small_bundle()
    other.state_dict["encoder.0.conv.weight"] = torch.zeros(3, 3, 3)
    with pytest.raises(BundleError, match=r"wrong shapes \['encoder.0.conv.weight \(3, 3, 3\)"):
        save_bundle(other, tmp_path / "refused.beira")
    assert not (tmp_path / "refused.beira").exists()
    tensors = dict(bundle.state_dict)
    del tensors["final_layer.bias"]
    tensors["extra.weight"] = torch.zeros(2)
    path = _craft(tmp_path / "arch.beira", bundle, tensors=tensors)
    with pytest.raises(
        BundleError, match=r"missing tensors \['final_layer.bias'\].*unexpected tensors \['extra.weight'\]"
    ):
        load_bundle(path)


def test_newer_format_version(tmp_path):
    path = _craft(tmp_path / "v2.beira", make_small_bundle(), {"format_version": 2})
    with pytest.raises(BundleError, match=r"format version 2.*Upgrade beira-rt"):
        load_bundle(path)


def test_invalid_stored_config(tmp_path):
    bundle = make_small_bundle()
    config = to_dict(bundle.config)
    config["model"]["n_filterz"] = 3
    path = _craft(tmp_path / "cfg.beira", bundle, {"config": config})
    with pytest.raises(BundleError, match=r"configuration stored in the bundle is invalid.*model.n_filterz"):
        load_bundle(path)


def test_inconsistent_lengths(tmp_path):
    bundle = make_small_bundle()
    path = _craft(tmp_path / "len.beira", bundle, {"ch_names": list(CH_NAMES[:4])})
    with pytest.raises(BundleError, match="norm_mean has 5 values but there are 4 channels"):
        load_bundle(path)


def test_invalid_bundles_are_refused_when_built():
    with pytest.raises(BundleError, match="target_std must be positive"):
        dataclasses.replace(make_small_bundle(), target_std=np.array([1.0, 0.0, 1.0]))
    with pytest.raises(
        BundleError, match=r"lookahead 2.0 s must be >= 0 and shorter than the window \(1.28 s\)"
    ):
        make_small_bundle(lookahead=2.0)


def test_metrics_must_be_json(tmp_path):
    bundle = make_small_bundle()
    bundle.metrics = {"curve": np.zeros(3)}
    with pytest.raises(BundleError, match="JSON-serialisable"):
        save_bundle(bundle, tmp_path / "m.beira")
