"""Finding the EEG stream and mapping its channels (real LSL outlets on loopback)."""

from __future__ import annotations

import numpy as np
import pylsl
import pytest

from beira_rt.engine.source import (
    ChannelMismatchError,
    EegReader,
    UnsupportedStreamError,
    check_compatible,
    map_channels,
)
from beira_rt.lsl import SourceNotFoundError, StreamQuery
from beira_rt.lsl import resolve_stream as resolve_source
from tests.conftest import unique_name
from tests.engine._streams import eeg_stream

MODEL = ("Fp1", "Cz", "O2")


def connect(sid, model=MODEL, first=None):
    """Connect the engine's reader to the stream ``sid`` (checked against ``first``), then let go."""
    reader = EegReader(StreamQuery(source_id=sid), model, ("clocksync",), 10.0)
    try:
        reader.connect(5.0)
    finally:
        reader.stop()
    if first is not None:
        check_compatible(first, reader.spec)
    return reader.spec


def test_map_channels_case_order_and_extras():
    labels = ["ECG", "o2", " CZ ", "fp1", "EOG"]
    picks = map_channels(labels, MODEL)
    np.testing.assert_array_equal(picks, [3, 2, 1])


def test_map_channels_lists_every_missing_channel():
    with pytest.raises(ChannelMismatchError, match=r"lacks 2 of the model's 3 channels: Fp1, O2") as err:
        map_channels(["Cz", "Pz"], MODEL, stream="the stream 'amp'")
    assert "the stream 'amp'" in str(err.value) and "Cz, Pz" in str(err.value)


def test_map_channels_refuses_ambiguous_labels():
    with pytest.raises(ChannelMismatchError, match="more than one channel labelled"):
        map_channels(["Fp1", "FP1", "Cz", "O2"], MODEL)
    # a duplicate the model does not use is harmless
    np.testing.assert_array_equal(map_channels(["X", "x", "Fp1", "Cz", "O2"], MODEL), [2, 3, 4])


def test_query_needs_something_to_match():
    with pytest.raises(ValueError, match="name, type or source id"):
        StreamQuery()


def test_resolve_by_name_type_and_source_id():
    name, sid = unique_name()
    with eeg_stream(name, sid, ["Fp1", "Cz", "O2"], 500.0):
        for query in (
            StreamQuery(name=name),
            StreamQuery(source_id=sid),
            StreamQuery(name=name, stype="EEG"),
        ):
            info = resolve_source(query, timeout=5.0)
            assert info.source_id() == sid and info.name() == name


def test_missing_stream_error_lists_the_streams_found():
    name, sid = unique_name()
    with eeg_stream(name, sid, ["Fp1", "Cz", "O2"], 500.0):
        with pytest.raises(SourceNotFoundError) as err:
            resolve_source(StreamQuery(name="no-such-stream"), timeout=1.0)
        msg = str(err.value)
        assert "name 'no-such-stream'" in msg
        assert name in msg and sid in msg and "500 Hz" in msg  # the stream that does exist
        with pytest.raises(SourceNotFoundError, match=name):  # right name, wrong type
            resolve_source(StreamQuery(name=name, stype="Markers"), timeout=1.0)


def test_connect_checks_channels_and_rate():
    name, sid = unique_name()
    with eeg_stream(name, sid, ["ecg", "O2", "cz", "FP1"], 1000.0):
        spec = connect(sid)
        np.testing.assert_array_equal(spec.picks, [3, 2, 1])
        assert spec.sfreq == 1000.0 and spec.labels == ("ecg", "O2", "cz", "FP1")
        with pytest.raises(ChannelMismatchError, match="lacks 1 of the model's 4 channels: Pz"):
            connect(sid, (*MODEL, "Pz"))


@pytest.mark.parametrize("sfreq", [100.0, 10000.0, pylsl.IRREGULAR_RATE])
def test_connect_refuses_unsupported_rates(sfreq):
    name, sid = unique_name()
    with eeg_stream(name, sid, list(MODEL), sfreq):
        with pytest.raises(UnsupportedStreamError, match="between 250 and 5000 Hz"):
            connect(sid)


def test_stream_without_labels_is_refused():
    name, sid = unique_name()
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 3, 500.0, "float32", sid))
    try:
        with pytest.raises(ChannelMismatchError, match="no channel labels"):
            connect(sid)
    finally:
        del outlet


def test_returning_stream_with_other_channels_is_refused():
    name, sid = unique_name()
    with eeg_stream(name, sid, ["Fp1", "Cz", "O2", "EOG"], 500.0):
        spec1 = connect(sid)
    with eeg_stream(name, sid, ["O2", "fp1", "CZ", "eog"], 500.0):  # same set, other order / case
        spec2 = connect(sid, first=spec1)
        np.testing.assert_array_equal(spec2.picks, [1, 2, 0])
    with eeg_stream(name, sid, ["Fp1", "Cz", "O2", "ECG"], 500.0):  # model channels there, set differs
        with pytest.raises(ChannelMismatchError, match=r"different channel set .*missing: eog; new: ecg"):
            connect(sid, first=spec1)
    spec_fast = spec1.__class__(**{**spec1.__dict__, "sfreq": 1000.0})
    with pytest.raises(ChannelMismatchError, match="runs at 1000 Hz, not the 500 Hz"):
        check_compatible(spec1, spec_fast)
