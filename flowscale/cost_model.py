"""A world's measured costs, declared by each world module as COST (or COSTS per model); see flowscale.cost."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CostModel:
    """Seconds per evaluation batch (the model's per-call overhead plus the engine's per-event work) and per
    NFE (one sample through the model), as measured where the world is served."""

    sec_per_call: float
    sec_per_nfe: float
