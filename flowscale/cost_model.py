"""A world's measured costs, declared by each world module as COST (or COSTS per model); see flowscale.cost."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CostModel:
    """Seconds per evaluation batch (the model's per-call overhead plus the engine's per-event work) and per
    NFE (one sample through the model), as measured where the world is served."""

    sec_per_call: float
    sec_per_nfe: float
    reference_pixels: int | None = None  # image worlds: sec_per_nfe is at this height x width and scales with it
    load_s: float = 0.0  # loading the model where it is served (a GPU-time request must include it)

    def nfe_seconds(self, height: int | None, width: int | None) -> float:
        """Seconds of one NFE at an image size (the reference size when none is given)."""
        if self.reference_pixels is None or not (height and width):
            return self.sec_per_nfe
        return self.sec_per_nfe * max(height * width / self.reference_pixels, 0.05)
