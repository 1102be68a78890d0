"""The garbage-collector setting of long-running processes: what they load at start is frozen out of every
collection.

A full collection walks every tracked object in the process. In the app process (Gradio's layout, torch, the
Shapes world) that is about 600,000 objects and 270 ms, and one lands inside a visitor's run every so often:
40 Run-button sessions of the 2-D default took 28 ms at the median and 267 ms at the worst, two full
collections costing 427 ms between them (measured on the 2-core machine, one thread). Frozen, those objects
are skipped: the same 40 sessions' worst was 99 ms and their full collections cost 71 ms together. What
stays collectable is what the process makes afterwards (records, traces), which is what can become garbage.
`flowscale bench` does the same before its runs (96 2-D runs: the collector's time fell from 254 ms to 42 ms).
A single CLI run does not: the collection before freezing (about 175 ms) would cost more than it saves.
"""

from __future__ import annotations

import gc


def freeze_what_is_loaded() -> int:
    """Free the garbage made while starting, then move every object now alive out of the collector's sight
    (gc.freeze); returns how many objects are frozen. Call it once a server process has loaded what it keeps."""
    gc.collect()  # garbage from start-up is freed, not frozen for the life of the process
    gc.freeze()
    return gc.get_freeze_count()
