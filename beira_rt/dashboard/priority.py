"""Give the dashboard's process the CPU only after everything else (the engine first).

The dashboard shares the machine with the engine. On Linux the whole process (every
thread it has, and every thread it starts later) is moved to the ``SCHED_IDLE`` policy:
the kernel then runs it only on a core nothing else wants, and a waking engine thread
preempts it at once. The dashboard drops frames when the machine is busy; its LSL inlets
keep their samples in their buffers, so no data are lost, only drawn later. Elsewhere
(or when ``SCHED_IDLE`` is refused) the POSIX nice value is raised instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from beira_rt._logging import logger

__all__ = ["lower_priority"]


def _thread_ids() -> list[int]:
    try:
        return [int(p.name) for p in Path("/proc/self/task").iterdir()]
    except OSError:
        return [0]  # 0 = the calling thread


def lower_priority(nice: int, sched_idle: bool) -> str:
    """Lower this process's CPU priority; return what was done (for the log).

    Parameters
    ----------
    nice : int
        Raise the nice value of every thread by this much (0 = leave it).
    sched_idle : bool
        Also move every thread to ``SCHED_IDLE`` where the OS has it (Linux).
    """
    done = []
    tids = _thread_ids()
    if nice > 0 and hasattr(os, "setpriority"):
        n = 0
        for tid in tids:
            try:  # on Linux the nice value is per thread; threads started later inherit it
                os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
                n += 1
            except OSError as exc:
                logger.debug("nice refused for thread %d: %s", tid, exc)
        if n:
            done.append(f"nice +{nice} ({n} of {len(tids)} threads)")
    if sched_idle and hasattr(os, "SCHED_IDLE"):
        n = 0
        for tid in tids:
            try:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
                n += 1
            except OSError as exc:
                logger.debug("SCHED_IDLE refused for thread %d: %s", tid, exc)
        if n:
            done.append(f"SCHED_IDLE ({n} of {len(tids)} threads)")
    return ", ".join(done) or "unchanged"
