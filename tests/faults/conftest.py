"""Fault injection: the engine against amplifier-like LSL sources (beira_rt.replay.amplifier).

The source is what amplifier apps send, not what our replay sends: 38 channels
(the 30 CWL EEG channels, EOG, ECG, CW1-6) in a shuffled order, in volts, chunk
stamps taken from ``local_clock()`` at the push with +-5 ms of jitter, and the
faults each test asks for. The bundle is a tiny untrained BEIRA on the 30 EEG
channels (a 0.32 s window), so a test needs seconds, not minutes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from beira_rt.config import LiveConfig
from beira_rt.replay.amplifier import AmplifierSimulator
from offline.synthetic.eeg import CWL_AUX_CHANNELS, CWL_EEG_CHANNELS
from tests.conftest import unique_name
from tests.engine.conftest import bundle_fixtures, eeg

CWL_EEG, AUX = CWL_EEG_CHANNELS, CWL_AUX_CHANNELS
#: The source's channel order: every channel, shuffled (seeded).
SHUFFLED = [*np.random.default_rng(11).permutation([*CWL_EEG, *AUX]).tolist()]
#: Stream column of each model channel.
PICKS = [SHUFFLED.index(ch) for ch in CWL_EEG]


# a tiny BEIRA on the 30 CWL EEG channels: ``cwl_bundle_path`` (the file) and ``cwl_bundle``
cwl_bundle_path, cwl_bundle = bundle_fixtures("cwl_bundle", ch_names=CWL_EEG, lookahead=0.1)


@pytest.fixture
def fault_live():
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

    def start(
        seconds: float = 30.0, sfreq: float = 1000.0, labels=None, data=None, **kw
    ) -> AmplifierSimulator:
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
        sources.append(amp)
        worker_threads(amp.run, f"amplifier-{amp.name}")
        return amp

    yield start
    for amp in sources:
        amp.stop.set()


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
