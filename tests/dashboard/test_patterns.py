"""The dashboard's Patterns tab: topomaps of each ROI's top branches from a patterns file, offscreen."""

from __future__ import annotations

import json

import mne
import numpy as np
import pytest
import torch

from beira_rt.cli.rt import main as rt_main
from beira_rt.config import DEFAULT_ROIS
from beira_rt.interpret import branch_filters, branch_patterns, cross_spectrum, patterns_path, read_patterns
from beira_rt.models import BEIRA
from tests.conftest import unique_name
from tests.dashboard._outlets import MODEL_HASH, RoiPublisher

CHANNELS = ("Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "Fz", "Cz", "Pz", "Oz")
WAIT_MS = 20_000


def write_patterns(path, bundle_hash: str, top: int = 2) -> dict:
    """A patterns file computed with the real pattern math: an untrained BEIRA on data with one 10 Hz source."""
    torch.manual_seed(0)
    model = BEIRA(len(CHANNELS), len(DEFAULT_ROIS), 256, n_filters=3, filter_size=25, envelope_size=25,
                  channels=(8, 8, 8, 8), kernel_sizes=(3, 3, 3), strides=(4, 4, 4), decoder_reduce=2)  # fmt: skip
    rng = np.random.default_rng(0)
    t = np.arange(6000) / 100.0
    source = np.linspace(-1.0, 1.0, len(CHANNELS))
    z = np.outer(source, np.sin(2 * np.pi * 10.0 * t)) + 0.3 * rng.standard_normal((len(CHANNELS), t.size))
    pats = branch_patterns(branch_filters(model), *cross_spectrum(z, 100.0))
    pos = mne.channels.make_standard_montage("colin27_1020").get_positions()["ch_pos"]
    doc = {
        "bundle_hash": bundle_hash, "subject": "test", "ch_names": list(CHANNELS),
        "positions": {n: [float(v) for v in pos[n]] for n in CHANNELS}, "rois": {},
    }  # fmt: skip
    for h, roi in enumerate(DEFAULT_ROIS):
        order = list(range(3))[::-1] if h % 2 else list(range(3))
        doc["rois"][roi] = {
            "ranking": order[:top],
            "branches": [
                {
                    "branch": k,
                    "rank": order.index(k),
                    "importance": 0.1 / (1 + order.index(k)),
                    "peak_hz": float(pats.peak_hz[h, k]),
                    "pattern": pats.pattern[h, k].tolist(),
                }
                for k in order[:top]
            ],
        }
    path.write_text(json.dumps(doc), encoding="utf-8")
    return doc


@pytest.fixture
def dashboard_with_patterns(dashboard):
    """Make dashboards with a Patterns tab (the ``dashboard`` fixture, offscreen)."""
    return lambda sources, path: dashboard(sources, patterns=path)


@pytest.fixture
def patterns_file(tmp_path):
    path = tmp_path / "patterns.json"
    write_patterns(path, "f" * 64)
    return path


def test_patterns_tab_draws_the_top_branches(patterns_file, dashboard_with_patterns, qtbot):
    from beira_rt.dashboard.main_window import DashboardSources

    name, _ = unique_name("beira-none")  # no such stream: the tab does not need one
    dash = dashboard_with_patterns(DashboardSources.from_names(name), patterns_file)
    tabs = dash.centralWidget()
    assert tabs.count() == 2 and tabs.tabText(0) == "Live" and tabs.tabText(1) == "Patterns"
    view = dash.patterns_view
    assert [r.roi for r in view.rois] == list(DEFAULT_ROIS)
    assert view.n_topomaps == 2 * len(DEFAULT_ROIS)
    tabs.setCurrentIndex(1)
    qtbot.waitUntil(
        lambda: view.image.pixmap() is not None and not view.image.pixmap().isNull(), timeout=WAIT_MS
    )
    img = view.grab().toImage()
    rgb = np.array([[img.pixelColor(x, y).getRgb()[:3] for x in range(0, img.width(), 3)]
                    for y in range(0, img.height(), 3)])  # fmt: skip
    # the RdBu topomaps: strongly red and strongly blue pixels, not a blank page
    assert np.sum((rgb[..., 0] > 150) & (rgb[..., 2] < 90)) > 50
    assert np.sum((rgb[..., 2] > 150) & (rgb[..., 0] < 90)) > 50
    assert "ffffffffffff" in view.caption.text() and not view.mismatch


@pytest.mark.parametrize(("bundle_hash", "mismatch"), [("f" * 64, True), (MODEL_HASH, False)])
def test_patterns_tab_flags_another_engine_model(
    bundle_hash, mismatch, tmp_path, publishers, dashboard_with_patterns, qtbot
):
    from beira_rt.dashboard.main_window import DashboardSources

    path = tmp_path / "patterns.json"
    write_patterns(path, bundle_hash)
    name, sid = unique_name("beira-pred")
    publishers(RoiPublisher(name, sid))
    dash = dashboard_with_patterns(DashboardSources.from_names(name), path)
    view = dash.patterns_view
    qtbot.waitUntil(lambda: view.engine_hash == MODEL_HASH[:12], timeout=WAIT_MS)
    assert view.mismatch is mismatch
    assert ("belong to another bundle" in view.caption.text()) is mismatch


def test_read_patterns_finds_the_file_beside_a_bundle(tmp_path):
    bundle = tmp_path / "model.beira"
    with pytest.raises(FileNotFoundError, match="beira-train interpret"):
        read_patterns(bundle)
    doc = write_patterns(patterns_path(bundle), "a" * 64, top=1)
    assert patterns_path(bundle).name == "model.patterns.json"
    meta, rois = read_patterns(bundle)
    assert meta["bundle_hash"] == "a" * 64 and len(rois) == len(DEFAULT_ROIS)
    first = doc["rois"][DEFAULT_ROIS[0]]["branches"][0]
    np.testing.assert_allclose(rois[0].branches[0]["pattern"], first["pattern"])
    (tmp_path / "other.json").write_text(json.dumps({"rois": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a patterns file"):
        read_patterns(tmp_path / "other.json")


def test_cli_refuses_a_missing_patterns_file(tmp_path, capsys):
    assert rt_main(["dashboard", "--patterns", str(tmp_path / "none.json"), "--duration", "1"]) == 2
    assert "--patterns" in capsys.readouterr().err
