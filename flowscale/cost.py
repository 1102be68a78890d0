"""What a run will cost before it runs: model calls, NFE, wall time and record size, per world and method.

    seconds ≈ calls · sec_per_call + NFE · sec_per_nfe

A "call" is one evaluation batch through the engine (one candidates event): its fixed cost is the model's
per-call overhead plus the engine's per-event work; NFE pays the model's per-sample cost. Each world
declares its `COST` (measured, see the README's "Limits and safety"). RBF draws one candidate per chain per
call, so its calls grow with the budget; the other methods call the model once per step.

The app and the API refuse a request whose estimate exceeds the host's cap (FLOWSCALE_MAX_REQUEST_S,
FLOWSCALE_MAX_RECORD_MB) with a message that says what to lower; the CLI runs anything within the engine's
limits and prints the estimate first for long runs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from flowscale.config import ConfigError, RunConfig
from flowscale.cost_model import CostModel
from flowscale.search.blocks import children_per_step
from flowscale.search.context import DETAIL_ROWS, TRACED, trace_width
from flowscale.search.rbf import rbf_quota
from flowscale.search.simple import bon_size
from flowscale.search.smc import smc_sizes
from flowscale.search.sop import sop_size

# record.json as saved (indent 1), measured: a traced candidate takes 160-240 B (RBF: 290 B, with its per-particle
# steps and budget events); every evaluation batch adds about 190 B (its event header, or its summary, and
# its entry in best_reward_by_nfe).
BYTES_PER_ROW = 240
BYTES_PER_ROW_RBF = 300
BYTES_PER_CALL = 200
DEFAULT_MAX_REQUEST_S = 60.0
# A reward-guided (dps) NFE also runs a backward pass through the model, the decoder and the reward: measured on
# Shapes (base, 16 particles x 20 steps, 2 threads) the guided run took 1.9-2.0 times the unguided one.
GRAD_COST = 1.0
DEFAULT_MAX_RECORD_MB = 5.0


@dataclass(frozen=True)
class Estimate:
    calls: int
    nfe: int
    seconds: float
    record_bytes: int

    def describe(self) -> str:
        return (f"about {self.seconds:.0f} s ({self.calls} model calls, {self.nfe} NFE), a record of about "
                f"{self.record_bytes / 1e6:.1f} MB")


def calls_of(cfg: RunConfig, params: Any) -> int:
    """Evaluation batches a resolved config makes (micro-batches inside a call are the model's business).

    Each method's own sizing function runs here, so a budget or setting it cannot fit is a ConfigError
    before anything is allocated (`prepare` calls this).
    """
    m, nfe = cfg.steps, cfg.nfe
    if cfg.method == "bon":
        bon_size(nfe, m, params.n)
    elif cfg.method == "smc":
        smc_sizes(nfe, m, params)
    elif cfg.method in ("svdd", "code"):
        children_per_step(nfe, m, params)
    elif cfg.method == "sop":
        rounds, solve = sop_size(nfe, params)
        return (rounds + 1) * solve
    elif cfg.method == "rbf":
        init, _ = rbf_quota(nfe, m, params)
        return 1 + max(0, nfe - params.chains * init) // (params.chains * params.batch)
    return m


def estimate(cfg: RunConfig, params: Any, model: CostModel) -> Estimate:
    """The cost of a resolved config with its method params in a world of the given cost model."""
    calls = calls_of(cfg, params)
    nfe = cfg.nfe
    if cfg.method == "bon":
        nfe = bon_size(cfg.nfe, cfg.steps, params.n) * cfg.steps
    rows = min(calls * trace_width(calls), nfe, DETAIL_ROWS + TRACED)
    per_row = BYTES_PER_ROW_RBF if cfg.method == "rbf" else BYTES_PER_ROW
    record = rows * per_row + (calls + cfg.steps) * BYTES_PER_CALL + 4096
    per_nfe = model.nfe_seconds(cfg.height, cfg.width)
    seconds = calls * model.sec_per_call + nfe * per_nfe * (1.0 + (GRAD_COST if cfg.dps else 0.0))
    return Estimate(calls, nfe, seconds, int(record))


def caps() -> tuple[float, float]:
    """The host's per-request caps: seconds and record megabytes (environment, else the defaults)."""
    def read(name: str, default: float) -> float:
        raw = os.environ.get(name)
        try:
            value = float(raw) if raw else default
        except ValueError:
            value = default
        return value if value > 0 and math.isfinite(value) else default

    return read("FLOWSCALE_MAX_REQUEST_S", DEFAULT_MAX_REQUEST_S), read("FLOWSCALE_MAX_RECORD_MB",
                                                                        DEFAULT_MAX_RECORD_MB)


def check_request(estimates: list[tuple[RunConfig, Estimate]], max_seconds: float, max_record_mb: float) -> None:
    """Refuse a request (the runs one click starts) that would cost more than the host allows, naming what
    to lower. The record cap keeps every record the app writes small enough to upload back."""
    total = sum(e.seconds for _, e in estimates)
    if total > max_seconds:
        cfg, main = max(estimates, key=lambda ce: ce[1].seconds)
        field = "nfe" if cfg.method not in ("ode", "base") else "particles"
        budget = cfg.nfe if field == "nfe" else cfg.particles
        fits = max(1, int(budget * max_seconds / total * 0.9))
        raise ConfigError(field, f"this request would take {total:.0f} s here ({main.describe()} for {cfg.method}); "
                          f"this server allows {max_seconds:g} s per request: lower {field} to about {fits} or "
                          "the steps, or run it with the CLI (python -m flowscale run ...)")
    for cfg, e in estimates:
        if e.record_bytes > max_record_mb * 1e6:
            raise ConfigError("nfe", f"the record of this {cfg.method} run would be about {e.record_bytes / 1e6:.1f} "
                              f"MB, more than the {max_record_mb:g} MB this server writes and reads back: lower nfe")
