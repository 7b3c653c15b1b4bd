"""``beira-replay``: stream a recorded EEG file, or every stream of an XDF file, as real-time LSL streams."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from beira_rt.cli._common import EXIT_FAILURE, EXIT_USAGE, add_common_args, config_from_args, run_main
from beira_rt.cli.options import add_options, new_parser, opt, seconds, switch

_EPILOG = """\
streams:
  NAME            type EEG, float32, the file's rate; every non-stim channel, volts published in
                  microvolts (channels/channel/{label,type,unit} in the description)
  NAME-markers    type Markers, strings: each annotation, pushed right after its sample and
                  stamped with that sample's time stamp (--no-markers: none)
  NAME-truth      type sBOLDTruth, one float32 channel per ROI at the model rate (--truth only):
                  the value stamped with EEG time t is the BOLD at t + model.bold_delay

time stamps: sample k of the replay is stamped t0 + k / (sfreq * speed) on the LSL clock and
pushed once that time has come; with --loop (which replays START..end again and again) they
continue across restarts. At --speed other than 1 the nominal rate stays the file's rate while
the stamps advance 1 / (sfreq * speed) per sample (beira_replay/speed in the description).

--truth takes a tab-separated file with a header of ROI names and either
  one row per fMRI volume, matched in order to the --volume-marker annotations, or
  a 'time' column (EEG seconds from the first sample) holding an already aligned series
  that covers the whole recording (NaN where unknown).
For a CWL subject folder, write that file with the trainer first:
  beira-train truth SUBJECT_DIR --out truth.tsv   (then --truth truth.tsv)

XDF files (.xdf, .xdfz; e.g. a session recorded with LabRecorder): every recorded stream (or
those named by --streams) is published again with its original name, type, channel count and
format, nominal rate, source id and description (plus desc/beira_replay/source = the file);
recorded stamp s goes out stamped t0 + (s - first stamp) / speed, once that time has come.
--name-suffix appends a suffix to every name and source id. Only --speed, --duration and
--wait-consumer apply to an XDF file.

