"""Shared by the trainer tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every trainer test runs with one torch thread (tests/conftest.py)."""
