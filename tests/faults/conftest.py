"""Fault injection: the engine against amplifier-like LSL sources (beira_rt.replay.amplifier).

The source is what amplifier apps send, not what our replay sends: 38 channels
(the 30 CWL EEG channels, EOG, ECG, CW1-6) in a shuffled order, in volts, chunk
stamps taken from ``local_clock()`` at the push with +-5 ms of jitter, and the
faults each test asks for. The bundle is a tiny untrained BEIRA on the 30 EEG
channels (a 0.32 s window), so a test needs seconds, not minutes.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from beira_rt.config import LiveConfig
from beira_rt.replay.amplifier import AmplifierSimulator
from offline.synthetic.eeg import CWL_AUX_CHANNELS, CWL_EEG_CHANNELS
from tests.conftest import unique_name
from tests.engine._harness import EngineRun, wait_for
from tests.engine.conftest import bundle_fixtures, eeg

CWL_EEG, AUX = CWL_EEG_CHANNELS, CWL_AUX_CHANNELS
#: The source's channel order: every channel, shuffled (seeded).
SHUFFLED = [*np.random.default_rng(11).permutation([*CWL_EEG, *AUX]).tolist()]
#: Stream column of each model channel.
PICKS = [SHUFFLED.index(ch) for ch in CWL_EEG]


# a tiny BEIRA on the 30 CWL EEG channels: ``cwl_bundle_path`` (the file) and ``cwl_bundle``
cwl_bundle_path, cwl_bundle = bundle_fixtures("cwl_bundle", ch_names=CWL_EEG, lookahead=0.1)
# the same, once per module (for the scenarios that several tests check)
module_cwl_bundle_path, module_cwl_bundle = bundle_fixtures(
    "module_cwl_bundle", scope="module", ch_names=CWL_EEG, lookahead=0.1
)


def fault_live_config() -> LiveConfig:
    """Engine settings: unique outlet name, CPU, hop 0.05 s, resume 0.2 s after an outage."""
    name, _ = unique_name("BEIRA-fault")
    return LiveConfig(
        device="cpu",
        hop=0.05,
        outlet_name=name,
        resolve_timeout=10.0,
        status_interval=0.25,
        resume_seconds=0.2,
    )


@pytest.fixture
def fault_live():
    """:func:`fault_live_config`, one per test."""
    return fault_live_config()


def recording(seconds: float, sfreq: float = 1000.0, seed: int = 0) -> np.ndarray:
    """EEG-like data in µV for every source channel, shape (n_samples, 38), stream order."""
    return eeg(int(seconds * sfreq), sfreq, len(SHUFFLED), seed=seed)


@pytest.fixture
def amplifier(worker_threads):
    """Start an amplifier-like source in a worker thread; it is stopped at the end of the test.

    Its chunks are stamped when they were due plus the jitter (``stamp_at="schedule"``): a push
    that a loaded test machine delays must not move the source's stamps, or the test's true
    times would no longer be the source's (beira-rt cannot know a stamp is late).
    """
    sources: list[AmplifierSimulator] = []

    def start(**kw) -> AmplifierSimulator:
        amp = start_amplifier(worker_threads, **kw)
        sources.append(amp)
        return amp

    yield start
    for amp in sources:
        amp.stop.set()


def start_amplifier(
    worker_threads, seconds: float = 30.0, sfreq: float = 1000.0, labels=None, data=None, **kw
) -> AmplifierSimulator:
    """An amplifier-like source (:func:`amplifier`) started in a worker thread; the caller stops it."""
    name, sid = unique_name("amp")
    amp = AmplifierSimulator(
        data=recording(seconds, sfreq) if data is None else data,
        sfreq=sfreq,
        labels=list(SHUFFLED if labels is None else labels),
        name=kw.pop("name", name),
        source_id=kw.pop("source_id", sid),
        duration=seconds,
        **{"stamp_at": "schedule", **kw},
    )
    worker_threads(amp.run, f"amplifier-{amp.name}")
    return amp


@dataclasses.dataclass
class Scenario:
    """One engine on one amplifier-like source, run with others at the same time (:func:`run_scenarios`)."""

    amp: AmplifierSimulator
    live: LiveConfig
    run: EngineRun


def scenarios_fixture(sources: dict[str, dict]):
    """A module-scoped fixture: :func:`run_scenarios` of ``sources`` on ``module_cwl_bundle``, run once
    for the module's tests (each checks one), the sources stopped at the end."""

    @pytest.fixture(scope="module")
    def runs(module_cwl_bundle, module_worker_threads):
        started = run_scenarios(module_cwl_bundle, module_worker_threads, sources)
        yield started
        for sc in started.values():
            sc.amp.stop.set()

    return runs


def run_scenarios(
    bundle, worker_threads, sources: dict[str, dict], timeout: float = 120.0
) -> dict[str, Scenario]:
    """Engines of ``bundle`` on amplifier-like sources (``start_amplifier`` keyword arguments per
    name), all at once: each source and engine of its own, in the same wall time; every run is
    finished (its last samples through, its engine stopped) once every source has ended.

    The scenarios share the CPU but nothing else; each test checks its own. The caller stops the
    sources (``amp.stop``) at the end.
    """
    from concurrent.futures import ThreadPoolExecutor

    go = threading.Event()

    def start(kw: dict) -> Scenario:
        amp = start_amplifier(worker_threads, go=go, **kw)
        live = fault_live_config()
        return Scenario(amp, live, EngineRun(bundle, live, amp.source_id, worker_threads))

    with ThreadPoolExecutor(len(sources)) as pool:
        started = dict(zip(sources, pool.map(start, sources.values()), strict=True))
    try:  # every engine connected and idle before the first sample of any source
        for name, sc in started.items():
            wait_for(sc.amp.connected.is_set, timeout=30, what=f"the engine of {name!r} connecting")
        time.sleep(0.5)
    finally:
        go.set()
    for name, sc in started.items():
        wait_for(sc.amp.finished.is_set, timeout=timeout, what=f"the amplifier of {name!r} finishing")
    with ThreadPoolExecutor(len(started)) as pool:
        list(pool.map(lambda sc: sc.run.finish(settle=0.5), started.values()))
    return started


def reference(bundle, amp: AmplifierSimulator, first: int, stop: int, la: float) -> np.ndarray:
    """Offline predictions of samples ``first:stop`` as the engine receives them (float32 volts -> µV)."""
    from tests.engine._harness import offline

    x = amp.samples(np.arange(first, stop))[:, PICKS]
    if amp.unit == "volts":
        x = (x * 1e-6).astype(np.float32) * np.float32(1e6)
    return offline(bundle, x.astype(np.float64), amp.sfreq, la)


def model_index(stamps: np.ndarray, amp: AmplifierSimulator, first: int, la: float, sfreq_model: float):
    """Model-rate index (since sample ``first``) of each prediction from its stamp, and the error in ms."""
    t_first = float(amp.true_time(first))
    ratio = amp.sfreq / sfreq_model
    pos = (np.asarray(stamps) + la - t_first) * amp.true_rate / ratio
    n = np.rint(pos).astype(np.int64)
    return n, (pos - n) * ratio / amp.true_rate * 1e3


def with_live(live: LiveConfig, **changes) -> LiveConfig:
    return dataclasses.replace(live, **changes)