exit status: 0 after the end of the file, --duration, or a stop by SIGINT / SIGTERM (a summary
is printed); 1 on bad input (unreadable file, no EEG channel, unknown marker, short truth,
not an XDF file, no such stream in it);
2 on a bad configuration or usage.
"""


#: ``beira-replay``'s arguments besides --config and -v / -q.
_OPTIONS = (
    opt("path", metavar="PATH", help="recording to replay (.set, .fif, .edf, .bdf, .vhdr, ..., or .xdf)"),
    opt("--name", help="EEG stream name (default: replay.name, 'beira-replay')"),
    opt("--source-id", metavar="ID", help="LSL source id (default: NAME@<file name>)"),
    opt("--speed", type=float, help="replay speed factor (default: replay.speed, 1.0)"),
    opt("--loop", action="store_true", default=None, help="restart at the end with continuous time stamps"),
    seconds("--start", "start S seconds into the file", default=0.0),
    opt("--chunk-size", type=int, metavar="N", help="samples per chunk (default: replay.chunk_size)"),
    opt("--no-markers", dest="markers", action="store_false", default=None, help="no marker stream"),
    opt("--truth", metavar="ROI_TSV", help="publish the ROI truth stream (a CWL folder: beira-train truth)"),
    opt(
        "--volume-marker",
        metavar="NAME",
        help="annotation of fMRI volume onsets (default: data.volume_marker)",
    ),
    seconds("--duration", "stop after S seconds of recording (S / speed of wall time)"),
    switch("--index-channel", "append a SAMPLE_INDEX channel (type MISC) for checks"),
    opt(
        "--outage",
        metavar="EVERY:SECONDS",
        help="simulate radio dropouts: every EVERY s of replay, SECONDS s of samples are lost "
        "(never pushed; the stamps of later samples go on)",
    ),
    seconds(
        "--wait-consumer",
        "wait up to S seconds for a consumer of the EEG stream (XDF: of every replayed stream) before starting",
        default=0.0,
    ),
    opt(
        "--streams",
        metavar="NAME,NAME...",
        help="XDF only: replay only the streams of these names (default: all)",
    ),
    opt(
        "--name-suffix",
        metavar="SUFFIX",
        default="",
        help="XDF only: append SUFFIX to every stream name and source id (default: none; write "
        "--name-suffix=-replay for a suffix that starts with '-')",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "beira-replay",
        "Replay a recording (CWL .set, or any file MNE reads) as real-time LSL streams: the EEG, "
        "its annotations as markers, and optionally the ROI BOLD truth, so the engine and the "
        "dashboard run without an amplifier. An XDF file (.xdf) replays every stream it recorded.",
        _EPILOG,
        raw=True,
    )
    add_options(parser, _OPTIONS)
    add_common_args(parser)
    return parser


def _parse_outage(text: str | None) -> tuple[float, float] | None:
    from beira_rt.replay import ReplayError

    if text is None:
        return None
    try:
        every, seconds = (float(x) for x in text.split(":"))
    except ValueError:
        raise ReplayError(f"--outage takes EVERY:SECONDS (e.g. 600:5), got {text!r}.") from None
    return every, seconds


def _load_truth(arg: str, recording, cfg):
    from beira_rt.replay import ReplayError, read_truth_tsv

    path = Path(arg)
    if path.is_dir():
        raise ReplayError(
            f"--truth {path} is a folder; for a CWL subject folder write its aligned ROI truth with the "
            f"trainer first (beira-train truth {path} --out truth.tsv) and pass --truth truth.tsv."
        )
    return read_truth_tsv(
        path,
        recording,
        sfreq=cfg.preprocessing.sfreq,
        bold_delay=cfg.model.bold_delay,
        volume_marker=cfg.data.volume_marker,
    )


def _wait_consumer(player, timeout: float, stop) -> bool:
    """Wait for a consumer in short steps so that SIGINT / SIGTERM (``stop``) end the wait."""
    end = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < end:
        if player.wait_for_consumers(min(0.2, max(end - time.monotonic(), 0.0))):
            return True
    return False


#: Options of an EEG-file replay that an XDF replay does not take (flag, default).
_NOT_FOR_XDF = (
    ("--name", "name", None),
    ("--source-id", "source_id", None),
    ("--loop", "loop", None),
    ("--start", "start", 0.0),
    ("--chunk-size", "chunk_size", None),
    ("--no-markers", "markers", None),
    ("--truth", "truth", None),
    ("--volume-marker", "volume_marker", None),
    ("--index-channel", "index_channel", False),
    ("--outage", "outage", None),
)


def _main(args: argparse.Namespace) -> int:
    cfg = config_from_args(
        args,
        {
            "replay.speed": args.speed,
            "replay.chunk_size": args.chunk_size,
            "replay.loop": args.loop,
            "replay.markers": args.markers,
            "replay.name": args.name,
            "data.volume_marker": args.volume_marker,
        },
    )
    from beira_rt.replay.xdf import is_xdf

    if is_xdf(args.path):
        return _main_xdf(args, cfg)
    if args.streams is not None or args.name_suffix:
        print("error: --streams and --name-suffix apply to an XDF file only.", file=sys.stderr)
        return EXIT_USAGE
    from beira_rt.replay import Player, ReplayError, load_recording

    try:
        recording = load_recording(args.path)
        truth = None if args.truth is None else _load_truth(args.truth, recording, cfg)
        player = Player(
            recording,
            cfg.replay.name,
            args.source_id,
            speed=cfg.replay.speed,
            chunk_size=cfg.replay.chunk_size,
            loop=cfg.replay.loop,
            start=args.start,
            markers=cfg.replay.markers,
            truth=truth,
            index_channel=args.index_channel,
            outage=_parse_outage(args.outage),
        )
        if args.duration is not None and not args.duration > 0:
            raise ReplayError(f"--duration must be a positive number of seconds, got {args.duration}.")
    except ReplayError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    return _play(player, args, recording.source)


def _main_xdf(args: argparse.Namespace, cfg) -> int:
    from beira_rt.replay import ReplayError
    from beira_rt.replay.xdf import XdfPlayer

    given = [flag for flag, key, default in _NOT_FOR_XDF if getattr(args, key) != default]
    if given:
        print(
            f"error: {', '.join(given)} do(es) not apply to an XDF file (it replays the recorded streams "
            "as they are; use --streams, --name-suffix, --speed, --duration, --wait-consumer).",
            file=sys.stderr,
        )
        return EXIT_USAGE
    names = None if args.streams is None else [n.strip() for n in args.streams.split(",") if n.strip()]
    try:
        if names is not None and not names:
            raise ReplayError("--streams takes stream names separated by commas, got none.")
        player = XdfPlayer(args.path, names, speed=cfg.replay.speed, name_suffix=args.name_suffix)
        if args.duration is not None and not args.duration > 0:
            raise ReplayError(f"--duration must be a positive number of seconds, got {args.duration}.")
    except ReplayError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    return _play(player, args, player.recording.source)


def _play(player, args: argparse.Namespace, source: str) -> int:
    """Open, wait for a consumer if asked, stream to the end (or a signal), print the summary."""
    from beira_rt._signals import stop_on_signals
    from beira_rt.replay import ReplayError

    with stop_on_signals(player.request_stop) as stop:
        try:
            player.open()
            streams = ", ".join(f"{name!r} ({stype})" for name, stype in player.streams)
            print(f"beira-replay: streaming {streams} from {source}", flush=True)
            if args.wait_consumer > 0 and not _wait_consumer(player, args.wait_consumer, stop):
                print(
                    f"beira-replay: no consumer within {args.wait_consumer:g} s; starting anyway", flush=True
                )
            player.run(args.duration)
            if not stop.is_set():
                time.sleep(0.5)  # let the last chunks reach the consumers before the outlets close
            stats = player.stop()
        except ReplayError as err:
            player.close()
            print(f"error: {err}", file=sys.stderr)
            return EXIT_FAILURE
    reason = f"stopped by {stop.signal_name}" if stop.is_set() else "done"
    print(f"beira-replay: {reason}: {stats.summary()}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
