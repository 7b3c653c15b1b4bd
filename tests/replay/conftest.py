"""Players and consumers for the replay tests: real pylsl outlets and inlets on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from beira_rt.replay import Player
from tests.conftest import made_then_closed, unique_name


@pytest.fixture
def stream_ids() -> tuple[str, str]:
    """A unique (name, source id) for one replay."""
    return unique_name("beira-replay-test")


class Drain:
    """A pylsl inlet on one stream, pulled in a worker thread into lists.

    For every pulled chunk it records ``local_clock()`` right after the pull returned, so a
    test can check that nothing arrived before the time its stamp claims.
    """

    def __init__(self, source_id: str, timeout: float = 10.0) -> None:
        import pylsl

        found = pylsl.resolve_byprop("source_id", source_id, 1, timeout)
        if not found:
            pytest.fail(f"stream with source id {source_id!r} not found within {timeout} s")
        self.inlet = pylsl.StreamInlet(found[0], max_buflen=60)
        self.inlet.open_stream(timeout=timeout)
        self.info = self.inlet.info(timeout=timeout)
        self.samples: list = []
        self.stamps: list[float] = []
        self.arrivals: list[tuple[float, float]] = []  # (newest stamp in the chunk, clock after the pull)
        self._stop = threading.Event()

    def labels(self) -> list[str]:
        ch = self.info.desc().child("channels").child("channel")
        out = []
        while not ch.empty():
            out.append(ch.child_value("label"))
            ch = ch.next_sibling()
        return out

    def pull_until(self, n: int, give_up: float = 60.0) -> None:
        """Pull until ``n`` samples arrived, the drain is closed, or ``give_up`` seconds passed.

        ``give_up`` only keeps a broken test from hanging; the test then fails on the count.
        """
        import pylsl

        end = pylsl.local_clock() + give_up
        while len(self.stamps) < n and not self._stop.is_set() and pylsl.local_clock() < end:
            data, stamps = self.inlet.pull_chunk(timeout=0.05, max_samples=4096)
            now = pylsl.local_clock()
            if stamps:
                self.samples.extend(data)
                self.stamps.extend(stamps)
                self.arrivals.append((max(stamps), now))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.samples), np.asarray(self.stamps)

    def close(self) -> None:
        self._stop.set()
        thread = getattr(self, "thread", None)
        if thread is not None:
            thread.join(10)
        self.inlet.close_stream()


def _close_player(player) -> None:
    player.close()
    if player.error is not None:
        raise AssertionError(f"replay {player.name!r} failed: {player.error!r}") from player.error


def closing_factory(cls):
    """A factory of ``cls`` players; at teardown each is closed and its streaming error raised."""
    yield from made_then_closed(cls, _close_player)


@pytest.fixture
def players() -> Iterator[Callable[..., Player]]:
    """Make :class:`Player` objects that are closed at teardown (after the drains)."""
    yield from closing_factory(Player)


@pytest.fixture
def drains(worker_threads) -> Iterator[Callable[..., Drain]]:
    """Open :class:`Drain` consumers that pull ``n`` samples in a worker thread.

    Request it after ``players`` so that the inlets close before the outlets.
    """
    opened: list[Drain] = []

    def open_drain(source_id: str, n: int) -> Drain:
        drain = Drain(source_id)
        opened.append(drain)
        drain.thread = worker_threads(lambda: drain.pull_until(n), name=f"drain-{source_id}")
        return drain

    yield open_drain
    for d in opened:
        d.close()
