"""Fixtures of the dashboard tests: publishers in worker threads, dashboards torn down first."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import made_then_closed


@pytest.fixture
def publishers(worker_threads) -> Iterator[Callable]:
    """Run a publisher (``RoiPublisher``, ``StatusPublisher``) in a worker thread until the test ends."""
    started = []

    def start(pub):
        started.append(pub)
        worker_threads(pub.run, name=f"publisher-{pub.name}")
        return pub

    yield start
    for pub in started:
        pub.stop.set()


@pytest.fixture
def dashboard(qtbot) -> Iterator[Callable]:
    """Make :class:`Dashboard` windows; their readers stop (inlets close) before any outlet fixture ends.

    Request this fixture after the publisher fixtures in the test signature.
    """
    from beira_rt.dashboard.main_window import Dashboard

    def build(sources, cfg=None, **options):
        dash = Dashboard(sources, cfg, **options)
        dash.resize(1400, 800)
        dash.show()
        return dash

    def close(dash):
        dash.shutdown()
        dash.close()
        dash.deleteLater()

    yield from made_then_closed(build, close)
