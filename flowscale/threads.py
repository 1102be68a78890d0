"""The thread policy: how many intra-op threads a process gives each run, chosen so that runs cannot collapse.

torch's default (every core, OpenMP threads that spin while they wait) makes a run 7-16x slower beside any
other busy process on a 2-core machine. So OpenMP waits passively (OMP_WAIT_POLICY=PASSIVE, set by
`flowscale/__init__.py` before torch loads, unless the environment says otherwise), and each process uses
cores / (runs it serves at once) threads: the app with two concurrent runs on two cores uses one thread
each. FLOWSCALE_THREADS overrides the count. A run records the count it used (`threads` in its record).
"""

from __future__ import annotations

import os

import torch

from flowscale.config import ConfigError


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads_for(concurrency: int = 1) -> int:
    """Intra-op threads per run for a process serving `concurrency` runs at once (FLOWSCALE_THREADS wins)."""
    raw = os.environ.get("FLOWSCALE_THREADS", "").strip()
    if raw:
        if not raw.isdigit() or not 1 <= int(raw) <= 1024:
            raise ConfigError("FLOWSCALE_THREADS", f"must be a whole number in [1, 1024]; got {raw!r}")
        return int(raw)
    return max(1, cores() // max(1, concurrency))


def apply(concurrency: int = 1) -> int:
    """Set torch's intra-op threads for this process by the policy; returns the count."""
    n = threads_for(concurrency)
    torch.set_num_threads(n)
    return n
