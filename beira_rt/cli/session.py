"""``beira-rt session | display | record | report``: neurofeedback sessions from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from beira_rt.cli._common import add_common_args
from beira_rt.cli.options import add_options, opt, out, seconds, stream, switch

__all__ = ["add_session_parsers", "main_session_command"]

_FEEDBACK, _MARKERS = "BEIRA-feedback", "BEIRA-session"
#: The session commands: name, help, and options besides --config and -v / -q.
_COMMANDS = (
    ("session", "run a neurofeedback protocol on the engine's predictions", (
        opt("protocol", metavar="PROTOCOL", help="protocol YAML (see configs/protocols/)"),
        stream("--predictions", "the engine's prediction stream", default="BEIRA"),
        stream("--feedback-name", "feedback stream name", default=_FEEDBACK),
        stream("--session-name", "marker stream name", default=_MARKERS),
        opt("--state", metavar="JSON", help="session state file (kept up to date; for --resume)"),
        switch("--resume", "continue the session of --state after a crash"),
        switch("--check", "only validate the protocol and print its blocks"),
        seconds("--wait-recorder", default=0.0,
                help="with the streams open, wait up to S s for the recorder before the session starts"),
    )),
    ("display", "the participant display (PyQt6, its own window)", (
        stream("--feedback", "feedback stream name", default=_FEEDBACK),
        stream("--session", "marker stream name", default=_MARKERS),
        opt("--screen", type=int, default=0, metavar="N", help="screen to show it on"),
        switch("--windowed", "a window instead of full screen"),
        seconds("--duration", "close after S seconds"),
        opt("--screenshot", metavar="PNG", help="save the window as PNG at the end"),
    )),
    ("record", "record streams to XDF with LabRecorder (a process of its own)", (
        opt("xdf", metavar="SESSION.xdf", help="the file to write (a SESSION.json goes beside it)"),
        opt("--stream", action="append", required=True, metavar="NAME", help="a stream (repeat)"),
        opt("--protocol", metavar="YAML", help="the protocol, kept in the sidecar"),
        seconds("--duration", "stop after S seconds"),
    )),
    ("report", "the report of a recorded session (PNG + JSON)", (
        opt("xdf", metavar="SESSION.xdf"),
        out("where to write (default: beside the file)"),
    )),
)  # fmt: skip
COMMANDS = tuple(name for name, _, _ in _COMMANDS)


def add_session_parsers(sub) -> None:
    """Add the four session commands to ``beira-rt``'s subparsers."""
    for name, summary, options in _COMMANDS:
        parser = sub.add_parser(name, help=summary)
        add_options(parser, options)
        add_common_args(parser)


def main_session_command(args: argparse.Namespace) -> int:
    if args.command == "session":
        return _session(args)
    if args.command == "display":
        from beira_rt.session.display import main_display

        return main_display(args)
    if args.command == "record":
        from beira_rt.session.recorder import record_session

        sidecar = record_session(args.xdf, args.stream, duration=args.duration, protocol=args.protocol)
        print(f"recorded {len(sidecar['streams'])} streams to {args.xdf}")
        return 0
    from beira_rt.session.report import write_report

    summary = write_report(args.xdf, args.out)
    print(json.dumps(summary["summary"], indent=1))
    return 0


def _session(args: argparse.Namespace) -> int:
    from beira_rt.session.protocol import load_protocol

    protocol = load_protocol(args.protocol)
    if args.check:
        print(f"protocol {protocol.info.name!r}: target {protocol.weights}, {protocol.duration:g} s")
        for b in protocol.blocks:
            print(
                f"  {b.index:3d} {b.start:8.1f} s  {b.kind:9s} {b.duration:6.1f} s  {b.name}  {b.instruction}"
            )
        return 0
    from beira_rt._signals import stop_on_signals
    from beira_rt.session.runner import SessionRunner

    runner = SessionRunner(
        protocol,
        args.predictions,
        feedback_name=args.feedback_name,
        session_name=args.session_name,
        state_path=args.state,
        resume=args.resume,
    )
    with stop_on_signals() as stop:
        summary = runner.run(stop=stop, wait_consumer=args.wait_recorder)
    runner.close()
    print(
        "session: "
        + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items())
    )
    sys.stdout.flush()
    return 0
