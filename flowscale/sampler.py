"""A flow model bound to a process: evaluate (one NFE per particle) and propose (free).

`evaluate(x, tau)` returns the process-interpolant velocity and the x0 prediction at process time tau.
For VP processes the linear model is converted by SNR matching (method.md a.6): the model is called
once, on x / c_s at linear time t_s. `propose` takes one Euler or Euler-Maruyama step with noise drawn
from the run's own generator, always on the CPU, so results do not depend on the device or on how
particles are batched.
"""

from __future__ import annotations

from typing import Any

import torch

from flowscale.convert import bcast, converted_velocity, snr_matched_map, x0_from_velocity
from flowscale.interpolants import LinearInterpolant
from flowscale.models import CountedModel
from flowscale.processes import Process, process_step

_LINEAR = LinearInterpolant()


def compact_time(tau: torch.Tensor) -> torch.Tensor:
    """A 0-dim time when every particle sits at the same time: coefficients are then computed once."""
    if tau.ndim == 1 and tau.numel() > 1 and bool((tau == tau[0]).all()):
        return tau[0]
    return tau


class FlowSampler:
    def __init__(self, model: CountedModel, process: Process, cond: Any) -> None:
        self.model = model
        self.process = process
        self.cond = cond
        inner = model.model
        self.shape = tuple(inner.sample_shape)
        self.device = inner.device
        self.dtype = inner.dtype

    def prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n draws of the starting noise x_1 ~ N(0, I) (also for VP: method.md a.5)."""
        return self.noise((n, *self.shape), generator)

    def noise(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(shape, generator=generator, dtype=torch.float64 if self.dtype == torch.float64 else torch.float32)
        return z.to(device=self.device, dtype=self.dtype)

    def evaluate(self, x: torch.Tensor, tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, x0_hat) at process times tau (float64, scalar or [B]); costs x.shape[0] NFE."""
        n = x.shape[0]
        tau = compact_time(torch.as_tensor(tau, dtype=torch.float64))
        if not self.process.is_converted:
            u = self.model.velocity(x, tau.expand(n), self.cond)
        else:
            m = snr_matched_map(_LINEAR, self.process.interpolant, tau)
            u_src = self.model.velocity(x / bcast(m.scale, x), m.t.expand(n), self.cond)
            u = converted_velocity(x, m, u_src)
        return u, x0_from_velocity(x, u, self.process.interpolant.coeffs(tau))

    def propose(
        self,
        x: torch.Tensor,
        u: torch.Tensor,
        tau: torch.Tensor,
        tau_next: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """One step of the process from tau to tau_next; draws noise only for stochastic processes."""
        noise = self.noise(tuple(x.shape), generator) if self.process.stochastic else None
        return process_step(self.process, x, u, compact_time(tau), compact_time(tau_next), noise)
