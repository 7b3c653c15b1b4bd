"""The validated configuration: defaults, YAML loading, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from beira_rt.config import (
    BeiraConfig,
    ConfigError,
    from_dict,
    load_config,
    override,
    parse_assignments,
    to_dict,
)

REPO = Path(__file__).resolve().parents[1]


def test_default_yaml_equals_code_defaults():
    cfg = load_config(REPO / "configs" / "default.yaml")
    assert cfg == BeiraConfig()
    # the CPU-trainable default keeps the paper's data, preprocessing, window and front-end filters;
    # its back end is the read-out (causal), its front end fitted by SPoC and frozen
    paper = load_config(REPO / "configs" / "paper.yaml")
    assert cfg.data == paper.data and cfg.preprocessing == paper.preprocessing and cfg.live == paper.live
    for key in ("n_times", "filter_size", "envelope_size"):
        assert getattr(cfg.model, key) == getattr(paper.model, key), key
    assert (cfg.model.backbone, cfg.model.variant, cfg.model.filter_start) == ("readout", "causal", "spoc")
    assert (paper.model.backbone, paper.model.filter_start) == ("unet", "random")
    assert cfg.model.n_filters == 4 and cfg.training.max_minutes == 5.0


def test_paper_yaml_is_the_papers_reference_settings():
    cfg = load_config(REPO / "configs" / "paper.yaml")
    assert cfg.preprocessing.sfreq == 100.0
    assert cfg.model.n_times == 2048 and cfg.model.channels == (128, 128, 128, 128)
    assert cfg.model.decoder_reduce == 4 and cfg.model.n_filters == 16
    assert cfg.model.bold_delay == 6.0
    assert cfg.model.filter_init == "random" and not cfg.model.envelope_log
    assert cfg.training.batch_size == 16
    assert cfg.training.lr == pytest.approx(3e-4)
    assert len(cfg.data.rois) == 8


def test_every_shipped_config_loads():
    paths = sorted((REPO / "configs").glob("*.yaml"))
    assert paths, "no configs shipped"
    for path in paths:
        load_config(path)


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"model": {"n_time": 2048}}, "model.n_time", "unknown"),
        ({"modle": {}}, "modle", "unknown"),
        ({"model": {"n_times": "long"}}, "model.n_times", "integer"),
        ({"training": {"lr": "fast"}}, "training.lr", "number"),
        ({"data": {"confounds": "yes"}}, "data.confounds", "true or false"),
        ({"model": {"strides": [8, "x", 4]}}, "model.strides[1]", "integer"),
        ({"training": {"lr": -1e-3}}, "training.lr", "out of range"),
        ({"model": {"dropout": 1.5}}, "model.dropout", "out of range"),
        ({"live": {"hop": 0}}, "live.hop", "out of range"),
        ({"live": {"device": "tpu"}}, "live.device", "'auto', 'cpu', 'cuda'"),
    ],
)
def test_bad_values_name_the_key(data, key, words):
    with pytest.raises(ConfigError) as info:
        from_dict(data)
    assert key in str(info.value)
    assert words in str(info.value)


def test_yaml_file_errors_name_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("preprocessing:\n  sfreq: 100\n  l_frq: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*preprocessing\.l_frq"):
        load_config(path)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("model: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="l_freq"):
        from_dict({"preprocessing": {"l_freq": 40, "h_freq": 30}})
    with pytest.raises(ConfigError, match=r"model.channels"):
        from_dict({"model": {"strides": [8, 8]}})


def test_overrides_and_round_trip():
    cfg = override(BeiraConfig(), {"live.hop": 0.25, "live.lookahead": None, "model.variant": "causal"})
    assert cfg.live.hop == 0.25 and cfg.live.lookahead is None and cfg.model.variant == "causal"
    assert from_dict(to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match=r"live.hop"):
        override(cfg, {"live.hop": -1.0})
    with pytest.raises(ConfigError, match="unknown"):
        override(cfg, {"live.hopp": 1.0})


def test_command_line_assignments_are_read_as_yaml_and_checked_by_override():
    updates = parse_assignments(
        ["model.n_filters=3", "training.readout_alphas=[1.0, 10.0]", "live.lookahead=null"]
    )
    assert updates == {"model.n_filters": 3, "training.readout_alphas": [1.0, 10.0], "live.lookahead": None}
    cfg = override(BeiraConfig(), updates)
    assert cfg.model.n_filters == 3 and tuple(cfg.training.readout_alphas) == (1.0, 10.0)
    # KEY=null: skipped by default (an unset CLI flag), set with skip_none=False
    unset = parse_assignments(["training.max_minutes=null"])
    assert override(BeiraConfig(), unset).training.max_minutes == BeiraConfig().training.max_minutes
    assert BeiraConfig().training.max_minutes is not None
    assert override(BeiraConfig(), unset, skip_none=False).training.max_minutes is None
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignments(["model.n_filters"])
    with pytest.raises(ConfigError, match="not valid YAML"):  # read safely: no tag builds an object
        parse_assignments(["model.n_filters=!!python/object/apply:os.getcwd []"])


def test_a_retired_key_in_a_config_file_names_its_replacement():
    from beira_rt.config import ConfigError, from_dict

    with pytest.raises(
        ConfigError, match=r"live.gap_factor is no longer a setting; use live.gap_tolerance_ms"
    ):
        from_dict({"live": {"gap_factor": 2.0}})
    # a bundle written before the change stored it: that config still loads, without it
    cfg = from_dict({"live": {"gap_factor": 2.0, "hop": 0.2}}, stored=True)
    assert cfg.live.hop == 0.2 and not hasattr(cfg.live, "gap_factor")
