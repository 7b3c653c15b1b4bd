"""The bundle file format: safetensors bytes, the JSON metadata, the content hash.

:mod:`beira_rt.bundle` builds on this; this module knows nothing of the model. Nothing here
unpickles or executes anything from a file: the header is parsed as JSON and the tensors are
decoded by safetensors from raw bytes.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "BundleError",
    "canonical_json",
    "check_hash",
    "content_hash",
    "decode",
    "encode",
    "not_a_bundle",
    "read_header",
]

FORMAT = "beira-bundle"
FORMAT_VERSION = 1
METADATA_KEY = "beira"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header

_SIGNATURES = (
    (b"PK\x03\x04", "a zip archive (a torch.save checkpoint?)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x80", "a Python pickle"),
    (b"\x89HDF", "an HDF5 file"),
)


class BundleError(ValueError):
    """A model bundle cannot be written or read; the message names the problem."""


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces, ASCII: the bytes the content hash covers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def content_hash(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 hex digest of ``meta`` (without ``content_hash``) and every tensor.

    Fed to the hash, each length-prefixed (8-byte little-endian length): the canonical JSON
    of the metadata, then for every tensor in sorted name order its name, dtype, shape (JSON)
    and raw bytes.
    """
    h = hashlib.sha256()

    def put(chunk: bytes) -> None:
        h.update(struct.pack("<Q", len(chunk)))
        h.update(chunk)

    put(canonical_json({k: v for k, v in meta.items() if k != "content_hash"}))
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        put(name.encode("utf-8"))
        put(str(t.dtype).encode("ascii"))
        put(canonical_json(list(t.shape)))
        put(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def encode(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> tuple[bytes, str]:
    """The bytes of a bundle file and its content hash (added to ``meta`` as ``content_hash``).

    Raises
    ------
    BundleError
        If ``meta`` is not JSON-serialisable.
    """
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    meta = dict(meta)
    try:
        canonical_json(meta)
    except (TypeError, ValueError) as err:
        raise BundleError(
            f"bundle metadata (metrics included) must be JSON-serialisable: numbers, strings, lists, dicts; {err}"
        ) from None
    meta["content_hash"] = content_hash(meta, tensors)
    data = safetensors.torch.save(tensors, metadata={METADATA_KEY: json.dumps(meta, sort_keys=True)})
    return data, meta["content_hash"]


def not_a_bundle(path: Path, data: bytes, why: str) -> BundleError:
    """The error for a file that is not a bundle, with a guess at what it is."""
    kind = next((name for sig, name in _SIGNATURES if data.startswith(sig)), None)
    looks = f" It looks like {kind}." if kind else ""
    return BundleError(
        f"{path} is not a BEIRA bundle: {why}.{looks} A bundle is the model.beira file written by beira-train."
    )


def read_header(path: Path, data: bytes) -> dict[str, Any]:
    """Parse the safetensors JSON header, telling a truncated bundle from a foreign file.

    Parameters
    ----------
    path : Path
        For messages.
    data : bytes
        The whole file.

    Returns
    -------
    dict
        The header (tensor entries and ``__metadata__``).
    """
    if len(data) < 8:
        raise not_a_bundle(path, data, f"it has only {len(data)} bytes (truncated or empty)")
    (n_header,) = struct.unpack("<Q", data[:8])
    body = data[8:]
    if not body.startswith(b"{"):
        raise not_a_bundle(path, data, "it is not a safetensors file")
    if n_header > min(len(body), _MAX_HEADER):
        raise BundleError(
            f"{path} is truncated or corrupt: its header needs {n_header} bytes but only {len(body)} remain."
        )
    try:
        header = json.loads(body[:n_header].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{path} is truncated or corrupt: its header is not valid JSON ({err}).") from None
    if not isinstance(header, dict):
        raise not_a_bundle(path, data, "its header is not a JSON object")
    return header


def decode(path: Path, data: bytes) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Metadata and tensors of a bundle file, after checking the format and the content hash.

    Raises
    ------
    BundleError
        Not a bundle, truncated or corrupt, another format version, or a hash mismatch.
    """
    header = read_header(path, data)
    raw = (header.get("__metadata__") or {}).get(METADATA_KEY)
    if raw is None:
        raise not_a_bundle(path, data, f"it is a safetensors file without the {METADATA_KEY!r} metadata")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise BundleError(f"{path}: the bundle metadata is not valid JSON ({err}).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise not_a_bundle(path, data, f"its metadata does not declare the format {FORMAT!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise BundleError(
            f"{path} has bundle format version {version!r}; this beira-rt reads version {FORMAT_VERSION}. "
            + ("Upgrade beira-rt." if newer else "Export the model again with beira-train.")
        )
    try:
        tensors = safetensors.torch.load(data)
    except safetensors.SafetensorError as err:
        raise BundleError(f"{path} is truncated or corrupt: {err}.") from None
    return meta, tensors


def check_hash(path: Path, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> str:
    """Recompute the content hash; raise if it differs from the recorded one."""
    digest = content_hash(meta, tensors)
    recorded = meta.get("content_hash")
    if digest != recorded:
        raise BundleError(
            f"{path} was modified after it was written: its content hash is {digest[:12]}..., the recorded "
            f"one {str(recorded)[:12]}...; do not use it, export the model again."
        )
    return digest
