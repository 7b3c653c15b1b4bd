"""Shared by the trainer tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every trainer test runs with one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def fast_cfg():
    """configs/fast_test.yaml: a tiny model and a few steps."""
    from beira_rt.config import load_config

    from ..conftest import REPO

    return load_config(REPO / "configs" / "fast_test.yaml")
