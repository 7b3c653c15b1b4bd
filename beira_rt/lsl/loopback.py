"""The loopback LSL configuration of the tests, benchmarks and demo (one machine, one session)."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

__all__ = ["use_loopback_config"]


def use_loopback_config(session_id: str | None = None) -> Path:
    """Confine LSL to this machine; call before the first LSL call of the process.

    Writes an ``lsl_api.cfg`` (IPv6 off, resolve scope ``machine``, known peer
    127.0.0.1, a session id of its own) and points ``LSLAPICFG`` at it, so that
    this process and its children only see streams of the same session. Used by
    the tests, the benchmarks and the demo; a real set-up keeps the lab's own
    LSL configuration.

    Parameters
    ----------
    session_id : str | None
        LSL session id; a fresh unique one when ``None``.

    Returns
    -------
    Path
        The configuration file written.
    """
    session_id = session_id or f"beira-{uuid.uuid4().hex[:12]}"
    folder = Path(tempfile.mkdtemp(prefix="beira-lsl-"))
    path = folder / "lsl_api.cfg"
    path.write_text(
        "[ports]\nIPv6 = disable\n"
        "[multicast]\nResolveScope = machine\n"
        "[lab]\nKnownPeers = {127.0.0.1}\n"
        f"SessionID = {session_id}\n",
        encoding="ascii",
    )
    os.environ["LSLAPICFG"] = str(path)
    return path
