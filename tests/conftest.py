"""Test harness: loopback-only LSL, offscreen Qt, real LSL sources, worker-thread errors fail tests.

The environment is set at import time, before any test module imports pylsl or Qt.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from beira_rt.lsl import use_loopback_config

SESSION_ID = f"beira-test-{uuid.uuid4().hex[:12]}"
use_loopback_config(SESSION_ID)

import pytest  # noqa: E402

from tests._lsl_source import SourceSpec, publish  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def cli_process(*args: object, **popen: object) -> Iterator[subprocess.Popen]:
    """A command-line process with text pipes, killed at the end if it still runs."""
    proc = subprocess.Popen(
        [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def unique_name(prefix: str = "beira-test") -> tuple[str, str]:
    """A unique (stream name, source id) pair for one test stream."""
    tag = uuid.uuid4().hex[:10]
    return f"{prefix}-{tag}", f"{prefix}-sid-{tag}"


class WorkerThread(threading.Thread):
    """A thread that keeps its exception so that the test can fail on it."""

    def __init__(self, target: Callable[[], object], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None
        self.result: object = None

    def run(self) -> None:
        try:
            self.result = self._target_fn()
        except BaseException as err:  # kept and re-raised in the test's thread
            self.error = err


@pytest.fixture(scope="session")
def demo_subject_dir(tmp_path_factory) -> Path:
    """The demo's recording, written once per run: synthetic CWL subject ``trio1``, 300 s, seed 0,
    with its atlas (the folder ``make demo`` writes to data/)."""
    from offline.synthetic import make_synthetic_subject

    root = tmp_path_factory.mktemp("demo-data")
    make_synthetic_subject(root, "trio1", duration=300.0, seed=0)
    return root


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the test (robust when other processes share the CPU), restored after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def worker_threads() -> Iterator[Callable[[Callable[[], object], str], WorkerThread]]:
    """Start worker threads whose exceptions fail the test at teardown."""
    yield from worker_pool()


@pytest.fixture(scope="module")
def module_worker_threads() -> Iterator[Callable[[Callable[[], object], str], WorkerThread]]:
    """:func:`worker_threads` for a module-scoped fixture (scenarios that several tests check)."""
    yield from worker_pool()


def worker_pool() -> Iterator[Callable[[Callable[[], object], str], WorkerThread]]:
    """Yield a starter of worker threads; then join them, failing on any that hung or raised."""
    threads: list[WorkerThread] = []

    def start(target: Callable[[], object], name: str = "worker") -> WorkerThread:
        t = WorkerThread(target, name)
        threads.append(t)
        t.start()
        return t

    yield start
    for t in threads:
        t.join(timeout=30)
    for t in threads:
        if t.is_alive():
            pytest.fail(f"worker thread {t.name!r} did not finish")
        if t.error is not None:
            raise AssertionError(f"worker thread {t.name!r} failed: {t.error!r}") from t.error


@pytest.fixture
def lsl_source_thread(worker_threads) -> Iterator[Callable[..., SourceSpec]]:
    """Start a known-data pylsl outlet in a thread; returns its :class:`SourceSpec`.

    The outlet waits for a consumer, then pushes ``n_samples`` at real-time pace.
    """
    stops: list[threading.Event] = []

    def start(**kwargs) -> SourceSpec:
        name, sid = unique_name()
        spec = SourceSpec(name=name, source_id=sid, **kwargs)
        stop = threading.Event()
        stops.append(stop)
        worker_threads(lambda: publish(spec, stop), name=f"source-{name}")
        return spec

    yield start
    for s in stops:
        s.set()


@pytest.fixture
def lsl_source_process() -> Iterator[Callable[..., SourceSpec]]:
    """Start a known-data pylsl outlet in a subprocess; returns its :class:`SourceSpec`.

    At teardown the process must have exited 0 (it pushed everything); a failure
    shows its stderr.
    """
    procs: list[tuple[subprocess.Popen, SourceSpec]] = []

    def start(**kwargs) -> SourceSpec:
        name, sid = unique_name()
        spec = SourceSpec(name=name, source_id=sid, **kwargs)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests._lsl_source", *spec.args()],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append((proc, spec))
        return spec

    yield start
    for proc, spec in procs:
        try:
            _out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
            pytest.fail(f"source process {spec.name} did not finish:\n{err}")
        if proc.returncode != 0:
            pytest.fail(f"source process {spec.name} exited {proc.returncode}:\n{err}")


@pytest.fixture
def lsl_inlet(request) -> Iterator[Callable[..., object]]:
    """Open pylsl inlets on a stream by source id; they are closed before any outlet fixture.

    Request this fixture *after* the source fixture in the test signature so that
    pytest tears it down first.
    """
    import pylsl

    inlets: list[pylsl.StreamInlet] = []

    def open_inlet(spec: SourceSpec, timeout: float = 10.0, **kwargs) -> pylsl.StreamInlet:
        found = pylsl.resolve_byprop("source_id", spec.source_id, 1, timeout)
        if not found:
            pytest.fail(f"stream {spec.name} ({spec.source_id}) not found within {timeout} s")
        inlet = pylsl.StreamInlet(found[0], max_buflen=60, **kwargs)
        inlet.open_stream(timeout=timeout)
        inlets.append(inlet)
        return inlet

    yield open_inlet
    for inlet in inlets:
        inlet.close_stream()
    inlets.clear()


def made_then_closed(build, close):
    """A fixture body: yields ``make(*args) -> build(*args)``; at teardown ``close`` gets each one made."""
    made = []

    def make(*args, **kwargs):
        obj = build(*args, **kwargs)
        made.append(obj)
        return obj

    yield make
    for obj in made:
        close(obj)
