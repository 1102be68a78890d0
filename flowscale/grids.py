"""Time grids: M + 1 descending process times tau_0 > ... > tau_M = 0.

The model is evaluated at tau_0 ... tau_{M-1} (M NFE for one trajectory); transitions tau_k -> tau_{k+1}
are simulated for k < M - 1 and the returned sample is the x0 prediction at tau_{M-1} (for the linear
ODE this equals the last Euler step to 0; method.md b "every candidate costs exactly one NFE").

Kinds:
* `exp`: the paper's adaptive grid s_k = sqrt(1 - (k/M)^2) (method.md a.7; App. C drops the sqrt).
  Made for few-step distilled models such as FLUX.1-schnell: it never evaluates below s = sqrt(1 - ((M-1)/M)^2).
* `uniform`: tau_k = 1 - k/M, which simulates down to a small final time 1/M (method.md h).
A grid lives in `space` "process" (the process's own time) or "linear" (a linear-time grid, optionally
resolution-shifted as FLUX.1-dev does, mapped to VP time by SNR matching for VP processes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from flowscale.interpolants import LinearInterpolant
from flowscale.processes import Process

GRID_KINDS = ("exp", "uniform")
GRID_SPACES = ("process", "linear")


@dataclass(frozen=True)
class GridSpec:
    kind: str = "uniform"
    steps: int = 25
    space: str = "process"
    shift: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in GRID_KINDS:
            raise ValueError(f"grid must be one of {', '.join(GRID_KINDS)}; got {self.kind!r}")
        if self.space not in GRID_SPACES:
            raise ValueError(f"grid_space must be one of {', '.join(GRID_SPACES)}; got {self.space!r}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1; got {self.steps!r}")
        if not self.shift > 0:
            raise ValueError(f"shift must be > 0; got {self.shift}")


def _base_grid(kind: str, steps: int) -> torch.Tensor:
    k = torch.arange(steps, dtype=torch.float64)
    head = torch.sqrt(1.0 - (k / steps) ** 2) if kind == "exp" else 1.0 - k / steps
    return torch.cat([head, torch.zeros(1, dtype=torch.float64)])


def shift_times(t: torch.Tensor, shift: float) -> torch.Tensor:
    """The SD3/FLUX resolution shift t' = shift * t / (1 + (shift - 1) * t); shift = 1 is the identity."""
    return shift * t / (1.0 + (shift - 1.0) * t)


def linear_to_process_time(t: torch.Tensor, process: Process) -> torch.Tensor:
    """Map linear times to the process's time by SNR matching; linear t = 1 (SNR 0) maps to tau = 1."""
    if not process.is_converted:
        return t.clone()
    out = torch.ones_like(t)
    inner = (t > 0) & (t < 1)
    out[t <= 0] = 0.0
    snr = (1.0 - t[inner]) / t[inner]
    out[inner] = process.interpolant.t_from_snr(snr).clamp(max=1.0)
    return out


def make_grid(spec: GridSpec, process: Process) -> torch.Tensor:
    """The float64 grid [M + 1] in the process's own time, ending at 0."""
    t = _base_grid(spec.kind, spec.steps)
    if spec.space == "process":
        if spec.shift != 1.0:
            raise ValueError("shift applies to grids in linear space only (grid_space=linear)")
        return t
    return linear_to_process_time(shift_times(t, spec.shift), process)


def process_to_linear_time(tau: torch.Tensor, process: Process) -> torch.Tensor:
    """The linear (model) time at which a process time queries the model (for plots and traces)."""
    if not process.is_converted:
        return torch.as_tensor(tau, dtype=torch.float64).clone()
    c = process.interpolant.coeffs(tau)
    return LinearInterpolant().t_from_snr(c.alpha / c.sigma)
