"""GPU time on ZeroGPU-style Spaces: text-to-image sessions run under `spaces.GPU` with a duration from the
engine's own cost model (flowscale.run.estimate_config: the same sizing rule as a run, nothing loaded).

On a Space with the `spaces` package, `session_for(cfg)` returns a session whose GPU request lasts
SAFETY x (the estimated seconds of every phase of the click + the model's loading time); the 2-D and Shapes
worlds never ask for a GPU. Without `spaces` (a laptop, CI, a dedicated GPU) sessions run as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from flowscale.catalog import needs_gpu
from flowscale.config import ConfigError, RunConfig
from flowscale.run import estimate_config
from flowscale.ui.session import Snapshot, session, session_phases
from flowscale.worlds import world_cost

SAFETY = 1.5
FALLBACK_S = 60  # a config the estimate refuses: the session itself reports why, within this


def request_seconds(cfg: RunConfig, baseline: bool = True, bon: bool = True, **_: Any) -> int:
    """Seconds of GPU time a Run click needs: its phases' estimates plus loading, with a safety margin."""
    try:
        total = sum(estimate_config(p.cfg).seconds for p in session_phases(cfg, baseline=baseline, bon=bon))
    except ConfigError:
        return FALLBACK_S
    return math.ceil(SAFETY * (total + world_cost(cfg.model).load_s))


def on_gpu(fn: Callable[..., Any], duration: Callable[..., int]) -> Callable[..., Any]:
    """fn under spaces.GPU(duration=...) when the `spaces` package is importable (a Space), else fn itself."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return fn
    return spaces.GPU(fn, duration=duration)


def _gpu_session(cfg: RunConfig, **kwargs: Any) -> Iterator[Snapshot]:
    yield from session(cfg, **kwargs)


_ON_GPU = on_gpu(_gpu_session, request_seconds)  # decorated once, at import, as ZeroGPU requires


def session_for(cfg: RunConfig) -> Callable[..., Iterator[Snapshot]]:
    """The session function for a config: on the GPU for image models, as is otherwise."""
    return _ON_GPU if needs_gpu(cfg.model) else session
