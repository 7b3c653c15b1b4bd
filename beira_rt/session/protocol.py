"""Neurofeedback protocols: ordered blocks and the feedback definition, from YAML, validated.

A protocol file (examples in ``configs/protocols/``)::

    protocol:
      name: putamen-up
      seed: 0                      # for shuffled groups
    feedback:
      target: Left Putamen + Right Putamen   # one ROI, a weighted sum or a difference
      smoothing: 1.0               # s, time constant of the exponential smoothing
      normalise: zscore            # zscore | percentile | none (against the latest baseline)
      threshold: 0.5               # reward when the value is above it (direction: up); null: none
      direction: up
      lookahead: null              # s the engine must publish at (null: whatever it publishes)
      sham: null                   # an earlier session's XDF: its feedback is fed back instead
    blocks:
      - {name: baseline, kind: baseline, duration: 60, instruction: Relax and look at the cross}
      - repeat: 4                  # a group: its blocks, this many times (optionally shuffled)
        shuffle: false
        blocks:
          - {name: feedback, kind: feedback, duration: 30, instruction: Raise the bar}
          - {name: rest, kind: rest, duration: 15}

Block kinds: ``baseline`` (the statistics for the normalisation), ``feedback``
(shown), ``transfer`` (computed and recorded, not shown), ``rest`` (fixation
cross). Unknown keys, a non-positive duration, an unknown ROI, a target whose
weights cancel (``Left Caudate - Left Caudate``) and feedback before any
baseline when normalising are refused with a message that names the problem.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from beira_rt.config import DEFAULT_ROIS, ConfigError, build, spec

__all__ = [
    "BLOCK_KINDS",
    "Block",
    "BlockSpec",
    "FeedbackSpec",
    "GroupSpec",
    "Protocol",
    "ProtocolInfo",
    "load_protocol",
    "parse_protocol",
    "parse_target",
]

BLOCK_KINDS = ("baseline", "feedback", "transfer", "rest")
#: Kinds during which the feedback is computed against the baseline.
NORMALISED_KINDS = ("feedback", "transfer")


@dataclass(frozen=True)
class ProtocolInfo:
    name: str = spec("session", doc="name of the protocol (in the markers and the report)")
    seed: int = spec(0, doc="seed of the shuffled groups")


@dataclass(frozen=True)
class FeedbackSpec:
    target: str = spec("", doc="one ROI, a weighted sum or a difference of ROIs")
    smoothing: float = spec(1.0, ge=0, doc="time constant of the exponential smoothing (s; 0: none)")
    normalise: str = spec("zscore", choices=("zscore", "percentile", "none"))
    threshold: float | None = spec(None, doc="reward when the value passes it (normalised units)")
    direction: str = spec("up", choices=("up", "down"), doc="up: reward above the threshold")
    lookahead: float | None = spec(None, ge=0, doc="look-ahead (s) the engine must publish at")
    sham: str | None = spec(None, doc="XDF of an earlier session whose feedback is fed back instead")


@dataclass(frozen=True)
class BlockSpec:
    name: str = spec("", doc="block name")
    kind: str = spec("feedback", choices=BLOCK_KINDS)
    duration: float = spec(10.0, gt=0, doc="seconds")
    instruction: str = spec("", doc="text shown to the participant")


@dataclass(frozen=True)
class GroupSpec:
    blocks: tuple[BlockSpec, ...] = spec((), min_len=1)
    repeat: int = spec(1, ge=1)
    shuffle: bool = spec(False, doc="shuffle the blocks within each repetition (seeded)")


@dataclass(frozen=True)
class Block:
    """One block of the expanded schedule."""

    index: int
    name: str
    kind: str
    start: float  #: seconds from the session start
    duration: float
    instruction: str

    @property
    def end(self) -> float:
        return self.start + self.duration

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "start": self.start,
            "duration": self.duration,
            "instruction": self.instruction,
        }


@dataclass(frozen=True)
class Protocol:
    """A validated protocol: its info, the feedback definition and the expanded block schedule."""

    info: ProtocolInfo
    feedback: FeedbackSpec
    weights: dict[str, float]  #: ROI -> weight of the feedback target
    blocks: tuple[Block, ...]
    text: str = ""  #: the YAML it was read from

    @property
    def duration(self) -> float:
        return self.blocks[-1].end

    def block_at(self, t: float) -> Block | None:
        """The block running ``t`` seconds after the start (None before it or after the end)."""
        for block in self.blocks:
            if block.start <= t < block.end:
                return block
        return None

    def check_rois(self, rois: tuple[str, ...] | list[str], where: str) -> None:
        """Refuse a target ROI that ``where`` (e.g. the prediction stream) does not carry."""
        missing = [r for r in self.weights if r not in rois]
        if missing:
            raise ConfigError(
                f"feedback.target uses {', '.join(missing)}, which {where} does not carry "
                f"(it has: {', '.join(rois)})."
            )


_TERM = re.compile(r"\s*([+-])?\s*(?:(\d+(?:\.\d*)?|\.\d+)\s*\*\s*)?([^+*-][^+*]*?)\s*(?=[+-]|$)")


def parse_target(text: str, rois: tuple[str, ...] = DEFAULT_ROIS) -> dict[str, float]:
    """``"Left Putamen + Right Putamen"``, ``"Left Caudate - Right Caudate"``, ``"0.5 * A + B"``
    -> {ROI: weight}. ROI names must be among ``rois`` (case and spacing as there).

    Raises
    ------
    ConfigError
        Empty, unparsable, an unknown ROI, or weights that cancel to nothing.
    """
    text = (text or "").strip()
    if not text:
        raise ConfigError(
            "feedback.target is empty; give one ROI, e.g. 'Left Putamen', or a sum or difference."
        )
    weights: dict[str, float] = {}
    pos = 0
    for m in _TERM.finditer(text):
        if m.start() != pos or not m.group(3):
            break
        sign = -1.0 if m.group(1) == "-" else 1.0
        w = float(m.group(2)) if m.group(2) else 1.0
        roi = " ".join(m.group(3).split())
        if roi not in rois:
            raise ConfigError(f"feedback.target: unknown ROI {roi!r}; the ROIs are: {', '.join(rois)}.")
        weights[roi] = weights.get(roi, 0.0) + sign * w
        pos = m.end()
    if pos != len(text):
        raise ConfigError(
            f"feedback.target {text!r} cannot be read at {text[pos:]!r}; write ROIs joined by + or -, "
            "each optionally weighted as '0.5 * Left Caudate'."
        )
    weights = {k: v for k, v in weights.items() if v != 0.0}
    if not weights:
        raise ConfigError(f"feedback.target {text!r} cancels out (every weight is 0): nothing to feed back.")
    return weights


def _expand(items: list[Any], seed: int) -> list[BlockSpec]:
    rng = random.Random(seed)
    out: list[BlockSpec] = []
    for i, item in enumerate(items):
        path = f"blocks[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: expected a block or a group (a mapping), got {item!r}.")
        if "blocks" in item:  # a group
            group = build(GroupSpec, item, path)
            for _ in range(group.repeat):
                round_ = list(group.blocks)
                if group.shuffle:
                    rng.shuffle(round_)
                out += round_
        else:
            out.append(build(BlockSpec, item, path))
    return out


def parse_protocol(data: Any, rois: tuple[str, ...] = DEFAULT_ROIS, text: str = "") -> Protocol:
    """Validate a protocol mapping (see the module docstring)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a protocol must be a mapping with protocol, feedback and blocks; got {data!r}.")
    unknown = sorted(set(data) - {"protocol", "feedback", "blocks"})
    if unknown:
        raise ConfigError(
            f"unknown protocol key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            "allowed keys: blocks, feedback, protocol."
        )
    info = build(ProtocolInfo, data.get("protocol") or {}, "protocol")
    feedback = build(FeedbackSpec, data.get("feedback") or {}, "feedback")
    weights = parse_target(feedback.target, rois)
    items = data.get("blocks")
    if not isinstance(items, list) or not items:
        raise ConfigError(
            "blocks: give at least one block, e.g. - {name: baseline, kind: baseline, duration: 60}."
        )
    specs = _expand(items, info.seed)
    blocks, t = [], 0.0
    for i, b in enumerate(specs):
        blocks.append(Block(i, b.name or b.kind, b.kind, t, b.duration, b.instruction))
        t += b.duration
    if feedback.normalise != "none":
        first = next((b for b in blocks if b.kind in NORMALISED_KINDS), None)
        base = next((b for b in blocks if b.kind == "baseline"), None)
        if first is not None and (base is None or base.index > first.index):
            raise ConfigError(
                f"block {first.index} ({first.name!r}, {first.kind}) comes before any baseline block, but "
                f"feedback.normalise is {feedback.normalise!r}: put a baseline block first, or set "
                "feedback.normalise: none."
            )
    if feedback.sham is not None and not Path(feedback.sham).is_file():
        raise ConfigError(f"feedback.sham: {feedback.sham} does not exist (an earlier session's XDF file).")
    if not all(math.isfinite(b.duration) for b in blocks):
        raise ConfigError("blocks: every duration must be a finite number of seconds.")
    return Protocol(info, feedback, weights, tuple(blocks), text)


def load_protocol(path: str | Path, rois: tuple[str, ...] = DEFAULT_ROIS) -> Protocol:
    """Read a protocol YAML file safely and validate it (errors name the file and the key)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"protocol file {path} does not exist.")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"protocol file {path} is not valid YAML: {err}") from None
    try:
        return parse_protocol(data, rois, text)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
